#!/bin/bash
# N JAX processes on one machine (what tests/test_train.py does with 2):
# useful to rehearse a multi-host run before going to a cluster.
#   launch/local_processes.sh 2 configs/chromacmc.py:demo /tmp/workdir
set -euo pipefail
N=${1:?number of processes}; CONFIG=${2:?config}; WORKDIR=${3:?workdir}
shift 3
PORT=${PORT:-12355}
for ((i = 0; i < N; i++)); do
  python -m colorjax.main --config="${CONFIG}" --workdir="${WORKDIR}" \
    --coordinator_address="localhost:${PORT}" --num_processes="${N}" \
    --process_id="${i}" "$@" &
done
wait
