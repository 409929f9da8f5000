"""colorjax's XLA:CPU convolution choice: the opt-in process flag
(COLORJAX_XLA_CPU_CONVS=xla) added once, never over the user's own, only on
the jaxlib it was measured with; and the per-program compiler options a
config's train step compiles with (`xla_cpu_convolutions`)."""

import os

import pytest

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


def _conv_loss(w, x):
  import jax  # pylint: disable=g-import-not-at-top
  y = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return (y * y).sum()


def test_per_program_options_reach_xla_and_keep_the_gradient(monkeypatch):
  """'xla' is an option XLA accepts for one program (a misspelt enum value
  is refused, so the option is read, not dropped) and the gradient equals
  the default program's."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  options = xla_cpu.compiler_options('xla')
  assert options == {'xla_cpu_experimental_ynn_fusion_type':
                     'LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE,'
                     'LIBRARY_FUSION_TYPE_REDUCE,'
                     'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'}
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 3, 8, 4)).astype(np.float32)
  x = rng.normal(size=(2, 12, 12, 8)).astype(np.float32)
  grad = jax.grad(_conv_loss)
  np.testing.assert_allclose(
      jax.jit(grad, compiler_options=options)(w, x), jax.jit(grad)(w, x),
      rtol=1e-5, atol=1e-4)
  misspelt = {k: v.replace('DOT,', 'DOTS,', 1) for k, v in options.items()}
  with pytest.raises(Exception, match='not a valid enum value'):
    jax.jit(grad, compiler_options=misspelt)(w, x)


def test_per_program_options_only_where_they_apply(monkeypatch):
  from colorjax import errors  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  assert xla_cpu.compiler_options('ynn') is None
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.11.0')
  assert xla_cpu.compiler_options('xla') is None
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.10.2')
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type='
                     'individual_convolution')
  assert xla_cpu.compiler_options('xla') is None    # the user's flag rules
  with pytest.raises(errors.ConfigError,
                     match="'ynn', 'xla', 'auto'; got 'eigen'"):
    xla_cpu.compiler_options('eigen')
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  import ml_collections  # pylint: disable=g-import-not-at-top
  # A config without the field is 'auto': YNN's kernels with AVX-512.
  monkeypatch.setattr(xla_cpu, 'has_avx512', lambda cpuinfo=None: True)
  assert xla_cpu.train_step_options(ml_collections.ConfigDict()) is None
  monkeypatch.setattr(xla_cpu, 'has_avx512', lambda cpuinfo=None: False)
  assert xla_cpu.train_step_options(ml_collections.ConfigDict()) == (
      xla_cpu.compiler_options('xla'))


def _ynn_fusions_with_convolutions(elementwise):
  """How many YNN fusions hold a convolution in a compiled conv + bias +
  residual (32 features: one YNN accepts) with 'xla' convolutions."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def block(x, w, b):
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jnp.maximum(y + b + x, 0.0)

  args = (jnp.ones((2, 16, 16, 32)), jnp.ones((3, 3, 32, 32)),
          jnp.ones((32,)))
  options = xla_cpu.compiler_options('xla', elementwise)
  text = jax.jit(block, compiler_options=options).lower(
      *args).compile().as_text()
  fused = [c for c in text.split('\n\n')
           if 'convolution(' in c and c.lstrip().startswith('%')]
  ynn = {line.split('calls=')[1].split(',')[0]
         for line in text.split('\n') if '__ynn_fusion' in line}
  return sum(any(c.lstrip().startswith(name + ' ') for name in ynn)
             for c in fused)


def test_xla_elementwise_keeps_every_convolution_out_of_ynn(monkeypatch):
  """With 'ynn' element-wise fusions (jaxlib's default) YNN's fusion of a
  conv's bias and residual takes the convolution in; with 'xla' none
  does, so 'xla' convolutions are all XLA's kernels."""
  from colorjax import errors  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.10.2')
  assert 'ELTWISE' not in xla_cpu.compiler_options('xla', 'xla')[
      xla_cpu.YNN_FUSION_FLAG.lstrip('-')]
  assert xla_cpu.compiler_options('ynn', 'xla') is None
  with pytest.raises(errors.ConfigError, match="'ynn', 'xla'; got 'yes'"):
    xla_cpu.compiler_options('xla', 'yes')
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({'xla_cpu_convolutions': 'xla',
                                      'xla_cpu_elementwise': 'xla'})
  assert xla_cpu.train_step_options(config) == xla_cpu.compiler_options(
      'xla', 'xla')
  assert _ynn_fusions_with_convolutions('ynn') >= 1
  assert _ynn_fusions_with_convolutions('xla') == 0


ZEN3_FLAGS = 'flags\t\t: fpu sse sse2 avx fma avx2 bmi2 sha_ni\n'
ZEN4_FLAGS = 'flags\t\t: fpu sse avx fma avx2 avx512f avx512bw avx512_bf16\n'


def test_auto_picks_ynn_with_avx512_and_xla_without():
  assert xla_cpu.has_avx512(ZEN4_FLAGS) and not xla_cpu.has_avx512(ZEN3_FLAGS)
  assert not xla_cpu.has_avx512('processor : 0\n')
  assert xla_cpu.resolve_convolutions('auto', ZEN4_FLAGS) == 'ynn'
  assert xla_cpu.resolve_convolutions('auto', ZEN3_FLAGS) == 'xla'
  for fixed in ('ynn', 'xla'):
    assert xla_cpu.resolve_convolutions(fixed, ZEN4_FLAGS) == fixed
    assert xla_cpu.resolve_convolutions(fixed, ZEN3_FLAGS) == fixed


def test_padded_weight_grads_where_the_step_runs_xlas_kernels(monkeypatch):
  """The models take weight gradients on the padded input exactly where
  the train step compiles with XLA's convolution kernels: by the config's
  per-program option, or by a process flag that leaves convolutions out of
  YNNPACK (not one that keeps them); and the jitted step traces inside
  that setting (`methods.base.jit_train_step`)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from colorjax.methods import base  # pylint: disable=g-import-not-at-top
  from colorjax.models import layers  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.10.2')
  config = lambda kernels: ml_collections.ConfigDict(  # pylint: disable=g-long-lambda
      {'xla_cpu_convolutions': kernels})
  uses = xla_cpu.train_step_uses_xla_kernels
  assert uses(config('xla')) and not uses(config('ynn'))
  monkeypatch.setattr(xla_cpu, 'has_avx512', lambda cpuinfo=None: True)
  assert not uses(config('auto'))
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type='
                     'dot,eltwise,reduce,individual_dot')
  assert uses(config('ynn'))
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type='
                     'individual_convolution --xla_cpu_enable_fast_math')
  assert not uses(config('xla'))
  monkeypatch.delenv('XLA_FLAGS')
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.11.0')
  assert not uses(config('xla'))     # no option: YNN's kernels
  monkeypatch.setattr(xla_cpu, '_jaxlib_version', lambda: '0.10.2')
  seen = []

  def step(x):
    seen.append(layers._PADDED_WEIGHT_GRADS[-1])  # pylint: disable=protected-access
    return x + 1

  for kernels in ('xla', 'ynn'):
    assert base.jit_train_step(config(kernels), step)(1.0) == 2.0
  assert seen == [True, False]
  assert layers._PADDED_WEIGHT_GRADS == [False]  # pylint: disable=protected-access


@pytest.fixture
def misspelt_option(monkeypatch):
  """The 'xla' option with an enum value XLA refuses: a program compiled
  with it fails, so a failure shows which programs take the option."""
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.setattr(xla_cpu, '_YNN_WITHOUT_CONVOLUTIONS',
                      'LIBRARY_FUSION_TYPE_DOTS')


def test_the_train_step_compiles_with_its_configs_choice(
    misspelt_option, shapes_data_dir, tmp_path, monkeypatch):
  from colorjax import train  # pylint: disable=g-import-not-at-top
  from colorjax.benchmark import train as benchmark_train  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  from colorjax.models import layers  # pylint: disable=g-import-not-at-top
  del misspelt_option
  config = tiny_config(shapes_data_dir, 'instanceaware')
  config.xla_cpu_convolutions = 'xla'
  entered = []

  class Recording(layers.padded_weight_grads):

    def __enter__(self):
      entered.append(self.enabled)
      return super().__enter__()

  monkeypatch.setattr(layers, 'padded_weight_grads', Recording)
  with pytest.raises(Exception, match='not a valid enum value'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  in_train = len(entered)
  with pytest.raises(Exception, match='not a valid enum value'):
    benchmark_train.benchmark_train(config, 'tiny', batch_size=1, steps=1,
                                    torch_peer=False)
  # Both traced their step with the weight gradients on padded inputs.
  assert 0 < in_train < len(entered) and all(entered), entered
