"""The editor's web server: one loaded `Engine` behind a small JSON API.

The page (static/index.html + its script, ES modules entered at editor.js)
keeps the label map being edited; the server keeps the uploaded photos
(decoded once, the most recent `MAX_IMAGES`) and calls the engine. Routes:

  GET  /               the page (static files under /static/)
  GET  /api/info       {method, mode, class_names, palette, max_upload_bytes,
                        max_pixels, max_samples}
  POST /api/image      multipart field `file` -> {id, name, width, height,
                        photo, labels, result}
  POST /api/colorize   {id, map?} -> {result}
  POST /api/sample     {id, num_samples, temperature?, seed?} -> {images}

Images travel as PNG data URLs ('data:image/png;base64,...'); `labels` and
`map` are 8-bit PNGs whose pixel values are class indices (greyscale or
palette PNGs), `photo` is the decoded photo as a JPEG for display. Every
error is JSON {error: message} with a 4xx status (5xx when the model fails),
the message written for the person at the page.
"""

import base64
import collections
import dataclasses
import io
import mimetypes
import os
import threading
import uuid
from typing import Any, Dict, Optional

import flask
import numpy as np
from PIL import Image
from werkzeug import exceptions
from werkzeug import serving

from colorjax.datasets import imaging

MAX_IMAGES = 16        # photos kept in memory; the oldest is dropped
MAX_SAMPLES = 16       # per /api/sample request
_STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
# The page's script is ES modules, which browsers run only when served
# with a JavaScript type; some systems' MIME tables map .js to text/plain.
mimetypes.add_type('text/javascript', '.js')
_PNG_URL = 'data:image/png;base64,'
# Multipart framing around the uploaded file (boundaries, headers, name).
_MULTIPART_SLACK = 64 * 1024
# EXIF orientation -> the transpose that shows the photo upright.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90}


class UserError(Exception):
  """A request the page can explain: becomes {error: message}, `status`."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.message = message
    self.status = status


@dataclasses.dataclass
class _Photo:
  name: str
  rgb: np.ndarray                  # uint8 [H, W, 3], upright
  labels: Optional[np.ndarray]     # the engine's predicted map, or None


def png_data_url(array: np.ndarray) -> str:
  return _PNG_URL + base64.b64encode(imaging.encode_png(array)).decode('ascii')


def _jpeg_data_url(rgb: np.ndarray) -> str:
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, format='JPEG', quality=92)
  return 'data:image/jpeg;base64,' + base64.b64encode(
      buffer.getvalue()).decode('ascii')


def _megabytes(num_bytes: int) -> str:
  return f'{num_bytes / 1e6:.3g} MB'


def _megapixels(num_pixels: int) -> str:
  return f'{num_pixels / 1e6:.3g} megapixels'


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
  """Uploaded file bytes -> upright uint8 [H, W, 3], or a UserError.

  The pixel count is read from the header (PIL opens lazily) before the
  full decode, so a huge image is refused without allocating it.
  """
  if not data:
    raise UserError(f'"{name}" is empty (0 bytes).')
  try:
    with Image.open(io.BytesIO(data)) as probe:
      width, height = probe.size
      orientation = probe.getexif().get(0x0112, 1)
  except Image.DecompressionBombError as e:
    raise UserError(f'"{name}" has too many pixels ({e}); the limit is '
                    f'{_megapixels(max_pixels)}.', 413) from e
  except (OSError, SyntaxError, ValueError) as e:
    raise UserError(
        f'"{name}" is not an image file this editor can read (JPEG, PNG, '
        'WebP, TIFF, BMP or GIF).', 415) from e
  if width * height > max_pixels:
    raise UserError(
        f'"{name}" is {width}\u00d7{height} = {_megapixels(width * height)}; '
        f'the limit is {_megapixels(max_pixels)}. Downscale it first.', 413)
  try:
    rgb = imaging.decode_image(data).array
  except imaging.DecodeError as e:
    raise UserError(
        f'"{name}" could not be decoded: the file is truncated or corrupt '
        f'({e}).', 422) from e
  if orientation in _ORIENTATIONS:
    rgb = np.asarray(Image.fromarray(rgb).transpose(
        _ORIENTATIONS[orientation]))
  rgb = np.ascontiguousarray(rgb)
  rgb.flags.writeable = False     # an upload never changes (engine memo)
  return rgb


def decode_map(url: Any, num_classes: int, max_pixels: int) -> np.ndarray:
  """A PNG data URL of class indices -> uint8 [h, w], or a UserError."""
  if not isinstance(url, str) or not url.startswith(_PNG_URL):
    raise UserError('"map" must be a PNG data URL (data:image/png;base64,...).')
  try:
    data = base64.b64decode(url[len(_PNG_URL):], validate=True)
    with Image.open(io.BytesIO(data)) as probe:
      width, height = probe.size
  except (ValueError, OSError) as e:
    raise UserError(f'"map" is not a readable PNG ({e}).') from e
  if width * height > max_pixels:
    raise UserError(f'"map" is {width}\u00d7{height}, over the '
                    f'{_megapixels(max_pixels)} limit.', 413)
  try:
    return imaging.decode_label_map(data, max_label=num_classes - 1)
  except imaging.DecodeError as e:
    raise UserError(f'"map" must be a greyscale or palette PNG of class '
                    f'indices 0..{num_classes - 1} ({e}).') from e


def _json_body() -> Dict[str, Any]:
  body = flask.request.get_json(silent=True)
  if not isinstance(body, dict):
    raise UserError('The request body must be a JSON object.')
  return body


def _int_field(body, key, default, low, high) -> int:
  value = body.get(key, default)
  if isinstance(value, bool) or not isinstance(value, int) or not (
      low <= value <= high):
    raise UserError(f'"{key}" must be an integer in {low}..{high}.')
  return value


def create_app(engine, max_upload_bytes: int = 25 * 1000 * 1000,
               max_pixels: int = 40_000_000,
               max_images: int = MAX_IMAGES) -> flask.Flask:
  """The editor's Flask app serving `engine` (see engine.Engine).

  Engine calls are serialised by one lock: the model is jitted once and one
  call at a time uses the whole accelerator anyway.
  """
  app = flask.Flask(__name__, static_folder=_STATIC, static_url_path='/static')
  # The page and its script are small; always serve the current version.
  app.config['SEND_FILE_MAX_AGE_DEFAULT'] = 0
  num_classes = len(engine.class_names)
  palette = np.asarray(engine.palette, np.uint8).reshape(-1, 3)
  engine_lock = threading.Lock()
  photos: 'collections.OrderedDict[str, _Photo]' = collections.OrderedDict()
  photos_lock = threading.Lock()
  # A PNG of class indices is at most ~1 byte a pixel; base64 adds a third.
  max_json_bytes = max_pixels * 4 // 3 + (1 << 20)

  def get_photo(body) -> _Photo:
    photo_id = body.get('id')
    with photos_lock:
      photo = photos.get(photo_id) if isinstance(photo_id, str) else None
      if photo is not None:
        photos.move_to_end(photo_id)
    if photo is None:
      raise UserError(
          f'This photo is no longer on the server (it keeps the {max_images} '
          'most recent ones, and forgets them on restart): open it again.',
          404)
    return photo

  @app.before_request
  def limit_body():
    upload = flask.request.endpoint == 'upload'
    flask.request.max_content_length = (
        max_upload_bytes + _MULTIPART_SLACK if upload else max_json_bytes)

  @app.errorhandler(UserError)
  def user_error(e: UserError):
    return flask.jsonify(error=e.message), e.status

  @app.errorhandler(exceptions.RequestEntityTooLarge)
  def too_large(e):
    del e
    if flask.request.endpoint == 'upload':
      message = (f'The file is larger than the {_megabytes(max_upload_bytes)}'
                 ' upload limit.')
    else:
      message = f'The request is larger than {_megabytes(max_json_bytes)}.'
    return flask.jsonify(error=message), 413

  @app.errorhandler(exceptions.HTTPException)
  def http_error(e: exceptions.HTTPException):
    return flask.jsonify(error=f'{e.code} {e.name}: {e.description}'), e.code

  @app.errorhandler(Exception)
  def model_error(e: Exception):
    app.logger.exception('request failed')
    return flask.jsonify(
        error=f'The model failed: {type(e).__name__}: {e}'), 500

  @app.get('/')
  def index():
    return flask.send_from_directory(_STATIC, 'index.html')

  @app.get('/api/info')
  def info():
    return flask.jsonify(
        method=engine.method, mode=engine.mode,
        class_names=list(engine.class_names), palette=palette.tolist(),
        max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
        max_samples=MAX_SAMPLES)

  @app.post('/api/image')
  def upload():
    upload_file = flask.request.files.get('file')
    if upload_file is None:
      raise UserError('No file was sent: choose a photo to open.')
    name = os.path.basename(upload_file.filename or 'upload')
    data = upload_file.read(max_upload_bytes + 1)
    if len(data) > max_upload_bytes:
      raise exceptions.RequestEntityTooLarge()
    rgb = decode_upload(data, name, max_pixels)
    with engine_lock:
      labels = engine.segment(rgb)
      result = engine.colorize(rgb)
    if labels is not None:
      labels = np.asarray(labels, np.uint8)
      if labels.shape != rgb.shape[:2]:
        raise ValueError(f'segment returned {labels.shape} for a photo of '
                         f'{rgb.shape[:2]}')
    photo_id = uuid.uuid4().hex
    with photos_lock:
      photos[photo_id] = _Photo(name, rgb, labels)
      while len(photos) > max_images:
        photos.popitem(last=False)
    return flask.jsonify(
        id=photo_id, name=name, width=rgb.shape[1], height=rgb.shape[0],
        photo=_jpeg_data_url(rgb),
        labels=None if labels is None else png_data_url(labels),
        result=png_data_url(result))

  @app.post('/api/colorize')
  def colorize():
    body = _json_body()
    photo = get_photo(body)
    labels = None
    if body.get('map') is not None:
      if engine.mode != 'edit':
        raise UserError(f'This model ({engine.method}) does not take a '
                        'semantic map.')
      labels = decode_map(body['map'], num_classes, max_pixels)
    with engine_lock:
      result = engine.colorize(photo.rgb, labels)
    return flask.jsonify(result=png_data_url(result))

  @app.post('/api/sample')
  def sample():
    if engine.mode != 'sample':
      raise UserError(f'This model ({engine.method}) does not sample.')
    body = _json_body()
    photo = get_photo(body)
    num_samples = _int_field(body, 'num_samples', 4, 1, MAX_SAMPLES)
    seed = _int_field(body, 'seed', 0, 0, 2**31 - 1)
    temperature = body.get('temperature')
    if temperature is not None and (
        isinstance(temperature, bool) or
        not isinstance(temperature, (int, float)) or not temperature > 0):
      raise UserError('"temperature" must be a positive number.')
    with engine_lock:
      images = engine.sample(photo.rgb, num_samples,
                             None if temperature is None else
                             float(temperature), seed)
    return flask.jsonify(images=[png_data_url(image) for image in images])

  return app


class _QuietRequestHandler(serving.WSGIRequestHandler):
  """Logs errors but not one line per request."""

  def log_request(self, code='-', size='-'):
    del code, size


def make_server(app: flask.Flask, host: str, port: int,
                log_requests: bool = True) -> serving.BaseWSGIServer:
  """A threaded werkzeug server for `app` (port 0: a free one); the caller
  runs serve_forever(), in a thread for tests."""
  return serving.make_server(
      host, port, app, threaded=True,
      request_handler=None if log_requests else _QuietRequestHandler)
