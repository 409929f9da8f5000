"""The data-parallel mesh and the conversion of host batches to global arrays.

Every program colorjax runs (training, evaluation, colorize, benchmarks)
uses one 1-D mesh over all devices of all processes, axis 'data'. Params are
replicated over it and batches split along their first dimension.
"""

from typing import Dict, Iterator, Mapping, Optional, Sequence

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from colorjax import xla_cpu

DATA_AXIS = 'data'


def data_mesh(devices: Optional[Sequence[jax.Device]] = None
              ) -> jax.sharding.Mesh:
  """1-D mesh over all devices of all processes, axis 'data'."""
  devices = devices if devices is not None else jax.devices()
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, ndim: int) -> NamedSharding:
  """Leading (batch) dimension over the data axis, the rest whole."""
  return NamedSharding(mesh, P(DATA_AXIS, *([None] * (ndim - 1))))


def shard_specs(specs: Mapping[str, jax.ShapeDtypeStruct], mesh
                ) -> Dict[str, jax.ShapeDtypeStruct]:
  """The same abstract batch, placed on the data axis (keys of any rank)."""
  return {k: jax.ShapeDtypeStruct(v.shape, v.dtype,
                                  sharding=batch_sharding(mesh, len(v.shape)))
          for k, v in specs.items()}


def global_array(mesh, local: np.ndarray) -> jax.Array:
  """Process-local [b, ...] -> global [b * processes, ...] on the data axis."""
  local = np.asarray(local)
  return jax.make_array_from_process_local_data(
      batch_sharding(mesh, local.ndim), local)


def global_batch(mesh, local: Mapping[str, np.ndarray]
                 ) -> Dict[str, jax.Array]:
  return {k: global_array(mesh, v) for k, v in local.items()}


def global_batches(batches: Iterator[Mapping[str, np.ndarray]], mesh
                   ) -> Iterator[Dict[str, jax.Array]]:
  """Each process-local numpy batch as sharded global jax.Arrays."""
  for batch in batches:
    yield global_batch(mesh, batch)


def process_batch_size(global_batch_size: int) -> int:
  """This process's share of a global batch."""
  count = jax.process_count()
  if global_batch_size % count:
    raise ValueError(f'global batch {global_batch_size} is not divisible by '
                     f'the {count} processes')
  return global_batch_size // count


def check_divisible(name: str, batch_size: int) -> None:
  if batch_size % jax.device_count():
    raise ValueError(f'{name}={batch_size} must be a multiple of the '
                     f'{jax.device_count()} devices')


def init_replicated(init_fn, mesh, *args):
  """(init_fn(*args), its shardings), created replicated on the mesh from
  the start: eval_shape -> jit(init, out_shardings), so no device ever
  holds an unsharded copy first."""
  abstract = jax.eval_shape(init_fn, *args)
  shardings = jax.tree.map(lambda _: replicated(mesh), abstract)
  return jax.jit(init_fn, out_shardings=shardings,
                 compiler_options=xla_cpu.init_options())(*args), shardings
