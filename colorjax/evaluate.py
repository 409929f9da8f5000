"""Computes a trained workdir's metrics on a split.

  python -m colorjax.evaluate --workdir=DIR [--split=val] [--max_batches=N]
      [--output=metrics.json]

Prints PSNR, SSIM (RGB), image entropy, mean IoU of the segmentation head,
and the PSNR of the gray (ab = 0) baseline on the same images, as JSON;
for sampling methods (PixSem) also the sample diversity: the mean SSIM
between pairs of samples of the same input (paper 004 section 4.5).
"""

import json

from absl import app
from absl import flags

from colorjax import evaluation
from colorjax import train
from colorjax.data import pipeline


def evaluate_workdir(workdir: str, split=None, max_batches=None, step=None,
                     diversity_samples: int = 2):
  config = train.load_config(workdir)
  method, state = train.restore_for_inference(workdir, config, step)
  evaluator = evaluation.Evaluator(method, config, pipeline.data_mesh(),
                                   split=split, max_batches=max_batches)
  results = evaluator.evaluate(state)
  if hasattr(method, 'sample') and diversity_samples >= 2:
    results.update(evaluator.sample_diversity(state, diversity_samples))
  results['split'] = evaluator.spec.split
  results['step'] = int(state.step)
  return results


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'a trained workdir')
  flags.DEFINE_string('split', None, 'default: the config\'s eval split')
  flags.DEFINE_integer('max_batches', -1, '-1: the whole split')
  flags.DEFINE_integer('step', None, 'checkpoint step (default: latest)')
  flags.DEFINE_string('output', None, 'also write the JSON here')
  flags.DEFINE_integer('diversity_samples', 2, 'samples per image for the '
                       'diversity SSIM (sampling methods; < 2 skips it)')
  flags.mark_flag_as_required('workdir')

  def main(argv):
    del argv
    results = evaluate_workdir(FLAGS.workdir, FLAGS.split, FLAGS.max_batches,
                               FLAGS.step, FLAGS.diversity_samples)
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    if FLAGS.output:
      with open(FLAGS.output, 'w') as f:
        f.write(text + '\n')

  app.run(main)
