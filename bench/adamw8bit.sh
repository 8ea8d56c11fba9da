#!/usr/bin/env bash
# 8-bit AdamW against AdamW on the demo GPT (`frugal train` with no flags: 1,200 steps on the fortunes
# text): final loss, the mean of the last 100 step losses, optimizer bytes and step time, for each
# quantisation block size in BLOCKS. Exits 1 when the 8-bit run at the default block ends more than 1%
# above AdamW (mean of the last 100 losses) or holds more than 0.27x AdamW's optimizer bytes.
#
#   bash bench/adamw8bit.sh [OUT]     (OUT defaults to out/bench-adamw8bit; FRUGAL, BLOCKS, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-adamw8bit}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
BLOCKS=${BLOCKS:-256 2048}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
print_machine "$FRUGAL"
"$FRUGAL" train --threads "$THREADS" --optimizer adamw --summary "$OUT/adamw.json" > "$OUT/adamw.log" 2>&1
for block in $BLOCKS; do
  "$FRUGAL" train --threads "$THREADS" --optimizer adamw8bit --optimizer-block "$block" \
    --summary "$OUT/adamw8bit-$block.json" > "$OUT/adamw8bit-$block.log" 2>&1
done
/usr/bin/python3 - "$OUT" $BLOCKS <<'PY'
import json, sys
out, blocks = sys.argv[1], sys.argv[2:]
runs = {"adamw": json.load(open(f"{out}/adamw.json"))}
for b in blocks:
    runs[f"adamw8bit-{b}"] = json.load(open(f"{out}/adamw8bit-{b}.json"))
tail = lambda r: sum(r["losses"][-100:]) / len(r["losses"][-100:])
base = runs["adamw"]
print("| optimizer | final loss | mean of last 100 | vs AdamW | optimizer bytes | vs AdamW | step time |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, r in runs.items():
    print(f"| {name} | {r['final_loss']:.4f} | {tail(r):.4f} | {tail(r) / tail(base):.4f} | "
          f"{r['memory']['optimizer']:,} | {r['memory']['optimizer'] / base['memory']['optimizer']:.3f} | "
          f"{r['step_time_s'] * 1e3:.1f} ms |")
default = runs.get("adamw8bit-256")
if default is None:
    sys.exit(0)
loss_ok = tail(default) <= 1.01 * tail(base)
bytes_ok = default["memory"]["optimizer"] <= 0.27 * base["memory"]["optimizer"]
print(f"8-bit (block 256) loss within 1%: {'met' if loss_ok else 'MISSED'}; optimizer bytes <= 0.27x: "
      f"{'met' if bytes_ok else 'MISSED'}")
sys.exit(0 if loss_ok and bytes_ok else 1)
PY
