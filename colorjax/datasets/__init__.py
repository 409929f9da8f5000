"""tfds builders: real layouts read from manual_dir, plus semantic_shapes.

Importing this package registers the builders, so that
`tfds.data_source('voc2012_aug', data_dir=...)` finds them.
"""

from colorjax.datasets.ade20k import Ade20k
from colorjax.datasets.base import ManualDataError
from colorjax.datasets.coco_stuff import CocoStuff
from colorjax.datasets.pascal_context import PascalContext
from colorjax.datasets.semantic_shapes import SemanticShapes
from colorjax.datasets.voc2012_aug import Voc2012Aug
