#!/usr/bin/python3
"""PyTorch baseline for DESIGN.md's reference speed workload (GPT-2 architecture, AdamW, random tokens).

    /usr/bin/python3 bench/pytorch_reference.py --steps 10 --threads 2 --json out/bench/pytorch.json

Defaults: 6 layers, dim 256, 8 heads, context 128, vocab 256, batch 16, fp32, 2 threads.
--precision bf16 runs forward under CPU autocast bf16 (weights stay fp32; GEMM inputs are cast to bf16).
--checkpoint sqrt recomputes about sqrt(layers) segments of about sqrt(layers) blocks (non-reentrant
torch.utils.checkpoint). --lora-rank R adds PEFT-style LoRA to the --lora-targets linears (PEFT suffix
match on GPT-2's names: c_attn, c_proj = attn.c_proj and mlp.c_proj, c_fc): the base is frozen, A (R x in)
gets kaiming-uniform(a=sqrt(5)), B (out x R) zeros, y = base(x) + (alpha/R) B A x with alpha = R, no
dropout, and AdamW updates A and B only. --base-precision bf16 (needs --lora-rank) stores the frozen
matrices (every Linear's weight and bias, wte, wpe) in bf16; LayerNorm stays fp32 and the residual
stream keeps its dtype (the embedding output is widened back to fp32).
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


class Linear(nn.Linear):
    """nn.Linear with an optional PEFT-style LoRA adapter, and a frozen weight that may be stored in bf16
    (widened to the input's dtype when autocast does not already cast the GEMM's operands)."""

    def __init__(self, d_in, d_out):
        super().__init__(d_in, d_out)
        self.lora_A = None  # (r, in)
        self.lora_B = None  # (out, r)
        self.scaling = 0.0

    def add_lora(self, rank, alpha):
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as PEFT (and nn.Linear) initialise A
        self.scaling = alpha / rank

    def forward(self, x):
        w, b = self.weight, self.bias
        if w.dtype != x.dtype and not torch.is_autocast_cpu_enabled():
            w, b = w.to(x.dtype), b.to(x.dtype)
        y = F.linear(x, w, b)
        if self.lora_A is not None:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


# PEFT target suffix -> this script's module names (GPT-2 calls both projections c_proj).
LORA_TARGETS = {"c_attn": ["c_attn"], "c_proj": ["attn_proj", "mlp_proj"], "c_fc": ["c_fc"]}


class Block(nn.Module):
    """One GPT-2 block: pre-LayerNorm causal self-attention and tanh-GELU MLP, each with a residual."""

    def __init__(self, dim, heads, ctx):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.c_attn = Linear(dim, 3 * dim)
        self.attn_proj = Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.c_fc = Linear(dim, 4 * dim)
        self.mlp_proj = Linear(4 * dim, dim)
        self.register_buffer("mask", torch.ones(ctx, ctx, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x):
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=-1)              # (B, T, D) each
        q = q.view(B, T, H, D // H).transpose(1, 2)                         # (B, H, T, hd)
        k = k.view(B, T, H, D // H).transpose(1, 2)
        v = v.view(B, T, H, D // H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H))         # (B, H, T, T)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)                      # (B, T, D)
        x = x + self.attn_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, layers, dim, heads, ctx, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(ctx, dim)
        self.h = nn.ModuleList([Block(dim, heads, ctx) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)
        self.segments = None  # list of (start, end) block ranges to checkpoint, or None
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))   # (B, T, D)
        x = x.float()  # a bf16 base (--base-precision) stores the tables in bf16, not the residual stream
        if self.segments is None:
            for block in self.h:
                x = block(x)
        else:
            for start, end in self.segments:
                x = checkpoint(self._run_blocks, x, start, end, use_reentrant=False)
        x = self.ln_f(x)
        w = self.wte.weight
        if w.dtype != x.dtype and not torch.is_autocast_cpu_enabled():
            w = w.to(x.dtype)
        logits = x @ w.t()                                                  # (B, T, V), tied head
        return F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(-1), ignore_index=-100)

    def _run_blocks(self, x, start, end):
        for block in self.h[start:end]:
            x = block(x)
        return x


def sqrt_segments(n):
    """About sqrt(n) contiguous segments of about sqrt(n) blocks each."""
    if n <= 0:
        return []
    size = max(1, math.ceil(math.sqrt(n)))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def add_lora(model, rank, targets):
    """Freezes every parameter, then adds trainable A and B to the targeted linears (alpha = rank)."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n for t in targets for n in LORA_TARGETS[t]]
    for block in model.h:
        for n in names:
            getattr(block, n).add_lora(rank, float(rank))


def store_base_in_bf16(model):
    """Frozen matrices (Linear weights and biases, wte, wpe) to bf16; LayerNorm and LoRA stay fp32."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            for name in ("weight", "bias"):
                p = getattr(m, name, None)
                if p is not None and not p.requires_grad:
                    p.data = p.data.to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--checkpoint", choices=["none", "sqrt"], default="none")
    ap.add_argument("--lora-rank", type=int, default=0, help="LoRA rank r (0: full training)")
    ap.add_argument("--lora-targets", default="c_attn", help="comma-separated: c_attn, c_proj, c_fc")
    ap.add_argument("--base-precision", choices=["fp32", "bf16"], default="fp32",
                    help="storage of the frozen base weights (needs --lora-rank)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the result JSON here")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is not timed)")
    if args.dim % args.heads != 0:
        ap.error("--dim must be divisible by --heads")
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

    model = GPT(args.layers, args.dim, args.heads, args.ctx, args.vocab)
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
                sys.exit(f"pytorch_reference: gradients do not match requires_grad for {wrong[:5]}")
        times.append(dt)
        losses.append(float(loss.item()))
        print(f"step {step + 1}/{args.steps}: loss {losses[-1]:.4f}, {dt:.3f} s", file=sys.stderr, flush=True)

    step_time = statistics.median(times[1:])
    result = {
        "step_time_s": step_time,
        "tokens_per_s": args.batch * args.ctx / step_time,
        "peak_rss_bytes": peak_rss_bytes(),
        "baseline_rss_bytes": baseline_rss,
        "params": n_params,
        "trainable_params": n_trainable,
        "step_times_s": times,
        "losses": losses,
        "config": {
            "layers": args.layers, "dim": args.dim, "heads": args.heads, "ctx": args.ctx, "vocab": args.vocab,
            "batch": args.batch, "lr": args.lr, "weight_decay": 0.0, "optimizer": "adamw",
            "precision": args.precision, "checkpoint": args.checkpoint, "threads": args.threads,
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
