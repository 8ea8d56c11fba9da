"""What the PyTorch reference benchmarks share (bench/pytorch_reference.py: GPT-2; bench/pytorch_llama_reference.py:
Llama): RSS readings, PEFT-style LoRA linears, sqrt checkpoint segments, a frozen base in bf16, and the
measured training loop with its JSON result. Imported after the caller reads nothing: importing torch here
is part of the baseline RSS, which callers read before they build the model.
"""
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


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


class Linear(nn.Linear):
    """nn.Linear with an optional PEFT-style LoRA adapter, and a frozen weight that may be stored in bf16
    (widened to the input's dtype when autocast does not already cast the GEMM's operands)."""

    def __init__(self, d_in, d_out, bias=True):
        super().__init__(d_in, d_out, bias=bias)
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
            w = w.to(x.dtype)
            b = b.to(x.dtype) if b is not None else None
        y = F.linear(x, w, b)
        if self.lora_A is not None:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


def sqrt_segments(n):
    """About sqrt(n) contiguous segments of about sqrt(n) blocks each."""
    if n <= 0:
        return []
    size = max(1, math.ceil(math.sqrt(n)))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def run_blocks(blocks, x, segments, *extra):
    """x through every block (block(x, *extra)); with segments, each (start, end) range recomputed in
    backward (non-reentrant torch.utils.checkpoint) instead of keeping its activations."""
    def run_range(x, start, end):
        for block in blocks[start:end]:
            x = block(x, *extra)
        return x
    if segments is None:
        return run_range(x, 0, len(blocks))
    for start, end in segments:
        x = checkpoint(run_range, x, start, end, use_reentrant=False)
    return x


def tied_head_loss(x, weight, targets):
    """Mean cross-entropy of the logits x @ weight^T (B, T, V) over targets != -100, the logits widened
    to fp32 as the loss reads them. A bf16 table outside autocast is cast to x's dtype first."""
    B, T = targets.shape
    if weight.dtype != x.dtype and not torch.is_autocast_cpu_enabled():
        weight = weight.to(x.dtype)
    logits = x @ weight.t()                                             # (B, T, V)
    return F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(-1), ignore_index=-100)


def add_lora(model, linears, rank):
    """Freezes every parameter of the model, then adds trainable A and B to `linears` (alpha = rank)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for linear in linears:
        linear.add_lora(rank, float(rank))


def store_base_in_bf16(model):
    """Frozen matrices (Linear weights and biases, embeddings) to bf16; norms and LoRA stay fp32."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            for name in ("weight", "bias"):
                p = getattr(m, name, None)
                if p is not None and not p.requires_grad:
                    p.data = p.data.to(torch.bfloat16)


def train_and_measure(model, args, name):
    """args.steps AdamW steps (lr args.lr, no weight decay) on random tokens of args.batch x args.ctx below
    args.vocab, forward under CPU autocast bf16 when args.precision is bf16. Returns the measurements: the
    median step time over the steps after the first, tokens/s, peak RSS, counts, per-step times and losses."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    model_rss = current_rss_bytes()
    times, losses = [], []
    for step in range(args.steps):
        idx = torch.randint(0, args.vocab, (args.batch, args.ctx))
        targets = torch.randint(0, args.vocab, (args.batch, args.ctx))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(idx, targets)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step == 0:  # gradients reach exactly the trainable parameters (under LoRA: A and B only)
            wrong = [n for n, p in model.named_parameters() if (p.grad is not None) != p.requires_grad]
            if wrong:
                sys.exit(f"{name}: gradients do not match requires_grad for {wrong[:5]}")
        times.append(dt)
        losses.append(float(loss.item()))
        print(f"step {step + 1}/{args.steps}: loss {losses[-1]:.4f}, {dt:.3f} s", file=sys.stderr, flush=True)
    step_time = statistics.median(times[1:])
    return {
        "step_time_s": step_time,
        "tokens_per_s": args.batch * args.ctx / step_time,
        "peak_rss_bytes": peak_rss_bytes(),
        "model_rss_bytes": model_rss,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in trainable),
        "step_times_s": times,
        "losses": losses,
    }


def write_result(result, json_path):
    """Prints the result as one JSON line and, with a path, writes it there too (indented)."""
    if json_path:
        d = os.path.dirname(json_path)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(json_path, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def add_run_args(ap, batch, lora_targets_default, lora_targets_known):
    """The flags both benchmarks take besides the model's shape."""
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--checkpoint", choices=["none", "sqrt"], default="none")
    ap.add_argument("--lora-rank", type=int, default=0, help="LoRA rank r (0: full training)")
    ap.add_argument("--lora-targets", default=lora_targets_default,
                    help="comma-separated among " + ", ".join(lora_targets_known))
    ap.add_argument("--base-precision", choices=["fp32", "bf16"], default="fp32",
                    help="storage of the frozen base weights (needs --lora-rank)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the result JSON here")


def check_run_args(ap, args, lora_targets_known):
    """Refuses what add_run_args' flags cannot mean; returns the LoRA target names."""
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is not timed)")
    lora_targets = [t for t in args.lora_targets.split(",") if t]
    if args.lora_rank < 0:
        ap.error("--lora-rank must be >= 0")
    if args.lora_rank and (not lora_targets or any(t not in lora_targets_known for t in lora_targets)):
        ap.error(f"--lora-targets: names among {', '.join(lora_targets_known)}")
    if args.base_precision != "fp32" and not args.lora_rank:
        ap.error("--base-precision bf16 needs --lora-rank (only a frozen base is stored in bf16)")
    return lora_targets
