"""Surgery on parameter trees: subtrees by '/'-path, exact fits and partial
grafts of one tree into another (init_from, reference networks, heads of
another class count). Nested dicts or flax structures of arrays; imports
nothing of colorjax.
"""

import flax
import numpy as np


def subtree(tree, path: str):
  """The subtree at a '/'-joined path ('' is the whole tree)."""
  for part in filter(None, path.split('/')):
    tree = tree[part]
  return tree


def replace_subtree(tree, path: str, value):
  """A copy of `tree` with `value` at the '/'-joined path."""
  parts = [p for p in path.split('/') if p]
  if not parts:
    return value
  out = dict(tree)
  out[parts[0]] = replace_subtree(tree[parts[0]], '/'.join(parts[1:]), value)
  return out


def fit_exactly(target, source, what: str):
  """`source` cast to `target`'s structure and dtypes; ValueError (naming
  `what`) unless both have the same paths and shapes."""
  target_flat = flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(target), sep='/')
  source_flat = flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(source), sep='/')
  missing = sorted(set(target_flat) - set(source_flat))
  extra = sorted(set(source_flat) - set(target_flat))
  shapes = [f'{k}: {np.shape(source_flat[k])} vs {np.shape(v)}'
            for k, v in target_flat.items()
            if k in source_flat and np.shape(source_flat[k]) != np.shape(v)]
  if missing or extra or shapes:
    raise ValueError(f'init_from {what} does not fit: missing {missing[:5]}, '
                     f'unexpected {extra[:5]}, shapes {shapes[:5]}')
  return flax.serialization.from_state_dict(target, flax.traverse_util.
                                            unflatten_dict({
                                                k: np.asarray(
                                                    source_flat[k],
                                                    np.dtype(v.dtype))
                                                for k, v in
                                                target_flat.items()},
                                                sep='/'))


def graft(target, source):
  """`target` with every leaf that `source` has at the same path and shape
  replaced by the source's (cast to the target's dtype); the others keep
  their values. Returns (tree, copied keys, kept keys, shape mismatches),
  keys '/'-joined paths."""
  target_flat = flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(target), sep='/')
  source_flat = flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(source), sep='/')
  copied, kept, shapes = [], [], []
  out = {}
  for key, value in target_flat.items():
    other = source_flat.get(key)
    if other is not None and np.shape(other) == np.shape(value):
      out[key] = np.asarray(other, np.dtype(value.dtype))
      copied.append(key)
    else:
      out[key] = value
      kept.append(key)
      if other is not None:
        shapes.append(f'{key} {np.shape(other)} vs {np.shape(value)}')
  tree = flax.serialization.from_state_dict(
      target, flax.traverse_util.unflatten_dict(out, sep='/'))
  return tree, copied, kept, shapes
