#!/usr/bin/env bash
# README "Run the result in llama.cpp": the fine-tune of bench/chat_finetune.sh (run first when its
# output is missing) exported as GGUF files, merged (f32 and q8_0) and as a LoRA adapter for the base,
# then asked the README's questions by llama.cpp itself (npm node-llama-cpp's prebuilt binaries,
# through tests/gguf/llama_reference.mjs: greedy, the chat template's generation prompt as frugal
# renders it) beside frugal's own greedy answer. Writes into out/chat (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/chat}
bash scripts/build.sh > /dev/null
lscpu | grep "Model name"
[ -d "$OUT/adapter" ] || bash bench/chat_finetune.sh "$OUT" > /dev/null
time_of() { /usr/bin/time -f "%e s" "$@" 2>&1 >/dev/null | tail -1; }
echo "export merged f32:  $(time_of build/frugal export --model "$OUT/base" --adapter "$OUT/adapter" --format gguf --out "$OUT/merged.gguf")"
echo "export merged q8_0: $(time_of build/frugal export --model "$OUT/base" --adapter "$OUT/adapter" --format gguf --dtype q8_0 --out "$OUT/merged.q8_0.gguf")"
build/frugal export --model "$OUT/base" --format gguf --out "$OUT/base.gguf" > /dev/null
build/frugal export --model "$OUT/base" --adapter "$OUT/adapter" --adapter-only --format gguf --out "$OUT/adapter.gguf" > /dev/null
ls -l "$OUT"/*.gguf | awk '{printf "  %-28s %10d bytes\n", $NF, $5}'
# The generation prompt of each question, as frugal renders and tokenizes it (the ids before the
# first trained token of a prompt-completion record).
QUESTIONS=("What is the ISO 3166-1 alpha-2 code of Japan?" "What is the alpha-3 code of Kenya?")
: > "$OUT/questions.jsonl"
for q in "${QUESTIONS[@]}"; do printf '{"prompt": "%s", "completion": "x"}\n' "$q" >> "$OUT/questions.jsonl"; done
build/frugal tokenize --chat --format json --tokenizer "$OUT/base" --out "$OUT/questions.json" "$OUT/questions.jsonl" > /dev/null
for i in "${!QUESTIONS[@]}"; do
  q=${QUESTIONS[$i]}
  echo "> $q"
  printf '[{"role": "user", "content": "%s"}]\n' "$q" > "$OUT/messages.json"
  echo "  frugal (base + adapter):        $(build/frugal generate --model "$OUT/base" --adapter "$OUT/adapter" \
        --messages "$OUT/messages.json" --temperature 0 --tokens 24 2>/dev/null | tr '\n' ' ')"
  for run in "merged.gguf" "merged.q8_0.gguf" "base.gguf + adapter.gguf"; do
    model=${run%% *}
    lora=""; [[ "$run" == *adapter* ]] && lora="$OUT/adapter.gguf"
    /usr/bin/python3 - "$OUT" "$i" "$model" "$lora" "$run" <<'PY'
import json, subprocess, sys, os
out, i, model, lora, label = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ex = json.load(open(f"{out}/questions.json"))
ex = ex["examples"][i] if isinstance(ex, dict) else ex[i]
prompt = ex["ids"][: ex["mask"].index(1)]
req = {"node_modules": os.path.abspath(".deps/node_modules"), "model": os.path.abspath(f"{out}/{model}"),
       "generate": {"prompt": prompt, "tokens": 24}, "kv_cache": "f32", "threads": 2}
if lora: req["lora"] = os.path.abspath(lora)
path = f"{out}/request.json"
json.dump(req, open(path, "w"))
r = json.loads(subprocess.run(["node", "tests/gguf/llama_reference.mjs", path], check=True, capture_output=True, text=True).stdout)
text = r["generated_text"].split("<|im_end|>")[0]
print(f"  llama.cpp ({label}): ".ljust(34) + text.replace("\n", " "))
PY
  done
done
echo "llama.cpp's own tools: llama-cli -m $OUT/merged.q8_0.gguf -cnv    or    llama-cli -m $OUT/base.gguf --lora $OUT/adapter.gguf -cnv"
