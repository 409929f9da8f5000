"""XLA:CPU settings colorjax can run with, set before JAX starts its backend.

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
(a ResNet-101 conversion test 5 s -> 187 s). So it is opt-in, for training
the methods it helps: COLORJAX_XLA_CPU_CONVS=xla (BENCHMARKS.md).

Only where the flag is known (jaxlib 0.10.x, where it was measured) and the
user's XLA_FLAGS do not set it already. The flag is CPU-only: GPU and TPU
runs are unaffected.
"""

import os

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


def cpu_flags() -> str:
  """The flags colorjax adds to XLA_FLAGS here ('' where none)."""
  if os.environ.get(OPT_IN, '') != 'xla':
    return ''
  if YNN_FUSION_FLAG in os.environ.get('XLA_FLAGS', ''):
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
