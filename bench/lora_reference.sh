#!/usr/bin/env bash
# LoRA (r = 8 on c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) vs full training on DESIGN.md's
# reference workload: step time, trainable numbers, gradient + optimizer bytes, ledger total.
# Alternates the two runs ROUNDS times, prints medians and exits 1 when the LoRA / full ratio of the
# median step times is above TARGET.
#
#   bash bench/lora_reference.sh [OUT]     (OUT defaults to out/bench-lora; FRUGAL, ROUNDS, STEPS, THREADS, TARGET)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-lora}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-8}
THREADS=${THREADS:-2}
TARGET=${TARGET:-0.75}  # issue 5: LoRA / full step time at most this; the script exits 1 above it
mkdir -p "$OUT"
print_machine "$FRUGAL"
for ((i = 1; i <= ROUNDS; i++)); do
  for mode in full lora; do
    extra=""
    [[ $mode == lora ]] && extra="--lora-rank 8 --lora-targets c_attn,c_proj,c_fc"
    # shellcheck disable=SC2086
    "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic \
      --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0 \
      --steps "$STEPS" --threads "$THREADS" $extra --summary "$OUT/$mode.run$i.json" > "$OUT/$mode.run$i.log" 2>&1
  done
done
/usr/bin/python3 - "$OUT" "$ROUNDS" "$TARGET" <<'PY'
import json, statistics, sys
out, rounds, target = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
runs = {m: [json.load(open(f"{out}/{m}.run{i}.json")) for i in range(1, rounds + 1)] for m in ("full", "lora")}
med = lambda m, f: statistics.median(f(r) for r in runs[m])
mib = lambda b: f"{b / 2**20:.1f} MiB"
print("| run | trainable numbers | gradient + AdamW bytes | ledger total | step time |")
print("|---|---:|---:|---:|---:|")
for m in ("full", "lora"):
    r = runs[m][0]
    print(f"| {m} | {r['trainable_params']:,} | {mib(r['memory']['grads'] + r['memory']['optimizer'])} | "
          f"{mib(r['memory']['total'])} | {med(m, lambda r: r['step_time_s']):.3f} s |")
print()
ratio = med('lora', lambda r: r['step_time_s']) / med('full', lambda r: r['step_time_s'])
pairs = " ".join(f"{l['step_time_s'] / f['step_time_s']:.3f}" for f, l in zip(runs['full'], runs['lora']))
print(f"LoRA / full step time: {ratio:.3f} (per round: {pairs}); target <= {target}: "
      f"{'met' if ratio <= target else 'MISSED'}")
sys.exit(0 if ratio <= target else 1)
PY
