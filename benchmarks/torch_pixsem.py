"""PyTorch peer of paper 004's PixSem train step, for `colorjax.benchmark
train` and as a test oracle (never a dependency of colorjax).

Written in plain torch.nn from the paper (Tables 1-2, eq. 6, section 4.1)
and PixelCNN++ (Salimans et al. 2017), with the layer layout of
colorjax/models/pixsem.py and colorjax/models/pixelcnnpp.py (or
colorjax/models/pixelcnn.py for model.generator='small'), submodules named
as the Flax modules / generator parameter keys so a transfer by name works
(tests/test_torch_peer_pixsem.py spells it out and checks parameter counts
at tiny and paper scale, outputs, the three losses and one full step).

  f (colour embedding)  3x3 convs + gated residual blocks (elu -> conv ->
                        elu -> conv to 2C -> x + a * sigmoid(g)), strides
                        1, 2, 2, dilations 2 then 4, a 3x3 conv to E
                        channels, and a 1x1 DMoL head on elu(f) (L_emb).
  h (segmentation)      f's first four stages shared, its own dilation-2
                        stage, ASPP: 3x3 convs with dilations 6, 12, 18
                        to #classes, summed (L_seg).
  g (generator)         conditional PixelCNN++ over the 1/4-size ab map
                        (multi-scale, concat_elu, dropout in the blocks;
                        conditioning average-pooled to each scale), or
                        the single-scale 'small' stack; DMoL output (L_gen).
Convolutions use Flax's 'SAME' padding (for the stride-2 3x3 convs of an
even map that is 0 before, 1 after: not torch's symmetric padding=1), the
causal shifted convolutions of PixelCNN++ pad explicitly.

The train step (colorjax/methods/pixsem.py): one forward, L = l1 L_emb +
l2 L_seg + l3 L_gen with config.loss (1:100:1 paper, 1:1:1 twins), one
backward, Adam (config's lr, b1, b2; eps 1e-8 as optax; fused on CUDA),
then the Polyak/EMA update ema = d ema + (1 - d) params. The learning rate
follows an 'exponential' schedule (lr * rate^step, as optax's) or is
constant; any other schedule type runs constant at the initial rate.
Dropout is torch's (F.dropout, same rate and 1/(1-p) scaling; its own RNG
stream, not JAX's).
--dtype=bfloat16 autocasts f and h only: the JAX model computes the
conditioning in model.dtype and casts it to float32, and the generator
(a pure function of float32 params and inputs) runs in float32 whatever
model.dtype is; so does this peer. Losses are float32.

  python benchmarks/torch_pixsem.py --config_json='{...}' --batch_size=16 \
      --steps=5 [--warmup=2] [--threads=0] [--device=cpu|cuda] \
      [--dtype=float32|bfloat16]
prints one JSON line: params ({'model': count}, as `method.describe`),
images_per_s, step_s, peak_rss_mb, peak_device_mb, loss, torch, threads,
device, dtype.
"""

import argparse
import contextlib
import json
import math

import peer_common
import torch
from torch import nn
import torch.nn.functional as F

VARIANTS = ('embedding', 'semantic_embedding', 'semantic_generator',
            'feature_transform')
NUM_LEVELS = 256                      # per ab channel, on [-1, 1]
HALF_BIN = 1.0 / (NUM_LEVELS - 1)
MIN_LOG_SCALE = -7.0
DOWN, DOWN_RIGHT = 'down', 'down_right'


# ---------------------------------------------------------------- f and h
class SameConv2d(nn.Conv2d):
  """nn.Conv2d with TF/Flax 'SAME' padding: output ceil(in / stride), the
  total padding max((out - 1) * stride + span - in, 0) split with the
  smaller half first (span = dilation * (k - 1) + 1)."""

  def forward(self, x):
    pads = []
    for axis in (1, 0):           # F.pad wants (left, right, top, bottom)
      size = x.shape[2 + axis]
      stride, k = self.stride[axis], self.kernel_size[axis]
      span = self.dilation[axis] * (k - 1) + 1
      total = max((-(-size // stride) - 1) * stride + span - size, 0)
      pads += [total // 2, total - total // 2]
    return self._conv_forward(F.pad(x, pads), self.weight, self.bias)


def conv3x3(cin, cout, stride=1, dilation=1):
  return SameConv2d(cin, cout, 3, stride, 0, dilation)


class GatedResidualBlock(nn.Module):
  """Two 3x3 convolutions (the second to 2C: value and gate), a skip
  connection and a sigmoid gate."""

  def __init__(self, channels, dilation=1):
    super().__init__()
    self.conv1 = conv3x3(channels, channels, dilation=dilation)
    self.conv2 = conv3x3(channels, 2 * channels, dilation=dilation)

  def forward(self, x):
    value, gate = self.conv2(F.elu(self.conv1(F.elu(x)))).chunk(2, 1)
    return x + value * torch.sigmoid(gate)


def dmol_outputs(num_mixtures):
  return 6 * num_mixtures


class Conditioning(nn.Module):
  """f, h and the generator's conditioning map (one pass per image)."""

  def __init__(self, model, num_classes):
    super().__init__()
    self.variant = variant = model['variant']
    assert variant in VARIANTS, variant
    w, b = list(model['widths']), list(model['blocks'])
    e, self.num_mixtures = model['embedding_channels'], model['num_mixtures']
    stages = {'f0': (1, w[0], b[0], 1, 1), 'f1': (w[0], w[1], b[1], 2, 1),
              'f2': (w[1], w[2], b[2], 2, 1), 'f3': (w[2], w[3], b[3], 1, 2),
              'f4': (w[3], w[3], b[4], 1, 4)}
    if variant != 'embedding':
      stages['h4'] = (w[3], w[3], b[4], 1, 2)
    self.stage_blocks = {}
    for name, (cin, cout, blocks, stride, dilation) in stages.items():
      setattr(self, f'{name}_conv', conv3x3(cin, cout, stride))
      for i in range(blocks):
        setattr(self, f'{name}_block{i}', GatedResidualBlock(cout, dilation))
      self.stage_blocks[name] = blocks
    self.embedding = conv3x3(w[3], e)
    self.embedding_head = nn.Conv2d(e, dmol_outputs(self.num_mixtures), 1)
    if variant != 'embedding':
      for d in (6, 12, 18):
        setattr(self, f'aspp{d}', conv3x3(w[3], num_classes, dilation=d))
    if variant == 'feature_transform':
      self.ft_hidden = conv3x3(num_classes, e)
      self.ft_gamma = conv3x3(e, e)
      self.ft_beta = conv3x3(e, e)

  def stage(self, name, x):
    x = getattr(self, f'{name}_conv')(x)
    for i in range(self.stage_blocks[name]):
      x = getattr(self, f'{name}_block{i}')(x)
    return x

  def forward(self, gray):
    """gray [N, 1, H, W] -> embedding_dmol [N, 6K, H/4, W/4], segmentation
    [N, C, H/4, W/4] (not for 'embedding'), cond [N, E (+ C), H/4, W/4];
    all float32."""
    x = self.stage('f2', self.stage('f1', self.stage('f0', gray)))
    shared = self.stage('f3', x)
    embedding = self.embedding(self.stage('f4', shared))
    out = {'embedding_dmol': self.embedding_head(F.elu(embedding)).float()}
    cond = embedding
    if self.variant != 'embedding':
      s = self.stage('h4', shared)
      logits = self.aspp6(s) + self.aspp12(s) + self.aspp18(s)
      out['segmentation'] = logits.float()
      # Softmax in float32, then back to the compute dtype (as JAX).
      probs = F.softmax(logits.float(), 1).to(embedding.dtype)
      if self.variant == 'semantic_generator':
        cond = torch.cat([embedding, probs], 1)
      elif self.variant == 'feature_transform':
        hidden = F.relu(self.ft_hidden(probs))
        cond = (embedding * (1.0 + self.ft_gamma(hidden))
                + self.ft_beta(hidden))
    out['cond'] = cond.float()
    return out


# -------------------------------------------------------------------- g
class Shifted(nn.Module):
  """A causal ('shifted') convolution: `down` (kh x kw, rows above and its
  own, centred columns) or `down_right` (rows above and its own, columns
  to the left and its own), zero padding top / left (/ right) so the output
  (stride 1) has the input's size."""

  def __init__(self, cin, cout, kh, kw, kind, stride=1):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, (kh, kw), stride)
    side = (kw - 1) // 2
    left, right = (side, side) if kind == DOWN else (kw - 1, 0)
    self.pads = (left, right, kh - 1, 0)

  def forward(self, x):
    return self.conv(F.pad(x, self.pads))


def shift_down(x):
  return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def shift_right(x):
  return F.pad(x, (1, 0))[..., :-1]


def concat_elu(x):
  return F.elu(torch.cat([x, -x], 1))


class Deconv(nn.Module):
  """PixelCNN++'s stride-2 shifted transposed convolutions: 2x2
  (`down_right`: fine pixel (2i + a, 2j + b) from coarse (i, j) alone) or
  2x3 (`down`: the transposed conv's 2W + 1 columns cropped to 1 .. 2W)."""

  def __init__(self, channels, kind):
    super().__init__()
    self.kind = kind
    kw = 3 if kind == DOWN else 2
    self.conv = nn.ConvTranspose2d(channels, channels, (2, kw), 2)

  def forward(self, x):
    y = self.conv(x)
    return y[..., 1:1 + 2 * x.shape[-1]] if self.kind == DOWN else y


class PPBlock(nn.Module):
  """PixelCNN++ gated resnet: c1 = conv(concat_elu(x)) [+ nin(concat_elu
  (a))]; c2 = conv(dropout(concat_elu(c1))) + nin(h); x + c2a * sig(c2b)."""

  def __init__(self, channels, cond_channels, kind, a_channels, dropout):
    super().__init__()
    kh, kw = (2, 3) if kind == DOWN else (2, 2)
    self.c1 = Shifted(2 * channels, channels, kh, kw, kind)
    self.c2 = Shifted(2 * channels, 2 * channels, kh, kw, kind)
    self.cond = nn.Conv2d(cond_channels, 2 * channels, 1)
    self.a = nn.Conv2d(a_channels, channels, 1) if a_channels else None
    self.dropout = dropout

  def forward(self, x, a, h):
    c1 = self.c1(concat_elu(x))
    if a is not None:
      c1 = c1 + self.a(concat_elu(a))
    c1 = F.dropout(concat_elu(c1), self.dropout, self.training)
    value, gate = (self.c2(c1) + self.cond(h)).chunk(2, 1)
    return x + value * torch.sigmoid(gate)


class PixelCNNpp(nn.Module):
  """The multi-scale conditional PixelCNN++ (colorjax.models.pixelcnnpp):
  a down pass of `scales` scales (a stride-2 shifted conv between them,
  `blocks` blocks on each of the streams u and ul), an up pass (a stride-2
  shifted deconv between scales, blocks + 1 blocks but at the coarsest,
  each fed the matching down-pass outputs), 1x1 to the DMoL."""

  def __init__(self, cond_channels, channels, blocks, num_mixtures, scales,
               dropout=0.0):
    super().__init__()
    c, self.scales, self.blocks = channels, scales, blocks
    x_ch = 3                                # a, b and a plane of ones
    layers = {'in_u': Shifted(x_ch, c, 2, 3, DOWN),
              'in_ul_above': Shifted(x_ch, c, 1, 3, DOWN),
              'in_ul_left': Shifted(x_ch, c, 2, 1, DOWN_RIGHT)}
    for s in range(1, scales):
      layers[f'down{s}_u'] = Shifted(c, c, 2, 3, DOWN, stride=2)
      layers[f'down{s}_ul'] = Shifted(c, c, 2, 2, DOWN_RIGHT, stride=2)
      layers[f'up{s - 1}_u'] = Deconv(c, DOWN)
      layers[f'up{s - 1}_ul'] = Deconv(c, DOWN_RIGHT)
    for s in range(scales):
      for k in range(blocks):
        layers[f'd{s}_{k}_u'] = PPBlock(c, cond_channels, DOWN, 0, dropout)
        layers[f'd{s}_{k}_ul'] = PPBlock(c, cond_channels, DOWN_RIGHT,
                                         2 * c, dropout)
    for s in range(scales):
      for k in range(self.up_blocks(s)):
        layers[f'u{s}_{k}_u'] = PPBlock(c, cond_channels, DOWN, 2 * c,
                                        dropout)
        layers[f'u{s}_{k}_ul'] = PPBlock(c, cond_channels, DOWN_RIGHT,
                                         4 * c, dropout)
    layers['out'] = nn.Conv2d(c, dmol_outputs(num_mixtures), 1)
    self.layers = nn.ModuleDict(layers)

  def up_blocks(self, s):
    return self.blocks if s == self.scales - 1 else self.blocks + 1

  def forward(self, ab, cond):
    """ab [N, 2, h, w] (teacher forcing), cond [N, Cc, h, w] -> [N, 6K, h,
    w]."""
    L = self.layers  # pylint: disable=invalid-name
    h = [cond] + [F.avg_pool2d(cond, 2 ** s) for s in range(1, self.scales)]
    x = torch.cat([ab, torch.ones_like(ab[:, :1])], 1)
    u = shift_down(L['in_u'](x))
    ul = shift_down(L['in_ul_above'](x)) + shift_right(L['in_ul_left'](x))
    us, uls = [u], [ul]
    for s in range(self.scales):
      if s:
        u, ul = L[f'down{s}_u'](u), L[f'down{s}_ul'](ul)
        us.append(u)
        uls.append(ul)
      for k in range(self.blocks):
        u = L[f'd{s}_{k}_u'](u, None, h[s])
        ul = L[f'd{s}_{k}_ul'](ul, u, h[s])
        us.append(u)
        uls.append(ul)
    u, ul = us.pop(), uls.pop()
    for s in reversed(range(self.scales)):
      if s < self.scales - 1:
        u, ul = L[f'up{s}_u'](u), L[f'up{s}_ul'](ul)
      for k in range(self.up_blocks(s)):
        u = L[f'u{s}_{k}_u'](u, us.pop(), h[s])
        ul = L[f'u{s}_{k}_ul'](ul, torch.cat([u, uls.pop()], 1), h[s])
    assert not us and not uls
    return L['out'](F.elu(ul))


class SmallPixelCNN(nn.Module):
  """model.generator='small' (colorjax.models.pixelcnn): one scale, elu,
  `blocks` gated blocks per stream, ul's c1 also sees nin(elu(u)); no
  dropout."""

  def __init__(self, cond_channels, channels, blocks, num_mixtures):
    super().__init__()
    c, self.blocks = channels, blocks
    layers = {'u0': Shifted(3, c, 2, 3, DOWN),
              'ul0_above': Shifted(3, c, 1, 3, DOWN),
              'ul0_left': Shifted(3, c, 2, 1, DOWN_RIGHT)}
    for k in range(1, blocks + 1):
      layers[f'u{k}_c1'] = Shifted(c, c, 2, 3, DOWN)
      layers[f'u{k}_c2'] = Shifted(c, 2 * c, 2, 3, DOWN)
      layers[f'ul{k}_c1'] = Shifted(c, c, 2, 2, DOWN_RIGHT)
      layers[f'ul{k}_c2'] = Shifted(c, 2 * c, 2, 2, DOWN_RIGHT)
      layers[f'u{k}_cond'] = nn.Conv2d(cond_channels, 2 * c, 1)
      layers[f'ul{k}_cond'] = nn.Conv2d(cond_channels, 2 * c, 1)
      layers[f'ul{k}_skip'] = nn.Conv2d(c, c, 1)
    layers['out'] = nn.Conv2d(c, dmol_outputs(num_mixtures), 1)
    self.layers = nn.ModuleDict(layers)

  def forward(self, ab, cond):
    L = self.layers  # pylint: disable=invalid-name

    def gate(x, c2):
      value, g = c2.chunk(2, 1)
      return x + value * torch.sigmoid(g)
    x = torch.cat([ab, torch.ones_like(ab[:, :1])], 1)
    u = shift_down(L['u0'](x))
    ul = shift_down(L['ul0_above'](x)) + shift_right(L['ul0_left'](x))
    for k in range(1, self.blocks + 1):
      c1 = L[f'u{k}_c1'](F.elu(u))
      u = gate(u, L[f'u{k}_c2'](F.elu(c1)) + L[f'u{k}_cond'](cond))
      c1 = L[f'ul{k}_c1'](F.elu(ul)) + L[f'ul{k}_skip'](F.elu(u))
      ul = gate(ul, L[f'ul{k}_c2'](F.elu(c1)) + L[f'ul{k}_cond'](cond))
    return L['out'](F.elu(ul))


class PixSem(nn.Module):
  """f + h (`conditioning`) and g (`generator`)."""

  def __init__(self, model, num_classes):
    super().__init__()
    self.conditioning = Conditioning(model, num_classes)
    cond_channels = model['embedding_channels'] + (
        num_classes if model['variant'] == 'semantic_generator' else 0)
    kind = model.get('generator', 'small')
    args = (cond_channels, model['generator_channels'],
            model['generator_blocks'], model['num_mixtures'])
    if kind == 'pixelcnnpp':
      self.generator = PixelCNNpp(*args, model.get('generator_scales', 3),
                                  model.get('generator_dropout', 0.0))
    elif kind == 'small':
      if model.get('generator_dropout', 0.0):
        raise ValueError("the 'small' generator has no dropout")
      self.generator = SmallPixelCNN(*args)
    else:
      raise ValueError(f'model.generator {kind!r}')

  def forward(self, gray, ab_small, autocast=None):
    """Teacher-forced outputs; `autocast` (a context) covers f and h only,
    the generator runs in float32 (see the module docstring)."""
    with autocast or contextlib.nullcontext():
      out = self.conditioning(gray)
    with torch.autocast(gray.device.type, enabled=False):
      out['generator_dmol'] = self.generator(ab_small.float(), out['cond'])
    return out


def build(config, device=None):
  """The PixSem network from a config dict (json.loads(config.to_json()))."""
  with torch.device(device or 'cpu'):
    return PixSem(config['model'], config['data']['num_classes'])


def count(module):
  return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- losses
def quantize(x):
  """Onto the 256-level grid of [-1, 1] (round half to even, as jnp)."""
  return torch.round((x.clamp(-1.0, 1.0) + 1.0) / (2 * HALF_BIN)) * (
      2 * HALF_BIN) - 1.0


def _log_bin_probability(x, mean, log_scale):
  """log P(x's bin) of a logistic(mean, s) discretised to 256 levels:
  log(sigma((x - m + 1/255) / s) - sigma((x - m - 1/255) / s)); the edge
  bins take the tails, x = -1: log sigma(upper), x = 1: log(1 - sigma(
  lower)). The interior difference of sigmoids is evaluated as
  sigma(u) sigma(-l) (1 - e^(l - u)) in logs (no cancellation, both tails
  exact)."""
  inv_s = torch.exp(-log_scale)
  upper = inv_s * (x - mean + HALF_BIN)
  lower = inv_s * (x - mean - HALF_BIN)
  left_tail = F.logsigmoid(upper)
  right_tail = F.logsigmoid(-lower)
  interior = (left_tail + right_tail
              + torch.log(-torch.expm1((lower - upper).clamp(max=-1e-12))))
  return torch.where(x < -1.0 + HALF_BIN, left_tail,
                     torch.where(x > 1.0 - HALF_BIN, right_tail, interior))


def dmol_log_prob(outputs, ab, num_mixtures):
  """log p(a, b) per pixel [N, h, w]: outputs [N, 6K, h, w] = (logits,
  mean_a, mean_b, log_s_a, log_s_b, coeff) x K; ab [N, 2, h, w]; b's mean
  is shifted by tanh(coeff) * a (PixelCNN++'s channel conditioning); log
  scales floored at -7; mixture by log-sum-exp; all float32."""
  logits, mean_a, mean_b, log_s_a, log_s_b, coeff = outputs.float().split(
      num_mixtures, 1)
  ab = quantize(ab.float())
  a, b = ab[:, 0:1], ab[:, 1:2]              # broadcast over the K mixtures
  log_p = (_log_bin_probability(a, mean_a, log_s_a.clamp(min=MIN_LOG_SCALE))
           + _log_bin_probability(b, mean_b + torch.tanh(coeff) * a,
                                  log_s_b.clamp(min=MIN_LOG_SCALE)))
  return torch.logsumexp(log_p + F.log_softmax(logits, 1), 1)


def cross_entropy(logits, labels, ignore_label=None):
  """Mean pixel cross-entropy over labels in [0, C) and != ignore_label."""
  labels = labels.reshape(logits.shape[0], *logits.shape[2:]).long()
  valid = (labels >= 0) & (labels < logits.shape[1])
  if ignore_label is not None:
    valid &= labels != ignore_label
  nll = F.cross_entropy(logits.float(), torch.where(valid, labels, 0),
                        reduction='none')
  return torch.where(valid, nll, 0.0).sum() / valid.sum().clamp(min=1)


def losses(config, outputs, batch):
  """The three terms of eq. 6 (unweighted): nll_embedding, nll_generator
  (mean -log p per pixel of the 1/4-size ab map), segmentation."""
  k, target = config['model']['num_mixtures'], batch['ab_small']
  terms = {
      'nll_embedding': -dmol_log_prob(outputs['embedding_dmol'], target,
                                      k).mean(),
      'nll_generator': -dmol_log_prob(outputs['generator_dmol'], target,
                                      k).mean()}
  if 'segmentation' in outputs:
    terms['segmentation'] = cross_entropy(
        outputs['segmentation'], batch['segmentation_small'],
        config['data'].get('ignore_label'))
  return terms


def total_loss(config, terms):
  w = config['loss']
  total = (w['embedding'] * terms['nll_embedding']
           + w['generator'] * terms['nll_generator'])
  if 'segmentation' in terms:
    total = total + w['segmentation'] * terms['segmentation']
  return total


# ------------------------------------------------------------ train step
def make_optimizer(config, net, device='cpu'):
  opt = config['optimizer']
  kwargs = opt.get('kwargs') or {}
  return torch.optim.Adam(net.parameters(), opt['learning_rate'],
                          betas=(kwargs.get('b1', 0.9),
                                 kwargs.get('b2', 0.999)),
                          eps=kwargs.get('eps', 1e-8),
                          fused=torch.device(device).type == 'cuda')


def learning_rate(config, step):
  """optax's rate at `step` for 'exponential' (lr * rate^step); the base
  rate for 'constant' and (a simplification) every other schedule."""
  opt = config['optimizer']
  schedule = opt.get('schedule') or {}
  if isinstance(schedule, dict) and schedule.get('type') == 'exponential':
    return opt['learning_rate'] * schedule.get('decay_rate', 1.0) ** step
  return opt['learning_rate']


class Trainer:
  """Network, Adam and the Polyak average: `step(batch)` is one
  PixSemMethod.train_step."""

  def __init__(self, config, net, device='cpu', autocast=None):
    self.config, self.net, self.autocast = config, net, autocast
    self.optimizer = make_optimizer(config, net, device)
    self.params = [p for p in net.parameters()]
    with torch.no_grad():
      self.ema = [p.detach().clone() for p in self.params]
    self.decay = config['model']['ema_decay']
    self.count = 0

  def step(self, batch):
    """forward (dropout on), L = l1 L_emb + l2 L_seg + l3 L_gen, backward,
    Adam, EMA. Returns (loss, terms, global gradient norm) as tensors."""
    self.net.train()
    for group in self.optimizer.param_groups:
      group['lr'] = learning_rate(self.config, self.count)
    outputs = self.net(batch['gray'], batch['ab_small'], self.autocast)
    terms = losses(self.config, outputs, batch)
    loss = total_loss(self.config, terms)
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
      grad_norm = torch.linalg.vector_norm(torch.stack(
          torch._foreach_norm([p.grad for p in self.params])))  # pylint: disable=protected-access
    self.optimizer.step()
    with torch.no_grad():  # ema = d * ema + (1 - d) * params
      torch._foreach_lerp_(self.ema, self.params, 1.0 - self.decay)  # pylint: disable=protected-access
    self.count += 1
    return loss.detach(), {k: v.detach() for k, v in terms.items()}, grad_norm


def random_batch(config, batch_size, device=None, seed=0):
  """A training batch of PixSemMethod.batch_spec's keys, NCHW, in each
  key's range (as colorjax.benchmark's random batch): gray, ab, ab_small
  in [-1, 1], l in [0, 100], uint8 labels in [0, classes). The step reads
  gray, ab_small and segmentation_small."""
  g = torch.Generator().manual_seed(seed)
  data = config['data']
  size, n = data['image_size'], batch_size
  small = size // data['downsample']
  uniform = lambda *shape: torch.rand(shape, generator=g) * 2 - 1
  labels = lambda s: torch.randint(0, data['num_classes'], (n, 1, s, s),
                                   generator=g).to(torch.uint8)
  batch = {'gray': uniform(n, 1, size, size),
           'l': torch.rand((n, 1, size, size), generator=g) * 100,
           'ab': uniform(n, 2, size, size),
           'segmentation': labels(size),
           'ab_small': uniform(n, 2, small, small),
           'segmentation_small': labels(small)}
  return {k: v.to(device or 'cpu') for k, v in batch.items()}


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
  if args.device == 'cuda':
    torch.backends.cudnn.benchmark = True
  config = json.loads(args.config_json)
  torch.manual_seed(config.get('seed', 0))
  net = build(config, args.device)
  batch = random_batch(config, args.batch_size, args.device)
  # bfloat16: f and h under autocast (params stay float32, as the JAX
  # side's model.dtype does); generator and losses in float32.
  autocast = torch.autocast(args.device, dtype=torch.bfloat16,
                            enabled=args.dtype == 'bfloat16')
  trainer = Trainer(config, net, args.device, autocast)

  sync = torch.cuda.synchronize if args.device == 'cuda' else lambda: None
  for _ in range(args.warmup):
    trainer.step(batch)
  sync()
  loss, step_s, cores_used = peer_common.timed_steps(
      lambda: trainer.step(batch)[0], args.steps, sync)
  loss = loss.item()
  assert math.isfinite(loss), loss
  print(json.dumps({
      'params': {'model': count(net)},
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
