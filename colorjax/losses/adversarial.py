"""GAN objective of paper 000 eq. 8 with logits (numerically stable BCE)."""

import jax.numpy as jnp
import optax


def _bce(logits, target: float):
  logits = logits.astype(jnp.float32)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits, jnp.full_like(logits, target)))


def discriminator_loss(real_logits, fake_logits):
  """-(log D(y) + log(1 - D(G(x)))) / 2, averaged over patches."""
  return 0.5 * (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0))


def generator_loss(fake_logits):
  """Non-saturating form of min_G log(1 - D(G(x))): -log D(G(x))."""
  return _bce(fake_logits, 1.0)
