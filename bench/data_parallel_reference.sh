#!/usr/bin/env bash
# 1 rank vs 2 ranks (mpirun, 1 thread each) on DESIGN.md's reference workload: step time, bytes each
# rank hands to collectives per step, and the time spent in the gradient allreduce. The 2-rank run
# keeps the per-rank micro-batch, so it trains on twice the samples per step (weak scaling); the
# third run uses --accum 2 on one rank for the same samples per step as 2 ranks.
#
#   bash bench/data_parallel_reference.sh [OUT]   (OUT defaults to out/bench-dp; FRUGAL, MPIRUN, ROUNDS, STEPS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-dp}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
MPIRUN=${MPIRUN:-mpirun}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-6}
MPI=("$MPIRUN" --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
mkdir -p "$OUT"
print_machine "$FRUGAL"
ARGS=(train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic --micro-batch 16
      --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0 --steps "$STEPS" --threads 1)
for ((i = 1; i <= ROUNDS; i++)); do
  OMP_NUM_THREADS=1 "$FRUGAL" "${ARGS[@]}" --summary "$OUT/r1.run$i.json" > /dev/null 2>&1
  OMP_NUM_THREADS=1 "$FRUGAL" "${ARGS[@]}" --accum 2 --summary "$OUT/r1a2.run$i.json" > /dev/null 2>&1
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 "$FRUGAL" "${ARGS[@]}" --summary "$OUT/r2.run$i.json" > /dev/null 2>&1
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
names = {"r1": "1 rank", "r1a2": "1 rank, --accum 2", "r2": "2 ranks (mpirun -np 2)"}
runs = {k: [json.load(open(f"{out}/{k}.run{i}.json")) for i in range(1, rounds + 1)] for k in names}
med = lambda k, f: statistics.median(f(r) for r in runs[k])
print("| run | samples per step | step time | tokens/s | bytes per rank per step | allreduce time per step |")
print("|---|---:|---:|---:|---:|---:|")
for k, name in names.items():
    r = runs[k][0]
    samples = 16 * (2 if k != "r1" else 1)
    print(f"| {name} | {samples} | {med(k, lambda r: r['step_time_s']):.3f} s | {med(k, lambda r: r['tokens_per_s']):,.0f} | "
          f"{r['communicated_bytes_per_step'] / 2**20:.1f} MiB | {med(k, lambda r: r['communication_s']) * 1e3:.1f} ms |")
PY
