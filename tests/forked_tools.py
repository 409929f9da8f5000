"""Runs many `python -m <tool> <args>` commands from one Python that has
imported their shared libraries once, forking a child per command.

Why: each command-line tool started fresh spends ~2.5 s of a core importing
jax, flax, tensorflow-datasets and colorjax before it reaches the code under
test; the error tests start 18 of them. A forked child is still its own
process: it runs the tool's module as `__main__` (runpy, as `-m` does), with
its own argv, environment, stdout/stderr file descriptors and exit status.
The tool modules themselves are not imported here (they define absl flags
at import, which a second import would define twice); only the libraries
beneath them are, and no JAX backend is started before the fork.

Protocol: a JSON object {case: {"module", "args", "env", "unset"}} on stdin,
plus `--dir=D`; each child writes D/<case>.stdout and D/<case>.stderr; the
parent prints {case: exit status} as JSON.
"""

import importlib
import json
import os
import runpy
import sys
import traceback

PRELOAD = (
    'numpy', 'PIL.Image', 'absl.app', 'absl.flags', 'absl.logging',
    'ml_collections', 'jax', 'jax.numpy', 'flax.linen', 'optax',
    'orbax.checkpoint', 'tensorflow_datasets', 'grain', 'tqdm',
    'colorjax.cli', 'colorjax.errors', 'colorjax.train', 'colorjax.methods',
    'colorjax.workdir', 'colorjax.data.pipeline',
)


def _exit_status(exit_exception):
  code = exit_exception.code
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)      # sys.exit('message'), as Python does
  return 1


def _child(case, spec, directory):
  """Never returns: the tool's exit status ends the forked process."""
  status = 70
  try:
    for name in spec.get('unset', ()):
      os.environ.pop(name, None)
    os.environ.update(spec.get('env', {}))
    with open(os.devnull) as null:
      os.dup2(null.fileno(), 0)
    for fd, stream in ((1, 'stdout'), (2, 'stderr')):
      with open(os.path.join(directory, f'{case}.{stream}'), 'w') as f:
        os.dup2(f.fileno(), fd)
    sys.argv = [spec['module']] + list(spec['args'])
    try:
      runpy.run_module(spec['module'], run_name='__main__', alter_sys=True)
      status = 0
    except SystemExit as e:
      status = _exit_status(e)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
      status = 1
  finally:
    try:
      sys.stdout.flush()
      sys.stderr.flush()
    finally:
      os._exit(status)  # pylint: disable=protected-access


def main():
  directory = next(a.split('=', 1)[1] for a in sys.argv[1:]
                   if a.startswith('--dir='))
  cases = json.load(sys.stdin)
  for name in PRELOAD:
    importlib.import_module(name)
  sys.stdout.flush()
  sys.stderr.flush()
  children = {}
  for case, spec in cases.items():
    pid = os.fork()
    if pid == 0:
      _child(case, spec, directory)
    children[case] = pid
  statuses = {}
  for case, pid in children.items():
    _, status = os.waitpid(pid, 0)
    statuses[case] = os.waitstatus_to_exitcode(status)
  json.dump(statuses, sys.stdout)


if __name__ == '__main__':
  main()
