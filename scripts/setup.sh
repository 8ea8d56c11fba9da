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
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
