"""Discretized mixture of logistics over (a, b) (paper 004; PixelCNN++).

Each channel lives in [-1, 1] on 256 levels (bin width 2/255). A pixel's
network output holds, for K mixture components: K logits, K means and K log
scales per channel, and K coefficients that make b's mean depend linearly on
the pixel's a value (as PixelCNN++ conditions G on R):
    outputs[..., 6K] = [logits | mean_a | mean_b | log_s_a | log_s_b | coeff]
Edge bins hold the tails (x = -1 takes (-inf, -1 + 1/255], x = 1 takes
[1 - 1/255, inf)), so the 256 x 256 probabilities of a pixel sum to one.
All arithmetic is float32 with log-sum-exp.
"""

import jax
import jax.numpy as jnp

NUM_LEVELS = 256
HALF_BIN = 1.0 / (NUM_LEVELS - 1)
MIN_LOG_SCALE = -7.0


def num_outputs(num_mixtures: int) -> int:
  return 6 * num_mixtures


def split_outputs(outputs, num_mixtures: int):
  """[..., 6K] -> logits [..., K], means/log_scales [..., 2, K], coeff [..., K]."""
  outputs = outputs.astype(jnp.float32)
  k = num_mixtures
  if outputs.shape[-1] != 6 * k:
    raise ValueError(f'expected {6 * k} outputs for {k} mixtures, got '
                     f'{outputs.shape[-1]}')
  logits = outputs[..., :k]
  means = jnp.stack([outputs[..., k:2 * k], outputs[..., 2 * k:3 * k]], -2)
  log_scales = jnp.maximum(
      jnp.stack([outputs[..., 3 * k:4 * k], outputs[..., 4 * k:5 * k]], -2),
      MIN_LOG_SCALE)
  coeff = jnp.tanh(outputs[..., 5 * k:6 * k])
  return logits, means, log_scales, coeff


def _discretized_logistic_log_prob(x, mean, log_scale):
  """log P(bin of x) for one channel; x on the 256-level grid in [-1, 1]."""
  centered = x - mean
  inv_scale = jnp.exp(-log_scale)
  plus_in = inv_scale * (centered + HALF_BIN)
  min_in = inv_scale * (centered - HALF_BIN)
  log_cdf_plus = plus_in - jax.nn.softplus(plus_in)         # x = -1 edge
  log_one_minus_cdf_min = -jax.nn.softplus(min_in)          # x = +1 edge
  # log(sigmoid(plus) - sigmoid(min)) in a form that stays exact in both
  # tails (PixelCNN++ falls back to the density there; this needs no cut).
  log_interior = _log_sigmoid_difference(plus_in, min_in)
  return jnp.where(x < -1.0 + HALF_BIN, log_cdf_plus,
                   jnp.where(x > 1.0 - HALF_BIN, log_one_minus_cdf_min,
                             log_interior))


def _log_sigmoid_difference(hi, lo):
  """log(sigmoid(hi) - sigmoid(lo)) for hi > lo, without cancellation.

  sigmoid(hi) - sigmoid(lo) = sigmoid(hi) sigmoid(-lo) (1 - exp(lo - hi)).
  """
  return (jax.nn.log_sigmoid(hi) + jax.nn.log_sigmoid(-lo)
          + jnp.log(-jnp.expm1(jnp.minimum(lo - hi, -1e-12))))


def quantize(x):
  """Snaps values to the 256-level grid of [-1, 1]."""
  return jnp.round((jnp.clip(x, -1.0, 1.0) + 1.0) / (2.0 * HALF_BIN)) * (
      2.0 * HALF_BIN) - 1.0


def dmol_log_prob(outputs, ab, num_mixtures: int):
  """log p(a, b) per pixel: outputs [..., 6K], ab [..., 2] in [-1, 1]."""
  logits, means, log_scales, coeff = split_outputs(outputs, num_mixtures)
  ab = quantize(ab.astype(jnp.float32))
  a, b = ab[..., 0:1], ab[..., 1:2]
  mean_a = means[..., 0, :]
  mean_b = means[..., 1, :] + coeff * a           # b conditioned on a
  log_p = (_discretized_logistic_log_prob(a, mean_a, log_scales[..., 0, :])
           + _discretized_logistic_log_prob(b, mean_b, log_scales[..., 1, :]))
  return jax.nn.logsumexp(log_p + jax.nn.log_softmax(logits, -1), axis=-1)


def bits_per_dim(log_prob_sum, num_dims):
  """Negative log-likelihood in bits per sub-pixel (uniform = 8 bits)."""
  return -log_prob_sum / (num_dims * jnp.log(2.0))


def dmol_sample(rng, outputs, num_mixtures: int, temperature: float = 1.0):
  """Samples ab [..., 2] on the 256-level grid from the same distribution.

  temperature scales the logistic scales and divides the mixture logits
  (T = 1: the model's distribution; T < 1: more conservative colours).
  """
  logits, means, log_scales, coeff = split_outputs(outputs, num_mixtures)
  rng_mix, rng_a, rng_b = jax.random.split(rng, 3)
  component = jax.random.categorical(rng_mix, logits / temperature, axis=-1)
  pick = lambda v: jnp.take_along_axis(v, component[..., None], -1)[..., 0]
  scale = jnp.exp(log_scales) * temperature
  noise_a = jax.random.logistic(rng_a, component.shape)
  noise_b = jax.random.logistic(rng_b, component.shape)
  a = quantize(pick(means[..., 0, :]) + pick(scale[..., 0, :]) * noise_a)
  b = quantize(pick(means[..., 1, :]) + pick(coeff) * a
               + pick(scale[..., 1, :]) * noise_b)
  return jnp.stack([a, b], axis=-1)
