#!/usr/bin/env bash
# README command 2: install, build, run every test (unit tests, PyTorch parity, resume after a kill,
# MPI data parallelism) through CTest; then build the suite with AddressSanitizer + UBSan
# (CMakePresets.json "sanitize", build-sanitize/) and run it again there.
# FRUGAL_SKIP_SANITIZE=1 skips the second build (about 8 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j 2 "$@")
if [ "${FRUGAL_SKIP_SANITIZE:-0}" != 1 ]; then
  cmake --preset sanitize > /dev/null
  cmake --build --preset sanitize -j "$(nproc)"
  (cd build-sanitize && ctest --output-on-failure -j 2 "$@")
fi
