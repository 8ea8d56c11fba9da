#!/usr/bin/python3
"""GPT-2 parity: frugal's loss and every gradient against a float64 PyTorch reference.

    /usr/bin/python3 tests/parity/test_gpt_parity.py --frugal build/frugal
    /usr/bin/python3 tests/parity/test_gpt_parity.py --self-check      # checks the reference itself

Case 1: a random GPT-2 model saved under plain HF names; `frugal grad` must reproduce the
reference loss (relative error) and every parameter gradient (||g-ref||/||ref||) within bounds derived
from fp32's unit, the model's reductions and the data's magnitudes (parity_common's tolerances).
Case 2: the same weights saved with the `transformer.` prefix, an `lm_head.weight` equal to wte
and the `h.{i}.attn.bias` causal-mask buffers; frugal must accept it and give the same loss
(and, for every gradient it writes, the same gradient).
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_reference as ref  # noqa: E402
import parity_common as pc  # noqa: E402
import safetensors_io  # noqa: E402

CONFIG = pc.CONFIG


# ---------------------------------------------------------------- fixtures

def hf_prefixed(tensors, config):
    """The same weights as a `GPT2LMHeadModel` checkpoint: transformer. prefix, lm_head, mask buffers."""
    out = {"transformer." + k: v for k, v in tensors.items()}
    out["lm_head.weight"] = tensors["wte.weight"].copy()
    T = config["n_positions"]
    mask = np.tril(np.ones((T, T), dtype=np.float32)).reshape(1, 1, T, T)
    for i in range(config["n_layer"]):
        out[f"transformer.h.{i}.attn.bias"] = mask.copy()
    return out


def fixtures(tmp, rng):
    """The shared random model and batch, and the same weights as an HF-prefixed checkpoint in tmp/model_hf."""
    fx = pc.model_and_batch(tmp, rng)
    prefixed_dir = os.path.join(tmp, "model_hf")
    pc.write_model(prefixed_dir, hf_prefixed(fx.tensors, CONFIG), CONFIG)
    return fx, prefixed_dir


# ---------------------------------------------------------------- parity

def check_grads(results, case, grads_path, ref_grads, grad_tols, require_all):
    try:
        got_raw = safetensors_io.load(grads_path)
    except (OSError, ValueError) as e:
        results.fail(case, "grads", f"cannot read {grads_path}: {e}")
        return
    got = {}
    for k, v in got_raw.items():
        name = ref.canonical_name(k)
        if name is not None:
            got[name] = v
    for name in ref.param_names(CONFIG):
        if name in got:
            results.check_grad(case, name, got[name], ref_grads[name], grad_tols[name])
        elif require_all:
            results.fail(case, name, "missing from grads.safetensors")


def parity(frugal, seed, keep):
    frugal = os.path.abspath(frugal)
    rng = np.random.default_rng(seed)
    results = pc.Results()
    with pc.scratch_dir("frugal_parity_", keep) as tmp:
        fx, prefixed_dir = fixtures(tmp, rng)
        params, config = ref.load_model(fx.model_dir)
        ref_loss, ref_grads = ref.loss_and_grads(params, config, fx.inputs, fx.targets)
        print(f"reference loss (float64): {ref_loss:.10f}; {pc.counted_targets(fx.targets)}")
        # fp32 frugal against exact arithmetic (both checkpoint layouts load the same weights).
        loss_tol, grad_tols = pc.derived_bounds(ref, params, config, fx.inputs, fx.targets, ref_loss, ref_grads,
                                                pc.gpt_reduction_terms(config, *fx.inputs.shape))

        for case, model_dir, require_all in (("hf-plain", fx.model_dir, True), ("hf-prefix", prefixed_dir, False)):
            grads_path = os.path.join(tmp, f"grads_{case}.safetensors")
            loss, err = pc.frugal_grad(frugal, model_dir, fx.batch_path, grads_path)
            if err is not None:
                results.fail_run(case, "frugal grad", err)
                continue
            results.check(case, "loss", pc.rel_diff(loss, ref_loss), loss_tol, f"frugal {loss:.8f} ref {ref_loss:.8f}")
            check_grads(results, case, grads_path, ref_grads, grad_tols, require_all)

    return results.report("parity_gpt")


# ---------------------------------------------------------------- checking the reference itself

def builtin_loss(params, config, inputs, targets):
    """An independent formulation from torch's built-in ops (F.layer_norm, F.gelu tanh, F.softmax,
    F.cross_entropy with ignore_index), with Conv1D weights used through F.linear(x, W.T)."""
    F = torch.nn.functional
    inputs = torch.as_tensor(inputs, dtype=torch.long)
    targets = torch.as_tensor(targets, dtype=torch.long)
    B, T = inputs.shape
    D, H, eps = config["n_embd"], config["n_head"], config["layer_norm_epsilon"]
    x = F.embedding(inputs, params["wte.weight"]) + F.embedding(torch.arange(T), params["wpe.weight"])[None]
    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), diagonal=1)
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        a = F.layer_norm(x, (D,), params[p + "ln_1.weight"], params[p + "ln_1.bias"], eps)
        qkv = F.linear(a, params[p + "attn.c_attn.weight"].t(), params[p + "attn.c_attn.bias"])
        q, k, v = qkv.split(D, dim=-1)
        q, k, v = (t.view(B, T, H, D // H).permute(0, 2, 1, 3) for t in (q, k, v))
        att = F.softmax(torch.einsum("bhqd,bhkd->bhqk", q, k) * (D // H) ** -0.5 + mask, dim=-1)
        y = torch.einsum("bhqk,bhkd->bhqd", att, v).permute(0, 2, 1, 3).reshape(B, T, D)
        x = x + F.linear(y, params[p + "attn.c_proj.weight"].t(), params[p + "attn.c_proj.bias"])
        m = F.layer_norm(x, (D,), params[p + "ln_2.weight"], params[p + "ln_2.bias"], eps)
        m = F.gelu(F.linear(m, params[p + "mlp.c_fc.weight"].t(), params[p + "mlp.c_fc.bias"]), approximate="tanh")
        x = x + F.linear(m, params[p + "mlp.c_proj.weight"].t(), params[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (D,), params["ln_f.weight"], params["ln_f.bias"], eps)
    logits = F.linear(x, params["wte.weight"])
    return F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=ref.IGNORE_INDEX)


def self_check(seed):
    """Checks gpt2_reference against (a) torch built-ins + autograd and (b) central finite differences,
    and the safetensors round trip / HF-prefixed loading."""
    rng = np.random.default_rng(seed)
    results = pc.Results()
    with pc.scratch_dir("frugal_parity_self_") as tmp:
        fx, prefixed_dir = fixtures(tmp, rng)
        tensors, inputs, targets = fx.tensors, fx.inputs, fx.targets

        # safetensors round trip (bit-exact, dtypes and shapes preserved)
        back = safetensors_io.load(os.path.join(fx.model_dir, "model.safetensors"))
        ok = set(back) == set(tensors) and all(back[k].dtype == np.float32 and np.array_equal(back[k], tensors[k])
                                               for k in tensors)
        results.add("io", "model round trip", 0.0, 0.0, ok)
        b = safetensors_io.load(fx.batch_path)
        ok = b["inputs"].dtype == np.int32 and np.array_equal(b["inputs"], inputs) and np.array_equal(b["targets"], targets)
        results.add("io", "batch round trip", 0.0, 0.0, ok)
        with open(fx.batch_path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
        results.add("io", "header multiple of 8", 0.0, 0.0, n % 8 == 0)
        # BF16 decoding: a hand-built file whose data are the high halves of float32 values.
        bf_path = os.path.join(tmp, "bf16.safetensors")
        vals = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)
        data = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
        hdr = json.dumps({"x": {"dtype": "BF16", "shape": [4], "data_offsets": [0, len(data)]}}).encode()
        hdr += b" " * ((8 - len(hdr) % 8) % 8)
        with open(bf_path, "wb") as f:
            f.write(len(hdr).to_bytes(8, "little") + hdr + data)
        results.add("io", "bf16 decode", 0.0, 0.0, np.array_equal(safetensors_io.load(bf_path)["x"], vals))

        params, config = ref.load_model(fx.model_dir)
        params_hf, _ = ref.load_model(prefixed_dir)
        ok = set(params) == set(params_hf) and all(torch.equal(params[k], params_hf[k]) for k in params)
        results.add("io", "transformer. prefix load", 0.0, 0.0, ok)

        loss, grads = ref.loss_and_grads(params, config, inputs, targets)
        print(f"reference loss: {loss:.12f}")
        for name, g in grads.items():
            if not np.isfinite(g).all() or np.linalg.norm(g) == 0:
                results.fail("nontrivial", name, "gradient is zero or not finite")
        # Each float64 evaluation within these of exact arithmetic (parity_common's tolerances, in 2^-53).
        loss_tol, grad_tols = pc.derived_bounds(ref, params, config, inputs, targets, loss, grads,
                                                pc.gpt_reduction_terms(config, *inputs.shape), unit=pc.FP64_UNIT)

        # (a) independent formulation with torch built-ins: two float64 evaluations, each within the bound
        bl = builtin_loss(params, config, inputs, targets)
        bgrads = torch.autograd.grad(bl, [params[n] for n in grads])
        results.check("builtin", "loss", pc.rel_diff(bl.item(), loss), 2 * loss_tol)
        for name, bg in zip(grads, bgrads):
            results.check("builtin", name, pc.rel_err(grads[name], bg.numpy()), 2 * grad_tols[name])

        # (b) central finite differences in float64 on a few coordinates of every tensor
        pc.check_finite_differences(results, rng, lambda: ref.loss_fn(params, config, inputs, targets),
                                    [(n, params[n], grads[n]) for n in ref.param_names(config)], loss_tol * abs(loss))
    return results.report("parity_gpt self-check")


if __name__ == "__main__":
    sys.exit(pc.cli_main(__doc__, parity, self_check))
