#!/usr/bin/env bash
# Gradient accumulation on DESIGN.md's reference workload: an optimizer batch of 16 sequences run as
# K micro-batches of 16/K (K = 1, 2, 4, 8). Prints a markdown table of activation and total memory
# (ledger peaks from --summary), median step time, and the largest relative difference of the
# first 5 losses from K = 1.
#
#   bash bench/accumulation.sh [OUT]        (OUT defaults to out/bench-accum; FRUGAL, THREADS, STEPS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-accum}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
THREADS=${THREADS:-2}
STEPS=${STEPS:-8}
mkdir -p "$OUT"
print_machine "$FRUGAL"
for K in 1 2 4 8; do
  "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic \
    --micro-batch $((16 / K)) --accum "$K" --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant \
    --clip-grad-norm 0 --steps "$STEPS" --threads "$THREADS" --summary "$OUT/k$K.json" > "$OUT/k$K.log" 2>&1
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
runs = {k: json.load(open(f"{out}/k{k}.json")) for k in (1, 2, 4, 8)}
base = runs[1]
mib = lambda b: f"{b / 2**20:.1f} MiB"
print("| K | micro-batch | activations | total (ledger peak) | activations vs K=1 | step time | max rel. diff of losses 1-5 vs K=1 |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for k, r in runs.items():
    diff = max(abs(a - b) / abs(b) for a, b in zip(r["losses"][:5], base["losses"][:5]))
    ratio = base["memory"]["activations"] / r["memory"]["activations"]
    print(f"| {k} | {16 // k} | {mib(r['memory']['activations'])} | {mib(r['memory']['total'])} | "
          f"1/{ratio:.2f} | {r['step_time_s']:.3f} s | {diff:.1e} |")
PY
