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
        x = run_blocks(self.h, x, self.segments)
        return tied_head_loss(self.ln_f(x), self.wte.weight, targets)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=256)
    add_run_args(ap, 16, "c_attn", LORA_TARGETS)
    args = ap.parse_args()
    lora_targets = check_run_args(ap, args, LORA_TARGETS)
    if args.dim % args.heads != 0:
        ap.error("--dim must be divisible by --heads")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    baseline_rss = current_rss_bytes()

    model = GPT(args.layers, args.dim, args.heads, args.ctx, args.vocab)
    if args.lora_rank:
        add_lora(model, [getattr(b, n) for b in model.h for t in lora_targets for n in LORA_TARGETS[t]], args.lora_rank)
    if args.base_precision == "bf16":
        store_base_in_bf16(model)
    if args.checkpoint == "sqrt":
        model.segments = sqrt_segments(args.layers)
    result = train_and_measure(model, args, "pytorch_reference")
    result["baseline_rss_bytes"] = baseline_rss
    result["config"] = {
        "layers": args.layers, "dim": args.dim, "heads": args.heads, "ctx": args.ctx, "vocab": args.vocab,
        "batch": args.batch, "lr": args.lr, "weight_decay": 0.0, "optimizer": "adamw",
        "precision": args.precision, "checkpoint": args.checkpoint, "threads": args.threads,
        "lora_rank": args.lora_rank, "lora_targets": lora_targets if args.lora_rank else [],
        "base_precision": args.base_precision,
        "steps": args.steps, "torch": torch.__version__, "python": platform.python_version(),
    }
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
