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
    'semantic_shapes': dict(dataset='semantic_shapes/64',
                            train_split='train', eval_split='validation',
                            num_classes=7, ignore_label=None,
                            train_images=4_096,
                            class_names=classes.SEMANTIC_SHAPES,
                            label_ops='',
                            max_image_side=64),
}


def lookup(name: str) -> dict:
  """The entry of a catalog name ('voc') or a tfds name ('voc2012_aug')."""
  if name in DATASETS:
    return DATASETS[name]
  for entry in DATASETS.values():
    if entry['dataset'] == name or entry['dataset'].split('/')[0] == name:
      return entry
  for entry in DATASETS.values():   # another build config ('.../test')
    if entry['dataset'].split('/')[0] == name.split('/')[0]:
      return entry
  raise ValueError(f'unknown dataset {name!r}; known: {sorted(DATASETS)}')
