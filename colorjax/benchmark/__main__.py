"""Benchmarks, each printed as a ratio against a baseline run in the same call.

  python -m colorjax.benchmark pipeline [--dataset=semantic_shapes/256]
      [--batch_size=32] [--num_batches=30] [--workers=2]
      [--config=configs/chromacmc.py]
  python -m colorjax.benchmark train --config=configs/chromacmc.py[:demo]
      [--batch_size=16] [--steps=5] [--torch_peer]
  python -m colorjax.benchmark model --config=configs/chromacmc.py
  python -m colorjax.benchmark sample --config=configs/pixsem.py
      [--num_samples=8] [--steps=5]
  python -m colorjax.benchmark sample_scaling --config=configs/pixsem.py
      [--sizes=64,128,256] [--sample_counts=1,8,32] [--num_samples=8]
  python -m colorjax.benchmark infer --config=configs/semanticdriven.py
      [--batch_size=1] [--steps=5]
  python -m colorjax.benchmark editor --config=configs/semanticdriven.py
      [--workdir=W] [--photo=P] [--steps=5]
  python -m colorjax.benchmark folder (--workdir=W | --config=C)
      [--num_photos=200] [--photos=FOLDER] [--batch_size=8] [--workers=N]
      [--cli_photos=5]
  python -m colorjax.benchmark flicker --workdir=W [--frames=30]
      [--frame_size=128] [--num_samples=1]
  python -m colorjax.benchmark upsampling [--photos=FILES_OR_FOLDERS]
      [--resolution=256] [--figure=docs/upsampling.png]

pipeline: images/s of the grain input pipeline running a config's
`data.preprocess_train` (default: paper 000's, configs/chromacmc.py: resize
the short side to 256, random 256 crop, flip, Lab, equalised L,
normalisation) against a plain single-process PIL + numpy loop doing the
same work, with the same op arguments, on the same records.

sample: PixSem's cached sampler against the naive one (a full generator pass
per pixel), and the cached sampler's per-pixel step against its FLOP bound:
the arithmetic of a teacher-forced generator pass over the same samples
(every pixel computed once, which the cached sampler spreads over its loop;
XLA's cost analysis) at the device's peak. sample_scaling: the cached
sampler over image sizes and samples per image (time per pixel step should
stay flat: linear in pixels).

infer: images/s of SemanticDriven's GridNet + colorizer at 352x352 (or the
config's size), JAX against the same networks in PyTorch with the same
weights (benchmarks/torch_semanticdriven.py); the outputs are compared too.

editor: the editor's stroke-to-update latency (the page's request after a
stroke: map PNG in, colorize, result PNG out) against the model call alone.

folder: images/s of `colorize` on a folder of mixed-size photos (made from
scikit-image's bundled photos unless --photos), streaming, against a loop
of single-photo colorize calls in the same process (warm: model loaded)
and, with --workdir, a loop of `python -m colorjax.colorize` processes.

flicker: a sequence made here (a disc crossing a static semantic_shapes
scene, sensor noise on each frame) colorized frame by frame and with the
temporal filter: flicker and ab error of each (evaluate --sequence).

upsampling: an oracle for colorize's chroma upsamplers, no model needed:
each photo's true ab shrunk to the network's resolution and upsampled back
onto its true L (bilinear, guided); ab error over the photo and near L's
edges, guided against bilinear (default photos: scikit-image's bundled
colour photos and a synthetic 1536 px scene).

train: images/s of one train step, JAX against the PyTorch peer
(benchmarks/torch_chromacmc.py); `--profile=N` adds a per-op XLA profile.
Every timed section reports `other_cpu`, the share of the machine's CPU time
that other processes used while it ran: on a small machine a single busy
neighbour moves the JAX/PyTorch ratio from 0.57 to 1.09 (measured on 2
cores), so a ratio is comparable only when both were timed on a quiet machine.
"""

# This file holds the command line only (the docstring above is its --help):
# the flags, and one runner per benchmark that turns them into the
# arguments of a function in this package's modules (common, pipeline,
# train, sample, infer, editor), which never read flags.

import datetime
import json
import os
import sys

from absl import app
from absl import flags

from colorjax import cli
from colorjax import console
from colorjax import errors
from colorjax.benchmark import common
from colorjax.benchmark import editor
from colorjax.benchmark import flicker
from colorjax.benchmark import folder
from colorjax.benchmark import infer
from colorjax.benchmark import pipeline
from colorjax.benchmark import sample
from colorjax.benchmark import train
from colorjax.benchmark import upsampling

flags.DEFINE_string('dataset', 'semantic_shapes/256', 'tfds dataset')
flags.DEFINE_string('split', 'train', 'split')
flags.DEFINE_string('data_dir', None, 'tfds data_dir')
flags.DEFINE_integer('batch_size', 32, 'images per batch')
flags.DEFINE_integer('num_batches', 30, 'batches timed (after 2 warm-up)')
flags.DEFINE_integer('workers', 2, 'grain worker processes')
flags.DEFINE_string('config', None, 'configs/<paper>.py[:arg] (train, model, '
                    'sample; pipeline: the config whose data.preprocess_train '
                    'it runs, default configs/chromacmc.py)')
flags.DEFINE_integer('steps', 5, 'timed train steps (after 2 warm-up)')
flags.DEFINE_bool('torch_peer', True, 'also time the PyTorch peer step')
flags.DEFINE_string('dtype', None, 'override config.model.dtype')
flags.DEFINE_multi_string(
    'set', [], 'KEY=VALUE: a config override, as --config.KEY=VALUE does '
    'for main (e.g. --set=model.grouped_conv=matmul); repeatable')
flags.DEFINE_string('output', None, 'also write the JSON report here, with '
                    'the date and the command (benchmarks/results/)')
flags.DEFINE_integer('profile', 0, 'train: also profile this many steps per '
                     'XLA op (top ops and time per primitive)')
flags.DEFINE_string('profile_dir', None, 'train: keep the profiler trace here '
                    '(default: a temporary folder)')
flags.DEFINE_integer('num_samples', 8, 'samples per image (sample)')
flags.DEFINE_bool('naive', True, 'also time the naive sampler (sample)')
flags.DEFINE_list('sizes', ['64', '128', '256'],
                  'sample_scaling: image sizes, each with --num_samples')
flags.DEFINE_list('sample_counts', ['1', '8', '32'],
                  'sample_scaling: samples per image, at the config size')
flags.DEFINE_integer('naive_pixels', 0,
                     'time the naive sampler on only the first N of its n '
                     'pixel steps (each one full generator pass) and '
                     'extrapolate to n; 0: all (sample)')
flags.DEFINE_string('workdir', None, 'editor: a trained workdir (default: '
                    'the --config model, randomly initialised)')
flags.DEFINE_string('photo', None, 'editor: the photo to edit (default: a '
                    'synthetic 640x480 scene)')
flags.DEFINE_multi_string('photos', [], 'upsampling, folder: photo files or '
                          'folders (default: scikit-image\'s colour photos '
                          'and a synthetic scene)')
flags.DEFINE_integer('num_photos', 200, 'folder: mixed-size photos made '
                     'from scikit-image\'s bundled photos')
flags.DEFINE_integer('cli_photos', 5, 'folder (with --workdir): photos '
                     'timed through one `python -m colorjax.colorize` '
                     'process each')
flags.DEFINE_integer('frames', 30, 'flicker: frames in the sequence')
flags.DEFINE_integer('frame_size', 128, 'flicker: frame height and width')
flags.DEFINE_integer('resolution', 256, 'upsampling: the network '
                     'resolution (short side) the true ab is shrunk to',
                     lower_bound=8)
flags.DEFINE_string('figure', None, 'upsampling: write a picture of '
                    '--figure_photo: crops of the edge where guided gains '
                    'most (truth | bilinear | guided)')
flags.DEFINE_string('figure_photo', 'astronaut.png', 'upsampling: the '
                    'photo (file name) the figure shows')
FLAGS = flags.FLAGS


def _config(spec=None):
  """--config (or `spec`) with --dtype and --set applied."""
  if not (spec or FLAGS.config):
    raise errors.ConfigError('this benchmark needs --config (e.g. '
                             '--config=configs/chromacmc.py:tiny)')
  return common.load_config(spec or FLAGS.config, FLAGS.dtype, FLAGS.set)


def _batch_size(default):
  """--batch_size where given, else `default` (its default is the
  pipeline's)."""
  return FLAGS.batch_size if FLAGS['batch_size'].present else default


def run_pipeline():
  return pipeline.benchmark_pipeline(
      _config(FLAGS.config or pipeline.PIPELINE_CONFIG),
      FLAGS.config or os.path.relpath(pipeline.PIPELINE_CONFIG),
      FLAGS.dataset, FLAGS.split, FLAGS.data_dir, FLAGS.batch_size,
      FLAGS.num_batches, FLAGS.workers)


def run_train():
  config = _config()
  return train.benchmark_train(
      config, FLAGS.config, _batch_size(config.data.batch_size), FLAGS.steps,
      torch_peer=FLAGS.torch_peer, profile=FLAGS.profile,
      profile_dir=FLAGS.profile_dir)


def run_model():
  return train.benchmark_model(_config(), FLAGS.config)


def run_sample():
  return sample.benchmark_sample(
      _config(), FLAGS.config, FLAGS.num_samples, FLAGS.steps,
      naive=FLAGS.naive, naive_pixels=FLAGS.naive_pixels)


def run_sample_scaling():
  return sample.benchmark_sample_scaling(
      FLAGS.config, FLAGS.sizes, FLAGS.sample_counts, FLAGS.num_samples,
      FLAGS.steps, dtype=FLAGS.dtype, overrides=FLAGS.set)


def run_infer():
  return infer.benchmark_infer(_config(), FLAGS.config, _batch_size(1),
                               FLAGS.steps, torch_peer=FLAGS.torch_peer)


def run_editor():
  return editor.benchmark_editor(
      FLAGS.workdir, None if FLAGS.workdir else _config(), FLAGS.config,
      FLAGS.photo, FLAGS.steps)


def run_folder():
  return folder.benchmark_folder(
      FLAGS.workdir, None if FLAGS.workdir else _config(), FLAGS.config,
      FLAGS.photos, FLAGS.num_photos, _batch_size(8),
      FLAGS.workers if FLAGS['workers'].present else None, FLAGS.cli_photos)


def run_flicker():
  if not FLAGS.workdir:
    raise errors.ConfigError('benchmark flicker needs --workdir (a trained '
                             'run)')
  return flicker.benchmark_flicker(
      FLAGS.workdir, FLAGS.frames, FLAGS.frame_size,
      FLAGS.num_samples if FLAGS['num_samples'].present else 1)


def run_upsampling():
  return upsampling.benchmark_upsampling(FLAGS.photos, FLAGS.resolution,
                                         FLAGS.figure, FLAGS.figure_photo)


BENCHMARKS = {'pipeline': run_pipeline, 'train': run_train,
              'model': run_model, 'sample': run_sample,
              'sample_scaling': run_sample_scaling,
              'infer': run_infer, 'editor': run_editor,
              'folder': run_folder, 'flicker': run_flicker,
              'upsampling': run_upsampling}


def main(argv):
  if len(argv) < 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError('name a benchmark: python -m colorjax.benchmark '
                         f'{{{",".join(BENCHMARKS)}}} [--flags]')
  console.quiet_libraries(FLAGS.verbosity)
  report = BENCHMARKS[argv[1]]()
  if FLAGS.output and report:
    report = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'),
              'command': ' '.join(['python -m colorjax.benchmark'] + [
                  a for a in sys.argv[1:] if not a.startswith('--output')]),
              **report}
    directory = os.path.dirname(FLAGS.output)
    if directory:
      os.makedirs(directory, exist_ok=True)
    with open(FLAGS.output, 'w') as f:
      json.dump(report, f, indent=1, default=str)


if __name__ == '__main__':
  cli.run(main)
