"""Every command-line tool turns expected failures into one message on
stderr and exit status 2, without a traceback (colorjax.cli); --verbosity=1
or COLORJAX_TRACEBACK=1 brings the traceback back.

The commands run together, each `python -m <tool>` in its own process
forked from one Python that imported jax, flax and tfds once
(tests/forked_tools.py: 18 fresh interpreters spent a minute of CPU on
imports); each test reads its tool's exit status and streams.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from conftest import shared_across_workers

TRACEBACK = 'Traceback (most recent call last)'


def _commands(tmp, port):
  none = os.path.join(tmp, 'does_not_exist')
  tfds_dir = os.path.join(tmp, 'tfds')
  return {
      'main_missing_dataset': (
          ['colorjax.main', '--config=configs/chromacmc.py',
           f'--workdir={tmp}/w', f'--config.data.data_dir={tfds_dir}'], {}),
      'main_missing_dataset_traceback': (
          ['colorjax.main', '--config=configs/chromacmc.py',
           f'--workdir={tmp}/w2', f'--config.data.data_dir={tfds_dir}'],
          {'COLORJAX_TRACEBACK': '1'}),
      'main_bad_override': (
          ['colorjax.main', '--config=configs/chromacmc.py:demo',
           f'--workdir={tmp}/w3', '--config.optimiser.learning_rate=1'], {}),
      'main_bad_config_file': (
          ['colorjax.main', '--config=configs/chromacnc.py',
           f'--workdir={tmp}/w4'], {}),
      'main_bad_choice': (
          ['colorjax.main', '--config=configs/chromacmc.py:demo',
           f'--workdir={tmp}/w5', '--config.loss.cmc_scale=metres',
           f'--config.data.data_dir={tfds_dir}'], {}),
      'colorize_missing_workdir': (
          ['colorjax.colorize', f'--workdir={none}', f'--input={tmp}',
           f'--output={tmp}/out'], {}),
      'colorize_missing_weights': (
          ['colorjax.colorize', f'--pretrained=eccv16:{none}.pth',
           f'--input={tmp}', f'--output={tmp}/out'], {}),
      'colorize_missing_weights_verbose': (
          ['colorjax.colorize', f'--pretrained=eccv16:{none}.pth',
           f'--input={tmp}', f'--output={tmp}/out', '--verbosity=1'], {}),
      'evaluate_missing_workdir': (
          ['colorjax.evaluate', f'--workdir={none}'], {}),
      'evaluate_nothing_to_evaluate': (['colorjax.evaluate'], {}),
      'evaluate_missing_sequence': (
          ['colorjax.evaluate', f'--sequence={none}'], {}),
      'evaluate_bad_flag': (
          ['colorjax.evaluate', f'--workdir={none}', '--preset=paper999'],
          {}),
      'compare_no_results': (['colorjax.compare', tmp], {}),
      'compare_no_arguments': (['colorjax.compare'], {}),
      'editor_busy_port': (
          ['colorjax.editor', f'--workdir={none}', f'--port={port}'], {}),
      'prepare_missing_manual_dir': (
          ['colorjax.datasets.prepare', '--dataset=voc2012_aug',
           f'--manual_dir={none}', f'--data_dir={tfds_dir}'], {}),
      'prepare_unknown_dataset': (
          ['colorjax.datasets.prepare', '--dataset=voc2099',
           f'--data_dir={tfds_dir}'], {}),
      'scene_labels_missing_teacher': (
          ['colorjax.datasets.scene_labels', '--dataset=semantic_shapes/test',
           f'--teacher=vgg16:{none}.pth', f'--data_dir={tfds_dir}'], {}),
      'benchmark_no_name': (['colorjax.benchmark'], {}),
      'benchmark_missing_config': (
          ['colorjax.benchmark', 'train', f'--config={none}.py'], {}),
      'benchmark_without_config': (['colorjax.benchmark', 'model'], {}),
  }


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  """{case: CompletedProcess-like (returncode, stdout, stderr)}; one set of
  commands per run (shared by the xdist workers)."""
  def build(tmp):
    with socket.socket() as busy:
      busy.bind(('127.0.0.1', 0))
      busy.listen(1)
      port = busy.getsockname()[1]
      cases = {case: {'module': args[0], 'args': args[1:], 'env': extra_env,
                      'unset': ['COLORJAX_TRACEBACK']}
               for case, (args, extra_env) in _commands(tmp, port).items()}
      streams = os.path.join(tmp, 'streams')
      os.makedirs(streams)
      runner = subprocess.run(
          [sys.executable, os.path.join(REPO, 'tests', 'forked_tools.py'),
           f'--dir={streams}'], cwd=REPO, input=json.dumps(cases),
          capture_output=True, text=True, timeout=600, check=False)
    assert runner.returncode == 0, runner.stderr[-3000:]
    out = {}
    for case, status in json.loads(runner.stdout).items():
      with open(os.path.join(streams, f'{case}.stdout')) as f:
        stdout = f.read()
      with open(os.path.join(streams, f'{case}.stderr')) as f:
        stderr = f.read()
      out[case] = (status, stdout, stderr)
    return out
  return shared_across_workers(tmp_path_factory, 'cli_errors', build)


def _check(results, case, *phrases):
  """Exit status 2, one `<tool>: error:` message naming `phrases`, no
  traceback."""
  status, stdout, stderr = results[case]
  assert status == 2, (case, status, stdout[-2000:], stderr[-3000:])
  assert TRACEBACK not in stderr, (case, stderr[-3000:])
  assert stderr.count(': error: ') == 1, (case, stderr[-3000:])
  for phrase in phrases:
    assert phrase in stderr, (case, phrase, stderr[-3000:])
  return stderr


def test_main(results):
  stderr = _check(results, 'main_missing_dataset',
                  "colorjax.main: error: dataset 'voc2012_aug'",
                  'python -m colorjax.datasets.prepare --dataset=voc2012_aug',
                  ':demo')
  assert len(stderr.strip().splitlines()) <= 6, stderr
  _check(results, 'main_bad_override', 'no field optimiser')
  _check(results, 'main_bad_config_file', 'cannot load the config file',
         'configs/chromacnc.py')
  _check(results, 'main_bad_choice', 'cmc_scale', "'metres'")
  status, _, stderr = results['main_missing_dataset_traceback']
  assert status != 0 and TRACEBACK in stderr, stderr[-2000:]


def test_colorize(results):
  _check(results, 'colorize_missing_workdir', 'colorjax.colorize: error:',
         'config.json not found', 'colorjax workdir')
  _check(results, 'colorize_missing_weights', 'does_not_exist.pth')
  status, _, stderr = results['colorize_missing_weights_verbose']
  assert status != 0 and TRACEBACK in stderr, stderr[-2000:]


def test_evaluate(results):
  _check(results, 'evaluate_missing_workdir', 'colorjax.evaluate: error:',
         'colorjax workdir')
  _check(results, 'evaluate_bad_flag', '--preset', 'paper999',
         '--helpshort')
  _check(results, 'evaluate_nothing_to_evaluate', 'give --workdir',
         '--sequence')
  _check(results, 'evaluate_missing_sequence', 'neither a video nor a '
         'folder of frames')


def test_compare(results):
  _check(results, 'compare_no_results', 'colorjax.compare: error:',
         'no evaluation results', 'colorjax.evaluate --workdir=')
  _check(results, 'compare_no_arguments', 'name at least one workdir')


def test_editor_busy_port(results):
  # The port is checked before the (slow) model load: the workdir that
  # does not exist is never reached.
  _check(results, 'editor_busy_port', 'colorjax.editor: error: cannot '
         'listen on 127.0.0.1', '--port=0')


def test_datasets_prepare(results):
  stderr = _check(results, 'prepare_missing_manual_dir',
                  'colorjax.datasets.prepare: error: voc2012_aug: '
                  'manual_dir is missing or empty', 'Expected layout',
                  'Where to obtain it')
  assert '\\n' not in stderr, stderr      # no repr'd inner message
  _check(results, 'prepare_unknown_dataset', 'voc2099')


def test_datasets_scene_labels(results):
  _check(results, 'scene_labels_missing_teacher',
         'colorjax.datasets.scene_labels: error:', 'does_not_exist.pth')


def test_benchmark(results):
  _check(results, 'benchmark_no_name', 'colorjax.benchmark: error: name a '
         'benchmark', 'train')
  _check(results, 'benchmark_missing_config', 'does_not_exist.py')
  _check(results, 'benchmark_without_config', 'needs --config')
