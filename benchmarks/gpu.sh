#!/usr/bin/env bash
# The GPU benchmark in one command (BENCHMARKS.md, "GPU"):
#   bash benchmarks/gpu/wheels.sh          # here, once: the wheel bundle (.whl/)
#   bash benchmarks/gpu.sh OUTDIR          # on the GPU machine, < 8 minutes
#   bash benchmarks/gpu.sh OUTDIR --cpu    # tiny twins on the CPU (CI runs it)
# Every method's train step (bf16 and f32) against its PyTorch peer, PixSem's
# sampling latency, the input pipeline; JSON and summary.md into OUTDIR.
# On a machine without colorjax's dependencies it installs the bundle from
# .whl/ (pip --no-index --target, no network) and runs colorjax from this
# checkout without installing it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash benchmarks/gpu.sh OUTDIR [--cpu] [--budget_s=S] [--only=RUNS]" >&2
  exit 2
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import grain, tensorflow_datasets, ml_collections, clu, tensorboardX' 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "colorjax's dependencies are missing and there is no wheel bundle in .whl/:" >&2
    echo "run 'bash benchmarks/gpu/wheels.sh' where pip reaches the registry, then carry .whl/" >&2
    exit 2
  fi
  site=${COLORJAX_SITE:-/tmp/colorjax_site}
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# JAX and the PyTorch peer take turns on one GPU: no up-front 75% grab.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONUNBUFFERED=1
exec "$python" benchmarks/gpu/run.py "$@"
