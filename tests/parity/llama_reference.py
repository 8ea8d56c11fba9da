"""Float64 PyTorch reference of the Llama family (Hugging Face `llama`, `qwen2` and `qwen3`), written op
by op from the published definitions (Touvron et al. 2023 / Llama 3; transformers' modeling_llama,
modeling_qwen2 and modeling_qwen3), without transformers.

Tensor names and layouts are Hugging Face's: nn.Linear weights are [out, in] and y = x @ W^T + b.

    x   = embed_tokens[inputs]
    per layer i:
        a = RMSNorm(x; input_layernorm)
        q, k, v = q_proj(a), k_proj(a), v_proj(a)        heads H (q), Hkv (k, v), d = head_dim (D / H if absent)
        qwen3: q, k = RMSNorm(q; q_norm), RMSNorm(k; k_norm)  per head, over its d values
        q, k = rope(q), rope(k)                           rotate_half layout: pairs (j, j + d/2)
        query head h attends with key/value head h // (H / Hkv), causal, scores / sqrt(d)
        x = x + o_proj(attention)
        x = x + down_proj(silu(gate_proj(m)) * up_proj(m)),  m = RMSNorm(x; post_attention_layernorm)
    logits = RMSNorm(x; norm) @ W_head^T,  W_head = lm_head.weight, or embed_tokens when tied
    RMSNorm(x; w) = x / sqrt(mean(x^2) + eps) * w
    loss = mean cross-entropy over targets != -100

Biases: llama and qwen3 with attention_bias on q, k, v and o; llama with mlp_bias on gate, up and
down; qwen2 always on q, k, v (never o). Rotary frequencies inv_freq_j = theta^(-2j/d), j < d/2, optionally
rescaled by rope_scaling {"rope_type": "llama3", ...} (Llama 3.1); the angle of position p is p * inv_freq_j
(everything here in float64; HF computes the angles in float32).

    params, config = load_model(model_dir)          # model.safetensors or a sharded index
    loss, grads = loss_and_grads(params, config, inputs, targets)
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from gpt2_reference import mean_cross_entropy  # noqa: E402

IGNORE_INDEX = -100
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


# ---------------------------------------------------------------- configuration and names

def read_config(model_dir):
    """config.json -> a plain dict with every key the reference uses (HF defaults where absent)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    return parse_config(raw)


def parse_config(raw):
    model_type = raw.get("model_type")
    if model_type not in ("llama", "qwen2", "qwen3"):
        raise ValueError(f"model_type {model_type!r} is not llama, qwen2 or qwen3")
    if raw.get("hidden_act", "silu") != "silu":
        raise ValueError("the reference implements hidden_act silu only")
    c = {
        "model_type": model_type,
        "hidden_size": int(raw["hidden_size"]),
        "intermediate_size": int(raw["intermediate_size"]),
        "num_hidden_layers": int(raw["num_hidden_layers"]),
        "num_attention_heads": int(raw["num_attention_heads"]),
        "vocab_size": int(raw["vocab_size"]),
        "max_position_embeddings": int(raw["max_position_embeddings"]),
        "rms_norm_eps": float(raw.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(raw.get("rope_theta", 10000.0)),
        "tie_word_embeddings": bool(raw.get("tie_word_embeddings", False)),
        "rope_scaling": raw.get("rope_scaling"),
    }
    kv = raw.get("num_key_value_heads")
    c["num_key_value_heads"] = int(kv) if kv is not None else c["num_attention_heads"]
    hd = raw.get("head_dim")
    c["head_dim"] = int(hd) if hd is not None else c["hidden_size"] // c["num_attention_heads"]
    c["qk_norm"] = model_type == "qwen3"
    attention_bias = bool(raw.get("attention_bias", False))
    mlp_bias = bool(raw.get("mlp_bias", False))
    if model_type == "qwen2":
        c["qkv_bias"], c["o_bias"], c["mlp_bias"] = True, False, False
    elif model_type == "qwen3":
        c["qkv_bias"], c["o_bias"], c["mlp_bias"] = attention_bias, attention_bias, False
    else:
        c["qkv_bias"], c["o_bias"], c["mlp_bias"] = attention_bias, attention_bias, mlp_bias
    H, Hkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    if H % Hkv != 0 or hd % 2 != 0:
        raise ValueError(f"heads {H}, kv heads {Hkv}, head_dim {hd}: not a valid Llama shape")
    rs = c["rope_scaling"]
    if rs is not None and rs.get("rope_type", rs.get("type")) not in ("llama3", "default"):
        raise ValueError(f"rope_scaling {rs!r} is not supported by the reference")
    return c


def head_dim(config):
    return config["head_dim"]


def param_shapes(config):
    """HF name -> shape for every parameter, in model order."""
    D, F, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    hd = head_dim(config)
    Dq, Dkv = config["num_attention_heads"] * hd, config["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": (V, D)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (D,)
        for proj, out_dim in (("q_proj", Dq), ("k_proj", Dkv), ("v_proj", Dkv)):
            shapes[p + f"self_attn.{proj}.weight"] = (out_dim, D)
            if config["qkv_bias"]:
                shapes[p + f"self_attn.{proj}.bias"] = (out_dim,)
        shapes[p + "self_attn.o_proj.weight"] = (D, Dq)
        if config["o_bias"]:
            shapes[p + "self_attn.o_proj.bias"] = (D,)
        if config["qk_norm"]:
            shapes[p + "self_attn.q_norm.weight"] = (hd,)
            shapes[p + "self_attn.k_norm.weight"] = (hd,)
        shapes[p + "post_attention_layernorm.weight"] = (D,)
        for proj, (out_dim, in_dim) in (("gate_proj", (F, D)), ("up_proj", (F, D)), ("down_proj", (D, F))):
            shapes[p + f"mlp.{proj}.weight"] = (out_dim, in_dim)
            if config["mlp_bias"]:
                shapes[p + f"mlp.{proj}.bias"] = (out_dim,)
    shapes["model.norm.weight"] = (D,)
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, D)
    return shapes


def param_names(config):
    return list(param_shapes(config))


# ---------------------------------------------------------------- loading

def read_weights(model_dir):
    """name -> numpy array from model.safetensors, or from the shards of model.safetensors.index.json
    (each listed tensor must be in the shard the weight_map names; no tensor in two shards)."""
    single = os.path.join(model_dir, SINGLE_FILE)
    if os.path.exists(single):
        return safetensors_io.load(single)
    with open(os.path.join(model_dir, INDEX_FILE)) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        tensors = safetensors_io.load(os.path.join(model_dir, shard))
        for name, where in weight_map.items():
            if where != shard:
                continue
            if name not in tensors:
                raise ValueError(f"{shard} lacks {name!r}, which the index lists in it")
            if name in out:
                raise ValueError(f"{name!r} appears in two shards")
            out[name] = tensors[name]
    return out


def load_model(model_dir):
    """Return (params, config): params maps HF names to float64 leaf tensors with requires_grad.

    Skipped: rotary `inv_freq` buffers (older transformers saved them) and, when the config ties the
    head, an `lm_head.weight` that must then equal the embedding."""
    config = read_config(model_dir)
    tensors = read_weights(model_dir)
    shapes = param_shapes(config)
    params = {}
    for name, arr in tensors.items():
        if name.endswith(".rotary_emb.inv_freq"):
            continue
        if name == "lm_head.weight" and config["tie_word_embeddings"]:
            if not np.array_equal(arr, tensors.get("model.embed_tokens.weight")):
                raise ValueError("lm_head.weight differs from the embedding, but tie_word_embeddings is true")
            continue
        if name not in shapes:
            raise ValueError(f"unexpected tensor {name!r}")
        if tuple(arr.shape) != shapes[name]:
            raise ValueError(f"tensor {name!r} has shape {arr.shape}, expected {shapes[name]}")
        params[name] = torch.tensor(arr.astype(np.float64), dtype=torch.float64, requires_grad=True)
    missing = [n for n in shapes if n not in params]
    if missing:
        raise ValueError(f"the weights lack {missing}")
    return {n: params[n] for n in shapes}, config


# ---------------------------------------------------------------- rotary frequencies

def rope_inverse_frequencies(config):
    """inv_freq (d/2 floats, float64 numpy): theta^(-2j/d), then Llama 3's rescaling if configured.

    Llama 3 (rope_type "llama3"), per frequency f with wavelength w = 2 pi / f, L = original context:
        w < L / high_freq_factor                 -> f            (high frequencies kept)
        w > L / low_freq_factor                  -> f / factor   (low frequencies slowed)
        otherwise s = (L / w - low) / (high - low) -> (1 - s) f / factor + s f
    """
    d = head_dim(config)
    theta = config["rope_theta"]
    freqs = [theta ** (-2.0 * j / d) for j in range(d // 2)]
    rs = config.get("rope_scaling")
    if rs is None or rs.get("rope_type", rs.get("type")) != "llama3":
        return np.array(freqs, dtype=np.float64)
    factor, low, high = float(rs["factor"]), float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    L = float(rs["original_max_position_embeddings"])
    out = []
    for f in freqs:
        w = 2.0 * math.pi / f
        if w < L / high:
            out.append(f)
        elif w > L / low:
            out.append(f / factor)
        else:
            s = (L / w - low) / (high - low)
            out.append((1.0 - s) * f / factor + s * f)
    return np.array(out, dtype=np.float64)


def rope(x, inv_freq):
    """x: (B, heads, T, d), positions 0..T-1. rotate_half layout: element j pairs with j + d/2,
    (x_j, x_{j+d/2}) -> (x_j cos - x_{j+d/2} sin, x_{j+d/2} cos + x_j sin), angle = position * inv_freq_j."""
    T, d = x.shape[-2], x.shape[-1]
    angles = torch.arange(T, dtype=torch.float64)[:, None] * torch.as_tensor(inv_freq, dtype=torch.float64)[None, :]
    cos = torch.cat([torch.cos(angles), torch.cos(angles)], dim=-1)          # (T, d)
    sin = torch.cat([torch.sin(angles), torch.sin(angles)], dim=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    rotated_half = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated_half * sin


# ---------------------------------------------------------------- the model, op by op

def rms_norm(x, weight, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight


def silu(x):
    return x / (1.0 + torch.exp(-x))


def hf_linear(x, params, module):
    """nn.Linear `module` (e.g. "model.layers.0.self_attn.q_proj"): y = x @ W^T (+ b if the model has it).
    The default `linear` of the model; an adapter may wrap it."""
    y = x @ params[module + ".weight"].t()
    bias = params.get(module + ".bias")
    return y if bias is None else y + bias


def self_attention(x, params, prefix, config, inv_freq, linear):
    B, T, D = x.shape
    H, Hkv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = head_dim(config)
    q = linear(x, params, prefix + "self_attn.q_proj").reshape(B, T, H, hd).transpose(1, 2)     # (B, H, T, d)
    k = linear(x, params, prefix + "self_attn.k_proj").reshape(B, T, Hkv, hd).transpose(1, 2)   # (B, Hkv, T, d)
    v = linear(x, params, prefix + "self_attn.v_proj").reshape(B, T, Hkv, hd).transpose(1, 2)
    if config["qk_norm"]:
        eps = config["rms_norm_eps"]
        q = rms_norm(q, params[prefix + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, params[prefix + "self_attn.k_norm.weight"], eps)
    q, k = rope(q, inv_freq), rope(k, inv_freq)
    group = torch.arange(H) // (H // Hkv)             # the key/value head of each query head
    k, v = k[:, group], v[:, group]                   # (B, H, T, d)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    scores = scores - scores.max(dim=-1, keepdim=True).values.detach()
    e = torch.exp(scores)
    att = e / e.sum(dim=-1, keepdim=True)             # (B, H, T, T)
    y = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
    return linear(y, params, prefix + "self_attn.o_proj")


def swiglu_mlp(x, params, prefix, linear):
    return linear(silu(linear(x, params, prefix + "mlp.gate_proj")) * linear(x, params, prefix + "mlp.up_proj"),
                  params, prefix + "mlp.down_proj")


def final_hidden(params, config, inputs, linear=hf_linear):
    """inputs: int tensor (B, T) -> the final RMSNorm's output (B, T, D), what the head multiplies."""
    B, T = inputs.shape
    if T > config["max_position_embeddings"]:
        raise ValueError(f"sequence length {T} exceeds max_position_embeddings {config['max_position_embeddings']}")
    eps = config["rms_norm_eps"]
    inv_freq = rope_inverse_frequencies(config)
    x = params["model.embed_tokens.weight"][inputs]                                  # (B, T, D)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = x + self_attention(rms_norm(x, params[p + "input_layernorm.weight"], eps), params, p, config,
                               inv_freq, linear)
        x = x + swiglu_mlp(rms_norm(x, params[p + "post_attention_layernorm.weight"], eps), params, p, linear)
    return rms_norm(x, params["model.norm.weight"], eps)


def head_weight(params, config):
    """The LM head's weight (V, D): the embedding when tied, else lm_head.weight."""
    return params["model.embed_tokens.weight"] if config["tie_word_embeddings"] else params["lm_head.weight"]


def forward_logits(params, config, inputs, linear=hf_linear):
    """inputs: int tensor (B, T) -> logits (B, T, V)."""
    return final_hidden(params, config, inputs, linear) @ head_weight(params, config).t()


def loss_fn(params, config, inputs, targets, linear=hf_linear):
    """Mean token cross-entropy over targets != -100 (a torch scalar)."""
    inputs = torch.as_tensor(np.asarray(inputs), dtype=torch.long)
    return mean_cross_entropy(forward_logits(params, config, inputs, linear), targets)  # logits (B, T, V)


def loss_and_grads(params, config, inputs, targets, linear=hf_linear, wrt=None):
    """(loss as float, name -> float64 numpy gradient) by autograd in float64; wrt defaults to params."""
    wrt = params if wrt is None else wrt
    names = list(wrt)
    loss = loss_fn(params, config, inputs, targets, linear)
    grads = torch.autograd.grad(loss, [wrt[n] for n in names])
    return float(loss.item()), {n: g.detach().numpy().astype(np.float64) for n, g in zip(names, grads)}
