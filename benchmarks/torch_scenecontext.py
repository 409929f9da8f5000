"""PyTorch peer of the SceneContext train step (paper 001), for
`colorjax.benchmark train`.

Benchmark-only and a test oracle (torch is an optional dependency; nothing
in colorjax imports this). Written from section IV of the paper and the
layer choices configs/scenecontext.py lists:

  * input: gray = L / 50 - 1 -> L / 100 repeated to 3 channels,
    ImageNet-normalised (the input vgg16_bn was trained on);
  * encoder: len(encoder_widths) blocks of conv 3x3 + BatchNorm + ReLU
    twice, the second conv with stride 2; the skip is each block's first
    (pre-stride) activation; middle: two 3x3 convs of middle_width (+ BN +
    ReLU);
  * decoder: per block (deepest first) 2x up-sampling (nearest, or
    bilinear with half-pixel centres = jax.image.resize 'linear'), concat
    the skip of the same depth, decoder_convs x (conv 3x3 + BN + ReLU) of
    that block's encoder width;
  * heads (the config's model.variant: regsoft, clasregsoft,
    segclasregsoft): H_reg 1x1 conv to 2 + tanh, H_soft 1x1 conv to 313
    logits, H_seg 1x1 conv to the segmentation classes, H_clas global
    average pool of the middle block's output, dense clas_hidden + ReLU,
    dense num_scenes;
  * loss (eq. 16): sum of loss.weights[term] * term over the variant's
    terms: eq. 17 soft (-mean_p w(q*_p) sum_k t_pk log softmax(z_p)_{q_pk},
    rebalancing weights w of Zhang eq. 3-4 with loss.rebalance_lambda /
    rebalance_sigma from the prior in loss.prior_file, a uniform prior
    when no file is named), eq. 18 reg (mean_p of the squared ab error
    summed over a, b), eq. 19 seg (softmax soft-dice, per image or over
    the batch, smoothing loss.dice_smooth, data.ignore_label and
    out-of-range labels out of both sums, mean over classes), eq. 20 clas
    (softmax CE against the renormalised scene soft label, images without
    one left out);
  * optimizer: optax.adam = torch.optim.Adam (b1, b2, eps from
    optimizer.kwargs, defaults 0.9 / 0.999 / 1e-8; clip_grad_norm if
    set). The paper's schedules (reduce-on-plateau, the cyclic one that
    starts at its top) run constant at optimizer.learning_rate, their
    initial rate: the benchmark runs a few steps.

Differences from JAX that do not change the loss or the update:
BatchNorm's running variance is updated with the unbiased batch variance
(PyTorch) rather than the biased one (Flax). Module names are the Flax
names (`fill` copies the JAX variables in: HWIO -> OIHW, Dense [in, out]
-> Linear [out, in]).

  python benchmarks/torch_scenecontext.py --config_json='{...}' \
      --batch_size=16 --steps=5 [--device=cuda] [--dtype=bfloat16]

Prints one JSON line: {"params": {"model": ...}, "images_per_s": ...}.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import peer_common
import torch
from torch import nn
import torch.nn.functional as F

NUM_BINS = 313
VARIANTS = {
    'regsoft': ('reg', 'soft'),
    'clasregsoft': ('clas', 'reg', 'soft'),
    'segclasregsoft': ('clas', 'reg', 'soft', 'seg'),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BINS_CSV = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'colorjax',
    'color', 'ab_bins_313.csv')


class SceneContext(nn.Module):
  """gray [N, 1, H, W] (H, W divisible by 2^blocks) -> {'ab' [N, 2, H, W]
  tanh, 'ab_logits' [N, 313, H, W], 'segmentation' [N, C, H, W], 'scene'
  [N, scenes]}, the variant's heads, in float32."""

  def __init__(self, model, num_classes, num_scenes):
    super().__init__()
    variant = model.get('variant', 'segclasregsoft')
    if variant not in VARIANTS:
      raise ValueError(f'model.variant {variant!r}, not in {sorted(VARIANTS)}')
    self.heads = VARIANTS[variant]
    self.widths = list(model['encoder_widths'])
    self.decoder_convs = model['decoder_convs']
    self.upsample = model.get('upsample', 'nearest')
    if self.upsample not in ('nearest', 'linear', 'bilinear'):
      raise ValueError(f'model.upsample {self.upsample!r}: the peer knows '
                       "'nearest' and 'linear' / 'bilinear'")
    self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                         persistent=False)
    self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                         persistent=False)

    def conv_bn(name, bn_name, cin, cout, stride=1):
      self.add_module(name, nn.Conv2d(cin, cout, 3, stride, 1))
      self.add_module(bn_name, nn.BatchNorm2d(cout))  # eps 1e-5, Flax 0.9

    cin = 3
    for k, width in enumerate(self.widths, start=1):
      conv_bn(f'enc{k}_conv0', f'enc{k}_bn0', cin, width)
      conv_bn(f'enc{k}_conv1', f'enc{k}_bn1', width, width, stride=2)
      cin = width
    middle = model['middle_width']
    for j in range(2):
      conv_bn(f'mid_conv{j}', f'mid_bn{j}', cin if j == 0 else middle, middle)
    cin = middle
    for k in range(len(self.widths), 0, -1):
      width = self.widths[k - 1]
      c = cin + width                           # up-sampled + skip
      for j in range(self.decoder_convs):
        conv_bn(f'dec{k}_conv{j}', f'dec{k}_bn{j}', c, width)
        c = width
      cin = width
    if 'reg' in self.heads:
      self.head_reg = nn.Conv2d(cin, 2, 1)
    if 'soft' in self.heads:
      self.head_soft = nn.Conv2d(cin, NUM_BINS, 1)
    if 'seg' in self.heads:
      self.head_seg = nn.Conv2d(cin, num_classes, 1)
    if 'clas' in self.heads:
      self.clas_dense0 = nn.Linear(middle, model['clas_hidden'])
      self.clas_dense1 = nn.Linear(model['clas_hidden'], num_scenes)

  def _block(self, x, name, bn_name):
    return F.relu(getattr(self, bn_name)(getattr(self, name)(x)))

  def forward(self, gray):
    lightness = (gray.float() + 1) / 2                     # L / 100
    x = (lightness.expand(-1, 3, -1, -1) - self.mean) / self.std
    skips = []
    for k in range(1, len(self.widths) + 1):
      x = self._block(x, f'enc{k}_conv0', f'enc{k}_bn0')
      skips.append(x)
      x = self._block(x, f'enc{k}_conv1', f'enc{k}_bn1')
    for j in range(2):
      x = self._block(x, f'mid_conv{j}', f'mid_bn{j}')
    encoded = x
    for k in range(len(self.widths), 0, -1):
      if self.upsample == 'nearest':
        x = F.interpolate(x, scale_factor=2, mode='nearest')
      else:
        x = F.interpolate(x, scale_factor=2, mode='bilinear',
                          align_corners=False)
      x = torch.cat([x, skips[k - 1]], 1)
      for j in range(self.decoder_convs):
        x = self._block(x, f'dec{k}_conv{j}', f'dec{k}_bn{j}')
    out = {}
    if 'reg' in self.heads:
      out['ab'] = torch.tanh(self.head_reg(x).float())
    if 'soft' in self.heads:
      out['ab_logits'] = self.head_soft(x).float()
    if 'seg' in self.heads:
      out['segmentation'] = self.head_seg(x).float()
    if 'clas' in self.heads:
      hidden = F.relu(self.clas_dense0(encoded.mean((2, 3))))
      out['scene'] = self.clas_dense1(hidden).float()
    return out


def build(config, device=None):
  """The network from a config dict (json.loads of config.to_json())."""
  data = config['data']
  with torch.device(device or 'cpu'):
    return SceneContext(config['model'], data['num_classes'],
                        data['num_scenes'])


# --- JAX -> PyTorch weights ---------------------------------------------------

def fill(module, params, batch_stats=None):
  """Copies colorjax's SceneContext variables into the peer (the same
  module names): conv kernels HWIO [kh, kw, C_in, C_out] -> OIHW, Dense
  kernels [in, out] -> Linear [out, in], BatchNorm scale / bias / mean /
  var -> weight / bias / running_mean / running_var. Every JAX tensor must
  find its place; returns the torch state-dict keys written."""
  batch_stats = batch_stats or {}
  state = module.state_dict()
  written = {}

  def put(key, value):
    value = np.array(value, np.float32, order='C')
    assert key in state and key not in written, key
    assert value.shape == tuple(state[key].shape), (key, value.shape,
                                                    tuple(state[key].shape))
    written[key] = torch.from_numpy(value)

  for name, leaf in params.items():
    if 'scale' in leaf:                                  # BatchNorm
      assert set(leaf) == {'scale', 'bias'}, (name, set(leaf))
      put(f'{name}.weight', leaf['scale'])
      put(f'{name}.bias', leaf['bias'])
      put(f'{name}.running_mean', batch_stats[name]['mean'])
      put(f'{name}.running_var', batch_stats[name]['var'])
      continue
    assert set(leaf) == {'kernel', 'bias'}, (name, set(leaf))
    kernel = np.asarray(leaf['kernel'])
    if kernel.ndim == 4:                                 # Conv HWIO -> OIHW
      put(f'{name}.weight', np.transpose(kernel, (3, 2, 0, 1)))
    else:                                                # Dense
      put(f'{name}.weight', kernel.T)
    put(f'{name}.bias', leaf['bias'])
  state.update(written)
  module.load_state_dict(state, strict=True)
  return set(written)


# --- Loss ---------------------------------------------------------------------

def ab_bin_centres():
  """[313, 2] (a, b) in the standard order (colorjax's package data file,
  read as text: Zhang et al.'s pts_in_hull)."""
  with open(BINS_CSV) as f:
    rows = [line.split(',') for line in f.read().splitlines()
            if line and not line.startswith('#') and not line.startswith('a,')]
  centres = np.array(rows, np.float64)
  assert centres.shape == (NUM_BINS, 2), centres.shape
  return centres


def rebalance_weights(prior, lam=0.5, sigma=5.0):
  """Eq. 11-12 (Zhang et al. eq. 3-4): w = ((1 - lam) P~ + lam / Q)^-1
  normalised to E_P~[w] = 1, P~ the prior smoothed by a Gaussian (std
  sigma, ab units) between the in-gamut bin centres."""
  prior = np.asarray(prior, np.float64)
  prior = prior / prior.sum()
  if sigma > 0:
    centres = ab_bin_centres()
    d2 = np.sum((centres[:, None] - centres[None]) ** 2, -1)
    prior = np.exp(-d2 / (2 * sigma * sigma)) @ prior
    prior = prior / prior.sum()
  weights = 1.0 / ((1 - lam) * prior + lam / prior.shape[0])
  return (weights / np.sum(prior * weights)).astype(np.float32)


def rebalance_for(config):
  """The [313] weights of `loss.prior_file`, or None without rebalancing.
  No file named (no dataset here): a uniform prior, as the benchmark's."""
  loss = config['loss']
  if not loss.get('rebalance'):
    return None
  path = loss.get('prior_file')
  if path:
    path = os.path.expanduser(path)
    path = path if path.endswith('.npy') else path + '.npy'
    prior = np.load(path)
  else:
    prior = np.full(NUM_BINS, 1.0 / NUM_BINS)
  return torch.from_numpy(rebalance_weights(
      prior, loss.get('rebalance_lambda', 0.5),
      loss.get('rebalance_sigma', 5.0)))


def soft_loss(logits, bins, bin_weights, rebalance):
  """Eq. 17 on logits [N, 313, H, W], bins (int64) / bin_weights [N, k, H,
  W], nearest bin first."""
  log_probs = F.log_softmax(logits.float(), 1)
  nll = -(bin_weights.float() * log_probs.gather(1, bins)).sum(1)
  if rebalance is not None:
    nll = nll * rebalance[bins[:, 0]]
  return nll.mean()


def regression_loss(ab_pred, ab_true):
  """Eq. 18: mean over pixels of the squared error summed over a, b."""
  return ((ab_pred.float() - ab_true.float()) ** 2).sum(1).mean()


def soft_dice_loss(logits, labels, ignore_label=None, smooth=1.0,
                   per_image=True):
  """Eq. 19 on logits [N, C, H, W], labels [N, 1, H, W] (any int dtype):
  1 - mean over classes (then images) of (2 sum_p Y P + s) / (sum_p Y^2 +
  sum_p P^2 + s); labels out of [0, C) and `ignore_label` left out."""
  logits = logits.float()
  classes = logits.shape[1]
  labels = labels.long()
  valid = (labels >= 0) & (labels < classes)
  if ignore_label is not None:
    valid &= labels != ignore_label
  mask = valid.float()                                  # [N, 1, H, W]
  probs = F.softmax(logits, 1) * mask
  onehot = F.one_hot(torch.where(valid, labels, 0)[:, 0], classes)
  onehot = onehot.permute(0, 3, 1, 2).float() * mask
  dims = (2, 3) if per_image else (0, 2, 3)
  intersection = (onehot * probs).sum(dims)
  denominator = (onehot * onehot).sum(dims) + (probs * probs).sum(dims)
  return 1 - ((2 * intersection + smooth) / (denominator + smooth)).mean()


def scene_loss(logits, targets):
  """Eq. 20: -sum_c t_c log softmax(z)_c, t the soft label normalised to
  sum 1; images whose label is all zero are left out."""
  logits, targets = logits.float(), targets.float()
  count = targets.sum(-1)
  has = (count > 0).float()
  target = targets / count.clamp(min=1e-12)[:, None]
  nll = -(target * F.log_softmax(logits, -1)).sum(-1)
  return (nll * has).sum() / has.sum().clamp(min=1.0)


def losses(outputs, batch, rebalance, config):
  """(eq. 16 total, {term: value}) as the JAX method's losses/total_loss."""
  loss = config['loss']
  terms = {'soft': soft_loss(outputs['ab_logits'], batch['ab_bins'],
                             batch['ab_weights'], rebalance),
           'reg': regression_loss(outputs['ab'], batch['ab'])}
  if 'segmentation' in outputs:
    terms['seg'] = soft_dice_loss(
        outputs['segmentation'], batch['segmentation'],
        config['data'].get('ignore_label'), loss.get('dice_smooth', 1.0),
        loss.get('dice_per_image', True))
  if 'scene' in outputs:
    terms['clas'] = scene_loss(outputs['scene'], batch['scene'])
  weights = loss['weights']
  total = sum(weights[name] * value for name, value in terms.items())
  return total, terms


# --- Optimizer and step ---------------------------------------------------------

def make_optimizer(model, opt):
  """colorjax.optimizers.make's chain for optax 'adam' as torch.optim.Adam;
  returns (optimizer, clip norm or None). Any schedule runs at its
  initial rate (for the paper's plateau and start-high cyclic schedules
  that is optimizer.learning_rate)."""
  name, kwargs = opt['name'], dict(opt.get('kwargs') or {})
  if name != 'adam':
    raise ValueError(f'the peer knows adam, not {name!r}')
  if opt.get('frozen') or opt.get('weight_decay') or opt.get('networks'):
    raise ValueError('the peer does not freeze, decay or override networks')
  if (opt.get('schedule') or {}).get('type', 'constant') != 'constant':
    print('torch_scenecontext: schedule run constant at the initial rate',
          file=sys.stderr)
  betas = (kwargs.pop('b1', 0.9), kwargs.pop('b2', 0.999))
  eps = kwargs.pop('eps', 1e-8)
  if kwargs.pop('eps_root', 0.0) or kwargs:
    raise ValueError(f'unsupported optimizer kwargs {sorted(kwargs)}')
  optimizer = torch.optim.Adam(model.parameters(), lr=opt['learning_rate'],
                               betas=betas, eps=eps)
  return optimizer, opt.get('clip_grad_norm') or None


def train_step(model, optimizer, batch, rebalance, config, autocast=None,
               clip=None):
  """Forward in train mode (under `autocast` if given), losses in float32,
  backward, one Adam step. Returns (loss, terms) detached; p.grad keeps
  the step's gradients."""
  model.train()
  if autocast is None:
    outputs = model(batch['gray'])
  else:
    with autocast:
      outputs = model(batch['gray'])
  loss, terms = losses(outputs, batch, rebalance, config)
  optimizer.zero_grad(set_to_none=True)
  loss.backward()
  if clip:
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
  optimizer.step()
  return loss.detach(), {k: v.detach() for k, v in terms.items()}


def random_batch(config, batch_size, generator=None):
  """The training batch (method.batch_spec) the step reads, NCHW: gray in
  [-1, 1], ab in [-0.6, 0.6], k ab bins in range with normalised weights,
  segmentation labels in [0, num_classes) (uint8), top-5 scene soft
  labels (variants with those heads)."""
  data = config['data']
  size, n = data['image_size'], batch_size
  k = data.get('soft_encode_k', 1)
  heads = VARIANTS[config['model'].get('variant', 'segclasregsoft')]
  batch = {'gray': torch.rand(n, 1, size, size, generator=generator) * 2 - 1,
           'ab': torch.rand(n, 2, size, size, generator=generator) * 1.2
                 - 0.6,
           'ab_bins': torch.randint(0, NUM_BINS, (n, k, size, size),
                                    generator=generator),
           'ab_weights': torch.softmax(
               torch.randn(n, k, size, size, generator=generator), 1)}
  if 'seg' in heads:
    batch['segmentation'] = torch.randint(
        0, data['num_classes'], (n, 1, size, size), generator=generator
    ).to(torch.uint8)
  if 'clas' in heads:
    scores = torch.rand(n, data['num_scenes'], generator=generator)
    top = scores.topk(min(5, data['num_scenes']), -1).values[:, -1:]
    scene = torch.where(scores >= top, scores, torch.zeros_like(scores))
    batch['scene'] = scene / scene.sum(-1, keepdim=True)
  return batch


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--config_json', required=True)
  parser.add_argument('--batch_size', type=int, required=True)
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--threads', type=int, default=0)
  parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
  parser.add_argument('--dtype', default='float32',
                      choices=('float32', 'bfloat16'))
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  device = torch.device(args.device)
  if args.device == 'cuda':
    torch.backends.cudnn.benchmark = True
  config = json.loads(args.config_json)
  torch.manual_seed(config.get('seed', 0))
  model = build(config, device)
  optimizer, clip = make_optimizer(model, config['optimizer'])
  rebalance = rebalance_for(config)
  rebalance = None if rebalance is None else rebalance.to(device)
  batch = {k: v.to(device) for k, v in
           random_batch(config, args.batch_size).items()}
  # bfloat16: the network under autocast (params stay float32, as the JAX
  # side's model.dtype); the heads' outputs and the losses in float32.
  autocast = torch.autocast(args.device, dtype=torch.bfloat16,
                            enabled=args.dtype == 'bfloat16')

  def step():
    loss, _ = train_step(model, optimizer, batch, rebalance, config,
                         autocast, clip)
    return loss.item()

  sync = torch.cuda.synchronize if args.device == 'cuda' else lambda: None
  for _ in range(args.warmup):
    step()
  sync()
  loss, step_s, cores_used = peer_common.timed_steps(
      step, args.steps, sync)
  assert math.isfinite(loss), loss
  print(json.dumps({
      'params': {'model': sum(p.numel() for p in model.parameters())},
      'images_per_s': args.batch_size / step_s,
      'step_s': step_s,
      'peak_rss_mb': peer_common.peak_rss_mb(),
      'cores_used': cores_used,
      'peak_device_mb': (torch.cuda.max_memory_allocated() / 2 ** 20
                         if args.device == 'cuda' else None),
      'loss': loss,
      'torch': torch.__version__, 'threads': torch.get_num_threads(),
      'device': args.device, 'dtype': args.dtype}))


if __name__ == '__main__':
  main()
