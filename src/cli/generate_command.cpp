// `frugal generate`: samples text from a GPT model directory (BPE tokens when it has a tokenizer,
// else bytes), with a KV cache unless --no-kv-cache; --stream prints each token as it is chosen.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/error.h"
#include "core/threading.h"
#include "models/causal_lm.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "train/generate.h"
#include "text/tokenizer.h"

namespace frugal::cli {

namespace {
struct GenerateFlags {
  std::string model_dir, prompt, adapter, tokenizer;
  std::string base_precision = "fp32";  // with --adapter: fp32, or nf4/int8 (quantised, the adapter beside it)
  SampleOptions sample;
  bool no_kv_cache = false, stream = false, timing = false;
  int threads = 0;
};

// The prompt's ids (TextTokenizer::prompt_ids), or bytes.
std::vector<int32_t> prompt_tokens(const std::string& prompt, TextTokenizer* tokenizer) {
  if (!tokenizer) return byte_tokens(prompt);
  std::vector<int32_t> ids = tokenizer->prompt_ids(prompt);
  check(!ids.empty(), "an empty --prompt needs a <|endoftext|> (EOS) token to start from");
  return ids;
}

// The prompt, then each token's text: as it comes with --stream, else all at once at the end.
// With --timing a line on stderr: the first token's latency (it includes the prompt's forward) and
// the whole run's new tokens per second.
void sample_and_print(CausalLm& model, const GenerateFlags& f, TextTokenizer* tokenizer) {
  std::string out = f.prompt;
  if (f.stream) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  double first_s = 0;
  const std::vector<int32_t> prompt = prompt_tokens(f.prompt, tokenizer);
  const std::vector<int32_t> ids = generate_tokens(model, prompt, f.sample, [&](int32_t id) {
    if (first_s == 0) first_s = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string text = tokenizer ? tokenizer->token_bytes(id) : std::string(1, static_cast<char>(id & 0xff));
    if (f.stream) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    } else {
      out += text;
    }
  });
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!f.stream) std::fwrite(out.data(), 1, out.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (f.timing)
    std::fprintf(stderr,
                 "generate: %zu prompt tokens, %zu new tokens in %.3f s (%.2f tokens/s), first after %.3f s, "
                 "kv cache %s\n",
                 prompt.size(), ids.size(), total_s, total_s > 0 ? ids.size() / total_s : 0.0, first_s,
                 f.sample.kv_cache ? "on" : "off");
}

void run_generate(GenerateFlags& f) {
  apply_threads(f.threads);
  check(f.base_precision == "fp32" || !f.adapter.empty(), "--base-precision applies to an adapter's base: add --adapter DIR");
  std::unique_ptr<Model> model;
  if (f.base_precision == "fp32") {
    model = load_model(f.model_dir);
    if (!f.adapter.empty()) load_adapter(*model, f.adapter);
  } else {  // the base stored as training stored it (nf4/int8: quantised while loading)
    ModelFlags base;
    base.model_dir = f.model_dir;
    LoraFlags lora;
    lora.adapter = f.adapter;
    lora.base_precision = f.base_precision;
    model = build_model(base, "fortunes", 0, /*with_weights=*/true, lora);
  }
  // Zero-overhead inference: the adapter folded into the weights (a quantised base keeps it beside).
  if (!f.adapter.empty()) merge_lora(*model);
  CausalLm* lm = as_causal_lm(*model);
  check(lm, "frugal generate needs a language model (gpt, llama), " + f.model_dir + " holds a " + model->arch());
  ModelFlags model_flags;
  model_flags.model_dir = f.model_dir;
  model_flags.tokenizer = f.tokenizer;
  TextTokenizer* tokenizer = model_tokenizer(model_flags);
  const int64_t vocab = lm->vocab_size();
  check(tokenizer || vocab >= 256, "generate: byte-level text needs vocab_size >= 256 (or a --tokenizer)");
  if (tokenizer)
    check(tokenizer->vocab_size() <= vocab, "generate: the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                                                " tokens, more than the model's vocab_size " + std::to_string(vocab));
  f.sample.kv_cache = !f.no_kv_cache;
  sample_and_print(*lm, f, tokenizer);
}
}  // namespace

void register_generate(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "sample text from a language model directory (GPT-2, Llama family)");
  cmd->add_option("--model", flags->model_dir, "model directory")->required();
  cmd->add_option("--prompt", flags->prompt, "text to continue");
  cmd->add_option("--adapter", flags->adapter, "a PEFT LoRA adapter to merge before sampling");
  cmd->add_option("--base-precision", flags->base_precision,
                  "with --adapter: the base as it was fine-tuned, fp32 | nf4 | int8 (a half base samples as fp32)")
      ->check(CLI::IsMember({"fp32", "nf4", "int8"}))->capture_default_str();
  cmd->add_option("--tokenizer", flags->tokenizer, "tokenizer.json or tokenizer directory (default: the model directory's, else bytes)");
  cmd->add_option("--tokens", flags->sample.tokens, "tokens to generate")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  cmd->add_option("--temperature", flags->sample.temperature, "0: greedy")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--top-k", flags->sample.top_k, "sample among the k most likely (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", flags->sample.seed, "sampling seed");
  cmd->add_flag("--no-kv-cache", flags->no_kv_cache,
                "re-run the whole context for every token (the path before the KV cache, for comparison)");
  cmd->add_flag("--stream", flags->stream, "print each token as soon as it is generated");
  cmd->add_flag("--timing", flags->timing, "print the first token's latency and the tokens per second on stderr");
  add_threads_flag(*cmd, flags->threads);
  cmd->callback([flags] { run_generate(*flags); });
}

}  // namespace frugal::cli
