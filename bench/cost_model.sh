#!/usr/bin/env bash
# The cost model against measured steps (issue 36, must-show 3): for each workload, `frugal plan`'s
# predicted step time and its parts (matrix products, memory passes, optimizer, per-layer overhead),
# then ROUNDS runs of `frugal train` (the workloads alternating), and a markdown table of the median
# measured step, the prediction and the error (predicted / measured - 1). The workloads:
#   reference  DESIGN.md's reference workload (GPT, 6 x 256, ctx 128, micro-batch 16, fp32, AdamW)
#   gpt2       GPT-2 small's shape (12 x 768, vocab 50,257), ctx 1024, micro-batch 2, bf16, sqrt checkpointing
#   smollm2    SmolLM2-135M's shape (30 x 576, 9/3 heads, MLP 1536, vocab 49,152), ctx 2048, micro-batch 1,
#              bf16 base, LoRA r 8 on all seven projections, bf16, sqrt (bench/llama_lora.sh's configuration)
#   qwen3      Qwen3-0.6B's shape (28 x 1024, 16/8 heads of 128, q/k norms, MLP 3072, vocab 151,936), the same
#   llama8b    Llama-3.1-8B's shape (32 x 4096, 32/8 heads, MLP 14336, vocab 128,256, its own head), ctx 2048,
#              nf4 base and head, LoRA r 16 on all seven projections, bf16, sqrt (about 10 minutes a run and
#              9 GB of memory: only when named in WORKLOADS)
#
#   bash bench/cost_model.sh [OUT]   (OUT defaults to out/bench-cost-model)
#
# Environment: FRUGAL (build/frugal), ROUNDS (2), STEPS (3; the first step is not timed), THREADS (2),
# WORKLOADS ("reference gpt2 smollm2 qwen3"). Time with the defaults: about 8 minutes on 2 cores.
# Files: OUT/<workload>.plan.txt, OUT/<workload>.runI.{json,log}, OUT/cost_model.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-cost-model}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-3}
THREADS=${THREADS:-2}
WORKLOADS=${WORKLOADS:-reference gpt2 smollm2 qwen3}
PY=/usr/bin/python3
TARGETS=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj

if [[ ! -x "$FRUGAL" ]]; then
  echo "cost_model: frugal binary '$FRUGAL' not found (build it first, or set FRUGAL=)" >&2
  exit 1
fi
if ((STEPS < 2)); then
  echo "cost_model: STEPS must be at least 2 (the first step is not timed)" >&2
  exit 1
fi

flags_of() {  # the workload's model and training flags
  case "$1" in
    reference) echo "--arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --micro-batch 16" ;;
    gpt2) echo "--arch gpt --layers 12 --dim 768 --heads 12 --ctx 1024 --vocab 50257 --micro-batch 2 --precision bf16 \
--checkpoint sqrt" ;;
    smollm2) echo "--arch llama --layers 30 --dim 576 --heads 9 --kv-heads 3 --mlp-dim 1536 --vocab 49152 --ctx 2048 \
--micro-batch 1 --lora-rank 8 --lora-targets $TARGETS --base-precision bf16 --precision bf16 --checkpoint sqrt" ;;
    qwen3) echo "--arch llama --layers 28 --dim 1024 --heads 16 --kv-heads 8 --head-dim 128 --qk-norm --mlp-dim 3072 \
--vocab 151936 --ctx 2048 --micro-batch 1 --lora-rank 8 --lora-targets $TARGETS --base-precision bf16 --precision bf16 \
--checkpoint sqrt" ;;
    llama8b) echo "--arch llama --layers 32 --dim 4096 --heads 32 --kv-heads 8 --mlp-dim 14336 --vocab 128256 --ctx 2048 \
--micro-batch 1 --lora-rank 16 --lora-targets $TARGETS --base-precision nf4 --precision bf16 --checkpoint sqrt \
--untied-head --quantize-head" ;;
    *) echo "cost_model: unknown workload '$1' (reference gpt2 smollm2 qwen3 llama8b)" >&2; return 1 ;;
  esac
}

mkdir -p "$OUT"
print_machine "$FRUGAL"
for w in $WORKLOADS; do
  flags=$(flags_of "$w")
  rm -f "$OUT/$w".run*.{json,log}
  # shellcheck disable=SC2086  # the flags are words
  "$FRUGAL" plan $flags --data synthetic --threads "$THREADS" > "$OUT/$w.plan.txt"
done
for ((round = 1; round <= ROUNDS; round++)); do
  for w in $WORKLOADS; do
    flags=$(flags_of "$w")
    echo "round $round: $w"
    # shellcheck disable=SC2086
    "$FRUGAL" train $flags --data synthetic --threads "$THREADS" --steps "$STEPS" \
      --summary "$OUT/$w.run$round.json" > "$OUT/$w.run$round.log" 2>&1
  done
done

"$PY" - "$OUT" $WORKLOADS << 'EOF' | tee "$OUT/cost_model.md"
import json, re, statistics, sys
out, workloads = sys.argv[1], sys.argv[2:]
print("| workload | measured step (median) | predicted | error | products | memory passes | optimizer | overhead |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
errors = []
for w in workloads:
    plan = open(f"{out}/{w}.plan.txt").read()
    m = re.search(r"predicted step time: ([^(]+) \(matrix products ([^,]+), memory passes ([^,]+), optimizer ([^,]+), "
                  r"per-layer overhead ([^)]+)\)", plan)
    parts = m.groups()[1:] if m else ("?",) * 4
    runs = []
    r = 1
    while True:
        try:
            runs.append(json.load(open(f"{out}/{w}.run{r}.json")))
        except FileNotFoundError:
            break
        r += 1
    measured = statistics.median(s["step_time_s"] for s in runs)
    predicted = runs[0]["predicted_step_time_s"]
    error = predicted / measured - 1
    errors.append(abs(error))
    print(f"| {w} | {measured:.3f} s | {predicted:.3f} s | {100 * error:+.1f}% | " + " | ".join(parts) + " |")
print(f"\nmedian |error| {100 * statistics.median(errors):.1f}%, at most {100 * max(errors):.1f}% "
      f"(issue 36 asks for each within 10%)")
EOF
