#!/usr/bin/env bash
# The whole test suite exactly as CI runs it (.ci/run calls this), with all
# of its set-up on a fresh machine: .venv, the test extras, chromium.
#
#   bash test.sh
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh --test
VENV=${VENV:-.venv}
"$VENV/bin/python" -m pytest -q
"$VENV/bin/python" -m pytest -q -m slow
