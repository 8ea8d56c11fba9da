#!/usr/bin/env bash
# README command 2: install, build, run every test (unit tests and PyTorch parity) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j 2 "$@"
