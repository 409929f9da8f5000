"""The command-line tools' shared entry point: expected failures become one
message and exit status 2.

  if __name__ == '__main__':
    cli.run(main)

Expected failures are `errors.UserError` (missing dataset, weights or
workdir, bad config values, a busy port), `app.UsageError`, bad flags and
the OS errors of paths a user names (file not found, permission denied, is
a directory). Anything else keeps its traceback: it is a bug. `--verbosity=1`
or COLORJAX_TRACEBACK=1 shows the traceback of an expected failure too.
"""

import os
import sys
from typing import Callable, List, Optional

from absl import app
from absl import flags

from colorjax import errors

TRACEBACK_ENV = 'COLORJAX_TRACEBACK'
USAGE_STATUS = 2   # as argparse and most Unix tools: the user's input is wrong

# OS errors whose message names the user's path: not bugs.
_EXPECTED_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError,
                       NotADirectoryError)


def program_name() -> str:
  """`python -m colorjax.evaluate` -> 'colorjax.evaluate'."""
  main_module = sys.modules.get('__main__')
  spec = getattr(main_module, '__spec__', None)
  if spec is not None and spec.name:
    name = spec.name
    return name[:-len('.__main__')] if name.endswith('.__main__') else name
  return os.path.basename(sys.argv[0] or 'colorjax')


def show_tracebacks(argv: Optional[List[str]] = None) -> bool:
  """--verbosity >= 1 (read from argv before the flags are parsed) or
  COLORJAX_TRACEBACK set."""
  if os.environ.get(TRACEBACK_ENV, '') not in ('', '0'):
    return True
  if argv is not None:
    for arg in argv:
      if arg.startswith(('--verbosity=', '-v=')):
        value = arg.split('=', 1)[1]
        if value.lstrip('-').isdigit() and int(value) >= 1:
          return True
    return False
  return flags.FLAGS['verbosity'].value >= 1 if 'verbosity' in flags.FLAGS \
      else False


def is_expected(error: BaseException) -> bool:
  return isinstance(error, (errors.UserError, app.UsageError) +
                    _EXPECTED_OS_ERRORS)


def fail(message: str) -> None:
  """Prints `<program>: error: message` to stderr and exits with status 2."""
  print(f'{program_name()}: error: {message}', file=sys.stderr, flush=True)
  sys.exit(USAGE_STATUS)


def message(error: BaseException) -> str:
  """What a person reads of an error (a path error names the path)."""
  if isinstance(error, OSError) and error.filename and error.strerror:
    return f'{error.strerror}: {error.filename}'
  text = str(error)
  if isinstance(error, KeyError) and len(error.args) == 1:
    text = str(error.args[0])     # KeyError's str() adds quotes
  return text or type(error).__name__


def _flag_message(error: Exception) -> str:
  text = message(error)
  if 'Failed loading config file' in text:   # the cause is its last line
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f'cannot load the config file: {lines[-1]}'
  if isinstance(error, (KeyError, AttributeError)):
    return f'the config has no field {text.strip(chr(34)).strip(chr(39))}'
  return text


def _parse_flags(argv: List[str]) -> List[str]:
  """absl's parser, with one line and status 2 for a bad flag, a config
  override of a key the config lacks, or a config file that fails to load
  (ml_collections defers that error to the first use of the config)."""
  try:
    remaining = flags.FLAGS(argv)
    for name in flags.FLAGS:
      flag = flags.FLAGS[name]
      if type(flag).__module__.startswith('ml_collections.config_flags'):
        getattr(flag.value, 'keys', None)   # a failed load raises here
    return remaining
  except Exception as e:  # pylint: disable=broad-except  (all are flag errors)
    if show_tracebacks(argv):
      raise
    fail(f'{_flag_message(e)}\n(--helpshort lists the flags)')
    raise  # unreachable: fail exits


def guarded(main: Callable[[List[str]], None]) -> Callable[[List[str]], None]:
  """`main`, with expected failures turned into `fail(message)`."""
  def wrapped(argv):
    try:
      return main(argv)
    except Exception as e:  # pylint: disable=broad-except
      if not is_expected(e) or show_tracebacks():
        raise
      fail(message(e))
  return wrapped


def run(main: Callable[[List[str]], None]) -> None:
  """`app.run(main)` for a colorjax tool (module docstring)."""
  app.run(guarded(main), flags_parser=_parse_flags)
