#!/usr/bin/env bash
# fp32 vs fp16 vs bf16 on DESIGN.md's reference workload: activation bytes, total training memory
# (with the fp32 master copy), memory at the peak by category, step time. Alternates the runs
# ROUNDS times and prints medians and ratios to fp32.
#
#   bash bench/mixed_precision_reference.sh [OUT]   (OUT defaults to out/bench-mp; FRUGAL, ROUNDS, STEPS, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-mp}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-8}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
print_machine "$FRUGAL"
for ((i = 1; i <= ROUNDS; i++)); do
  for p in fp32 fp16 bf16; do
    "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic \
      --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0 \
      --steps "$STEPS" --threads "$THREADS" --precision "$p" --summary "$OUT/$p.run$i.json" > "$OUT/$p.run$i.log" 2>&1
  done
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = {p: [json.load(open(f"{out}/{p}.run{i}.json")) for i in range(1, rounds + 1)] for p in ("fp32", "fp16", "bf16")}
med = lambda p, f: statistics.median(f(r) for r in runs[p])
mib = lambda b: f"{b / 2**20:.1f} MiB"
cats = ("params", "master_params", "grads", "optimizer", "activations", "workspace")
print("| precision | activations (peak) | total (peak) | at the peak: " + " | ".join(cats) + " | step time |")
print("|---|---:|---:|" + "---:|" * len(cats) + "---:|")
for p in runs:
    r = runs[p][0]
    print(f"| {p} | {mib(r['memory']['activations'])} | {mib(r['memory']['total'])} | " +
          " | ".join(mib(r['memory_at_peak'][c]) for c in cats) + f" | {med(p, lambda r: r['step_time_s']):.3f} s |")
print()
f32 = runs["fp32"][0]["memory"]
for p in ("fp16", "bf16"):
    m = runs[p][0]["memory"]
    t = med(p, lambda r: r["step_time_s"]) / med("fp32", lambda r: r["step_time_s"])
    print(f"{p}/fp32: activations {m['activations'] / f32['activations']:.3f}, total {m['total'] / f32['total']:.3f}, "
          f"step time {t:.2f}")
PY
