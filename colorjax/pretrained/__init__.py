"""Pretrained networks from PyTorch checkpoints on disk (no downloads).

    module, variables = colorjax.pretrained.load('vgg16', 'vgg16-397923af.pth')
    logits = module.apply(variables, x_nhwc)

Names: see `names()`; README "Pretrained networks (offline)" lists where
each official file is obtained.

This package holds what turns a PyTorch file into Flax variables: the
shared converter (`common`), one module per source layout with its key
mapping and state-dict checks (`timm_seresnext`, `vgg`, `inception`,
`lpips`, `deeplab` (v3 and v2), `eccv16`), and the registry of names, builders and
hashes (`registry`). The networks themselves are Flax modules in
`colorjax.models` (`resnet`, `vgg`, `inception`, `lpips`, `deeplab`,
`eccv16`, `seresnext`, `deeplab_v2`); ImageNet input normalisation is
`colorjax.models.imagenet`; `input_transform(name)` is each network's.
"""

from colorjax.pretrained.common import CheckpointMismatchError
from colorjax.pretrained.common import HashMismatchError
from colorjax.pretrained.common import PretrainedError
from colorjax.pretrained.registry import check_hash
from colorjax.pretrained.registry import convert
from colorjax.pretrained.registry import file_sha256
from colorjax.pretrained.registry import hash_prefix
from colorjax.pretrained.registry import input_transform
from colorjax.pretrained.registry import load
from colorjax.pretrained.registry import load_embedded
from colorjax.pretrained.registry import names
from colorjax.pretrained.registry import parse_spec
from colorjax.pretrained.registry import read_state_dict
from colorjax.pretrained.registry import REGISTRY
