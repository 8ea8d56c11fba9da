"""Float64 PyTorch reference of exactly the GPT-2 architecture, written op by op.

Tensor names and layouts are Hugging Face GPT-2's (Conv1D weights are [in, out] and
y = x @ W + b). Used by test_gpt_parity.py to check frugal's loss and every gradient, and by
test_lora_parity.py, which passes its own `linear` (Conv1D plus the adapter) and differentiates
with respect to the adapter's tensors.

    params, config = load_model(model_dir)
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

IGNORE_INDEX = -100

CONFIG_KEYS = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "layer_norm_epsilon")


def param_names(config):
    """The canonical parameter names of a GPT-2 model, in model order."""
    names = ["wte.weight", "wpe.weight"]
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        names += [
            p + "ln_1.weight", p + "ln_1.bias",
            p + "attn.c_attn.weight", p + "attn.c_attn.bias",
            p + "attn.c_proj.weight", p + "attn.c_proj.bias",
            p + "ln_2.weight", p + "ln_2.bias",
            p + "mlp.c_fc.weight", p + "mlp.c_fc.bias",
            p + "mlp.c_proj.weight", p + "mlp.c_proj.bias",
        ]
    names += ["ln_f.weight", "ln_f.bias"]
    return names


def param_shapes(config):
    """name -> shape for every parameter (HF GPT-2 layouts)."""
    V, T, D = config["vocab_size"], config["n_positions"], config["n_embd"]
    shapes = {"wte.weight": (V, D), "wpe.weight": (T, D), "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.weight": (D,), p + "ln_1.bias": (D,),
            p + "attn.c_attn.weight": (D, 3 * D), p + "attn.c_attn.bias": (3 * D,),
            p + "attn.c_proj.weight": (D, D), p + "attn.c_proj.bias": (D,),
            p + "ln_2.weight": (D,), p + "ln_2.bias": (D,),
            p + "mlp.c_fc.weight": (D, 4 * D), p + "mlp.c_fc.bias": (4 * D,),
            p + "mlp.c_proj.weight": (4 * D, D), p + "mlp.c_proj.bias": (D,),
        })
    return shapes


def canonical_name(name):
    """Map an HF checkpoint key to a canonical parameter name, or None if it is not a parameter.

    Strips the `transformer.` prefix; drops `lm_head.weight` (tied to wte) and the
    `attn.bias` / `attn.masked_bias` causal-mask buffers.
    """
    if name.startswith("transformer."):
        name = name[len("transformer."):]
    if name == "lm_head.weight" or name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
        return None
    return name


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    config = {}
    for k in CONFIG_KEYS:
        if k == "layer_norm_epsilon":
            config[k] = float(raw.get(k, 1e-5))
        else:
            config[k] = int(raw[k])
    if config["n_embd"] % config["n_head"] != 0:
        raise ValueError("n_embd must be divisible by n_head")
    return config


def load_model(model_dir):
    """Return (params, config): params maps canonical names to float64 leaf tensors with requires_grad."""
    config = read_config(model_dir)
    tensors = safetensors_io.load(os.path.join(model_dir, "model.safetensors"))
    shapes = param_shapes(config)
    params = {}
    for key, arr in tensors.items():
        name = canonical_name(key)
        if name is None:
            continue
        if name not in shapes:
            raise ValueError(f"unexpected tensor {key!r} in model.safetensors")
        if tuple(arr.shape) != shapes[name]:
            raise ValueError(f"tensor {key!r} has shape {arr.shape}, expected {shapes[name]}")
        params[name] = torch.tensor(arr.astype(np.float64), dtype=torch.float64, requires_grad=True)
    missing = [n for n in shapes if n not in params]
    if missing:
        raise ValueError(f"model.safetensors lacks {missing}")
    return params, config


# ---------------------------------------------------------------- the model, op by op

def layer_norm(x, weight, bias, eps):
    # x: (B, T, D); biased variance over the last axis, as torch/HF LayerNorm.
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu_tanh(x):
    # GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def conv1d(x, params, module):
    # HF Conv1D `module` (e.g. "h.0.attn.c_attn"): weight is [in, out]; y = x @ W + b.
    # The default `linear` of the model; an adapter wraps it.
    return x @ params[module + ".weight"] + params[module + ".bias"]


def causal_self_attention(x, params, prefix, n_head, linear):
    B, T, D = x.shape
    hd = D // n_head
    qkv = linear(x, params, prefix + "attn.c_attn")                                                # (B, T, 3D)
    q, k, v = qkv[..., 0:D], qkv[..., D:2 * D], qkv[..., 2 * D:3 * D]                              # (B, T, D) each
    q = q.reshape(B, T, n_head, hd).transpose(1, 2)                                                # (B, H, T, hd)
    k = k.reshape(B, T, n_head, hd).transpose(1, 2)
    v = v.reshape(B, T, n_head, hd).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)                                             # (B, H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    scores = scores - scores.max(dim=-1, keepdim=True).values.detach()
    e = torch.exp(scores)
    att = e / e.sum(dim=-1, keepdim=True)                                                          # (B, H, T, T)
    y = att @ v                                                                                    # (B, H, T, hd)
    y = y.transpose(1, 2).reshape(B, T, D)                                                         # (B, T, D)
    return linear(y, params, prefix + "attn.c_proj")


def mlp(x, params, prefix, linear):
    h = linear(x, params, prefix + "mlp.c_fc")        # (B, T, 4D)
    h = gelu_tanh(h)
    return linear(h, params, prefix + "mlp.c_proj")   # (B, T, D)


def final_hidden(params, config, inputs, linear=conv1d):
    """inputs: int tensor (B, T) -> the final layer norm's output (B, T, D), what the head multiplies.

    linear(x, params, module) gives the output of each Conv1D module (attn.c_attn, attn.c_proj,
    mlp.c_fc, mlp.c_proj of every block), so that an adapter can add its path there.
    """
    B, T = inputs.shape
    if T > config["n_positions"]:
        raise ValueError(f"sequence length {T} exceeds n_positions {config['n_positions']}")
    eps = config["layer_norm_epsilon"]
    x = params["wte.weight"][inputs] + params["wpe.weight"][torch.arange(T)]   # (B, T, D)
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        x = x + causal_self_attention(layer_norm(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"], eps),
                                      params, p, config["n_head"], linear)
        x = x + mlp(layer_norm(x, params[p + "ln_2.weight"], params[p + "ln_2.bias"], eps), params, p, linear)
    return layer_norm(x, params["ln_f.weight"], params["ln_f.bias"], eps)


def head_weight(params, config):
    """The LM head's weight (V, D): tied to wte."""
    return params["wte.weight"]


def forward_logits(params, config, inputs, linear=conv1d):
    """inputs: int tensor (B, T) -> logits (B, T, V); linear as in final_hidden."""
    return final_hidden(params, config, inputs, linear) @ head_weight(params, config).t()


def mean_cross_entropy(logits, targets):
    """Mean token cross-entropy of logits (B, T, V) over targets (B, T) != -100 (a torch scalar), the
    log-sum-exp written out. Shared with llama_reference."""
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    m = logits.max(dim=-1, keepdim=True).values.detach()
    logz = torch.log(torch.exp(logits - m).sum(dim=-1)) + m.squeeze(-1)   # (B, T)
    valid = targets != IGNORE_INDEX
    count = int(valid.sum())
    if count == 0:
        raise ValueError("every target is -100")
    safe_t = torch.where(valid, targets, torch.zeros_like(targets))
    target_logit = logits.gather(-1, safe_t.unsqueeze(-1)).squeeze(-1)    # (B, T)
    nll = (logz - target_logit) * valid.to(logits.dtype)
    return nll.sum() / count


def loss_fn(params, config, inputs, targets, linear=conv1d):
    """Mean token cross-entropy over targets != -100 (a torch scalar); linear as in forward_logits."""
    inputs = torch.as_tensor(np.asarray(inputs), dtype=torch.long)
    return mean_cross_entropy(forward_logits(params, config, inputs, linear), targets)  # logits (B, T, V)


def loss_and_grads(params, config, inputs, targets, linear=conv1d, wrt=None):
    """Return (loss as float, dict name -> float64 numpy gradient) for one batch.

    The gradients are those of the tensors in wrt (name -> leaf tensor; default params), e.g. an
    adapter's while the base model is frozen.
    """
    wrt = params if wrt is None else wrt
    names = list(wrt)
    loss = loss_fn(params, config, inputs, targets, linear)
    grads = torch.autograd.grad(loss, [wrt[n] for n in names])
    return float(loss.item()), {n: g.detach().numpy().astype(np.float64) for n, g in zip(names, grads)}
