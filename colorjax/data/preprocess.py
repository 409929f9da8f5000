"""Preprocessing: the face of the op registry and every op.

A pipeline is written as in big_vision, e.g.
    "resize_short(286)|random_crop(256)|flip|equalize_l|to_lab|normalize_lab"
Each op is a grain transform acting on the example dict. Ops that change the
geometry treat `image` and `segmentation` together (nearest neighbour for
labels), so the two always stay aligned. Random ops draw from the
per-record numpy Generator grain hands them, which makes every epoch
reproducible and resumable from the iterator state.

All ops run on the host in numpy/PIL: JAX is never called inside the
(forked) data workers.

The ops live by topic in geometry_ops, lab_ops and target_ops; each
names the keys it reads and writes, so a source without labels (a photo
folder) can drop the label ops (`without_unavailable`).
"""

from colorjax import console
# The registry and parser (colorjax.data.registry); the op modules register
# their ops with it on import.
from colorjax.data import geometry_ops  # pylint: disable=unused-import
from colorjax.data import lab_ops  # pylint: disable=unused-import
from colorjax.data import target_ops  # pylint: disable=unused-import
from colorjax.data.registry import apply
from colorjax.data.registry import Example
from colorjax.data.registry import Keep
from colorjax.data.registry import parse
from colorjax.data.registry import register
from colorjax.data.registry import without_unavailable

__all__ = ['apply', 'Example', 'Keep', 'parse', 'register',
           'without_unavailable']

# grain's worker processes import this module: keep them as quiet as the
# main process (colorjax.console).
console.apply_quiet_from_env()
