"""Every method and its ablations: the same data, budget and evaluation.

  python -m colorjax.compare --suite=demo [--seeds=N] [--images=N] \
      [--only=chromacmc,pixsem/embedding] [--output=DIR]
  python -m colorjax.compare --suite=demo --quick      # :tiny twins, minutes
  python -m colorjax.compare --suite=paper --data_dir=DIR --dry_run

The runs (`plan`), each in DIR/runs/<method>/<variant>/seed<S>:
  chromacmc       paper | no_segmentation (Table 2) | l2 (Table 3) |
                  cmc_lab (eq. 9's CMC term in Lab units, which leaves
                  the GAN term ~2,000x smaller: configs/chromacmc.py)
  scenecontext    regsoft | clasregsoft | segclasregsoft (paper; V-C)
  semanticdriven  segmentation (stage 1, GridNet; not a table row), then
                  paper (colorizer on GridNet's maps) | gt_maps (the same
                  colorizer scored under the ground-truth maps: an
                  evaluation-only workdir, see below) | no_instance_norm
  instanceaware   paper | no_classifier (Zhang et al.'s network alone)
  pixsem          embedding | semantic_embedding | semantic_generator
                  (paper) | feature_transform (Fig. 3's purple, +blue,
                  +green, feature transform)
from each config's `:demo` twin (`--quick`: `:tiny`; `--suite=paper`: the
paper-scale config), with `--config.*` overrides only (`--dry_run` prints
them as `python -m colorjax.main` commands).

Same budget: every run (each of SemanticDriven's two stages) trains on
`--images` images, `num_train_steps = ceil(images / data.batch_size)` of
its config's batch. Seeds: `--seeds=N` runs seeds 0..N-1
(`config.seed = config.data.seed = S`); the table shows mean ± sample
standard deviation over seeds. Demo suites switch the trainer's periodic
evaluations off (`eval_every_steps=0`; no demo schedule reads one): each
run is evaluated once at the end, by the suite.

One evaluation: the `suite` preset (below) for every run, on each config's
evaluation split, the first `max_images` images (demo 256, quick 16).
The model-input protocol ('model'): the demo images are 64x64, every demo
model's input too, so it is also the photos' own resolution; it is what
the trainer's evaluation and the README's ablation tables use, and under it
SemanticDriven can be fed ground-truth maps (the `semantic_map` op, as its
`val_gt_maps` evaluator). SceneContext's demo trains and is scored on
semantic_shapes 2.0.0 (scene types decide the palette), the others on
1.0.0: results are put side by side only within one evaluation dataset
(colorjax.compare refuses to mix protocols), so the table is split by
dataset. At paper scale 'model' means each config's own evaluation crop
(they differ between methods): compare across methods with
`--preset=full` there (no gt_maps row then; it needs the model protocol).

Also measured, per run, on the machine that ran it: training wall-clock
(the trainer's whole call: data, compilation, steps, checkpoints; stage 1
included for SemanticDriven's rows) and train images/s (median of the
logged steps/s windows after the first, which holds the compilation, x
batch); parameters (every network the method trains or holds); GFLOPs per
image of `predict` at batch 1 (XLA's cost analysis); and the latency of
the jitted `predict` on one validation image after two warm-up calls
(median). PixSem's `predict` samples with a `lax.scan`, whose body XLA's
cost analysis counts once, so its GFLOPs are those of the teacher-forced
forward pass (every chroma pixel at once: the work the cached sampler
spreads over its loop); the loop-once number is kept in suite_run.json.

Paper scale (`--suite=paper --data_dir=DIR`, not run in CI): the
datasets prepared in DIR (colorjax.datasets.prepare; SceneContext also its
scene soft labels, colorjax.datasets.scene_labels), the trainer's own
evaluation cadence kept (SceneContext's plateau schedule reads it), default
budget 1,058,200 images (100 epochs of VOC 2012 train_aug) and 5,000
evaluation images. Weights files go in with `--override=METHOD:KEY=VALUE`,
e.g. `--override=chromacmc:model.pretrained_branch=PATH`,
`--override=instanceaware:init_from.model.pretrained=eccv16:PATH`,
`--override=instanceaware:init_from.branch.pretrained=vgg16:PATH`.
SceneContext runs its stage 1 config only (not the cyclic stage 2).

Cost (`--dry_run --cost`): each training run's FLOPs from XLA's cost
analysis of its train step, lowered on abstract arrays at the config's
batch (nothing is allocated or compiled, so it runs on a laptop for the
paper configs), times its steps; and the device-hours that takes at a
device's dense bf16 peak (H100/H200: 989 TFLOP/s) and at an assumed
utilisation (ASSUMED_MFU, not a measurement). Data loading, evaluation,
checkpoints and compilation are not in it.

Resuming: a rerun skips a run whose training, evaluation and profile are
recorded (DIR/runs/.../suite_run.json and eval/<preset>/metrics.json); the
trainer resumes a run stopped midway from its last checkpoint.

Outputs in DIR: suite.md (the table, the command, date, machine), suite.csv
(every metric, mean and std per configuration), suite_runs.csv (every run),
suite.json, suite.png (the same validation images colorized by every run,
seed 0, one block per evaluation dataset).

The package, by job: `planning` (the methods, variants and budgets; `plan`
and its `Run`s), `execution` (train, evaluate and profile one run),
`cost` (training FLOPs before running), `report` (rows, tables, the
files), `figures` (the colorized images), `runner` (`run_suite`: all of
it in order). This module is its face: the names callers use, re-exported.
Results are read, checked and aggregated with colorjax.results.
"""

from colorjax.suite.cost import abstract_train_step
from colorjax.suite.cost import ASSUMED_MFU
from colorjax.suite.cost import COST_DEVICE
from colorjax.suite.cost import train_cost
from colorjax.suite.execution import auxiliary_heads
from colorjax.suite.execution import execute
from colorjax.suite.execution import profile
from colorjax.suite.execution import train_images_per_s
from colorjax.suite.figures import figure
from colorjax.suite.figures import figure_images
from colorjax.suite.figures import FIGURE_IMAGES
from colorjax.suite.planning import apply_overrides
from colorjax.suite.planning import DEFAULT_EVAL_IMAGES
from colorjax.suite.planning import DEFAULT_IMAGES
from colorjax.suite.planning import LATENCY_CALLS
from colorjax.suite.planning import Method
from colorjax.suite.planning import METHOD_NAMES
from colorjax.suite.planning import METHODS
from colorjax.suite.planning import model_resolution
from colorjax.suite.planning import parse_only
from colorjax.suite.planning import plan
from colorjax.suite.planning import REPO
from colorjax.suite.planning import Run
from colorjax.suite.planning import RUN_RECORD
from colorjax.suite.planning import SUITE_PRESET
from colorjax.suite.planning import SUITES
from colorjax.suite.planning import Variant
from colorjax.suite.report import COLUMNS
from colorjax.suite.report import group_rows
from colorjax.suite.report import machine
from colorjax.suite.report import run_row
from colorjax.suite.report import tables
from colorjax.suite.report import write_outputs
from colorjax.suite.runner import run_suite
