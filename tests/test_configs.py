"""Every paper config and its CPU twins build from the shared config_lib."""

import importlib

import pytest

from colorjax import config_lib

PAPER_VARIANTS = {
    'chromacmc': {'voc': 'voc', 'ade20k': 'ade20k'},
    'pixsem': {'voc': 'voc', 'coco_stuff': 'coco_stuff'},
    'instanceaware': {'voc': 'voc'},
    'scenecontext': {'coco': 'coco_stuff_164k',
                     'coco_cyclic': 'coco_stuff_164k'},
    'semanticdriven': {'segmentation': 'pascal_context',
                       'colorization': 'pascal_context'},
}
# Training length of each paper config (each config's docstring says why).
EPOCHS = {'chromacmc': 100, 'pixsem': 100, 'instanceaware': 30,
          'scenecontext': 20, ('scenecontext', 'coco_cyclic'): 16,
          'semanticdriven': 1000}


# Paper presets that train on another split than the table's (the config's
# docstring says why): (split, images).
TRAIN_SPLITS = {('semanticdriven', 'segmentation'): ('train+val', 10_103),
                ('semanticdriven', 'colorization'): ('train+val', 10_103)}


@pytest.mark.parametrize('paper,variant,dataset', [
    (paper, variant, dataset) for paper, variants in PAPER_VARIANTS.items()
    for variant, dataset in variants.items()])
def test_paper_configs_use_the_shared_dataset_table(paper, variant, dataset):
  config = importlib.import_module(paper).get_config(variant)
  entry = config_lib.DATASETS[dataset]
  assert config.method == paper
  assert config.data.dataset == entry['dataset']
  split, images = TRAIN_SPLITS.get((paper, variant), (
      entry['train_split'], entry['train_images']))
  assert (config.data.train_split, config.data.eval_split) == (
      split, entry['eval_split'])
  assert config.data.train_images == images
  assert config.data.num_classes == entry['num_classes']
  assert config.data.ignore_label == entry['ignore_label']
  # EPOCHS[paper] epochs, the last partial epoch's batch included.
  epochs = config.num_train_steps * config.data.batch_size / images
  expected = EPOCHS.get((paper, variant), EPOCHS[paper])
  assert expected <= epochs < expected + config.data.batch_size / images


@pytest.mark.parametrize('paper', sorted(PAPER_VARIANTS))
@pytest.mark.parametrize('twin', ['demo', 'tiny'])
def test_cpu_twins_run_on_semantic_shapes(paper, twin):
  module = importlib.import_module(paper)
  config = module.get_config(twin)
  assert config.data.dataset.startswith('semantic_shapes')
  assert config.data.ignore_label is None
  assert config.data.image_size == (32 if twin == 'tiny' else 64)
  assert config.num_train_steps < 1_000
  # The twin differs from the paper config only in sizes, not in keys.
  assert set(config.keys()) == set(module.get_config().keys())
  assert set(config.data.keys()) == set(module.get_config().data.keys())


def test_unknown_names_are_rejected():
  with pytest.raises(ValueError, match='unknown dataset'):
    config_lib.base_config('pixsem', 'imagenet', 128, 128.0)
  with pytest.raises(ValueError, match='unknown pixsem variant'):
    importlib.import_module('pixsem').get_config('imagenet')
