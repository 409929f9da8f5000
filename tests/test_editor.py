"""The semantic-map editor: its JSON API (Flask test client) and its page in
a real headless Chromium (Selenium), both against a fake engine whose
colours are a per-pixel function of the label there, so a repainted map
must change the result exactly where the labels changed.

For more browser tests (e.g. with a real WorkdirEngine) reuse the module
fixtures `chrome` (one headless Chromium) and `serve_editor` (engine ->
base URL of a running server), and the page helpers of editor_browser.py
(open_editor, upload_photo, wait_for_result, result_pixels, page_labels,
paint_stroke, choose_class).
"""

import base64
import io
import os
import re
import shutil
import tempfile

import numpy as np
from PIL import Image
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from colorjax.editor import server
import editor_browser as browser


class FakeEngine:
  """Three classes by brightness; colour = mix of the class's palette
  colour and the photo's lightness, pixel by pixel."""

  method = 'fake'
  class_names = ('dark_thing', 'mid_thing', 'bright_thing')
  palette = np.array([[220, 40, 40], [40, 200, 60], [40, 80, 230]], np.uint8)

  def __init__(self, mode='edit'):
    self.mode = mode

  def segment(self, rgb):
    return np.digitize(rgb.mean(-1), [85, 170]).astype(np.uint8)

  def colorize(self, rgb, labels=None):
    if labels is None:
      labels = self.segment(rgb)
    height, width = rgb.shape[:2]
    rows = np.arange(height) * labels.shape[0] // height
    cols = np.arange(width) * labels.shape[1] // width
    labels = labels[rows][:, cols]
    lightness = rgb.astype(np.float32).mean(-1, keepdims=True)
    return (self.palette[labels] * 0.5 + lightness * 0.5).astype(np.uint8)

  def sample(self, rgb, num_samples, temperature=None, seed=0):
    del temperature
    base = self.colorize(rgb)
    return [np.roll(base, seed + k, axis=-1) for k in range(num_samples)]


def make_photo(width=96, height=64):
  """Dark, mid and bright vertical bands (classes 0, 1, 2), with texture."""
  x = np.arange(width)
  band = np.where(x < width // 3, 40, np.where(x < 2 * width // 3, 128, 215))
  texture = (np.arange(height)[:, None] * 3 + x[None, :] * 7) % 21
  gray = band[None, :] + texture
  return np.clip(np.stack([gray + 12, gray, gray - 12], -1), 0,
                 255).astype(np.uint8)


def encode(array, format_='PNG', **kwargs):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=format_, **kwargs)
  return buffer.getvalue()


def map_url(labels):
  return 'data:image/png;base64,' + base64.b64encode(encode(labels)).decode()


def truncated_jpeg():
  data = encode(make_photo(), 'JPEG', quality=90)
  return data[:len(data) // 2]


# ------------------------------------------------------------------- API


@pytest.fixture
def client():
  return server.create_app(FakeEngine()).test_client()


def upload(client, data, name='photo.png'):
  return client.post('/api/image', data={'file': (io.BytesIO(data), name)},
                     content_type='multipart/form-data')


def test_info_lists_classes_and_palette(client):
  info = client.get('/api/info').get_json()
  assert info['method'] == 'fake' and info['mode'] == 'edit'
  assert info['class_names'] == list(FakeEngine.class_names)
  assert info['palette'] == FakeEngine.palette.tolist()


def test_page_and_script_are_served_locally(client):
  page = client.get('/').get_data(as_text=True)
  assert 'id="photo-canvas"' in page
  assert '<script type="module" src="/static/editor.js">' in page
  assert 'http' not in page.replace('http-equiv', '')   # no CDN
  assert client.get('/static/editor.css').status_code == 200
  # The script is ES modules with no build step: each is served with a
  # JavaScript type (browsers refuse modules otherwise), and every import
  # names a sibling file (flat, so setup.cfg's static/* packages them all).
  modules = sorted(name for name in os.listdir(server._STATIC)
                   if name.endswith('.js'))
  assert 'editor.js' in modules and len(modules) > 1
  imported = set()
  for name in modules:
    response = client.get(f'/static/{name}')
    assert response.status_code == 200, name
    assert response.mimetype == 'text/javascript', (name, response.mimetype)
    source = response.get_data(as_text=True)
    assert 'http' not in source, name
    for specifier in re.findall(r"^import .* from '([^']*)';$", source,
                                re.MULTILINE):
      assert re.fullmatch(r'\./[a-z]+\.js', specifier), (name, specifier)
      imported.add(specifier[2:])
  assert imported <= set(modules)
  assert imported | {'editor.js'} == set(modules)    # none left unused


def test_upload_returns_predicted_map_and_colorization(client):
  photo = make_photo()
  body = upload(client, encode(photo)).get_json()
  assert (body['width'], body['height']) == (96, 64)
  engine = FakeEngine()
  np.testing.assert_array_equal(engine.segment(photo)[0, ::32], [0, 1, 2])
  np.testing.assert_array_equal(browser.png_of(body['labels']),
                                engine.segment(photo))
  np.testing.assert_array_equal(browser.png_of(body['result']),
                                engine.colorize(photo))


def test_edited_map_changes_the_result_only_where_edited(client):
  photo = make_photo()
  body = upload(client, encode(photo)).get_json()
  labels = browser.png_of(body['labels'])
  edited = labels.copy()
  edited[10:30, 5:20] = 2                  # dark band (0) repainted
  response = client.post('/api/colorize',
                         json={'id': body['id'], 'map': map_url(edited)})
  assert response.status_code == 200, response.get_json()
  result = browser.png_of(response.get_json()['result'])
  changed = np.any(result != browser.png_of(body['result']), axis=-1)
  np.testing.assert_array_equal(changed, edited != labels)
  assert changed.sum() == 20 * 15


def test_map_may_be_a_palette_png_of_another_resolution(client):
  photo = make_photo()
  body = upload(client, encode(photo)).get_json()
  small = np.full((16, 24), 1, np.uint8)
  indexed = Image.fromarray(small, mode='L').convert('P')
  buffer = io.BytesIO()
  indexed.save(buffer, format='PNG')
  url = 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()
  result = browser.png_of(client.post('/api/colorize', json={
      'id': body['id'], 'map': url}).get_json()['result'])
  everywhere_mid = np.ones((64, 96), np.uint8)
  expected = FakeEngine().colorize(photo, everywhere_mid)
  np.testing.assert_array_equal(result, expected)
  changed = np.any(result != FakeEngine().colorize(photo), axis=-1)
  np.testing.assert_array_equal(changed,
                                FakeEngine().segment(photo) != everywhere_mid)


@pytest.mark.parametrize('payload, status, message', [
    pytest.param({'map': map_url(np.full((64, 96), 7, np.uint8))}, 400,
                 'indices 0..2', id='unknown_class'),
    pytest.param({'map': 'not a data url'}, 400, 'PNG data URL',
                 id='not_a_data_url'),
    pytest.param({'map': 'data:image/png;base64,AAAA'}, 400,
                 'not a readable PNG', id='not_a_png'),
    pytest.param({'id': 'gone'}, 404, 'open it again', id='unknown_photo'),
])
def test_bad_colorize_requests_are_explained(client, payload, status,
                                             message):
  body = upload(client, encode(make_photo())).get_json()
  response = client.post('/api/colorize', json={'id': body['id'], **payload})
  assert response.status_code == status
  assert message in response.get_json()['error']
  assert client.post('/api/colorize', data='[]',
                     content_type='application/json').status_code == 400


def _huge_png():
  # 2000 x 1000 of one colour: a small file, 2 megapixels.
  return encode(np.zeros((1000, 2000, 3), np.uint8))


@pytest.mark.parametrize('make_data, name, status, message', [
    pytest.param(lambda: b'just some text\n', 'notes.txt', 415,
                 'not an image', id='not_an_image'),
    pytest.param(truncated_jpeg, 'cut.jpg', 422, 'truncated or corrupt',
                 id='truncated_jpeg'),
    pytest.param(lambda: b'', 'empty.png', 400, 'empty', id='empty'),
    pytest.param(lambda: os.urandom(30_000), 'noise.bin', 413, 'upload limit',
                 id='over_the_limit'),
    pytest.param(lambda: os.urandom(200_000), 'big.bin', 413, 'upload limit',
                 id='over_the_limit_and_framing'),
    pytest.param(_huge_png, 'huge.png', 413, 'the limit is 1 megapixels',
                 id='too_many_pixels'),
])
def test_bad_uploads_get_a_message_and_the_server_keeps_working(
    make_data, name, status, message):
  client = server.create_app(FakeEngine(), max_upload_bytes=20_000,
                             max_pixels=1_000_000).test_client()
  response = upload(client, make_data(), name)
  assert response.status_code == status
  assert message in response.get_json()['error']
  good = upload(client, encode(make_photo()))
  assert good.status_code == 200 and good.get_json()['result']


def test_missing_file_field(client):
  response = client.post('/api/image', data={},
                         content_type='multipart/form-data')
  assert response.status_code == 400
  assert 'No file' in response.get_json()['error']


def test_exif_rotated_photo_is_shown_upright(client):
  exif = Image.Exif()
  exif[0x0112] = 6                        # rotate 90 degrees clockwise
  data = encode(make_photo(), 'JPEG', exif=exif.tobytes())
  body = upload(client, data, 'phone.jpg').get_json()
  assert (body['width'], body['height']) == (64, 96)


def test_only_the_most_recent_photos_are_kept():
  client = server.create_app(FakeEngine(), max_images=2).test_client()
  ids = [upload(client, encode(make_photo())).get_json()['id']
         for _ in range(3)]
  assert client.post('/api/colorize', json={'id': ids[0]}).status_code == 404
  for photo_id in ids[1:]:
    assert client.post('/api/colorize',
                       json={'id': photo_id}).status_code == 200


def test_model_failure_is_a_json_500_and_the_server_recovers():
  engine = FakeEngine()
  app = server.create_app(engine)
  app.logger.disabled = True
  client = app.test_client()
  body = upload(client, encode(make_photo())).get_json()
  engine.colorize = lambda rgb, labels=None: 1 / 0
  response = client.post('/api/colorize', json={'id': body['id']})
  assert response.status_code == 500
  assert 'ZeroDivisionError' in response.get_json()['error']
  del engine.colorize
  assert client.post('/api/colorize',
                     json={'id': body['id']}).status_code == 200


def test_sample_mode_returns_n_images():
  client = server.create_app(FakeEngine(mode='sample')).test_client()
  body = upload(client, encode(make_photo())).get_json()
  response = client.post('/api/sample', json={
      'id': body['id'], 'num_samples': 3, 'temperature': 0.7, 'seed': 5})
  images = [browser.png_of(url) for url in response.get_json()['images']]
  assert len(images) == 3 and all(i.shape == (64, 96, 3) for i in images)
  assert not np.array_equal(images[0], images[1])
  for bad in ({'num_samples': 0}, {'num_samples': 99},
              {'temperature': -1}, {'seed': 'x'}):
    response = client.post('/api/sample', json={'id': body['id'], **bad})
    assert response.status_code == 400, bad
  # Sample mode takes no map; edit mode does not sample.
  assert client.post('/api/colorize', json={
      'id': body['id'], 'map': map_url(np.zeros((64, 96), np.uint8))
  }).status_code == 400
  edit = server.create_app(FakeEngine()).test_client()
  edit_id = upload(edit, encode(make_photo())).get_json()['id']
  assert edit.post('/api/sample', json={'id': edit_id}).status_code == 400


# --------------------------------------------------------------- browser


@pytest.fixture(scope='module')
def chrome():
  """One headless Chromium (Debian's, with its chromedriver) per module.
  Missing binaries fail the tests: CI installs them (.ci/run)."""
  problem = browser.missing_browser()
  if problem:
    pytest.fail(problem, pytrace=False)
  profile = tempfile.mkdtemp(prefix='editor_chrome_')
  driver = browser.start_chrome(profile)
  yield driver
  driver.quit()
  shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope='module')
def serve_editor():
  """start(engine, **create_app_kwargs) -> 'http://127.0.0.1:PORT': an
  editor server in a background thread, stopped with the module."""
  servers = []

  def start(engine, **kwargs):
    httpd, url = browser.start_server(engine, **kwargs)
    servers.append(httpd)
    return url

  yield start
  for httpd in servers:
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope='module')
def fake_editor(serve_editor):
  return serve_editor(FakeEngine())


@pytest.fixture
def photo_file(tmp_path):
  path = tmp_path / 'bands.png'
  path.write_bytes(encode(make_photo()))
  return str(path)


def test_browser_stroke_recolors_only_near_the_stroke(chrome, fake_editor,
                                                      photo_file):
  browser.open_editor(chrome, fake_editor)
  browser.upload_photo(chrome, photo_file)
  version = browser.wait_for_result(chrome, 0)
  photo = make_photo()
  predicted = browser.page_labels(chrome)
  # The map reached the page's index buffer exactly.
  np.testing.assert_array_equal(predicted, FakeEngine().segment(photo))
  before = browser.result_pixels(chrome)
  np.testing.assert_array_equal(before, FakeEngine().colorize(photo))

  assert browser.choose_class(chrome, 'brig') == 2
  assert chrome.execute_script(
      'return window.colorjaxEditor.state().current') == 2
  stroke = [(8, 32), (14, 30), (20, 32), (26, 34)]   # in the dark band
  browser.paint_stroke(chrome, stroke)
  version = browser.wait_for_result(chrome, version)
  labels = browser.page_labels(chrome)
  painted = labels != predicted
  assert painted.any() and set(labels[painted]) == {2}
  radius = int(chrome.execute_script(
      'return document.getElementById("brush-size").value')) / 2
  ys, xs = np.nonzero(painted)
  assert xs.min() >= 8 - radius - 1 and xs.max() <= 26 + radius + 1
  assert ys.min() >= 30 - radius - 1 and ys.max() <= 34 + radius + 1

  after = browser.result_pixels(chrome)
  changed = np.any(after != before, axis=-1)
  np.testing.assert_array_equal(changed, painted)
  assert changed[30:35, 8:27].any()                   # along the stroke
  assert not changed[:, 50:].any() and not changed[:15].any()  # far away

  # Undo brings the map and the colorization back.
  ActionChains(chrome).key_down(Keys.CONTROL).send_keys('z').key_up(
      Keys.CONTROL).perform()
  version = browser.wait_for_result(chrome, version)
  np.testing.assert_array_equal(browser.page_labels(chrome), predicted)
  np.testing.assert_array_equal(browser.result_pixels(chrome), before)


def test_browser_fill_and_picker(chrome, fake_editor, photo_file):
  browser.open_editor(chrome, fake_editor)
  browser.upload_photo(chrome, photo_file)
  version = browser.wait_for_result(chrome, 0)
  predicted = browser.page_labels(chrome)
  before = browser.result_pixels(chrome)
  chrome.find_element(By.ID, 'tool-picker').click()
  browser.paint_stroke(chrome, [(80, 10)])        # bright band: class 2
  assert chrome.execute_script(
      'return window.colorjaxEditor.state().current') == 2
  chrome.find_element(By.ID, 'tool-fill').click()
  browser.paint_stroke(chrome, [(45, 40)])        # fills the mid band
  browser.wait_for_result(chrome, version)
  labels = browser.page_labels(chrome)
  np.testing.assert_array_equal(labels, np.where(predicted == 1, 2,
                                                 predicted))
  after = browser.result_pixels(chrome)
  np.testing.assert_array_equal(after,
                                FakeEngine().colorize(make_photo(), labels))
  np.testing.assert_array_equal(np.any(after != before, axis=-1),
                                predicted == 1)


def test_browser_bad_upload_shows_message_then_good_upload_works(
    chrome, fake_editor, photo_file, tmp_path):
  browser.open_editor(chrome, fake_editor)
  status = chrome.find_element(By.ID, 'status')
  for name, data, message in (('notes.txt', b'plain text', 'not an image'),
                              ('cut.jpg', truncated_jpeg(), 'truncated')):
    bad = tmp_path / name
    bad.write_bytes(data)
    browser.upload_photo(chrome, str(bad))
    browser.wait_until(lambda: 'error' in status.get_attribute('class'),
                       message='the error message')
    assert message in status.text and name in status.text
  browser.upload_photo(chrome, photo_file)
  browser.wait_for_result(chrome, 0)
  assert 'error' not in status.get_attribute('class')
  assert 'bands.png' in status.text

  shot = tmp_path / 'editor.png'
  assert chrome.save_screenshot(str(shot))
  with Image.open(shot) as image:
    assert image.format == 'PNG' and image.width > 600
    assert len(set(image.convert('RGB').getdata())) > 20


def test_browser_upload_limits_are_explained(chrome, serve_editor,
                                            photo_file, tmp_path):
  browser.open_editor(chrome, serve_editor(
      FakeEngine(), max_upload_bytes=20_000, max_pixels=1_000_000))
  status = chrome.find_element(By.ID, 'status')
  big, huge = tmp_path / 'big.png', tmp_path / 'huge.png'
  big.write_bytes(encode(np.random.default_rng(0).integers(
      0, 256, (100, 100, 3), np.uint8)))                  # ~30 kB
  huge.write_bytes(_huge_png())
  for path, message in ((big, 'upload limit'), (huge, 'megapixels')):
    chrome.execute_script('document.getElementById("status").className = ""')
    browser.upload_photo(chrome, str(path))
    browser.wait_until(lambda: 'error' in status.get_attribute('class'),
                       message='the error message')
    assert message in status.text, status.text
  browser.upload_photo(chrome, photo_file)
  browser.wait_for_result(chrome, 0)
  assert 'error' not in status.get_attribute('class')


def test_browser_sample_mode_shows_n_samples(chrome, serve_editor,
                                             photo_file):
  browser.open_editor(chrome, serve_editor(FakeEngine(mode='sample')))
  assert not chrome.find_element(By.ID, 'tool-brush').is_displayed()
  number = chrome.find_element(By.ID, 'num-samples')
  number.clear()
  number.send_keys('3')
  browser.upload_photo(chrome, photo_file)
  browser.wait_for_result(chrome, 0)
  browser.wait_until(lambda: len(chrome.find_elements(
      By.CSS_SELECTOR, '#samples img')) == 3, message='3 samples')
  assert chrome.find_element(By.ID, 'temperature').is_displayed()


# ------------------------------------------------- with a trained model


@pytest.fixture(scope='module')
def real_workdir(semanticdriven_workdirs, tmp_path_factory):
  """The tiny two-stage SemanticDriven workdir, run at 128x128 instead of
  its 32x32 (both networks are fully convolutional): a map edit then
  reaches only the pixels within the colorizer's receptive field (radius
  79 model pixels, tests/test_semanticdriven.py)."""
  import json  # pylint: disable=g-import-not-at-top
  from colorjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  _, workdir = semanticdriven_workdirs
  copy = str(tmp_path_factory.mktemp('sd_editor') / 'workdir')
  shutil.copytree(workdir, copy)
  path = os.path.join(copy, workdir_lib.CONFIG_FILE)
  with open(path) as f:
    config = json.load(f)
  config['data']['image_size'] = 128
  with open(path, 'w') as f:
    json.dump(config, f)
  return copy


def _wide_scene():
  """A 256x128 photo: two semantic_shapes-like halves of flat regions."""
  photo = np.zeros((128, 256, 3), np.uint8)
  photo[:] = (90, 140, 200)
  photo[64:] = (70, 150, 60)
  photo[40:90, 30:80] = (200, 60, 50)
  photo[30:100, 170:230] = (230, 200, 40)
  return photo


def test_workdir_engine_serves_what_colorize_writes(real_workdir, tmp_path):
  """The API's predicted map and colorizations equal the colorize command's
  files (the engine is the same code path)."""
  from colorjax import colorize  # pylint: disable=g-import-not-at-top
  from colorjax.editor import engine as engine_lib  # pylint: disable=g-import-not-at-top
  engine = engine_lib.WorkdirEngine(real_workdir)
  assert engine.mode == 'edit' and engine.method == 'semanticdriven'
  assert engine.class_names[:2] == ('sky', 'grass')
  client = server.create_app(engine).test_client()
  photo = _wide_scene()
  Image.fromarray(photo).save(tmp_path / 'wide.png')
  runs = []
  predict = engine._colorizer.predict    # pylint: disable=protected-access
  engine._colorizer.predict = lambda *a, **k: runs.append(1) or predict(   # pylint: disable=protected-access
      *a, **k)
  body = upload(client, encode(photo), 'wide.png').get_json()
  assert len(runs) == 1       # one model run gives the map and the colours
  # A writeable array is not memoised (it could change in place, same id).
  writeable = photo.copy()
  engine.segment(writeable)
  writeable[:] = 0
  engine.colorize(writeable)
  assert len(runs) == 3
  written, _ = colorize.colorize(real_workdir, [str(tmp_path / 'wide.png')],
                                 str(tmp_path / 'out'),
                                 save_segmentation=True)
  np.testing.assert_array_equal(browser.png_of(body['result']),
                                np.asarray(Image.open(written[0])))
  labels = browser.png_of(body['labels'])
  np.testing.assert_array_equal(
      labels, np.asarray(Image.open(tmp_path / 'out' /
                                    'wide_segmentation.png')))
  edited = labels.copy()
  edited[:, :60] = (labels[:, :60] + 2) % len(engine.class_names)
  colorize.indexed_png(edited).save(tmp_path / 'wide_segmentation.png')
  again, _ = colorize.colorize(real_workdir, [str(tmp_path / 'wide.png')],
                               str(tmp_path / 'edited'),
                               segmentation=str(tmp_path))
  result = client.post('/api/colorize', json={
      'id': body['id'], 'map': map_url(edited)}).get_json()['result']
  np.testing.assert_array_equal(browser.png_of(result),
                                np.asarray(Image.open(again[0])))


def test_browser_stroke_with_a_trained_model(chrome, serve_editor,
                                             real_workdir, tmp_path):
  """Paint a stroke of another class near the left edge: the colours change
  along it, and nothing changes beyond the receptive field (> 79 model
  pixels = 158 photo pixels away, plus the bilinear upsampling of ab)."""
  from colorjax.editor import engine as engine_lib  # pylint: disable=g-import-not-at-top
  engine = engine_lib.WorkdirEngine(real_workdir)
  url = serve_editor(engine)
  path = tmp_path / 'wide.png'
  path.write_bytes(encode(_wide_scene()))
  browser.open_editor(chrome, url)
  browser.upload_photo(chrome, str(path))
  version = browser.wait_for_result(chrome, 0)
  predicted = browser.page_labels(chrome)
  before = browser.result_pixels(chrome)
  current = int(predicted[20, 10])
  other = (current + 3) % 7
  assert browser.choose_class(chrome, engine.class_names[other]) == other
  browser.paint_stroke(chrome, [(6, 10), (14, 20), (22, 30), (30, 40)])
  browser.wait_for_result(chrome, version)
  labels = browser.page_labels(chrome)
  painted = labels != predicted
  assert painted.any() and set(labels[painted]) == {other}
  after = browser.result_pixels(chrome)
  change = np.abs(after.astype(np.int32) - before.astype(np.int32)).max(-1)
  ys, xs = np.nonzero(painted)
  assert change[ys, xs].max() > 3           # the colours follow the map
  assert change[:, 30 + 160 + 4:].max() <= 1, change[:, 194:].max()
