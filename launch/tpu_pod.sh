#!/bin/bash
# Training on a Cloud TPU pod slice: the same command on every host.
#   launch/tpu_pod.sh TPU_NAME ZONE configs/chromacmc.py gs://bucket/workdir
# The workdir must be on storage all hosts share (GCS works with orbax).
set -euo pipefail
TPU=${1:?TPU name}; ZONE=${2:?zone}; CONFIG=${3:?config}; WORKDIR=${4:?workdir}
shift 4
gcloud compute tpus tpu-vm ssh "${TPU}" --zone="${ZONE}" --worker=all \
  --command="cd colorjax && python -m colorjax.main --config=${CONFIG} \
  --workdir=${WORKDIR} --multihost $*"
