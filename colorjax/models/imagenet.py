"""ImageNet input normalisation: the one copy of torchvision's mean and std.

Every ImageNet / Places365 network of colorjax (the SE-ResNeXt50 branch of
ChromaCMC, SceneContext's VGG-shaped encoder, the torchvision classifiers
and segmenters that `colorjax.pretrained` fills) expects RGB in [0, 1]
normalised with these statistics. It lives here, at the bottom of the
networks layer, so that the networks, the weight converters above them and
the methods, evaluators and dataset jobs that feed them all share it.
"""

import jax.numpy as jnp
import numpy as np

# torchvision's input normalisation of RGB in [0, 1] (ImageNet statistics).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def imagenet_normalize(rgb):
  """RGB in [0, 1], channels last -> torchvision's normalised input
  (float32)."""
  return (jnp.asarray(rgb, jnp.float32) - IMAGENET_MEAN) / IMAGENET_STD
