"""Runs a trained workdir's evaluators (config.evals) and prints JSON.

  python -m colorjax.evaluate --workdir=DIR [--evals=val,val_segmentation]
      [--split=val] [--max_batches=N] [--step=S] [--output=metrics.json]
  # Any folder of photos, no labels needed (colour metrics against the
  # photos' own colours, and a summary grid):
  python -m colorjax.evaluate --workdir=DIR --image_folder=photos/

The JSON holds every metric (PSNR, SSIM, entropy, gray-baseline PSNR, ab
error, mIoU, top-k, sample diversity: whatever the evaluators compute),
flat, plus `evals` ({evaluator: metrics}), the split and the step.
"""

import json
import os

from absl import app
from absl import flags
import ml_collections

from colorjax import console
from colorjax import evaluation
from colorjax import sharding
from colorjax import workdir as workdir_lib


def evaluate_workdir(workdir: str, split=None, max_batches=None, step=None,
                     diversity_samples: int = 2, names=None,
                     image_folder=None):
  """{metric: value, ..., 'evals': {name: {...}}, 'split', 'step'}."""
  config = workdir_lib.load_config(workdir)
  method, state = workdir_lib.restore_for_inference(workdir, config, step)
  evals = ml_collections.ConfigDict(
      (config.get('evals') or evaluation.default_evals(config)).to_dict())
  if image_folder:
    evals = ml_collections.ConfigDict({
        'folder': dict(type='colour', dataset='image_folder',
                       path=image_folder),
        'folder_samples': dict(type='summary', dataset='image_folder',
                               path=image_folder, num_images=8)})
  for name, cfg in evals.items():
    if split and cfg.get('dataset') in (None, config.data.dataset):
      cfg.split = split
    if max_batches is not None and max_batches >= 0:
      cfg.max_images = max_batches * (cfg.get('batch_size') or
                                      config.data.eval_batch_size)
    if cfg.type == 'diversity':
      cfg.num_samples = diversity_samples
  if names is None:
    names = [n for n, c in evals.items() if c.type != 'summary' and not (
        c.type == 'diversity' and diversity_samples < 2)]
  runner = evaluation.Evaluation(method, config, sharding.data_mesh(), evals,
                                 names)
  results = runner.run(state)
  flat = evaluation.flatten(results)
  flat['evals'] = results
  first = evals[names[0]]
  flat['split'] = ('all' if first.get('dataset') == 'image_folder' else
                   first.get('split') or config.data.eval_split)
  flat['step'] = int(state.step)
  return flat


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'a trained workdir')
  flags.DEFINE_list('evals', None, 'evaluators to run (default: all but '
                    'summaries)')
  flags.DEFINE_string('split', None, 'default: each evaluator\'s split')
  flags.DEFINE_integer('max_batches', -1, '-1: the whole split')
  flags.DEFINE_integer('step', None, 'checkpoint step (default: latest)')
  flags.DEFINE_string('image_folder', None, 'evaluate on this folder of '
                      'photos instead of the config\'s evaluators')
  flags.DEFINE_string('output', None, 'also write the JSON here')
  flags.DEFINE_integer('diversity_samples', 2, 'samples per image for the '
                       'diversity SSIM (sampling methods; < 2 skips it)')
  flags.mark_flag_as_required('workdir')

  def main(argv):
    del argv
    console.quiet_libraries(FLAGS.verbosity)
    results = evaluate_workdir(FLAGS.workdir, FLAGS.split, FLAGS.max_batches,
                               FLAGS.step, FLAGS.diversity_samples,
                               FLAGS.evals, FLAGS.image_folder)
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    if FLAGS.output:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)),
                  exist_ok=True)
      with open(FLAGS.output, 'w') as f:
        f.write(text + '\n')

  app.run(main)
