"""A training run's directory: its config, checkpoints, and restoring them.

A workdir holds `config.json` (so later commands need only --workdir),
`checkpoints/` (orbax: train state + grain iterator), metrics and samples,
and `pretrained.json` for methods with pretrained parts (which weights file,
with its SHA-256, or random init; written when training starts fresh).
`init_from` copies networks from another workdir or a weights file into a
fresh state (two-stage methods, fine-tuning).
"""

import json
import os
from typing import Any, Dict, List, Mapping, Optional

import flax
import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from colorjax import config_lib
from colorjax import errors
from colorjax import methods
from colorjax import pretrained
from colorjax import sharding
from colorjax import trees

CONFIG_FILE = 'config.json'
PRETRAINED_FILE = 'pretrained.json'


def save_config(config: ml_collections.ConfigDict, workdir: str):
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), 'w') as f:
      f.write(config.to_json_best_effort(indent=1, sort_keys=True))


def save_pretrained_record(workdir: str, record: Mapping[str, Any]):
  """Writes `record` (Method.pretrained_record: part -> where its initial
  weights came from) as <workdir>/pretrained.json; nothing when empty."""
  if record and jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, PRETRAINED_FILE), 'w') as f:
      json.dump(record, f, indent=1, sort_keys=True)


def random_init_parts(workdir: str) -> List[str]:
  """The parts the paper starts from pretrained weights that this run
  started from random init (its pretrained.json), sorted: the opt-out of a
  paper preset, or a CPU twin's shrunk part that fits no published file."""
  path = os.path.join(workdir, PRETRAINED_FILE)
  if not os.path.isfile(path):
    return []
  with open(path) as f:
    record = json.load(f)
  return sorted(part for part, entry in record.items()
                if isinstance(entry, dict) and not entry.get('pretrained'))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise errors.MissingFileError(f'{path} not found: is {workdir} a colorjax '
                            'workdir (created by python -m colorjax.main)?')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.get('max_checkpoints_to_keep', 3),
      save_interval_steps=1,          # the loop decides when to save
      enable_async_checkpointing=True)
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'),
      options=options,
      item_handlers={'state': ocp.StandardCheckpointHandler(),
                     'data': grain.checkpoint.CheckpointHandler()})


def save(manager, step: int, state, data_iterator):
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore_state(manager, abstract_state, step: Optional[int] = None,
                  data_iterator=None):
  step = manager.latest_step() if step is None else step
  args = {'state': ocp.args.StandardRestore(abstract_state)}
  if data_iterator is not None:
    args['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  return restored['state']


def abstract_state(method, mesh):
  """Shapes of the method's state, replicated over the mesh."""
  batch = method.batch_spec(len(mesh.devices.flat))
  abstract = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=sharding.replicated(mesh)),
      abstract)


def restore_for_inference(workdir: str, config=None, step=None):
  """(method, state) from a workdir's latest (or given) checkpoint."""
  config = config or load_config(workdir)
  mesh = sharding.data_mesh()
  method = methods.get_method(config)
  manager = checkpoint_manager(workdir, config)
  if manager.latest_step() is None:
    raise errors.MissingFileError(f'no checkpoint in {workdir}/checkpoints: train '
                            f'it first (python -m colorjax.main ...)')
  state = restore_state(manager, abstract_state(method, mesh), step)
  manager.close()
  return method, state


# ---------------------------------------------------------------- init_from
def export_network(state, network: str, path: str):
  """Writes one network's params + mutable state as a flax msgpack file
  (what `init_from.<network>.file` reads)."""
  tree = {'params': jax.device_get(state.params[network]),
          'model_state': jax.device_get(state.model_state.get(network, {}))}
  with open(path, 'wb') as f:
    f.write(flax.serialization.msgpack_serialize(
        flax.serialization.to_state_dict(tree)))


def _source_network(source: Mapping[str, Any], workdir_cache) -> Dict:
  """{'params', 'model_state'} of the network an init_from entry names."""
  if source.get('workdir'):
    path = os.path.abspath(os.path.expanduser(source['workdir']))
    if path not in workdir_cache:
      workdir_cache[path] = restore_for_inference(path, step=source.get(
          'step'))[1]
    state = workdir_cache[path]
    name = source['network']
    if name not in state.params:
      raise KeyError(f'init_from: {path} has no network {name!r}; it has '
                     f'{sorted(state.params)}')
    return {'params': state.params[name],
            'model_state': state.model_state.get(name, {})}
  if source.get('file'):
    with open(os.path.expanduser(source['file']), 'rb') as f:
      return flax.serialization.msgpack_restore(f.read())
  if source.get('pretrained'):      # NAME:PATH of colorjax.pretrained
    name, path = pretrained.parse_spec(
        source['pretrained'], 'init_from pretrained',
        'eccv16:/weights/colorization_release_v2-9b330a0b.pth')
    variables = pretrained.load_embedded(name, path)
    return {'params': variables['params'],
            'model_state': variables.get('batch_stats', {})}
  raise ValueError(f'init_from entry {dict(source)} names neither a workdir '
                   'nor a file nor pretrained weights')


def _partial(target, source, what: str):
  """`trees.graft`, printing which modules were copied and which keep
  their init."""
  tree, copied, kept, shapes = trees.graft(target, source)
  source_keys = flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(source), sep='/')
  unused = sorted(set(source_keys) - set(copied))
  modules = lambda keys: sorted({k.rsplit('/', 1)[0] for k in keys})  # pylint: disable=unnecessary-lambda-assignment
  if jax.process_index() == 0:
    print(f'init_from {what}: copied {len(copied)} arrays '
          f'({", ".join(modules(copied)) or "none"}); kept the random init '
          f'of {", ".join(modules(kept)) or "nothing"}'
          + (f'; shapes differ: {", ".join(shapes)}' if shapes else '')
          + (f'; unused in the source: {", ".join(modules(unused))}'
             if unused else ''))
  if not copied:
    raise ValueError(f'init_from {what}: no array of the source fits')
  return tree


def apply_init_from(state, init_from: Mapping[str, Any]):
  """Copies networks named by `config.init_from` into a fresh state.

  init_from = {entry: dict(workdir=DIR | file=PATH | pretrained=NAME:PATH
  (colorjax.pretrained), target=<the network filled, default the entry's
  name; two entries may fill parts of one network>, network=<source
  network, default the target's name>,
  step=<default latest>, path=<subtree of the target network, default all
  of it>, source_path=<subtree of the source>, partial=<bool, default True
  for pretrained files, else False>)}. Params and the network's mutable
  state (batch statistics) are copied; shapes must match exactly, unless
  `partial`: then the arrays at the same path and shape are copied, the
  others keep their init, and the mapping is printed.
  Optimizer state stays fresh.
  """
  if not init_from:
    return state
  params, model_state = dict(state.params), dict(state.model_state)
  cache = {}
  for entry, source in dict(init_from).items():
    source = dict(source)
    for key in config_lib.INIT_FROM_SOURCES:  # 'none': the opt-out
      if source.get(key) == config_lib.INIT_FROM_OPT_OUT:
        source[key] = None
    if not any(source.get(k) for k in config_lib.INIT_FROM_SOURCES):
      continue    # declared by a config, not set for this run (or 'none')
    network = source.pop('target', None) or entry
    source.setdefault('network', network)
    if network not in params:
      raise KeyError(f'init_from names network {network!r}; this method has '
                     f'{sorted(params)}')
    loaded = _source_network(source, cache)
    path, source_path = source.get('path', ''), source.get('source_path', '')
    what = f'{network}/{path} <- {source}'
    partial = source.get('partial')
    if partial is None:   # a published network rarely covers all of ours
      partial = bool(source.get('pretrained'))
    fit = _partial if partial else trees.fit_exactly
    params[network] = trees.replace_subtree(
        params[network], path, fit(
            trees.subtree(params[network], path),
            trees.subtree(loaded['params'], source_path), what))
    own_state = model_state.get(network)
    loaded_state = loaded.get('model_state') or {}
    if own_state and loaded_state:
      model_state[network] = trees.replace_subtree(
          own_state, path, fit(trees.subtree(own_state, path),
                               trees.subtree(loaded_state, source_path),
                               what + ' (model state)'))
  return state.replace(params=params, model_state=model_state)
