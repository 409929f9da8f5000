"""XLA:CPU settings: per compiled program (`jax.jit(compiler_options=...)`)
or, opt-in, for the whole process (XLA_FLAGS, set before JAX starts).

jaxlib 0.10 hands convolutions, dots, element-wise and reduce fusions to the
YNNPACK library. Its convolutions compute the weight gradient of a stride-1
convolution 3-6x slower than XLA's own path: a 3x3 conv of 128 channels at
352x352, batch 2: 3,385 ms against 523 ms (22 vs 140 GFLOP/s; forward and
input gradient equal, ~400 ms, either way). With convolutions taken out of
YNN (dots, element-wise and reduce fusions stay: taking those out too made
ChromaCMC's step slower, 4.12 s vs 3.42 s), paper-scale steps at batch 2 on
the 2-core CPU: SemanticDriven stage 2 28.8 -> 14.2 s, SceneContext 5.00 ->
4.36 s, ChromaCMC 3.45 -> 3.12 s; but stage 1 3.28 -> 4.13 s, InstanceAware
3.91 -> 4.04 s, more memory, and some networks become pathologically slow
(a ResNet-101 conversion test 5 s -> 187 s). So the choice is made per
compiled program, not per process: `train_step_options(config)` (from
`config.xla_cpu_convolutions`) goes to the `jax.jit` of a train step, and
each paper preset names the path measured faster for its step ('xla':
ChromaCMC, SceneContext, SemanticDriven stage 2; 'auto' = 'ynn' on a CPU
with AVX-512, 'xla' on one without: stage 1, InstanceAware, PixSem and
every CPU twin; BENCHMARKS.md); predict and the evaluators keep the
default. YNN's element-wise fusions take in the convolutions that feed
them, so the presets also leave element-wise fusions to XLA
(`config.xla_cpu_elementwise = 'xla'`: 4-9% faster steps on a Zen 3); the
CPU twins keep YNN's (the ChromaCMC demo step ran 11% slower and compiled
27% longer without). Where a train step runs XLA's own kernels, the
models also take their weight gradients on the padded input
(`train_step_uses_xla_kernels`, `models.layers.padded_weight_grads`).
COLORJAX_XLA_CPU_CONVS=xla still takes convolutions out of YNN for the
whole process.

Only where the flag is known (jaxlib 0.10.x, where it was measured) and the
user's XLA_FLAGS do not set it already. The flag is CPU-only: GPU and TPU
runs are unaffected.
"""

import os
from typing import Dict, Optional, Set

from colorjax import choices

YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
YNN_FUSION_TYPES = 'dot,eltwise,reduce,individual_dot'
MEASURED_JAXLIB = '0.10.'
OPT_IN = 'COLORJAX_XLA_CPU_CONVS'


def _jaxlib_version() -> str:
  try:
    from jaxlib import version  # pylint: disable=g-import-not-at-top
    return version.__version__
  except ImportError:
    return ''


def process_flag_set() -> bool:
  """XLA_FLAGS already chooses YNN's fusion types for the whole process
  (the opt-in below, or the user's own): per-program options step aside."""
  return YNN_FUSION_FLAG in os.environ.get('XLA_FLAGS', '')


def _on_cpu() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.default_backend() == 'cpu'


def cpu_flags() -> str:
  """The flags colorjax adds to XLA_FLAGS here ('' where none)."""
  if os.environ.get(OPT_IN, '') != 'xla':
    return ''
  if process_flag_set():
    return ''
  if not _jaxlib_version().startswith(MEASURED_JAXLIB):
    return ''
  return f'{YNN_FUSION_FLAG}={YNN_FUSION_TYPES}'


def apply() -> None:
  """Adds `cpu_flags()` to XLA_FLAGS (read when JAX creates its CPU
  client, at the first computation, so importing colorjax first is
  enough)."""
  flags = cpu_flags()
  if flags:
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' +
                               flags).strip()


CONVOLUTION_PATHS = ('ynn', 'xla', 'auto')


def cpu_features(cpuinfo: Optional[str] = None) -> Set[str]:
  """The feature flags /proc/cpuinfo (or `cpuinfo`, its text) lists for
  the first CPU; empty where there is none (not Linux)."""
  if cpuinfo is None:
    try:
      with open('/proc/cpuinfo') as f:
        cpuinfo = f.read()
    except OSError:
      return set()
  for line in cpuinfo.splitlines():
    if line.startswith('flags'):
      return set(line.split(':', 1)[-1].split())
  return set()


def has_avx512(cpuinfo: Optional[str] = None) -> bool:
  """Whether this CPU reports AVX-512 (avx512f in /proc/cpuinfo)."""
  return 'avx512f' in cpu_features(cpuinfo)


def resolve_convolutions(convolutions: str,
                         cpuinfo: Optional[str] = None) -> str:
  """'auto': YNNPACK's kernels where the CPU has AVX-512, XLA's own
  where it has not. Paper-scale steps at batch 2 on 2-core AMD EPYCs: on
  an AVX-512 Zen 4 (2026-12-07) YNN was faster for SemanticDriven stage 1,
  InstanceAware and PixSem (3.28 vs 4.13 s, 3.65-3.91 vs 4.04 s, 8.68 vs
  8.99 s); on an AVX2-only Zen 3 (2026-12-07) XLA's was faster for all
  three (4.63 vs 4.92 s, 4.36 vs 6.01 s, 11.33 vs 13.3 s) and for the
  other three steps on both (BENCHMARKS.md)."""
  choices.check('xla_cpu_convolutions', convolutions, CONVOLUTION_PATHS)
  if convolutions != 'auto':
    return convolutions
  return 'ynn' if has_avx512(cpuinfo) else 'xla'


# The per-program form of YNN_FUSION_TYPES: DebugOptions' enum names, as
# `jax.jit(compiler_options=...)` takes them.
_YNN_WITHOUT_CONVOLUTIONS = ','.join(
    'LIBRARY_FUSION_TYPE_' + kind
    for kind in ('DOT', 'ELTWISE', 'REDUCE', 'INDIVIDUAL_DOT'))
# ... and without element-wise fusions: YNN's element-wise fusions take in
# the convolutions that feed them (a conv, its bias and a residual add:
# jaxlib 0.10's YnnMatcher accepts any f32 NHWC/HWIO convolution of more
# than 16 features), so with them XLA's kernels run only the convolutions
# whose consumers are not element-wise (stage 1's GridNet: every forward
# convolution, with its bias and residual add, went to YNN).
_YNN_DOTS_AND_REDUCES = ','.join(
    'LIBRARY_FUSION_TYPE_' + kind
    for kind in ('DOT', 'REDUCE', 'INDIVIDUAL_DOT'))

ELEMENTWISE_PATHS = ('ynn', 'xla')


def compiler_options(convolutions: str, elementwise: str = 'ynn'
                     ) -> Optional[Dict[str, str]]:
  """`jax.jit(..., compiler_options=...)` for one program's convolutions:
  'ynn' (jaxlib's default: YNNPACK's kernels), 'xla' (XLA's own, whose
  stride-1 weight gradients are 3-6x faster here) or 'auto'
  (`resolve_convolutions`: by the CPU's vector units). With 'xla',
  `elementwise` says who fuses element-wise ops: 'ynn' (YNNPACK, which
  also takes the convolutions feeding them) or 'xla' (XLA's loop fusions;
  every convolution then runs XLA's kernels). None where there is nothing
  to set: 'ynn', a backend other than CPU, a jaxlib where the option was
  not measured, or the process-wide flag already set."""
  convolutions = resolve_convolutions(convolutions)
  choices.check('xla_cpu_elementwise', elementwise, ELEMENTWISE_PATHS)
  if convolutions == 'ynn' or process_flag_set():
    return None
  if not _jaxlib_version().startswith(MEASURED_JAXLIB) or not _on_cpu():
    return None
  return {YNN_FUSION_FLAG.lstrip('-'): (
      _YNN_WITHOUT_CONVOLUTIONS if elementwise == 'ynn'
      else _YNN_DOTS_AND_REDUCES)}


def train_step_options(config) -> Optional[Dict[str, str]]:
  """compiler_options for a config's train step (`xla_cpu_convolutions`,
  'auto' where the config predates the field; `xla_cpu_elementwise`,
  'ynn' where it predates that one)."""
  return compiler_options(config.get('xla_cpu_convolutions', 'auto'),
                          config.get('xla_cpu_elementwise', 'ynn'))


def train_step_uses_xla_kernels(config) -> bool:
  """Whether the config's train step runs XLA's own convolution kernels on
  the CPU (its per-program option, or the process-wide flag taking
  convolutions out of YNNPACK): where the models take their convolutions'
  weight gradients on the padded input (`models.layers.
  padded_weight_grads`: faster with XLA's kernels, slower with YNN's)."""
  if not _on_cpu():
    return False
  if process_flag_set():
    value = os.environ.get('XLA_FLAGS', '').split(YNN_FUSION_FLAG)[-1]
    return 'convolution' not in (value.split() or [''])[0].lower()
  return train_step_options(config) is not None


# An init program (random parameters, zero optimizer moments, EMA copies)
# has one output per leaf: several hundred tiny kernels, each through
# LLVM's full pipeline. At LLVM level 1 PixSem's tiny-twin init compiles in
# 8.6 s instead of 41.6 s on one core, ChromaCMC's paper init in 12.1 s
# instead of 26.0 s, and runs as fast (1.44 s); level 0 compiles in 13.3 s
# but runs its 86M random draws in 8.1 s (2026-12-07).
INIT_OPTIMIZATION_LEVEL = 1


def init_options() -> Optional[Dict[str, int]]:
  """`jax.jit(..., compiler_options=...)` for a run-once init program on
  CPU (None elsewhere: GPU/TPU compiles differ; None where XLA_FLAGS sets
  the level for the process, as the test suite's level 0 does)."""
  if not _on_cpu():
    return None
  if 'xla_backend_optimization_level' in os.environ.get('XLA_FLAGS', ''):
    return None
  return {'xla_backend_optimization_level': INIT_OPTIMIZATION_LEVEL}
