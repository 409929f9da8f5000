#!/usr/bin/env bash
# Builds the wheel bundle the GPU benchmark installs on a machine with no
# network (benchmarks/gpu.sh installs it with pip --no-index --target):
#   bash benchmarks/gpu/wheels.sh [DIR]      (default: .whl, git-ignored)
# One command from a clean checkout; needs pip and the package registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.whl}
here=benchmarks/gpu
mkdir -p "$dir"
rm -f "$dir"/*.whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux2010_x86_64 \
         manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
mapfile -t pins < <(grep -v '^#' "$here/wheels.txt" | sed '/^$/d')
binary=() source=()
for pin in "${pins[@]}"; do
  case "$pin" in promise==*) source+=("$pin") ;; *) binary+=("$pin") ;; esac
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d "$dir" "${binary[@]}"
# Pure-Python sdists: a wheel built here runs on any Python 3.
python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dir" "${source[@]}"
python3 "$here/check_bundle.py" "$dir" "$here/image_packages.txt"
du -sh "$dir"
