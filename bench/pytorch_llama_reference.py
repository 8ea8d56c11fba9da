#!/usr/bin/python3
"""PyTorch baseline for frugal's Llama architecture (issue 20): SmolLM2-135M's shape, random tokens, AdamW.

    /usr/bin/python3 bench/pytorch_llama_reference.py --steps 3 --precision bf16 --checkpoint sqrt \
        --lora-rank 8 --base-precision bf16 --json out/bench-smollm2/pytorch.json

Defaults: SmolLM2-135M's shape (30 layers, dim 576, 9 heads, 3 key/value heads, SwiGLU intermediate 1536,
vocabulary 49,152, context 2048, rms_norm_eps 1e-5, rope_theta 10000, LM head tied to the embedding),
batch 1, fp32, 2 threads, fresh weights (N(0, 0.02) for every matrix and the embedding, RMSNorm gains 1,
as Hugging Face's _init_weights). The model is Hugging Face's LlamaForCausalLM written out (eager
attention, as transformers ran it on PyTorch 1.13, which has no scaled_dot_product_attention): RMSNorm in
fp32, rotary embeddings with rotate_half on q and k, grouped-query attention by repeating each key/value
head heads / kv-heads times, the causal (T, T) scores materialised with the softmax in fp32, the SwiGLU
MLP down(silu(gate(x)) * up(x)), no biases, and the loss as cross-entropy over all (T, V) logits.
--head-dim sets each head's width (default dim / heads) and --qk-norm adds Qwen3's RMSNorm on each query
and key head before the rotation (Hugging Face's Qwen3ForCausalLM: q_norm / k_norm over head_dim values).
--precision bf16 runs forward under CPU autocast bf16 (weights stay fp32 unless --base-precision bf16;
GEMM inputs are cast to bf16). --checkpoint sqrt recomputes about sqrt(layers) segments of about
sqrt(layers) blocks (non-reentrant torch.utils.checkpoint). --lora-rank R adds PEFT-style LoRA to the
--lora-targets projections (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj): the base is
frozen, A (R x in) gets kaiming-uniform(a=sqrt(5)), B (out x R) zeros, y = base(x) + (alpha/R) B A x with
alpha = R, no dropout, and AdamW updates A and B only. --base-precision bf16 (needs --lora-rank) stores
the frozen matrices (every projection's weight and the tied embedding) in bf16; the RMSNorm gains stay
fp32 and the residual stream keeps its dtype (the embedding output is widened back to fp32).
Measures the median time of a full optimizer step (forward + backward + AdamW) over the steps after
the first, tokens/s = batch * ctx / median, the peak RSS of the process (ru_maxrss) and its RSS
before the model was created. Writes and prints one JSON object.
"""
import argparse
import math
import os
import platform
import sys


# The baseline RSS is read in main(), after torch is imported and before the model exists.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pytorch_common import (Linear, add_lora, add_run_args, check_run_args, current_rss_bytes,  # noqa: E402
                            run_blocks, sqrt_segments, store_base_in_bf16, tied_head_loss, train_and_measure,
                            write_result)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class RMSNorm(nn.Module):
    """Hugging Face's LlamaRMSNorm: normalised in fp32, cast back to the input's dtype, times the gain."""

    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Block(nn.Module):
    """One Llama decoder layer: pre-RMSNorm grouped-query self-attention with rotary positions and a
    SwiGLU MLP, each with a residual."""

    def __init__(self, dim, heads, kv_heads, mlp_dim, eps, head_dim, qk_norm):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        hd = self.head_dim
        self.input_layernorm = RMSNorm(dim, eps)
        self.q_proj = Linear(dim, heads * hd, bias=False)
        self.k_proj = Linear(dim, kv_heads * hd, bias=False)
        self.v_proj = Linear(dim, kv_heads * hd, bias=False)
        self.o_proj = Linear(heads * hd, dim, bias=False)
        self.q_norm = RMSNorm(hd, eps) if qk_norm else None
        self.k_norm = RMSNorm(hd, eps) if qk_norm else None
        self.post_attention_layernorm = RMSNorm(dim, eps)
        self.gate_proj = Linear(dim, mlp_dim, bias=False)
        self.up_proj = Linear(dim, mlp_dim, bias=False)
        self.down_proj = Linear(mlp_dim, dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        H, KV, hd = self.heads, self.kv_heads, self.head_dim
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, H, hd).transpose(1, 2)                # (B, H, T, hd)
        k = self.k_proj(h).view(B, T, KV, hd).transpose(1, 2)               # (B, KV, T, hd)
        v = self.v_proj(h).view(B, T, KV, hd).transpose(1, 2)
        if self.q_norm is not None:  # Qwen3: each head normalised over its hd values
            q, k = self.q_norm(q), self.k_norm(k)
        c, s = cos[:T].to(q.dtype), sin[:T].to(q.dtype)                     # (T, hd)
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        if KV != H:  # Hugging Face's repeat_kv: key/value head j serves query heads j*n .. j*n + n - 1
            k = k.repeat_interleave(H // KV, dim=1)                          # (B, H, T, hd)
            v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))            # (B, H, T, T)
        att = att.masked_fill(~mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * hd)                 # (B, T, H hd)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x


class Llama(nn.Module):
    def __init__(self, layers, dim, heads, kv_heads, mlp_dim, ctx, vocab, eps, theta, head_dim=0, qk_norm=False):
        super().__init__()
        hd = head_dim or dim // heads
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads, kv_heads, mlp_dim, eps, hd, qk_norm) for _ in range(layers)])
        self.norm = RMSNorm(dim, eps)
        self.segments = None  # list of (start, end) block ranges to checkpoint, or None
        inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(ctx, dtype=torch.float32), inv_freq)  # (T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)                                # (T, hd)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.register_buffer("mask", torch.ones(ctx, ctx, dtype=torch.bool).tril(), persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:  # projections and the (tied) embedding; RMSNorm gains stay 1
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, targets):
        x = self.embed_tokens(idx).float()  # a bf16 base stores the table in bf16, not the residual stream
        x = run_blocks(self.layers, x, self.segments, self.cos, self.sin, self.mask)
        return tied_head_loss(self.norm(x), self.embed_tokens.weight, targets)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--heads", type=int, default=9)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--mlp-dim", type=int, default=1536)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--rms-norm-eps", type=float, default=1e-5)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--head-dim", type=int, default=0, help="each head's width (0: dim / heads)")
    ap.add_argument("--qk-norm", action="store_true", help="Qwen3's per-head RMSNorm on q and k")
    add_run_args(ap, 1, ",".join(LORA_TARGETS), LORA_TARGETS)
    args = ap.parse_args()
    lora_targets = check_run_args(ap, args, LORA_TARGETS)
    head_dim = args.head_dim or args.dim // args.heads
    if (not args.head_dim and args.dim % args.heads != 0) or head_dim % 2 != 0:
        ap.error("--dim must be divisible by --heads (or --head-dim given), with an even head size (rotary pairs)")
    if args.heads % args.kv_heads != 0:
        ap.error("--heads must be divisible by --kv-heads")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    baseline_rss = current_rss_bytes()

    model = Llama(args.layers, args.dim, args.heads, args.kv_heads, args.mlp_dim, args.ctx, args.vocab,
                  args.rms_norm_eps, args.rope_theta, head_dim, args.qk_norm)
    if args.lora_rank:
        add_lora(model, [getattr(b, n) for b in model.layers for n in lora_targets], args.lora_rank)
    if args.base_precision == "bf16":
        store_base_in_bf16(model)
    if args.checkpoint == "sqrt":
        model.segments = sqrt_segments(args.layers)
    result = train_and_measure(model, args, "pytorch_llama_reference")
    result["baseline_rss_bytes"] = baseline_rss
    result["config"] = {
        "arch": "llama", "layers": args.layers, "dim": args.dim, "heads": args.heads,
        "kv_heads": args.kv_heads, "head_dim": head_dim, "qk_norm": args.qk_norm, "mlp_dim": args.mlp_dim, "ctx": args.ctx, "vocab": args.vocab,
        "rms_norm_eps": args.rms_norm_eps, "rope_theta": args.rope_theta, "tied_embeddings": True,
        "batch": args.batch, "lr": args.lr, "weight_decay": 0.0, "optimizer": "adamw",
        "precision": args.precision, "checkpoint": args.checkpoint,
        "segments": model.segments, "threads": args.threads,
        "lora_rank": args.lora_rank, "lora_targets": lora_targets if args.lora_rank else [],
        "base_precision": args.base_precision,
        "steps": args.steps, "torch": torch.__version__, "python": platform.python_version(),
    }
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
