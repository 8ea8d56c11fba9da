#!/usr/bin/python3
"""Checks that bench/pytorch_llama_reference.py computes the same function as frugal's Llama: trains a tiny
Llama one step with frugal (so the RMSNorm gains are no longer 1), saves it, loads its weights into the
reference model, and compares the loss and every gradient of `frugal grad` on one random batch (fp32).
Twice: a Llama, and a Qwen3-shaped one (heads of 24 in a 64-wide model, per-head q/k norms).

    /usr/bin/python3 bench/pytorch_llama_parity.py [--frugal build/frugal] [--out out/llama-parity]

Exits 1 when the loss differs by more than 1e-5 relative or a gradient by more than 1e-4 relative (of
its largest element).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
import pytorch_llama_reference as R  # noqa: E402
import safetensors_io  # noqa: E402  (the tests' reader and writer)

def reference_name(hf_name):
    """model.layers.0.self_attn.q_proj.weight -> layers.0.q_proj.weight (the reference's module names)."""
    return hf_name.replace("model.", "", 1).replace("self_attn.", "").replace("mlp.", "")


def compare(frugal, out, shape_flags):
    """True when frugal and the reference agree on the model frugal trains with these extra flags."""
    os.makedirs(out, exist_ok=True)
    model_dir, batch, grads = (os.path.join(out, n) for n in ("model", "batch.safetensors", "grads.safetensors"))
    T = 32
    subprocess.run([frugal, "train", "--arch", "llama", "--layers", "2", "--dim", "64", "--heads", "4",
                    "--kv-heads", "2", "--mlp-dim", "96", "--vocab", "256", "--ctx", str(T), "--data", "synthetic",
                    "--micro-batch", "2", "--steps", "1", "--lr", "1e-2", "--warmup", "0", "--threads", "2",
                    "--save", model_dir] + shape_flags, check=True, capture_output=True)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    model = R.Llama(cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
                    cfg["num_key_value_heads"], cfg["intermediate_size"], T, cfg["vocab_size"],
                    cfg["rms_norm_eps"], cfg["rope_theta"], cfg["head_dim"], cfg["model_type"] == "qwen3")
    weights = safetensors_io.load(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({reference_name(k): torch.from_numpy(t).float() for k, t in weights.items()}, strict=True)

    torch.manual_seed(1)
    idx = torch.randint(0, cfg["vocab_size"], (2, T))
    targets = torch.randint(0, cfg["vocab_size"], (2, T))
    safetensors_io.save(batch, {"inputs": idx.numpy().astype(np.int32), "targets": targets.numpy().astype(np.int32)})
    loss = model(idx, targets)
    loss.backward()
    r = subprocess.run([frugal, "grad", "--model", model_dir, "--batch", batch, "--out", grads, "--threads", "2"],
                       check=True, capture_output=True, text=True)
    frugal_loss = json.loads(r.stdout.strip().splitlines()[-1])["loss"]
    params = dict(model.named_parameters())
    worst_name, worst = "", 0.0
    frugal_grads = safetensors_io.load(grads)
    for k, g in frugal_grads.items():
        p = params[reference_name(k)]
        rel = float((p.grad - torch.from_numpy(g).float()).abs().max() / p.grad.abs().max())
        if rel >= worst:
            worst_name, worst = k, rel
    loss_rel = abs(frugal_loss - loss.item()) / abs(loss.item())
    ok = loss_rel <= 1e-5 and worst <= 1e-4 and len(frugal_grads) == len(params)
    print(f"{cfg['model_type']}: loss: frugal {frugal_loss:.7f}, PyTorch {loss.item():.7f} (relative difference {loss_rel:.1e}); "
          f"{len(frugal_grads)} gradients of {len(params)} parameters, largest relative difference {worst:.1e} "
          f"({worst_name}): {'match' if ok else 'MISMATCH'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frugal", default="build/frugal")
    ap.add_argument("--out", default="out/llama-parity")
    args = ap.parse_args()
    llama = compare(args.frugal, os.path.join(args.out, "llama"), [])
    qwen3 = compare(args.frugal, os.path.join(args.out, "qwen3"), ["--head-dim", "24", "--qk-norm"])
    return 0 if llama and qwen3 else 1


if __name__ == "__main__":
    sys.exit(main())
