#!/usr/bin/env bash
# KV-cached generation against re-running the whole context (issue 16): tokens per second of
# `frugal generate` with and without the cache at GPT-2 small's shapes (12 layers, dim 768, 12 heads,
# context 1024, vocabulary 50,257, random weights from one training step), greedy, after a 256-byte
# prompt (256 tokens for a byte-level prompt). The model directory is made once and reused.
#
#   bash bench/generate_kv.sh [OUT]   (OUT defaults to out/bench-generate-kv)
#
# Environment: FRUGAL (build/frugal), THREADS (2), TOKENS (new tokens with the cache, 256),
# NO_CACHE_TOKENS (new tokens without it, 256; fewer keeps the run short: its context then stays
# shorter than the cached run's, which favours the no-cache figure), and the shapes LAYERS, DIM,
# HEADS, CTX, VOCAB (GPT-2 small's by default; e.g. LAYERS=2 DIM=64 HEADS=2 CTX=512 VOCAB=512 for a
# quick check of the script). Runs with OPENBLAS_CORETYPE unset (OpenBLAS picks its kernel for this CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-generate-kv}
FRUGAL=${FRUGAL:-build/frugal}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-256}
NO_CACHE_TOKENS=${NO_CACHE_TOKENS:-256}
LAYERS=${LAYERS:-12} DIM=${DIM:-768} HEADS=${HEADS:-12} CTX=${CTX:-1024} VOCAB=${VOCAB:-50257}
source bench/machine.sh
mkdir -p "$OUT"
MODEL="$OUT/model-$LAYERS-$DIM-$HEADS-$CTX-$VOCAB"
(unset OPENBLAS_CORETYPE; print_machine "$FRUGAL")
lscpu | grep "Model name" || true
if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "making $MODEL (one SGD step on synthetic data: random weights)"
  env -u OPENBLAS_CORETYPE "$FRUGAL" train --arch gpt --layers "$LAYERS" --dim "$DIM" --heads "$HEADS" --ctx "$CTX" \
    --vocab "$VOCAB" --data synthetic --steps 1 --micro-batch 1 --optimizer sgd --threads "$THREADS" \
    --save "$MODEL" > "$OUT/train.log" 2>&1
fi
# 256 bytes of English text: 256 byte-level tokens.
PROMPT=$(printf '%s' "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of \
foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the \
season of Darkness, it was the spring of hope, it was the winter of despair." | head -c 256)
[ "${#PROMPT}" -eq 256 ] || { echo "prompt is ${#PROMPT} bytes, not 256" >&2; exit 1; }
run() {  # run NAME TOKENS [FLAGS...]
  local name=$1 tokens=$2
  shift 2
  local cmd=("$FRUGAL" generate --model "$MODEL" --prompt "$PROMPT" --tokens "$tokens" --temperature 0 --timing
             --threads "$THREADS" "$@")
  echo "command ($name): env -u OPENBLAS_CORETYPE ${cmd[*]:0:4} --prompt <256 bytes> ${cmd[*]:6}"
  env -u OPENBLAS_CORETYPE "${cmd[@]}" > "$OUT/$name.out" 2> "$OUT/$name.err"
  tail -n 1 "$OUT/$name.err"
}
run cached "$TOKENS"
run no-cache "$NO_CACHE_TOKENS" --no-kv-cache
# Greedy text: the no-cache run's output must be a prefix of the cached run's (identical tokens).
n=$((256 + NO_CACHE_TOKENS))
if cmp -s -n "$n" "$OUT/cached.out" "$OUT/no-cache.out"; then
  echo "greedy outputs agree on the first $NO_CACHE_TOKENS new tokens"
else
  echo "greedy outputs differ" >&2
  exit 1
fi
