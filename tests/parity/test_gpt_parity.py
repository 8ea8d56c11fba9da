#!/usr/bin/python3
"""GPT-2 parity: frugal's loss and every gradient against a float64 PyTorch reference.

    /usr/bin/python3 tests/parity/test_gpt_parity.py --frugal build/frugal
    /usr/bin/python3 tests/parity/test_gpt_parity.py --self-check      # checks the reference itself

Case 1: a random GPT-2 model saved under plain HF names; `frugal grad` must reproduce the
reference loss (rel. error <= 1e-5) and every parameter gradient (||g-ref||/||ref|| <= 1e-4).
Case 2: the same weights saved with the `transformer.` prefix, an `lm_head.weight` equal to wte
and the `h.{i}.attn.bias` causal-mask buffers; frugal must accept it and give the same loss
(and, for every gradient it writes, the same gradient).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_reference as ref  # noqa: E402
import safetensors_io  # noqa: E402

CONFIG = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 32,
    "n_positions": 16,
    "vocab_size": 61,
    "layer_norm_epsilon": 1e-5,
}
BATCH, SEQ = 3, 16
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4


# ---------------------------------------------------------------- fixtures

def random_model(config, rng):
    """name -> float32 array. Weights N(0, 0.2), biases N(0, 0.1), LayerNorm gains 1 + N(0, 0.1)."""
    tensors = {}
    for name, shape in ref.param_shapes(config).items():
        if ".ln_" in name or name.startswith("ln_"):
            if name.endswith(".weight"):
                a = 1.0 + rng.normal(0.0, 0.1, shape)
            else:
                a = rng.normal(0.0, 0.1, shape)
        elif name.endswith(".bias"):
            a = rng.normal(0.0, 0.1, shape)
        else:
            a = rng.normal(0.0, 0.2, shape)
        tensors[name] = a.astype(np.float32)
    return tensors


def hf_prefixed(tensors, config):
    """The same weights as a `GPT2LMHeadModel` checkpoint: transformer. prefix, lm_head, mask buffers."""
    out = {"transformer." + k: v for k, v in tensors.items()}
    out["lm_head.weight"] = tensors["wte.weight"].copy()
    T = config["n_positions"]
    mask = np.tril(np.ones((T, T), dtype=np.float32)).reshape(1, 1, T, T)
    for i in range(config["n_layer"]):
        out[f"transformer.h.{i}.attn.bias"] = mask.copy()
    return out


def write_model(model_dir, tensors, config):
    os.makedirs(model_dir, exist_ok=True)
    cfg = dict(config)
    cfg.update({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_ctx": config["n_positions"],
                "activation_function": "gelu_new"})
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    safetensors_io.save(os.path.join(model_dir, "model.safetensors"), tensors)


def random_batch(config, rng, batch=BATCH, seq=SEQ):
    V = config["vocab_size"]
    inputs = rng.integers(0, V, size=(batch, seq)).astype(np.int32)
    targets = rng.integers(0, V, size=(batch, seq)).astype(np.int32)
    ignore = rng.random((batch, seq)) < 0.25
    if not ignore.any():
        ignore[0, 0] = True
    ignore[-1, -1] = False  # keep at least one counted target
    targets[ignore] = ref.IGNORE_INDEX
    return inputs, targets


# ---------------------------------------------------------------- running frugal

def run_frugal_grad(frugal, model_dir, batch_path, out_path, extra_args=()):
    cmd = [frugal, "grad", "--model", model_dir, "--batch", batch_path, "--out", out_path, *extra_args]
    print("$ " + " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"could not run frugal: {e}"
    if proc.returncode != 0:
        return None, (f"frugal grad exited with {proc.returncode}\n--- stdout\n{proc.stdout[-2000:]}"
                      f"\n--- stderr\n{proc.stderr[-2000:]}")
    loss = None
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "loss" in obj:
            loss = float(obj["loss"])
    if loss is None:
        return None, f"no JSON line with \"loss\" in frugal's stdout:\n{proc.stdout[-2000:]}"
    return loss, None


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(b)
    diff = np.linalg.norm(a - b)
    return diff / denom if denom > 0 else diff


class Results:
    def __init__(self):
        self.rows = []

    def add(self, case, name, err, tol, ok, note=""):
        self.rows.append((case, name, err, tol, ok, note))

    def fail(self, case, name, note):
        self.rows.append((case, name, float("nan"), float("nan"), False, note))

    def print_table(self):
        w = max([len(r[1]) for r in self.rows] + [4])
        print(f"{'case':<10} {'name':<{w}} {'rel_err':>10} {'tol':>8}  result")
        for case, name, err, tol, ok, note in self.rows:
            print(f"{case:<10} {name:<{w}} {err:>10.3e} {tol:>8.0e}  {'ok' if ok else 'FAIL'}"
                  + (f"  {note}" if note else ""))

    def counts(self):
        passed = sum(1 for r in self.rows if r[4])
        return passed, len(self.rows) - passed


def check_grads(results, case, grads_path, ref_grads, shapes, require_all):
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
        if name not in got:
            if require_all:
                results.fail(case, name, "missing from grads.safetensors")
            continue
        g = got[name]
        if tuple(g.shape) != tuple(shapes[name]):
            results.fail(case, name, f"shape {tuple(g.shape)} != {tuple(shapes[name])}")
            continue
        e = rel_err(g, ref_grads[name])
        results.add(case, name, e, GRAD_RTOL, bool(e <= GRAD_RTOL))


def parity(frugal, seed, keep):
    frugal = os.path.abspath(frugal)
    rng = np.random.default_rng(seed)
    tmp = tempfile.mkdtemp(prefix="frugal_parity_")
    results = Results()
    try:
        tensors = random_model(CONFIG, rng)
        inputs, targets = random_batch(CONFIG, rng)
        plain_dir = os.path.join(tmp, "model")
        prefixed_dir = os.path.join(tmp, "model_hf")
        write_model(plain_dir, tensors, CONFIG)
        write_model(prefixed_dir, hf_prefixed(tensors, CONFIG), CONFIG)
        batch_path = os.path.join(tmp, "batch.safetensors")
        safetensors_io.save(batch_path, {"inputs": inputs, "targets": targets})

        params, config = ref.load_model(plain_dir)
        ref_loss, ref_grads = ref.loss_and_grads(params, config, inputs, targets)
        shapes = ref.param_shapes(config)
        print(f"reference loss (float64): {ref_loss:.10f}; counted targets: "
              f"{int((targets != ref.IGNORE_INDEX).sum())} of {targets.size}")

        for case, model_dir, require_all in (("hf-plain", plain_dir, True), ("hf-prefix", prefixed_dir, False)):
            grads_path = os.path.join(tmp, f"grads_{case}.safetensors")
            loss, err = run_frugal_grad(frugal, model_dir, batch_path, grads_path)
            if err is not None:
                print(err, file=sys.stderr)
                results.fail(case, "frugal grad", err.splitlines()[0])
                continue
            e = abs(loss - ref_loss) / abs(ref_loss)
            results.add(case, "loss", e, LOSS_RTOL, bool(e <= LOSS_RTOL), f"frugal {loss:.8f} ref {ref_loss:.8f}")
            check_grads(results, case, grads_path, ref_grads, shapes, require_all)
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    results.print_table()
    passed, failed = results.counts()
    print(f"parity_gpt: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


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
    results = Results()
    tmp = tempfile.mkdtemp(prefix="frugal_parity_self_")
    try:
        tensors = random_model(CONFIG, rng)
        inputs, targets = random_batch(CONFIG, rng)
        plain_dir = os.path.join(tmp, "model")
        prefixed_dir = os.path.join(tmp, "model_hf")
        write_model(plain_dir, tensors, CONFIG)
        write_model(prefixed_dir, hf_prefixed(tensors, CONFIG), CONFIG)
        batch_path = os.path.join(tmp, "batch.safetensors")
        safetensors_io.save(batch_path, {"inputs": inputs, "targets": targets})

        # safetensors round trip (bit-exact, dtypes and shapes preserved)
        back = safetensors_io.load(os.path.join(plain_dir, "model.safetensors"))
        ok = set(back) == set(tensors) and all(back[k].dtype == np.float32 and np.array_equal(back[k], tensors[k])
                                               for k in tensors)
        results.add("io", "model round trip", 0.0, 0.0, ok)
        b = safetensors_io.load(batch_path)
        ok = b["inputs"].dtype == np.int32 and np.array_equal(b["inputs"], inputs) and np.array_equal(b["targets"], targets)
        results.add("io", "batch round trip", 0.0, 0.0, ok)
        with open(batch_path, "rb") as f:
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

        params, config = ref.load_model(plain_dir)
        params_hf, _ = ref.load_model(prefixed_dir)
        ok = set(params) == set(params_hf) and all(torch.equal(params[k], params_hf[k]) for k in params)
        results.add("io", "transformer. prefix load", 0.0, 0.0, ok)

        loss, grads = ref.loss_and_grads(params, config, inputs, targets)
        print(f"reference loss: {loss:.12f}")
        for name, g in grads.items():
            if not np.isfinite(g).all() or np.linalg.norm(g) == 0:
                results.fail("nontrivial", name, "gradient is zero or not finite")

        # (a) independent formulation with torch built-ins
        bl = builtin_loss(params, config, inputs, targets)
        bgrads = torch.autograd.grad(bl, [params[n] for n in grads])
        e = abs(bl.item() - loss) / abs(loss)
        results.add("builtin", "loss", e, 1e-12, e <= 1e-12)
        for name, bg in zip(grads, bgrads):
            e = rel_err(grads[name], bg.numpy())
            results.add("builtin", name, e, 1e-10, e <= 1e-10)

        # (b) central finite differences in float64 on a few coordinates of every tensor
        h = 1e-6
        with torch.no_grad():
            for name in ref.param_names(config):
                p = params[name]
                flat = p.view(-1)
                idx = rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False)
                fd, an = [], []
                for j in idx:
                    j = int(j)
                    orig = flat[j].item()
                    flat[j] = orig + h
                    lp = ref.loss_fn(params, config, inputs, targets).item()
                    flat[j] = orig - h
                    lm = ref.loss_fn(params, config, inputs, targets).item()
                    flat[j] = orig
                    fd.append((lp - lm) / (2 * h))
                    an.append(grads[name].reshape(-1)[j])
                e = rel_err(an, fd)
                results.add("fin-diff", name, e, 1e-6, e <= 1e-6)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results.print_table()
    passed, failed = results.counts()
    print(f"parity_gpt self-check: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def cli_main(doc, parity_fn, self_check_fn):
    """The command line shared by the parity scripts: --frugal PATH, or --self-check."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frugal", help="path to the frugal binary")
    ap.add_argument("--self-check", action="store_true", help="check the reference implementation itself")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.self_check:
        return self_check_fn(args.seed)
    if not args.frugal:
        ap.error("--frugal PATH is required (or --self-check)")
    return parity_fn(args.frugal, args.seed, args.keep)


if __name__ == "__main__":
    sys.exit(cli_main(__doc__, parity, self_check))
