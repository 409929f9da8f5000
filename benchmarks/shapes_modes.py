"""Do a sampling model's colorizations take every plausible colour?

On semantic_shapes, classes such as `ball` (red or blue) and `flower`
(magenta, yellow or cyan) have several plausible colours. For validation
scenes this samples N colorizations per image from a trained workdir
(PixSem), takes each object region's mean (a, b) in every sample, assigns
it to the nearest of its class's modes, and reports per class how often
each mode was drawn and the fraction of regions whose samples used at least
two different modes. A regression model would use one (grayish) colour.

  python benchmarks/shapes_modes.py --workdir=runs/pixsem_demo \
      --num_images=32 --num_samples=16
"""

import json

from absl import app
from absl import flags
import jax
import numpy as np

from colorjax import workdir as workdir_lib
from colorjax.data import pipeline
from colorjax.datasets import semantic_shapes

flags.DEFINE_string('workdir', None, 'a trained PixSem workdir')
flags.DEFINE_integer('num_images', 32, 'validation scenes')
flags.DEFINE_integer('num_samples', 16, 'colorizations per scene')
flags.DEFINE_float('temperature', 1.0, 'sampling temperature')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  config = workdir_lib.load_config(FLAGS.workdir)
  method, state = workdir_lib.restore_for_inference(FLAGS.workdir, config)
  spec = pipeline.LoaderSpec.from_config(
      config.data, config.data.eval_split, train=False, global_batch_size=8,
      worker_count=0, keys=('gray', 'segmentation_small'))
  sample = jax.jit(lambda s, g, r: method.sample(
      s, g, r, FLAGS.num_samples, FLAGS.temperature)[0])
  scale = config.data.ab_scale
  draws = {c.name: [] for c in semantic_shapes.CLASSES if len(c.modes) > 1}
  seen = 0
  for index, batch in enumerate(pipeline.create_loader(spec)):
    ab = np.asarray(sample(state, batch['gray'],
                           jax.random.PRNGKey(index))) * scale
    labels = batch['segmentation_small'][..., 0]
    for image in range(len(ab)):
      for class_id, shape_class in enumerate(semantic_shapes.CLASSES):
        if shape_class.name not in draws:
          continue
        region = labels[image] == class_id
        if region.sum() < 2:
          continue
        means = ab[image][:, region].mean(axis=1)            # [S, 2]
        modes = np.asarray(shape_class.modes)
        chosen = np.argmin(((means[:, None] - modes[None]) ** 2).sum(-1), 1)
        draws[shape_class.name].append(chosen)
      seen += 1
      if seen >= FLAGS.num_images:
        break
    if seen >= FLAGS.num_images:
      break
  report = {}
  for name, regions in draws.items():
    if not regions:
      continue
    modes = len(next(c for c in semantic_shapes.CLASSES
                     if c.name == name).modes)
    chosen = np.concatenate(regions)
    report[name] = {
        'regions': len(regions),
        'mode_frequencies': np.round(np.bincount(chosen, minlength=modes)
                                     / len(chosen), 3).tolist(),
        'regions_with_2+_modes': round(float(np.mean(
            [len(set(r.tolist())) >= 2 for r in regions])), 3)}
  print(json.dumps({'workdir': FLAGS.workdir, 'images': seen,
                    'samples_per_image': FLAGS.num_samples,
                    'temperature': FLAGS.temperature, 'classes': report},
                   indent=1))


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
