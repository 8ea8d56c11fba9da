#!/usr/bin/env bash
# frugal vs PyTorch on DESIGN.md's reference workload (GPT-2 arch, 6 layers, dim 256, 8 heads,
# context 128, vocab 256, micro-batch 16, AdamW lr 3e-4, random tokens, 2 threads, fp32).
#
#   bench/compare_reference.sh [OUT]          (OUT defaults to out/bench)
#
# The two programs run alternately ROUNDS times (the machine is shared and noisy); the table shows
# the median over rounds of each program's median step time, tokens/s and peak RSS, and the ratio
# PyTorch/frugal. Per-run JSON: OUT/frugal.runN.json (frugal's --summary) and OUT/pytorch.runN.json;
# medians: OUT/compare.json; table: OUT/compare.md.
# Environment: FRUGAL (binary, default build/frugal), ROUNDS (3), STEPS (10), THREADS (2).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-out/bench}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
PY=/usr/bin/python3

mkdir -p "$OUT"
if [[ ! -x "$FRUGAL" ]]; then
  echo "compare_reference: frugal binary '$FRUGAL' not found (build it first, or set FRUGAL=)" >&2
  exit 1
fi
print_machine "$FRUGAL"

for ((i = 1; i <= ROUNDS; i++)); do
  rm -f "$OUT/frugal.run$i.json" "$OUT/pytorch.run$i.json"
  echo "== round $i/$ROUNDS: frugal" >&2
  if ! "$FRUGAL" train --arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 \
      --data synthetic --micro-batch 16 --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant \
      --clip-grad-norm 0 --weight-decay 0 --steps "$STEPS" \
      --threads "$THREADS" --summary "$OUT/frugal.run$i.json" >"$OUT/frugal.run$i.log" 2>&1; then
    echo "compare_reference: frugal train failed (log: $OUT/frugal.run$i.log):" >&2
    tail -n 5 "$OUT/frugal.run$i.log" >&2
    exit 1
  fi
  if [[ ! -s "$OUT/frugal.run$i.json" ]]; then
    echo "compare_reference: frugal train wrote no summary $OUT/frugal.run$i.json (log: $OUT/frugal.run$i.log)" >&2
    exit 1
  fi
  echo "== round $i/$ROUNDS: pytorch" >&2
  if ! "$PY" bench/pytorch_reference.py --steps "$STEPS" --threads "$THREADS" \
      --json "$OUT/pytorch.run$i.json" >"$OUT/pytorch.run$i.log" 2>&1; then
    echo "compare_reference: pytorch_reference.py failed (log: $OUT/pytorch.run$i.log):" >&2
    tail -n 5 "$OUT/pytorch.run$i.log" >&2
    exit 1
  fi
done

"$PY" - "$OUT" "$ROUNDS" "$STEPS" "$THREADS" <<'EOF'
import json, statistics, sys

out, rounds, steps, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = ["step_time_s", "tokens_per_s", "peak_rss_bytes"]

def medians(prog):
    runs = []
    for i in range(1, rounds + 1):
        with open(f"{out}/{prog}.run{i}.json") as f:
            d = json.load(f)
        missing = [k for k in keys if k not in d]
        if missing:
            sys.exit(f"compare_reference: {out}/{prog}.run{i}.json lacks {missing}")
        runs.append(d)
    return {k: statistics.median(float(r[k]) for r in runs) for k in keys}, [{k: r[k] for k in keys} for r in runs]

fr, fr_runs = medians("frugal")
pt, pt_runs = medians("pytorch")
ratio = {k: pt[k] / fr[k] if fr[k] else float("nan") for k in keys}

mib = lambda b: f"{b / 2**20:.0f} MiB"
rows = [
    ("step time (s)", f"{fr['step_time_s']:.3f}", f"{pt['step_time_s']:.3f}", f"{ratio['step_time_s']:.2f}"),
    ("tokens/s", f"{fr['tokens_per_s']:.0f}", f"{pt['tokens_per_s']:.0f}", f"{ratio['tokens_per_s']:.2f}"),
    ("peak RSS", mib(fr["peak_rss_bytes"]), mib(pt["peak_rss_bytes"]), f"{ratio['peak_rss_bytes']:.2f}"),
]
md = [f"GPT-2 reference workload (6 layers, dim 256, 8 heads, ctx 128, vocab 256, batch 16, AdamW, fp32, "
      f"{threads} threads, {steps} steps; median of {rounds} alternating rounds)",
      "",
      "| metric | frugal | PyTorch | PyTorch/frugal |",
      "|---|---:|---:|---:|"]
md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
text = "\n".join(md) + "\n"
with open(f"{out}/compare.md", "w") as f:
    f.write(text)
with open(f"{out}/compare.json", "w") as f:
    json.dump({"frugal": fr, "pytorch": pt, "ratio_pytorch_over_frugal": ratio,
               "runs": {"frugal": fr_runs, "pytorch": pt_runs}}, f, indent=2)
print(text, end="")
EOF
