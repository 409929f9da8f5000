"""PyTorch peer of the ChromaCMC train step, for `colorjax.benchmark train`.

Benchmark-only (torch and timm are optional dependencies): the same
generator (pix2pix U-Net trunk + timm SE-ResNeXt50 branch + 1x1 FRBs +
bottleneck fusion + two heads), the same PatchGAN, the same step (D update,
then G update against the updated D with (1-l)*GAN + l*CMC(2:1) + CE) and
Adam. The same architecture as the JAX model at every scale (paper, demo,
tiny): tests/test_torch_peer.py checks equal parameter counts and equal
outputs with the JAX weights copied in. Prints one JSON line:
{"images_per_s": ..., "peak_rss_mb": ...}.

  python benchmarks/torch_chromacmc.py --config_json='{...}' --batch_size=16
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common  # pylint: disable=wrong-import-position
import torchvision_stub  # pylint: disable=unused-import,wrong-import-position
import timm  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position
from torch import nn  # pylint: disable=wrong-import-position
import torch.nn.functional as F  # pylint: disable=wrong-import-position


def se_resnext(width, blocks):
  """timm's SE-ResNeXt (32x4d); width 64 and (3, 4, 6, 3) = seresnext50.

  As colorjax.models.seresnext.SEResNeXt50 at every width: the 7x7 stem is
  `width` channels wide and the stage planes scale with it. timm's plain
  stem is always 64 channels (its `stem_width` only sizes deep stems), so
  at width != 64 the stem and layer1 (whose first block's input width, and
  so its downsample branch, follow the stem) are rebuilt with timm's own
  builders (layer2..4 come out as before).
  """
  from timm.models.resnet import Bottleneck, ResNet, make_blocks  # pylint: disable=g-import-not-at-top
  channels = tuple(c * width // 64 for c in (64, 128, 256, 512))
  block_args = dict(cardinality=32, base_width=4, attn_layer='se')
  net = ResNet(Bottleneck, list(blocks), channels=channels,
               cardinality=block_args['cardinality'],
               base_width=block_args['base_width'],
               block_args=dict(attn_layer=block_args['attn_layer']))
  if width != 64:
    net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    stages, _ = make_blocks((Bottleneck,) * len(blocks), channels,
                            tuple(blocks), inplanes=width, act_layer=nn.ReLU,
                            norm_layer=nn.BatchNorm2d, **block_args)
    for name, stage in stages:   # layer1..4; only layer1 changes
      setattr(net, name, stage)
    net.init_weights()
  return net


class Generator(nn.Module):
  """Mirrors colorjax.models.chromacmc.Generator."""

  def __init__(self, model, num_classes, image_size):
    super().__init__()
    channels = list(model['trunk_channels'])
    self.depth = depth = len(channels)
    self.downs, self.down_norms = nn.ModuleList(), nn.ModuleList()
    in_ch = 1
    for i, ch in enumerate(channels):
      self.downs.append(nn.Conv2d(in_ch, ch, 4, 2, 1,
                                  bias=i in (0, depth - 1)))
      self.down_norms.append(nn.BatchNorm2d(ch) if 0 < i < depth - 1
                             else nn.Identity())
      in_ch = ch
    width = model['branch_width']
    # Without the branch (Table 2's ablation; use_branch=False): no FRBs
    # and no global fusion, as in the JAX model.
    self.use_branch = model.get('use_branch', True)
    frb = model['frb_channels'] if self.use_branch else 0
    if self.use_branch:
      self.branch = se_resnext(width, model['branch_blocks'])
      frb_block = lambda c: nn.Sequential(nn.Conv2d(c, frb, 1, bias=False),
                                          nn.BatchNorm2d(frb), nn.ReLU())
      self.frb_high = frb_block(16 * width)
      self.frb_low = frb_block(4 * width)
      self.fusion = nn.Conv2d(channels[-1] + 1000, channels[-1], 1)
    decoder = channels[:-1][::-1] + [channels[0]]
    self.ups, self.up_norms = nn.ModuleList(), nn.ModuleList()
    x_ch, size = channels[-1], image_size // 2 ** depth
    for i, ch in enumerate(decoder):
      in_ch = x_ch + (channels[depth - 1 - i] if i > 0 else 0)
      if size in (image_size // 16, image_size // 4):   # FRB features join
        in_ch += frb
      self.ups.append(nn.ConvTranspose2d(in_ch, ch, 4, 2, 1, bias=False))
      self.up_norms.append(nn.BatchNorm2d(ch))
      x_ch, size = ch, size * 2
    self.ab_head = nn.Conv2d(channels[0], 2, 3, padding=1)
    self.seg_head = nn.Conv2d(channels[0], num_classes, 3, padding=1)

  def forward(self, gray):
    x = gray
    skips = []
    for i, (conv, norm) in enumerate(zip(self.downs, self.down_norms)):
      if i > 0:
        x = F.leaky_relu(x, 0.2)
      x = norm(conv(x))
      skips.append(x)
    fused, x = {}, skips[-1]
    if self.use_branch:
      b = self.branch
      rgb = ((gray + 1) / 2).repeat(1, 3, 1, 1)
      mean = torch.tensor([0.485, 0.456, 0.406],
                          device=gray.device).view(1, 3, 1, 1)
      std = torch.tensor([0.229, 0.224, 0.225],
                         device=gray.device).view(1, 3, 1, 1)
      h = b.maxpool(b.act1(b.bn1(b.conv1((rgb - mean) / std))))
      layer1 = b.layer1(h)
      layer3 = b.layer3(b.layer2(layer1))
      logits = b.fc(b.global_pool(b.layer4(layer3)))
      fused = {layer3.shape[-1]: self.frb_high(layer3),
               layer1.shape[-1]: self.frb_low(layer1)}
      g = logits[:, :, None, None].expand(-1, -1, *x.shape[-2:])
      x = self.fusion(torch.cat([F.relu(x), g], 1))
    for i, (up, norm) in enumerate(zip(self.ups, self.up_norms)):
      if i > 0:
        x = torch.cat([x, skips[self.depth - 1 - i]], 1)
      if x.shape[-1] in fused:
        x = torch.cat([x, fused[x.shape[-1]]], 1)
      x = norm(up(F.relu(x)))
    x = F.relu(x)
    return torch.tanh(self.ab_head(x)), self.seg_head(x)


class Discriminator(nn.Module):

  def __init__(self, channels):
    super().__init__()
    layers, in_ch = [], 3
    for i, ch in enumerate(channels):
      layers.append(nn.Conv2d(in_ch, ch, 4, 2, 1, bias=i == 0))
      if i > 0:
        layers.append(nn.BatchNorm2d(ch))
      layers.append(nn.LeakyReLU(0.2))
      in_ch = ch
    layers.append(nn.Conv2d(in_ch, 1, 3, padding=1))
    self.net = nn.Sequential(*layers)

  def forward(self, gray, ab):
    return self.net(torch.cat([gray, ab], 1))


def delta_e_cmc(lab1, lab2, l=2.0, c=1.0):
  """CMC(l:c) with lab1 the reference, channels first [N, 3, H, W]."""
  l1, a1, b1 = lab1.unbind(1)
  l2, a2, b2 = lab2.unbind(1)
  c1 = torch.sqrt(a1 ** 2 + b1 ** 2 + 1e-12)
  c2 = torch.sqrt(a2 ** 2 + b2 ** 2 + 1e-12)
  s_l = torch.where(l1 < 16, torch.full_like(l1, 0.511),
                    0.040975 * l1 / (1 + 0.01765 * l1))
  s_c = 0.0638 * c1 / (1 + 0.0131 * c1) + 0.638
  h1 = torch.rad2deg(torch.atan2(b1, a1)) % 360
  t = torch.where((h1 >= 164) & (h1 <= 345),
                  0.56 + torch.abs(0.2 * torch.cos(torch.deg2rad(h1 + 168))),
                  0.36 + torch.abs(0.4 * torch.cos(torch.deg2rad(h1 + 35))))
  f = torch.sqrt(c1 ** 4 / (c1 ** 4 + 1900))
  s_h = s_c * (f * t + 1 - f)
  dh2 = torch.clamp((a1 - a2) ** 2 + (b1 - b2) ** 2 - (c1 - c2) ** 2, min=0)
  return torch.sqrt(((l1 - l2) / (l * s_l)) ** 2 + ((c1 - c2) / (c * s_c)) ** 2
                    + dh2 / s_h ** 2 + 1e-12)


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
  model, data = config['model'], config['data']
  size, n = data['image_size'], args.batch_size
  torch.set_default_device(device)
  generator = Generator(model, data['num_classes'], size)
  discriminator = Discriminator(model['discriminator_channels'])
  opt = config['optimizer']
  betas = (opt['kwargs']['b1'], opt['kwargs']['b2'])
  g_opt = torch.optim.Adam(generator.parameters(), opt['learning_rate'],
                           betas=betas)
  d_opt = torch.optim.Adam(discriminator.parameters(), opt['learning_rate'],
                           betas=betas)
  lam = config['loss']['lambda_cmc']
  # Eq. 9's colour term in the config's units (configs/chromacmc.py).
  colour_unit = (110.0 if config['loss'].get('cmc_scale') == 'normalised'
                 else 1.0)
  gray = torch.rand(n, 1, size, size) * 2 - 1
  lightness = (gray + 1) * 50
  ab = torch.rand(n, 2, size, size) * 1.2 - 0.6
  labels = torch.randint(0, data['num_classes'], (n, size, size))
  bce = nn.BCEWithLogitsLoss()

  # bfloat16: the networks run under autocast (params stay float32, as the
  # JAX side's model.dtype does); the losses are computed in float32.
  autocast = torch.autocast(args.device, dtype=torch.bfloat16,
                            enabled=args.dtype == 'bfloat16')

  def step():
    with autocast:
      fake_ab, seg_logits = generator(gray)
      real = discriminator(gray, ab)
      fake = discriminator(gray, fake_ab.detach())
    real, fake = real.float(), fake.float()
    d_loss = 0.5 * (bce(real, torch.ones_like(real)) +
                    bce(fake, torch.zeros_like(fake)))
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    with autocast:
      fooled = discriminator(gray, fake_ab).float()
    fake_ab, seg_logits = fake_ab.float(), seg_logits.float()
    cmc = delta_e_cmc(torch.cat([lightness, ab * 110], 1),
                      torch.cat([lightness, fake_ab * 110], 1)).mean()
    cmc = cmc / colour_unit
    g_loss = ((1 - lam) * bce(fooled, torch.ones_like(fooled)) + lam * cmc
              + F.cross_entropy(seg_logits, labels))
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    return g_loss.item()

  sync = torch.cuda.synchronize if args.device == 'cuda' else lambda: None
  for _ in range(args.warmup):
    step()
  sync()
  loss, step_s, cores_used = peer_common.timed_steps(
      step, args.steps, sync)
  assert math.isfinite(loss)
  print(json.dumps({
      'params': {'generator': sum(p.numel() for p in generator.parameters()),
                 'discriminator': sum(
                     p.numel() for p in discriminator.parameters())},
      'images_per_s': n / step_s,
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
