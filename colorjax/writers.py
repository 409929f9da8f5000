"""clu metric writers without TensorFlow: TensorBoard event files + metrics.jsonl.

`create_writer(workdir)` returns a clu `MetricWriter`. On process 0 it logs
the scalars (absl), writes TensorBoard event files into `workdir` through
tensorboardX (numpy + protobuf; no TensorFlow) and appends the scalars to
`workdir/metrics.jsonl` (one JSON object per step, readable without
TensorBoard). Other processes only log.

clu (0.0.12) imports TensorFlow in `clu/metric_writers/__init__.py` (its
`summary_writer` submodule is the TF summary writer), and importing any
submodule (`interface`, `multi_writer`) or `clu.periodic_actions` runs that
`__init__` first. Importing this module puts a lazy stand-in for that one
submodule in `sys.modules` before clu's package is first imported, so
`clu.metric_writers` and `clu.periodic_actions` import without TensorFlow.
clu's own TF `SummaryWriter` (and `create_default_writer`) still work where
TensorFlow is installed: the stand-in imports the real class when one is
constructed. Import this module before anything imports `clu.metric_writers`.
"""

import json
import os
import sys
import types
from typing import Any, Mapping, Optional

from absl import logging
import jax
import numpy as np

_CLU_SUMMARY_WRITER = 'clu.metric_writers.summary_writer'


class _LazyTFSummaryWriter:
  """Stands in for clu's TF SummaryWriter; TensorFlow loads on construction."""

  def __new__(cls, *args, **kwargs):
    from clu.metric_writers.tf import summary_writer  # pylint: disable=g-import-not-at-top
    return summary_writer.SummaryWriter(*args, **kwargs)


def _import_clu_metric_writers():
  if 'clu.metric_writers' not in sys.modules:
    stub = types.ModuleType(
        _CLU_SUMMARY_WRITER, 'colorjax.writers: lazy clu TF SummaryWriter.')
    stub.SummaryWriter = _LazyTFSummaryWriter
    sys.modules.setdefault(_CLU_SUMMARY_WRITER, stub)
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers


metric_writers = _import_clu_metric_writers()
MetricWriter = metric_writers.MetricWriter


def _import_tensorboardx():
  """tensorboardX, without the `import torch` its writer module attempts.

  tensorboardX.writer tries `import torch` (only to accept torch tensors):
  2-3 s and ~200 MB where torch is installed (the test extra). We pass numpy
  arrays only, so torch is hidden while tensorboardX is first imported.
  """
  hide = 'tensorboardX' not in sys.modules and 'torch' not in sys.modules
  if hide:
    sys.modules['torch'] = None   # `import torch` raises ImportError
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
  finally:
    if hide and sys.modules.get('torch', 0) is None:
      del sys.modules['torch']
  return tensorboardX, summary


def _scalar(value) -> float:
  return float(np.asarray(value).item())


def _to_uint8(image: np.ndarray) -> np.ndarray:
  """uint8 as is; floats in [0, 1] scaled by 255; other integers clipped."""
  if image.dtype == np.uint8:
    return image
  if np.issubdtype(image.dtype, np.floating):
    image = np.round(image.astype(np.float64) * 255.0)
  return np.clip(image, 0, 255).astype(np.uint8)


def _flatten(d: Mapping[str, Any], prefix: str = ''):
  for k, v in d.items():
    if hasattr(v, 'items'):          # Mapping or ml_collections.ConfigDict
      yield from _flatten(v, f'{prefix}{k}.')
    else:
      yield f'{prefix}{k}', v


class TensorBoardWriter(MetricWriter):
  """Writes TensorBoard event files with tensorboardX.

  Scalars are `simple_value` summaries (EventAccumulator.Scalars); images
  are PNG image summaries: an [H, W, C] image or a batch of one under `key`,
  a batch of N > 1 under `key/0` ... `key/N-1` (C = 1, 3 or 4; uint8, or
  floats in [0, 1]); texts are text-plugin summaries; histograms use
  `num_buckets[key]` equal-width buckets (default 30, as tf.summary);
  hparams go to the HParams dashboard (a session-start summary, as clu's TF
  writer) and, as a markdown table, to the text summary `hparams`.
  Videos, audio and raw summaries are not supported (logged once).
  """

  def __init__(self, logdir: str, flush_secs: int = 30):
    super().__init__()
    tensorboardx, self._summary = _import_tensorboardx()
    self._writer = tensorboardx.SummaryWriter(
        logdir=logdir, flush_secs=flush_secs)

  def write_summaries(self, step: int, values: Mapping[str, Any],
                      metadata: Optional[Mapping[str, Any]] = None):
    logging.log_first_n(
        logging.WARNING, 'TensorBoardWriter: raw summaries are not written.', 1)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    for key, value in scalars.items():
      self._writer.add_scalar(key, _scalar(value), global_step=int(step))

  def write_images(self, step: int, images: Mapping[str, Any]):
    for key, value in images.items():
      value = np.asarray(value)
      if value.ndim == 3:
        value = value[None]
      if value.ndim != 4 or value.shape[-1] not in (1, 3, 4):
        raise ValueError(f'image {key!r}: expected [N, H, W, C] or [H, W, C] '
                         f'with C in (1, 3, 4), got shape {value.shape}')
      for i, image in enumerate(value):
        tag = key if len(value) == 1 else f'{key}/{i}'
        self._writer.add_image(tag, _to_uint8(image), global_step=int(step),
                               dataformats='HWC')

  def write_videos(self, step: int, videos: Mapping[str, Any]):
    logging.log_first_n(
        logging.WARNING, 'TensorBoardWriter: videos are not written.', 1)

  def write_audios(self, step: int, audios: Mapping[str, Any], *,
                   sample_rate: int):
    logging.log_first_n(
        logging.WARNING, 'TensorBoardWriter: audio is not written.', 1)

  def write_texts(self, step: int, texts: Mapping[str, str]):
    for key, text in texts.items():
      self._writer.add_text(key, str(text), global_step=int(step))

  def write_histograms(self, step: int, arrays: Mapping[str, Any],
                       num_buckets: Optional[Mapping[str, int]] = None):
    for key, values in arrays.items():
      buckets = (num_buckets or {}).get(key) or 30
      values = np.asarray(values, dtype=np.float64).reshape(-1)
      self._writer.add_histogram(key, values, global_step=int(step),
                                 bins=int(buckets))

  def write_hparams(self, hparams: Mapping[str, Any]):
    flat = {k: '' if v is None else v if isinstance(v, (bool, int, float, str))
            else str(v) for k, v in _flatten(hparams)}
    _, session_start, _ = self._summary.hparams(flat, {})
    self._writer.file_writer.add_summary(session_start, global_step=0)
    table = ['| hparam | value |', '|---|---|']
    table += [f'| {k} | {v} |' for k, v in sorted(flat.items())]
    self._writer.add_text('hparams', '\n'.join(table), global_step=0)

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


class JsonLinesWriter(MetricWriter):
  """Scalars as one JSON object per line ({"step": s, name: value, ...}).

  Appends to `path`; other summaries are ignored (they go to TensorBoard).
  """

  def __init__(self, path: str):
    super().__init__()
    self._file = open(path, 'a')

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    record = {'step': int(step)}
    record.update({k: _scalar(v) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + '\n')

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def write_hparams(self, hparams):
    pass

  def flush(self):
    self._file.flush()

  def close(self):
    self._file.close()


def create_writer(workdir: str) -> MetricWriter:
  """Process 0: log + TensorBoard events in `workdir` + metrics.jsonl.

  Other processes: log only (no files), as clu's
  create_default_writer(just_logging=True).
  """
  if jax.process_index() != 0:
    return metric_writers.MultiWriter([metric_writers.LoggingWriter()])
  os.makedirs(workdir, exist_ok=True)
  return metric_writers.MultiWriter([
      metric_writers.LoggingWriter(),
      TensorBoardWriter(workdir),
      JsonLinesWriter(os.path.join(workdir, 'metrics.jsonl'))])
