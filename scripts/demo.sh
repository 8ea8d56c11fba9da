#!/usr/bin/env bash
# README command 1: install, build, run the built-in demo (a small GPT on the fortunes text).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/frugal train "$@"
