import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def rng():
  return np.random.default_rng(1234)


@pytest.fixture(scope='session')
def shapes_data_dir(tmp_path_factory):
  """A small semantic_shapes build (config 'test': 32x32) shared by tests."""
  from colorjax.datasets import semantic_shapes  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  config = semantic_shapes.SemanticShapesConfig(
      name='test', image_size=32, num_train=24, num_validation=8, num_test=0)
  builder = semantic_shapes.SemanticShapes(
      data_dir=data_dir, file_format='array_record', config=config)
  builder.download_and_prepare()
  return data_dir
