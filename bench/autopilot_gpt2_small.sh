#!/usr/bin/env bash
# The memory-budget autopilot at GPT-2 small's shape (12 layers, 768 wide, 12 heads, context 1024,
# vocabulary 50,257), BATCH samples per optimizer step: from the smallest feasible budget (micro-batch
# 1, memory-poor) to 4x it, `frugal train --memory-budget` runs STEPS steps of its choice; the table
# shows the choice, its planned and measured ledger peak, the process's peak RSS against the budget,
# and the predicted and measured step time.
#
#   bash bench/autopilot_gpt2_small.sh [OUT]   (OUT defaults to out/bench-autopilot-gpt2; FRUGAL, BATCH, STEPS, FACTORS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-autopilot-gpt2}
FRUGAL=${FRUGAL:-build/frugal}
BATCH=${BATCH:-4}
STEPS=${STEPS:-4}
FACTORS=${FACTORS:-1 1.5 2 4}
source bench/machine.sh
mkdir -p "$OUT"
print_machine "$FRUGAL"
MODEL=(--arch gpt --layers 12 --dim 768 --heads 12 --ctx 1024 --vocab 50257 --data synthetic --threads 2)
smallest=$("$FRUGAL" plan "${MODEL[@]}" --micro-batch 1 --accum "$BATCH" --checkpoint memory-poor --json |
           /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["predicted_memory"]["total"])')
echo "smallest feasible budget (micro-batch 1, memory-poor): $smallest bytes"
for f in $FACTORS; do
  budget=$(/usr/bin/python3 -c "print(int($smallest * $f))")
  "$FRUGAL" train "${MODEL[@]}" --batch-size "$BATCH" --memory-budget "$budget" --steps "$STEPS" \
    --summary "$OUT/x$f.json" > "$OUT/x$f.log" 2>&1
done
/usr/bin/python3 - "$OUT" "$smallest" $FACTORS <<'PY'
import json, re, sys
out, smallest, factors = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
MiB = 2**20
print("| budget | choice | ledger peak (plan = measured) | peak RSS | RSS - budget | predicted step | measured step |")
print("|---|---|---:|---:|---:|---:|---:|")
for f in factors:
    s = json.load(open(f"{out}/x{f}.json"))
    choice = re.search(r"memory budget \S+: (.*?) \(predicted", open(f"{out}/x{f}.log").read()).group(1)
    budget = s["memory_limit"]
    equal = "=" if s["memory"]["total"] == s["predicted_memory"]["total"] else "!="
    print(f"| {f}x = {budget / MiB:.1f} MiB | {choice} | {s['memory']['total'] / MiB:.1f} MiB ({equal}) | "
          f"{s['peak_rss_bytes'] / MiB:.1f} MiB | {(s['peak_rss_bytes'] - budget) / MiB:+.1f} MiB | "
          f"{s['predicted_step_time_s']:.2f} s | {s['step_time_s']:.2f} s |")
PY
