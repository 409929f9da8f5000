"""Per-op profile of a compiled step: where the time of an XLA program goes.

`jax.profiler.trace` records one event per executed HLO instruction (thunks
on CPU, kernels on GPU). The trace is exported as Perfetto JSON; each event's
name is an instruction of the compiled module, and the module's text maps it
back to the JAX operation that produced it (`metadata={op_name=...}`, for a
fusion the heaviest instruction it calls). That is enough to say "the weight
gradient of up2's transposed conv takes 11% of the step" without TensorBoard.
"""

import collections
import dataclasses
import glob
import gzip
import json
import math
import os
import re
import tempfile
from typing import Callable, Iterable

import jax

from colorjax import xla_cpu

# Dense bf16 peak FLOP/s per device, for MFU (vendor datasheets).
PEAK_BF16_FLOPS = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12,
                   'TPU v4': 275e12, 'TPU v5e': 197e12, 'TPU v5p': 459e12}


def cpu_peak_flops(cpuinfo: str | None = None, cores: int | None = None):
  """(fp32 FLOP/s of this machine's cores, the assumption it rests on).

  FLOPs/cycle/core = FMA pipes x fp32 lanes per pipe x 2 (an FMA is a
  multiply and an add). The lanes come from the widest vector unit the CPU
  reports; the pipes are assumed 2 (every x86 core since Haswell/Zen 2 has
  two FMA-capable pipes). AMD Zen 4 executes AVX-512 on 256-bit pipes
  (double-pumped), so its lanes are 8, not 16. The clock is the nominal one
  /proc/cpuinfo reports (cpu MHz); turbo clocks make the true peak higher.
  """
  if cpuinfo is None:
    try:
      with open('/proc/cpuinfo') as f:
        cpuinfo = f.read()
    except OSError:
      return None, 'no /proc/cpuinfo'
  flags = xla_cpu.cpu_features(cpuinfo)
  mhz = re.search(r'^cpu MHz\s*:\s*([\d.]+)', cpuinfo, re.M)
  if not mhz:
    return None, 'no clock in /proc/cpuinfo'
  amd = 'AuthenticAMD' in cpuinfo
  family = re.search(r'^cpu family\s*:\s*(\d+)', cpuinfo, re.M)
  zen4 = amd and family and int(family.group(1)) == 25 and 'avx512f' in flags
  if 'avx512f' in flags and not zen4:
    lanes, unit = 16, 'AVX-512'
  elif 'avx512f' in flags:
    lanes, unit = 8, 'AVX-512 on 256-bit pipes (AMD Zen 4)'
  elif 'avx2' in flags and 'fma' in flags:
    lanes, unit = 8, 'AVX2 + FMA'
  else:
    lanes, unit = 4, 'SSE'
  cores = cores or os.cpu_count() or 1
  per_cycle = 2 * lanes * 2
  clock = float(mhz.group(1)) * 1e6
  return (cores * clock * per_cycle,
          f'{cores} cores x {clock / 1e9:.2f} GHz (nominal) x {per_cycle} '
          f'fp32 FLOPs/cycle ({unit}: 2 FMA pipes x {lanes} lanes x 2)')


def device_peak(device) -> float | None:
  """Peak FLOP/s of a jax device: on CPU the fp32 peak of this machine's
  vector units (`cpu_peak_flops`), on an accelerator its dense bf16 peak
  (`PEAK_BF16_FLOPS`); None where unknown."""
  if device.platform == 'cpu':
    return cpu_peak_flops()[0]
  return next((v for k, v in PEAK_BF16_FLOPS.items()
               if k in device.device_kind), None)


# Instructions whose cost dominates a fusion: name the fusion after them.
_HEAVY = ('convolution', 'dot', 'custom-call', 'reduce-window', 'reduce',
          'scatter', 'gather', 'select-and-scatter', 'transpose', 'copy')
_INSTRUCTION = re.compile(
    r'^\s*(?:ROOT )?%?([\w.\-]+) = (\S+?)\[?[^=]*? (\w[\w\-]*)\(')
_COMPUTATION = re.compile(r'^%?([\w.\-]+) [^{]*\{\s*$')
_OP_NAME = re.compile(r'op_name="([^"]+)"')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')
_FUSION_KIND = re.compile(r'"kind":"([\w_]+)"|kind=(k\w+)')


_OPERANDS = re.compile(r' [\w\-]+\(([^)]*)\)')


@dataclasses.dataclass
class Instruction:
  name: str
  opcode: str
  op_name: str = ''       # JAX source op path, '' when XLA made it up
  kind: str = ''          # fusion kind (kLoop, __ynn_fusion, ...)
  operands: tuple[str, ...] = ()
  inferred: bool = False  # op_name taken from an operand's producer


def compiled_flops(compiled) -> float:
  """FLOPs of a compiled XLA program by its cost analysis (NaN if none).
  XLA counts a loop's body once."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get('flops', math.nan))


def parse_hlo(text: str) -> dict[str, Instruction]:
  """Instruction name -> opcode, fusion kind and JAX op_name of the module."""
  computations: dict[str, list[tuple[str, str, str]]] = {}
  instructions: dict[str, Instruction] = {}
  calls: dict[str, str] = {}
  current = None
  for line in text.splitlines():
    head = _COMPUTATION.match(line)
    if head and ' = ' not in line:
      current = computations.setdefault(head.group(1), [])
      continue
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, opcode = match.group(1), match.group(3)
    op_name = _OP_NAME.search(line)
    op_name = op_name.group(1) if op_name else ''
    if current is not None:
      current.append((name, opcode, op_name))
    kind = _FUSION_KIND.search(line) if opcode == 'fusion' else None
    operands = _OPERANDS.search(line[match.end(3) - len(opcode) - 1:])
    operands = tuple(o.strip().lstrip('%') for o in
                     operands.group(1).split(',')) if operands else ()
    instructions[name] = Instruction(
        name, opcode, op_name,
        (kind.group(1) or kind.group(2)) if kind else '', operands)
    called = _CALLS.search(line)
    if called:
      calls[name] = called.group(1)
  for name, computation in calls.items():
    body = computations.get(computation, [])
    instruction = instructions[name]
    if instruction.op_name or not body:
      continue
    named = [b for b in body if b[2]]
    if named:
      instruction.op_name = min(named, key=_weight)[2]
    heaviest = min(body, key=_weight)
    if instruction.opcode == 'fusion':
      instruction.opcode = f'fusion({heaviest[1]})'
  # XLA drops the metadata of instructions it rewrites (a weight gradient's
  # window-dilated convolution, say): name them after what feeds them.
  for instruction in instructions.values():
    if not instruction.op_name:
      source = _from_operands(instruction, instructions, depth=4)
      if source:
        instruction.op_name, instruction.inferred = source, True
  return instructions


def _weight(entry):
  """Sort key of a (name, opcode, op_name) body entry: heaviest first."""
  return _HEAVY.index(entry[1]) if entry[1] in _HEAVY else len(_HEAVY)


def _from_operands(instruction, instructions, depth):
  for operand in instruction.operands:
    producer = instructions.get(operand)
    if producer is None or producer.opcode == 'parameter':
      continue
    if producer.op_name and not producer.inferred:
      return producer.op_name
    if depth > 1:
      found = _from_operands(producer, instructions, depth - 1)
      if found:
        return found
  return ''


def short_op_name(op_name: str) -> str:
  """'jit(train_step)/jvp(Generator)/up2/transpose(jvp())/conv_general_dilated'
  -> 'Generator/up2/conv_general_dilated (backward)'."""
  if not op_name:
    return '(XLA: layout/copy)'
  parts = op_name.split('/')
  backward = any(p.startswith('transpose(') for p in parts)
  kept = []
  for part in parts[1:]:
    inner = re.fullmatch(r'(?:jvp|transpose|vmap|checkpoint|remat)\((.*)\)',
                         part)
    while inner:
      part = inner.group(1)
      inner = re.fullmatch(r'(?:jvp|transpose|vmap|checkpoint|remat)\((.*)\)',
                           part)
    if part:
      kept.append(part)
  return '/'.join(kept) + (' (backward)' if backward else '')


def primitive(op_name: str) -> str:
  """The JAX primitive at the end of an op path ('conv_general_dilated')."""
  return op_name.rsplit('/', 1)[-1] if op_name else 'copy/layout (XLA)'


def trace_events(run: Callable[[], None], logdir: str | None = None):
  """Runs `run` under the profiler; returns the trace's complete events."""
  logdir = logdir or tempfile.mkdtemp(prefix='colorjax_profile_')
  with jax.profiler.trace(logdir, create_perfetto_trace=True):
    run()
  paths = sorted(glob.glob(os.path.join(
      logdir, 'plugins', 'profile', '*', 'perfetto_trace.json.gz')))
  if not paths:
    raise FileNotFoundError(f'no perfetto_trace.json.gz under {logdir}')
  with gzip.open(paths[-1]) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  return [e for e in events if e.get('ph') == 'X'], logdir


# XLA:CPU's completion mark of an instruction: 'end: NAME'.
END_MARK = 'end: '


@dataclasses.dataclass
class OpTime:
  name: str
  ms_per_step: float
  calls_per_step: float
  opcode: str
  kind: str
  op_name: str

  inferred: bool = False

  @property
  def source(self) -> str:
    if self.inferred:
      return f'{self.opcode} on the output of {short_op_name(self.op_name)}'
    return short_op_name(self.op_name)


def op_times(events: Iterable[dict], instructions: dict[str, Instruction],
             steps: int) -> list[OpTime]:
  """Time per HLO instruction per step, slowest first. Events that are not
  instructions of this module (runtime, Python) are left out.

  XLA:CPU's runtime also marks each instruction's completion ('end: NAME').
  For an asynchronous one (its convolutions: the thunk returns once the
  work is queued on the thread pool) the instruction's own event covers
  only the dispatch, ~0.1 ms of an 18 ms convolution: its run lasts until
  that mark. Runs overlap (the runtime starts independent instructions
  while a convolution works), so each moment of the trace is split evenly
  among the instructions running then: the times add up to the wall time
  the instructions cover, and two convolutions sharing the cores for 10 ms
  get 5 ms each."""
  started = collections.defaultdict(list)
  finished = collections.defaultdict(list)
  for event in events:
    name = event['name']
    if name in instructions:
      started[name].append(event)
    elif name.startswith(END_MARK) and name[len(END_MARK):] in instructions:
      finished[name[len(END_MARK):]].append(event)
  edges = []          # (time, +1 start / -1 stop, name)
  for name, starts in started.items():
    ends = sorted(finished.get(name, ()), key=lambda e: e['ts'])
    for i, event in enumerate(sorted(starts, key=lambda e: e['ts'])):
      stop = event['ts'] + event.get('dur', 0.0)
      if i < len(ends):     # the k-th run's mark ends the k-th run
        stop = max(stop, ends[i]['ts'] + ends[i].get('dur', 0.0))
      edges += [(event['ts'], 1, name), (stop, -1, name)]
  total = collections.defaultdict(float)
  running = collections.Counter()
  last = None
  for time, change, name in sorted(edges, key=lambda e: (e[0], e[1])):
    if running and time > last:
      share = (time - last) / sum(running.values())
      for active, count in running.items():
        total[active] += share * count
    running[name] += change
    if not running[name]:
      del running[name]
    last = time
  rows = [OpTime(name, total[name] / 1e3 / steps, len(starts) / steps,
                 instructions[name].opcode, instructions[name].kind,
                 instructions[name].op_name, instructions[name].inferred)
          for name, starts in started.items()]
  return sorted(rows, key=lambda r: -r.ms_per_step)


def by_primitive(rows: list[OpTime]) -> list[tuple[str, float]]:
  """ms per step grouped by (JAX primitive, forward/backward)."""
  groups = collections.defaultdict(float)
  for row in rows:
    if row.inferred:   # XLA rewrote it and dropped the JAX op name
      key = re.sub(r'^fusion\((.*)\)$', r'\1', row.opcode) + ' (XLA-made)'
    else:
      key = primitive(row.op_name) + (
          ' (backward)' if 'transpose(' in row.op_name else '')
    groups[key] += row.ms_per_step
  return sorted(groups.items(), key=lambda g: -g[1])


def profile(run: Callable[[], None], compiled, steps: int,
            logdir: str | None = None, top: int = 20) -> dict:
  """Profiles `run()`, which executes `compiled` `steps` times and blocks.

  Returns a dict ready for JSON: the slowest instructions with the JAX op
  that produced them, and the time grouped by primitive.
  """
  instructions = parse_hlo(compiled.as_text())
  events, logdir = trace_events(run, logdir)
  rows = op_times(events, instructions, steps)
  total = sum(r.ms_per_step for r in rows)
  return {
      'trace': logdir,
      'op_ms_per_step': round(total, 1),
      'top_ops': [
          {'op': r.name, 'ms': round(r.ms_per_step, 1),
           'share': round(r.ms_per_step / total, 3),
           'hlo': r.opcode + (f' [{r.kind}]' if r.kind else ''),
           'source': r.source} for r in rows[:top]],
      'by_primitive': [
          {'primitive': p, 'ms': round(ms, 1), 'share': round(ms / total, 3)}
          for p, ms in by_primitive(rows)[:12]],
  }
