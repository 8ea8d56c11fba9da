#!/usr/bin/env bash
# LoRA (r = 8 on c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) on a frozen base stored in bf16, nf4 and
# int8 (--base-precision), on DESIGN.md's reference workload and on GPT-2 small's shape (12 x 768,
# context 1024, vocabulary 50,257, micro-batch 1): median step time, weight bytes (params peak) and
# planned = measured. Alternates the three bases ROUNDS times; prints the nf4 / bf16 and int8 / bf16
# ratios and exits 1 when either median ratio is above TARGET (issue 19: 1.3). Then the products
# alone (build/quantized_gemm).
#
#   bash bench/quantized_base.sh [OUT]   (OUT defaults to out/bench-quantized; FRUGAL, ROUNDS, THREADS, TARGET)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-quantized}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
TARGET=${TARGET:-1.3}
mkdir -p "$OUT"
print_machine "$FRUGAL"
LORA=(--lora-rank 8 --lora-targets c_attn,c_proj,c_fc --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant
      --clip-grad-norm 0 --data synthetic --threads "$THREADS")
REFERENCE=(--arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --micro-batch 16 --steps 8)
SMALL=(--arch gpt --layers 12 --dim 768 --heads 12 --ctx 1024 --vocab 50257 --micro-batch 1 --steps 3)
for ((i = 1; i <= ROUNDS; i++)); do
  for workload in reference small; do
    for base in bf16 nf4 int8; do
      shape=("${REFERENCE[@]}")
      [[ $workload == small ]] && shape=("${SMALL[@]}")
      "$FRUGAL" train "${shape[@]}" "${LORA[@]}" --base-precision $base \
        --summary "$OUT/$workload.$base.run$i.json" > "$OUT/$workload.$base.run$i.log" 2>&1
    done
  done
done
/usr/bin/python3 - "$OUT" "$ROUNDS" "$TARGET" <<'PY'
import json, statistics, sys
out, rounds, target = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
worst = 0.0
print("| workload | base | weights (params peak) | planned = measured | median step | vs bf16 (median of rounds) |")
print("|---|---|---:|---|---:|---:|")
for workload in ("reference", "small"):
    runs = {b: [json.load(open(f"{out}/{workload}.{b}.run{i}.json")) for i in range(1, rounds + 1)] for b in ("bf16", "nf4", "int8")}
    for b, rs in runs.items():
        ratio = statistics.median(r["step_time_s"] / q["step_time_s"] for r, q in zip(rs, runs["bf16"]))
        if b != "bf16":
            worst = max(worst, ratio)
        exact = all(r["memory"]["total"] == r["predicted_memory"]["total"] for r in rs)
        print(f"| {workload} | {b} | {rs[0]['memory']['params'] / 2**20:.1f} MiB | {'yes' if exact else 'NO'} | "
              f"{statistics.median(r['step_time_s'] for r in rs):.3f} s | {ratio:.2f} |")
print(f"largest quantised / bf16 ratio {worst:.2f} (target <= {target}): {'met' if worst <= target else 'MISSED'}")
sys.exit(0 if worst <= target else 1)
PY
# The products alone, on the kernel frugal itself runs with (the bench binary does not re-execute itself).
core=$("$FRUGAL" doctor --json | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["gemm"]["f32"].split()[-1])')
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$core} build/quantized_gemm "$THREADS"
