"""Serves the semantic-map editor for one trained workdir.

  python -m colorjax.editor --workdir=runs/semanticdriven_demo
  python -m colorjax.editor --workdir=W --port=8080 --host=0.0.0.0

Then open the printed URL. The model is loaded (and jitted) once; the page
keeps the map being edited, the server the last photos opened. Library logs
are hidden unless --verbosity >= 1; requests are logged.
"""

import socket

from absl import app
from absl import flags
from PIL import Image

from colorjax import cli
from colorjax import console
from colorjax import errors
from colorjax.editor import server
from colorjax.editor.engine import WorkdirEngine

flags.DEFINE_string('workdir', None, 'a trained workdir')
flags.DEFINE_integer('port', 8000, 'port to listen on (0: any free one)')
flags.DEFINE_string('host', '127.0.0.1', 'address to listen on; 0.0.0.0 '
                    'opens the editor to the network (it has no login)')
flags.DEFINE_integer('max_upload_mb', 25, 'largest photo file accepted (MB)')
flags.DEFINE_integer('max_pixels', 40_000_000, 'largest photo accepted '
                     '(width x height)')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def _listen_error(host: str, port: int, error: OSError) -> errors.UserError:
  return errors.UserError(
      f'cannot listen on {host}:{port}: {error.strerror or error} (is '
      'another program using the port? --port=0 picks a free one)')


def check_can_listen(host: str, port: int) -> None:
  """A UserError now if host:port cannot be bound (as the server binds
  it: SO_REUSEADDR), rather than after the model has loaded."""
  family = socket.AF_INET6 if ':' in host else socket.AF_INET
  try:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
      probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      probe.bind((host, port))
  except OSError as e:
    raise _listen_error(host, port, e) from e


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  console.quiet_libraries(FLAGS.verbosity)
  # PIL refuses images over ~179 MP itself; let --max_pixels decide.
  Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, FLAGS.max_pixels)
  check_can_listen(FLAGS.host, FLAGS.port)   # before minutes of loading
  console.say(f'Loading {FLAGS.workdir} ...')
  engine = WorkdirEngine(FLAGS.workdir)
  web_app = server.create_app(
      engine, max_upload_bytes=FLAGS.max_upload_mb * 1000 * 1000,
      max_pixels=FLAGS.max_pixels)
  try:
    httpd = server.make_server(web_app, FLAGS.host, FLAGS.port)
  except OSError as e:
    raise _listen_error(FLAGS.host, FLAGS.port, e) from e
  host = FLAGS.host
  if host in ('0.0.0.0', '::', ''):   # every interface: this machine is one
    host = 'localhost'
  elif ':' in host:
    host = f'[{host}]'
  console.say(f'{engine.method} ({engine.mode} mode) editor at '
              f'http://{host}:{httpd.server_port}/  (Ctrl+C stops it)')
  try:
    httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    httpd.server_close()


if __name__ == '__main__':
  cli.run(main)
