#!/usr/bin/env bash
# The two causal attention kernels against each other, forward + backward at GPT-2 small's heads
# (12 of width 64), T = 128 .. 1024, alternating within each round; medians and fused / materialised.
# With DTYPE=bf16 (or f16) the half paths, where the CPU has half GEMM units.
#
#   bash bench/attention_kernels.sh [OUT]   (OUT defaults to out/bench-attention; BATCH, ROUNDS,
#   THREADS, TILE, DTYPE, LENGTHS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-attention}
BATCH=${BATCH:-4}
ROUNDS=${ROUNDS:-7}
THREADS=${THREADS:-2}
TILE=${TILE:-64}
DTYPE=${DTYPE:-f32}
LENGTHS=${LENGTHS:-128 256 512 1024}
source bench/machine.sh
mkdir -p "$OUT"
(unset OPENBLAS_CORETYPE; print_machine build/frugal) | tee "$OUT/attention_kernels.$DTYPE.txt"
# shellcheck disable=SC2086  # the lengths are words
env -u OPENBLAS_CORETYPE build/attention_kernels --batch "$BATCH" --heads 12 --head-dim 64 --rounds "$ROUNDS" \
  --threads "$THREADS" --tile "$TILE" --dtype "$DTYPE" $LENGTHS | tee -a "$OUT/attention_kernels.$DTYPE.txt"
