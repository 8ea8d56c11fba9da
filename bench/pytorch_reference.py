#!/usr/bin/python3
"""PyTorch baseline for DESIGN.md's reference speed workload (GPT-2 architecture, AdamW, random tokens).

    /usr/bin/python3 bench/pytorch_reference.py --steps 10 --threads 2 --json out/bench/pytorch.json

Defaults: 6 layers, dim 256, 8 heads, context 128, vocab 256, batch 16, fp32, 2 threads.
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


class Block(nn.Module):
    """One GPT-2 block: pre-LayerNorm causal self-attention and tanh-GELU MLP, each with a residual."""

    def __init__(self, dim, heads, ctx):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.attn_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.mlp_proj = nn.Linear(4 * dim, dim)
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
        if self.segments is None:
            for block in self.h:
                x = block(x)
        else:
            for start, end in self.segments:
                x = checkpoint(self._run_blocks, x, start, end, use_reentrant=False)
        x = self.ln_f(x)
        logits = x @ self.wte.weight.t()                                    # (B, T, V), tied head
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the result JSON here")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is not timed)")
    if args.dim % args.heads != 0:
        ap.error("--dim must be divisible by --heads")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    baseline_rss = current_rss_bytes()

    model = GPT(args.layers, args.dim, args.heads, args.ctx, args.vocab)
    if args.checkpoint == "sqrt":
        model.segments = sqrt_segments(args.layers)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)

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
        "step_times_s": times,
        "losses": losses,
        "config": {
            "layers": args.layers, "dim": args.dim, "heads": args.heads, "ctx": args.ctx, "vocab": args.vocab,
            "batch": args.batch, "lr": args.lr, "weight_decay": 0.0, "optimizer": "adamw",
            "precision": args.precision, "checkpoint": args.checkpoint, "threads": args.threads,
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
