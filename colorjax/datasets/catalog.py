"""Facts about each supported dataset, in one table next to the builders.

Configs point `config.data` at an entry (`config_lib.set_dataset`); losses,
evaluators and the pipeline read the class count, ignore label and label
remap from there, never from one paper's config. `max_image_side` is the
longest image side of the eval split (ADE20K: capped at 1024), the canvas
of the full-resolution evaluation protocol. `train_images` is the
published size of the train split: configs use it to state a schedule in
epochs, and the trainer replaces it by the prepared split's real size
(tfds metadata) at run time.
"""

from typing import Dict

from colorjax.datasets import classes

DATASETS: Dict[str, dict] = {
    'voc': dict(dataset='voc2012_aug', train_split='train_aug',
                eval_split='val', num_classes=21, ignore_label=255,
                train_images=10_582, class_names=classes.VOC,
                label_ops='',
                max_image_side=500),
    'coco_stuff': dict(dataset='coco_stuff/10k', train_split='train',
                       eval_split='test', num_classes=182, ignore_label=255,
                       train_images=9_000, class_names=classes.COCO_STUFF,
                       label_ops='',
                       max_image_side=640),
    'coco_stuff_164k': dict(dataset='coco_stuff/164k', train_split='train',
                            eval_split='val', num_classes=182,
                            ignore_label=255, train_images=118_287,
                            class_names=classes.COCO_STUFF, label_ops='',
                            max_image_side=640),
    # ADE20K's label 0 ('other') is ignored; 1..150 become classes 0..149.
    'ade20k': dict(dataset='ade20k', train_split='train',
                   eval_split='validation', num_classes=150,
                   ignore_label=255, train_images=20_210,
                   class_names=classes.ADE20K[1:],
                   label_ops='remap_labels({0: 255}, shift=-1)',
                   max_image_side=1024),
    # The 59 most frequent classes + background (index 0); paper 002.
    'pascal_context': dict(dataset='pascal_context', train_split='train',
                           eval_split='val', num_classes=60,
                           ignore_label=None, train_images=4_998,
                           class_names=classes.PASCAL_CONTEXT, label_ops='',
                           max_image_side=500),
    # Pinned to 1.0.0: the demos' README numbers were measured on it.
    'semantic_shapes': dict(dataset='semantic_shapes/64:1.0.0',
                            train_split='train', eval_split='validation',
                            num_classes=7, ignore_label=None,
                            train_images=4_096,
                            class_names=classes.SEMANTIC_SHAPES,
                            label_ops='',
                            max_image_side=64),
    # 2.0.0: scene types decide every class's palette (feature `scene`).
    'semantic_scenes': dict(dataset='semantic_shapes/64:2.0.0',
                            train_split='train', eval_split='validation',
                            num_classes=7, ignore_label=None,
                            train_images=4_096,
                            class_names=classes.SEMANTIC_SHAPES,
                            label_ops='',
                            max_image_side=64,
                            num_scenes=3,
                            scene_names=classes.SEMANTIC_SCENES),
}


def _parts(dataset: str):
  """(builder name, version or '') of a tfds name 'name[/config][:version]'."""
  name, _, version = dataset.partition(':')
  return name.split('/')[0], version


def lookup(name: str) -> dict:
  """The entry of a catalog name ('voc') or a tfds name ('voc2012_aug',
  'semantic_shapes/64:2.0.0').

  A tfds name that is no entry's exactly (another build config such as
  '.../test', or no version) takes the first entry of its builder, of its
  version when it names one ('semantic_shapes/test:2.0.0' ->
  'semantic_scenes'; 'semantic_shapes/test' -> 'semantic_shapes').
  """
  if name in DATASETS:
    return DATASETS[name]
  for entry in DATASETS.values():
    if entry['dataset'] == name:
      return entry
  builder, version = _parts(name)
  same_builder = [e for e in DATASETS.values()
                  if _parts(e['dataset'])[0] == builder]
  for entry in same_builder:
    if version and _parts(entry['dataset'])[1] == version:
      return entry
  if same_builder:
    return same_builder[0]
  raise ValueError(f'unknown dataset {name!r}; known: {sorted(DATASETS)}')
