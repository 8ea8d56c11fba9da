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
import json
import math
import os
import platform
import resource
import statistics
import sys
import time


def current_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# The baseline RSS is read in main(), after torch is imported and before the model exists.
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Linear(nn.Linear):
    """nn.Linear without bias, with an optional PEFT-style LoRA adapter, and a frozen weight that may be
    stored in bf16 (widened to the input's dtype when autocast does not already cast the GEMM's operands)."""

    def __init__(self, d_in, d_out):
        super().__init__(d_in, d_out, bias=False)
        self.lora_A = None  # (r, in)
        self.lora_B = None  # (out, r)
        self.scaling = 0.0

    def add_lora(self, rank, alpha):
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as PEFT (and nn.Linear) initialise A
        self.scaling = alpha / rank

    def forward(self, x):
        w = self.weight
        if w.dtype != x.dtype and not torch.is_autocast_cpu_enabled():
            w = w.to(x.dtype)
        y = F.linear(x, w)
        if self.lora_A is not None:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


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

    def __init__(self, dim, heads, kv_heads, mlp_dim, eps):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        hd = self.head_dim
        self.input_layernorm = RMSNorm(dim, eps)
        self.q_proj = Linear(dim, heads * hd)
        self.k_proj = Linear(dim, kv_heads * hd)
        self.v_proj = Linear(dim, kv_heads * hd)
        self.o_proj = Linear(heads * hd, dim)
        self.post_attention_layernorm = RMSNorm(dim, eps)
        self.gate_proj = Linear(dim, mlp_dim)
        self.up_proj = Linear(dim, mlp_dim)
        self.down_proj = Linear(mlp_dim, dim)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        H, KV, hd = self.heads, self.kv_heads, self.head_dim
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, H, hd).transpose(1, 2)                # (B, H, T, hd)
        k = self.k_proj(h).view(B, T, KV, hd).transpose(1, 2)               # (B, KV, T, hd)
        v = self.v_proj(h).view(B, T, KV, hd).transpose(1, 2)
        c, s = cos[:T].to(q.dtype), sin[:T].to(q.dtype)                     # (T, hd)
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        if KV != H:  # Hugging Face's repeat_kv: key/value head j serves query heads j*n .. j*n + n - 1
            k = k.repeat_interleave(H // KV, dim=1)                          # (B, H, T, hd)
            v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))            # (B, H, T, T)
        att = att.masked_fill(~mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * hd)                 # (B, T, D)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x


class Llama(nn.Module):
    def __init__(self, layers, dim, heads, kv_heads, mlp_dim, ctx, vocab, eps, theta):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads, kv_heads, mlp_dim, eps) for _ in range(layers)])
        self.norm = RMSNorm(dim, eps)
        self.segments = None  # list of (start, end) block ranges to checkpoint, or None
        hd = dim // heads
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
        B, T = idx.shape
        x = self.embed_tokens(idx).float()  # a bf16 base stores the table in bf16, not the residual stream
        if self.segments is None:
            for block in self.layers:
                x = block(x, self.cos, self.sin, self.mask)
        else:
            for start, end in self.segments:
                x = checkpoint(self._run_blocks, x, start, end, use_reentrant=False)
        x = self.norm(x)
        w = self.embed_tokens.weight
        if w.dtype != x.dtype and not torch.is_autocast_cpu_enabled():
            w = w.to(x.dtype)
        logits = x @ w.t()                                                  # (B, T, V), tied head
        return F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(-1), ignore_index=-100)

    def _run_blocks(self, x, start, end):
        for block in self.layers[start:end]:
            x = block(x, self.cos, self.sin, self.mask)
        return x


def sqrt_segments(n):
    """About sqrt(n) contiguous segments of about sqrt(n) blocks each."""
    if n <= 0:
        return []
    size = max(1, math.ceil(math.sqrt(n)))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def add_lora(model, rank, targets):
    """Freezes every parameter, then adds trainable A and B to the targeted projections (alpha = rank)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for block in model.layers:
        for n in targets:
            getattr(block, n).add_lora(rank, float(rank))


def store_base_in_bf16(model):
    """Frozen matrices (projection weights, the tied embedding) to bf16; RMSNorm gains and LoRA stay fp32."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            p = m.weight
            if not p.requires_grad:
                p.data = p.data.to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--heads", type=int, default=9)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--mlp-dim", type=int, default=1536)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--rms-norm-eps", type=float, default=1e-5)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--checkpoint", choices=["none", "sqrt"], default="none")
    ap.add_argument("--lora-rank", type=int, default=0, help="LoRA rank r (0: full training)")
    ap.add_argument("--lora-targets", default=",".join(LORA_TARGETS),
                    help="comma-separated among " + ", ".join(LORA_TARGETS))
    ap.add_argument("--base-precision", choices=["fp32", "bf16"], default="fp32",
                    help="storage of the frozen base weights (needs --lora-rank)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the result JSON here")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is not timed)")
    if args.dim % args.heads != 0 or (args.dim // args.heads) % 2 != 0:
        ap.error("--dim must be divisible by --heads, with an even head size (rotary pairs)")
    if args.heads % args.kv_heads != 0:
        ap.error("--heads must be divisible by --kv-heads")
    lora_targets = [t for t in args.lora_targets.split(",") if t]
    if args.lora_rank < 0:
        ap.error("--lora-rank must be >= 0")
    if args.lora_rank and (not lora_targets or any(t not in LORA_TARGETS for t in lora_targets)):
        ap.error(f"--lora-targets: names among {', '.join(LORA_TARGETS)}")
    if args.base_precision != "fp32" and not args.lora_rank:
        ap.error("--base-precision bf16 needs --lora-rank (only a frozen base is stored in bf16)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    baseline_rss = current_rss_bytes()

    model = Llama(args.layers, args.dim, args.heads, args.kv_heads, args.mlp_dim, args.ctx, args.vocab,
                  args.rms_norm_eps, args.rope_theta)
    if args.lora_rank:
        add_lora(model, args.lora_rank, lora_targets)
    if args.base_precision == "bf16":
        store_base_in_bf16(model)
    if args.checkpoint == "sqrt":
        model.segments = sqrt_segments(args.layers)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    model_rss = current_rss_bytes()

    times, losses = [], []
    for step in range(args.steps):
        idx = torch.randint(0, args.vocab, (args.batch, args.ctx))
        targets = torch.randint(0, args.vocab, (args.batch, args.ctx))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if args.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(idx, targets)
        else:
            loss = model(idx, targets)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step == 0:  # gradients reach exactly the trainable parameters (under LoRA: A and B only)
            wrong = [n for n, p in model.named_parameters() if (p.grad is not None) != p.requires_grad]
            if wrong:
                sys.exit(f"pytorch_llama_reference: gradients do not match requires_grad for {wrong[:5]}")
        times.append(dt)
        losses.append(float(loss.item()))
        print(f"step {step + 1}/{args.steps}: loss {losses[-1]:.4f}, {dt:.3f} s", file=sys.stderr, flush=True)

    step_time = statistics.median(times[1:])
    result = {
        "step_time_s": step_time,
        "tokens_per_s": args.batch * args.ctx / step_time,
        "peak_rss_bytes": peak_rss_bytes(),
        "baseline_rss_bytes": baseline_rss,
        "model_rss_bytes": model_rss,
        "params": n_params,
        "trainable_params": n_trainable,
        "step_times_s": times,
        "losses": losses,
        "config": {
            "arch": "llama", "layers": args.layers, "dim": args.dim, "heads": args.heads,
            "kv_heads": args.kv_heads, "mlp_dim": args.mlp_dim, "ctx": args.ctx, "vocab": args.vocab,
            "rms_norm_eps": args.rms_norm_eps, "rope_theta": args.rope_theta, "tied_embeddings": True,
            "batch": args.batch, "lr": args.lr, "weight_decay": 0.0, "optimizer": "adamw",
            "precision": args.precision, "checkpoint": args.checkpoint,
            "segments": model.segments, "threads": args.threads,
            "lora_rank": args.lora_rank, "lora_targets": lora_targets if args.lora_rank else [],
            "base_precision": args.base_precision,
            "steps": args.steps, "torch": torch.__version__, "python": platform.python_version(),
        },
    }
    text = json.dumps(result)
    if args.json:
        d = os.path.dirname(args.json)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
