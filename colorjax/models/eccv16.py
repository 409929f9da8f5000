"""Zhang et al.'s ECCV16 colorization network ("Colorful Image Colorization",
2016) from richzhang/colorization's PyTorch release, in Flax.

Why here: the published weights initialise the InstanceAware trunk (and
give a pretrained baseline). The network is `colorjax.models.instanceaware.
InstanceAware(num_classes=0)` (no classification branch), whose layer names
mirror `colorizers/eccv16.py`'s `ECCVGenerator` state dict key by key
(`model1_0` holds `model1.0`, ..., `model8_0` the 4x4 stride-2
ConvTranspose2d, `model8_6` the 1x1 conv to 313 ab-bin logits); `ECCV16`
wraps it as the submodule `net`.

Conventions: `ECCV16.__call__(l)` takes CIE L in [0, 100], NHWC [N, H, W, 1]
(H, W divisible by 8 for the output to be exactly H/4 x W/4), normalises it
as the release does, (L - 50) / 100, and returns the 313 logits of
`model8` -- before the softmax and `model_out` -- as NHWC [N, H/4, W/4, 313]
float32. BatchNorm uses the running statistics (inference).

`colorjax.pretrained` fills it from the release file one tensor to one
parameter (registry name `eccv16`) and hands the trunk's variables to
InstanceAware (`init_from.model.pretrained=eccv16:PATH`, `colorize
--pretrained=eccv16:PATH`).
"""

import flax.linen as nn

from colorjax.models import instanceaware

NET = 'net'                       # name of the wrapped InstanceAware


class ECCV16(nn.Module):
  """L in [0, 100], NHWC [N, H, W, 1] -> model8 logits [N, H/4, W/4, 313]."""
  upconv: str = 'auto'            # layers.UpConv implementation

  @nn.compact
  def __call__(self, l):
    sizes = instanceaware.SIZES['paper']
    net = instanceaware.InstanceAware(
        widths=sizes['widths'], depths=sizes['depths'], num_classes=0,
        upconv=self.upconv, name=NET)
    # InstanceAware takes gray = L/50 - 1 and applies (L - 50)/100 itself.
    return net(l / 50.0 - 1.0)['logits']
