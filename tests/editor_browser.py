"""Drives the editor page in Debian's headless Chromium (Selenium).

Shared by tests/test_editor.py (its `chrome` and `serve_editor` fixtures)
and benchmarks/editor_screenshot.py. The machine has no network: every
Chrome feature that would dial out is off, and the profile is a fresh
temporary directory.
"""

import base64
import io
import os
import threading
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from colorjax.editor import server

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu',
               '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update',
               '--disable-sync')


def missing_browser() -> Optional[str]:
  """None, or what to tell the person when Chromium is not installed."""
  missing = [path for path in (CHROMIUM, CHROMEDRIVER)
             if not os.path.exists(path)]
  if missing:
    return f'{" and ".join(missing)} missing: run `{INSTALL}`'
  return None


def start_chrome(profile_dir: str, width: int = 1400, height: int = 900):
  """A headless Chromium with a `width` x `height` window."""
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for argument in CHROME_ARGS + (f'--window-size={width},{height}',
                                 f'--user-data-dir={profile_dir}'):
    options.add_argument(argument)
  driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
  driver.set_script_timeout(30)
  return driver


def start_server(engine, **create_app_kwargs):
  """(server, 'http://127.0.0.1:PORT'): the editor for `engine` on a free
  port, served by a daemon thread; stop it with shutdown() + server_close().
  """
  httpd = server.make_server(server.create_app(engine, **create_app_kwargs),
                             '127.0.0.1', 0, log_requests=False)
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  return httpd, f'http://127.0.0.1:{httpd.server_port}'


def png_of(url: str) -> np.ndarray:
  assert url.startswith('data:image/png;base64,'), url[:40]
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(
      url.split(',', 1)[1]))))


def wait_until(condition, timeout: float = 15.0, message: str = 'condition'):
  deadline = time.monotonic() + timeout
  while True:
    value = condition()
    if value:
      return value
    if time.monotonic() > deadline:
      raise AssertionError(f'timed out after {timeout:g} s waiting for '
                           f'{message}')
    time.sleep(0.05)


def open_editor(driver, url: str) -> None:
  """Loads the page and waits until it has read /api/info."""
  driver.get(url + '/')
  wait_until(lambda: driver.execute_script(
      'return document.body.dataset.mode') != 'loading', message='/api/info')


def result_version(driver) -> int:
  """Counts the results the page has shown (each upload, edit, sample)."""
  return int(driver.execute_script(
      'return document.getElementById("result").dataset.version'))


def upload_photo(driver, path: str) -> None:
  driver.find_element(By.ID, 'file').send_keys(os.path.abspath(path))


def wait_for_result(driver, after_version: int,
                    timeout: float = 15.0) -> int:
  """Waits for a result newer than `after_version` and an idle page (no
  debounce timer, request or sampling pending); returns its version."""
  wait_until(lambda: result_version(driver) > after_version and
             driver.execute_script('return document.body.dataset.busy') ==
             '0', timeout, 'the colorization')
  return result_version(driver)


def result_pixels(driver) -> np.ndarray:
  """The result image (#result) as uint8 [H, W, 3]."""
  return png_of(driver.find_element(By.ID, 'result').get_attribute('src'))


def page_labels(driver) -> np.ndarray:
  """The map being edited, read from the page's index buffer: uint8 [H, W]."""
  photo = driver.execute_script('return window.colorjaxEditor.photo()')
  flat = driver.execute_script(
      'return Array.from(window.colorjaxEditor.labels())')
  return np.asarray(flat, np.uint8).reshape(photo['height'], photo['width'])


def _canvas_offset(driver, point):
  """(#photo-canvas, offset of image pixel `point` from its centre in CSS
  pixels, which is what Selenium's element offsets count from)."""
  canvas = driver.find_element(By.ID, 'photo-canvas')
  shown_width, shown_height, width = driver.execute_script(
      'const r = arguments[0].getBoundingClientRect();'
      'return [r.width, r.height, arguments[0].width];', canvas)
  scale = shown_width / width
  return canvas, (int(round((point[0] + 0.5) * scale - shown_width / 2)),
                  int(round((point[1] + 0.5) * scale - shown_height / 2)))


def hover(driver, point: Tuple[float, float]) -> None:
  """Moves the mouse over image pixel `point` without pressing it."""
  canvas, offset = _canvas_offset(driver, point)
  ActionChains(driver).move_to_element_with_offset(canvas, *offset).perform()


def paint_stroke(driver, points: Sequence[Tuple[float, float]]) -> None:
  """Presses the mouse at image pixel points[0] of #photo-canvas, drags it
  through the others and releases it (one point: a click)."""
  canvas, first = _canvas_offset(driver, points[0])
  chain = ActionChains(driver, duration=20)
  chain.move_to_element_with_offset(canvas, *first)
  chain.click_and_hold()
  previous = first
  for point in points[1:]:
    current = _canvas_offset(driver, point)[1]
    chain.move_by_offset(current[0] - previous[0], current[1] - previous[1])
    previous = current
  chain.release().perform()


def choose_class(driver, query: str) -> int:
  """Types `query` into #class-search and clicks the first class listed."""
  search = driver.find_element(By.ID, 'class-search')
  search.clear()
  search.send_keys(query)
  visible: List = [item for item in driver.find_elements(
      By.CSS_SELECTOR, '#class-list li[data-index]') if item.is_displayed()]
  assert visible, f'no class matches {query!r}'
  visible[0].click()
  return int(visible[0].get_attribute('data-index'))
