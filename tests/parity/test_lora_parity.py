#!/usr/bin/python3
"""LoRA parity: frugal's PEFT-adapter training and merging against a float64 PyTorch reference.

    /usr/bin/python3 tests/parity/test_lora_parity.py --frugal build/frugal
    /usr/bin/python3 tests/parity/test_lora_parity.py --self-check      # checks the reference itself

The model is the random GPT-2 of parity_common.py (n_layer 2, n_head 2, n_embd 32, n_positions 16,
vocab 61) and a batch B=3, T=16 with some targets -100. The adapter is a PEFT LoRA directory with r=4,
lora_alpha=8, target_modules ["c_attn", "c_proj", "c_fc"] (PEFT suffix matching: c_proj hits both
attn.c_proj and mlp.c_proj) and random non-zero A [r,in] and B [out,r], N(0, 0.2). For GPT-2's Conv1D
modules (W [in,out], y = x @ W + b) the adapted output is

    y = x @ W + b + (alpha / r) * (x @ A^T) @ B^T,      merged: W' = W + (alpha / r) * (B @ A)^T.

The reference is gpt2_reference's GPT-2 with that output as its `linear`, differentiated in A and B.

Checks:
  adapter  `frugal grad --model M --adapter A --batch b --out g`: the loss's relative error, and each
           ||g-ref||/||ref||, within bounds derived from fp32's unit, the model's reductions and the
           data's magnitudes (parity_common's tolerances); the output holds exactly the adapter's keys
           (no base-model gradient).
  merge    `frugal lora merge --model M --adapter A --out D`: every targeted weight equals
           W + (alpha/r)(B A)^T (numpy, float64) within fp32's rounding of that sum (merge_bound);
           untouched tensors unchanged (copied: 0 expected, 1e-6 allowed).
  merged   `frugal grad --model D --batch b --out g` (no adapter): its loss equals the adapter loss and
           the reference, within the rounding of the two fp32 evaluations.
Prints a table and `parity_lora: N passed, M failed`; exits 1 on any failure.
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
RANK, ALPHA = 4, 8
TARGET_MODULES = ["c_attn", "c_proj", "c_fc"]
MODULES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # Conv1D modules of a block, model order
KEY_PREFIX = "base_model.model.transformer."
# Tensors the merge does not touch are copied bit for bit (0 measured): an exact identity, which any
# non-negative bound holds on every kernel; 1e-6 is not a rounding bound.
UNCHANGED_RTOL = 1e-6


# ---------------------------------------------------------------- adapter layout

def module_dims(config):
    """Conv1D module suffix -> (in, out)."""
    D = config["n_embd"]
    return {"attn.c_attn": (D, 3 * D), "attn.c_proj": (D, D), "mlp.c_fc": (D, 4 * D), "mlp.c_proj": (4 * D, D)}


def all_modules(config):
    """Every Conv1D module name of the model (`h.{i}.attn.c_attn`, ...), in model order."""
    return [f"h.{i}.{m}" for i in range(config["n_layer"]) for m in MODULES]


def matched_modules(config, target_modules):
    """PEFT's rule for a list of target names: a module matches if its full name equals a target
    or ends with '.' + target."""
    out = []
    for name in all_modules(config):
        full = "transformer." + name
        if any(full == t or full.endswith("." + t) for t in target_modules):
            out.append(name)
    return out


def lora_key(module, which):
    """`h.0.attn.c_attn`, "A" -> `base_model.model.transformer.h.0.attn.c_attn.lora_A.weight`."""
    return f"{KEY_PREFIX}{module}.lora_{which}.weight"


def short_key(key):
    """An adapter key without KEY_PREFIX, as the tables name it."""
    return key[len(KEY_PREFIX):]


def adapted_modules(adapter):
    """The modules (`h.0.attn.c_attn`, ...) an adapter (key -> A or B) adapts, in its order."""
    return [short_key(k)[:-len(".lora_A.weight")] for k in adapter if ".lora_A." in k]


def lora_shapes(config, r, target_modules):
    """adapter key -> shape: lora_A [r, in], lora_B [out, r]."""
    dims = module_dims(config)
    shapes = {}
    for module in matched_modules(config, target_modules):
        fan_in, fan_out = dims[module.split(".", 2)[2]]
        shapes[lora_key(module, "A")] = (r, fan_in)
        shapes[lora_key(module, "B")] = (fan_out, r)
    return shapes


def adapter_config(r, alpha, target_modules):
    return {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": alpha,
        "target_modules": list(target_modules),
        "fan_in_fan_out": True,
        "lora_dropout": 0.0,
        "bias": "none",
        "base_model_name_or_path": "",
        "task_type": "CAUSAL_LM",
        "inference_mode": False,
    }


def random_adapter(config, rng, r=RANK, target_modules=TARGET_MODULES, zero_b=False):
    """adapter key -> float32 array; A and B are N(0, 0.2) (B zero if zero_b, as PEFT initialises it)."""
    tensors = {}
    for key, shape in lora_shapes(config, r, target_modules).items():
        if zero_b and ".lora_B." in key:
            tensors[key] = np.zeros(shape, dtype=np.float32)
        else:
            tensors[key] = rng.normal(0.0, 0.2, shape).astype(np.float32)
    return tensors


def write_adapter(adapter_dir, tensors, r=RANK, alpha=ALPHA, target_modules=TARGET_MODULES):
    os.makedirs(adapter_dir, exist_ok=True)
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(adapter_config(r, alpha, target_modules), f, indent=2)
    safetensors_io.save(os.path.join(adapter_dir, "adapter_model.safetensors"), tensors)


def load_adapter(adapter_dir, config):
    """Return (lora, scale): lora maps adapter keys to float64 leaf tensors with requires_grad;
    scale = lora_alpha / r. Validates the config and that the keys are exactly those of the targets."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    if cfg.get("peft_type") != "LORA":
        raise ValueError(f"peft_type {cfg.get('peft_type')!r} is not LORA")
    if float(cfg.get("lora_dropout", 0.0)) != 0.0 or cfg.get("bias", "none") != "none":
        raise ValueError("the reference supports lora_dropout 0 and bias 'none' only")
    targets = cfg["target_modules"]
    if isinstance(targets, str):
        raise ValueError("regex target_modules are not supported by the reference")
    r = int(cfg["r"])
    scale = float(cfg["lora_alpha"]) / r
    shapes = lora_shapes(config, r, targets)
    tensors = safetensors_io.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    if set(tensors) != set(shapes):
        raise ValueError(f"adapter keys differ: missing {sorted(set(shapes) - set(tensors))}, "
                         f"unexpected {sorted(set(tensors) - set(shapes))}")
    lora = {}
    for key, shape in shapes.items():
        if tuple(tensors[key].shape) != shape:
            raise ValueError(f"{key} has shape {tensors[key].shape}, expected {shape}")
        lora[key] = torch.tensor(tensors[key].astype(np.float64), dtype=torch.float64, requires_grad=True)
    return lora, scale


def load_frozen_model(model_dir):
    """The base model as float64 tensors that do not require grad (frozen)."""
    params, config = ref.load_model(model_dir)
    return {k: v.detach() for k, v in params.items()}, config


# ---------------------------------------------------------------- the LoRA model (float64)

def lora_linear(lora, scale):
    """gpt2_reference's `linear` with the adapter: on an adapted module the Conv1D output plus the
    LoRA path, x @ W + b + scale * (x @ A^T) @ B^T; elsewhere the plain Conv1D."""
    def linear(x, params, module):
        y = ref.conv1d(x, params, module)
        key_a = lora_key(module, "A")
        if key_a in lora:
            a, b = lora[key_a], lora[lora_key(module, "B")]   # [r, in], [out, r]
            y = y + scale * ((x @ a.t()) @ b.t())
        return y
    return linear


def lora_loss_and_grads(params, lora, scale, config, inputs, targets):
    """(loss as float, adapter key -> float64 numpy gradient); only A and B are trainable."""
    return ref.loss_and_grads(params, config, inputs, targets, linear=lora_linear(lora, scale), wrt=lora)


def merged_params(params, lora, scale):
    """Torch merge (differentiable in A, B): W' = W + scale * (B @ A)^T for every adapted module."""
    out = dict(params)
    for module in adapted_modules(lora):
        a, b = lora[lora_key(module, "A")], lora[lora_key(module, "B")]
        out[module + ".weight"] = params[module + ".weight"] + scale * (b @ a).t()
    return out


def merge_numpy(base_tensors, adapter_tensors, r, alpha):
    """canonical name -> float64 merged weight, for every adapted module (numpy, float64)."""
    scale = alpha / r
    out = {}
    for module in adapted_modules(adapter_tensors):
        a = adapter_tensors[lora_key(module, "A")].astype(np.float64)
        b = adapter_tensors[lora_key(module, "B")].astype(np.float64)
        w = base_tensors[module + ".weight"].astype(np.float64)
        out[module + ".weight"] = w + scale * (b @ a).T
    return out


# ---------------------------------------------------------------- parity

def fixtures(tmp, rng):
    """The shared random model and batch, then a random adapter in tmp/adapter."""
    fx = pc.model_and_batch(tmp, rng)
    adapter_tensors = random_adapter(CONFIG, rng)
    adapter_dir = os.path.join(tmp, "adapter")
    write_adapter(adapter_dir, adapter_tensors)
    return fx, adapter_tensors, adapter_dir


def merge_bound(base, a, b, scale, unit=pc.FP32_UNIT):
    """||W' - exact|| / ||exact|| for frugal's fp32 merge, one GEMM W' = W + s A^T B^T (lora_fold): each
    element a dot of r terms, times s, plus W: within gamma_{r+2} of |W| + s |A|^T |B|^T."""
    a, b, w = (x.astype(np.float64) for x in (a, b, base))
    magnitude = np.abs(w) + scale * (np.abs(b) @ np.abs(a)).T
    return pc.gamma(a.shape[0] + 2, unit) * np.linalg.norm(magnitude) / np.linalg.norm(w + scale * (b @ a).T)


def check_adapter_grads(results, grads_path, ref_grads, grad_tols, shapes):
    case = "adapter"
    try:
        got = safetensors_io.load(grads_path)
    except (OSError, ValueError) as e:
        results.fail(case, "grads", f"cannot read {grads_path}: {e}")
        return
    base_names = set(ref.param_names(CONFIG))
    base = sorted(k for k in got if ref.canonical_name(k) in base_names or ".lora_" not in k)
    results.add(case, "no base-model gradients", 0.0, 0.0, not base,
                f"found {base[:4]}{' ...' if len(base) > 4 else ''}" if base else "")
    missing = sorted(set(shapes) - set(got))
    extra = sorted(set(got) - set(shapes))
    note = ""
    if missing or extra:
        note = f"missing {len(missing)} {missing[:2]}, extra {len(extra)} {extra[:2]}"
    results.add(case, "exactly the adapter keys", 0.0, 0.0, not missing and not extra, note)
    for key in shapes:
        if key in got:
            results.check_grad(case, short_key(key), got[key], ref_grads[key], grad_tols[key])
        else:
            results.fail(case, short_key(key), "missing from grads.safetensors")


def check_merged_model(results, merged_dir, base_tensors, adapter_tensors):
    """The merged directory: loadable as a plain GPT-2, adapted weights = W + s(BA)^T, the rest unchanged."""
    case = "merge"
    try:
        ref.read_config(merged_dir)
        raw = safetensors_io.load(os.path.join(merged_dir, "model.safetensors"))
    except (OSError, ValueError, KeyError) as e:
        results.fail(case, "merged directory", f"cannot read {merged_dir}: {e}")
        return False
    got, odd = {}, []
    for k, v in raw.items():
        name = ref.canonical_name(k)
        if name is None:
            continue
        if name in base_tensors:
            got[name] = v
        else:
            odd.append(k)
    missing = [n for n in base_tensors if n not in got]
    note = (f"missing {missing[:3]}" if missing else "") + (f" unexpected {odd[:3]}" if odd else "")
    results.add(case, "plain model tensors", 0.0, 0.0, not missing and not odd, note.strip())
    expected = merge_numpy(base_tensors, adapter_tensors, RANK, ALPHA)
    for name in base_tensors:
        if name not in got:
            continue
        g = got[name]
        if tuple(g.shape) != tuple(base_tensors[name].shape):
            results.fail(case, name, f"shape {tuple(g.shape)} != {tuple(base_tensors[name].shape)}")
            continue
        if name in expected:
            d = pc.rel_err(expected[name], base_tensors[name])  # how far the merge moved it
            module = name[:-len(".weight")]
            tol = merge_bound(base_tensors[name], adapter_tensors[lora_key(module, "A")],
                              adapter_tensors[lora_key(module, "B")], ALPHA / RANK)
            results.check(case, name, pc.rel_err(g, expected[name]), tol, f"merge moved W by {d:.2e}")
    rest = [n for n in base_tensors if n not in expected and n in got
            and tuple(got[n].shape) == tuple(base_tensors[n].shape)]
    if rest:
        worst, worst_name = max((pc.rel_err(got[n], base_tensors[n]), n) for n in rest)
        results.check(case, f"{len(rest)} untouched tensors", worst, UNCHANGED_RTOL, f"worst {worst_name}")
    return True


def check_merged_loss(results, loss, adapter_loss, ref_loss, loss_tol):
    """The merged model's loss from frugal: that of the adapter run, and the reference's. loss_tol
    bounds the adapter run against exact arithmetic: the merged run's rounding (the merged weights
    rounded once, r + 2 terms, then the plain model) is no more than the adapter path's (r + 2 more
    terms in each product), so it is within loss_tol too, and the two runs within 2 loss_tol."""
    if adapter_loss is None:
        results.fail("merged", "loss vs adapter loss", "no adapter loss to compare with")
    else:
        results.check("merged", "loss vs adapter loss", pc.rel_diff(loss, adapter_loss), 2 * loss_tol,
                      f"merged {loss:.8f} adapter {adapter_loss:.8f}")
    results.check("merged", "loss vs reference", pc.rel_diff(loss, ref_loss), loss_tol,
                  f"merged {loss:.8f} ref {ref_loss:.8f}")


def parity(frugal, seed, keep):
    frugal = os.path.abspath(frugal)
    rng = np.random.default_rng(seed)
    results = pc.Results()
    with pc.scratch_dir("frugal_lora_parity_", keep) as tmp:
        fx, adapter_tensors, adapter_dir = fixtures(tmp, rng)
        merged_dir = os.path.join(tmp, "merged")
        params, config = load_frozen_model(fx.model_dir)
        lora, scale = load_adapter(adapter_dir, config)
        ref_loss, ref_grads = lora_loss_and_grads(params, lora, scale, config, fx.inputs, fx.targets)
        base_loss = ref.loss_fn(params, config, fx.inputs, fx.targets).item()
        shapes = lora_shapes(config, RANK, TARGET_MODULES)
        print(f"reference LoRA loss (float64): {ref_loss:.10f} (base model without adapter: {base_loss:.10f}); "
              f"r={RANK} alpha={ALPHA}, {len(shapes)} adapter tensors; {pc.counted_targets(fx.targets)}")
        # fp32 frugal against exact arithmetic: GPT-2's reductions with the adapter's r + 2 in each product.
        loss_tol, grad_tols = pc.derived_bounds(ref, params, config, fx.inputs, fx.targets, ref_loss, ref_grads,
                                                pc.gpt_reduction_terms(config, *fx.inputs.shape, RANK),
                                                linear=lora_linear(lora, scale), wrt=lora)

        # 1. gradients of the adapter
        adapter_loss = None
        grads_path = os.path.join(tmp, "grads_adapter.safetensors")
        loss, err = pc.frugal_grad(frugal, fx.model_dir, fx.batch_path, grads_path, adapter_dir=adapter_dir)
        if err is not None:
            results.fail_run("adapter", "frugal grad --adapter", err)
        else:
            adapter_loss = loss
            results.check("adapter", "loss", pc.rel_diff(loss, ref_loss), loss_tol,
                          f"frugal {loss:.8f} ref {ref_loss:.8f}")
            check_adapter_grads(results, grads_path, ref_grads, grad_tols, shapes)

        # 2. merging, then the merged model without an adapter
        _, err = pc.run_frugal([frugal, "lora", "merge", "--model", fx.model_dir, "--adapter", adapter_dir,
                                "--out", merged_dir])
        if err is not None:
            results.fail_run("merge", "frugal lora merge", err)
        elif check_merged_model(results, merged_dir, fx.tensors, adapter_tensors):
            loss, err = pc.frugal_grad(frugal, merged_dir, fx.batch_path,
                                       os.path.join(tmp, "grads_merged.safetensors"))
            if err is not None:
                results.fail_run("merged", "frugal grad (merged)", err)
            else:
                check_merged_loss(results, loss, adapter_loss, ref_loss, loss_tol)
    return results.report("parity_lora")


# ---------------------------------------------------------------- checking the reference itself

def self_check(seed):
    """Checks the LoRA reference: PEFT target matching, adapter files, B = 0 gives the base GPT-2 loss
    (gpt2_reference), the merged-weight formulation through gpt2_reference gives the same loss and A/B
    gradients, the numpy merge agrees with it, and central finite differences on A and B."""
    rng = np.random.default_rng(seed)
    results = pc.Results()
    with pc.scratch_dir("frugal_lora_self_") as tmp:
        fx, adapter_tensors, adapter_dir = fixtures(tmp, rng)
        inputs, targets = fx.inputs, fx.targets
        zero_dir = os.path.join(tmp, "adapter_b0")
        write_adapter(zero_dir, random_adapter(CONFIG, rng, zero_b=True))

        # PEFT suffix matching of target_modules
        L = CONFIG["n_layer"]
        cases = [(TARGET_MODULES, 4 * L), (["c_attn"], L), (["c_proj"], 2 * L), (["attn.c_proj"], L),
                 (["mlp.c_proj", "c_fc"], 2 * L), (["proj"], 0)]
        for tm, n in cases:
            got = len(matched_modules(CONFIG, tm))
            results.add("targets", f"{tm} -> {n} modules", 0.0, 0.0, got == n, "" if got == n else f"got {got}")

        # adapter files
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            cfg = json.load(f)
        results.add("io", "adapter_config.json", 0.0, 0.0, cfg == adapter_config(RANK, ALPHA, TARGET_MODULES))
        back = safetensors_io.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
        shapes = lora_shapes(CONFIG, RANK, TARGET_MODULES)
        ok = (set(back) == set(shapes) == set(adapter_tensors) and len(shapes) == 4 * L * 2
              and all(back[k].dtype == np.float32 and back[k].shape == shapes[k]
                      and np.array_equal(back[k], adapter_tensors[k]) for k in shapes))
        results.add("io", "adapter round trip", 0.0, 0.0, ok)
        results.add("io", "A, B entirely non-zero", 0.0, 0.0,
                    all(np.count_nonzero(v) == v.size for v in adapter_tensors.values()))

        params, config = load_frozen_model(fx.model_dir)
        lora, scale = load_adapter(adapter_dir, config)
        results.add("io", "scale = alpha / r", 0.0, 0.0, scale == ALPHA / RANK)
        results.add("io", "base frozen", 0.0, 0.0, not any(p.requires_grad for p in params.values()))

        # B = 0: exactly the base model (gpt2_reference), zero A gradients, non-zero B gradients
        zlora, zscale = load_adapter(zero_dir, config)
        zloss, zgrads = lora_loss_and_grads(params, zlora, zscale, config, inputs, targets)
        base_loss = ref.loss_fn(params, config, inputs, targets).item()
        # An exact identity: the adapter's path adds exact zeros (x A^T times B^T = 0), the same float64
        # operations otherwise; 0 in fact, so 1e-12 holds on every kernel (not a rounding bound).
        results.check("B=0", "loss = base GPT-2 loss", pc.rel_diff(zloss, base_loss), 1e-12,
                      f"{zloss:.12f} vs {base_loss:.12f}")
        results.add("B=0", "all lora_A grads zero", 0.0, 0.0,
                    all(not g.any() for k, g in zgrads.items() if ".lora_A." in k))
        results.add("B=0", "all lora_B grads non-zero", 0.0, 0.0,
                    all(np.linalg.norm(g) > 0 for k, g in zgrads.items() if ".lora_B." in k))

        loss, grads = lora_loss_and_grads(params, lora, scale, config, inputs, targets)
        print(f"reference LoRA loss: {loss:.12f} (base: {base_loss:.12f})")
        # A separation: adapters of N(0, 0.2) at scale 2 move the loss by O(0.1) (0.098 at seed 1234), the
        # two float64 losses' rounding is ~1e-12: 1e-3 lies far between.
        results.add("nontrivial", "loss differs from base", abs(loss - base_loss), 0.0, abs(loss - base_loss) > 1e-3)
        bad = [k for k, g in grads.items() if not np.isfinite(g).all() or np.linalg.norm(g) == 0]
        results.add("nontrivial", "every A/B grad finite, non-zero", 0.0, 0.0, not bad, f"{bad[:2]}" if bad else "")

        # merged formulation: gpt2_reference on W' = W + s (B A)^T, differentiated through A and B.
        # Two float64 evaluations, each within these of exact arithmetic (the merged weights rounded
        # once, r + 2 terms, no more than the adapter path's r + 2 in each product).
        loss_tol, grad_tols = pc.derived_bounds(ref, params, config, inputs, targets, loss, grads,
                                                pc.gpt_reduction_terms(config, *inputs.shape, RANK), unit=pc.FP64_UNIT,
                                                linear=lora_linear(lora, scale), wrt=lora)
        eff = merged_params(params, lora, scale)
        mloss = ref.loss_fn(eff, config, inputs, targets)
        mgrads = torch.autograd.grad(mloss, [lora[k] for k in grads])
        results.check("merged-ref", "loss", pc.rel_diff(mloss.item(), loss), 2 * loss_tol)
        for key, mg in zip(grads, mgrads):
            results.check("merged-ref", short_key(key), pc.rel_err(grads[key], mg.numpy()), 2 * grad_tols[key])
        # numpy's merge and torch's, both float64: each within merge_bound (in 2^-53) of exact; the
        # tightest weight's bound for the worst weight.
        npm = merge_numpy(fx.tensors, adapter_tensors, RANK, ALPHA)
        worst = max(pc.rel_err(npm[n], eff[n].detach().numpy()) for n in npm)
        tol = min(2 * merge_bound(fx.tensors[n], adapter_tensors[lora_key(n[:-len(".weight")], "A")],
                                  adapter_tensors[lora_key(n[:-len(".weight")], "B")], scale, pc.FP64_UNIT)
                  for n in npm)
        results.check("merged-ref", f"numpy merge ({len(npm)} weights)", worst, tol)

        # central finite differences in float64 on a few coordinates of every A and B
        linear = lora_linear(lora, scale)
        pc.check_finite_differences(results, rng, lambda: ref.loss_fn(params, config, inputs, targets, linear),
                                    [(short_key(k), lora[k], grads[k]) for k in grads], loss_tol * abs(loss))
    return results.report("parity_lora self-check")


if __name__ == "__main__":
    sys.exit(pc.cli_main(__doc__, parity, self_check))
