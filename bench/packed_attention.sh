#!/usr/bin/env bash
# Packing's cost in the fused attention kernel (issue 34): 8 examples of 128 tokens in one row of 1024
# against 8 rows of 128, GPT-2 small's heads (12 of 64), forward + backward, 1 and 2 threads.
# Figures: docs/BENCHMARKS.md "Packing".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh > /dev/null
lscpu | grep "Model name"
for threads in 1 2; do
  OMP_NUM_THREADS=$threads ./build/packed_attention --examples 8 --length 128 --threads "$threads" --rounds 15
  OMP_NUM_THREADS=$threads ./build/packed_attention --examples 4 --length 200 --threads "$threads" --rounds 15
done
