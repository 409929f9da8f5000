"""colorjax.writers: TensorBoard event files (tensorboardX) and metrics.jsonl,
read back with TensorBoard's EventAccumulator; no TensorFlow anywhere."""

import io
import json
import os
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from colorjax import writers


def _read_events(logdir, monkeypatch):
  """TensorBoard's reader, with TensorFlow hidden: reading needs no TF."""
  monkeypatch.setitem(sys.modules, 'tensorflow', None)
  from tensorboard.backend.event_processing import event_accumulator as ea  # pylint: disable=g-import-not-at-top
  acc = ea.EventAccumulator(str(logdir), size_guidance={
      ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0})
  acc.Reload()
  return acc


def _png(event):
  return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))


@pytest.fixture
def written(tmp_path, rng):
  workdir = tmp_path / 'run'
  grid = rng.integers(0, 256, (1, 6, 10, 3), dtype=np.uint8)
  floats = rng.random((2, 4, 5, 1)).astype(np.float32)
  writer = writers.create_writer(str(workdir))
  writer.write_hparams({'learning_rate': 1e-3, 'model': 'unet',
                        'optimizer': {'b1': 0.5}, 'seed': 7})
  writer.write_scalars(10, {'train/loss': np.float32(1.5),
                            'train/acc': jax.numpy.asarray(0.25)})
  writer.write_scalars(20, {'train/loss': 0.75, 'train/acc': 0.5})
  writer.write_images(20, {'eval/grid': grid, 'eval/gray': floats})
  writer.write_texts(20, {'note': 'hello *world*'})
  writer.write_histograms(20, {'weights': np.arange(100.0)}, {'weights': 10})
  writer.flush()
  writer.close()
  return workdir, grid, floats


def test_event_files_read_back(written, monkeypatch):
  workdir, grid, floats = written
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(workdir))
  acc = _read_events(workdir, monkeypatch)
  loss = acc.Scalars('train/loss')
  assert [(e.step, e.value) for e in loss] == [(10, 1.5), (20, 0.75)]
  assert [(e.step, e.value) for e in acc.Scalars('train/acc')] == [
      (10, 0.25), (20, 0.5)]
  # A batch of one under its key, exact pixels; a batch of N under key/i.
  (image,) = acc.Images('eval/grid')
  assert (image.step, image.height, image.width) == (20, 6, 10)
  np.testing.assert_array_equal(_png(image), grid[0])
  assert {'eval/gray/0', 'eval/gray/1'} <= set(acc.Tags()['images'])
  gray = _png(acc.Images('eval/gray/1')[0])[..., 0]
  np.testing.assert_array_equal(
      gray, np.round(floats[1, ..., 0] * 255).astype(np.uint8))
  (hist,) = acc.Histograms('weights')
  assert hist.step == 20 and hist.histogram_value.num == 100
  assert hist.histogram_value.sum == pytest.approx(4950.0)
  (text,) = acc.Tensors('note/text_summary')
  assert text.tensor_proto.string_val == [b'hello *world*']
  (table,) = acc.Tensors('hparams/text_summary')
  assert b'| optimizer.b1 | 0.5 |' in table.tensor_proto.string_val[0]
  assert '_hparams_/session_start_info' in acc.PluginTagToContent('hparams')


def test_metrics_jsonl(written):
  workdir, _, _ = written
  with open(workdir / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  assert records == [{'step': 10, 'train/loss': 1.5, 'train/acc': 0.25},
                     {'step': 20, 'train/loss': 0.75, 'train/acc': 0.5}]


def test_jsonl_appends_on_resume(tmp_path):
  for step in (1, 2):
    writer = writers.JsonLinesWriter(str(tmp_path / 'metrics.jsonl'))
    writer.write_scalars(step, {'loss': step / 4})
    writer.close()
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(line) for line in lines] == [
      {'step': 1, 'loss': 0.25}, {'step': 2, 'loss': 0.5}]


def test_other_processes_write_no_files(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, 'process_index', lambda: 1)
  writer = writers.create_writer(str(tmp_path / 'run'))
  writer.write_scalars(1, {'loss': 1.0})
  writer.write_images(1, {'grid': np.zeros((4, 4, 3), np.uint8)})
  writer.flush()
  writer.close()
  assert not (tmp_path / 'run').exists()


def test_bad_image_shape_is_an_error(tmp_path):
  writer = writers.TensorBoardWriter(str(tmp_path))
  with pytest.raises(ValueError, match='expected'):
    writer.write_images(0, {'x': np.zeros((4, 4), np.uint8)})
  writer.close()


_NO_TF = r'''
import sys
from colorjax import writers
from clu import metric_writers, periodic_actions
import numpy as np
w = writers.create_writer(sys.argv[1])
w.write_hparams({'lr': 0.1})
progress = periodic_actions.ReportProgress(num_train_steps=3, writer=w,
                                           every_steps=1)
for step in (1, 2, 3):
  w.write_scalars(step, {'loss': 1.0 / step})
  progress(step)
w.write_images(3, {'grid': np.zeros((1, 4, 4, 3), np.uint8)})
w.write_texts(3, {'t': 'x'})
w.write_histograms(3, {'h': np.ones(5)})
w.close()
loaded = sorted(m for m in sys.modules
                if m.split('.')[0] in ('tensorflow', 'torch'))
assert not loaded, loaded
'''


def test_writing_imports_no_tensorflow(tmp_path):
  """clu's writers + ReportProgress: neither TensorFlow nor torch loads."""
  result = subprocess.run(
      [sys.executable, '-c', _NO_TF, str(tmp_path / 'run')],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert (tmp_path / 'run' / 'metrics.jsonl').read_text().count('loss') == 3
