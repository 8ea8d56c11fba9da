#!/usr/bin/env bash
# The fixed overhead a --memory-budget run's process carries beyond the ledger's bytes (code,
# libraries, thread stacks, OpenBLAS's and oneDNN's buffers): train --memory-budget on small models
# under the settings that change it (threads, bf16 on the half units, an nf4 base, Llama, a wide LM
# head, the rates measured first with an empty cache, two busy loops beside the run). Prints a markdown
# table of ledger peak, peak RSS and RSS - budget; the documented bound (README, DESIGN-NOTES) is
# budget + 96 MiB, which test MemoryAutopilot.* checks.
#
#   bash bench/process_overhead.sh [OUT]      (OUT defaults to out/bench-overhead; FRUGAL)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-overhead}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
mkdir -p "$OUT"
print_machine "$FRUGAL"
GPT="--arch gpt --layers 2 --dim 64 --heads 2 --ctx 64 --vocab 256 --data synthetic --batch-size 8 --steps 3"
LLAMA="--arch llama --layers 2 --dim 64 --heads 4 --ctx 64 --vocab 256 --data synthetic --batch-size 8 --steps 3"
WIDE="--arch gpt --layers 2 --dim 64 --heads 2 --ctx 64 --vocab 50257 --data synthetic --batch-size 8 --steps 3"
# name | environment | flags (the budget is twice the smallest feasible one, from plan)
CONFIGS=(
  "gpt, 1 thread|OMP_NUM_THREADS=1|$GPT --threads 1"
  "gpt, 2 threads|OMP_NUM_THREADS=2|$GPT --threads 2"
  "gpt bf16, half GEMM on|FRUGAL_HALF_GEMM=on|$GPT --threads 2 --precision bf16"
  "gpt bf16, half GEMM off|FRUGAL_HALF_GEMM=off|$GPT --threads 2 --precision bf16"
  "llama, nf4 base + LoRA|OMP_NUM_THREADS=2|$LLAMA --threads 2 --lora-rank 8 --base-precision nf4"
  "gpt, vocabulary 50257|OMP_NUM_THREADS=2|$WIDE --threads 2"
  "gpt, rates measured first (empty cache)|XDG_CACHE_HOME=$OUT/empty-cache|$GPT --threads 2"
  "gpt, empty cache and 2 busy loops beside it|BUSY=2 XDG_CACHE_HOME=$OUT/empty-cache|$GPT --threads 2"
)
i=0
for config in "${CONFIGS[@]}"; do
  IFS='|' read -r name environment flags <<< "$config"
  i=$((i + 1))
  rm -rf "$OUT/empty-cache"
  smallest=$("$FRUGAL" plan $flags --memory-budget 1000GiB --json | /usr/bin/python3 -c '
import json, sys
print(min(c["predicted_memory"]["total"] for c in json.load(sys.stdin)["candidates"]))')
  budget=$((2 * smallest))
  busy=()
  if [[ $environment == BUSY=2* ]]; then
    for _ in 1 2; do (while :; do :; done) & busy+=($!); done
    environment=${environment#BUSY=2 }
  fi
  env $environment "$FRUGAL" train $flags --memory-budget "$budget" --summary "$OUT/run$i.json" > "$OUT/run$i.log" 2>&1
  [ ${#busy[@]} -gt 0 ] && kill "${busy[@]}"
  echo "$name|$budget|$OUT/run$i.json"
done > "$OUT/runs.txt"
/usr/bin/python3 - "$OUT/runs.txt" <<'PY'
import json, sys
mib = lambda b: f"{b / 2**20:.1f} MiB"
print("| run | budget | ledger peak | peak RSS | RSS - budget | RSS - ledger | rates measured (child's RSS) |")
print("|---|---:|---:|---:|---:|---:|---|")
worst = 0
for line in open(sys.argv[1]):
    name, budget, path = line.strip().split("|")
    s, budget = json.load(open(path)), int(budget)
    rss, ledger = s["peak_rss_bytes"], s["memory"]["total"]
    worst = max(worst, rss - ledger)
    m = s.get("rates_measurement")
    child = f"{m['seconds']:.1f} s ({mib(m['peak_rss_bytes'])})" if m else "cached"
    print(f"| {name} | {mib(budget)} | {mib(ledger)} | {mib(rss)} | {(rss - budget) / 2**20:+.1f} MiB | +{mib(rss - ledger)} | {child} |")
print(f"\nlargest RSS - ledger: {mib(worst)} (documented bound: 96 MiB)")
PY
