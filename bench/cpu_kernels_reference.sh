#!/usr/bin/env bash
# The reference workload (DESIGN.md) on this CPU's kernels: frugal fp32 in the environment as it is,
# frugal fp32 with the kernel frugal chooses (OPENBLAS_CORETYPE unset), frugal bf16 (on the CPU's bf16
# units where it has them), PyTorch 1.13 fp32 and bf16 autocast (OPENBLAS_CORETYPE unset too). The five run alternately ROUNDS
# times; the table shows each one's median step time and the ratios the issue asks for, measured
# pair by pair (bf16 / fp32 of the same round).
#
#   bash bench/cpu_kernels_reference.sh [OUT]   (OUT defaults to out/bench-cpu; FRUGAL, ROUNDS, STEPS, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-cpu}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
echo "environment: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
print_machine "$FRUGAL"
echo "with OPENBLAS_CORETYPE unset:"
(unset OPENBLAS_CORETYPE; print_machine "$FRUGAL")

frugal_run() {  # NAME PRECISION [env -u ...]
  local name=$1 precision=$2
  shift 2
  env "$@" "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic \
    --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0 --weight-decay 0 \
    --steps "$STEPS" --threads "$THREADS" --precision "$precision" --summary "$OUT/$name.run$i.json" \
    > "$OUT/$name.run$i.log" 2>&1
}
pytorch_run() {  # NAME PRECISION (with OpenBLAS's own kernel choice, as frugal_fp32)
  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/pytorch_reference.py --steps "$STEPS" --threads "$THREADS" --precision "$2" \
    --json "$OUT/$1.run$i.json" > "$OUT/$1.run$i.log" 2>&1
}
for ((i = 1; i <= ROUNDS; i++)); do
  echo "== round $i/$ROUNDS" >&2
  frugal_run frugal_fp32_env fp32
  frugal_run frugal_fp32 fp32 -u OPENBLAS_CORETYPE
  frugal_run frugal_bf16 bf16 -u OPENBLAS_CORETYPE
  pytorch_run pytorch_fp32 fp32
  pytorch_run pytorch_bf16 bf16
done

/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
names = ["frugal_fp32_env", "frugal_fp32", "frugal_bf16", "pytorch_fp32", "pytorch_bf16"]
t = {n: [json.load(open(f"{out}/{n}.run{i}.json"))["step_time_s"] for i in range(1, rounds + 1)] for n in names}
kernels = json.load(open(f"{out}/frugal_bf16.run1.json"))["compute"]
print("| run | median step time | per round |")
print("|---|---:|---|")
for n in names:
    print(f"| {n} | {statistics.median(t[n]):.3f} s | " + " / ".join(f"{v:.3f}" for v in t[n]) + " |")
ratio = lambda a, b: statistics.median(x / y for x, y in zip(t[a], t[b]))
print()
print(f"frugal bf16 / frugal fp32 (its kernel): {ratio('frugal_bf16', 'frugal_fp32'):.2f}")
print(f"frugal fp32 in the environment / with its kernel: {ratio('frugal_fp32_env', 'frugal_fp32'):.2f}")
print(f"frugal bf16 / PyTorch bf16 autocast: {ratio('frugal_bf16', 'pytorch_bf16'):.2f}")
print(f"frugal fp32 / PyTorch fp32: {ratio('frugal_fp32', 'pytorch_fp32'):.2f}")
print(f"kernels: {kernels}")
PY
