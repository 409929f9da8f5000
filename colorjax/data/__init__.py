"""Input pipeline: preprocessing ops and grain loaders over tfds sources."""

from colorjax.data.pipeline import create_loader
from colorjax.data.pipeline import data_mesh
from colorjax.data.pipeline import data_source
from colorjax.data.pipeline import global_batches
from colorjax.data.pipeline import LoaderSpec
from colorjax.data.pipeline import make_global_array
