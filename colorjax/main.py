"""Trains (and resumes) any colorjax method.

  python -m colorjax.main --config=configs/chromacmc.py --workdir=DIR
  python -m colorjax.main --config=configs/chromacmc.py:demo --workdir=DIR \
      --config.num_train_steps=300

Library logs (orbax, grain, tfds) are hidden; --verbosity=1 shows them.
Multi-host: run the same command on every host. jax.distributed is
initialised from the cluster environment (SLURM, TPU pods, ...) or from
--coordinator_address/--num_processes/--process_id.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from colorjax import cli
from colorjax import console
from colorjax import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'configs/<paper>.py[:arg]',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'checkpoints, logs and the config')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0')
flags.DEFINE_integer('num_processes', None, 'number of JAX processes')
flags.DEFINE_integer('process_id', None, 'index of this process')
flags.DEFINE_bool('multihost', False, 'call jax.distributed.initialize() '
                  'with the cluster environment auto-detected')
flags.mark_flags_as_required(['config', 'workdir'])


def initialize_distributed():
  """Starts jax.distributed when several processes take part."""
  if FLAGS.coordinator_address:
    # Cross-process collectives between CPU devices (tests, laptops); the
    # setting does not affect GPU/TPU backends. Must precede backend start.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(FLAGS.coordinator_address,
                               FLAGS.num_processes, FLAGS.process_id)
  elif FLAGS.multihost:
    jax.distributed.initialize()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  console.quiet_libraries(FLAGS.verbosity)
  initialize_distributed()
  logging.info('process %d/%d, %d devices (%d local)', jax.process_index(),
               jax.process_count(), jax.device_count(),
               jax.local_device_count())
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  cli.run(main)
