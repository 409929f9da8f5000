"""Colorizes photos with a trained workdir's latest checkpoint.

  python -m colorjax.colorize --workdir=DIR --input=photo.jpg --input=folder/ \
      --output=out/ [--batch_size=8] [--save_segmentation] \
      [--upsample=guided|bilinear] [--gamut=chroma|clip]
  # Methods that colorize under a semantic map (SemanticDriven): a user's
  # map instead of the predicted one (a file, or a folder of maps named
  # like the photos: photo.png or photo_segmentation.png):
  python -m colorjax.colorize --workdir=DIR --input=photo.jpg --output=out/ \
      --segmentation=edited/photo_segmentation.png
  # Diverse colorizations (sampling methods, e.g. PixSem):
  python -m colorjax.colorize --workdir=DIR --input=photo.jpg --output=out/ \
      --num_samples=8 --temperature=0.8 --seed=0 --sampler=cached
  # A video (frames and the colorized video), or a folder of frames as
  # one sequence, with colours kept steady where nothing moved:
  python -m colorjax.colorize --workdir=DIR --input=clip.mp4 --output=out/ \
      [--temporal=stabilize|none]
  python -m colorjax.colorize --workdir=DIR --input=frames/ --sequence \
      --output=out/
  # Zhang et al.'s published ECCV16 network, no training (baseline):
  python -m colorjax.colorize \
      --pretrained=eccv16:colorization_release_v2-9b330a0b.pth \
      --input=photo.jpg --output=out/ [--temperature=0.38] [--decode=mode]

Any size and mode (grey or colour, CMYK, RGBA, 16-bit) is accepted: the
image is converted to L and resized at its own aspect, its short side to
the model resolution (`--resolution`, default the config's image size),
padded to the network's stride multiple (edge pixels repeated), put
through the same input transforms as evaluation; the ab predicted for the
photo (the padding's cropped away) is upsampled onto the photo's own
full-resolution L (`--upsample`: 'guided', the default, joint bilateral
upsampling with L as the guide, so colour stops at L's edges; or
'bilinear'; color/upsample.py) and recombined with it. A network that
takes only its square input (InstanceAware's classification branch on the
flattened conv5, the paper's fully connected layer; `Method.input_multiple`
None) gets the photo resized to that square, as it was trained. Photos are
batched by padded size, one compiled program per size. Unreadable
files are reported at the end (exit status 1) after the others are done.
Label maps (`--save_segmentation` writes them, `--segmentation` reads them)
are indexed PNGs at the photo's resolution: pixel value = class index, the
palette only shows the classes; a map of any size is resized to the model's
input by nearest neighbour.
"""

import collections
import concurrent.futures
import dataclasses
import functools
import os
import sys
from typing import Iterable, List, Optional, Sequence

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import tqdm

from colorjax import choices
from colorjax import cli
from colorjax import console
from colorjax import errors
from colorjax import methods
from colorjax import sharding
from colorjax import workdir as workdir_lib
from colorjax.color import lab_to_rgb
from colorjax.color import gamut as gamut_lib
from colorjax.color import temporal as temporal_lib
from colorjax.color import upsample as upsample_lib
from colorjax.color import palette
from colorjax.color import rgb_to_lab_numpy
from colorjax.data import geometry_ops
from colorjax.data import inference
from colorjax.data import pipeline
from colorjax.data import preprocess
from colorjax.data.image_folder import find_images
from colorjax.datasets import imaging
from colorjax.datasets import video as video_lib
from colorjax.methods import instanceaware


@dataclasses.dataclass
class Photo:
  path: str
  rgb: np.ndarray           # uint8 [H, W, 3]
  lightness: np.ndarray     # float32 [H, W, 1], L in [0, 100]
  labels: Optional[np.ndarray] = None   # uint8 [h, w]: a given semantic map
  placement: Optional[inference.Placement] = None   # in the network input


def indexed_png(labels: np.ndarray) -> Image.Image:
  """uint8 class indices [H, W] -> a palette ('P') PNG image that shows the
  classes in colour and reads back as the same indices."""
  image = Image.fromarray(np.asarray(labels, np.uint8), mode='P')
  image.putpalette(palette.PALETTE.reshape(-1).tolist())
  return image


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
  """Nearest-neighbour resize of a uint8 label map (labels stay labels)."""
  if labels.shape[:2] == (height, width):
    return np.asarray(labels, np.uint8)
  return np.asarray(Image.fromarray(np.asarray(labels, np.uint8)).resize(
      (width, height), Image.NEAREST))


def find_maps(source: str, photos: Sequence[str]) -> dict:
  """{photo path: map path} for `--segmentation`: one file (for a single
  photo), or a folder holding <stem>_segmentation.png or <stem>.png per
  photo (the first found; never the photo itself, so the folder may be
  the photos' own). Photos without a map are left out (the caller reports
  them)."""
  source = os.path.expanduser(source)
  if os.path.isfile(source):
    if len(photos) != 1:
      raise errors.ConfigError(f'--segmentation={source} is one file but there are '
                       f'{len(photos)} photos; pass a folder of maps named '
                       'like the photos')
    return {photos[0]: source}
  if not os.path.isdir(source):
    raise FileNotFoundError(f'--segmentation={source}: no such file or '
                            'folder')
  found = {}
  for photo in photos:
    stem = os.path.splitext(os.path.basename(photo))[0]
    for name in (f'{stem}_segmentation.png', f'{stem}.png'):
      candidate = os.path.join(source, name)
      if os.path.isfile(candidate) and not os.path.samefile(candidate,
                                                            photo):
        found[photo] = candidate
        break
  return found


GAMUT_MAPPINGS = ('chroma', 'clip')
TEMPORAL_FILTERS = ('stabilize', 'none')
PNG_COMPRESS_LEVEL = 1


def recombine(lightness: np.ndarray, ab_small: np.ndarray,
              gamut: str = 'chroma',
              placement: Optional[inference.Placement] = None,
              upsample: str = 'guided') -> np.ndarray:
  """Full-resolution L + low-resolution ab (Lab units) -> uint8 RGB, in
  one compiled program over fixed-size tiles (color.upsample).

  gamut: 'chroma' brings undisplayable colours into sRGB by reducing their
  chroma at constant L and hue (color.gamut); 'clip' clips each RGB
  channel, which shifts hue and lightness. placement: where the photo sat
  in the network input (the ab of the padding is cropped away first).
  upsample: 'guided' (L-guided joint bilateral) or 'bilinear'
  (color.upsample)."""
  choices.check('gamut', gamut, GAMUT_MAPPINGS)
  box = inference.photo_box(placement, *ab_small.shape[:2])
  return upsample_lib.upsample_tiled(
      lightness, ab_small, upsample, box,
      finish=_srgb_in_gamut if gamut == 'chroma' else _srgb_clipped)


def _srgb_in_gamut(lightness, ab):
  """L + ab -> uint8 sRGB, chroma reduced into the gamut (jnp)."""
  rgb = gamut_lib.lab_to_rgb_in_gamut_jnp(jnp.concatenate([lightness, ab],
                                                          -1))
  return jnp.round(rgb * 255.0).astype(jnp.uint8)


def _srgb_clipped(lightness, ab):
  """L + ab -> uint8 sRGB, each channel clipped (jnp)."""
  rgb = lab_to_rgb(jnp.concatenate([lightness, ab], -1))
  return jnp.round(rgb * 255.0).astype(jnp.uint8)


def _map_input(labels: np.ndarray, where: inference.Placement) -> np.ndarray:
  """A given label map -> the network input's layout: resized (nearest) to
  the photo's place, padded like the photo (edge labels repeated)."""
  labels = resize_labels(labels, where.height, where.width)
  return geometry_ops.PadTo(*where.padded).map(
      {'semantic_map': labels})['semantic_map']


def _output_path(output_dir: str, path: str, suffix: str) -> str:
  stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join(output_dir, f'{stem}{suffix}.png')


def _batch_key(photo: Photo):
  """Photos batch together when they share this: one network input size,
  and all with or all without a given map (one batch structure)."""
  return photo.placement.padded, photo.labels is not None


def _batches(photos: Iterable[Photo], size: int):
  """Batches of up to `size` photos of one network input size (and all
  with or all without a given map), each yielded once full; the rest at
  the end. One compiled program per input size, none per photo."""
  buckets = {}
  for photo in photos:
    key = _batch_key(photo)
    bucket = buckets.setdefault(key, [])
    bucket.append(photo)
    if len(bucket) == size:
      yield buckets.pop(key)
  yield from buckets.values()


def _ordered_batches(photos: Iterable[Photo], size: int):
  """Batches of up to `size` consecutive photos, a new batch whenever the
  input size changes: a sequence's frames stay in order."""
  batch = []
  for photo in photos:
    if batch and (len(batch) == size or
                  _batch_key(photo) != _batch_key(batch[0])):
      yield batch
      batch = []
    batch.append(photo)
  if batch:
    yield batch


class Colorizer:
  """Holds the restored model and the jitted prediction."""

  def __init__(self, workdir: Optional[str], num_samples: int = 1,
               temperature=None, seed: int = 0, sampler: str = 'cached',
               pretrained: Optional[str] = None,
               decode: Optional[str] = None, restored=None,
               resolution: Optional[int] = None):
    """restored: (config, method, state) already in memory (benchmarks),
    instead of a workdir or a published network. resolution: the short
    side of the network input (default: the config's image size)."""
    if pretrained:        # a published network instead of a workdir
      self.config = instanceaware.published_eccv16_config()
    elif restored:
      self.config = restored[0]
    else:
      self.config = workdir_lib.load_config(workdir)
    if 'decoding' in self.config:      # methods that decode a distribution
      if temperature is not None:
        self.config.decoding.temperature = temperature   # annealed mean's T
      if decode:
        self.config.decoding.decode = decode
    elif decode:
      raise errors.ConfigError(f'--decode: {self.config.method} predicts ab '
                       'directly; it has no decoding to choose')
    self.num_samples = num_samples
    self.temperature = temperature
    self.seed = seed
    self.sampler = sampler
    if pretrained:
      self.method = methods.get_method(self.config)
      self.state = instanceaware.state_from_pretrained(self.method,
                                                       pretrained)
    elif restored:
      _, self.method, self.state = restored
    else:
      self.method, self.state = workdir_lib.restore_for_inference(
          workdir, self.config)
    self.mesh = sharding.data_mesh()
    self.resolution = resolution or self.config.data.image_size
    self.multiple = self.method.input_multiple()
    self._ops = {}
    self.ab_scale = self.config.data.ab_scale
    self._predict = jax.jit(self.method.predict)
    self.samples = self.method.samples
    self.takes_map = 'semantic_map' in self.method.predict_optional_keys
    if num_samples > 1 and not self.samples:
      raise errors.ConfigError(f'{self.config.method} is deterministic: '
                       '--num_samples > 1 needs a sampling method (pixsem)')
    self._samplers = {}

  def _sampler(self, num_samples: int):
    """The jitted sampler for `num_samples` (the temperature is traced, so
    a new temperature does not recompile)."""
    if num_samples not in self._samplers:
      self._samplers[num_samples] = jax.jit(
          lambda state, gray, rng, temperature: self.method.sample(
              state, gray, rng, num_samples, temperature, self.sampler))
    return self._samplers[num_samples]

  def load(self, path: str) -> Photo:
    """A photo file of any size and mode -> Photo (imaging.DecodeError or
    OSError when it cannot be read)."""
    return self.photo(imaging.decode_image(path).array, path)

  def photo(self, rgb: np.ndarray, path: str = '',
            labels: Optional[np.ndarray] = None) -> Photo:
    """A decoded uint8 RGB photo (and optionally its label map) -> Photo."""
    if labels is not None and not self.takes_map:
      raise errors.ConfigError(f'{self.config.method} does not colorize under a '
                       'semantic map (--segmentation needs a method that '
                       'does, e.g. semanticdriven)')
    lightness = rgb_to_lab_numpy(rgb.astype(np.float32) / 255.0)[..., :1]
    where = inference.placement(rgb.shape[0], rgb.shape[1], self.resolution,
                                self.multiple)
    return Photo(path, rgb, lightness.astype(np.float32), labels, where)

  def ops(self, where: inference.Placement):
    """The input transforms of a placement (parsed once per size)."""
    if where not in self._ops:
      self._ops[where] = inference.inference_ops(self.config, where)
    return self._ops[where]

  def model_input(self, photo: Photo):
    """The photo as the network sees it: {'gray', ...} at its padded
    size."""
    return preprocess.apply(self.ops(photo.placement), {'image': photo.rgb})

  def labels_at_photo_size(self, photo: Photo,
                           labels: np.ndarray) -> np.ndarray:
    """A predicted label map [h, w] -> the photo's resolution (the padding
    cropped away, nearest neighbour)."""
    height, width = photo.rgb.shape[:2]
    box = inference.photo_box(photo.placement, *labels.shape[:2])
    return np.asarray(Image.fromarray(np.asarray(labels, np.uint8)).resize(
        (width, height), Image.NEAREST, box=box))

  def to_rgb(self, photo: Photo, ab: np.ndarray, gamut: str = 'chroma',
             upsample: str = 'guided') -> np.ndarray:
    """One predicted ab [h, w, 2] (Lab units) on the photo's own L."""
    return recombine(photo.lightness, ab, gamut, photo.placement, upsample)

  def guide(self, photo: Photo, rows: int, cols: int) -> np.ndarray:
    """The photo's L [rows, cols, 1] at a network output's resolution
    (its share of it; the padding's edge-repeated)."""
    return upsample_lib.guide_in_box(
        photo.lightness, rows, cols,
        inference.photo_box(photo.placement, rows, cols))

  def predict(self, photos: List[Photo], batch_index: int = 0,
              num_samples: Optional[int] = None, temperature=None,
              seed: Optional[int] = None, pad_to: int = 1):
    """ab [N, S, h, w, 2] (Lab units) and label maps for each photo
    (sampling methods: S = num_samples, default the Colorizer's, at
    `temperature` with `seed`, defaults likewise).

    Photos with `labels` are colorized under them (all of a batch, or
    none: the batch has one structure). pad_to: the batch is padded to
    this many photos (colorize's batch size: a folder's last, partial
    batch of each size reuses the full batch's program instead of
    compiling one for its length; a compile costs more than the padding's
    compute)."""
    sizes = {p.placement.padded for p in photos}
    if len(sizes) > 1:
      raise ValueError(f'a batch mixes network input sizes {sorted(sizes)}')
    examples = [self.model_input(p) for p in photos]
    devices = jax.device_count()
    size = -(-max(len(examples), pad_to) // devices) * devices
    batch = {k: np.stack([e[k] for e in examples])
             for k in self.method.predict_keys}
    given = [p.labels is not None for p in photos]
    if any(given):
      if not all(given):
        raise ValueError('a batch mixes photos with and without a map')
      batch['semantic_map'] = np.stack([
          _map_input(p.labels, p.placement) for p in photos])[..., None]
    batch = {k: v for k, v in pipeline.pad_batch(batch, size).items()
             if k != 'mask'}
    batch = sharding.global_batch(self.mesh, batch)
    if self.samples:
      seed = self.seed if seed is None else seed
      rng = jax.random.fold_in(jax.random.PRNGKey(seed), batch_index)
      sampler = self._sampler(num_samples or self.num_samples)
      ab, outputs = jax.device_get(sampler(
          self.state, batch['gray'], rng,
          self.temperature if temperature is None else temperature))
      ab = np.asarray(ab)[:len(photos)] * self.ab_scale
    else:
      outputs = jax.device_get(self._predict(self.state, batch))
      ab = np.asarray(outputs['ab'])[:len(photos), None] * self.ab_scale
    labels = None
    if 'segmentation' in outputs:
      labels = np.argmax(np.asarray(outputs['segmentation']), -1)[
          :len(photos)].astype(np.uint8)
    return ab, labels


def _save_png(image: np.ndarray, path: str):
  """zlib level 1: 4x faster than PIL's default 6 (a 1-megapixel photo:
  0.06 s against 0.24 s), files ~15% larger."""
  Image.fromarray(image).save(path, compress_level=PNG_COMPRESS_LEVEL)


def _in_order(function, items: Iterable, workers: int):
  """function(item) for each item, in order, `workers` at a time in
  threads, at most 2 * workers ahead of the consumer (memory stays bounded
  on folders of any length); workers 0: in this thread."""
  if workers <= 0:
    yield from map(function, items)
    return
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    pending = collections.deque()
    for item in items:
      pending.append(pool.submit(function, item))
      if len(pending) > 2 * workers:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def _colorized(colorizer: Colorizer, photos: Iterable[Photo],
               batch_size: int, stabilizer=None):
  """(photo, ab [samples, h, w, 2], labels or None) for each photo; with a
  stabilizer (a frame sequence), in order and filtered frame by frame."""
  batches = (_ordered_batches if stabilizer else _batches)(photos,
                                                           batch_size)
  for index, batch in enumerate(batches):
    ab, labels = colorizer.predict(batch, index, pad_to=batch_size)
    for i, photo in enumerate(batch):
      samples = ab[i]
      if stabilizer is not None:
        samples = stabilizer(samples, colorizer.guide(photo,
                                                      *samples.shape[1:3]))
      yield photo, samples, None if labels is None else labels[i]


def colorize(workdir: Optional[str], inputs: Sequence[str], output_dir: str,
             batch_size: int = 8, save_segmentation: bool = False,
             num_samples: int = 1, temperature=None, seed: int = 0,
             sampler: str = 'cached', pretrained: Optional[str] = None,
             decode: Optional[str] = None,
             segmentation: Optional[str] = None, gamut: str = 'chroma',
             resolution: Optional[int] = None, upsample: str = 'guided',
             workers: Optional[int] = None,
             colorizer: Optional[Colorizer] = None, sequence: bool = False,
             temporal: str = 'stabilize'):
  """Writes <stem>_color.png (and <stem>_segmentation.png, the predicted
  map as an indexed PNG) per input; with num_samples > 1,
  <stem>_sample<k>.png and a <stem>_grid.png of them all. `segmentation`:
  a map file or a folder of maps to colorize under (see `find_maps`).
  resolution: the network input's short side (default: the config's).
  upsample: how ab goes onto the photo's L ('guided' or 'bilinear').

  A folder streams: photos are decoded (and their L computed) `workers`
  at a time in threads ahead of the model (PIL's decoders and numpy
  release the GIL), go through the network in batches of one input size,
  and are recombined and written `workers` at a time while the next batch
  runs; workers 0: all in this thread (default: the cores, at most 4).
  colorizer: one already built (benchmarks), instead of the arguments
  that build one.

  Videos (a file with a video extension, read by imageio-ffmpeg): each
  frame is written to <stem>_frames/frame_NNNNNN_color.png and the
  colorized video to <stem>_color.mp4 (<stem>_sample<k>.mp4 with several
  samples). sequence: the image inputs, in order, are the frames of one
  sequence. temporal ('stabilize' or 'none'): a video's or sequence's
  frames are filtered for temporal stability (color.temporal).

  Returns (written paths, {path: error message} of unreadable files).
  """
  colorizer = colorizer or Colorizer(
      workdir, num_samples, temperature, seed, sampler, pretrained, decode,
      resolution=resolution)
  if segmentation and not colorizer.takes_map:
    raise errors.ConfigError(f'--segmentation: {colorizer.config.method} does not '
                     'colorize under a semantic map (semanticdriven does)')
  choices.check('temporal', temporal, TEMPORAL_FILTERS)
  if workers is None:
    workers = min(4, os.cpu_count() or 1)
  os.makedirs(output_dir, exist_ok=True)
  found = find_images(inputs)
  videos = [p for p in found if video_lib.is_video(p)]
  paths = [p for p in found if not video_lib.is_video(p)]
  maps = find_maps(segmentation, paths) if segmentation else {}
  failures, written = {}, []

  def stabilizer():
    return temporal_lib.Stabilizer() if temporal == 'stabilize' else None

  def read(path):
    """path -> Photo, or an error message."""
    if segmentation and path not in maps:
      return (f'no map for it in {segmentation} (expected '
              f'{os.path.splitext(os.path.basename(path))[0]}'
              '_segmentation.png or .png)')
    try:
      photo = colorizer.load(path)
    except (imaging.DecodeError, OSError) as e:
      return str(e)
    if path in maps:
      try:
        photo.labels = imaging.decode_label_map(maps[path])
      except (imaging.DecodeError, OSError) as e:
        return f'its map {maps[path]}: {e}'
    return photo

  def readable(bar):
    for path, photo in zip(paths, _in_order(read, paths, workers)):
      if isinstance(photo, str):
        failures[path] = photo
        bar.update(1)
      else:
        yield photo

  def write(job, directory):
    """One photo's colorizations (and map), written into `directory` ->
    (files written, images)."""
    photo, samples, labels = job
    images = [colorizer.to_rgb(photo, sample, gamut, upsample)
              for sample in samples]
    out = []
    if len(images) == 1:
      out.append(_output_path(directory, photo.path, '_color'))
      _save_png(images[0], out[-1])
    else:
      for k, image in enumerate(images):
        out.append(_output_path(directory, photo.path, f'_sample{k}'))
        _save_png(image, out[-1])
      out.append(_output_path(directory, photo.path, '_grid'))
      _save_png(np.concatenate(images, axis=1), out[-1])
    if save_segmentation and labels is not None:
      out.append(_output_path(directory, photo.path, '_segmentation'))
      indexed_png(colorizer.labels_at_photo_size(photo, labels)).save(
          out[-1])
    return out, images

  if paths:
    with tqdm.tqdm(total=len(paths), unit='image', disable=None,
                   smoothing=0.1) as bar:
      jobs = _colorized(colorizer, readable(bar), batch_size,
                        stabilizer() if sequence else None)
      for files, _ in _in_order(
          functools.partial(write, directory=output_dir), jobs, workers):
        written += files
        bar.update(1)
  for path in videos:
    try:
      info, frames = video_lib.read_video(path)
    except imaging.DecodeError as e:
      failures[path] = str(e)
      continue
    stem = os.path.splitext(os.path.basename(path))[0]
    frames_dir = os.path.join(output_dir, f'{stem}_frames')
    os.makedirs(frames_dir, exist_ok=True)
    photos = _in_order(
        lambda item: colorizer.photo(item[1], f'frame_{item[0]:06d}.png'),
        enumerate(frames), workers)
    jobs = _colorized(colorizer, photos, batch_size, stabilizer())
    count = colorizer.num_samples
    names = ([f'{stem}_color.mp4'] if count == 1 else
             [f'{stem}_sample{k}.mp4' for k in range(count)])
    writers = [video_lib.VideoWriter(os.path.join(output_dir, name),
                                     info.width, info.height, info.fps)
               for name in names]
    try:
      with tqdm.tqdm(total=info.frames, unit='frame', disable=None,
                     desc=os.path.basename(path)) as bar:
        for files, images in _in_order(
            functools.partial(write, directory=frames_dir), jobs, workers):
          written += files
          for writer, image in zip(writers, images):
            writer.write(image)
          bar.update(1)
    finally:
      for writer in writers:
        writer.close()
    written += [writer.path for writer in writers]
  return written, failures


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'a trained workdir')
  flags.DEFINE_string('pretrained', None, 'eccv16:PATH: Zhang et al.\'s '
                      'published network instead of a workdir')
  flags.DEFINE_multi_string('input', None, 'image files or folders')
  flags.DEFINE_string('output', None, 'output folder')
  flags.DEFINE_integer('batch_size', 8, 'images per forward pass')
  flags.DEFINE_integer('workers', None, 'threads that decode photos ahead '
                       'of the model and write results behind it (0: none; '
                       'default: the cores, at most 4)', lower_bound=0)
  flags.DEFINE_bool('save_segmentation', False, 'also write the predicted '
                    'label maps (indexed PNG: value = class index)')
  flags.DEFINE_string('segmentation', None, 'a label map (indexed or '
                      'greyscale PNG of class indices, any size) or a '
                      'folder of maps named like the photos, to colorize '
                      'under (methods that take a map: semanticdriven)')
  flags.DEFINE_integer('num_samples', 1, 'colorizations per image '
                       '(sampling methods)')
  flags.DEFINE_float('temperature', None, 'sampling temperature, or the '
                     'annealed mean\'s T (default: the config\'s)')
  flags.DEFINE_integer('seed', 0, 'sampling seed')
  flags.DEFINE_enum('decode', None,
                    ['regression', 'annealed_mean', 'mode', 'mean'],
                    'how a 313-bin distribution becomes ab, or the '
                    'regression head (scenecontext; default: the config\'s)')
  flags.DEFINE_enum('sampler', 'cached', ['cached', 'naive'], 'sampler')
  flags.DEFINE_integer('resolution', None, 'the network input\'s short '
                       'side; the photo keeps its aspect (default: the '
                       'config\'s image size)', lower_bound=8)
  flags.DEFINE_enum('upsample', 'guided', list(upsample_lib.UPSAMPLERS),
                    'how the network\'s ab goes onto the photo\'s full-'
                    'resolution L: guided by L (colour stops at its edges) '
                    'or bilinear')
  flags.DEFINE_bool('sequence', False, 'the image inputs, in order (files '
                    'sorted within folders), are the frames of one '
                    'sequence: colorized in order, --temporal applies')
  flags.DEFINE_enum('temporal', 'stabilize', list(TEMPORAL_FILTERS),
                    'videos and --sequence: keep colours steady where L '
                    'did not change from the previous frame (stabilize), '
                    'or colorize each frame alone (none)')
  flags.DEFINE_enum('gamut', 'chroma', list(GAMUT_MAPPINGS),
                    'undisplayable colours: chroma reduced at constant L and '
                    'hue (chroma), or each RGB channel clipped (clip)')
  flags.mark_flags_as_required(['input', 'output'])
  flags.mark_flags_as_mutual_exclusive(['workdir', 'pretrained'],
                                       required=True)

  def main(argv):
    del argv
    console.quiet_libraries(FLAGS.verbosity)
    written, failures = colorize(
        FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.batch_size,
        FLAGS.save_segmentation, FLAGS.num_samples, FLAGS.temperature,
        FLAGS.seed, FLAGS.sampler, FLAGS.pretrained, FLAGS.decode,
        FLAGS.segmentation, FLAGS.gamut, FLAGS.resolution, FLAGS.upsample,
        FLAGS.workers, sequence=FLAGS.sequence, temporal=FLAGS.temporal)
    print(f'wrote {len(written)} files to {FLAGS.output}')
    if failures:
      print(f'{len(failures)} file(s) could not be read:', file=sys.stderr)
      for path, error in failures.items():
        print(f'  {path}: {error}', file=sys.stderr)
      sys.exit(cli.USAGE_STATUS)

  cli.run(main)
