#!/usr/bin/env bash
# The whole test suite exactly as CI runs it (.ci/run calls this), with all
# of its set-up on a fresh machine: .venv, the test extras, chromium.
#
#   bash test.sh
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh --test
VENV=${VENV:-.venv}
# The fast and the slow tests (`-m slow`: the demos as users run them) in
# one run on both cores: the slow ones start first (tests/conftest.py), the
# fast ones fill the other core. `-m release` (the whole quick comparison
# suite, which faster tests cover) is left out.
"$VENV/bin/python" -m pytest -q -m 'not release'
