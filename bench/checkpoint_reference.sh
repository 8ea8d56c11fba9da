#!/usr/bin/env bash
# sqrt checkpointing vs store-all on DESIGN.md's reference workload, frugal and PyTorch
# (torch.utils.checkpoint over about sqrt(n) segments, bench/pytorch_reference.py --checkpoint sqrt).
# Alternates the four runs ROUNDS times and prints medians: step time, frugal's ledger activation
# peak, peak RSS, and each program's sqrt/store-all step-time ratio.
#
#   bash bench/checkpoint_reference.sh [OUT]     (OUT defaults to out/bench-checkpoint; FRUGAL, ROUNDS, STEPS, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-checkpoint}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-8}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
print_machine "$FRUGAL"
for ((i = 1; i <= ROUNDS; i++)); do
  for strategy in store-all sqrt; do
    "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic \
      --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0 \
      --steps "$STEPS" --threads "$THREADS" --checkpoint "$strategy" --summary "$OUT/frugal-$strategy.run$i.json" \
      > "$OUT/frugal-$strategy.run$i.log" 2>&1
  done
  for mode in none sqrt; do
    /usr/bin/python3 bench/pytorch_reference.py --steps "$STEPS" --threads "$THREADS" --checkpoint "$mode" \
      --json "$OUT/pytorch-$mode.run$i.json" > "$OUT/pytorch-$mode.run$i.log" 2>&1
  done
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def med(name, key, sub=None):
    vals = []
    for i in range(1, rounds + 1):
        d = json.load(open(f"{out}/{name}.run{i}.json"))
        vals.append(float(d[key][sub] if sub else d[key]))
    return statistics.median(vals)
mib = lambda b: f"{b / 2**20:.0f} MiB"
rows = []
for label, name, act in (("frugal store-all", "frugal-store-all", True), ("frugal sqrt", "frugal-sqrt", True),
                         ("PyTorch no checkpointing", "pytorch-none", False), ("PyTorch checkpoint (sqrt)", "pytorch-sqrt", False)):
    t = med(name, "step_time_s")
    a = mib(med(name, "memory", "activations")) if act else "n/a"
    rss = med(name, "peak_rss_bytes")
    base = "" if act else f" (before model: {mib(med(name, 'baseline_rss_bytes'))})"
    rows.append((label, t, a, mib(rss) + base))
print(f"| run | step time | activations (ledger peak) | peak RSS |")
print("|---|---:|---:|---:|")
for label, t, a, rss in rows:
    print(f"| {label} | {t:.3f} s | {a} | {rss} |")
print()
print(f"sqrt / store-all step time: frugal {rows[1][1] / rows[0][1]:.2f}x, PyTorch {rows[3][1] / rows[2][1]:.2f}x")
PY
