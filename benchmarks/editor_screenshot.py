"""Screenshot of the semantic-map editor with a photo open (docs/editor.png).

  python benchmarks/editor_screenshot.py --workdir=runs/semanticdriven_demo \
      --photo=my_photo.jpg --out=docs/editor.png

Serves the editor on a free local port and opens it in Debian's headless
Chromium (`apt-get install -y chromium chromium-driver`). Without
--workdir it uses a FAKE engine (classes by brightness and hue, result =
class colour x lightness): the picture then shows the page, not a model.
Without --photo it uses scikit-image's cat photo (`skimage.data.chelsea`).
It paints one brush stroke with the photo's second most frequent class
(--nostroke: none), so the picture shows an edited map and its result.
"""

import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from colorjax import console

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tests'))
import editor_browser as browser  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('workdir', None, 'a trained workdir (default: a fake '
                    'engine)')
flags.DEFINE_string('photo', None, 'the photo to open (default: '
                    'skimage.data.chelsea)')
flags.DEFINE_string('out', 'docs/editor.png', 'where the PNG goes')
flags.DEFINE_integer('width', 1440, 'browser window width')
flags.DEFINE_integer('height', 900, 'browser window height')
flags.DEFINE_bool('stroke', True, 'paint a brush stroke before the '
                  'screenshot (--nostroke: the predicted map)')
FLAGS = flags.FLAGS


class FakeEngine:
  """Six classes from brightness and warmth: enough to show the page."""

  method = 'fake engine'
  mode = 'edit'
  class_names = ('shadow', 'dark_warm', 'dark_cool', 'light_warm',
                 'light_cool', 'highlight')
  palette = np.array([[60, 60, 140], [200, 90, 40], [40, 150, 120],
                      [240, 170, 60], [90, 170, 240], [245, 230, 120]],
                     np.uint8)

  def segment(self, rgb):
    rgb = rgb.astype(np.float32)
    light = rgb.mean(-1)
    warm = rgb[..., 0] - rgb[..., 2] > 8
    labels = np.where(light < 150, np.where(warm, 1, 2), np.where(warm, 3, 4))
    labels = np.where(light < 45, 0, np.where(light > 225, 5, labels))
    return labels.astype(np.uint8)

  def colorize(self, rgb, labels=None):
    if labels is None:
      labels = self.segment(rgb)
    height, width = rgb.shape[:2]
    labels = labels[np.arange(height) * labels.shape[0] // height][
        :, np.arange(width) * labels.shape[1] // width]
    light = rgb.astype(np.float32).mean(-1, keepdims=True) / 255
    tint = self.palette[labels].astype(np.float32)
    tint = tint / tint.mean(-1, keepdims=True)
    return np.clip(light * 255 * (0.45 + 0.55 * tint), 0, 255).astype(
        np.uint8)

  def sample(self, rgb, num_samples, temperature=None, seed=0):
    del temperature, seed
    return [self.colorize(rgb)] * num_samples


def photo_path(directory):
  if FLAGS.photo:
    return FLAGS.photo
  from skimage import data  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, 'chelsea.png')
  Image.fromarray(data.chelsea()).save(path)
  return path


def main(argv):
  del argv
  problem = browser.missing_browser()
  if problem:
    raise app.UsageError(problem)
  console.quiet_libraries(FLAGS.verbosity)
  if FLAGS.workdir:
    from colorjax.editor.engine import WorkdirEngine  # pylint: disable=g-import-not-at-top
    engine = WorkdirEngine(FLAGS.workdir)
  else:
    engine = FakeEngine()
  scratch = tempfile.mkdtemp(prefix='editor_screenshot_')
  httpd, url = browser.start_server(engine)
  driver = browser.start_chrome(os.path.join(scratch, 'profile'),
                                FLAGS.width, FLAGS.height)
  try:
    browser.open_editor(driver, url)
    browser.upload_photo(driver, photo_path(scratch))
    version = browser.wait_for_result(driver, 0, timeout=600)
    if FLAGS.stroke:
      labels = browser.page_labels(driver)
      counts = np.bincount(labels.ravel(), minlength=len(engine.class_names))
      second = int(np.argsort(counts)[-2])
      driver.find_element(
          browser.By.CSS_SELECTOR,
          f'#class-list li[data-index="{second}"]').click()
      height, width = labels.shape
      browser.paint_stroke(driver, [(width * x, height * (0.55 + 0.1 * y))
                                    for x, y in ((0.15, 0), (0.3, 0.5),
                                                 (0.45, 0), (0.6, 0.5))])
      browser.wait_for_result(driver, version, timeout=600)
    # The mouse rests on the photo: the brush outline and the class under
    # it show.
    height, width = browser.page_labels(driver).shape
    browser.hover(driver, (width * 0.5, height * 0.4))
    time.sleep(0.3)       # let the last image paint
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    driver.save_screenshot(FLAGS.out)
  finally:
    driver.quit()
    httpd.shutdown()
    httpd.server_close()
    shutil.rmtree(scratch, ignore_errors=True)
  print(f'wrote {FLAGS.out} ({engine.method})')


if __name__ == '__main__':
  app.run(main)
