"""Comparisons for tests/mpi/test_data_parallel.sh (Debian's python3 and numpy).

  compare.py make-batch OUT            a ragged GPT batch: rank 0's rows hold few counted tokens
  compare.py plain-batch OUT           a batch like --data synthetic's: random tokens, targets shifted by one
  compare.py row-batches BATCH DIR     DIR/row-S.safetensors: BATCH with every target but row S's ignored
  compare.py magnitudes BATCH DIR      DIR/magnitude.safetensors (sum_s |g_s|) and DIR/gradient.safetensors
                                       (sum_s g_s) from DIR/row-S.grad.safetensors (`frugal grad` of each row)
  compare.py tensors A B TOL           every tensor of safetensors A within TOL of B (||a-b|| / ||b||)
  compare.py grads A B MAG N           two summation orders of one batch gradient (bound derived, see below)
  compare.py sgd-weights A B MAG N STEPS LR    weights after STEPS SGD steps on such gradients
  compare.py adamw-losses A B MAG N STEPS LR PRECISION [MODEL]   per-step losses of such AdamW runs
  compare.py zero-bytes SHARDED FULL   ZeRO-1: each rank's optimizer (and master) bytes about half of unsharded
  compare.py grad-bytes SHARDED FULL   ZeRO-2: each rank's gradient bytes well below unsharded
  compare.py param-bytes SHARDED FULL  ZeRO-3: each rank's weight bytes well below unsharded
  compare.py resumed-losses RES FULL   a resumed run's losses equal the uninterrupted run's, bit for bit
  compare.py planned-ranks PLAN RUN    `plan --ranks N --json` equals each rank's measured total, params,
                                       grads and optimizer
  compare.py untie-head DIR            a tied Llama directory made untied: its own lm_head.weight (the
                                       embedding plus noise) and tie_word_embeddings false
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import safetensors_io  # noqa: E402


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# ---------------------------------------------------------------- tolerances
# The runs compared here (2 ranks x --accum K against 1 rank x --accum 2K, or ZeRO against plain) push
# the same micro-batches through the same kernels; what differs is the order the fp32 gradient sums add
# their terms: the batch's tokens and the micro-batches (ranks' sums, ZeRO's reductions per block). Two
# orders of n terms differ by at most 2 gamma_n of the terms' magnitudes (Higham; any order, with or
# without FMA, so on every GEMM kernel), measured as sum_s |g_s| over the batch's rows, each row's
# gradient alone normalised by the whole batch's count (tests/gradcheck.h's per_sample_magnitudes; here
# the `magnitudes` command). As there, to first order: what that difference does over a few steps.
FP32_UNIT = 2.0 ** -24
HALF_UNIT = {"fp32": 0.0, "fp16": 2.0 ** -11, "bf16": 2.0 ** -8}
# AdamW's direction m^ / (sqrt(v^) + eps) moves by at most 2 e |m^|_abs / sqrt(v^) when every gradient
# it averages moves by a relative e (m by e of its magnitude, sqrt(v) by e of itself); by Cauchy-Schwarz
# with beta1 0.9, beta2 0.999 and the bias corrections |m^|_abs / sqrt(v^) <= 1.01 for t <= 5 steps.
ADAM_SENSITIVITY = 2 * 1.01


def gamma(n, unit=FP32_UNIT):
    return n * unit / (1.0 - n * unit)


def load_magnitudes(mag_dir):
    """(name -> sum_s |g_s|, name -> g) as written by the `magnitudes` command, in float64."""
    m = safetensors_io.load(os.path.join(mag_dir, "magnitude.safetensors"))
    g = safetensors_io.load(os.path.join(mag_dir, "gradient.safetensors"))
    return ({k: v.astype(np.float64) for k, v in m.items()}, {k: v.astype(np.float64) for k, v in g.items()})


def make_batch(out):
    rng = np.random.default_rng(5)
    inputs = rng.integers(0, 64, size=(8, 16)).astype(np.int32)
    targets = rng.integers(0, 64, size=(8, 16)).astype(np.int32)
    targets[:4, 3:] = -100  # rows of rank 0 (of 2): 3 counted tokens each; rank 1: 16 each
    targets[5, 10:] = -100
    safetensors_io.save(out, {"inputs": inputs, "targets": targets})


def plain_batch(out):
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, 64, size=(8, 17)).astype(np.int32)
    safetensors_io.save(out, {"inputs": tokens[:, :-1].copy(), "targets": tokens[:, 1:].copy()})


def row_batches(batch, out_dir):
    """One batch per row with counted targets: the same inputs (dropout's masks keyed by each sample's
    place stay the same), every other row's targets ignored."""
    b = safetensors_io.load(batch)
    os.makedirs(out_dir, exist_ok=True)
    for s in range(b["targets"].shape[0]):
        if (b["targets"][s] != -100).any():
            targets = np.full_like(b["targets"], -100)
            targets[s] = b["targets"][s]
            safetensors_io.save(os.path.join(out_dir, f"row-{s}.safetensors"),
                                {"inputs": b["inputs"], "targets": targets})


def magnitudes(batch, rows_dir):
    """sum_s |g_s| and sum_s g_s, g_s = row s's gradient (the mean over its n_s targets) times n_s / N."""
    targets = safetensors_io.load(batch)["targets"]
    total = int((targets != -100).sum())
    mag, grad = {}, {}
    for s in range(targets.shape[0]):
        path = os.path.join(rows_dir, f"row-{s}.grad.safetensors")
        if not os.path.exists(path):
            continue
        weight = int((targets[s] != -100).sum()) / total
        for k, g in safetensors_io.load(path).items():
            g = g.astype(np.float64) * weight
            mag[k] = mag.get(k, 0.0) + np.abs(g)
            grad[k] = grad.get(k, 0.0) + g
    for name, sums in (("magnitude", mag), ("gradient", grad)):
        safetensors_io.save(os.path.join(rows_dir, f"{name}.safetensors"),
                            {k: v.astype(np.float32) for k, v in sums.items()})


def within_tensor_bounds(a, b, bound_of, what):
    """Every tensor of safetensors a within bound_of(name, ||b||) of b (||a-b|| / ||b||)."""
    ta, tb = safetensors_io.load(a), safetensors_io.load(b)
    if sorted(ta) != sorted(tb):
        fail(f"different tensor names: {sorted(ta)} vs {sorted(tb)}")
    worst = (0.0, 1.0, "")
    for k in tb:
        norm = max(np.linalg.norm(tb[k].astype(np.float64)), 1e-30)
        d, bound = np.linalg.norm(ta[k].astype(np.float64) - tb[k]) / norm, bound_of(k, norm)
        if d / bound >= worst[0] / worst[1]:
            worst = (d, bound, k)
    d, bound, k = worst
    print(f"{len(tb)} tensors, nearest its bound {k}: relative difference {d:.2e}, bound {bound:.2e} ({what})")
    if not d <= bound:
        fail(f"{k}: relative difference {d:.2e} > {bound:.2e}")


def grads(a, b, mag_dir, n):
    """Two summation orders of n terms of the batch gradient: per tensor 2 gamma_n ||sum_s |g_s| || / ||g||."""
    mag, _ = load_magnitudes(mag_dir)
    within_tensor_bounds(a, b, lambda k, norm: 2 * gamma(n) * np.linalg.norm(mag[k]) / norm, f"2 gamma_{n}")


def sgd_weights(a, b, mag_dir, n, steps, lr):
    """Weights after `steps` SGD steps whose gradients differ by two summation orders: each step moves
    them apart by at most lr 2 gamma_n sum_s |g_s| (to first order: the gradients' own dependence on
    that difference, lr times the curvature, is left out)."""
    mag, _ = load_magnitudes(mag_dir)
    within_tensor_bounds(a, b, lambda k, norm: steps * lr * 2 * gamma(n) * np.linalg.norm(mag[k]) / norm,
                         f"{steps} steps of lr {lr} x 2 gamma_{n}")


def tensors(a, b, tol):
    """Every tensor within tol; the script uses it with 0 (bit for bit) and for one exact identity."""
    ta, tb = safetensors_io.load(a), safetensors_io.load(b)
    if sorted(ta) != sorted(tb):
        fail(f"different tensor names: {sorted(ta)} vs {sorted(tb)}")
    worst = max(np.linalg.norm(ta[k].astype(np.float64) - tb[k]) / max(np.linalg.norm(tb[k].astype(np.float64)), 1e-30)
                for k in tb)
    print(f"{len(tb)} tensors, largest relative difference {worst:.2e}")
    if not worst <= tol:
        fail(f"relative difference {worst:.2e} > {tol}")


def adamw_losses(a, b, mag_dir, n, steps, lr, precision, model=None):
    """Per-step losses of two AdamW runs whose gradients differ by two summation orders. The first
    step's losses agree (the same weights; the losses' sum is in double). Each step moves weight i apart
    by at most lr ADAM_SENSITIVITY e_i, e_i = 2 gamma_n M_i / |g_i| its gradient's relative difference,
    so by step `steps` the loss, to first order sum_i |g_i| |dw_i|, by at most
    (steps - 1) lr ADAM_SENSITIVITY 2 gamma_n sum_i M_i (M, g measured on a batch like the runs').
    Under fp16/bf16 the compute copy rounds the fp32 masters: where the two runs' masters straddle a
    rounding boundary their copies differ by one ulp (<= 2 u |w|): at most 2 u sum_i |g_i| |w_i| with
    |w_i| grown by at most lr per step (MODEL: the weights the runs start from). Activations rounded
    downstream move with those weights (in g, first order); their own boundary crossings are left out.
    The worst case, every weight a flip: one flip of the most sensitive weight is ~1e-5 of the Llama's
    loss in bf16 (measured 1.06e-5 with oneDNN's AMX kernel: a literal 1e-5 failed)."""
    la, lb = json.load(open(a))["losses"], json.load(open(b))["losses"]
    if len(la) != len(lb):
        fail(f"{len(la)} vs {len(lb)} steps")
    mag, grad = load_magnitudes(mag_dir)
    bound = (steps - 1) * lr * ADAM_SENSITIVITY * 2 * gamma(n) * sum(m.sum() for m in mag.values())
    what = f"AdamW, {steps} steps of lr {lr}, 2 gamma_{n}"
    unit = HALF_UNIT[precision]
    if unit:
        w = safetensors_io.load(os.path.join(model, "model.safetensors"))
        bound += 2 * unit * sum((np.abs(g) * (np.abs(w[k].astype(np.float64)) + steps * lr)).sum()
                                for k, g in grad.items())
        what += f", {precision} copies one ulp apart"
    worst = max(abs(x - y) / abs(y) for x, y in zip(la, lb))
    tol = bound / min(abs(y) for y in lb)
    print(f"{len(la)} steps, largest relative loss difference {worst:.2e}, bound {tol:.2e} ({what})")
    if not worst <= tol:
        fail(f"relative loss difference {worst:.2e} > {tol:.2e}")


def zero_bytes(sharded, full):
    s, f = json.load(open(sharded)), json.load(open(full))
    # The optimizer state, and with a half precision the FP32 masters (peak included: a rank's model
    # is born with masters for its own parameters only).
    for category in ("optimizer", "master_params"):
        unsharded = f["ranks"][0][category]
        if unsharded == 0:
            continue
        for r in s["ranks"]:
            ratio = r[category] / unsharded
            print(f"rank {r['rank']}: {category} {r[category]} bytes, {ratio:.2f} of unsharded {unsharded}")
            # Byte counts, exact on every machine. zero_owners gives each parameter whole to the rank
            # its middle falls in: a rank's share is off half by at most half the largest parameter's
            # (c_fc's 4096 of the 2-block GPT's 28k values: 0.07; 0.02 with 8 blocks).
            if not 0.3 <= ratio <= 0.7:
                fail(f"rank {r['rank']} holds {ratio:.2f} of the {category}, expected about half")
        if sum(r[category] for r in s["ranks"]) != unsharded:
            fail(f"the shards do not add up to the unsharded {category}")


def resumed_losses(resumed, full):
    r, f = json.load(open(resumed)), json.load(open(full))
    first = r["first_step"] - 1  # 0-based index of the resumed run's first step
    if r["losses"] != f["losses"][first:]:
        fail(f"resumed losses {r['losses']} != the uninterrupted run's {f['losses'][first:]}")
    print(f"steps {first + 1}..{len(f['losses'])}: losses bit-identical to the uninterrupted run")


def category_bytes(sharded, full, category, most):
    s, f = json.load(open(sharded)), json.load(open(full))
    unsharded = f["ranks"][0][category]
    for r in s["ranks"]:
        ratio = r[category] / unsharded
        print(f"rank {r['rank']}: {category} {r[category]} bytes, {ratio:.2f} of unsharded {unsharded}")
        # Byte counts, exact on every machine: the owned half (off by at most 0.02 with the 8-block GPT's
        # whole parameters, see zero_bytes) and one block of 8 in flight (0.12): at most 0.64 of the whole.
        if ratio > most:
            fail(f"rank {r['rank']} holds {ratio:.2f} of the {category}, expected at most {most}")


def planned_ranks(plan, run):
    p, r = json.load(open(plan)), json.load(open(run))
    if len(p["ranks"]) != len(r["ranks"]):
        fail(f"{len(p['ranks'])} planned ranks, {len(r['ranks'])} measured")
    for planned, measured in zip(p["ranks"], r["ranks"]):
        for key in ("total", "params", "grads", "optimizer"):
            if planned["predicted_memory"][key] != measured[key]:
                fail(f"rank {measured['rank']}: planned {key} {planned['predicted_memory'][key]} != "
                     f"measured {measured[key]}")
        print(f"rank {measured['rank']}: planned = measured ({measured['total']} bytes)")


def untie_head(model_dir):
    path = os.path.join(model_dir, "model.safetensors")
    tensors = safetensors_io.load(path)
    embed = tensors["model.embed_tokens.weight"]
    noise = np.random.default_rng(3).normal(0, 0.02, size=embed.shape).astype(np.float32)
    tensors["lm_head.weight"] = embed + noise
    safetensors_io.save(path, tensors)
    config_path = os.path.join(model_dir, "config.json")
    config = json.load(open(config_path))
    config["tie_word_embeddings"] = False
    json.dump(config, open(config_path, "w"))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make-batch":
        make_batch(sys.argv[2])
    elif cmd == "plain-batch":
        plain_batch(sys.argv[2])
    elif cmd == "row-batches":
        row_batches(sys.argv[2], sys.argv[3])
    elif cmd == "magnitudes":
        magnitudes(sys.argv[2], sys.argv[3])
    elif cmd == "tensors":
        tensors(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif cmd == "grads":
        grads(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == "sgd-weights":
        sgd_weights(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]))
    elif cmd == "adamw-losses":
        adamw_losses(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]),
                     sys.argv[8], sys.argv[9] if len(sys.argv) > 9 else None)
    elif cmd == "zero-bytes":
        zero_bytes(sys.argv[2], sys.argv[3])
    elif cmd == "grad-bytes":
        category_bytes(sys.argv[2], sys.argv[3], "grads", 0.7)
    elif cmd == "resumed-losses":
        resumed_losses(sys.argv[2], sys.argv[3])
    elif cmd == "param-bytes":
        category_bytes(sys.argv[2], sys.argv[3], "params", 0.7)
    elif cmd == "planned-ranks":
        planned_ranks(sys.argv[2], sys.argv[3])
    elif cmd == "untie-head":
        untie_head(sys.argv[2])
    else:
        fail(f"unknown command {cmd}")
