// Text from a spec's language model: `frugal generate`, frugal::generate() and Python's
// frugal.generate(). BPE tokens when the model has a tokenizer, else bytes; a KV cache unless
// --no-kv-cache.
#include "run/generate_run.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "models/causal_lm.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "run/model_builder.h"
#include "text/tokenizer.h"

namespace frugal {

namespace {

// The prompt's ids (TextTokenizer::prompt_ids), or bytes.
std::vector<int32_t> prompt_tokens(const std::string& prompt, TextTokenizer* tokenizer) {
  if (!tokenizer) return byte_tokens(prompt);
  std::vector<int32_t> ids = tokenizer->prompt_ids(prompt);
  check(!ids.empty(), "an empty --prompt needs a <|endoftext|> (EOS) token to start from");
  return ids;
}

// The model as --model, --adapter and --base-precision say: an adapter merged into the weights for
// zero-overhead inference (a quantised base keeps it beside).
std::unique_ptr<Model> generation_model(const RunSpec& f) {
  std::unique_ptr<Model> model;
  if (f.lora.base_precision == "fp32") {
    model = load_model(f.model.model_dir);
    if (!f.lora.adapter.empty()) load_adapter(*model, f.lora.adapter);
  } else {  // the base stored as training stored it (nf4/int8: quantised while loading)
    ModelSpec base;
    base.model_dir = f.model.model_dir;
    LoraSpec lora;
    lora.adapter = f.lora.adapter;
    lora.base_precision = f.lora.base_precision;
    model = build_model(base, "fortunes", 0, /*with_weights=*/true, lora);
  }
  if (!f.lora.adapter.empty()) merge_lora(*model);
  return model;
}

}  // namespace

std::string generate_run(RunSpec& f, const TextCallback& on_text) {
  resolve_spec(f, Command::Generate);
  apply_threads(f.threads);
  std::unique_ptr<Model> model = generation_model(f);
  CausalLm* lm = as_causal_lm(*model);
  check(lm, "frugal generate needs a language model (gpt, llama), " + f.model.model_dir + " holds a " + model->arch());
  ModelSpec tokenizer_spec;
  tokenizer_spec.model_dir = f.model.model_dir;
  tokenizer_spec.tokenizer = f.model.tokenizer;
  TextTokenizer* tokenizer = model_tokenizer(tokenizer_spec);
  const int64_t vocab = lm->vocab_size();
  check(tokenizer || vocab >= 256, "generate: byte-level text needs vocab_size >= 256 (or a --tokenizer)");
  if (tokenizer)
    check(tokenizer->vocab_size() <= vocab, "generate: the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                                                " tokens, more than the model's vocab_size " + std::to_string(vocab));
  const std::string& prompt = f.generate.prompt;
  std::string out = prompt;
  if (on_text) on_text(prompt);
  // With --timing a line on stderr: the first token's latency (it includes the prompt's forward) and
  // the whole run's new tokens per second.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  double first_s = 0;
  const std::vector<int32_t> prompt_ids = prompt_tokens(prompt, tokenizer);
  const std::vector<int32_t> ids = generate_tokens(*lm, prompt_ids, f.generate.sample, [&](int32_t id) {
    if (first_s == 0) first_s = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string text = tokenizer ? tokenizer->token_bytes(id) : std::string(1, static_cast<char>(id & 0xff));
    out += text;
    if (on_text) on_text(text);
  });
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (f.generate.timing)
    std::fprintf(stderr,
                 "generate: %zu prompt tokens, %zu new tokens in %.3f s (%.2f tokens/s), first after %.3f s, "
                 "kv cache %s\n",
                 prompt_ids.size(), ids.size(), total_s, total_s > 0 ? ids.size() / total_s : 0.0, first_s,
                 f.generate.sample.kv_cache ? "on" : "off");
  return out;
}

}  // namespace frugal
