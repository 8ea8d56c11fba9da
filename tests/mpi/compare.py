"""Comparisons for tests/mpi/test_data_parallel.sh (Debian's python3 and numpy).

  compare.py make-batch OUT            a ragged GPT batch: rank 0's rows hold few counted tokens
  compare.py tensors A B TOL           every tensor of safetensors A within TOL of B (||a-b|| / ||b||)
  compare.py losses A B TOL            the summary JSONs' per-step losses within TOL (relative)
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


def make_batch(out):
    rng = np.random.default_rng(5)
    inputs = rng.integers(0, 64, size=(8, 16)).astype(np.int32)
    targets = rng.integers(0, 64, size=(8, 16)).astype(np.int32)
    targets[:4, 3:] = -100  # rows of rank 0 (of 2): 3 counted tokens each; rank 1: 16 each
    targets[5, 10:] = -100
    safetensors_io.save(out, {"inputs": inputs, "targets": targets})


def tensors(a, b, tol):
    ta, tb = safetensors_io.load(a), safetensors_io.load(b)
    if sorted(ta) != sorted(tb):
        fail(f"different tensor names: {sorted(ta)} vs {sorted(tb)}")
    worst = max(np.linalg.norm(ta[k].astype(np.float64) - tb[k]) / max(np.linalg.norm(tb[k].astype(np.float64)), 1e-30)
                for k in tb)
    print(f"{len(tb)} tensors, largest relative difference {worst:.2e}")
    if not worst <= tol:
        fail(f"relative difference {worst:.2e} > {tol}")


def losses(a, b, tol):
    la, lb = json.load(open(a))["losses"], json.load(open(b))["losses"]
    if len(la) != len(lb):
        fail(f"{len(la)} vs {len(lb)} steps")
    worst = max(abs(x - y) / abs(y) for x, y in zip(la, lb))
    print(f"{len(la)} steps, largest relative loss difference {worst:.2e}")
    if not worst <= tol:
        fail(f"relative loss difference {worst:.2e} > {tol}")


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
    elif cmd == "tensors":
        tensors(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif cmd == "losses":
        losses(sys.argv[2], sys.argv[3], float(sys.argv[4]))
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
