"""The preprocessing-op registry and parser (imports nothing of colorjax).

An op is a grain transform registered under a name with the keys it reads
and writes; `parse` turns a big_vision-style spec
("resize_short(286)|random_crop(256)|flip|to_lab") into transforms, `apply`
runs them eagerly. The op modules (geometry_ops, lab_ops, target_ops)
import this module to register themselves; `colorjax.data.preprocess`
imports all of them and is what callers use.
"""

import ast
import dataclasses
import re
from typing import Callable, Dict, List, Optional, Sequence

import grain
import numpy as np


Example = Dict[str, np.ndarray]
_OPS: Dict[str, Callable[..., grain.transforms.Transformation]] = {}


def register(name: str, reads: Sequence[str], writes: Sequence[str] = ()):
  """Registers an op under `name`, with the keys it needs (`reads`) and
  the keys it adds or changes (`writes`); geometry ops also move an
  optional `segmentation`. Names must be unique."""
  def wrap(cls):
    if name in _OPS:
      raise ValueError(f'preprocessing op {name!r} is registered twice '
                       f'({_OPS[name].__name__} and {cls.__name__})')
    cls.op_name, cls.reads, cls.writes = name, tuple(reads), tuple(writes)
    _OPS[name] = cls
    return cls
  return wrap


@register('keep', reads=())
@dataclasses.dataclass
class Keep(grain.transforms.Map):
  """Keeps only the named keys (batches must hold arrays, not strings)."""
  keys: Sequence[str] = ()

  def map(self, example):
    missing = [k for k in self.keys if k not in example]
    if missing:
      raise KeyError(f'keep{tuple(self.keys)}: example has no {missing}; it '
                     f'has {sorted(example)}')
    return {k: example[k] for k in self.keys}


_OP_PATTERN = re.compile(r'^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$', re.S)


def _parse_args(text: str):
  if not text or not text.strip():
    return (), {}
  call = ast.parse(f'f({text})', mode='eval').body
  args = tuple(ast.literal_eval(a) for a in call.args)
  kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
  return args, kwargs


def parse(spec: str) -> List[grain.transforms.Transformation]:
  """'op(args)|op|...' -> list of grain transforms (literal args only)."""
  ops = []
  for part in _split_top_level(spec):
    match = _OP_PATTERN.match(part)
    if not match or match.group(1) not in _OPS:
      raise ValueError(f'unknown preprocessing op {part.strip()!r}; known: '
                       f'{sorted(_OPS)}')
    args, kwargs = _parse_args(match.group(2))
    ops.append(_OPS[match.group(1)](*args, **kwargs))
  return ops


def _split_top_level(spec: str) -> List[str]:
  """Splits on '|' outside brackets (args may hold dicts and tuples)."""
  parts, depth, current = [], 0, []
  for char in spec:
    depth += char in '([{'
    depth -= char in ')]}'
    if char == '|' and depth == 0:
      parts.append(''.join(current))
      current = []
    else:
      current.append(char)
  parts.append(''.join(current))
  return [p for p in parts if p.strip()]


def without_unavailable(ops: Sequence[grain.transforms.Transformation],
                        keys: Sequence[str]):
  """(ops that can run on examples holding `keys`, names of those dropped).

  An unlabeled photo folder has only `image`: label ops (remap_labels,
  multi_hot, ...) are dropped, colour ops kept, in order.
  """
  available, kept, dropped = set(keys), [], []
  for op in ops:
    if set(op.reads) <= available:
      kept.append(op)
      available |= set(op.writes)
    else:
      dropped.append(op.op_name)
  return kept, dropped


def apply(ops: Sequence[grain.transforms.Transformation], example: Example,
          rng: Optional[np.random.Generator] = None) -> Example:
  """Runs ops eagerly on one example (tests, colorize CLI, baselines)."""
  rng = rng or np.random.default_rng(0)
  for op in ops:
    if isinstance(op, grain.transforms.RandomMap):
      example = op.random_map(example, rng)
    else:
      example = op.map(example)
  return example
