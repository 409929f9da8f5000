"""Method-level correctness: sizes vs the documented numbers, train-step
gradients vs the paper's objective written out independently, and a
fixed-batch overfit for every method.

The gradient tests run one train step with plain SGD (update = -lr * grad),
so the step's gradient is read back from the parameter change and compared
with `jax.grad` of the paper's loss written directly here from the equations
(not through the method's loss functions).
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import methods
from colorjax.color import delta_e_cmc
from colorjax.losses import dmol
from conftest import fit_fixed_batch

SGD_LR = 1000.0   # large, so (p0 - p1) / lr keeps float32 precision


def _config(name, arg, **model):
  config = importlib.import_module(name).get_config(arg)
  config.model.update(model)
  return config


def _batch(method, config, batch_size, seed=0):
  rng = np.random.default_rng(seed)
  batch = {}
  for key, spec in method.batch_spec(batch_size).items():
    if spec.dtype == np.uint8:
      value = rng.integers(0, config.data.num_classes, spec.shape)
    elif key == 'l':
      value = rng.uniform(0, 100, spec.shape)
    else:
      value = rng.uniform(-0.6, 0.6, spec.shape)
    batch[key] = jnp.asarray(value, spec.dtype)
  if 'l' in batch and 'gray' in batch:
    batch['gray'] = batch['l'] / 50.0 - 1.0
  return batch


def _sgd(config):
  config.optimizer.name = 'sgd'
  config.optimizer.kwargs = {}
  config.optimizer.learning_rate = SGD_LR
  config.optimizer.schedule = {'type': 'constant'}
  return config


def _assert_trees_close(actual, expected, rel=2e-3):
  """Leaf by leaf, each against its own scale: a small leaf (a bias, a
  head) is checked as tightly as the largest. The floor, 1% of the old
  whole-tree tolerance, is the float32 round-off of the (p0 - p1) / lr
  difference quotient the step gradients are read back with. (NumPy on
  the host: eager jnp ops compile once per leaf shape, seconds per tree.)"""
  actual, expected = jax.device_get((actual, expected))
  floor = 1e-2 * rel * max(float(np.max(np.abs(x)))
                           for x in jax.tree.leaves(expected))
  for (path, a), e in zip(jax.tree_util.tree_leaves_with_path(actual),
                          jax.tree.leaves(expected)):
    scale = float(np.max(np.abs(e)))
    np.testing.assert_allclose(np.asarray(a), np.asarray(e),
                               atol=rel * scale + floor, rtol=rel,
                               err_msg=jax.tree_util.keystr(path))


def _step_gradients(state, new_state, network):
  before, after = jax.device_get((state.params[network],
                                  new_state.params[network]))
  return jax.tree.map(lambda p0, p1: (p0 - p1) / np.float32(SGD_LR),
                      before, after)


# ---------------------------------------------------------------- sizes ---

# Documented in configs/<paper>.py and README ("Size, measured by ...").
CHROMACMC_SIZES = {
    'voc': {'generator': 86_164_207, 'discriminator': 2_762_049},
    'demo': {'generator': 3_980_065, 'discriminator': 166_945},
    'tiny': {'generator': 1_258_241, 'discriminator': 9_329},
}
PIXSEM_SIZES = {
    ('voc', 'embedding'): 108_688_568,
    ('voc', 'semantic_embedding'): 132_577_015,
    ('voc', 'semantic_generator'): 133_007_095,
    ('voc', 'feature_transform'): 133_068_535,
    ('coco_stuff', 'semantic_generator'): 138_530_522,
    # The single-scale generator (the sizes before PixelCNN++'s layout).
    ('voc_small', 'semantic_generator'): 80_240_695,
    ('demo', 'semantic_generator'): 1_195_873,
    ('tiny', 'semantic_generator'): 69_629,
}


@pytest.mark.parametrize('arg', sorted(CHROMACMC_SIZES))
def test_chromacmc_parameter_counts_and_output_shapes(arg):
  config = _config('chromacmc', arg)
  method = methods.get_method(config)
  batch = method.batch_spec(2)
  assert method.describe(batch) == CHROMACMC_SIZES[arg]
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  out = jax.eval_shape(method.predict, state, batch)
  size = config.data.image_size
  assert out['ab'].shape == (2, size, size, 2)
  assert out['segmentation'].shape == (2, size, size, config.data.num_classes)


def test_chromacmc_ade20k_differs_only_by_the_segmentation_head():
  """150 instead of 21 classes: the 3x3 head over 64 channels grows by
  129 * (3 * 3 * 64 + 1) parameters; nothing else changes."""
  method = methods.get_method(_config('chromacmc', 'ade20k'))
  counts = method.describe(method.batch_spec(1))
  assert counts['generator'] == (CHROMACMC_SIZES['voc']['generator']
                                 + (150 - 21) * (3 * 3 * 64 + 1))
  assert counts['discriminator'] == CHROMACMC_SIZES['voc']['discriminator']


def test_chromacmc_paper_size_is_the_papers_328_mb():
  """Paper 000 Table 6: 328.29 MB; ours is within 0.2%."""
  megabytes = CHROMACMC_SIZES['voc']['generator'] * 4 / 2 ** 20
  assert abs(megabytes - 328.29) / 328.29 < 0.002


@pytest.mark.parametrize('arg,variant', sorted(PIXSEM_SIZES))
def test_pixsem_parameter_counts_and_output_shapes(arg, variant):
  config = _config('pixsem', arg, variant=variant)
  method = methods.get_method(config)
  batch = method.batch_spec(2)
  assert method.describe(batch) == {'model': PIXSEM_SIZES[(arg, variant)]}
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  out = jax.eval_shape(lambda s, b: method.model.apply(
      {'params': s.params['model']}, b['gray'], b['ab_small']), state, batch)
  small = config.data.image_size // config.data.downsample
  for key in ('embedding_dmol', 'generator_dmol'):
    assert out[key].shape[:3] == (2, small, small), key
  assert out['embedding_dmol'].shape == out['generator_dmol'].shape
  if 'segmentation' in out:
    assert out['segmentation'].shape == (2, small, small,
                                         config.data.num_classes)


# ------------------------------------------------ gradients vs the paper ---

def test_chromacmc_step_equals_eq8_then_eq9_written_out():
  """Discriminator: descent on eq. 8 (BCE, real then fake, halved).
  Generator, against the *updated* discriminator: eq. 9,
  (1 - 0.99) * GAN + 0.99 * CMC(2:1) / 110 + 1 * pixel cross-entropy
  (CMC in units of the ab scale, the preset's `cmc_scale='normalised'`)."""
  # The SE-ResNeXt branch is no part of eq. 8-9 (it only feeds features
  # to the generator) and would triple the compile of the four programs.
  config = _sgd(_config('chromacmc', 'tiny', use_branch=False))
  config.data.image_size = 32
  assert config.loss.lambda_cmc == 0.99 and config.loss.seg_weight == 1.0
  assert (config.loss.cmc_l, config.loss.cmc_c) == (2.0, 1.0)
  assert config.loss.cmc_scale == 'normalised'
  method = methods.get_method(config)
  batch = _batch(method, config, 2)
  rng = jax.random.PRNGKey(3)
  state = method.init_state(jax.random.PRNGKey(0), batch)
  new_state, metrics = jax.jit(method.train_step)(state, batch, rng)

  generator, discriminator = method.generator(True), method.discriminator(True)
  g0, d0 = state.params['generator'], state.params['discriminator']
  g_stats = state.model_state['generator']
  d_stats = state.model_state['discriminator']
  gray, l, ab = batch['gray'], batch['l'], batch['ab']

  def run_generator(params):
    out, _ = generator.apply({'params': params, 'batch_stats': g_stats}, gray,
                             mutable=['batch_stats'], rngs={'dropout': rng})
    return out

  fake_ab = jax.jit(run_generator)(g0)['ab']

  def eq8(params):
    real, upd = discriminator.apply({'params': params, 'batch_stats': d_stats},
                                    gray, ab, mutable=['batch_stats'])
    fake, upd = discriminator.apply(
        {'params': params, 'batch_stats': upd['batch_stats']}, gray, fake_ab,
        mutable=['batch_stats'])
    loss = -0.5 * (jnp.mean(jax.nn.log_sigmoid(real))
                   + jnp.mean(jax.nn.log_sigmoid(-fake)))
    return loss, upd['batch_stats']

  (d_loss, d_stats1), d_grad = jax.jit(jax.value_and_grad(eq8, has_aux=True))(
      d0)
  d1 = jax.tree.map(lambda p, g: p - np.float32(SGD_LR) * g,
                    *jax.device_get((d0, d_grad)))

  def eq9(params):
    out = run_generator(params)
    fooled, _ = discriminator.apply({'params': d1, 'batch_stats': d_stats1},
                                    gray, out['ab'], mutable=['batch_stats'])
    gan = -jnp.mean(jax.nn.log_sigmoid(fooled))
    lab_true = jnp.concatenate([l, ab * 110.0], -1)
    lab_pred = jnp.concatenate([l, out['ab'] * 110.0], -1)
    cmc = jnp.mean(delta_e_cmc(lab_true, lab_pred, l=2.0, c=1.0)) / 110.0
    log_p = jax.nn.log_softmax(out['segmentation'])
    labels = batch['segmentation'][..., 0].astype(jnp.int32)
    ce = -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], -1))
    return 0.01 * gan + 0.99 * cmc + 1.0 * ce

  g_loss, g_grad = jax.jit(jax.value_and_grad(eq9))(g0)
  np.testing.assert_allclose(metrics['loss_discriminator'], d_loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], g_loss, rtol=1e-5)
  _assert_trees_close(_step_gradients(state, new_state, 'discriminator'),
                      d_grad)
  _assert_trees_close(_step_gradients(state, new_state, 'generator'), g_grad)


def _logistic_mixture_nll(params, target, num_mixtures):
  """-mean log p(a, b) of the ab DMoL, via dmol.dmol_log_prob: the DMoL
  itself is checked against scipy's logistic CDF in test_dmol.py."""
  return -jnp.mean(dmol.dmol_log_prob(params, target, num_mixtures))


def test_pixsem_step_is_1_100_1_of_its_three_losses_and_ema_follows():
  """Paper 004 eq. 6: lambda1 L_emb + lambda2 L_seg + lambda3 L_gen with
  1:100:1 (paper config), the segmentation loss on the 1/4-size labels; the
  Polyak average moves by (1 - decay) towards the new parameters."""
  paper = _config('pixsem', 'voc')
  assert (paper.loss.embedding, paper.loss.segmentation,
          paper.loss.generator) == (1.0, 100.0, 1.0)
  config = _sgd(_config('pixsem', 'tiny'))
  config.data.image_size = 32
  config.loss.update(embedding=1.0, segmentation=100.0, generator=1.0)
  method = methods.get_method(config)
  batch = _batch(method, config, 2)
  state = method.init_state(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)       # one program for both calls
  new_state, metrics = step(state, batch, jax.random.PRNGKey(1))
  k = config.model.num_mixtures

  def eq6(params):
    out = method.model.apply({'params': params}, batch['gray'],
                             batch['ab_small'])
    log_p = jax.nn.log_softmax(out['segmentation'])
    labels = batch['segmentation_small'][..., 0].astype(jnp.int32)
    seg = -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], -1))
    return (1.0 * _logistic_mixture_nll(out['embedding_dmol'],
                                        batch['ab_small'], k)
            + 100.0 * seg
            + 1.0 * _logistic_mixture_nll(out['generator_dmol'],
                                          batch['ab_small'], k))

  p0 = state.params['model']
  loss, grad = jax.jit(jax.value_and_grad(eq6))(p0)
  np.testing.assert_allclose(metrics['loss'], loss, rtol=1e-5)
  # The tiny twin's dropout rate is 0: the rng changes nothing.
  assert config.model.generator_dropout == 0.0
  _, other_rng = step(state, batch, jax.random.PRNGKey(2))
  assert float(other_rng['loss']) == float(metrics['loss'])
  _assert_trees_close(_step_gradients(state, new_state, 'model'), grad)
  decay = config.model.ema_decay
  p1 = new_state.params['model']
  _assert_trees_close(new_state.model_state['ema'],
                      jax.tree.map(lambda a, b: decay * a + (1 - decay) * b,
                                   *jax.device_get((p0, p1))), rel=1e-6)


# ------------------------------------------------------------- overfit ---

def _scene_batch(method, config, batch_size, seed=0):
  """Learnable scenes: 4x4 blocks of classes, each class with its own
  lightness and colour (random pixels could not be fitted in a few steps)."""
  rng = np.random.default_rng(seed)
  size, classes = config.data.image_size, config.data.num_classes
  labels = np.kron(rng.integers(0, classes, (batch_size, 4, 4)),
                   np.ones((size // 4, size // 4), np.int64))[..., None]
  lightness = rng.uniform(20, 90, classes)[labels]
  ab = rng.uniform(-0.5, 0.5, (classes, 2))[labels[..., 0]]
  full = {'l': lightness, 'gray': lightness / 50.0 - 1.0, 'ab': ab,
          'segmentation': labels}
  batch = {}
  for key, spec in method.batch_spec(batch_size).items():
    value = full[key.replace('_small', '')]
    step = value.shape[1] // spec.shape[1]
    batch[key] = jnp.asarray(value[:, ::step, ::step], spec.dtype)
  return batch


def _overfit(name, variant, steps, seed=0, **model):
  config = _config(name, variant, **model)
  config.data.image_size = 32   # the test dataset's size (tiny_run's too)
  method = methods.get_method(config)
  batch = _scene_batch(method, config, 4, seed)
  return fit_fixed_batch(method, batch, steps)[1]


def test_chromacmc_overfits_a_fixed_batch():
  """60 Adam steps on one batch of scenes (tiny twin, its own optimizer):
  the CMC colour loss at least halves (measured: 50.0 -> 14.3) and the
  pixel cross-entropy, weighted 1 against CMC's 0.99 * ~50, falls by 8%
  (measured 2.22 -> 1.96). A sign error or a dropped term fails. Without
  the SE-ResNeXt branch (its compile and run time are two thirds of the
  test's; with it: 51.1 -> 13.9 and 2.24 -> 1.94); the session's tiny run
  trains the whole generator."""
  history = _overfit('chromacmc', 'tiny', 60, use_branch=False)
  first, last = history[0], history[-1]
  assert last['loss_cmc'] < 0.5 * first['loss_cmc'], (first, last)
  assert last['loss_segmentation'] < 0.92 * first['loss_segmentation'], (
      first, last)


def test_pixsem_train_step_uses_the_generators_dropout_rng():
  """With PixelCNN++'s dropout on (the paper preset's 0.5), the train step
  draws it from its rng: two rngs give two losses, one rng the same loss;
  at rate 0 the rng does not matter (the eq. 6 test above: its step at
  rate 0 equals the dropout-free formulation, and another rng gives the
  same loss)."""
  config = _config('pixsem', 'tiny', generator_dropout=0.5)
  config.data.image_size = 16
  method = methods.get_method(config)
  batch = _batch(method, config, 2)
  state = method.init_state(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  first, second, again = [
      float(step(state, batch, jax.random.PRNGKey(k))[1]['loss'])
      for k in (1, 2, 1)]
  assert _config('pixsem', 'voc').model.generator_dropout == 0.5
  assert first != second and first == again


def test_pixsem_overfits_a_fixed_batch():
  """40 Adam steps on one batch of scenes (tiny twin): bits/dim fall by 7%
  for the generator (measured 8.99 -> 7.90) and 20% for the embedding
  network (8.96 -> 6.47); the segmentation loss halves (1.95 -> 0.64)."""
  history = _overfit('pixsem', 'tiny', 40)
  first, last = history[0], history[-1]
  assert (last['bits_per_dim_generator']
          < 0.93 * first['bits_per_dim_generator']), (first, last)
  assert (last['bits_per_dim_embedding']
          < 0.8 * first['bits_per_dim_embedding']), (first, last)
  assert last['loss_segmentation'] < 0.5 * first['loss_segmentation'], (
      first, last)
