"""ChromaCMC's pretrained branch, section V-C's ablations and eq. 9's terms.

The branch: one warning when a paper-size run starts it from random init,
<workdir>/pretrained.json, and timm .safetensors == .pth through
ChromaCMC.load_pretrained. The ablations (Table 2: no segmentation head;
Table 3: L2 instead of CMC) train as tiny twins; the L2 value and the
weighted eq. 9 terms are checked against numbers computed here.
"""

import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chromacmc as chromacmc_config   # configs/ (conftest puts it on the path)
from colorjax import errors
from colorjax import methods
from colorjax import train
from colorjax import workdir as workdir_lib
from colorjax.models import seresnext
from conftest import apply_overrides
from conftest import tiny_config

MISSING = 'the paper initialises the SE-ResNeXt50 global branch'
RANDOM_RECORD = {'network': 'seresnext50_32x4d', 'pretrained': False,
                 'source': None, 'path': None, 'sha256': None}


def _fresh_start(config, workdir, state=None):
  """train's start of a fresh run (load_pretrained, init_from, record); an
  abstract state is enough when no weights are loaded."""
  method = methods.get_method(config)
  if state is None:
    state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0),
                           method.batch_spec(1))
  return method, train.start_from_weights(method, config, state,
                                          str(workdir))


def _record(workdir):
  with open(os.path.join(str(workdir), 'pretrained.json')) as f:
    return json.load(f)['generator/branch']


def _batch(config, batch_size=2, seed=0, size=None):
  rng = np.random.default_rng(seed)
  size = size or config.data.image_size
  shape = (batch_size, size, size)
  lightness = rng.uniform(0, 100, shape + (1,))
  return {'gray': jnp.asarray(lightness / 50.0 - 1.0, jnp.float32),
          'l': jnp.asarray(lightness, jnp.float32),
          'ab': jnp.asarray(rng.uniform(-0.6, 0.6, shape + (2,)), jnp.float32),
          'segmentation': jnp.asarray(rng.integers(
              0, config.data.num_classes, shape + (1,)), jnp.uint8)}


# ------------------------------------------------------ pretrained branch ---

@pytest.mark.parametrize('arg,overrides,stops', [
    ('voc', {}, True),
    ('ade20k', {}, True),
    ('demo', {}, False),
    ('tiny', {}, False),
    ('voc', {'model.expect_pretrained_branch': False}, False),
    ('voc', {'model.use_branch': False}, False),
])
def test_paper_presets_need_the_pretrained_branch(arg, overrides, stops,
                                                  tmp_path):
  """Section IV-B1's ImageNet branch: a paper preset without its weights
  stops with one message (where they are published, the flag, the opt-out)
  before its first step; the opt-out is recorded as random init."""
  config = apply_overrides(chromacmc_config.get_config(arg), overrides)
  if stops:
    with pytest.raises(errors.MissingFileError) as raised:
      _fresh_start(config, tmp_path)
    message = str(raised.value)
    assert message.startswith(MISSING)
    assert '--config.model.pretrained_branch=PATH' in message
    assert 'timm/seresnext50_32x4d.racm_in1k' in message
    assert 'model.safetensors' in message and 'a304a460.pth' in message
    assert '--config.model.expect_pretrained_branch=False' in message
    assert not os.path.exists(tmp_path / 'pretrained.json')
    return
  _fresh_start(config, tmp_path)
  if config.model.use_branch:
    assert _record(tmp_path) == dict(
        RANDOM_RECORD, expected=config.model.expect_pretrained_branch)
  else:     # no branch, nothing to record
    assert not os.path.exists(tmp_path / 'pretrained.json')


def test_branch_from_init_from_counts_as_pretrained(tmp_path):
  """init_from of the whole generator (or of 'branch') fills the branch:
  no stop, and the record names it; one of another part does not."""
  earlier = str(tmp_path / 'earlier_run')
  config = chromacmc_config.get_config('voc')
  config.init_from.generator = {'workdir': earlier}
  method = methods.get_method(config)
  state = object()                   # untouched without pretrained_branch
  assert method.load_pretrained(state) is state
  assert method.pretrained_record()['generator/branch'] == {
      'network': 'seresnext50_32x4d', 'pretrained': True, 'expected': True,
      'source': 'config.init_from.generator', 'path': earlier,
      'sha256': None}
  config.init_from.generator.path = 'ab_head'
  with pytest.raises(errors.MissingFileError, match=MISSING):
    methods.get_method(config).load_pretrained(state)


@pytest.fixture(scope='module')
def timm_files(tmp_path_factory):
  """A randomly initialised timm seresnext50_32x4d (random BN statistics),
  saved as a .pth state dict and as timm's .safetensors."""
  from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from test_seresnext import _randomised_timm_model  # pylint: disable=g-import-not-at-top
  model = _randomised_timm_model(seed=2)
  folder = tmp_path_factory.mktemp('timm')
  files = {'pth': str(folder / 'seresnext50_32x4d.pth'),
           'safetensors': str(folder / 'model.safetensors')}
  torch.save(model.state_dict(), files['pth'])
  save_file({k: v.contiguous() for k, v in model.state_dict().items()},
            files['safetensors'])
  return model, files


def test_safetensors_branch_equals_pth_branch(timm_files, tmp_path):
  """Both files fill the paper-size branch (inside a tiny trunk) through
  train's fresh start with the same arrays, which compute timm's logits;
  pretrained.json has the file and its SHA-256."""
  import torch  # pylint: disable=g-import-not-at-top
  model, files = timm_files
  config = chromacmc_config.get_config('tiny')
  config.model.update(branch_width=64, branch_blocks=seresnext.STAGE_BLOCKS,
                      expect_pretrained_branch=True)
  branches = {}
  for kind, path in files.items():
    config.model.pretrained_branch = path
    _, state = _fresh_start(config, tmp_path / kind)   # abstract init
    branches[kind] = {'params': state.params['generator']['branch'],
                      'batch_stats': state.model_state['generator']['branch']}
    with open(path, 'rb') as f:
      sha256 = hashlib.sha256(f.read()).hexdigest()
    assert _record(tmp_path / kind) == {
        'network': 'seresnext50_32x4d', 'pretrained': True, 'expected': True,
        'source': 'config.model.pretrained_branch', 'path': path,
        'sha256': sha256}

  leaves = [jax.tree.leaves(branches[k]) for k in ('pth', 'safetensors')]
  assert len(leaves[0]) == len(leaves[1]) > 300
  for a, b in zip(*leaves):     # every branch tensor was read from the file
    assert isinstance(a, (np.ndarray, jax.Array)), type(a)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
  logits = jax.jit(seresnext.SEResNeXt50().apply)(branches['safetensors'],
                                                  x)['logits']
  with torch.no_grad():
    want = model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-3, atol=2e-3)


# -------------------------------------------------------------- ablations ---

def test_no_segmentation_head_drops_the_head_and_its_batch_key():
  """-seg (Table 2): the generator loses exactly the 3x3 head over the
  last 16 (tiny) or 64 (paper) channels; no 'segmentation' in the batch
  or in predict's outputs."""
  for arg, channels in (('tiny', 16), ('voc', 64)):
    full = methods.get_method(chromacmc_config.get_config(arg))
    config = chromacmc_config.get_config(arg)
    config.model.use_segmentation = False
    method = methods.get_method(config)
    classes = config.data.num_classes
    assert set(method.batch_spec(1)) == {'gray', 'l', 'ab'}
    counts, full_counts = (m.describe(m.batch_spec(1)) for m in (method, full))
    assert counts['generator'] == full_counts['generator'] - classes * (
        3 * 3 * channels + 1)
    assert counts['discriminator'] == full_counts['discriminator']
  batch = method.batch_spec(1)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  assert set(jax.eval_shape(method.predict, state, batch)) == {'ab'}


@pytest.mark.parametrize('scale', ['lab', 'normalised'])
def test_l2_colour_loss_is_the_mean_squared_lab_distance(scale):
  """Table 3's L2: mean over pixels of da^2 + db^2 in Lab units (divided
  by 110^2 when normalised), against numpy in float64; CMC normalised is
  CMC in Lab units / 110."""
  config = chromacmc_config.get_config('tiny')
  config.loss.cmc_scale = scale
  batch = _batch(config, size=8)
  rng = np.random.default_rng(5)
  outputs = {'ab': jnp.asarray(rng.uniform(-0.9, 0.9, (2, 8, 8, 2)),
                               jnp.float32),
             'segmentation': jnp.asarray(rng.normal(size=(
                 2, 8, 8, config.data.num_classes)), jnp.float32)}
  cmc = methods.get_method(config).generator_losses(outputs, batch)
  config.loss.colour = 'l2'
  l2 = methods.get_method(config).generator_losses(outputs, batch)
  assert set(l2) == {'l2', 'segmentation'}
  assert set(cmc) == {'cmc', 'segmentation'}
  unit = 1.0 if scale == 'lab' else 110.0
  difference = (np.asarray(batch['ab'], np.float64)
                - np.asarray(outputs['ab'], np.float64)) * 110.0 / unit
  np.testing.assert_allclose(float(l2['l2']),
                             np.mean(np.sum(difference ** 2, -1)), rtol=1e-5)
  np.testing.assert_allclose(float(l2['segmentation']),
                             float(cmc['segmentation']), rtol=1e-6)
  if scale == 'normalised':
    config.loss.colour, config.loss.cmc_scale = 'cmc', 'lab'
    lab = methods.get_method(config).generator_losses(outputs, batch)
    np.testing.assert_allclose(float(cmc['cmc']), float(lab['cmc']) / 110.0,
                               rtol=1e-6)


def test_eq9_terms_are_of_one_order_of_magnitude_in_the_presets():
  """Eq. 9: lambda = 0.99 "to ensure the two losses ... have a consistent
  order of magnitude". The presets (paper and twins) measure the colour
  term in the units where that holds ('normalised'). At the first step on
  a random batch (colours far off) lambda x CMC is under 100x (1 - lambda)
  x GAN (README: within 5x once trained), 110x less than in Lab units."""
  for arg in ('voc', 'ade20k', 'demo', 'tiny'):
    assert chromacmc_config.get_config(arg).loss.cmc_scale == 'normalised'
  ratios = {}
  for scale in ('normalised', 'lab'):
    config = chromacmc_config.get_config('tiny')
    config.loss.cmc_scale = scale
    config.model.use_branch = False    # a quicker compile; same objective
    method = methods.get_method(config)
    batch = _batch(config)
    state = method.init_state(jax.random.PRNGKey(0), batch)
    _, metrics = jax.jit(method.train_step)(state, batch,
                                            jax.random.PRNGKey(1))
    ratios[scale] = float(metrics['loss_cmc_weighted']
                          / metrics['loss_gan_weighted'])
  assert 1 / 100 < ratios['normalised'] < 100, ratios
  assert ratios['lab'] / ratios['normalised'] == pytest.approx(110, rel=1e-3)


def test_unknown_colour_loss_or_scale_is_rejected():
  for field, value in (('colour', 'l1'), ('cmc_scale', 'lab100')):
    config = chromacmc_config.get_config('tiny')
    config.loss[field] = value
    with pytest.raises(ValueError, match=value):
      methods.get_method(config)


def test_weighted_metrics_are_the_eq9_terms_of_the_same_step():
  """loss_gan_weighted = (1 - lambda) * loss_gan, loss_cmc_weighted =
  lambda * loss_cmc, loss_segmentation_weighted = seg_weight *
  loss_segmentation, and the generator loss is their sum (weights moved
  off 0.99 / 1 so that each is told apart)."""
  config = chromacmc_config.get_config('tiny')
  config.loss.lambda_cmc, config.loss.seg_weight = 0.9, 0.5
  config.model.use_branch = False    # a quicker compile; same objective
  method = methods.get_method(config)
  batch = _batch(config)
  state = method.init_state(jax.random.PRNGKey(0), batch)
  _, metrics = jax.jit(method.train_step)(state, batch, jax.random.PRNGKey(1))
  metrics = {k: float(v) for k, v in metrics.items()}
  np.testing.assert_allclose(metrics['loss_gan_weighted'],
                             (1 - 0.9) * metrics['loss_gan'], rtol=1e-6)
  np.testing.assert_allclose(metrics['loss_cmc_weighted'],
                             0.9 * metrics['loss_cmc'], rtol=1e-6)
  np.testing.assert_allclose(metrics['loss_segmentation_weighted'],
                             0.5 * metrics['loss_segmentation'], rtol=1e-6)
  np.testing.assert_allclose(
      metrics['loss'], metrics['loss_gan_weighted']
      + metrics['loss_cmc_weighted'] + metrics['loss_segmentation_weighted'],
      rtol=1e-6)


@pytest.mark.parametrize('overrides,colour,segments', [
    ({'model.use_segmentation': False}, 'cmc', False),     # Table 2, -seg
    ({'loss.colour': 'l2'}, 'l2', True),                   # Table 3, L2
])
def test_ablation_twin_trains_and_reports_its_terms(
    overrides, colour, segments, shapes_data_dir, tmp_path):
  """The variant's tiny twin end to end (4 steps, one evaluation), without
  the branch, which neither switch touches (a 30 s compile, not 70 s)."""
  workdir = str(tmp_path)
  config = tiny_config(shapes_data_dir, 'chromacmc', num_train_steps=4,
                       eval_every_steps=4, checkpoint_every_steps=4,
                       **{'model.use_branch': False}, **overrides)
  result = train.train_and_evaluate(config, workdir)
  metrics = result['train']
  other = {'cmc': 'l2', 'l2': 'cmc'}[colour]
  assert {f'loss_{colour}', f'loss_{colour}_weighted', 'loss_gan',
          'loss_gan_weighted'} <= set(metrics)
  assert not {f'loss_{other}', f'loss_{other}_weighted'} & set(metrics)
  assert ('loss_segmentation' in metrics) == segments
  assert ('loss_segmentation_weighted' in metrics) == segments
  weighted = sum(v for k, v in metrics.items() if k.endswith('_weighted'))
  np.testing.assert_allclose(metrics['loss'], weighted, rtol=1e-5)
  assert 'psnr' in result['evals']['val']
  assert ('val_segmentation' in result['evals']) == segments
  assert not os.path.exists(os.path.join(workdir, 'pretrained.json'))

  method, state = workdir_lib.restore_for_inference(workdir)
  gray = jax.ShapeDtypeStruct((1, 32, 32, 1), jnp.float32)
  outputs = jax.eval_shape(method.predict, state, {'gray': gray})
  assert set(outputs) == ({'ab', 'segmentation'} if segments else {'ab'})


def test_training_records_the_branch_in_the_workdir(tiny_run):
  """train_and_evaluate writes pretrained.json at a fresh start (the
  session's tiny twin, branch included, from random init on purpose)."""
  workdir, result = tiny_run
  assert _record(workdir) == dict(RANDOM_RECORD, expected=False)
  assert {'loss_cmc_weighted', 'loss_gan_weighted',
          'loss_segmentation_weighted'} <= set(result['train'])
