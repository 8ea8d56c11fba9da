"""What the parity scripts share: the random test model and batch, running frugal, the result table,
finite differences and the command line.

    with scratch_dir("frugal_x_", keep) as tmp:
        fx = model_and_batch(tmp, rng)          # fx.tensors, fx.inputs, fx.targets, fx.model_dir, fx.batch_path
        loss, err = frugal_grad(frugal, fx.model_dir, fx.batch_path, out_path)
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

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
FD_STEP = 1e-6     # central differences in float64 (the self-checks); their bound: fd_bound


# ---------------------------------------------------------------- tolerances
# How far frugal (fp32) may be from the float64 reference, derived from the data as tests/tolerances.h
# and tests/gradcheck.h derive the C++ suite's bounds, so that it holds for every GEMM kernel frugal may
# run: OpenBLAS's Haswell, SkylakeX and Prescott kernels add in other orders, with or without FMA, never
# beyond the worst case (and these runs are fp32: FRUGAL_HALF_GEMM plays no part). To first order an fp32
# chain of reductions is within gamma_n of its magnitude of exact arithmetic, n the terms of every
# reduction on its longest path (Higham); the reference's own float64 error (2^-53 units) is negligible.
FP32_UNIT = 2.0 ** -24
FP64_UNIT = 2.0 ** -53
# Charged to each elementwise function on the path (exp, tanh, sin/cos, sqrt and divide, silu): glibc's
# vector expf/tanhf are within 4 ulp (8 units; its scalar ones within 1 ulp) plus the few products, sums
# and divides around each.
ELEMENTWISE_TERMS = 12


def gamma(n, unit=FP32_UNIT):
    """Higham's gamma_n = n u / (1 - n u): the worst relative error of a sum of n terms in any order."""
    return n * unit / (1.0 - n * unit)


def gpt_reduction_terms(config, batch, seq, lora_rank=0):
    """(forward, total) terms n on the longest path of an fp32 GPT-2 on batch x seq tokens.
    A block forward: 2 layer norms (mean and variance over E, sqrt, divide), c_attn K=E, scores K=hd,
    the softmax over seq keys (exp), att @ v K=seq, c_proj K=E, c_fc K=E, gelu (tanh), mlp.c_proj K=4E,
    biases and residuals; backward the dx products K=E (mlp.c_proj), 4E (c_fc), E (c_proj), 3E (c_attn),
    gelu', the attention's K=hd (d att), seq (softmax), seq (dq, dk) and the norms' two means over E.
    Then the final norm, the head K=E forward, the loss's exp, the head's dx K=V backward, and the
    batch x seq tokens summed into a weight gradient. An adapter of rank r adds its products and scale
    (r + 2) to each of the 4 products of a block, forward and backward (as tests/gradcheck.h does)."""
    E, L, V = config["n_embd"], config["n_layer"], config["vocab_size"]
    hd, ew = E // config["n_head"], ELEMENTWISE_TERMS
    norm = 2 * E + ew
    adapter = 4 * (lora_rank + 2) if lora_rank else 0
    block_forward = norm + (E + 1) + hd + (seq + ew) + seq + (E + 1) + 1 + norm + (E + 1) + ew + (4 * E + 1) + 1
    block_backward = E + ew + 4 * E + norm + E + (hd + seq + ew + seq) + 3 * E + norm + 2
    forward = L * (block_forward + adapter) + norm + E + ew
    return forward, forward + L * (block_backward + adapter) + V + norm + batch * seq


def per_row_magnitudes(loss_and_grads, inputs, targets):
    """name -> sum over the batch's rows s of |g_s|, g_s the gradient of row s alone normalised by the
    whole batch's count of targets, as in g (tests/gradcheck.h's per_sample_magnitudes).
    loss_and_grads(inputs, targets) -> (loss, name -> numpy gradient) of the mean over those targets."""
    total = int((targets != ref.IGNORE_INDEX).sum())
    out = {}
    for s in range(len(inputs)):
        counted = int((targets[s] != ref.IGNORE_INDEX).sum())
        if counted == 0:
            continue
        _, grads = loss_and_grads(inputs[s:s + 1], targets[s:s + 1])
        for name, g in grads.items():
            out[name] = out.get(name, 0.0) + np.abs(g) * (counted / total)
    return out


def grad_bound(n, magnitude, expected, unit=FP32_UNIT):
    """||g - ref|| / ||ref|| of an fp32 evaluation of n terms on its longest path: every element within
    gamma_n of its magnitude sum_s |g_s| (per_row_magnitudes), so gamma_n ||sum_s |g_s| || / ||g||, the
    unit times the batch sum's condition number, measured on the data."""
    return gamma(n, unit) * np.linalg.norm(magnitude) / max(np.linalg.norm(expected), 1e-300)


def loss_bound(n, hidden, head, targets, loss, unit=FP32_UNIT):
    """|loss - ref| / ref of an fp32 forward of n terms: each logit z = h . w within gamma_n of its
    magnitude M = |h| . |w| (h the final norm's output, w the head's row), and a token's loss
    lse(z) - z_y moves by at most sum_j p_j |dz_j| + |dz_y|; relative to the mean loss."""
    h = hidden.detach().numpy()
    w = head.detach().numpy()
    M = np.abs(h) @ np.abs(w).T                                     # (B, T, V)
    z = h @ w.T
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    valid = targets != ref.IGNORE_INDEX
    y = np.where(valid, targets, 0)
    per_token = (p * M).sum(-1) + np.take_along_axis(M, y[..., None], -1)[..., 0]
    return gamma(n, unit) * per_token[valid].mean() / abs(loss)


def derived_bounds(reference, params, config, inputs, targets, loss, grads, terms, unit=FP32_UNIT, **kw):
    """(loss bound, name -> gradient bound) of an evaluation in `unit` against exact arithmetic:
    loss_bound and grad_bound with terms = (forward, total) from the model's reduction count, the
    magnitudes measured with `reference` (gpt2_reference or llama_reference) on this batch. kw: the
    reference's linear= / wrt=."""
    forward, total = terms
    hidden = reference.final_hidden(params, config, torch.as_tensor(np.asarray(inputs), dtype=torch.long),
                                    **{k: v for k, v in kw.items() if k == "linear"})
    lb = loss_bound(forward, hidden, reference.head_weight(params, config), targets, loss, unit)
    magnitude = per_row_magnitudes(lambda i, t: reference.loss_and_grads(params, config, i, t, **kw), inputs, targets)
    return lb, {n: grad_bound(total, magnitude[n], g, unit) for n, g in grads.items()}


def fd_bound(loss_error, coordinates):
    """The bound on ||analytic - central difference|| over `coordinates` coordinates: each quotient
    (f(x+h) - f(x-h)) / 2h takes two float64 losses, each within loss_error of exact (loss_bound in
    FP64_UNIT times the loss), so is off by at most loss_error / h. Its truncation h^2/6 |f'''|, 1.7e-13
    |f'''|, is far below that for these smooth losses of O(1) weights, as is the analytic gradient's
    own float64 error."""
    return np.sqrt(coordinates) * loss_error / FD_STEP


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


class Fixture(NamedTuple):
    tensors: dict      # the model, name -> float32 array
    inputs: np.ndarray
    targets: np.ndarray
    model_dir: str
    batch_path: str


def model_and_batch(tmp, rng):
    """A random CONFIG model in tmp/model and a random batch in tmp/batch.safetensors, drawn from rng
    in that order (a script draws its own fixtures after them, so every script sees the same model)."""
    tensors = random_model(CONFIG, rng)
    inputs, targets = random_batch(CONFIG, rng)
    model_dir = os.path.join(tmp, "model")
    write_model(model_dir, tensors, CONFIG)
    batch_path = os.path.join(tmp, "batch.safetensors")
    safetensors_io.save(batch_path, {"inputs": inputs, "targets": targets})
    return Fixture(tensors, inputs, targets, model_dir, batch_path)


def counted_targets(targets):
    """`counted targets: N of M`, for the scripts' first line."""
    return f"counted targets: {int((targets != ref.IGNORE_INDEX).sum())} of {targets.size}"


@contextlib.contextmanager
def scratch_dir(prefix, keep=False):
    """A temporary directory, removed on leaving unless keep (then its path is printed)."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- running frugal

def run_frugal(cmd):
    """Run a frugal command; return (proc, None) or (None, error text)."""
    print("$ " + " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"could not run frugal: {e}"
    if proc.returncode != 0:
        return None, (f"`frugal {cmd[1]}` exited with {proc.returncode}\n--- stdout\n{proc.stdout[-2000:]}"
                      f"\n--- stderr\n{proc.stderr[-2000:]}")
    return proc, None


def last_loss(stdout):
    """The loss of the last stdout line that is a JSON object with "loss", or None."""
    loss = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "loss" in obj:
            loss = float(obj["loss"])
    return loss


def frugal_grad(frugal, model_dir, batch_path, out_path, adapter_dir=None):
    """`frugal grad`, gradients to out_path; return (loss, None) or (None, error text)."""
    cmd = [frugal, "grad", "--model", model_dir]
    if adapter_dir is not None:
        cmd += ["--adapter", adapter_dir]
    cmd += ["--batch", batch_path, "--out", out_path]
    proc, err = run_frugal(cmd)
    if err is not None:
        return None, err
    loss = last_loss(proc.stdout)
    if loss is None:
        return None, f"no JSON line with \"loss\" in frugal's stdout:\n{proc.stdout[-2000:]}"
    return loss, None


def first_line(err):
    """The most telling line of an error text: the first stderr line if any, else the first line."""
    lines = err.splitlines()
    if "--- stderr" in lines:
        rest = [l for l in lines[lines.index("--- stderr") + 1:] if l.strip()]
        if rest:
            return f"{lines[0]}: {rest[0].strip()}"
    return lines[0]


# ---------------------------------------------------------------- comparing

def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(b)
    diff = np.linalg.norm(a - b)
    return diff / denom if denom > 0 else diff


def rel_diff(a, b):
    """|a - b| / |b| for two scalars (losses)."""
    return abs(a - b) / abs(b)


class Results:
    """The rows of a script's table: case, name, error, tolerance, pass, note."""

    def __init__(self):
        self.rows = []

    def add(self, case, name, err, tol, ok, note=""):
        self.rows.append((case, name, err, tol, ok, note))

    def check(self, case, name, err, tol, note=""):
        """A row that passes when err is within tol."""
        self.add(case, name, err, tol, bool(err <= tol), note)

    def fail(self, case, name, note):
        self.rows.append((case, name, float("nan"), float("nan"), False, note))

    def fail_run(self, case, name, err):
        """A frugal run that failed: the whole error text to stderr, its telling line to the table."""
        print(err, file=sys.stderr)
        self.fail(case, name, first_line(err))

    def check_grad(self, case, name, got, expected, tol):
        """A gradient from frugal against the reference's: same shape, finite, within tol (grad_bound)."""
        if tuple(got.shape) != tuple(expected.shape):
            self.fail(case, name, f"shape {tuple(got.shape)} != {tuple(expected.shape)}")
        elif not np.isfinite(got).all():
            self.fail(case, name, "not finite")
        else:
            self.check(case, name, rel_err(got, expected), tol)

    def report(self, title):
        """Print the table and `title: N passed, M failed`; return the exit status (1 on any failure)."""
        w = max([len(r[1]) for r in self.rows] + [4])
        print(f"{'case':<10} {'name':<{w}} {'rel_err':>10} {'tol':>9}  result")
        for case, name, err, tol, ok, note in self.rows:
            print(f"{case:<10} {name:<{w}} {err:>10.3e} {tol:>9.2e}  {'ok' if ok else 'FAIL'}"
                  + (f"  {note}" if note else ""))
        passed = sum(1 for r in self.rows if r[4])
        failed = len(self.rows) - passed
        print(f"{title}: {passed} passed, {failed} failed")
        return 0 if failed == 0 else 1


def check_finite_differences(results, rng, loss, named, loss_error):
    """Central differences of loss() on up to three random coordinates of each tensor, against the
    analytic gradient, within fd_bound(loss_error) relative to the differences' norm.
    named: (row name, leaf tensor, its gradient as numpy) in the order to draw them."""
    with torch.no_grad():
        for name, tensor, grad in named:
            flat = tensor.view(-1)
            idx = rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False)
            fd, an = [], []
            for j in idx:
                j = int(j)
                orig = flat[j].item()
                flat[j] = orig + FD_STEP
                lp = loss().item()
                flat[j] = orig - FD_STEP
                lm = loss().item()
                flat[j] = orig
                fd.append((lp - lm) / (2 * FD_STEP))
                an.append(grad.reshape(-1)[j])
            results.check("fin-diff", name, rel_err(an, fd), fd_bound(loss_error, len(idx)) / np.linalg.norm(fd))


# ---------------------------------------------------------------- command line

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
