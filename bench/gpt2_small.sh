#!/usr/bin/env bash
# GPT-2 small at the scale people fine-tune (issue 15): 12 layers, dim 768, 12 heads, context 1024,
# vocab 50257, micro-batch 4, AdamW lr 3e-4, random tokens, 2 threads; two configurations:
#   full:  fp32, store-all, every weight trained
#   lora:  --precision bf16 --checkpoint sqrt --lora-rank 8 --lora-targets c_attn,c_proj,c_fc --base-precision bf16
# For each, `frugal plan --json` and `frugal train --summary` with the same flags, then PyTorch 1.13
# (bench/pytorch_reference.py, same shapes, the same configuration in its terms). Prints per
# configuration frugal's plan and ledger (does the plan equal the measured peaks byte for byte? is the
# process peak RSS within 10% + 100 MiB of the ledger total?), then frugal and PyTorch side by side with
# the ratios of this run, and the exact command lines. Exits 1 when a run fails or a check is missed.
#
#   bash bench/gpt2_small.sh [OUT]     (OUT defaults to out/bench-gpt2-small)
#
# Environment: FRUGAL (binary, default build/frugal), STEPS (3; the first is not timed), THREADS (2),
# CONFIGS ("full lora"), and the shapes LAYERS (12), DIM (768), HEADS (12), CTX (1024), VOCAB (50257),
# BATCH (4), e.g. LAYERS=2 DIM=64 HEADS=2 CTX=64 VOCAB=512 STEPS=2 for a quick check of the script.
# Both programs run with OPENBLAS_CORETYPE unset (so OpenBLAS picks its kernel for this CPU).
# Files: OUT/NAME.plan.json, OUT/NAME.frugal.json, OUT/NAME.pytorch.json (each with its .log),
# OUT/commands.txt, OUT/gpt2_small.md (the tables), OUT/gpt2_small.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-gpt2-small}
FRUGAL=${FRUGAL:-build/frugal}
source bench/machine.sh
STEPS=${STEPS:-3}
THREADS=${THREADS:-2}
LAYERS=${LAYERS:-12}
DIM=${DIM:-768}
HEADS=${HEADS:-12}
CTX=${CTX:-1024}
VOCAB=${VOCAB:-50257}
BATCH=${BATCH:-4}
CONFIGS=${CONFIGS:-full lora}
PY=/usr/bin/python3

if [[ ! -x "$FRUGAL" ]]; then
  echo "gpt2_small: frugal binary '$FRUGAL' not found (build it first, or set FRUGAL=)" >&2
  exit 1
fi
if ((STEPS < 2)); then
  echo "gpt2_small: STEPS must be at least 2 (the first step is not timed)" >&2
  exit 1
fi
mkdir -p "$OUT"
(unset OPENBLAS_CORETYPE; print_machine "$FRUGAL")

COMMON=(--arch gpt --layers "$LAYERS" --dim "$DIM" --heads "$HEADS" --ctx "$CTX" --vocab "$VOCAB"
  --data synthetic --micro-batch "$BATCH" --optimizer adamw --lr 3e-4 --warmup 0 --schedule constant
  --clip-grad-norm 0 --weight-decay 0 --threads "$THREADS" --steps "$STEPS")
PT_COMMON=(bench/pytorch_reference.py --layers "$LAYERS" --dim "$DIM" --heads "$HEADS" --ctx "$CTX"
  --vocab "$VOCAB" --batch "$BATCH" --lr 3e-4 --threads "$THREADS" --steps "$STEPS")
declare -A FRUGAL_FLAGS=(
  [full]="--precision fp32 --checkpoint store-all"
  [lora]="--precision bf16 --checkpoint sqrt --lora-rank 8 --lora-targets c_attn,c_proj,c_fc --base-precision bf16")
declare -A PT_FLAGS=(
  [full]="--precision fp32 --checkpoint none"
  [lora]="--precision bf16 --checkpoint sqrt --lora-rank 8 --lora-targets c_attn,c_proj,c_fc --base-precision bf16")

: > "$OUT/commands.txt"
# run TAG STDOUT CMD...: records the command line, runs it with its stderr in OUT/TAG.log (its stdout
# too when STDOUT is that file), reports a failure (does not stop).
run() {
  local tag=$1 stdout=$2 log=$OUT/$1.log
  shift 2
  local word line="$tag:"
  for word in "$@"; do  # quoted only where the shell needs it
    if [[ $word =~ ^[A-Za-z0-9_./,=:+-]+$ ]]; then line+=" $word"; else line+=" $(printf '%q' "$word")"; fi
  done
  echo "$line" >> "$OUT/commands.txt"
  echo "== $tag" >&2
  if [[ $stdout == "$log" ]]; then "$@" > "$log" 2>&1; else "$@" > "$stdout" 2> "$log"; fi || {
    echo "gpt2_small: $tag failed (log: $log):" >&2
    tail -n 5 "$log" >&2
    return 1
  }
}

status=0
for name in $CONFIGS; do
  [[ -n ${FRUGAL_FLAGS[$name]+x} ]] || { echo "gpt2_small: unknown configuration '$name'" >&2; exit 1; }
  rm -f "$OUT/$name".{plan,frugal,pytorch}.{json,log}
  read -ra extra <<< "${FRUGAL_FLAGS[$name]}"
  read -ra pt_extra <<< "${PT_FLAGS[$name]}"
  run "$name.plan" "$OUT/$name.plan.json" env -u OPENBLAS_CORETYPE "$FRUGAL" plan "${COMMON[@]}" "${extra[@]}" --json ||
    { status=1; rm -f "$OUT/$name.plan.json"; }
  run "$name.frugal" "$OUT/$name.frugal.log" env -u OPENBLAS_CORETYPE "$FRUGAL" train "${COMMON[@]}" "${extra[@]}" \
    --summary "$OUT/$name.frugal.json" || status=1
  run "$name.pytorch" "$OUT/$name.pytorch.log" env -u OPENBLAS_CORETYPE "$PY" "${PT_COMMON[@]}" "${pt_extra[@]}" \
    --json "$OUT/$name.pytorch.json" || status=1
done

# shellcheck disable=SC2086  # CONFIGS is a list of words
"$PY" - "$OUT" "$STEPS" "$THREADS" "$LAYERS" "$DIM" "$HEADS" "$CTX" "$VOCAB" "$BATCH" $CONFIGS <<'PY' || status=1
import json, os, sys

out, steps, threads, layers, dim, heads, ctx, vocab, batch = sys.argv[1:10]
names = sys.argv[10:]
title = {"full": "A. full fine-tuning, fp32, store-all",
         "lora": "B. LoRA r8 (c_attn, c_proj, c_fc), bf16, sqrt checkpointing, bf16 base"}
MiB = 2**20
mib = lambda b: f"{b / MiB:.1f} MiB"
SLACK = lambda total: 1.10 * total + 100 * MiB  # the RSS bound: ledger total + 10% + 100 MiB

def load(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.load(f)

commands = {}
with open(f"{out}/commands.txt") as f:
    for line in f:
        tag, _, cmd = line.partition(":")
        commands[tag] = cmd.strip()

ok = True
md = [f"GPT-2 small shapes: {layers} layers, dim {dim}, {heads} heads, ctx {ctx}, vocab {vocab}, micro-batch {batch}, "
      f"AdamW lr 3e-4, random tokens, {threads} threads, {steps} steps (step time: median of the steps after the first)", ""]
result = {}
for name in names:
    plan = load(f"{out}/{name}.plan.json")
    fr = load(f"{out}/{name}.frugal.json")
    pt = load(f"{out}/{name}.pytorch.json")
    md += [f"### {title.get(name, name)}", ""]
    row = {"plan": plan, "frugal": None, "pytorch": None}
    if plan is None or fr is None:
        ok = False
        which = "plan" if plan is None else "frugal"
        md += [f"frugal {'plan' if plan is None else 'train'} failed: see {out}/{name}.{which}.log", ""]
    else:
        p, m = plan["predicted_memory"], fr["memory"]
        cats = [k for k in p if k != "total"] + ["total"]
        differ = [k for k in cats if p.get(k) != m.get(k)]
        equal = not differ
        rss, total = fr["peak_rss_bytes"], m["total"]
        rss_ok = rss <= SLACK(total)
        ok = ok and equal and rss_ok
        md += ["| category | planned | measured (ledger peak) | equal |", "|---|---:|---:|:---:|"]
        md += [f"| {k} | {p[k]:,} B ({mib(p[k])}) | {m[k]:,} B ({mib(m[k])}) | {'yes' if p[k] == m[k] else 'NO'} |"
               for k in cats]
        md += ["",
               f"- plan == measured, every category and the total, byte for byte: "
               f"{'yes' if equal else 'NO (differ: ' + ', '.join(differ) + ')'}",
               f"- process peak RSS {mib(rss)} vs ledger total {mib(total)}: RSS - ledger = {mib(rss - total)}; "
               f"within 10% + 100 MiB (<= {mib(SLACK(total))}): {'yes' if rss_ok else 'NO'}",
               f"- median step {fr['step_time_s']:.3f} s, {fr['tokens_per_s']:.1f} tokens/s; "
               f"trainable {fr['trainable_params']:,} of {fr['total_params']:,} numbers; "
               f"losses {', '.join(f'{l:.4f}' for l in fr['losses'])}", ""]
        row["frugal"] = {"plan_equals_measured": equal, "differ": differ, "rss_within_bound": rss_ok,
                         "memory": m, "predicted_memory": p, "peak_rss_bytes": rss,
                         "step_time_s": fr["step_time_s"], "tokens_per_s": fr["tokens_per_s"],
                         "trainable_params": fr["trainable_params"], "total_params": fr["total_params"]}
    if pt is None:
        ok = False
        md += [f"PyTorch failed: see {out}/{name}.pytorch.log", ""]
    else:
        row["pytorch"] = {k: pt[k] for k in ("step_time_s", "tokens_per_s", "peak_rss_bytes", "baseline_rss_bytes",
                                              "params", "trainable_params", "step_times_s", "losses")}
    if fr is not None and pt is not None:
        ratio = lambda k: pt[k] / fr[k] if fr[k] else float("nan")
        same = fr["trainable_params"] == pt["trainable_params"]
        ok = ok and same
        md += ["| metric | frugal | PyTorch 1.13 | PyTorch/frugal |", "|---|---:|---:|---:|",
               f"| step time (median) | {fr['step_time_s']:.3f} s | {pt['step_time_s']:.3f} s | {ratio('step_time_s'):.2f} |",
               f"| tokens/s | {fr['tokens_per_s']:.1f} | {pt['tokens_per_s']:.1f} | {ratio('tokens_per_s'):.2f} |",
               f"| peak RSS | {mib(fr['peak_rss_bytes'])} | {mib(pt['peak_rss_bytes'])} | {ratio('peak_rss_bytes'):.2f} |",
               f"| ledger total (measured) | {mib(fr['memory']['total'])} | — | — |",
               f"| plan total | {mib(plan['predicted_memory']['total']) if plan else 'failed'} | — | — |",
               f"| trainable numbers | {fr['trainable_params']:,} | {pt['trainable_params']:,} | "
               f"{'same' if same else 'DIFFER'} |",
               "", f"PyTorch's RSS before the model was built (torch imported): {mib(pt['baseline_rss_bytes'])}", ""]
        row["ratio_pytorch_over_frugal"] = {k: ratio(k) for k in ("step_time_s", "tokens_per_s", "peak_rss_bytes")}
    md += ["Commands:", "", "```"] + [f"{commands[t]}" for t in (f"{name}.plan", f"{name}.frugal", f"{name}.pytorch")
                                     if t in commands] + ["```", ""]
    result[name] = row
text = "\n".join(md)
with open(f"{out}/gpt2_small.md", "w") as f:
    f.write(text)
with open(f"{out}/gpt2_small.json", "w") as f:
    json.dump({"checks_met": ok, "configs": result}, f, indent=2)
print(text, end="")
print(f"checks (runs succeeded, plan == measured, RSS bound, same trainable numbers): {'met' if ok else 'MISSED'}")
sys.exit(0 if ok else 1)
PY
exit $status
