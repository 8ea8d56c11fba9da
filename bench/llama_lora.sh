#!/usr/bin/env bash
# A Llama-family model beside PyTorch, by default SmolLM2-135M's shape (issue 20): 30 layers, dim 576, 9
# heads, 3 key/value heads, SwiGLU 1536, vocabulary 49,152 (tied head), context 2048, micro-batch 1, random
# tokens, fresh weights; bf16, sqrt checkpointing, LoRA r = 8 on all seven projections (q, k, v, o, gate, up,
# down), AdamW lr 3e-4 on A and B. Qwen3-0.6B's shape: LAYERS=28 DIM=1024 HEADS=16 KV_HEADS=8 HEAD_DIM=128
# QK_NORM=1 MLP_DIM=3072 VOCAB=151936.
# Runs `frugal plan --json` once, then alternates ROUNDS rounds of `frugal train` and PyTorch 1.13
# (bench/pytorch_llama_reference.py, the same model and configuration in its terms: CPU autocast bf16, a
# bf16 frozen base, torch.utils.checkpoint segments of ceil(sqrt 30) = 6 blocks). Prints a markdown table:
# planned vs measured ledger bytes (exits 1 unless equal, every category, every round), peak RSS, median
# step times and tokens/s for both programs, and the frugal / PyTorch ratios (medians over rounds).
#
#   bash bench/llama_lora.sh [OUT]   (OUT defaults to out/bench-llama)
#
# Time: one round (STEPS=2) takes about 2 minutes on the 2-core Xeon when it is otherwise idle (frugal
# 30-34 s, PyTorch 88-101 s) and 5.5 minutes with a compiler busy beside it, so the defaults take 4-11 minutes.
#
# Environment: FRUGAL (build/frugal), ROUNDS (2), STEPS (2; the first step is not timed), THREADS (2),
# and the shape LAYERS (30), DIM (576), HEADS (9), KV_HEADS (3), HEAD_DIM (0: DIM / HEADS), QK_NORM (0; 1:
# Qwen3's per-head q/k norms), MLP_DIM (1536), VOCAB (49152), CTX (2048), e.g. LAYERS=2 DIM=64 HEADS=4
# KV_HEADS=2 MLP_DIM=128 VOCAB=256 CTX=64 for a quick check of the script.
# Both programs run with OPENBLAS_CORETYPE unset. Files: OUT/plan.json, OUT/{frugal,pytorch}.runI.{json,log},
# OUT/commands.txt, OUT/llama_lora.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-llama}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-2}
THREADS=${THREADS:-2}
LAYERS=${LAYERS:-30}
DIM=${DIM:-576}
HEADS=${HEADS:-9}
KV_HEADS=${KV_HEADS:-3}
HEAD_DIM=${HEAD_DIM:-0}
QK_NORM=${QK_NORM:-0}
MLP_DIM=${MLP_DIM:-1536}
VOCAB=${VOCAB:-49152}
CTX=${CTX:-2048}
PY=/usr/bin/python3
TARGETS=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj

if [[ ! -x "$FRUGAL" ]]; then
  echo "llama_lora: frugal binary '$FRUGAL' not found (build it first, or set FRUGAL=)" >&2
  exit 1
fi
if ((STEPS < 2)); then
  echo "llama_lora: STEPS must be at least 2 (the first step is not timed)" >&2
  exit 1
fi
mkdir -p "$OUT"
rm -f "$OUT"/plan.json "$OUT"/{frugal,pytorch}.run*.{json,log}
(unset OPENBLAS_CORETYPE; print_machine "$FRUGAL")

HEAD_FLAGS=()  # the same for both programs
((HEAD_DIM > 0)) && HEAD_FLAGS+=(--head-dim "$HEAD_DIM")
((QK_NORM)) && HEAD_FLAGS+=(--qk-norm)
SHAPE=(--arch llama --layers "$LAYERS" --dim "$DIM" --heads "$HEADS" --kv-heads "$KV_HEADS" --mlp-dim "$MLP_DIM"
  --vocab "$VOCAB" --ctx "$CTX" "${HEAD_FLAGS[@]}")
FLAGS=("${SHAPE[@]}" --data synthetic --micro-batch 1 --precision bf16 --checkpoint sqrt --lora-rank 8
  --lora-targets "$TARGETS" --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant --clip-grad-norm 0
  --weight-decay 0 --steps "$STEPS" --threads "$THREADS")
PT=(bench/pytorch_llama_reference.py --layers "$LAYERS" --dim "$DIM" --heads "$HEADS" --kv-heads "$KV_HEADS"
  --mlp-dim "$MLP_DIM" --vocab "$VOCAB" --ctx "$CTX" "${HEAD_FLAGS[@]}" --batch 1 --precision bf16 --checkpoint sqrt --lora-rank 8
  --lora-targets "$TARGETS" --base-precision bf16 --lr 3e-4 --steps "$STEPS" --threads "$THREADS")

: > "$OUT/commands.txt"
: > "$OUT/load.txt"
# The machine is shared: for each run, OUT/load.txt gets "TAG WALL_S OTHERS", OTHERS being the cores other
# processes kept busy on average meanwhile (non-idle CPU time in /proc/stat minus the run's own CPU time,
# from the shell's `times`, over its wall time).
busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2 + $3 + $4 + $7 + $8 + $9) / hz}' /proc/stat; }
# The CPU time of this shell's finished children: `times` must run in this shell itself (in a pipe or a
# $(...) it would report a subshell's children), so callers run `times > "$OUT/.times"` first.
children_cpu_s() {
  awk 'NR == 2 {for (i = 1; i <= NF; i++) {split($i, a, "m"); s += a[1] * 60 + a[2]}; print s}' "$OUT/.times"
}
now_s() { date +%s.%N; }
# run TAG STDOUT CMD...: records the command line, runs it (stderr, and stdout when STDOUT is the log, in
# OUT/TAG.log), prints its wall time, reports a failure (does not stop).
run() {
  local tag=$1 stdout=$2 log=$OUT/$1.log rc=0
  shift 2
  local word line="$tag:"
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./,=:+-]+$ ]]; then line+=" $word"; else line+=" $(printf '%q' "$word")"; fi
  done
  echo "$line" >> "$OUT/commands.txt"
  local t0 b0 c0 t1 b1 c1
  times > "$OUT/.times"
  t0=$(now_s) b0=$(busy_s) c0=$(children_cpu_s)
  if [[ $stdout == "$log" ]]; then "$@" > "$log" 2>&1 || rc=$?; else "$@" > "$stdout" 2> "$log" || rc=$?; fi
  times > "$OUT/.times"
  t1=$(now_s) b1=$(busy_s) c1=$(children_cpu_s)
  awk -v tag="$tag" -v t="$t0 $t1" -v b="$b0 $b1" -v c="$c0 $c1" 'BEGIN {
    split(t, T, " "); split(b, B, " "); split(c, C, " "); w = T[2] - T[1]
    o = w > 0 ? ((B[2] - B[1]) - (C[2] - C[1])) / w : 0; if (o < 0) o = 0
    printf "%s %.1f %.2f\n", tag, w, o }' >> "$OUT/load.txt"
  echo "== $tag: $(tail -n 1 "$OUT/load.txt" | awk '{printf "%s s, other processes %s cores", $2, $3}')" >&2
  if ((rc != 0)); then
    echo "llama_lora: $tag failed (log: $log):" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
}

status=0
run plan "$OUT/plan.json" env -u OPENBLAS_CORETYPE "$FRUGAL" plan "${FLAGS[@]}" --json || status=1
for ((i = 1; i <= ROUNDS; i++)); do
  run "frugal.run$i" "$OUT/frugal.run$i.log" env -u OPENBLAS_CORETYPE "$FRUGAL" train "${FLAGS[@]}" \
    --summary "$OUT/frugal.run$i.json" || status=1
  run "pytorch.run$i" "$OUT/pytorch.run$i.log" env -u OPENBLAS_CORETYPE "$PY" "${PT[@]}" \
    --json "$OUT/pytorch.run$i.json" || status=1
done

"$PY" - "$OUT" "$ROUNDS" "$STEPS" "$THREADS" "$LAYERS" "$DIM" "$HEADS" "$KV_HEADS" "$MLP_DIM" "$VOCAB" "$CTX" \
  "${HEAD_FLAGS[*]}" <<'PY' || status=1
import json, os, statistics, sys

out, rounds, steps, threads, layers, dim, heads, kv, mlp, vocab, ctx, head_flags = sys.argv[1:]
rounds = int(rounds)
MiB = 2**20
mib = lambda b: f"{b / MiB:.1f} MiB"

def load(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.load(f)

plan = load(f"{out}/plan.json")
fr = [load(f"{out}/frugal.run{i}.json") for i in range(1, rounds + 1)]
pt = [load(f"{out}/pytorch.run{i}.json") for i in range(1, rounds + 1)]
ok = plan is not None and all(r is not None for r in fr + pt)
md = [f"Llama {layers} x {dim}, {heads} heads / {kv} kv heads{' (' + head_flags + ')' if head_flags else ''}, MLP {mlp}, vocab {vocab}, ctx {ctx}, micro-batch 1, "
      f"bf16, sqrt checkpointing, LoRA r8 on q,k,v,o,gate,up,down, AdamW; {threads} threads, {rounds} alternating "
      f"rounds of {steps} steps (step time: median of the steps after the first; the programs' columns: medians over "
      f"the rounds)", ""]
if not ok:
    md.append("FAILED: missing " + ", ".join(
        n for n, r in [("plan", plan)] + [(f"frugal.run{i+1}", r) for i, r in enumerate(fr)] +
        [(f"pytorch.run{i+1}", r) for i, r in enumerate(pt)] if r is None) + f" (logs in {out})")
fr = [r for r in fr if r is not None]
pt = [r for r in pt if r is not None]
load = {}
if os.path.exists(f"{out}/load.txt"):
    with open(f"{out}/load.txt") as f:
        for line in f:
            tag, wall, others = line.split()
            load[tag] = others
med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else float("nan")
if plan is not None and fr:
    p = plan["predicted_memory"]
    cats = [k for k in p if k != "total"] + ["total"]
    md += ["| category | planned | measured (ledger peak, every round) | equal |", "|---|---:|---:|:---:|"]
    for k in cats:
        ms = {r["memory"].get(k) for r in fr}
        same = ms == {p[k]}
        ok = ok and same and all(r["predicted_memory"] == p for r in fr)
        shown = ", ".join(f"{m:,} B" for m in sorted(ms, key=lambda m: (m is None, m or 0)))
        md.append(f"| {k} | {p[k]:,} B ({mib(p[k])}) | {shown} | {'yes' if same else 'NO'} |")
    md.append("")
    at_peak = fr[0].get("memory_at_peak")
    if at_peak:
        md += ["At the ledger peak: " + ", ".join(f"{k} {mib(v)}" for k, v in at_peak.items() if k != "total"), ""]
    if "kernels" in plan:
        md += ["Kernels (plan): " + json.dumps(plan["kernels"]), ""]
if fr and pt:
    # each round's frugal run and PyTorch run follow each other: the headline ratio is the median of the rounds'
    per_round = lambda k: ", ".join(f"{f[k] / q[k]:.2f}" for f, q in zip(fr, pt))
    ratio = lambda k: statistics.median(f[k] / q[k] for f, q in zip(fr, pt))
    same = fr[0]["trainable_params"] == pt[0]["trainable_params"]
    ok = ok and same
    md += ["| metric | frugal | PyTorch 1.13 | frugal / PyTorch: median of the rounds' ratios (per round) |", "|---|---:|---:|---:|",
           f"| ledger total (measured) | {mib(fr[0]['memory']['total'])} | — | — |",
           f"| plan total | {mib(plan['predicted_memory']['total']) if plan else 'failed'} | — | — |",
           f"| peak RSS (median) | {mib(med(fr, 'peak_rss_bytes'))} | {mib(med(pt, 'peak_rss_bytes'))} | "
           f"{ratio('peak_rss_bytes'):.2f} ({per_round('peak_rss_bytes')}) |",
           f"| step time (median) | {med(fr, 'step_time_s'):.3f} s | {med(pt, 'step_time_s'):.3f} s | "
           f"{ratio('step_time_s'):.2f} ({per_round('step_time_s')}) |",
           f"| tokens/s (median) | {med(fr, 'tokens_per_s'):.1f} | {med(pt, 'tokens_per_s'):.1f} | "
           f"{ratio('tokens_per_s'):.2f} ({per_round('tokens_per_s')}) |",
           f"| trainable numbers | {fr[0]['trainable_params']:,} | {pt[0]['trainable_params']:,} | "
           f"{'same' if same else 'DIFFER'} |",
           f"| all numbers | {fr[0]['total_params']:,} | {pt[0]['params']:,} | |", "",
           f"- frugal step times per round: {', '.join('%.2f s' % r['step_time_s'] for r in fr)}; "
           f"PyTorch: {', '.join('%.2f s' % r['step_time_s'] for r in pt)}",
           f"- other processes' CPU during each run (cores, average): " + "; ".join(
               f"{t} {load[t]}" for t in sorted(load, key=lambda t: (t.split('.run')[-1], t)) if t != "plan"),
           f"- frugal RSS - ledger total: {', '.join(mib(r['peak_rss_bytes'] - r['memory']['total']) for r in fr)}",
           f"- PyTorch RSS before the model (torch imported): {mib(pt[0]['baseline_rss_bytes'])}; "
           f"after the model and optimizer: {mib(pt[0]['model_rss_bytes'])}",
           f"- losses, round 1: frugal {', '.join(f'{l:.4f}' for l in fr[0]['losses'])}; "
           f"PyTorch {', '.join(f'{l:.4f}' for l in pt[0]['losses'])}", ""]
commands = {}
with open(f"{out}/commands.txt") as f:
    for line in f:
        tag, _, cmd = line.partition(":")
        commands.setdefault(tag.split(".run")[0], cmd.strip())
md += ["Commands (round 1):", "", "```"] + [commands[t] for t in ("plan", "frugal", "pytorch") if t in commands] + ["```", ""]
text = "\n".join(md)
with open(f"{out}/llama_lora.md", "w") as f:
    f.write(text)
print(text, end="")
print(f"checks (runs succeeded, plan == measured in every category and round, same trainable numbers): "
      f"{'met' if ok else 'MISSED'}")
sys.exit(0 if ok else 1)
PY
exit $status
