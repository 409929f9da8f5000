"""Evaluates a trained workdir: the papers' metrics with their protocols.

  # A named protocol (colorjax.protocols): JSON + markdown + plots under
  # WORKDIR/eval/<preset>/ (or --output_dir), with a progress bar. Without
  # a preset they go under WORKDIR/eval/default/; compare finds either.
  # (--segmenter: paper 004's DeepLab-v2 file, deeplabv3_resnet101:PATH,
  # or a configs/segmenter.py workdir)
  python -m colorjax.evaluate --workdir=DIR --preset=paper004 \
      --segmenter=deeplabv2_resnet101_msc-vocaug-20000.pth [--lpips=alexnet.pth] \
      [--fid_inception=pt_inception-2015-12-05-6726825d.pth] \
      [--classifier=vgg16:vgg16-397923af.pth]
  # The config's own evaluators (config.evals), at full resolution:
  python -m colorjax.evaluate --workdir=DIR [--evals=val,val_segmentation]
      [--resolution=full|model] [--split=val] [--max_batches=N] [--step=S]
  # Any folder of photos, no labels needed:
  python -m colorjax.evaluate --workdir=DIR --images=photos/ [--preset=...]
  # Paper 001's Top-1 accuracy on a labelled set (ImageNet val in wnid
  # folders, or Places365 val with places365_val.txt; data.image_folder):
  python -m colorjax.evaluate --workdir=DIR --preset=paper001 \
      --images=imagenet/val/ --labels=folders --classifier=vgg16:PATH
  # A colorized video or frame sequence (no workdir): its flicker, the mean
  # ab change between consecutive frames where L did not change; with the
  # true colour frames, also the per-frame ab error:
  python -m colorjax.evaluate --sequence=out/clip_color.mp4 \
      [--reference=clip.mp4] [--output=flicker.json]

Resolution protocols (colorjax.evaluation): 'full' (default) scores what a
user of `colorize` sees -- ab predicted at the model's resolution and
upsampled onto the photo's own L; 'model' scores at the model's input (the
config's eval crop), as training-time evaluation does.

The JSON holds every metric flat, `evals` ({evaluator: metrics}), and the
protocol: `preset`, `protocol` (each evaluator's data, resolution, canvas,
image limit), `weights` (SHA-256 of every reference file), `num_images`,
`colorjax_version`, `step`, `date`, `skipped` (evaluators that could not
run, with why) and `plots`.
"""

import datetime
import json
import os
from typing import Dict, Optional

from absl import flags
import ml_collections
import numpy as np

import colorjax
from colorjax import cli
from colorjax import console
from colorjax import errors
from colorjax import evaluation
from colorjax import protocols
from colorjax.color import rgb_to_lab_numpy
from colorjax.color import temporal
from colorjax.data import image_folder
from colorjax.datasets import imaging
from colorjax.datasets import video as video_lib
from colorjax import sharding
from colorjax import workdir as workdir_lib

_RESOLUTION_TYPES = ('colour', 'perceptual', 'semantic_interpretability',
                     'reference_segmentation', 'diversity')


def _frames(path: str):
  """A video file or a folder of frames (sorted) -> uint8 RGB frames."""
  if video_lib.is_video(path):
    return video_lib.read_video(path)[1]
  if not os.path.isdir(path):
    raise errors.MissingFileError(f'{path}: neither a video nor a folder of '
                                  'frames')
  paths = image_folder.find_images([path])
  if not paths:
    raise errors.MissingFileError(f'{path}: no image files in it')
  return (imaging.decode_image(p).array for p in paths)


def evaluate_sequence(sequence: str, reference: Optional[str] = None,
                      static: float = temporal.STATIC) -> Dict:
  """The flicker of a colorized video or frame folder (color.temporal:
  the mean ab change between consecutive frames over pixels whose L
  changed by less than `static`, decided on the reference's L when given)
  and, with the true frames, the mean ab error per pixel."""
  def lab(frames):
    for rgb in frames:
      yield rgb_to_lab_numpy(rgb.astype(np.float32) / 255.0)
  truth = lab(_frames(reference)) if reference else None
  result = temporal.flicker(lab(_frames(sequence)), static, truth)
  result.update(sequence=sequence, reference=reference, static_l=static)
  return result


def evaluate_workdir(workdir: str, split=None, max_batches=None, step=None,
                     diversity_samples: int = 2, names=None,
                     image_folder=None, preset: Optional[str] = None,
                     resolution: Optional[str] = None,
                     networks: Optional[Dict[str, str]] = None,
                     plots_dir: Optional[str] = None, progress: bool = False,
                     max_images: Optional[int] = None,
                     labels: Optional[str] = None):
  """{metric: value, ..., 'evals', 'protocol', 'weights', ...} (module doc).

  resolution: None = the preset's (no preset: 'full') for the evaluators
  that score colours; networks: lpips / fid_inception / classifier /
  segmenter (see colorjax.protocols.evals_for). labels: the image
  folder's class labels ('folders' or a label file, data.image_folder):
  semantic interpretability then also scores top-1 accuracy against them
  (top1 / top1_gt / top1_gray), next to top1_agreement.
  """
  if labels and not image_folder:
    raise errors.ConfigError('--labels goes with --images (a folder of a '
                             'labelled evaluation set)')
  networks = {k: v for k, v in (networks or {}).items() if v}
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config, step)
  if preset:
    evals = protocols.evals_for(preset, **networks)
  else:
    evals = ml_collections.ConfigDict(
        (config.get('evals') or evaluation.legacy_evals(config)).to_dict())
    for cfg in evals.values():
      for option, types in protocols.NETWORK_OPTIONS.items():
        if networks.get(option) and cfg.type in types:
          cfg[option] = networks[option]
    if image_folder:
      evals = ml_collections.ConfigDict({
          'folder': dict(type='colour'),
          'folder_samples': dict(type='summary', num_images=8)})
    resolution = resolution or 'full'
  for name, cfg in evals.items():
    if image_folder:
      cfg.dataset, cfg.path = 'image_folder', image_folder
      cfg.skip_if_missing = cfg.get('skip_if_missing', True)
      if labels:
        cfg.labels = labels
        if cfg.type == 'semantic_interpretability':
          cfg.label_key = 'label'
    if split and cfg.get('dataset') in (None, config.data.dataset):
      cfg.split = split
    if resolution and cfg.type in _RESOLUTION_TYPES:
      cfg.resolution = resolution
    if max_images is not None and max_images > 0:
      cfg.max_images = max_images
    elif max_batches is not None and max_batches >= 0:
      cfg.max_images = max_batches * (cfg.get('batch_size') or
                                      config.data.eval_batch_size)
    if cfg.type == 'diversity':
      cfg.num_samples = diversity_samples
  if names is None:
    names = [n for n, c in evals.items() if c.type != 'summary' and not (
        c.type == 'diversity' and diversity_samples < 2)]
  runner = evaluation.Evaluation(method, config, sharding.data_mesh(), evals,
                                 names)
  runner.plots_dir = plots_dir
  runner.progress = progress
  results = runner.run(state)
  flat = evaluation.flatten(results)
  flat['evals'] = results
  first = evals[names[0]]
  flat['split'] = ('all' if first.get('dataset') == 'image_folder' else
                   first.get('split') or config.data.eval_split)
  flat['step'] = int(state.step)
  flat['preset'] = preset
  flat['method'] = config.method
  flat['workdir'] = os.path.abspath(workdir)
  flat['random_init'] = workdir_lib.random_init_parts(workdir)
  flat['protocol'] = {}
  for name in runner.evaluators:
    entry = runner.protocol(name)
    entry['max_images'] = evals[name].get('max_images', -1)
    flat['protocol'][name] = entry
  flat['weights'] = {path: digest for e in runner.evaluators.values()
                     for path, digest in e.weights.items()}
  flat['skipped'] = dict(runner.skipped)
  counts = [v['num_images'] for v in results.values() if 'num_images' in v]
  flat['num_images'] = max(counts) if counts else None
  flat['colorjax_version'] = colorjax.__version__
  flat['date'] = datetime.datetime.now().isoformat(timespec='seconds')
  flat['plots'] = runner.artifacts()
  return flat


def _fmt(value) -> str:
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)


def markdown(results) -> str:
  """A table of the preset's headline metrics (or all), then protocol."""
  preset = results.get('preset')
  headline = (protocols.get(preset).headline if preset else
              tuple(k for k, v in results.items()
                    if isinstance(v, (int, float)) and k != 'step'))
  shown = [k for k in headline if k in results]
  lines = [f'# {results["method"]} at step {results["step"]}'
           f'{f" -- preset {preset}" if preset else ""}', '',
           '| ' + ' | '.join(shown) + ' |',
           '|' + '---|' * len(shown),
           '| ' + ' | '.join(_fmt(results[k]) for k in shown) + ' |', '']
  lines.append(f'Images: {results.get("num_images")}; split '
               f'{results["split"]}; colorjax {results["colorjax_version"]};'
               f' {results["date"]}.')
  for name, protocol in results['protocol'].items():
    lines.append(f'- {name}: {protocol["data"]}, resolution '
                 f'{protocol["resolution"]}'
                 f'{", canvas " + str(protocol["canvas"]) if "canvas" in protocol else ""}')
  for path, digest in results['weights'].items():
    lines.append(f'- weights {os.path.basename(path)}: sha256 {digest[:16]}')
  for name, reason in results['skipped'].items():
    lines.append(f'- not run: {name} ({reason})')
  lines += ['', '## All metrics', '']
  for name, values in results['evals'].items():
    lines.append(f'- **{name}**: ' + ', '.join(
        f'{k} {_fmt(v)}' for k, v in sorted(values.items())))
  return '\n'.join(lines) + '\n'


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'a trained workdir')
  flags.DEFINE_enum('preset', None, protocols.names(),
                    'a named protocol (colorjax.protocols)')
  flags.DEFINE_enum('resolution', None, ['full', 'model'], 'full: score at '
                    'the photos\' own size (default without a preset); '
                    'model: at the model\'s input')
  flags.DEFINE_list('evals', None, 'evaluators to run (default: all but '
                    'summaries)')
  flags.DEFINE_string('split', None, 'default: each evaluator\'s split')
  flags.DEFINE_integer('max_batches', -1, '-1: the whole split')
  flags.DEFINE_integer('max_images', None, 'score the first N images')
  flags.DEFINE_integer('step', None, 'checkpoint step (default: latest)')
  flags.DEFINE_string('images', None, 'evaluate on this folder of photos')
  flags.DEFINE_string('image_folder', None, 'alias of --images')
  flags.DEFINE_string('labels', None, '--images: the class labels, '
                      '"folders" (one subfolder per class, sorted: ImageNet '
                      'val in wnid folders) or a file (places365_val.txt; '
                      'LOC_val_solution.csv): semantic interpretability '
                      'then scores top-1 accuracy against them')
  flags.DEFINE_string('output', None, 'also write the JSON here')
  flags.DEFINE_string('output_dir', None, 'JSON, markdown and plots (default:'
                      ' WORKDIR/eval/<preset>, or WORKDIR/eval/default '
                      'without a preset)')
  flags.DEFINE_enum('print', 'json', ['json', 'markdown', 'none'],
                    'what to print: the JSON (as written), the markdown '
                    'table, or nothing')
  flags.DEFINE_integer('diversity_samples', 2, 'samples per image for the '
                       'diversity metrics (sampling methods; < 2 skips it)')
  flags.DEFINE_string('lpips', None, 'LPIPS AlexNet v0.1 weights file')
  flags.DEFINE_string('fid_inception', None, 'pytorch-fid Inception file')
  flags.DEFINE_string('classifier', None, 'NAME:PATH, e.g. vgg16:PATH')
  flags.DEFINE_string('segmenter', None, 'reference segmenter: a file of '
                      "paper 004's DeepLab-v2 ResNet-101 (deeplabv2_resnet101"
                      '_msc-vocaug-20000.pth), NAME:PATH of another '
                      '(deeplabv3_resnet101:PATH), or a configs/segmenter.py '
                      'workdir')
  def _write_text(text, paths):
    for path in paths:
      os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
      with open(path, 'w') as f:
        f.write(text + '\n')

  flags.DEFINE_string('sequence', None, 'a colorized video or folder of '
                      'frames: report its flicker (no workdir needed)')
  flags.DEFINE_string('reference', None, '--sequence: the true colour '
                      'frames (video or folder), for the per-frame ab error')
  flags.register_multi_flags_validator(
      ['workdir', 'sequence'], lambda v: bool(v['workdir'] or v['sequence']),
      message='give --workdir (a trained run) or --sequence (a colorized '
      'video or frame folder)')

  def main(argv):
    del argv
    console.quiet_libraries(FLAGS.verbosity)
    if FLAGS.sequence:
      result = evaluate_sequence(FLAGS.sequence, FLAGS.reference)
      text = json.dumps(result, indent=1, sort_keys=True)
      print(text)
      _write_text(text, [FLAGS.output] if FLAGS.output else [])
      return
    output_dir = FLAGS.output_dir or os.path.join(
        FLAGS.workdir, 'eval', FLAGS.preset or protocols.DEFAULT_RESULTS)
    results = evaluate_workdir(
        FLAGS.workdir, FLAGS.split, FLAGS.max_batches, FLAGS.step,
        FLAGS.diversity_samples, FLAGS.evals,
        FLAGS.images or FLAGS.image_folder, FLAGS.preset, FLAGS.resolution,
        networks=dict(lpips=FLAGS.lpips, fid_inception=FLAGS.fid_inception,
                      classifier=FLAGS.classifier,
                      segmenter=FLAGS.segmenter),
        plots_dir=output_dir, progress=True, max_images=FLAGS.max_images,
        labels=FLAGS.labels)
    text = json.dumps(results, indent=1, sort_keys=True)
    if FLAGS.print == 'json':
      print(text)
    elif FLAGS.print == 'markdown':
      print(markdown(results))
    paths = [FLAGS.output] if FLAGS.output else []
    os.makedirs(output_dir, exist_ok=True)
    paths.append(os.path.join(output_dir, 'metrics.json'))
    with open(os.path.join(output_dir, 'metrics.md'), 'w') as f:
      f.write(markdown(results))
    _write_text(text, paths)
    print(f'wrote {output_dir}/metrics.json, metrics.md and '
          f'{len(results["plots"])} plots')

  cli.run(main)
