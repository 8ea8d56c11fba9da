#!/usr/bin/env bash
# The fused LM head + cross-entropy against the unfused kernels (a tied Linear, the loss over all
# (N, V) logits, the Linear's backward) and across chunk sizes, at GPT-2 small's head (D = 768,
# V = 50,257) for one sequence of 1024 rows, alternating in one run; medians.
#
#   bash bench/lm_head.sh   (BIN defaults to build/lm_head_kernels; ROWS, DIM, VOCAB, ROUNDS, THREADS, CHUNKS)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/lm_head_kernels}
source bench/machine.sh
(unset OPENBLAS_CORETYPE; print_machine "${FRUGAL:-build/frugal}")
# shellcheck disable=SC2086
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS="${THREADS:-2}" "$BIN" "${ROWS:-1024}" "${DIM:-768}" "${VOCAB:-50257}" \
  "${ROUNDS:-3}" ${CHUNKS:-64 128 256 512 1024}
