"""Input pipeline: preprocessing ops and grain loaders over tfds sources."""

from colorjax.data.pipeline import create_loader
from colorjax.data.pipeline import data_source
from colorjax.data.pipeline import LoaderSpec
from colorjax.sharding import data_mesh
from colorjax.sharding import global_batches
