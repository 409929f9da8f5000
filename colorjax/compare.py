"""Puts evaluation results of several workdirs side by side.

  python -m colorjax.compare W1 W2 ... [--preset=paper004] [--output=DIR]
  # Train and evaluate every method and its ablations (colorjax.suite):
  python -m colorjax.compare --suite=demo [--quick] [--seeds=N] \
      [--images=N] [--only=chromacmc,pixsem/embedding] [--output=DIR]
  python -m colorjax.compare --suite=paper --data_dir=DIR --dry_run [--cost]

Each argument is a workdir (its `eval/<preset>/metrics.json`, written by
`python -m colorjax.evaluate --preset=...`) or a metrics.json file. The
results must come from the same protocol -- preset, data and split, the
resolution protocol and canvas, image limit and count, and the same
reference-network files (SHA-256) -- or compare refuses, naming what
differs: numbers from different protocols are not comparable. Writes a
markdown table (the preset's headline metrics) and a CSV (every metric).

`--suite` runs colorjax.suite (see its docstring): the runs' results,
checked to share one protocol per evaluation dataset, go into a table of
means and spreads over seeds (`seed_tables`), a CSV and a figure.
"""

# The command line only (its docstring is its --help): finding, reading,
# checking and tabulating results is colorjax.results (`seed_tables` too),
# the suite colorjax.suite.

import os
import sys
from typing import List

from absl import app
from absl import flags

from colorjax import cli
from colorjax import console
from colorjax import protocols
from colorjax import results
from colorjax import suite as suite_lib

FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_enum('preset', None,
                    [protocols.DEFAULT_RESULTS] + protocols.names(),
                    'which results of each workdir (default: its only '
                    'eval/<preset>; "default": evaluate\'s without a preset);'
                    ' with '
                    f'--suite: the evaluation (default '
                    f'{suite_lib.SUITE_PRESET})')
  flags.DEFINE_string('output', None, 'folder for comparison.md and .csv; '
                      'with --suite: the suite\'s folder (default '
                      'suite_<kind>)')
  flags.DEFINE_enum('suite', None, list(suite_lib.SUITES), 'train and '
                    'evaluate every method and its ablations '
                    '(colorjax.suite) instead of comparing workdirs')
  flags.DEFINE_bool('quick', False, '--suite=demo on the :tiny twins with a '
                    'tiny budget (minutes; CI)')
  flags.DEFINE_integer('images', None, 'training images per run (default: '
                       + ', '.join(f'{k} {v:,}' for k, v in
                                   suite_lib.DEFAULT_IMAGES.items()) + ')')
  flags.DEFINE_integer('seeds', 1, 'seeds 0..N-1 of every run')
  flags.DEFINE_list('only', None, 'methods or method/variant to run, e.g. '
                    'chromacmc,pixsem/embedding')
  flags.DEFINE_string('data_dir', None, 'tfds data_dir of every run '
                      '(--suite=paper: where the datasets are prepared)')
  flags.DEFINE_string('shapes', None, 'semantic_shapes build config of the '
                      'demo suites (default: the configs\' 64)')
  flags.DEFINE_integer('max_images', None, 'evaluation images per run '
                       '(default: ' + ', '.join(
                           f'{k} {v:,}' for k, v in
                           suite_lib.DEFAULT_EVAL_IMAGES.items()) + ')')
  flags.DEFINE_multi_string('override', [], 'METHOD:KEY=VALUE (METHOD or '
                            '*): --config.KEY=VALUE for that method\'s runs')
  flags.DEFINE_bool('dry_run', False, 'print the planned runs (commands and '
                    'config overrides) and stop')
  flags.DEFINE_bool('cost', False, 'with --dry_run: each run\'s training '
                    'FLOPs (XLA cost analysis of its train step) and the '
                    'device-hours of the whole suite (an estimate)')

  def main(argv):
    if FLAGS.suite:
      if len(argv) > 1:
        raise app.UsageError('--suite takes no workdir arguments')
      if FLAGS.cost and not FLAGS.dry_run:
        raise app.UsageError('--cost estimates a plan: use it with --dry_run')
      kind = 'quick' if FLAGS.quick else FLAGS.suite
      console.quiet_libraries(FLAGS.verbosity)   # as the trainer's CLI
      try:
        result = suite_lib.run_suite(
            FLAGS.suite, FLAGS.output or f'suite_{kind}', FLAGS.quick,
            FLAGS.images, FLAGS.seeds, FLAGS.only, FLAGS.data_dir,
            FLAGS.shapes, FLAGS.preset, FLAGS.max_images, FLAGS.override,
            FLAGS.dry_run, argv=['python', '-m', 'colorjax.compare'] +
            sys.argv[1:], cost=FLAGS.cost)
      except (ValueError, KeyError) as e:   # the plan's own checks
        cli.fail(cli.message(e))
      sys.exit(1 if result['failed'] else 0)
    paths: List[str] = argv[1:]
    if len(paths) < 1:
      raise app.UsageError('name at least one workdir or metrics.json')
    runs = results.compare(paths, FLAGS.preset)   # errors: cli prints them, status 2
    text, table = results.tables(runs)
    print(text)
    if FLAGS.output:
      os.makedirs(FLAGS.output, exist_ok=True)
      with open(os.path.join(FLAGS.output, 'comparison.md'), 'w') as f:
        f.write(text)
      with open(os.path.join(FLAGS.output, 'comparison.csv'), 'w') as f:
        f.write(table)

  cli.run(main)
