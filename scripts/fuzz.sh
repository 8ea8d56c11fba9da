#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each for SECONDS
# (default 600) from the seed corpus in fuzz/corpus/<target> (copied: the repo's corpus is not
# modified). Prints libFuzzer's final statistics (number of executions); a crash stops it with the
# input saved as build-fuzz/crash-*.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     targets: safetensors gguf config tokenizer_json gpt2_vocab
#                                                  token_file chat_jsonl chat_template (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(safetensors gguf config tokenizer_json gpt2_vocab token_file chat_jsonl chat_template)
bash scripts/setup.sh
# (clang may be there without the OpenMP runtime it needs to build frugal)
if ! command -v clang++ > /dev/null || ! dpkg -s libomp-dev > /dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -q clang libomp-dev
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
  -DFRUGAL_FUZZ=ON -DFRUGAL_MPI=OFF > /dev/null
for t in "${TARGETS[@]}"; do cmake --build build-fuzz -j "$(nproc)" --target "fuzz_$t"; done
for t in "${TARGETS[@]}"; do
  work=build-fuzz/corpus-$t
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "== fuzz_$t for ${SECONDS_EACH} s"
  (cd build-fuzz && ./"fuzz_$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=4096 \
     -timeout=10 "corpus-$t" 2>&1 | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|ERROR|SUMMARY|Done" )
done
