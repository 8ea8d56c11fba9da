#!/usr/bin/env bash
# The memory-budget autopilot's choices, checked by running them: for the reference workload
# (DESIGN.md) with BATCH samples per step, at each budget, `frugal plan --memory-budget` lists the
# configurations that fit, fastest predicted first; the five best run for real (ROUNDS alternating
# rounds of STEPS steps each). The tables: predicted against measured step time and memory per
# candidate, whether the chosen one is within 10% of the fastest measured, and the cost model's
# median |predicted - measured| / measured over every run.
#
#   bash bench/autopilot_choice.sh [OUT]   (OUT defaults to out/bench-autopilot; FRUGAL, BATCH, BUDGETS, ROUNDS, STEPS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-autopilot}
FRUGAL=${FRUGAL:-build/frugal}
BATCH=${BATCH:-32}
BUDGETS=${BUDGETS:-80MiB 150MiB 400MiB}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-6}
source bench/machine.sh
mkdir -p "$OUT"
print_machine "$FRUGAL"
MODEL="--arch gpt --layers 6 --dim 256 --heads 8 --ctx 128 --vocab 256 --data synthetic --optimizer adamw --lr 3e-4
       --warmup 0 --schedule constant --clip-grad-norm 0 --weight-decay 0 --threads 2"
for budget in $BUDGETS; do
  # shellcheck disable=SC2086
  "$FRUGAL" plan $MODEL --batch-size "$BATCH" --memory-budget "$budget" --json > "$OUT/plan-$budget.json"
done

/usr/bin/python3 - "$FRUGAL" "$OUT" "$ROUNDS" "$STEPS" "$MODEL" $BUDGETS <<'PY'
import json, shlex, statistics, subprocess, sys
frugal, out, rounds, steps, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
budgets = sys.argv[6:]
plans = {b: json.load(open(f"{out}/plan-{b}.json")) for b in budgets}
runs = {b: [c for c in plans[b]["candidates"] if c["fits"]][:5] for b in budgets}

def flags(c):
    f = f"--micro-batch {c['micro_batch']} --accum {c['accum']} --checkpoint {c['checkpoint']} --precision {c['precision']}"
    return f + (f" --activation-budget {c['activation_budget']}" if c["activation_budget"] > 0 else "")

measured = {}  # (budget, index) -> [step times], peak
for r in range(rounds):
    for b in budgets:
        for i, c in enumerate(runs[b]):
            summary = f"{out}/run-{b}-{i}.json"
            cmd = [frugal, "train", *shlex.split(model), *shlex.split(flags(c)), "--steps", str(steps),
                   "--memory-limit", b, "--summary", summary]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            s = json.load(open(summary))
            times, _ = measured.setdefault((b, i), ([], s["memory"]["total"]))
            times.append(s["step_time_s"])
            print(f"round {r + 1}/{rounds} budget {b} candidate {i}: {s['step_time_s']:.3f} s", file=sys.stderr)

errors = []
for b in budgets:
    p = plans[b]
    print(f"\nbudget {b}: {p['configurations']} configurations planned in {p['search_seconds'] * 1e3:.0f} ms, {p['fitting']} fit")
    print("| rank | configuration | predicted memory | measured memory | predicted step | measured step (median) |")
    print("|---:|---|---:|---:|---:|---:|")
    med = []
    for i, c in enumerate(runs[b]):
        times, peak = measured[(b, i)]
        m = statistics.median(times)
        med.append(m)
        errors.append(abs(c["predicted_step_time_s"] - m) / m)
        act = f" ({c['activation_budget'] / 2**20:.1f} MiB)" if c["activation_budget"] > 0 else ""
        print(f"| {i + 1}{' (chosen)' if i == 0 else ''} | micro-batch {c['micro_batch']} x {c['accum']}, "
              f"{c['checkpoint']}{act}, {c['precision']} | {c['predicted_memory']['total'] / 2**20:.1f} MiB | "
              f"{peak / 2**20:.1f} MiB | {c['predicted_step_time_s']:.3f} s | {m:.3f} s |")
    print(f"chosen / fastest measured: {med[0] / min(med):.3f}")
print(f"\ncost model: median |predicted - measured| / measured over {len(errors)} configurations: "
      f"{100 * statistics.median(errors):.1f}% (max {100 * max(errors):.1f}%)")
PY
