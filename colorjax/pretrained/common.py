"""Shared conversion machinery: PyTorch state dict -> Flax variables.

A converter walks the *Flax* variable tree of the target module (shapes from
`jax.eval_shape`, nothing is computed), asks the network family for the
PyTorch key of every leaf, and takes that tensor (conv kernels OIHW -> HWIO,
dense kernels (out, in) -> (in, out)). Everything that does not line up --
missing keys, keys left over, shapes -- is collected and reported in one
`CheckpointMismatchError`.
"""

from typing import Any, Callable, Dict, Mapping, Tuple

import jax.numpy as jnp
import numpy as np

from colorjax import errors


class PretrainedError(errors.UserError, ValueError):
  """Base class of the errors raised while loading a pretrained network."""


class CheckpointMismatchError(PretrainedError):
  """The file's keys or shapes do not match the expected model."""


class HashMismatchError(PretrainedError):
  """The file's SHA-256 does not start with the prefix in its name."""


# (collection, flax leaf name) -> PyTorch parameter/buffer name.
LEAF_NAMES = {
    ('params', 'kernel'): 'weight',
    ('params', 'bias'): 'bias',
    ('params', 'scale'): 'weight',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}

# Buffers PyTorch stores that have no Flax counterpart.
IGNORED_SUFFIXES = ('num_batches_tracked',)


def underscore_key(flax_path: Tuple[str, ...]) -> str:
  """('layer1_0', 'downsample_1') -> 'layer1.0.downsample.1'."""
  return '.'.join(part.replace('_', '.') for part in flax_path)


def to_numpy(value) -> np.ndarray:
  """A torch tensor (any float dtype, bfloat16 included) or array -> numpy."""
  if hasattr(value, 'detach'):
    value = value.detach().cpu()
    if str(value.dtype) in ('torch.bfloat16', 'torch.float16'):
      value = value.float()
    return value.numpy()
  return np.asarray(value)


def torch_to_flax(name: str, tensor: np.ndarray) -> np.ndarray:
  """PyTorch layout -> Flax layout for a leaf called `name`."""
  if name != 'kernel':
    return tensor
  if tensor.ndim == 4:      # conv OIHW (grouped: O, I/groups, H, W) -> HWIO
    return np.transpose(tensor, (2, 3, 1, 0))
  if tensor.ndim == 2:      # linear (out, in) -> (in, out)
    return tensor.T
  return tensor


def torch_shape(name: str, flax_shape: Tuple[int, ...]) -> Tuple[int, ...]:
  """The PyTorch shape of a Flax leaf `name` of shape `flax_shape`."""
  if name == 'kernel' and len(flax_shape) == 4:
    h, w, i, o = flax_shape
    return (o, i, h, w)
  if name == 'kernel' and len(flax_shape) == 2:
    return tuple(reversed(flax_shape))
  return tuple(flax_shape)


def _listing(items, count: int = 6) -> str:
  items = sorted(items)
  shown = ', '.join(items[:count])
  more = f', ... ({len(items)} in all)' if len(items) > count else ''
  return f'{shown}{more}'


def convert_variables(state_dict: Mapping[str, Any],
                      reference_variables: Mapping[str, Any],
                      torch_key: Callable[[Tuple[str, ...]], str],
                      model: str) -> Dict[str, Any]:
  """Maps a PyTorch state dict onto `reference_variables`' structure.

  Args:
    state_dict: PyTorch names -> tensors or arrays.
    reference_variables: {'params': ..., 'batch_stats': ...} (arrays or
      ShapeDtypeStructs) of the Flax module.
    torch_key: Flax module path -> PyTorch module prefix.
    model: the expected model, named in errors.

  Returns:
    {'params', 'batch_stats'} (only the collections the reference has).

  Raises:
    CheckpointMismatchError: listing missing keys, unused keys and shape
      mismatches (all of them found, a few of each shown).
  """
  tensors = {k: v for k, v in state_dict.items()
             if not k.endswith(IGNORED_SUFFIXES)}
  used, missing, shapes = set(), [], []

  def convert(collection, tree, path=()):
    out = {}
    for name, value in tree.items():
      if isinstance(value, Mapping):
        out[name] = convert(collection, value, path + (name,))
        continue
      key = f'{torch_key(path)}.{LEAF_NAMES[(collection, name)]}'
      if key not in tensors:
        missing.append(key)
        continue
      used.add(key)
      tensor = to_numpy(tensors[key])
      expected = torch_shape(name, tuple(value.shape))
      if tuple(tensor.shape) != expected:
        shapes.append(f'{key} {tuple(tensor.shape)} (expected {expected})')
        continue
      tensor = torch_to_flax(name, tensor)
      out[name] = jnp.asarray(tensor, dtype=value.dtype)
    return out

  variables = {c: convert(c, reference_variables[c])
               for c in ('params', 'batch_stats') if c in reference_variables}
  unused = set(tensors) - used
  if missing or unused or shapes:
    problems = []
    if missing:
      problems.append(f'missing keys: {_listing(missing)}')
    if unused:
      problems.append(f'unexpected keys (not used): {_listing(unused)}')
    if shapes:
      problems.append(f'shape mismatches: {_listing(shapes, 4)}')
    raise CheckpointMismatchError(
        f'state dict does not match {model}: ' + '; '.join(problems))
  return variables
