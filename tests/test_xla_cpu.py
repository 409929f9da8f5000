"""colorjax's opt-in XLA:CPU flag (COLORJAX_XLA_CPU_CONVS=xla): added once,
never over the user's own, only on the jaxlib it was measured with."""

import os

from colorjax import xla_cpu


def _flags(monkeypatch, xla_flags=None, jaxlib='0.10.2', opt_in='xla'):
  if xla_flags is None:
    monkeypatch.delenv('XLA_FLAGS', raising=False)
  else:
    monkeypatch.setenv('XLA_FLAGS', xla_flags)
  if opt_in is None:
    monkeypatch.delenv('COLORJAX_XLA_CPU_CONVS', raising=False)
  else:
    monkeypatch.setenv('COLORJAX_XLA_CPU_CONVS', opt_in)
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: jaxlib)
  xla_cpu.apply()
  return os.environ.get('XLA_FLAGS', '')


def test_convolutions_leave_ynnpack_and_other_flags_stay(monkeypatch):
  got = _flags(monkeypatch, '--xla_backend_optimization_level=0')
  assert got == ('--xla_backend_optimization_level=0 '
                 '--xla_cpu_experimental_ynn_fusion_type='
                 'dot,eltwise,reduce,individual_dot')
  assert 'convolution' not in got
  # Applied twice (a second import path): still once.
  xla_cpu.apply()
  assert os.environ['XLA_FLAGS'] == got


def test_the_users_setting_other_jaxlibs_and_no_opt_in(monkeypatch):
  mine = '--xla_cpu_experimental_ynn_fusion_type=individual_convolution'
  assert _flags(monkeypatch, mine) == mine
  assert _flags(monkeypatch, None, jaxlib='0.11.0') == ''
  assert _flags(monkeypatch, None, opt_in=None) == ''
  assert _flags(monkeypatch, None, opt_in='ynn') == ''
  assert xla_cpu.YNN_FUSION_FLAG in _flags(monkeypatch, None)
