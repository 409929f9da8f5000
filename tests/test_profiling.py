"""Per-op profiles name the JAX op behind each XLA instruction."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import profiling


class _Net(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(32, (3, 3), name='big_conv')(x)
    return jnp.tanh(x).mean()


def _compiled_grad():
  net = _Net()
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 16)),
                  jnp.float32)
  params = net.init(jax.random.PRNGKey(0), x)
  fn = jax.jit(jax.grad(lambda p, x: net.apply(p, x)))
  return fn, fn.lower(params, x).compile(), params, x


def test_short_op_name_strips_transforms_and_marks_backward():
  assert profiling.short_op_name(
      'jit(train_step)/jvp(Generator)/up2/transpose(jvp())/'
      'conv_general_dilated') == 'Generator/up2/conv_general_dilated (backward)'
  assert profiling.short_op_name(
      'jit(f)/jvp(Net)/big_conv/conv_general_dilated') == \
      'Net/big_conv/conv_general_dilated'
  assert profiling.short_op_name('') == '(XLA: layout/copy)'


def test_parse_hlo_maps_instructions_to_jax_ops():
  _, compiled, _, _ = _compiled_grad()
  instructions = profiling.parse_hlo(compiled.as_text())
  convolutions = [i for i in instructions.values()
                  if 'convolution' in i.opcode]
  # The forward conv keeps its JAX name; the weight gradient, which XLA:CPU
  # rewrites (and strips of metadata), is named after the backward op that
  # feeds it, never after a parameter.
  named = [i for i in convolutions if i.op_name and not i.inferred]
  assert named and all('big_conv' in i.op_name for i in named)
  made = [i for i in convolutions if i.inferred]
  assert all('transpose(' in i.op_name for i in made)
  assert all(i.op_name or i.name in _fused_bodies(compiled.as_text())
             for i in convolutions)


def _fused_bodies(text):
  import re  # pylint: disable=g-import-not-at-top
  names, inside = set(), False
  for line in text.splitlines():
    if line.startswith('%fused') or line.startswith('%wrapped'):
      inside = True
    elif line.startswith('ENTRY') or line.startswith('}'):
      inside = line.startswith('}') and False
    match = re.match(r'\s*(?:ROOT )?%([\w.\-]+) =', line)
    if inside and match:
      names.add(match.group(1))
  return names


def test_an_asynchronous_op_runs_to_its_end_mark_and_overlaps_share():
  """XLA:CPU's convolution thunk returns once its work is queued (an event
  of 0.08 ms) and marks completion later ('end: NAME', 18 ms on): the op's
  run lasts until its own mark (the k-th run to the k-th), and the 0.5 ms
  an add runs alongside it is split between the two."""
  instructions = {
      'conv.1': profiling.Instruction('conv.1', 'convolution', 'jit(f)/conv'),
      'add.2': profiling.Instruction('add.2', 'add', 'jit(f)/add')}
  events = [
      {'name': 'conv.1', 'ts': 1000.0, 'dur': 80.0},
      {'name': 'add.2', 'ts': 1100.0, 'dur': 500.0},
      {'name': 'end: add.2', 'ts': 1599.0, 'dur': 1.0},
      {'name': 'end: conv.1', 'ts': 19000.0, 'dur': 0.0},
      {'name': 'conv.1', 'ts': 30000.0, 'dur': 90.0},
      {'name': 'end: conv.1', 'ts': 40000.0, 'dur': 0.0},
      {'name': 'add.2', 'ts': 41000.0, 'dur': 400.0},
      {'name': 'end: other.3', 'ts': 50000.0, 'dur': 0.0}]
  rows = profiling.op_times(events, instructions, 2)
  assert [r.name for r in rows] == ['conv.1', 'add.2']
  conv, add = rows
  # conv: 0.1 ms alone, half of 0.5 ms shared, 17.4 ms alone; then 10 ms.
  assert conv.ms_per_step == pytest.approx((0.1 + 0.25 + 17.4 + 10) / 2)
  assert add.ms_per_step == pytest.approx((0.25 + 0.4) / 2)
  assert conv.calls_per_step == add.calls_per_step == 1
  # Together they cover the wall time of their runs, not more.
  assert conv.ms_per_step + add.ms_per_step == pytest.approx(
      (18.0 + 10.0 + 0.4) / 2)


def test_profile_attributes_time_to_the_convolution():
  fn, compiled, params, x = _compiled_grad()
  jax.block_until_ready(fn(params, x))

  def run():
    for _ in range(3):
      out = fn(params, x)
    jax.block_until_ready(out)

  report = profiling.profile(run, compiled, steps=3, top=5)
  assert report['op_ms_per_step'] > 0
  shares = [row['share'] for row in report['top_ops']]
  assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.001
  groups = {g['primitive'] for g in report['by_primitive']}
  assert any(g.startswith('conv') for g in groups), groups
  # The convolution is among the heaviest work here (2x64x64x16 -> 32,
  # 3x3): the heaviest with XLA's default optimisation, behind unoptimised
  # elementwise loops at the suite's -O0 (conftest.TEST_XLA_FLAGS).
  assert any('conv' in row['hlo'] + row['source']
             for row in report['top_ops'][:3]), report['top_ops']
