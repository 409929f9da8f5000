"""Metrics against scikit-image; layers and losses against PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data as skdata
from skimage import measure
from skimage import metrics as skmetrics
import torch

from colorjax import metrics
from colorjax.losses import segmentation
from colorjax.models import layers


def _photo_pair(rng):
  image = skdata.astronaut()[::4, ::4] / 255.0
  noisy = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1)
  return image.astype(np.float32), noisy.astype(np.float32)


def test_psnr_matches_skimage(rng):
  image, noisy = _photo_pair(rng)
  ours = float(metrics.psnr(noisy[None], image[None])[0])
  assert ours == pytest.approx(
      skmetrics.peak_signal_noise_ratio(image, noisy, data_range=1.0),
      abs=1e-3)


def test_ssim_matches_skimage(rng):
  image, noisy = _photo_pair(rng)
  ours = float(metrics.ssim(noisy[None], image[None])[0])
  reference = skmetrics.structural_similarity(
      image, noisy, data_range=1.0, channel_axis=-1, gaussian_weights=True,
      sigma=1.5, use_sample_covariance=False)
  assert ours == pytest.approx(reference, abs=1e-4)
  assert float(metrics.ssim(image[None], image[None])[0]) == pytest.approx(
      1.0, abs=1e-5)


def test_image_entropy_matches_skimage(rng):
  image, noisy = _photo_pair(rng)
  ours = np.asarray(metrics.image_entropy(np.stack([image, noisy])))
  for got, img in zip(ours, (image, noisy)):
    levels = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    expected = np.mean([measure.shannon_entropy(levels[..., c])
                        for c in range(3)])
    assert got == pytest.approx(expected, abs=1e-4)


def test_confusion_and_miou(rng):
  labels = rng.integers(0, 4, (2, 16, 16))
  labels[0, 0, :5] = 255
  predictions = np.where(rng.random(labels.shape) < 0.7, labels,
                         rng.integers(0, 4, labels.shape))
  confusion = np.asarray(metrics.confusion_matrix(labels, predictions, 4,
                                                  ignore_label=255))
  valid = labels != 255
  expected = np.zeros((4, 4), int)
  np.add.at(expected, (labels[valid], predictions[valid]), 1)
  np.testing.assert_array_equal(confusion, expected)
  iou = [expected[c, c] / (expected[c].sum() + expected[:, c].sum()
                           - expected[c, c]) for c in range(4)]
  assert metrics.mean_iou(confusion) == pytest.approx(np.mean(iou))
  masked = metrics.confusion_matrix(labels, predictions, 4, 255,
                                    weights=np.array([1.0, 0.0])[:, None, None])
  assert int(np.asarray(masked).sum()) == int(valid[0].sum())


def test_cross_entropy_matches_torch_with_ignore(rng):
  logits = rng.normal(size=(2, 5, 6, 7)).astype(np.float32)
  labels = rng.integers(0, 7, (2, 5, 6))
  labels[0, :2] = 255
  ours = float(segmentation.cross_entropy(logits, labels[..., None], 255))
  reference = torch.nn.functional.cross_entropy(
      torch.from_numpy(logits).permute(0, 3, 1, 2),
      torch.from_numpy(labels).long(), ignore_index=255)
  assert ours == pytest.approx(float(reference), rel=1e-5)


@pytest.mark.parametrize('size,output_padding,padded',
                         [(4, 0, False), (3, 1, False), (4, 0, True),
                          (3, 1, True)])
def test_upconv_equals_torch_conv_transpose_and_its_gradients(
    rng, size, output_padding, padded):
  """padded: the kernel gradient taken on the padded output gradient
  (`layers.padded_weight_grads`, the train step's form with XLA's kernels)."""
  x = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
  # Our kernel: HWIO of the strided conv = [kh, kw, C_out, C_in];
  # torch ConvTranspose2d weight: [C_in, C_out, kh, kw].
  kernel = rng.normal(size=(size, size, 6, 3)).astype(np.float32)
  cotangent = rng.normal(size=(2, 10, 14, 6)).astype(np.float32)

  def ours(x, kernel):
    return layers.conv_transpose(x, kernel, 2, 1, output_padding)

  with layers.padded_weight_grads(padded):
    y, vjp = jax.vjp(ours, jnp.asarray(x), jnp.asarray(kernel))
    grad_x, grad_kernel = vjp(jnp.asarray(cotangent))

  tx = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()
  tw = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()).requires_grad_()
  ty = torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1,
                                           output_padding=output_padding)
  ty.backward(torch.from_numpy(cotangent.transpose(0, 3, 1, 2)))
  np.testing.assert_allclose(np.asarray(y),
                             ty.detach().numpy().transpose(0, 2, 3, 1),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(grad_x),
                             tx.grad.numpy().transpose(0, 2, 3, 1),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(grad_kernel),
                             tw.grad.numpy().transpose(2, 3, 1, 0),
                             rtol=1e-4, atol=1e-3)
  # And it is the flax/XLA transposed convolution (gradients by autodiff).
  pad = (size - 2, size - 2 + output_padding)
  reference = jax.lax.conv_transpose(
      jnp.asarray(x), jnp.asarray(kernel)[::-1, ::-1], (2, 2),
      [pad, pad], dimension_numbers=('NHWC', 'HWOI', 'NHWC'))
  np.testing.assert_allclose(
      np.asarray(layers.conv_transpose_xla(x, kernel, 2, 1, output_padding)),
      np.asarray(y), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(y), np.asarray(reference),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('form,stride,cin_group,padded', [
    ('matmul', 1, 2, False), ('matmul', 2, 2, False),
    ('blockdiag', 1, 2, False), ('blockdiag', 2, 4, True),
    ('blockdiag', 1, 48, True)])
def test_grouped_conv_forms_equal_xla_grouped_conv(rng, form, stride,
                                                   cin_group, padded):
  """Both CPU forms are XLA's grouped conv, values and gradients; blockdiag
  with several blocks (2 and 4 input channels per group: 16 and 8 groups
  per block) and with one group per block (48 > its 32 channels), its
  dense convolutions' kernel gradients taken on the padded input or not."""
  x = jnp.asarray(rng.normal(size=(2, 9, 10, 32 * cin_group))
                  .astype(np.float32))
  kernel = jnp.asarray(rng.normal(size=(3, 3, cin_group, 96))
                       .astype(np.float32))
  reference = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (stride, stride), [(1, 1), (1, 1)],
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=32)
  function = {'matmul': layers.grouped_conv_matmul,
              'blockdiag': layers.grouped_conv_blockdiag}[form]
  ours = lambda x, k: function(x, k, stride, 1, 32)
  np.testing.assert_allclose(np.asarray(jax.jit(ours)(x, kernel)),
                             np.asarray(jax.jit(reference)(x, kernel)),
                             rtol=1e-4, atol=1e-4)
  cotangent = jnp.asarray(rng.normal(size=reference(x, kernel).shape)
                          .astype(np.float32))
  # Jitted: eagerly, each of the forms' slices and einsums compiles alone.
  vjp = lambda f: jax.jit(lambda x, k, c: jax.vjp(f, x, k)[1](c))  # pylint: disable=unnecessary-lambda-assignment
  with layers.padded_weight_grads(padded):
    grads = vjp(ours)(x, kernel, cotangent)
  expected = vjp(reference)(x, kernel, cotangent)
  for got, want in zip(grads, expected):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4,
                               atol=1e-3)


@pytest.mark.parametrize('size,output_padding', [(4, 0), (3, 1)])
def test_upconv_implementations_agree_in_values_and_gradients(
    size, output_padding):
  """'adjoint' (CPU workaround, custom VJP), 'matmul' (per-tap matmul +
  overlap-add), 'subpixel' (per-phase convolutions; the 3x3 kernel gets a
  zero tap) and 'xla' are one function."""
  from colorjax.models import layers  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)), jnp.float32)
  modules = {name: layers.UpConv(4, size, output_padding=output_padding,
                                 implementation=name)
             for name in ('adjoint', 'matmul', 'subpixel', 'xla')}
  variables = modules['adjoint'].init(jax.random.PRNGKey(0), x)

  def loss(params, x, name):
    y = modules[name].apply({'params': params}, x)
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape) / y.size)

  outs = {n: modules[n].apply(variables, x) for n in modules}
  grads = {n: jax.grad(loss, argnums=(0, 1))(variables['params'], x, n)
           for n in modules}
  assert outs['xla'].shape == (2, 10, 12, 4)
  for name in ('adjoint', 'matmul', 'subpixel'):
    np.testing.assert_allclose(outs[name], outs['xla'], atol=1e-5)
    for a, b in zip(jax.tree.leaves(grads[name]),
                    jax.tree.leaves(grads['xla'])):
      np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize('kernel,stride,padding,dilation', [
    (3, 1, 1, 1), (4, 2, 1, 1), (3, 2, 'SAME', 1), (7, 2, 3, 1),
    (3, 1, ((0, 2), (1, 0)), 1), (3, 1, 'SAME', 2), (1, 1, 0, 1)])
def test_padded_weight_grads_equal_xlas_convolution(rng, kernel, stride,
                                                     padding, dilation):
  """layers.Conv is nn.Conv (parameters, values, both gradients); inside
  `padded_weight_grads` every padded convolution goes through
  `conv_padded_weight_grad` (kernel gradient on the padded input), an
  unpadded one and everything outside the context through lax's op."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  pads = (padding if isinstance(padding, (str, tuple))
          else [(padding, padding)] * 2)
  x = jnp.asarray(rng.normal(size=(2, 13, 11, 5)).astype(np.float32))
  ours = layers.Conv(6, (kernel, kernel), (stride, stride), padding=pads,
                     kernel_dilation=dilation)
  theirs = nn.Conv(6, (kernel, kernel), (stride, stride), padding=pads,
                   kernel_dilation=dilation)
  variables = theirs.init(jax.random.PRNGKey(0), x)
  assert (jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) ==
          jax.tree.map(jnp.shape, variables))

  def grads(module):
    loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)) *  # pylint: disable=g-long-lambda
                                jnp.arange(6.0))
    return jax.value_and_grad(loss, argnums=(0, 1))

  with layers.padded_weight_grads():
    got = jax.jit(grads(ours))(variables, x)
    traced = str(jax.make_jaxpr(grads(ours))(variables, x))
  assert ('custom_vjp' in traced) == (padding != 0)
  assert 'custom_vjp' not in str(jax.make_jaxpr(grads(ours))(variables, x))
  want = jax.jit(grads(theirs))(variables, x)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_soft_dice_equals_a_loop_over_images_and_classes():
  """Paper 001 eq. 19 written with explicit loops in numpy."""
  seg_losses = segmentation
  rng = np.random.default_rng(7)
  logits = rng.normal(0, 2, (3, 5, 6, 4)).astype(np.float32)
  labels = rng.integers(0, 4, (3, 5, 6))
  labels[0, :2] = 255                       # ignored pixels
  labels[1] = np.where(labels[1] == 3, 0, labels[1])   # class 3 absent

  def reference(per_image, smooth=1.0):
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    groups = [[i] for i in range(3)] if per_image else [[0, 1, 2]]
    scores = []
    for group in groups:
      for c in range(4):
        inter = y2 = p2 = 0.0
        for i in group:
          for h in range(5):
            for w in range(6):
              if labels[i, h, w] == 255:
                continue
              y = float(labels[i, h, w] == c)
              p = float(probs[i, h, w, c])
              inter += y * p
              y2 += y * y
              p2 += p * p
        scores.append((2 * inter + smooth) / (y2 + p2 + smooth))
    return 1.0 - np.mean(scores)

  for per_image in (True, False):
    got = seg_losses.soft_dice(jnp.asarray(logits), jnp.asarray(labels), 255,
                               per_image=per_image)
    np.testing.assert_allclose(float(got), reference(per_image), rtol=1e-5)
  # A perfect, confident prediction scores ~0; gradients are finite.
  perfect = (np.eye(4)[labels % 4] * 50.0).astype(np.float32)
  assert float(seg_losses.soft_dice(jnp.asarray(perfect), jnp.asarray(
      labels), 255)) < 1e-3
  grad = jax.grad(lambda x: seg_losses.soft_dice(x, jnp.asarray(labels),
                                                 255))(jnp.asarray(logits))
  assert np.all(np.isfinite(np.asarray(grad)))
