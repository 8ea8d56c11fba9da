#!/usr/bin/python3
"""Llama-family parity: frugal's loss and every gradient against a float64 PyTorch reference
(llama_reference.py) on small random Hugging Face `llama` / `qwen2` / `qwen3` model directories.

    /usr/bin/python3 tests/parity/test_llama_parity.py --frugal build/frugal
    /usr/bin/python3 tests/parity/test_llama_parity.py --self-check      # checks the reference itself

Every model: 2 layers, hidden 32, 4 heads (head_dim 8 unless a case sets it), intermediate 48, vocab 67, max_position_embeddings
32; weights N(0, 0.2), biases N(0, 0.2), RMSNorm gains 1 + N(0, 0.2); a batch of 2-3 rows of 10-16
tokens with about a quarter of the targets -100. Cases:

  untied      llama, GQA (2 kv heads), separate lm_head.weight
  tied        llama, tie_word_embeddings: no lm_head.weight in the file
  tied+head   the same weights, but the file also stores lm_head.weight (equal to the embedding) and
              older transformers' rotary_emb.inv_freq buffers; frugal must accept and skip them
  qwen2       qwen2: biases on q, k, v (not o), rope_theta 1e6, rms_norm_eps 1e-6
  bias+rope3  llama, attention_bias (q, k, v and o), rope_theta 500000, rope_scaling llama3
              (factor 8, low 1, high 4, original 512: the 4 frequencies fall in all three regimes)
  mha         llama, num_key_value_heads == num_attention_heads, rms_norm_eps 0.05 (large enough that
              the loss depends on where eps is)
  mlp-bias    llama, mlp_bias (gate, up, down biases)
  head-dim    llama, head_dim 16 (the attention 64 wide in a 32-wide model: q_proj (64, 32), o_proj (32, 64))
  qwen3       qwen3: q_norm / k_norm on each head before the rotation, head_dim 12, tied, rope_theta 1e6
  qwen3-bias  qwen3 with attention_bias (q, k, v and o), head_dim 8, untied, 1 key/value head
  sharded     the untied weights split over model-0000{1,2}-of-00002.safetensors with
              model.safetensors.index.json; the untied case's loss and gradients

Each case: `frugal grad`'s loss (relative error) and each gradient (||g-ref||/||ref||) within bounds
derived from fp32's unit, the model's reductions (reduction_terms) and the data's magnitudes
(parity_common's tolerances); the gradient file holds exactly the model's parameter names (no
lm_head.weight when tied). Prints a table and `parity_llama: N passed, M failed`; exits 1 on any failure.
"""
import json
import math
import os
import sys
from typing import NamedTuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402
import parity_common as pc  # noqa: E402
import safetensors_io  # noqa: E402

BASE = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 67,
    "max_position_embeddings": 32,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
}
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 512}


class Case(NamedTuple):
    name: str
    config: dict        # config.json as written
    batch: tuple        # (B, T)
    layout: str = ""    # "" plain model.safetensors; "extra": + lm_head and inv_freq; "sharded"
    same_as: str = ""   # reuse that case's weights and batch (a different file layout of the same model)


def config_of(**over):
    c = dict(BASE)
    c.update(over)
    c["architectures"] = [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}.get(c["model_type"],
                                                                                     "LlamaForCausalLM")]
    return c


CASES = [
    Case("untied", config_of(), (3, 16)),
    Case("tied", config_of(tie_word_embeddings=True), (2, 12)),
    Case("tied+head", config_of(tie_word_embeddings=True), (2, 12), layout="extra", same_as="tied"),
    Case("qwen2", config_of(model_type="qwen2", rope_theta=1000000.0, rms_norm_eps=1e-6), (3, 10)),
    Case("bias+rope3", config_of(attention_bias=True, rope_theta=500000.0, rope_scaling=LLAMA3_SCALING), (2, 16)),
    Case("mha", config_of(num_key_value_heads=4, rms_norm_eps=0.05), (3, 12)),
    Case("mlp-bias", config_of(mlp_bias=True), (2, 14)),
    Case("head-dim", config_of(head_dim=16), (2, 12)),
    Case("qwen3", config_of(model_type="qwen3", head_dim=12, tie_word_embeddings=True, rope_theta=1000000.0,
                            rms_norm_eps=1e-6), (3, 12)),
    Case("qwen3-bias", config_of(model_type="qwen3", head_dim=8, num_key_value_heads=1, attention_bias=True),
         (2, 14)),
    Case("sharded", config_of(), (3, 16), layout="sharded", same_as="untied"),
]


# ---------------------------------------------------------------- fixtures

def random_model(config, rng):
    """HF name -> float32 array: weights and the embedding N(0, 0.2), biases N(0, 0.2), RMSNorm gains 1 + N(0, 0.2)."""
    tensors = {}
    for name, shape in ref.param_shapes(config).items():
        if name.endswith("norm.weight"):
            a = 1.0 + rng.normal(0.0, 0.2, shape)
        else:
            a = rng.normal(0.0, 0.2, shape)
        tensors[name] = a.astype(np.float32)
    return tensors


def random_batch(vocab, rng, batch, seq):
    inputs = rng.integers(0, vocab, size=(batch, seq)).astype(np.int32)
    targets = rng.integers(0, vocab, size=(batch, seq)).astype(np.int32)
    ignore = rng.random((batch, seq)) < 0.25
    ignore[0, 0] = True
    ignore[-1, -1] = False
    targets[ignore] = ref.IGNORE_INDEX
    return inputs, targets


def with_extras(tensors, config):
    """The tensors plus what HF files of tied models / older transformers carry: lm_head.weight equal to
    the embedding and each layer's rotary_emb.inv_freq buffer."""
    out = dict(tensors)
    out["lm_head.weight"] = tensors["model.embed_tokens.weight"].copy()
    inv_freq = ref.rope_inverse_frequencies(ref.parse_config(config)).astype(np.float32)
    for i in range(config["num_hidden_layers"]):
        out[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = inv_freq.copy()
    return out


def write_sharded(model_dir, tensors):
    """Two shards, split in the middle of the model order (layer 0's tensors and the embedding in the
    first), and the index that maps each name to its shard, as transformers' save_pretrained writes it."""
    names = list(tensors)
    half = len(names) // 2
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for file, part in zip(files, (names[:half], names[half:])):
        safetensors_io.save(os.path.join(model_dir, file), {n: tensors[n] for n in part})
        weight_map.update({n: file for n in part})
    total = int(sum(t.nbytes for t in tensors.values()))
    with open(os.path.join(model_dir, ref.INDEX_FILE), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_model(model_dir, tensors, config, layout=""):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if layout == "sharded":
        write_sharded(model_dir, tensors)
    elif layout == "extra":
        safetensors_io.save(os.path.join(model_dir, ref.SINGLE_FILE), with_extras(tensors, config))
    else:
        safetensors_io.save(os.path.join(model_dir, ref.SINGLE_FILE), tensors)


class Fixture(NamedTuple):
    case: Case
    tensors: dict
    inputs: np.ndarray
    targets: np.ndarray
    model_dir: str
    batch_path: str


def fixtures(tmp, seed):
    """Every case's model directory and batch under tmp. Each case draws from its own stream
    (seed, case index), so adding a case changes no other; a `same_as` case reuses that case's draws."""
    out = {}
    for idx, case in enumerate(CASES):
        if case.same_as:
            base = out[case.same_as]
            tensors, inputs, targets = base.tensors, base.inputs, base.targets
        else:
            rng = np.random.default_rng([seed, idx])
            tensors = random_model(ref.parse_config(case.config), rng)
            inputs, targets = random_batch(case.config["vocab_size"], rng, *case.batch)
        case_dir = os.path.join(tmp, case.name.replace("+", "_"))
        model_dir = os.path.join(case_dir, "model")
        write_model(model_dir, tensors, case.config, case.layout)
        batch_path = os.path.join(case_dir, "batch.safetensors")
        safetensors_io.save(batch_path, {"inputs": inputs, "targets": targets})
        out[case.name] = Fixture(case, tensors, inputs, targets, model_dir, batch_path)
    return out


def frequency_regimes(config):
    """How many of the rope frequencies are kept / smoothed / divided by Llama 3's rescaling."""
    c = ref.parse_config(config)
    rs = c["rope_scaling"]
    L = rs["original_max_position_embeddings"]
    d = ref.head_dim(c)
    regimes = [0, 0, 0]
    for j in range(d // 2):
        w = 2 * math.pi / c["rope_theta"] ** (-2.0 * j / d)
        regimes[0 if w < L / rs["high_freq_factor"] else 2 if w > L / rs["low_freq_factor"] else 1] += 1
    return regimes


# ---------------------------------------------------------------- parity

def reduction_terms(config, batch, seq):
    """(forward, total) terms n on the longest path of an fp32 Llama on batch x seq tokens (as
    parity_common.gpt_reduction_terms for GPT-2). A block forward: RMSNorm (mean of squares over E, sqrt,
    divide), q/k/v K=E, qwen3's q/k norms over hd, the rotation (its angle p f rounded in fp32, off by 2
    units of p <= seq - 1 radians: cos and sin by 2 (seq - 1) units), scores K=hd, the softmax over seq
    keys, att @ v K=seq, o_proj K=H hd, the second RMSNorm, gate/up K=E, silu and the product, down K=F,
    biases and residuals. Backward the dx products K=E (down), 2F (gate and up), E (o_proj),
    (H + 2 Hkv) hd (q, k, v), the attention's hd, seq, seq, the H / Hkv query heads of a key/value head
    summed, the rotation, the norms. Then the final norm, the head K=E, the loss's exp; backward the
    head's K=V; the tokens summed into a weight gradient (a tied embedding adds its lookup's gradient to
    the head's: one more)."""
    E, F, L, V = (config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size"))
    H, Hkv, hd = config["num_attention_heads"], config["num_key_value_heads"], ref.head_dim(config)
    ew = pc.ELEMENTWISE_TERMS
    norm = E + ew
    rotation = 2 * seq + ew
    qk_norm = hd + ew if config["qk_norm"] else 0
    block_forward = (norm + (E + 1) + qk_norm + rotation + hd + (seq + ew) + seq + (H * hd + 1) + 1
                     + norm + (E + 1) + ew + 1 + (F + 1) + 1)
    block_backward = (E + ew + 2 * F + norm + E + (hd + seq + ew + seq) + H // Hkv + rotation + qk_norm
                      + (H + 2 * Hkv) * hd + norm + 2)
    forward = L * block_forward + norm + E + ew
    return forward, forward + L * block_backward + V + norm + batch * seq + 1


def check_grads(results, case, grads_path, ref_grads, grad_tols):
    try:
        got = safetensors_io.load(grads_path)
    except (OSError, ValueError) as e:
        results.fail(case, "grads", f"cannot read {grads_path}: {e}")
        return
    missing = [n for n in ref_grads if n not in got]
    extra = sorted(set(got) - set(ref_grads))
    note = f"missing {missing[:3]}, extra {extra[:3]}" if missing or extra else ""
    results.add(case, "gradient names", 0.0, 0.0, not missing and not extra, note)
    for name in ref_grads:
        if name in got:
            results.check_grad(case, name, got[name], ref_grads[name], grad_tols[name])


def parity(frugal, seed, keep):
    frugal = os.path.abspath(frugal)
    results = pc.Results()
    with pc.scratch_dir("frugal_llama_parity_", keep) as tmp:
        fxs = fixtures(tmp, seed)
        for name, fx in fxs.items():
            params, config = ref.load_model(fx.model_dir)
            ref_loss, ref_grads = ref.loss_and_grads(params, config, fx.inputs, fx.targets)
            print(f"[{name}] reference loss (float64): {ref_loss:.10f}; {pc.counted_targets(fx.targets)}")
            # fp32 frugal against exact arithmetic.
            loss_tol, grad_tols = pc.derived_bounds(ref, params, config, fx.inputs, fx.targets, ref_loss, ref_grads,
                                                    reduction_terms(config, *fx.inputs.shape))
            grads_path = os.path.join(os.path.dirname(fx.model_dir), "grads.safetensors")
            loss, err = pc.frugal_grad(frugal, fx.model_dir, fx.batch_path, grads_path)
            if err is not None:
                results.fail_run(name, "frugal grad", err)
                continue
            results.check(name, "loss", pc.rel_diff(loss, ref_loss), loss_tol, f"frugal {loss:.8f} ref {ref_loss:.8f}")
            check_grads(results, name, grads_path, ref_grads, grad_tols)
    return results.report("parity_llama")


# ---------------------------------------------------------------- checking the reference itself

def builtin_frequencies(config):
    """inv_freq as transformers computes it (torch ops, Llama 3's rescaling with torch.where), in float64."""
    d = ref.head_dim(config)
    inv_freq = 1.0 / (config["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = config["rope_scaling"]
    if rs is None:
        return inv_freq
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * llama / factor + smooth * llama
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, llama)


def builtin_rope(x, inv_freq):
    """Rotary embedding as complex multiplication: z_j = x_j + i x_{j+d/2} times exp(i p inv_freq_j)."""
    T, d = x.shape[-2], x.shape[-1]
    z = torch.complex(x[..., : d // 2], x[..., d // 2:])
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1)


def builtin_loss(params, config, inputs, targets):
    """An independent formulation from torch built-ins: F.embedding, HF's RMSNorm (rsqrt of the variance),
    F.linear, complex rotary, repeat_interleave for the key/value groups, additive -inf mask with F.softmax,
    F.silu, F.cross_entropy with ignore_index."""
    F = torch.nn.functional
    inputs = torch.as_tensor(inputs, dtype=torch.long)
    targets = torch.as_tensor(targets, dtype=torch.long)
    B, T = inputs.shape
    H, Hkv = config["num_attention_heads"], config["num_key_value_heads"]
    hd, eps = config["head_dim"], config["rms_norm_eps"]
    inv_freq = builtin_frequencies(config)

    def norm(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def lin(x, module):
        return F.linear(x, params[module + ".weight"], params.get(module + ".bias"))

    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), diagonal=1)
    x = F.embedding(inputs, params["model.embed_tokens.weight"])
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = norm(x, params[p + "input_layernorm.weight"])
        q = lin(a, p + "self_attn.q_proj").view(B, T, H, hd).permute(0, 2, 1, 3)
        k = lin(a, p + "self_attn.k_proj").view(B, T, Hkv, hd).permute(0, 2, 1, 3)
        v = lin(a, p + "self_attn.v_proj").view(B, T, Hkv, hd).permute(0, 2, 1, 3)
        if config["qk_norm"]:
            q, k = norm(q, params[p + "self_attn.q_norm.weight"]), norm(k, params[p + "self_attn.k_norm.weight"])
        q, k = builtin_rope(q, inv_freq), builtin_rope(k, inv_freq)
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        att = F.softmax(torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(hd) + mask, dim=-1)
        y = torch.einsum("bhqk,bhkd->bhqd", att, v).permute(0, 2, 1, 3).reshape(B, T, H * hd)
        x = x + lin(y, p + "self_attn.o_proj")
        m = norm(x, params[p + "post_attention_layernorm.weight"])
        x = x + lin(F.silu(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = norm(x, params["model.norm.weight"])
    head = params["model.embed_tokens.weight"] if config["tie_word_embeddings"] else params["lm_head.weight"]
    logits = F.linear(x, head)
    return F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=ref.IGNORE_INDEX)


FD_FLOOR = 1e-3  # gradients here are ~1e-1; see finite_difference_errors


def finite_difference_errors(rng, loss, params, grads, loss_error):
    """name -> (||analytic - central difference|| / max(||central difference||, FD_FLOOR), its bound
    pc.fd_bound(loss_error) over the same denominator) on three random coordinates of each tensor
    (parity_common's check, with a floor under the denominator).

    The floor: a key bias moves a query's scores only through the rotation, so its coordinates in
    slowly rotating pairs (theta 5e5 and llama3's slowing) have gradients near 1e-7, where the
    differences' round-off (~1e-10 at step 1e-6) alone is a relative 1e-3. Those coordinates are still
    held to the built-in formulation's 1e-10 by the exact comparison above."""
    out = {}
    with torch.no_grad():
        for name, tensor in params.items():
            flat = tensor.view(-1)
            idx = rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False)
            fd, an = [], []
            for j in (int(j) for j in idx):
                orig = flat[j].item()
                flat[j] = orig + pc.FD_STEP
                lp = loss().item()
                flat[j] = orig - pc.FD_STEP
                lm = loss().item()
                flat[j] = orig
                fd.append((lp - lm) / (2 * pc.FD_STEP))
                an.append(grads[name].reshape(-1)[j])
            fd, an = np.array(fd), np.array(an)
            denominator = max(np.linalg.norm(fd), FD_FLOOR)
            out[name] = (np.linalg.norm(an - fd) / denominator, pc.fd_bound(loss_error, len(idx)) / denominator)
    return out


def self_check(seed):
    """Checks llama_reference against (a) torch built-ins + autograd, (b) central finite differences,
    (c) the rope frequencies as transformers computes them, and its loading of every file layout."""
    results = pc.Results()
    fd_rng = np.random.default_rng([seed, 999])
    with pc.scratch_dir("frugal_llama_parity_self_") as tmp:
        fxs = fixtures(tmp, seed)
        loaded = {}
        for name, fx in fxs.items():
            params, config = ref.load_model(fx.model_dir)
            loaded[name] = params
            ok = list(params) == ref.param_names(config) and all(
                np.array_equal(params[n].detach().numpy(), fx.tensors[n].astype(np.float64)) for n in params)
            results.add(name, "load", 0.0, 0.0, ok)
            if fx.case.same_as:
                continue  # the same model: its loss and gradients are those of the case it copies

            # (c) frequencies: the reference's per-frequency branches against transformers' torch.where form.
            # Both float64 from the same exponent 2j/d: pow within 1 ulp (2 units of 2^-53) on each side, the
            # reciprocal 1 unit; llama3's smoothing ~8 roundings more, its condition in f below 3:
            # at most ~30 units, so 64 units (7.1e-15) on every machine (no GEMM takes part).
            results.check(name, "rope frequencies", pc.rel_err(ref.rope_inverse_frequencies(config),
                                                               builtin_frequencies(config).numpy()), 64 * pc.FP64_UNIT)
            if config["rope_scaling"] is not None:
                regimes = frequency_regimes(fx.case.config)
                results.add(name, "llama3 regimes kept/smoothed/divided", 0.0, 0.0, min(regimes) > 0, str(regimes))

            loss, grads = ref.loss_and_grads(params, config, fx.inputs, fx.targets)
            print(f"[{name}] reference loss: {loss:.12f}")
            # Each float64 evaluation within these of exact arithmetic (parity_common's tolerances, in 2^-53).
            loss_tol, grad_tols = pc.derived_bounds(ref, params, config, fx.inputs, fx.targets, loss, grads,
                                                    reduction_terms(config, *fx.inputs.shape), unit=pc.FP64_UNIT)
            for n, g in grads.items():
                if not np.isfinite(g).all() or np.linalg.norm(g) == 0:
                    results.fail(name, n, "gradient is zero or not finite")

            # (a) independent formulation with torch built-ins: two float64 evaluations, each within the
            # bound; the row shows the tensor nearest its bound.
            bl = builtin_loss(params, config, fx.inputs, fx.targets)
            bgrads = torch.autograd.grad(bl, [params[n] for n in grads])
            results.check(name, "builtin loss", pc.rel_diff(bl.item(), loss), 2 * loss_tol)
            errs = {n: (pc.rel_err(grads[n], bg.numpy()), 2 * grad_tols[n]) for n, bg in zip(grads, bgrads)}
            worst = max(errs, key=lambda n: errs[n][0] / errs[n][1])
            results.check(name, "builtin grads (worst)", *errs[worst], worst)

            # (b) central finite differences in float64 on a few coordinates of every tensor
            errs = finite_difference_errors(fd_rng, lambda: ref.loss_fn(params, config, fx.inputs, fx.targets),
                                            params, grads, loss_tol * abs(loss))
            bad = [n for n, (e, tol) in errs.items() if not e <= tol]
            worst = max(errs, key=lambda n: errs[n][0] / errs[n][1])
            results.add(name, "fin-diff (worst)", *errs[worst], not bad,
                        worst + (f"; failing {bad[:3]}" if bad else ""))

        # the layouts of the same model load the same parameters
        for name, fx in fxs.items():
            if fx.case.same_as:
                a, b = loaded[name], loaded[fx.case.same_as]
                ok = list(a) == list(b) and all(torch.equal(a[n], b[n]) for n in a)
                results.add(name, f"same parameters as {fx.case.same_as}", 0.0, 0.0, ok)
        # tied: the loss depends on the embedding through the head too (not just the input lookup)
        tied = fxs["tied"]
        p_t, c_t = ref.load_model(tied.model_dir)
        c_u = dict(c_t, tie_word_embeddings=False)
        p_u = dict(p_t, **{"lm_head.weight": p_t["model.embed_tokens.weight"].detach().clone().requires_grad_(True)})
        _, g_t = ref.loss_and_grads(p_t, c_t, tied.inputs, tied.targets)
        _, g_u = ref.loss_and_grads(p_u, c_u, tied.inputs, tied.targets)
        # The same float64 terms added in another order (a token's lookups and the head's gradient,
        # k <= 24 of them): 2 gamma_25 (2^-53) ~ 5.6e-15 of their magnitude; 1e-12 is far above it.
        results.check("tied", "embedding grad = input + head grads",
                      pc.rel_err(g_t["model.embed_tokens.weight"],
                                 g_u["model.embed_tokens.weight"] + g_u["lm_head.weight"]), 1e-12)
    return results.report("parity_llama self-check")


if __name__ == "__main__":
    sys.exit(pc.cli_main(__doc__, parity, self_check))
