"""Scene soft labels (paper 001 section III-B2): the stored top-5 equal a
PyTorch Places365 teacher's, and the pipeline joins them by example id."""

import numpy as np
import pytest
import torch

from colorjax.data import joins
from colorjax.data import pipeline
from colorjax.data import preprocess
from colorjax.datasets import scene_labels
from colorjax.models import imagenet
from test_pretrained import _reference


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
  """A random-weight torchvision ResNet-50 with a Places365 (365) head."""
  model = _reference('resnet50', num_classes=365, seed=3)
  path = str(tmp_path_factory.mktemp('teacher') / 'resnet50_places365.pth')
  torch.save(model.state_dict(), path)
  return model, path


def test_stored_top5_equal_the_torch_teacher_and_join_by_id(shapes_data_dir,
                                                             teacher):
  model, path = teacher
  dataset, split = 'semantic_shapes/test', 'validation'
  with pytest.raises(joins.MissingSceneLabelsError,
                     match='python -m colorjax.datasets.scene_labels'):
    pipeline.data_source(dataset, split, shapes_data_dir, ('scene_labels',))
  scene_labels.compute(dataset, split, f'resnet50:{path}', shapes_data_dir,
                       batch_size=4, progress=False)
  table = joins.load(dataset, split, shapes_data_dir)

  source = pipeline.data_source(dataset, split, shapes_data_dir)
  ops = preprocess.parse(scene_labels.TEACHER_PREPROCESS)
  assert len(table.ids) == len(source) == 8
  for index in range(len(source)):
    example = source[index]
    rgb = preprocess.apply(ops, example)['rgb']
    x = (rgb - imagenet.IMAGENET_MEAN) / imagenet.IMAGENET_STD
    with torch.no_grad():
      probs = torch.softmax(model(torch.tensor(x.transpose(2, 0, 1)[None])),
                            -1)[0].numpy()
    top = np.argsort(-probs)[:5]
    expected = probs[top] / probs[top].sum()
    example_id = example['id']
    example_id = (example_id.decode() if isinstance(example_id, bytes)
                  else str(example_id))
    row = list(table.ids).index(example_id)
    np.testing.assert_array_equal(table.classes[row], top)
    np.testing.assert_allclose(table.probs[row], expected, rtol=1e-4,
                               atol=1e-6)
    dense = table.dense(example_id)
    assert dense.shape == (365,) and abs(dense.sum() - 1.0) < 1e-5
    np.testing.assert_allclose(dense[top], expected, rtol=1e-4, atol=1e-6)

  # The loader joins them: `scene` of every example, whatever the order.
  spec = pipeline.LoaderSpec(
      dataset=dataset, split=split, global_batch_size=4,
      preprocess='resize(32)|to_lab', data_dir=shapes_data_dir, shuffle=True,
      num_epochs=1, drop_remainder=False, joins=('scene_labels',),
      keys=('scene', 'id'))
  for batch in pipeline.create_loader(spec):
    for example_id, scene in zip(batch['id'], batch['scene']):
      example_id = (example_id.decode() if isinstance(example_id, bytes)
                    else str(example_id))
      np.testing.assert_array_equal(scene, table.dense(example_id))


def test_top_k_renormalised():
  logits = np.log(np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02]]))
  classes, probs = scene_labels.top_k_renormalised(logits)
  np.testing.assert_array_equal(np.asarray(classes)[0][:2], [0, 1])
  np.testing.assert_allclose(np.asarray(probs)[0],
                             np.array([0.5, 0.2, 0.1, 0.1, 0.05]) / 0.95,
                             rtol=1e-5)
