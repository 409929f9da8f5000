"""PyTorch peer of the InstanceAware train step (paper 003), for
`colorjax.benchmark train`.

Benchmark-only and a test oracle (torch is an optional dependency; nothing
in colorjax imports this). Written from the paper's layer list and Zhang et
al.'s ECCVGenerator (richzhang/colorization `colorizers/eccv16.py`):

  * trunk: Sequentials model1..model8 named as Zhang's state dict (conv
    3x3 + ReLU, ..., BatchNorm closing model1-7; the last conv of model1-3
    has stride 2; model5-6 dilation 2; model8 = ConvTranspose 4x4/2 +
    ReLU, 3x3 convs + ReLU, the 1x1 conv to 313 ab-bin logits), input
    (L - 50) / 100 = gray / 2 for gray = L / 50 - 1;
  * classification branch at conv5: 2x2 max pool, fc1..fc3 + ReLU
    (fc1 on the flattened pooled map, or its spatial mean), classifier;
    fc3 tiled over conv5's grid, concatenated, 1x1 fusion conv back to
    conv5's width (linear and initialised to pass conv5 through for
    model.fusion='identity', + ReLU for 'relu');
  * loss: eq. 3, -mean_p w(q*_p) sum_k t_pk log softmax(z_p)_{q_pk}, with
    the rebalancing weights w of Zhang eq. 3-4 (lambda, sigma from the
    config) of the prior in `loss.prior_file` (a .npy of 313
    probabilities; the benchmark passes a uniform one), + alpha * eq. 1-2
    (softmax CE on the normalised tags, untagged images left out, or the
    per-class sigmoid CE);
  * optimizer: optax.adamw / optax.adam as the config names them =
    torch.optim.AdamW / Adam (same b1, b2, eps, decoupled weight decay on
    every parameter, lr-scaled); learning-rate schedules other than
    'constant' run constant at the initial rate (the benchmark runs a few
    steps).

Differences from JAX that do not change the loss or the update:
BatchNorm's running variance is updated with the unbiased batch variance
(PyTorch) rather than the biased one (Flax), and the fc1 weight is laid out
for an NCHW flatten (`fill` permutes it).

  python benchmarks/torch_instanceaware.py --config_json='{...}' \
      --batch_size=40 --steps=5 [--device=cuda] [--dtype=bfloat16]

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
STRIDED = (0, 1, 2)      # blocks (0-based) whose last conv has stride 2
DILATED = (4, 5)         # blocks with dilation 2
BINS_CSV = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'colorjax',
    'color', 'ab_bins_313.csv')


def num_classes(config):
  """Image tags: the dataset's classes from data.first_class on (0: no
  branch, Zhang's network)."""
  data, model = config['data'], config['model']
  if not model.get('use_classifier', True):
    return 0
  return data['num_classes'] - data.get('first_class', 0)


class InstanceAware(nn.Module):
  """gray [N, 1, H, W] (L/50 - 1) -> {'logits': [N, 313, H/4, W/4],
  'classification': [N, C] when num_classes > 0}."""

  def __init__(self, model, image_size, classes):
    super().__init__()
    widths, depths = list(model['widths']), list(model['depths'])
    self.reduce = model.get('branch_reduce', 'flatten')
    self.fusion_kind = model.get('fusion', 'identity')
    self.classes = classes
    in_ch = 1
    for b in range(8):
      width, depth, layers = widths[b], depths[b], []
      if b == 7:                   # model8: 4x4 stride-2 transposed conv
        layers += [nn.ConvTranspose2d(in_ch, width, 4, 2, 1), nn.ReLU()]
        in_ch, depth = width, depth - 1
      dilation = 2 if b in DILATED else 1
      for i in range(depth):
        stride = 2 if b in STRIDED and i == depth - 1 else 1
        layers += [nn.Conv2d(in_ch, width, 3, stride, dilation, dilation),
                   nn.ReLU()]
        in_ch = width
      layers.append(nn.BatchNorm2d(width) if b < 7
                    else nn.Conv2d(width, NUM_BINS, 1))
      setattr(self, f'model{b + 1}', nn.Sequential(*layers))
    if classes:
      c5 = widths[4]
      pooled = (image_size // 8) // 2         # conv5 is at 1/8, then 2x2 pool
      if self.reduce == 'flatten':
        fc_in = c5 * pooled * pooled
      elif self.reduce == 'mean':
        fc_in = c5
      elif self.reduce == 'vgg16':             # torchvision VGG's avgpool
        fc_in = c5 * 7 * 7
      else:
        raise ValueError(f'branch_reduce {self.reduce!r}')
      fc = list(model['fc_features'])
      for i, features in enumerate(fc):
        setattr(self, f'fc{i + 1}', nn.Linear(fc_in, features))
        fc_in = features
      self.num_fc = len(fc)
      self.classifier = nn.Linear(fc_in, classes)
      self.fusion = nn.Conv2d(c5 + fc_in, c5, 1)
      if self.fusion_kind == 'identity':
        with torch.no_grad():
          self.fusion.weight.copy_(torch.eye(c5, c5 + fc_in)[:, :, None, None])
          self.fusion.bias.zero_()
      elif self.fusion_kind != 'relu':
        raise ValueError(f'fusion {self.fusion_kind!r}')

  def forward(self, gray):
    x = gray * 0.5                     # (L - 50) / 100
    for b in range(1, 6):
      x = getattr(self, f'model{b}')(x)
    out = {}
    if self.classes:
      conv5 = x
      h = F.max_pool2d(conv5, 2, 2)
      if self.reduce == 'flatten':
        h = h.flatten(1)
      elif self.reduce == 'vgg16':
        h = F.adaptive_avg_pool2d(h, 7).flatten(1)
      else:
        h = h.mean((2, 3))
      for i in range(1, self.num_fc + 1):
        h = F.relu(getattr(self, f'fc{i}')(h))
      out['classification'] = self.classifier(h).float()
      tiled = h[:, :, None, None].expand(-1, -1, *conv5.shape[-2:])
      x = self.fusion(torch.cat([conv5, tiled.to(conv5.dtype)], 1))
      if self.fusion_kind == 'relu':
        x = F.relu(x)
    for b in range(6, 9):
      x = getattr(self, f'model{b}')(x)
    out['logits'] = x.float()
    return out


def build(config, device=None):
  """The network from a config dict (json.loads of config.to_json())."""
  with torch.device(device or 'cpu'):
    return InstanceAware(config['model'], config['data']['image_size'],
                         num_classes(config))


# --- JAX -> PyTorch weights ---------------------------------------------------

def _conv(kernel):
  """Flax HWIO [kh, kw, C_in, C_out] -> Conv2d OIHW. colorjax's UpConv
  kernel [kh, kw, C_out, C_in] (the HWIO kernel of the strided conv it is
  the adjoint of) -> ConvTranspose2d [C_in, C_out, kh, kw], the same
  transpose and no spatial flip (both define the transposed conv as that
  adjoint)."""
  return np.transpose(kernel, (3, 2, 0, 1))


def _fc1_flatten(kernel, channels, size):
  """fc1 [H*W*C, F] for Flax's NHWC flatten -> Linear [F, C*H*W] for
  torch's NCHW flatten."""
  features = kernel.shape[-1]
  kernel = kernel.reshape(size, size, channels, features)
  return np.transpose(kernel, (3, 2, 0, 1)).reshape(features, -1)


def fill(module, params, batch_stats=None):
  """Copies colorjax's InstanceAware variables into the peer: Flax
  `model{b}_{i}` is torch `model{b}.{i}`, the branch keeps its names.
  Every JAX tensor must find its place; returns the torch state-dict keys
  written (a test checks they are all of them)."""
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
    if name.startswith('model'):
      block, index = name.split('_')
      prefix = f'{block}.{index}'
    else:
      prefix = name
    if 'scale' in leaf:                                # BatchNorm
      put(f'{prefix}.weight', leaf['scale'])
      put(f'{prefix}.bias', leaf['bias'])
      put(f'{prefix}.running_mean', batch_stats[name]['mean'])
      put(f'{prefix}.running_var', batch_stats[name]['var'])
      continue
    kernel = np.asarray(leaf['kernel'])
    assert set(leaf) == {'kernel', 'bias'}, (name, set(leaf))
    if kernel.ndim == 4:
      put(f'{prefix}.weight', _conv(kernel))
    elif name == 'fc1' and module.reduce == 'flatten':
      channels = module.model5[-1].num_features
      size = int(round(math.sqrt(kernel.shape[0] / channels)))
      put(f'{prefix}.weight', _fc1_flatten(kernel, channels, size))
    else:
      put(f'{prefix}.weight', kernel.T)                # Dense [in, out]
    put(f'{prefix}.bias', leaf['bias'])
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
  """Zhang et al. eq. 3-4: w = ((1 - lam) P~ + lam / Q)^-1 normalised to
  E_P~[w] = 1, P~ the prior smoothed by a Gaussian (std sigma, ab units)
  between the in-gamut bin centres."""
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
  No file (no dataset here): a uniform prior, as the benchmark's."""
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


def colour_loss(logits, bins, bin_weights, rebalance):
  """Eq. 3 on logits [N, 313, h, w], bins (int64) / bin_weights [N, k, h,
  w], nearest bin first; float32."""
  log_probs = F.log_softmax(logits.float(), 1)
  nll = -(bin_weights.float() * log_probs.gather(1, bins)).sum(1)
  if rebalance is not None:
    nll = nll * rebalance[bins[:, 0]]
  return nll.mean()


def classification_loss(logits, tags, kind='softmax'):
  """Eq. 1-2: (loss, tagged images)."""
  logits, tags = logits.float(), tags.float()
  if kind == 'softmax':
    count = tags.sum(-1)
    has = (count > 0).float()
    target = tags / count.clamp(min=1e-12)[:, None]
    nll = -(target * F.log_softmax(logits, -1)).sum(-1)
    return (nll * has).sum() / has.sum().clamp(min=1.0), has.sum()
  if kind == 'sigmoid':
    nll = F.binary_cross_entropy_with_logits(logits, tags,
                                             reduction='none').sum(-1)
    return nll.mean(), torch.tensor(float(tags.shape[0]))
  raise ValueError(f'loss.classification {kind!r}')


def losses(outputs, batch, rebalance, loss_config):
  """(total, {'color', 'classification'}) as the JAX method's losses."""
  terms = {'color': colour_loss(outputs['logits'], batch['ab_bins'],
                                batch['ab_weights'], rebalance)}
  total = terms['color']
  if 'classification' in outputs:
    terms['classification'], _ = classification_loss(
        outputs['classification'], batch['labels'],
        loss_config.get('classification', 'softmax'))
    total = total + loss_config.get('classification_weight',
                                    1.0) * terms['classification']
  return total, terms


# --- Optimizer and step ---------------------------------------------------------

def make_optimizer(model, opt):
  """colorjax.optimizers.make's chain for optax 'adam' / 'adamw' (+ the
  config's decoupled `weight_decay` on kernels, `clip_grad_norm`) as
  torch.optim.AdamW param groups; returns (optimizer, clip norm or None).
  A non-constant schedule runs at its initial rate."""
  name, kwargs = opt['name'], dict(opt.get('kwargs') or {})
  if name not in ('adam', 'adamw'):
    raise ValueError(f'the peer knows adam and adamw, not {name!r}')
  if opt.get('frozen'):
    raise ValueError('the peer does not freeze parameters')
  if (opt.get('schedule') or {}).get('type', 'constant') != 'constant':
    print('torch_instanceaware: schedule run constant at the initial rate',
          file=sys.stderr)
  betas = (kwargs.pop('b1', 0.9), kwargs.pop('b2', 0.999))
  eps = kwargs.pop('eps', 1e-8)
  # optax.adamw decays every parameter (its default mask is None) by
  # lr * weight_decay (default 1e-4); optax.adam does not decay.
  decay = kwargs.pop('weight_decay', 1e-4) if name == 'adamw' else 0.0
  if kwargs.pop('eps_root', 0.0) or kwargs.pop('mask', None) or kwargs:
    raise ValueError(f'unsupported optimizer kwargs {sorted(kwargs)}')
  extra = opt.get('weight_decay') or 0.0   # colorjax's, on kernels only
  if extra and opt.get('weight_decay_mask') not in (None, r'.*kernel$'):
    raise ValueError('the peer decays kernels only')
  kernel = lambda m, n: n == 'weight' and not isinstance(m, nn.BatchNorm2d)
  kernels, others = [], []
  for module in model.modules():
    for pname, p in module.named_parameters(recurse=False):
      (kernels if kernel(module, pname) else others).append(p)
  groups = [{'params': kernels, 'weight_decay': decay + extra},
            {'params': others, 'weight_decay': decay}]
  optimizer = torch.optim.AdamW(groups, lr=opt['learning_rate'], betas=betas,
                                eps=eps)
  return optimizer, opt.get('clip_grad_norm') or None


def train_step(model, optimizer, batch, rebalance, loss_config,
               autocast=None, clip=None):
  """Forward (under `autocast` if given), loss in float32, backward, one
  optimizer step. Returns (loss tensor, terms); p.grad keeps the step's
  gradients."""
  model.train()
  if autocast is None:
    outputs = model(batch['gray'])
  else:
    with autocast:
      outputs = model(batch['gray'])
  loss, terms = losses(outputs, batch, rebalance, loss_config)
  optimizer.zero_grad(set_to_none=True)
  loss.backward()
  if clip:
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
  optimizer.step()
  return loss.detach(), {k: v.detach() for k, v in terms.items()}


def random_batch(config, batch_size, generator=None):
  """The training batch (method.batch_spec) the step reads, NCHW: gray in
  [-1, 1], k ab bins in range at 1/4 size with normalised weights (ones
  for k = 1), multi-hot float tags."""
  size = config['data']['image_size']
  k = config['data'].get('soft_encode_k', 1)
  n, s = batch_size, size // 4
  batch = {'gray': torch.rand(n, 1, size, size, generator=generator) * 2 - 1,
           'ab_bins': torch.randint(0, NUM_BINS, (n, k, s, s),
                                    generator=generator),
           'ab_weights': torch.softmax(
               torch.randn(n, k, s, s, generator=generator), 1)}
  classes = num_classes(config)
  if classes:
    batch['labels'] = (torch.rand(n, classes, generator=generator)
                       < 0.3).float()
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
  # side's model.dtype); the losses in float32.
  autocast = torch.autocast(args.device, dtype=torch.bfloat16,
                            enabled=args.dtype == 'bfloat16')

  def step():
    loss, _ = train_step(model, optimizer, batch, rebalance, config['loss'],
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
