"""Evaluator plug-ins, declared in `config.evals` as in big_vision:

  config.evals = {name: dict(type=..., dataset=..., split=..., path=...,
                             preprocess=..., batch_size=..., every_steps=...,
                             max_images=..., skip_if_missing=..., ...)}

type: colour | segmentation | classification | diversity | summary |
perceptual | semantic_interpretability | reference_segmentation.
resolution: 'model' (default) or 'full' (the photo's own size; see
colorjax.evaluation) for the evaluators that score colours.
dataset 'image_folder' with `path` reads a folder of photos (no labels).
"""

from colorjax.evaluators.base import Evaluator
from colorjax.evaluators.base import to_rgb
from colorjax.evaluators.classification import ClassificationEvaluator
from colorjax.evaluators.colour import ColourEvaluator
from colorjax.evaluators.diversity import DiversityEvaluator
from colorjax.evaluators.perceptual import PerceptualEvaluator
from colorjax.evaluators.segmentation import SegmentationEvaluator
from colorjax.evaluators.semantic import ReferenceSegmentationEvaluator
from colorjax.evaluators.semantic import SemanticInterpretabilityEvaluator
from colorjax.evaluators.summary import SummaryEvaluator

REGISTRY = {
    'colour': ColourEvaluator,
    'segmentation': SegmentationEvaluator,
    'classification': ClassificationEvaluator,
    'diversity': DiversityEvaluator,
    'summary': SummaryEvaluator,
    'perceptual': PerceptualEvaluator,
    'semantic_interpretability': SemanticInterpretabilityEvaluator,
    'reference_segmentation': ReferenceSegmentationEvaluator,
}


def create(name: str, cfg, method, config, mesh) -> Evaluator:
  kind = cfg.get('type')
  if kind not in REGISTRY:
    raise ValueError(f'evals.{name}: unknown type {kind!r}; known: '
                     f'{sorted(REGISTRY)}')
  return REGISTRY[kind](name, cfg, method, config, mesh)
