#!/usr/bin/env bash
# Sets colorjax up in a virtual environment, from a fresh machine.
#
#   bash setup.sh          # what a run needs: .venv with `pip install -e .`
#   bash setup.sh --test   # also what the tests need: the test extras, timm,
#                          # Debian's chromium + chromium-driver (editor tests)
#
# The environment is .venv beside this file (VENV=DIR to choose another;
# PYTHON=python3.12 for another interpreter). Re-running it is quick and
# changes nothing that is already in place. demo.sh and test.sh call it.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TEST=0
case "${1:-}" in
  --test) TEST=1 ;;
  '') ;;
  *) echo "usage: bash setup.sh [--test]" >&2; exit 2 ;;
esac

say() { echo "setup: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {   # Debian packages, installed only where missing
  if ! command -v apt-get >/dev/null; then
    echo "setup: install $* with your system's package manager" >&2; exit 2
  fi
  say "apt-get install $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: colorjax needs Python >= 3.10 ($PYTHON: $("$PYTHON" --version 2>&1 || echo missing)); set PYTHON=..." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  # Debian's system Python refuses global pip installs and ships venv apart.
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    minor=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python$minor-venv"
    "$PYTHON" -m venv "$VENV"
  fi
  say "created the virtual environment $VENV ($("$VENV/bin/python" --version))"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

say "installing colorjax and what it runs on (pip install -e .)"
"${PIP[@]}" -e .

if [ "$TEST" = 1 ]; then
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver
  fi
  # PyTorch is a test oracle and benchmark peer only, and must be the CPU
  # build: a plain `pip install torch` on Linux takes a CUDA build of
  # several GB. A CPU wheel already on this machine (pip's find-links)
  # first, alone (--no-deps: its dependencies are ordinary packages from
  # the usual index, installed next); else PyTorch's CPU index (TORCH_INDEX
  # to use a mirror). Asking an unreachable index costs pip five retries
  # per package, so the index is only asked when no local wheel exists.
  if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    say "installing torch 2.13.0, CPU build"
    if "${PIP[@]}" --no-index --no-deps 'torch==2.13.0+cpu' 2>/dev/null; then
      "${PIP[@]}" torch==2.13.0           # its dependencies
    else
      "${PIP[@]}" torch==2.13.0 --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    fi
  fi
  if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.version.cuda is not None)'; then
    echo "setup: torch is a CUDA build; the tests need the CPU build (pip uninstall torch, then TORCH_INDEX=<a CPU wheel index> bash setup.sh --test)" >&2
    exit 2
  fi
  say "installing the test extras (pip install -e .[test])"
  "${PIP[@]}" -e '.[test]'
  # timm's torchvision requirement would pull CUDA builds of torch; the
  # tests import it behind benchmarks/torchvision_stub.py instead.
  "${PIP[@]}" --no-deps timm==1.0.31
fi
say "ready: $VENV ($("$VENV/bin/python" -c 'import jax; print("jax", jax.__version__)'))"
