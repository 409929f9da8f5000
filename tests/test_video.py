"""Videos and frame sequences: the temporal filter and the flicker metric
(color.temporal), video files in and out (datasets.video), and colorize +
evaluate on a sequence the test makes: a disc moving over a static
textured background, a little sensor noise on every frame."""

import os

import numpy as np
from PIL import Image
import pytest

from colorjax import colorize
from colorjax import evaluate
from colorjax.benchmark import flicker
from colorjax.color import temporal
from colorjax.datasets import video


def _moving_disc(frames=10, height=48, width=64):
  return flicker.moving_object_sequence(frames, height, width)


def test_stabilizer_averages_where_l_stays_and_follows_where_it_moves():
  stabilizer = temporal.Stabilizer(strength=0.8, sigma=3.0, radius=0)
  lightness = np.full((4, 6, 1), 50.0, np.float32)
  first = stabilizer(np.full((1, 4, 6, 2), 10.0), lightness)
  np.testing.assert_array_equal(first, 10.0)          # nothing to follow
  moved = lightness.copy()
  moved[:, 3:] = 80.0                                 # the right half moved
  second = stabilizer(np.full((1, 4, 6, 2), 20.0), moved)
  # eq.: 20 + 0.8 * 1 * (10 - 20) where L stayed; the frame's own where
  # it changed by 30 (gate exp(-50)).
  np.testing.assert_allclose(second[:, :, :3], 12.0, rtol=1e-6)
  np.testing.assert_allclose(second[:, :, 3:], 20.0, rtol=1e-6)
  # radius 1: a pixel next to one whose L changed follows its frame too.
  near = temporal.Stabilizer(strength=0.8, sigma=3.0, radius=1)
  near(np.full((1, 4, 6, 2), 10.0), lightness)
  second = near(np.full((1, 4, 6, 2), 20.0), moved)
  np.testing.assert_allclose(second[:, :, :2], 12.0, rtol=1e-6)
  np.testing.assert_allclose(second[:, :, 2:], 20.0, rtol=1e-6)
  restarted = stabilizer(np.full((1, 2, 2, 2), 5.0), lightness[:2, :2])
  np.testing.assert_array_equal(restarted, 5.0)       # a new shot
  with pytest.raises(ValueError, match='strength'):
    temporal.Stabilizer(strength=1.0)


def test_flicker_counts_colour_change_only_where_l_stayed():
  lab = np.zeros((3, 8, 8, 3))
  lab[..., 0] = 50.0
  lab[1, :4, :, 1] = 6.0           # frame 1: static top half turns a=6
  lab[2, :, :, 0] = 90.0           # frame 2: L changes everywhere...
  lab[2, ..., 1:] = 40.0           # ...so its colour change is explained
  result = temporal.flicker(list(lab))
  assert result['frame_pairs'] == 2 and result['frames'] == 3
  assert result['flicker'] == pytest.approx(3.0)      # mean over the pair 0-1
  assert result['static_fraction'] == pytest.approx(0.5)
  with_truth = temporal.flicker(list(lab), reference=list(lab))
  assert with_truth['ab_error'] == 0.0


def test_video_round_trip(tmp_path):
  frames = _moving_disc(frames=6, height=33, width=47)     # odd sizes
  path = str(tmp_path / 'clip.mp4')
  with video.VideoWriter(path, 47, 33, fps=12.0, quality=10) as writer:
    for frame in frames:
      writer.write(frame)
  info, decoded = video.read_video(path)
  decoded = list(decoded)
  assert (info.fps, info.width, info.height) == (12.0, 48, 34)
  assert len(decoded) == 6
  error = np.abs(decoded[3][:33, :47].astype(float) - frames[3]).mean()
  assert error < 6.0, error                  # H.264 at high quality
  (tmp_path / 'broken.mp4').write_bytes(b'not a video')
  with pytest.raises(video.imaging.DecodeError, match='unreadable video'):
    video.read_video(str(tmp_path / 'broken.mp4'))


def test_colorize_a_sequence_steadier_and_no_worse(tiny_run, tmp_path):
  """The stabilised frames flicker less than frame-by-frame colorization
  (measured by evaluate --sequence against the true frames' L) and are no
  further from the true colours; a video goes through the same path and
  comes out as frames and an mp4 of the same length."""
  workdir, _ = tiny_run
  frames = _moving_disc()
  folder = tmp_path / 'frames'
  folder.mkdir()
  for t, frame in enumerate(frames):
    Image.fromarray(frame).save(folder / f'{t:03d}.png')
  colorizer = colorize.Colorizer(workdir)
  scores = {}
  for mode in ('none', 'stabilize'):
    written, failures = colorize.colorize(
        None, [str(folder)], str(tmp_path / mode), batch_size=4,
        colorizer=colorizer, sequence=True, temporal=mode)
    assert not failures and len(written) == len(frames)
    scores[mode] = evaluate.evaluate_sequence(str(tmp_path / mode),
                                              reference=str(folder))
  assert scores['none']['frame_pairs'] == len(frames) - 1
  assert scores['stabilize']['flicker'] < 0.7 * scores['none']['flicker'], (
      scores)
  assert scores['stabilize']['ab_error'] <= scores['none']['ab_error'] + 0.2

  path = str(tmp_path / 'clip.mp4')
  with video.VideoWriter(path, 64, 48, fps=10.0, quality=10) as writer:
    for frame in frames:
      writer.write(frame)
  written, failures = colorize.colorize(None, [path], str(tmp_path / 'video'),
                                        colorizer=colorizer)
  assert not failures
  assert sorted(os.listdir(tmp_path / 'video' / 'clip_frames')) == [
      f'frame_{t:06d}_color.png' for t in range(len(frames))]
  assert written[-1] == str(tmp_path / 'video' / 'clip_color.mp4')
  info, decoded = video.read_video(written[-1])
  assert (info.width, info.height, len(list(decoded))) == (64, 48, 10)
  flicker = evaluate.evaluate_sequence(written[-1], reference=path)
  assert flicker['frames'] == len(frames)
