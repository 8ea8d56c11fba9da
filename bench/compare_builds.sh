#!/usr/bin/env bash
# Two builds of frugal on the reference workload (DESIGN.md), alternating: fp32, bf16, and LoRA r8 in
# fp32, bf16 and bf16 on a bf16 base, each ROUNDS times; the table gives each build's median step time
# and peak memory per run. How a change's effect on speed and memory is measured in one hour.
#
#   BEFORE=path/to/old/frugal AFTER=build/frugal bash bench/compare_builds.sh [OUT]
#   (OUT defaults to out/bench-builds; ROUNDS, STEPS, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-builds}
BEFORE=${BEFORE:?set BEFORE to the frugal binary to compare against}
AFTER=${AFTER:-build/frugal}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
source bench/machine.sh
mkdir -p "$OUT"
(unset OPENBLAS_CORETYPE; print_machine "$AFTER")

declare -A RUNS=(
  [fp32]="--precision fp32" [bf16]="--precision bf16"
  [lora_fp32]="--precision fp32 --lora-rank 8" [lora_bf16]="--precision bf16 --lora-rank 8"
  [lora_bf16_base]="--precision bf16 --lora-rank 8 --base-precision bf16")
NAMES="fp32 bf16 lora_fp32 lora_bf16 lora_bf16_base"
for ((i = 1; i <= ROUNDS; i++)); do
  echo "== round $i/$ROUNDS" >&2
  for name in $NAMES; do
    for build in before after; do
      bin=$BEFORE
      [[ $build == after ]] && bin=$AFTER
      # shellcheck disable=SC2086  # the flags are words
      env -u OPENBLAS_CORETYPE "$bin" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 \
        --data synthetic --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant \
        --clip-grad-norm 0 --weight-decay 0 --steps "$STEPS" --threads "$THREADS" ${RUNS[$name]} \
        --summary "$OUT/$build.$name.run$i.json" > "$OUT/$build.$name.run$i.log" 2>&1 || true
    done
  done
done

/usr/bin/python3 - "$OUT" "$ROUNDS" $NAMES <<'PY'
import json, os, statistics, sys
out, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def cell(build, name, key):
    runs = [f"{out}/{build}.{name}.run{i}.json" for i in range(1, rounds + 1)]
    if not all(os.path.exists(r) for r in runs):
        return "failed (see the .log)"
    d = [json.load(open(r)) for r in runs]
    if key == "time":
        return f"{statistics.median(x['step_time_s'] for x in d):.3f} s"
    return f"{d[0]['memory']['total'] / 2**20:.1f} MiB"
print("| run | before | after | peak before | peak after |")
print("|---|---:|---:|---:|---:|")
for n in names:
    print(f"| {n} | {cell('before', n, 'time')} | {cell('after', n, 'time')} | "
          f"{cell('before', n, 'peak')} | {cell('after', n, 'peak')} |")
PY
