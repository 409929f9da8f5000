"""`load(name, path)`: PyTorch checkpoints on disk -> (Flax module, variables).

Nothing is downloaded: users fetch the official files themselves (README,
"Pretrained networks (offline)"). `module.apply(variables, x)` takes the
reference PyTorch module's forward input transposed to NHWC and returns its
forward output (NHWC for feature maps); `lpips_alex` takes two images,
`module.apply(variables, x, y)`, and returns one distance per image;
`inception_v3_fid` takes NHWC images in [0, 1] of any size and returns
pytorch-fid's 2048 FID features per image; `deeplabv3_resnet101` returns
torchvision's `model(x)['out']` (logits at the input size, NHWC);
`eccv16` (richzhang/colorization) takes L in [0, 100], NHWC [N, H, W, 1],
and returns the 313 ab-bin logits of its `model8`, [N, H/4, W/4, 313];
`deeplabv2_resnet101` (paper 004's segmenter, kazuto1011/deeplab-pytorch's
port of the Caffe release) takes Caffe's mean-subtracted BGR in 0-255 and
returns its MSC logits at 1/8 of the input. `input_transform(name)` maps
RGB in [0, 1] to each network's input.
"""

import dataclasses
import hashlib
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.models import deeplab as deeplab_net
from colorjax.models import deeplab_v2 as deeplab_v2_net
from colorjax.models import eccv16 as eccv16_net
from colorjax.models import imagenet
from colorjax.models import inception as inception_net
from colorjax.models import lpips as lpips_net
from colorjax.models import resnet
from colorjax.models import seresnext
from colorjax.models import vgg as vgg_net
from colorjax.pretrained import common
from colorjax.pretrained import deeplab
from colorjax.pretrained import eccv16
from colorjax.pretrained import inception
from colorjax.pretrained import lpips
from colorjax.pretrained import timm_seresnext
from colorjax.pretrained import vgg


@dataclasses.dataclass(frozen=True)
class Spec:
  """How to build and fill one named network."""
  name: str
  source: str                                  # whose layout the file has
  build: Callable[..., nn.Module]              # num_classes -> module, or
                                               # () -> module (no classes_key)
  torch_key: Callable[[Tuple[str, ...]], str]  # flax path -> torch prefix
  classes_key: Optional[str] = None            # tensor whose dim 0 = classes
                                               # (linear or conv weight)
  input_shape: Tuple[int, ...] = (1, 64, 64, 3)
  num_inputs: int = 1                          # arrays `apply` takes
  # state dict -> state dict: checks and drops entries without a Flax leaf.
  prepare_state: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
  # variables -> the variables a colorjax model that embeds this network
  # uses (init_from `pretrained=NAME:PATH`), e.g. without a wrapper level.
  embedded: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
  # state dict -> extra keyword arguments of `build` (widths in the file).
  shape_kwargs: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
  # RGB in [0, 1], NHWC -> the input `apply` takes (ImageNet's mean and std
  # unless the network was trained otherwise; None: it takes no RGB).
  input_transform: Optional[Callable[[Any], Any]] = (
      imagenet.imagenet_normalize)


REGISTRY: Dict[str, Spec] = {
    spec.name: spec for spec in (
        Spec('seresnext50_32x4d', 'timm',
             lambda n: seresnext.SEResNeXt50Classifier(num_classes=n),
             timm_seresnext.torch_key, 'fc.weight'),
        Spec('vgg16', 'torchvision',
             lambda n, **kw: vgg_net.VGG(num_classes=n, batch_norm=False,
                                         **kw),
             common.underscore_key, 'classifier.6.weight',
             embedded=vgg.instanceaware_branch,
             shape_kwargs=lambda s: vgg.widths(s, batch_norm=False)),
        Spec('vgg16_bn', 'torchvision',
             lambda n, **kw: vgg_net.VGG(num_classes=n, batch_norm=True,
                                         **kw),
             common.underscore_key, 'classifier.6.weight',
             embedded=vgg.scenecontext_encoder,
             shape_kwargs=lambda s: vgg.widths(s, batch_norm=True)),
        Spec('resnet18', 'torchvision',
             lambda n: resnet.ResNet(resnet.RESNET18_BLOCKS, n,
                                     block='basic'),
             common.underscore_key, 'fc.weight'),
        Spec('resnet34', 'torchvision',
             lambda n: resnet.ResNet(resnet.RESNET34_BLOCKS, n,
                                     block='basic'),
             common.underscore_key, 'fc.weight'),
        Spec('resnet50', 'torchvision',
             lambda n: resnet.ResNet(resnet.RESNET50_BLOCKS, n),
             common.underscore_key, 'fc.weight'),
        Spec('resnet101', 'torchvision',
             lambda n: resnet.ResNet(resnet.RESNET101_BLOCKS, n),
             common.underscore_key, 'fc.weight'),
        Spec('lpips_alex', 'lpips', lpips_net.LPIPSAlex, common.underscore_key,
             num_inputs=2, prepare_state=lpips.prepare_state,
             input_transform=lambda rgb: rgb * 2.0 - 1.0),
        # The module resizes every input to 299x299 (and scales) itself.
        Spec('inception_v3_fid', 'pytorch-fid', inception_net.FIDInception,
             inception.torch_key, input_shape=(1, 299, 299, 3),
             prepare_state=inception.prepare_state,
             input_transform=lambda rgb: rgb),
        Spec('deeplabv3_resnet101', 'torchvision',
             lambda n: deeplab_net.DeepLabV3(num_classes=n),
             common.underscore_key, 'classifier.4.weight',
             prepare_state=deeplab.prepare_state),
        # Paper 004's segmenter: Caffe BGR input -> MSC logits at 1/8 size.
        Spec('deeplabv2_resnet101', 'kazuto1011/deeplab-pytorch',
             lambda n, **kw: deeplab_v2_net.DeepLabV2(num_classes=n, **kw),
             common.underscore_key, deeplab.V2_CLASSES_KEY,
             prepare_state=deeplab.prepare_state_v2,
             shape_kwargs=deeplab.v2_shapes,
             input_transform=deeplab_v2_net.caffe_bgr),
        # L in [0, 100] -> model8's 313 logits at 1/4 size.
        Spec('eccv16', 'richzhang/colorization', eccv16_net.ECCV16,
             eccv16.torch_key, input_shape=(1, 64, 64, 1),
             prepare_state=eccv16.prepare_state,
             embedded=eccv16.trunk_variables,
             input_transform=None),           # takes L, not RGB
    )
}


def names():
  return sorted(REGISTRY)


def parse_spec(spec: str, what: str,
               example: str = 'vgg16:/weights/vgg16-397923af.pth'):
  """'NAME:PATH' -> (name, path with ~ expanded); `what` names the option
  in the error a malformed spec raises."""
  name, sep, path = spec.partition(':')
  if not sep or not path:
    raise ValueError(f'{what} must be NAME:PATH (e.g. {example}), not '
                     f'{spec!r}')
  return name, os.path.expanduser(path)


# torchvision/timm hub convention: `<name>-<sha256 prefix>.<ext>`, e.g.
# vgg16-397923af.pth; the prefix is the hex after the last '-'.
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})(?:\.[^-]*)?$')


def hash_prefix(path: str) -> Optional[str]:
  """The SHA-256 prefix a torchvision/timm-style file name carries, or None."""
  match = _HASH_IN_NAME.search(os.path.basename(path))
  return match.group(1) if match else None


def file_sha256(path: str) -> str:
  """The full SHA-256 hex digest of a file (read in 1 MiB chunks)."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def check_hash(path: str) -> Optional[str]:
  """Checks the file against the SHA-256 prefix in its name (if any).

  Returns the full hex digest when a prefix was checked, else None.
  Raises HashMismatchError when the digest does not start with the prefix.
  """
  prefix = hash_prefix(path)
  if prefix is None:
    return None
  digest = file_sha256(path)
  if not digest.startswith(prefix):
    raise common.HashMismatchError(
        f'{path}: SHA-256 {digest} does not start with {prefix} (the prefix '
        'in the file name); the file is corrupt, truncated or not the '
        'official one')
  return digest


def read_state_dict(path: str, verify_hash: bool = True
                    ) -> Dict[str, np.ndarray]:
  """Reads a checkpoint: .safetensors, .npz, or a torch file (.pth, .pt,
  .bin, .pth.tar; plain state dicts or {'state_dict': ...} with an optional
  DataParallel 'module.' prefix, as in the Places365 release)."""
  if verify_hash:
    check_hash(path)
  if path.endswith('.safetensors'):
    try:
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f'{path}: reading .safetensors needs the '
                        'safetensors package (pip install safetensors)') from e
    try:
      state = load_file(path)
    except (TypeError, ValueError):    # e.g. bfloat16, which numpy lacks
      from safetensors.torch import load_file as load_torch  # pylint: disable=g-import-not-at-top
      state = load_torch(path)
  elif path.endswith('.npz'):
    with np.load(path) as data:
      state = dict(data)
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f'{path}: reading a PyTorch checkpoint needs torch; '
                        'or convert it once to .safetensors or .npz') from e
    state = torch.load(path, map_location='cpu', weights_only=True)
  if isinstance(state, Mapping) and isinstance(state.get('state_dict'),
                                               Mapping):
    state = state['state_dict']
  if not isinstance(state, Mapping):
    raise common.CheckpointMismatchError(
        f'{path}: not a state dict (got {type(state).__name__})')
  if state and all(k.startswith('module.') for k in state):
    state = {k[len('module.'):]: v for k, v in state.items()}
  return {k: common.to_numpy(v) for k, v in state.items()}


def convert(name: str, state_dict: Mapping[str, Any],
            reference_variables: Mapping[str, Any]) -> Dict[str, Any]:
  """A state dict -> variables shaped like `reference_variables`."""
  spec = _spec(name)
  if spec.prepare_state is not None:
    state_dict = spec.prepare_state(dict(state_dict))
  return common.convert_variables(state_dict, reference_variables,
                                  spec.torch_key, f'{spec.source} {name}')


def _spec(name: str) -> Spec:
  if name not in REGISTRY:
    raise KeyError(f'unknown pretrained network {name!r}; '
                   f'known: {", ".join(names())}')
  return REGISTRY[name]


def input_transform(name: str):
  """RGB in [0, 1], NHWC -> the input network `name` takes."""
  transform = _spec(name).input_transform
  if transform is None:
    raise ValueError(f'{name} takes no RGB image (see colorjax.pretrained.'
                     'load for its input)')
  return transform


def load_embedded(name: str, path: str) -> Dict[str, Any]:
  """Variables of network `name` as a colorjax model embedding it names
  them (what `init_from.<network>.pretrained=NAME:PATH` copies)."""
  _, variables = load(name, path)
  spec = _spec(name)
  return spec.embedded(variables) if spec.embedded else variables


def load(name: str, path: str, verify_hash: bool = True):
  """Builds network `name` and fills it from the checkpoint at `path`.

  For classifiers the number of classes is read from the file's classifier
  weight, so ImageNet (1000) and Places365 (365) heads both load (and any
  number of DeepLabV3 classes, from `classifier.4.weight`).

  Returns:
    (module, variables): `module.apply(variables, x)` with x the reference
    PyTorch forward input transposed to NHWC (`lpips_alex`:
    `module.apply(variables, x, y)`, NHWC images in [-1, 1] -> distances
    [N]; `inception_v3_fid`: NHWC images in [0, 1], any size -> [N, 2048];
    `deeplabv3_resnet101`: -> logits [N, H, W, num_classes]; `eccv16`: L
    in [0, 100], [N, H, W, 1] -> model8 logits [N, H/4, W/4, 313]).

  Raises:
    CheckpointMismatchError (a ValueError): keys or shapes do not match.
    HashMismatchError (a ValueError): the name's SHA-256 prefix is wrong.
  """
  spec = _spec(name)
  state = read_state_dict(path, verify_hash=verify_hash)
  if spec.prepare_state is not None:
    try:
      state = spec.prepare_state(state)
    except common.CheckpointMismatchError as e:
      raise common.CheckpointMismatchError(f'{path}: {e}') from e
  kwargs = spec.shape_kwargs(state) if spec.shape_kwargs else {}
  if spec.classes_key is None:
    module = spec.build(**kwargs)
  else:
    classifier = state.get(spec.classes_key)
    if classifier is None or np.ndim(classifier) not in (2, 4):
      raise common.CheckpointMismatchError(
          f'{path}: state dict does not match {spec.source} {name}: no '
          f'classifier weight {spec.classes_key!r} (keys: '
          f'{", ".join(sorted(state)[:6])}'
          f'{", ..." if len(state) > 6 else ""})')
    module = spec.build(int(np.shape(classifier)[0]), **kwargs)
  inputs = [jnp.zeros(spec.input_shape, jnp.float32)] * spec.num_inputs
  reference = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
  variables = common.convert_variables(state, reference, spec.torch_key,
                                       f'{spec.source} {name}')
  return module, variables
