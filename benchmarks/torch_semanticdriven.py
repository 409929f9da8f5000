"""Plain-PyTorch peers of paper 002's networks (GridNet, the two-stream
U-Net) and of colorjax's SemanticDriven train step, for
`python -m colorjax.benchmark train|infer` and as a test oracle.

Written from the paper's layer list independently of
colorjax/models/semanticdriven.py, with submodules named as the Flax modules
so `fill` copies weights by name. tests/test_semanticdriven.py checks the
networks' outputs and the gradient of eq. 1; tests/test_torch_peer_
semanticdriven.py checks parameter counts (tiny, demo, paper) and the whole
train step of every stage against `SemanticDriven.train_step`.

The train step follows `config.stage` (colorjax/methods/semanticdriven.py):
  'segmentation'  GridNet in training mode, per-pixel cross-entropy, Adam;
  'colorization'  the colorizer, Huber loss (eq. 1) on ab / ab_scale, Adam;
                  GridNet fixed: run (eval mode, no_grad) only to make the
                  training maps when `train_maps` is 'predicted' or 'mix';
  'joint'         both: loss = L_seg + L_huber, one backward, one Adam per
                  network (the CPU twins 'demo' / 'tiny').
Maps (`train_maps`): 'ground_truth' (the batch's labels, out-of-range and
ignore label -> class 0), 'predicted' (GridNet's argmax, eval mode, under
no_grad, computed before GridNet's own training forward as in JAX) or 'mix'
(per image: predicted with probability `train_maps_mix`; torch's RNG draws
the choice where JAX's draws it from the step's key).
The optimizers are torch.optim.Adam with the config's learning rate, b1, b2
(eps 1e-8 as optax); the configs' schedule is 'constant', anything else
runs constant at the initial rate here. BatchNorm's running variance is
updated with the biased batch variance, as Flax does (torch's own update
uses the unbiased one; `BatchNorm2d` below records what is needed and
`FlaxRunningVar` corrects it after the backward).

  python benchmarks/torch_semanticdriven.py --config_json='{...}' \
      --batch_size=16 --steps=5 [--warmup=2] [--threads=0] \
      [--device=cpu|cuda] [--dtype=float32|bfloat16]
prints one JSON line (params of both networks, as `method.describe`;
images_per_s, step_s, peak_rss_mb, peak_device_mb, loss, ...).
"""

import argparse
import collections.abc
import contextlib
import json
import math

import numpy as np
import peer_common
import torch
from torch import nn
import torch.nn.functional as F

STAGES = {'segmentation': ('gridnet',), 'colorization': ('colorizer',),
          'joint': ('gridnet', 'colorizer')}
TRAIN_MAPS = ('ground_truth', 'predicted', 'mix')


def conv_weight(kernel):
  """Flax HWIO kernel (or UpConv's [kh, kw, C_out, C_in]) -> torch's
  Conv2d OIHW (or ConvTranspose2d [C_in, C_out, kh, kw]): both transpose
  (3, 2, 0, 1)."""
  return torch.from_numpy(np.asarray(kernel).transpose(3, 2, 0, 1).copy())


def fill(module, params, stats=None):
  """Copies Flax params (and BatchNorm statistics) into a torch module
  whose submodule names are the Flax names (a bare array, e.g. the
  colorizer's 'map_embedding', goes to the parameter of that name)."""
  with torch.no_grad():
    for name, leaf in params.items():
      target = getattr(module, name)
      if not isinstance(leaf, collections.abc.Mapping):
        target.copy_(torch.from_numpy(np.array(leaf)))
      elif 'kernel' in leaf:
        target.weight.copy_(conv_weight(leaf['kernel']))
        target.bias.copy_(torch.from_numpy(np.array(leaf['bias'])))
      elif 'scale' in leaf:
        target.weight.copy_(torch.from_numpy(np.array(leaf['scale'])))
        target.bias.copy_(torch.from_numpy(np.array(leaf['bias'])))
        target.running_mean.copy_(torch.from_numpy(
            np.array(stats[name]['mean'])))
        target.running_var.copy_(torch.from_numpy(
            np.array(stats[name]['var'])))
      else:
        fill(target, leaf, None if stats is None else stats.get(name))


class BatchNorm2d(nn.BatchNorm2d):
  """nn.BatchNorm2d (eps 1e-5, momentum 0.1 == Flax's 0.9) that records
  how many values per channel its last training batch had, for
  `FlaxRunningVar`."""

  count = None

  def forward(self, x):
    if self.training:
      self.count = x.numel() // x.shape[1]
    return super().forward(x)


class FlaxRunningVar:
  """Turns torch's running-variance update, (1 - m) * old + m * unbiased
  batch variance, into Flax's, (1 - m) * old + m * biased batch variance
  (m = 0.1), for every BatchNorm2d of `module` at once (foreach ops):
  `snapshot()` before the training forward, `apply()` after the backward
  (the batch_norm backward may still read the buffers):
  new = kept + (torch_new - kept) * (n - 1) / n, kept = (1 - m) * old,
  n = values per channel in the batch."""

  def __init__(self, module):
    self.norms = [m for m in module.modules() if isinstance(m, BatchNorm2d)]
    self.kept = None

  def snapshot(self):
    self.kept = torch._foreach_mul(  # pylint: disable=protected-access
        [m.running_var for m in self.norms],
        [1.0 - m.momentum for m in self.norms])

  def apply(self):
    if not self.norms:
      return
    with torch.no_grad():
      new = [m.running_var for m in self.norms]
      delta = torch._foreach_sub(new, self.kept)  # pylint: disable=protected-access
      torch._foreach_mul_(delta, [(m.count - 1) / m.count  # pylint: disable=protected-access
                                  for m in self.norms])
      torch._foreach_add_(delta, self.kept)  # pylint: disable=protected-access
      torch._foreach_copy_(new, delta)  # pylint: disable=protected-access
    self.kept = None


class TorchUnit(nn.Module):
  """Fourure et al.'s pre-activation units: BN-ReLU-conv twice."""

  def __init__(self, cin, cout, kind):
    super().__init__()
    self.kind = kind
    self.bn0 = BatchNorm2d(cin)
    if kind == 'up':
      self.conv0 = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
    else:
      self.conv0 = nn.Conv2d(cin, cout, 3, 2 if kind == 'down' else 1, 1)
    self.bn1 = BatchNorm2d(cout)
    self.conv1 = nn.Conv2d(cout, cout, 3, 1, 1)

  def forward(self, x):
    y = self.conv0(F.relu(self.bn0(x)))
    y = self.conv1(F.relu(self.bn1(y)))
    return x + y if self.kind == 'lateral' else y


class TorchGridNet(nn.Module):

  def __init__(self, depths, columns, classes):
    super().__init__()
    self.depths, self.columns = depths, columns
    self.stem = nn.Conv2d(1, depths[0], 3, 1, 1)
    rows, half = len(depths), columns // 2
    for j in range(columns):
      for i in range(rows):
        if j > 0:
          setattr(self, f'lat{i}_{j}', TorchUnit(depths[i], depths[i],
                                                 'lateral'))
        if j < half and i > 0:
          setattr(self, f'down{i}_{j}', TorchUnit(depths[i - 1], depths[i],
                                                  'down'))
        if j >= half and i < rows - 1:
          setattr(self, f'up{i}_{j}', TorchUnit(depths[i + 1], depths[i],
                                                'up'))
    self.head_bn = BatchNorm2d(depths[0])
    self.head = nn.Conv2d(depths[0], classes, 3, 1, 1)

  def forward(self, x):
    rows, half = len(self.depths), self.columns // 2
    grid = {(0, 0): self.stem(x)}
    for j in range(self.columns):
      for i in (range(rows) if j < half else reversed(range(rows))):
        if (i, j) == (0, 0):
          continue
        total = 0
        if j > 0:
          total = total + getattr(self, f'lat{i}_{j}')(grid[i, j - 1])
        if j < half and i > 0:
          total = total + getattr(self, f'down{i}_{j}')(grid[i - 1, j])
        if j >= half and i < rows - 1:
          total = total + getattr(self, f'up{i}_{j}')(grid[i + 1, j])
        grid[i, j] = total
    return self.head(F.relu(self.head_bn(grid[0, self.columns - 1])))


class TorchTwoStreamUNet(nn.Module):
  """Fig. 3-4 in PyTorch: a shared encoder run on the gray and the map
  stream (one batch of 2N, as the JAX module), InstanceNorm2d (no affine)
  on the gray stream at the concatenations `instance_norm` names ('all',
  'bottleneck', 'none'). map_input 'index' (2c / (C - 1) - 1) or
  'embedding' (a learned scalar per class, `map_embedding` [C, 1])."""

  def __init__(self, widths, classes, map_input='index', instance_norm='all'):
    super().__init__()
    self.widths, self.classes = widths, classes
    self.map_input, self.instance_norm = map_input, instance_norm
    if map_input == 'embedding':
      self.map_embedding = nn.Parameter(
          2.0 * torch.arange(classes, dtype=torch.float32)[:, None]
          / max(classes - 1, 1) - 1.0)
    elif map_input != 'index':
      raise ValueError(f'map_input {map_input!r}')
    cin = 1
    for k, width in enumerate(widths, start=1):
      setattr(self, f'enc{k}_conv0', nn.Conv2d(cin, width, 3,
                                               1 if k in (1, 5) else 2, 1))
      setattr(self, f'enc{k}_conv1', nn.Conv2d(width, width, 3, 1, 1))
      cin = width
    previous = 0
    for k, width in enumerate([2 * w for w in reversed(widths)], start=1):
      if k in (1, 5):
        conv0 = nn.Conv2d(previous + width, width, 3, 1, 1)
      else:
        conv0 = nn.ConvTranspose2d(previous + width, width, 3, 2, 1,
                                   output_padding=1)
      setattr(self, f'dec{k}_conv0', conv0)
      setattr(self, f'dec{k}_conv1', nn.Conv2d(width, width, 3, 1, 1))
      previous = width
    self.head = nn.Conv2d(previous, 2, 3, 1, 1)

  def encode(self, x):
    out = []
    for k in range(1, 6):
      x = F.leaky_relu(getattr(self, f'enc{k}_conv0')(x), 0.01)
      x = F.leaky_relu(getattr(self, f'enc{k}_conv1')(x), 0.01)
      out.append(x)
    return out

  def semantic(self, labels):
    """Class maps [N, 1, H, W] (any int dtype) -> the one-channel S."""
    if labels.dim() == 3:
      labels = labels[:, None]
    labels = labels.long().clamp(0, self.classes - 1)
    if self.map_input == 'index':
      return 2.0 * labels.float() / max(self.classes - 1, 1) - 1.0
    return F.embedding(labels[:, 0], self.map_embedding).permute(0, 3, 1, 2)

  def forward(self, gray, labels, instance_norm=None):
    """instance_norm: None (the module's), or True / False ('all' /
    'none'), or one of 'all', 'bottleneck', 'none'."""
    if instance_norm is None:
      instance_norm = self.instance_norm
    elif isinstance(instance_norm, bool):
      instance_norm = 'all' if instance_norm else 'none'
    n = gray.shape[0]
    streams = self.encode(torch.cat([gray.float(), self.semantic(labels)], 0))
    levels = []
    for k, x in enumerate(streams):
      g, s = x[:n], x[n:]
      if instance_norm == 'all' or (instance_norm == 'bottleneck' and k == 4):
        g = F.instance_norm(g.float(), eps=1e-5).to(g.dtype)
      levels.append(torch.cat([g, s], 1))
    y = levels[4]
    for k in range(1, 6):
      if k > 1:
        y = torch.cat([y, levels[5 - k]], 1)
      y = F.leaky_relu(getattr(self, f'dec{k}_conv0')(y), 0.01)
      y = F.leaky_relu(getattr(self, f'dec{k}_conv1')(y), 0.01)
    return torch.tanh(self.head(y).float())


def nchw(x):
  return torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())


# --- The train step. ---------------------------------------------------------

def build_networks(config):
  """{'gridnet', 'colorizer'} from config.to_json() as a dict (both are
  built in every stage, as the JAX state holds both)."""
  model, classes = config['model'], config['data']['num_classes']
  return {'gridnet': TorchGridNet(tuple(model['grid_depths']),
                                  model['grid_columns'], classes),
          'colorizer': TorchTwoStreamUNet(
              tuple(model['encoder_widths']), classes,
              map_input=model['map_input'],
              instance_norm=model['instance_norm'])}


def trained_networks(config):
  return STAGES[config['stage']]


def build_optimizers(config, networks):
  """One Adam per trained network (JAX: one optax chain per network)."""
  opt = config['optimizer']
  if opt['name'] != 'adam':
    raise ValueError(f"peer has Adam only, not {opt['name']!r}")
  kwargs = opt.get('kwargs', {})
  betas = (kwargs.get('b1', 0.9), kwargs.get('b2', 0.999))
  return {name: torch.optim.Adam(networks[name].parameters(),
                                 opt['learning_rate'], betas=betas,
                                 eps=kwargs.get('eps', 1e-8))
          for name in trained_networks(config)}


def random_batch(config, batch_size, device=None, seed=0):
  """The method's batch_spec, channels first: gray, ab in [-1, 1]; uint8
  segmentation in [0, num_classes) (what colorjax.benchmark draws)."""
  size, classes = config['data']['image_size'], config['data']['num_classes']
  trained = trained_networks(config)
  g = torch.Generator().manual_seed(seed)
  batch = {'gray': torch.rand(batch_size, 1, size, size, generator=g) * 2 - 1}
  if 'colorizer' in trained:
    batch['ab'] = torch.rand(batch_size, 2, size, size, generator=g) * 2 - 1
  if 'gridnet' in trained or config['train_maps'] != 'predicted':
    batch['segmentation'] = torch.randint(
        0, classes, (batch_size, 1, size, size), generator=g,
        dtype=torch.uint8)
  return {k: v.to(device) for k, v in batch.items()}


def map_labels(labels, num_classes, ignore_label=None):
  """int64 maps: out-of-range and the ignore label -> class 0."""
  labels = labels.long()
  bad = (labels < 0) | (labels >= num_classes)
  if ignore_label is not None:
    bad |= labels == ignore_label
  return torch.where(bad, torch.zeros_like(labels), labels)


def cross_entropy(logits, labels, ignore_label=None):
  """colorjax.losses.segmentation.cross_entropy: mean over labelled pixels
  (in range, not the ignore label); logits [N, C, H, W], labels [N, 1, H, W]
  or [N, H, W]."""
  logits = logits.float()
  labels = labels.reshape(logits.shape[:1] + logits.shape[2:]).long()
  valid = (labels >= 0) & (labels < logits.shape[1])
  if ignore_label is not None:
    valid &= labels != ignore_label
  nll = F.cross_entropy(logits, torch.where(valid, labels, 0),
                        reduction='none')
  return (nll * valid).sum() / valid.sum().clamp(min=1)


def pixel_accuracy(logits, labels, ignore_label=None):
  labels = labels.reshape(logits.shape[:1] + logits.shape[2:]).long()
  valid = (labels >= 0) & (labels < logits.shape[1])
  if ignore_label is not None:
    valid &= labels != ignore_label
  hits = (logits.argmax(1) == labels) & valid
  return hits.sum() / valid.sum().clamp(min=1)


def training_maps(config, networks, batch, autocast=None, use_predicted=None):
  """The colorizer's maps [N, 1, H, W] (int64), as JAX's _training_maps.
  use_predicted: for 'mix', a bool [N] (default: torch's RNG draws it with
  probability train_maps_mix)."""
  data = config['data']
  mode = config['train_maps']
  if mode not in TRAIN_MAPS:
    raise ValueError(f'train_maps {mode!r}')
  if mode == 'ground_truth':
    return map_labels(batch['segmentation'], data['num_classes'],
                      data.get('ignore_label'))
  gridnet = networks['gridnet']
  was_training = gridnet.training
  gridnet.eval()
  with torch.no_grad(), (autocast or contextlib.nullcontext()):
    predicted = gridnet(batch['gray']).float().argmax(1, keepdim=True)
  gridnet.train(was_training)
  if mode == 'predicted':
    return predicted
  n = predicted.shape[0]
  if use_predicted is None:
    use_predicted = torch.rand(n, device=predicted.device) < config[
        'train_maps_mix']
  if not torch.is_tensor(use_predicted):
    use_predicted = torch.from_numpy(np.array(use_predicted, bool))
  use_predicted = use_predicted.to(predicted.device)
  truth = map_labels(batch['segmentation'], data['num_classes'],
                     data.get('ignore_label'))
  return torch.where(use_predicted.view(n, 1, 1, 1), predicted, truth)


def train_step(config, networks, optimizers, batch, autocast=None,
               use_predicted=None, with_metrics=False):
  """One SemanticDriven train step (forward, loss, backward, Adam) of the
  networks config['stage'] trains. Returns the loss tensor (float32), or
  with_metrics: the JAX step's metrics (loss, loss_seg / loss_color,
  grad_norm, pixel_accuracy) as floats."""
  trained = trained_networks(config)
  autocast = autocast or contextlib.nullcontext()
  ignore = config['data'].get('ignore_label')
  maps = (training_maps(config, networks, batch, autocast, use_predicted)
          if 'colorizer' in trained else None)
  terms, logits, running_var = {}, None, None
  if 'gridnet' in trained:
    gridnet = networks['gridnet'].train()
    running_var = FlaxRunningVar(gridnet)
    running_var.snapshot()
    with autocast:
      logits = gridnet(batch['gray'])
    terms['seg'] = cross_entropy(logits.float(), batch['segmentation'],
                                 ignore)
  if 'colorizer' in trained:
    with autocast:
      ab = networks['colorizer'](batch['gray'], maps)
    terms['color'] = F.huber_loss(ab.float(), batch['ab'].float(),
                                  delta=config['loss']['delta'])
  loss = sum(terms.values())
  for name in trained:
    optimizers[name].zero_grad(set_to_none=True)
  loss.backward()
  if running_var is not None:
    running_var.apply()
  metrics = None
  if with_metrics:
    grads = [p.grad for name in trained
             for p in networks[name].parameters() if p.grad is not None]
    metrics = {'loss': float(loss.detach()),
               **{f'loss_{k}': float(v.detach()) for k, v in terms.items()},
               'grad_norm': float(torch.sqrt(sum(
                   (g.double() ** 2).sum() for g in grads)))}
    if logits is not None:
      metrics['pixel_accuracy'] = float(pixel_accuracy(
          logits.detach(), batch['segmentation'], ignore))
  for name in trained:
    optimizers[name].step()
  return metrics if with_metrics else loss.detach()


def parameter_counts(networks):
  return {name: sum(p.numel() for p in net.parameters())
          for name, net in networks.items()}


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
  with torch.device(device):
    networks = build_networks(config)
  optimizers = build_optimizers(config, networks)
  batch = random_batch(config, args.batch_size, device)
  # bfloat16: the networks run under autocast (params stay float32, as the
  # JAX side's model.dtype does); the losses are computed in float32.
  autocast = torch.autocast(args.device, dtype=torch.bfloat16,
                            enabled=args.dtype == 'bfloat16')

  def step():
    return train_step(config, networks, optimizers, batch, autocast)

  sync = torch.cuda.synchronize if args.device == 'cuda' else lambda: None
  for _ in range(args.warmup):
    step()
  sync()
  loss, step_s, cores_used = peer_common.timed_steps(
      step, args.steps, sync)
  loss = float(loss)
  assert math.isfinite(loss), loss
  print(json.dumps({
      'params': parameter_counts(networks),
      'trained': list(trained_networks(config)),
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
