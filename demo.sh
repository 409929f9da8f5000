#!/usr/bin/env bash
# The main job on the embedded default, with all of its set-up on a fresh
# machine: ChromaCMC (paper 000) shrunk to the embedded semantic_shapes
# dataset -- trains, evaluates, colorizes the bundled photos (docs/photos/)
# and says where everything went. About 5 minutes on a 2-core CPU.
#
#   bash demo.sh [WORKDIR [--config.KEY=VALUE ...]]     (default runs/demo)
#
# Running it again resumes from WORKDIR's checkpoint (nothing left to train).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
PY="${VENV:-.venv}/bin/python"
WORKDIR=${1:-runs/demo}
shift || true
"$PY" -m colorjax.main --config=configs/chromacmc.py:demo --workdir="$WORKDIR" "$@"
echo
"$PY" -m colorjax.evaluate --workdir="$WORKDIR" --print=markdown
"$PY" -m colorjax.colorize --workdir="$WORKDIR" --input=docs/photos \
    --output="$WORKDIR/colorized"
cat <<DONE

Everything is in $WORKDIR/:
  checkpoints/          the model (resume: run the same command again)
  metrics.jsonl         training and evaluation numbers, one JSON per log step
  samples/              gray | prediction | truth | segmentation, per evaluation
  eval/default/         evaluate's results (metrics.json, metrics.md, plots)
  colorized/            the bundled photos (docs/photos/) colorized
TensorBoard: $PY -m tensorboard.main --logdir=$WORKDIR (with the test extras)
DONE
