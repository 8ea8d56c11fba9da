#include "models/gguf_model.h"

#include <cmath>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <span>

#include "core/error.h"
#include "kernels/rope.h"
#include "models/gpt.h"
#include "models/llama.h"

namespace frugal {

namespace {

// Names inside one decoder layer: Hugging Face's (after "model.layers.N." or "h.N.") -> llama.cpp's
// (after "blk.N.").
struct LayerName {
  const char* hf;
  const char* gguf;
  GgufLayout layout;
};

constexpr LayerName kLlamaLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight", GgufLayout::Same},
    {"self_attn.q_proj.weight", "attn_q.weight", GgufLayout::RopePairs},
    {"self_attn.q_proj.bias", "attn_q.bias", GgufLayout::RopePairs},
    {"self_attn.k_proj.weight", "attn_k.weight", GgufLayout::RopePairs},
    {"self_attn.k_proj.bias", "attn_k.bias", GgufLayout::RopePairs},
    {"self_attn.v_proj.weight", "attn_v.weight", GgufLayout::Same},
    {"self_attn.v_proj.bias", "attn_v.bias", GgufLayout::Same},
    {"self_attn.o_proj.weight", "attn_output.weight", GgufLayout::Same},
    {"self_attn.o_proj.bias", "attn_output.bias", GgufLayout::Same},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", GgufLayout::Same},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", GgufLayout::Same},
    {"post_attention_layernorm.weight", "ffn_norm.weight", GgufLayout::Same},
    {"mlp.gate_proj.weight", "ffn_gate.weight", GgufLayout::Same},
    {"mlp.gate_proj.bias", "ffn_gate.bias", GgufLayout::Same},
    {"mlp.up_proj.weight", "ffn_up.weight", GgufLayout::Same},
    {"mlp.up_proj.bias", "ffn_up.bias", GgufLayout::Same},
    {"mlp.down_proj.weight", "ffn_down.weight", GgufLayout::Same},
    {"mlp.down_proj.bias", "ffn_down.bias", GgufLayout::Same},
};

constexpr LayerName kGptLayer[] = {
    {"ln_1.weight", "attn_norm.weight", GgufLayout::Same},
    {"ln_1.bias", "attn_norm.bias", GgufLayout::Same},
    {"attn.c_attn.weight", "attn_qkv.weight", GgufLayout::Transposed},
    {"attn.c_attn.bias", "attn_qkv.bias", GgufLayout::Same},
    {"attn.c_proj.weight", "attn_output.weight", GgufLayout::Transposed},
    {"attn.c_proj.bias", "attn_output.bias", GgufLayout::Same},
    {"ln_2.weight", "ffn_norm.weight", GgufLayout::Same},
    {"ln_2.bias", "ffn_norm.bias", GgufLayout::Same},
    {"mlp.c_fc.weight", "ffn_up.weight", GgufLayout::Transposed},
    {"mlp.c_fc.bias", "ffn_up.bias", GgufLayout::Same},
    {"mlp.c_proj.weight", "ffn_down.weight", GgufLayout::Transposed},
    {"mlp.c_proj.bias", "ffn_down.bias", GgufLayout::Same},
};

// Tensors outside the layers.
constexpr std::pair<const char*, const char*> kLlamaGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};
constexpr std::pair<const char*, const char*> kGptGlobal[] = {
    {"wte.weight", "token_embd.weight"},
    {"wpe.weight", "position_embd.weight"},
    {"ln_f.weight", "output_norm.weight"},
    {"ln_f.bias", "output_norm.bias"},
};

const LlamaConfig* llama_config_of(const Model& model) {
  return model.arch() == "llama" ? &static_cast<const Llama&>(model).llama_config() : nullptr;
}

// llama.cpp's model files are little-endian float arrays: the keys below are written as f32.
GgufValue f32(double v) { return GgufValue::of_f32(static_cast<float>(v)); }
GgufValue u32(int64_t v) {
  check(v >= 0 && v <= UINT32_MAX, "GGUF export: " + std::to_string(v) + " does not fit a u32 metadata value");
  return GgufValue::of_u32(static_cast<uint32_t>(v));
}

}  // namespace

std::string gguf_architecture(const Model& model) {
  if (model.arch() == "gpt") return "gpt2";
  if (const LlamaConfig* c = llama_config_of(model)) return c->model_type;  // llama, qwen2, qwen3
  throw Error("GGUF holds language models (gpt, llama, qwen2, qwen3), not a " + model.arch() + " model");
}

GgufTensorPlace gguf_place(const Model& model, const std::string& name) {
  const bool gpt = gguf_architecture(model) == "gpt2";
  using Global = std::pair<const char*, const char*>;
  for (const Global& g : gpt ? std::span<const Global>(kGptGlobal) : std::span<const Global>(kLlamaGlobal))
    if (name == g.first) return {g.second, GgufLayout::Same, 0};
  static const std::regex gpt_layer(R"(h\.(\d+)\.(.+))"), llama_layer(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(name, m, gpt ? gpt_layer : llama_layer)) {
    for (const LayerName& rule : gpt ? std::span<const LayerName>(kGptLayer) : std::span<const LayerName>(kLlamaLayer)) {
      if (m[2] != rule.hf) continue;
      GgufTensorPlace place{"blk." + m[1].str() + "." + rule.gguf, rule.layout, 0};
      if (place.layout == GgufLayout::RopePairs) {
        const LlamaConfig& c = *llama_config_of(model);
        if (c.model_type != "llama") place.layout = GgufLayout::Same;  // qwen: llama.cpp rotates as HF does
        place.heads = name.find("q_proj") != std::string::npos ? c.num_attention_heads : c.num_key_value_heads;
      }
      return place;
    }
  }
  throw Error("GGUF: the tensor '" + name + "' of this " + model.arch() + " model has no llama.cpp name");
}

namespace {
// rows (R) of `cols` values each: GGUF row 2j + s of each head <- frugal row s * half + j (to GGUF),
// or the reverse.
void permute_rope_rows(float* data, int64_t rows, int64_t cols, int64_t heads, bool to_gguf) {
  check(heads > 0 && rows % (2 * heads) == 0, "GGUF: q/k rows " + std::to_string(rows) + " do not split into " +
                                                  std::to_string(heads) + " heads of rotated pairs");
  const int64_t head_rows = rows / heads, half = head_rows / 2;
  std::vector<float> head(static_cast<size_t>(head_rows * cols));
  for (int64_t h = 0; h < heads; ++h) {
    float* base = data + h * head_rows * cols;
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int64_t j = 0; j < half; ++j)
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t gguf_row = 2 * j + s, frugal_row = s * half + j;
        const int64_t from = to_gguf ? frugal_row : gguf_row, to = to_gguf ? gguf_row : frugal_row;
        std::memcpy(base + to * cols, head.data() + from * cols, static_cast<size_t>(cols) * sizeof(float));
      }
  }
}

void transpose_in_place(float* data, int64_t rows, int64_t cols) {
  std::vector<float> copy(data, data + rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) data[c * rows + r] = copy[r * cols + c];
}
}  // namespace

Shape to_gguf_layout(const Tensor& value, const GgufTensorPlace& place) {
  const Shape& s = value.shape();
  switch (place.layout) {
    case GgufLayout::Same: return s;
    case GgufLayout::Transposed:
      transpose_in_place(value.f32(), s[0], s[1]);
      return Shape{s[1], s[0]};
    case GgufLayout::RopePairs:
      permute_rope_rows(value.f32(), s[0], s.ndim() > 1 ? s[1] : 1, place.heads, true);
      return s;
  }
  return s;
}

void from_gguf_layout(const Tensor& stored, const Shape& gguf_shape, const GgufTensorPlace& place) {
  switch (place.layout) {
    case GgufLayout::Same: return;
    case GgufLayout::Transposed: return transpose_in_place(stored.f32(), gguf_shape[0], gguf_shape[1]);
    case GgufLayout::RopePairs:
      return permute_rope_rows(stored.f32(), gguf_shape[0], gguf_shape.ndim() > 1 ? gguf_shape[1] : 1, place.heads,
                               false);
  }
}

namespace {
// rope_freqs.weight: per rotated pair, the plain frequency over the scaled one.
std::vector<float> llama3_factors(const LlamaConfig& c) {
  const std::vector<float> plain = rope_inverse_frequencies(c.head_dim(), c.rope_theta);
  const std::vector<float> scaled = c.rope_frequencies();
  std::vector<float> factors(plain.size());
  for (size_t i = 0; i < plain.size(); ++i)
    factors[i] = static_cast<float>(static_cast<double>(plain[i]) / static_cast<double>(scaled[i]));
  return factors;
}
}  // namespace

std::vector<float> rope_frequency_factors(const Model& model) {
  const LlamaConfig* c = llama_config_of(model);
  if (!c || c->rope_scaling.is_null()) return {};
  return llama3_factors(*c);
}

void write_architecture_metadata(const Model& model, GgufWriter& out, uint32_t file_type) {
  const std::string arch = gguf_architecture(model);
  const std::string a = arch + ".";
  out.set("general.architecture", GgufValue::of_string(arch));
  out.set("general.name", GgufValue::of_string("frugal " + arch));
  out.set("general.file_type", GgufValue::of_u32(file_type));
  if (arch == "gpt2") {
    const GptConfig c = GptConfig::from_json(model.config());
    out.set(a + "context_length", u32(c.n_positions));
    out.set(a + "embedding_length", u32(c.n_embd));
    out.set(a + "feed_forward_length", u32(4 * c.n_embd));
    out.set(a + "block_count", u32(c.n_layer));
    out.set(a + "attention.head_count", u32(c.n_head));
    out.set(a + "attention.layer_norm_epsilon", f32(c.layer_norm_epsilon));
    out.set(a + "vocab_size", u32(c.vocab_size));
    return;
  }
  const LlamaConfig& c = *llama_config_of(model);
  // What llama.cpp's qwen2/qwen3 graphs cannot hold (its loader would refuse the tensor).
  check(c.model_type == "llama" || c.rope_scaling.is_null(),
        "GGUF export: llama.cpp reads llama3 rope scaling (rope_freqs.weight) for the llama architecture only, not " +
            c.model_type);
  check(c.model_type != "qwen3" || !c.attention_bias,
        "GGUF export: llama.cpp's qwen3 has no attention output bias (attention_bias is true in this model)");
  out.set(a + "context_length", u32(c.max_position_embeddings));
  out.set(a + "embedding_length", u32(c.hidden_size));
  out.set(a + "feed_forward_length", u32(c.intermediate_size));
  out.set(a + "block_count", u32(c.num_hidden_layers));
  out.set(a + "attention.head_count", u32(c.num_attention_heads));
  out.set(a + "attention.head_count_kv", u32(c.num_key_value_heads));
  out.set(a + "attention.key_length", u32(c.head_dim()));
  out.set(a + "attention.value_length", u32(c.head_dim()));
  out.set(a + "rope.dimension_count", u32(c.head_dim()));
  out.set(a + "rope.freq_base", f32(c.rope_theta));
  out.set(a + "attention.layer_norm_rms_epsilon", f32(c.rms_norm_eps));
  out.set(a + "vocab_size", u32(c.vocab_size));
  // llama.cpp reads llama3 scaling from rope_freqs.weight alone; the parameters it came from travel
  // under frugal's own key so an import rebuilds config.json's rope_scaling exactly.
  if (!c.rope_scaling.is_null()) out.set("frugal.rope_scaling", GgufValue::of_string(c.rope_scaling.dump()));
}

namespace {

// The shortest decimal that rounds to the same f32 as v: the number a config.json had before it was
// stored as f32, so an export and import changes nothing.
double shortest_decimal(double v) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof(text), static_cast<float>(v));
  return ec == std::errc() ? std::strtod(std::string(text, end).c_str(), nullptr) : v;
}

// Hugging Face's llama3 rope_scaling from rope_freqs.weight's factors r_i (factor for the lowest
// frequencies, 1 for the highest, 1 / ((1 - s) / factor + s) between, s linear in 1 / wavelength).
// The smooth band's points fix s = a / wavelength - b; original_max_position_embeddings is the
// converter's default (8192) unless the file names it. Error when the factors are not of this form.
nlohmann::json llama3_scaling_from_factors(const std::string& where, const std::vector<double>& r, int64_t head_dim,
                                           double theta, double original) {
  const std::vector<float> f = rope_inverse_frequencies(head_dim, theta);
  const std::string not_llama3 = where + ": rope_freqs.weight is not a llama3 rope scaling frugal can rebuild";
  check(r.size() == f.size(), where + ": rope_freqs.weight has " + std::to_string(r.size()) + " values, expected " +
                                  std::to_string(f.size()) + " (head dimension / 2)");
  double factor = 1;
  for (double v : r) factor = std::max(factor, v);
  std::vector<std::pair<double, double>> band;  // (1 / wavelength, s)
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i] > 1 + 1e-6 && r[i] < factor * (1 - 1e-6))
      band.emplace_back(f[i] / (2 * M_PI), (1 / r[i] - 1 / factor) / (1 - 1 / factor));
  check(band.size() >= 2, not_llama3 + " (fewer than two frequencies in the smooth band)");
  const auto& [x0, s0] = band.front();
  const auto& [x1, s1] = band.back();
  const double a = (s1 - s0) / (x1 - x0), b = a * x0 - s0;  // s = a x - b
  // (the shortest decimal of their f32 value: 0.99999993 was 1 before the factors' rounding)
  const double low = shortest_decimal(b * original / a), high = shortest_decimal(low + original / a);
  nlohmann::json scaling = {{"rope_type", "llama3"}, {"factor", factor}, {"low_freq_factor", low},
                            {"high_freq_factor", high}, {"original_max_position_embeddings", original}};
  const std::vector<float> scaled = rope_llama3_scaling(f, factor, low, high, original);
  for (size_t i = 0; i < r.size(); ++i)
    check(std::abs(f[i] / scaled[i] / r[i] - 1) < 1e-4, not_llama3 + " (value " + std::to_string(i) + " differs)");
  return scaling;
}

// A config number GGUF holds as f32 (1e-5 arrives as 9.99999975e-06): as a double, config.json's own
// value (1e-05).
double config_number(const GgufFile& file, const std::string& key) {
  const double v = file.get_number(key);
  return file.value(key).kind == GgufKind::F32 ? shortest_decimal(v) : v;
}

int64_t int_or(const GgufFile& file, const std::string& key, int64_t fallback) {
  return file.has(key) ? file.get_int(key) : fallback;
}

nlohmann::json gpt2_config(const GgufFile& file) {
  const int64_t embd = file.get_int("gpt2.embedding_length");
  check(embd > 0 && embd <= (int64_t{1} << 20), file.path() + ": gpt2.embedding_length " + std::to_string(embd) +
                                                    " is out of range");
  check(int_or(file, "gpt2.feed_forward_length", 4 * embd) == 4 * embd,
        file.path() + ": gpt2.feed_forward_length is not 4 x embedding_length, which GPT-2 models need");
  GptConfig c;
  c.n_layer = file.get_int("gpt2.block_count");
  c.n_head = file.get_int("gpt2.attention.head_count");
  c.n_embd = embd;
  c.n_positions = file.get_int("gpt2.context_length");
  c.vocab_size = file.tensor("token_embd.weight").shape[0];
  c.layer_norm_epsilon = file.has("gpt2.attention.layer_norm_epsilon")
                             ? config_number(file, "gpt2.attention.layer_norm_epsilon") : 1e-5;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(file.path() + ": " + e.what());
  }
  return c.to_json();
}

// llama3 rope scaling from rope_freqs.weight (after the config's shapes were validated: the tensor's
// length is checked against a sane head dimension): frugal's own key when the file has it, checked
// against the tensor; else the parameters llama.cpp's converter defaults to, when they reproduce the
// tensor; else fitted to it.
nlohmann::json rope_scaling_of(const GgufFile& file, const LlamaConfig& c) {
  const GgufTensor& t = file.tensor("rope_freqs.weight");
  check(t.shape.ndim() == 1 && t.shape[0] == c.head_dim() / 2,
        file.path() + ": rope_freqs.weight has shape " + t.shape.str() + ", expected (" + std::to_string(c.head_dim() / 2) + ")");
  MemoryLedger scratch;
  LedgerScope scope(scratch);
  Tensor values = Tensor::empty(t.shape, DType::F32, MemCategory::Workspace);
  file.load_into(t.name, values);
  const std::vector<double> factors(values.f32(), values.f32() + values.numel());
  const auto reproduces = [&](const nlohmann::json& scaling) {
    LlamaConfig scaled = c;
    scaled.rope_scaling = scaling;
    const std::vector<float> expected = llama3_factors(scaled);
    for (size_t i = 0; i < factors.size(); ++i)
      if (!(std::abs(expected[i] / factors[i] - 1) < 1e-5)) return false;
    return true;
  };
  const double original = static_cast<double>(int_or(file, c.model_type + ".rope.scaling.original_context_length", 8192));
  if (file.has("frugal.rope_scaling")) {
    nlohmann::json scaling;
    try {
      scaling = nlohmann::json::parse(file.get_string("frugal.rope_scaling"));
    } catch (const nlohmann::json::exception&) {
      throw Error(file.path() + ": frugal.rope_scaling is not valid JSON");
    }
    const auto number = [&](const char* key) { return scaling.contains(key) && scaling[key].is_number(); };
    check(scaling.is_object() && scaling.value("rope_type", nlohmann::json()) == "llama3" && number("factor") &&
              number("low_freq_factor") && number("high_freq_factor") && number("original_max_position_embeddings"),
          file.path() + ": frugal.rope_scaling is not a llama3 rope_scaling object");
    check(reproduces(scaling), file.path() + ": rope_freqs.weight disagrees with frugal.rope_scaling");
    return scaling;
  }
  double factor = 1;
  for (double v : factors) factor = std::max(factor, v);
  const nlohmann::json defaults = {{"rope_type", "llama3"}, {"factor", factor}, {"low_freq_factor", 1.0},
                                   {"high_freq_factor", 4.0}, {"original_max_position_embeddings", original}};
  if (reproduces(defaults)) return defaults;
  return llama3_scaling_from_factors(file.path(), factors, c.head_dim(), c.rope_theta, original);
}

// The shapes of a Llama-family GGUF as a LlamaConfig (not yet its rope scaling or token ids).
LlamaConfig llama_shapes(const GgufFile& file, const std::string& arch) {
  const std::string a = arch + ".";
  LlamaConfig c;
  c.model_type = arch;
  c.hidden_size = file.get_int(a + "embedding_length");
  c.intermediate_size = file.get_int(a + "feed_forward_length");
  c.num_hidden_layers = file.get_int(a + "block_count");
  c.num_attention_heads = file.get_int(a + "attention.head_count");
  c.num_key_value_heads = int_or(file, a + "attention.head_count_kv", c.num_attention_heads);
  check(c.num_attention_heads > 0, file.path() + ": " + a + "attention.head_count must be positive");
  const int64_t head_dim = int_or(file, a + "attention.key_length", c.hidden_size / c.num_attention_heads);
  check(head_dim > 0, file.path() + ": " + a + "attention.key_length must be positive");
  check(int_or(file, a + "attention.value_length", head_dim) == head_dim,
        file.path() + ": " + a + "attention.value_length differs from key_length, which frugal's attention needs equal");
  check(int_or(file, a + "rope.dimension_count", head_dim) == head_dim,
        file.path() + ": " + a + "rope.dimension_count is not the head dimension (partial rotary embeddings are not "
                                 "supported)");
  if (head_dim != c.hidden_size / c.num_attention_heads) c.explicit_head_dim = head_dim;
  c.vocab_size = file.tensor("token_embd.weight").shape[0];
  c.max_position_embeddings = file.get_int(a + "context_length");
  c.rms_norm_eps = config_number(file, a + "attention.layer_norm_rms_epsilon");
  c.rope_theta = file.has(a + "rope.freq_base") ? config_number(file, a + "rope.freq_base") : 10000.0;
  c.tie_word_embeddings = !file.contains("output.weight");
  c.attention_bias = arch != "qwen2" && file.contains("blk.0.attn_q.bias");
  c.mlp_bias = file.contains("blk.0.ffn_gate.bias");
  if (file.has(a + "rope.scaling.type")) {
    const std::string type = file.get_string(a + "rope.scaling.type");
    check(type == "none", file.path() + ": rope scaling '" + type + "' is not supported (supported: llama3's, "
                                                                     "through rope_freqs.weight)");
  }
  return c;
}

nlohmann::json llama_config(const GgufFile& file, const std::string& arch) {
  LlamaConfig c = llama_shapes(file, arch);
  try {
    c.validate();  // before anything is sized by these numbers
  } catch (const Error& e) {
    throw Error(file.path() + ": " + e.what());
  }
  if (file.contains("rope_freqs.weight")) c.rope_scaling = rope_scaling_of(file, c);
  if (file.has("tokenizer.ggml.bos_token_id")) c.bos_token_id = file.get_int("tokenizer.ggml.bos_token_id");
  if (file.has("tokenizer.ggml.eos_token_id")) c.eos_token_id = file.get_int("tokenizer.ggml.eos_token_id");
  nlohmann::json j = c.to_json();
  try {
    LlamaConfig::from_json(j);  // validates the whole config, with config.json's messages
  } catch (const Error& e) {
    throw Error(file.path() + ": " + e.what());
  }
  return j;
}

}  // namespace

nlohmann::json config_from_gguf(const GgufFile& file) {
  const std::string arch = file.get_string("general.architecture");
  check(!file.has("general.type") || file.get_string("general.type") == "model",
        file.path() + ": general.type is '" + (file.has("general.type") ? file.get_string("general.type") : "") +
            "', not a model (a LoRA adapter GGUF goes with --adapter of a llama.cpp run, not --model)");
  if (arch == "gpt2") return gpt2_config(file);
  if (arch == "llama" || arch == "qwen2" || arch == "qwen3") return llama_config(file, arch);
  throw Error(file.path() + ": GGUF architecture '" + arch + "' is not supported (supported: gpt2, llama, qwen2, qwen3)");
}


}  // namespace frugal
