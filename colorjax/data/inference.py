"""A photo -> model input: the transforms colorize and the full-resolution
evaluation protocol both feed a model (one definition, so what is scored is
what users get)."""

from colorjax.data import preprocess


def inference_spec(config) -> str:
  """Eval transforms without crop or labels: resize to the model size,
  then exactly what evaluation does from `to_lab` on (equalise, normalise).
  The full-resolution evaluation protocol feeds the model this too."""
  size = config.data.image_size
  parts = [p.strip() for p in config.data.preprocess_eval.split('|')]
  names = [p.split('(')[0] for p in parts]
  if 'to_lab' not in names:
    raise ValueError('data.preprocess_eval has no to_lab op')
  # Training targets are not needed; ops reading what a photo lacks
  # (labels, scene) cannot run.
  targets = ('keep', 'soft_encode', 'downsample_targets')
  tail = [p for p, n in zip(parts[names.index('to_lab'):], names[
      names.index('to_lab'):]) if n not in targets]
  tail, _ = preprocess.without_unavailable(
      [op for part in tail for op in preprocess.parse(part)], ('image',))
  kept = {op.op_name for op in tail}
  return '|'.join([f'resize({size})'] + [
      p for p in parts[names.index('to_lab'):]
      if p.split('(')[0] in kept])


def inference_ops(config):
  return preprocess.parse(inference_spec(config))
