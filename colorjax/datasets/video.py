"""Video files in and out, as uint8 RGB frames, through imageio-ffmpeg
(a wheel from PyPI that carries its own ffmpeg binary: no system codec
needed). Optional: without it a clear message says to install it, or to
extract the frames into a folder (`colorize --sequence`)."""

import contextlib
import dataclasses
from typing import Iterator, Optional, Tuple
import warnings

import numpy as np

from colorjax import errors
from colorjax.datasets import imaging

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.m4v', '.avi', '.mkv', '.webm', '.mpg',
                    '.mpeg', '.wmv')


def is_video(path: str) -> bool:
  return path.lower().endswith(VIDEO_EXTENSIONS)


@contextlib.contextmanager
def _starting_ffmpeg():
  """imageio-ffmpeg starts ffmpeg with a preexec_fn (its own process group,
  so Ctrl-C reaches Python first), which makes subprocess fork, and JAX
  warns about every fork of a multithreaded process. The child only execs
  ffmpeg (no JAX in it): that warning is noise here."""
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called',
                            category=RuntimeWarning)
    yield


def _ffmpeg():
  try:
    import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.ConfigError(
        'video files need imageio-ffmpeg (pip install imageio-ffmpeg, or '
        'pip install -e .[video]); or extract the frames into a folder and '
        'colorize it with --sequence') from e
  return imageio_ffmpeg


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  fps: float
  width: int
  height: int
  frames: Optional[int]        # ffmpeg's estimate; None when unknown


def read_video(path: str) -> Tuple[VideoInfo, Iterator[np.ndarray]]:
  """(info, the frames as uint8 RGB [H, W, 3], decoded one at a time).
  imaging.DecodeError when ffmpeg cannot read the file."""
  ffmpeg = _ffmpeg()
  try:
    reader = ffmpeg.read_frames(path, pix_fmt='rgb24')
    with _starting_ffmpeg():
      meta = reader.__next__()
  except (OSError, RuntimeError, StopIteration) as e:
    raise imaging.DecodeError('unreadable video', str(e).strip().split(
        '\n')[-1][:300]) from e
  width, height = meta['size']
  fps = float(meta.get('fps') or 25.0)
  duration = meta.get('duration')
  info = VideoInfo(fps, width, height,
                   round(duration * fps) if duration else None)

  def frames():
    try:
      for raw in reader:
        yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
      reader.close()
  return info, frames()


class VideoWriter:
  """H.264 (yuv420p, which needs even sizes: an odd last row or column is
  repeated) at `fps`; `write(frame)` in order, then `close()`."""

  def __init__(self, path: str, width: int, height: int, fps: float,
               quality: float = 8.0):
    self.size = (width + width % 2, height + height % 2)
    self._pad = ((0, height % 2), (0, width % 2), (0, 0))
    self._writer = _ffmpeg().write_frames(
        path, self.size, fps=fps, codec='libx264', pix_fmt_out='yuv420p',
        quality=quality, macro_block_size=1)
    with _starting_ffmpeg():
      self._writer.send(None)          # start ffmpeg
    self.path = path

  def write(self, frame: np.ndarray):
    frame = np.ascontiguousarray(np.pad(frame, self._pad, mode='edge'))
    self._writer.send(frame)

  def close(self):
    self._writer.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
