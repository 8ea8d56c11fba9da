#include "models/lora_setup.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "kernels/convert.h"

namespace frugal {

namespace {
bool matches(const std::string& module, const std::string& target) {
  return module == target ||
         (module.size() > target.size() && module.ends_with(target) && module[module.size() - target.size() - 1] == '.');
}
}  // namespace

std::vector<std::string> parse_lora_targets(const std::string& csv) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= csv.size()) {
    const size_t end = std::min(csv.find(',', start), csv.size());
    const std::string item = csv.substr(start, end - start);
    check(!item.empty(), "--lora-targets '" + csv + "' has an empty module name");
    out.push_back(item);
    start = end + 1;
  }
  return out;
}

void apply_lora(Model& model, const LoraSettings& settings, uint64_t seed) {
  check(!settings.targets.empty(), "LoRA needs at least one target module");
  for (Param* p : model.state()) p->trainable = false;
  const auto linears = model.adaptable_linears();
  std::set<std::string> used;
  for (const auto& [name, linear] : linears) {
    for (const std::string& target : settings.targets) {
      if (!matches(name, target)) continue;
      linear->attach_lora(model.peft_key_prefix() + name, settings.config, seed);
      used.insert(target);
      break;
    }
  }
  for (const std::string& target : settings.targets) {
    if (used.count(target)) continue;
    std::string names;
    for (size_t i = 0; i < std::min<size_t>(linears.size(), 4); ++i) names += (i ? ", " : "") + linears[i].first;
    throw Error("LoRA target '" + target + "' matches no module of this " + model.arch() + " (modules: " + names +
                (linears.size() > 4 ? ", ..." : "") + ")");
  }
}

std::vector<std::string> adapted_weight_names(const Model& model, const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const auto& entry : model.adaptable_linears()) {
    const std::string& name = entry.first;  // (a structured binding cannot be captured before C++20 in clang 14)
    if (std::any_of(targets.begin(), targets.end(), [&](const std::string& t) { return matches(name, t); }))
      out.push_back(entry.second->weight().name);
  }
  return out;
}

std::vector<LoraAdapter*> lora_adapters(const Model& model) {
  std::vector<LoraAdapter*> out;
  for (const auto& [name, linear] : model.adaptable_linears())
    if (linear->lora()) out.push_back(linear->lora());
  return out;
}

std::vector<Param*> base_state(const Model& model) {
  std::vector<Param*> out;
  for (Param* p : model.state())
    if (!p->name.starts_with("base_model.model.")) out.push_back(p);
  return out;
}

void save_adapter(const Model& model, const LoraSettings& settings, const std::string& dir) {
  const auto adapters = lora_adapters(model);
  check(!adapters.empty(), "--save-adapter: the model has no LoRA adapter (use --lora-rank or --adapter)");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec && std::filesystem::is_directory(dir), "cannot create directory " + dir);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (LoraAdapter* a : adapters) {
    tensors.emplace_back(a->a().name, a->a().value);
    tensors.emplace_back(a->b().name, a->b().value);
  }
  write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  const bool conv1d = model.arch() == "gpt";  // HF GPT-2's Conv1D: (in, out) weights
  const bool language_model = model.input_dtype() == DType::I32;
  const nlohmann::json config = {{"peft_type", "LORA"},
                                 {"task_type", language_model ? "CAUSAL_LM" : "FEATURE_EXTRACTION"},
                                 {"r", settings.config.rank},
                                 {"lora_alpha", settings.config.alpha},
                                 {"lora_dropout", settings.config.dropout},
                                 {"target_modules", settings.targets},
                                 {"fan_in_fan_out", conv1d},
                                 {"bias", "none"},
                                 {"base_model_name_or_path", ""},
                                 {"inference_mode", false},
                                 {"frugal_arch", model.arch()}};
  write_file_atomic(dir + "/adapter_config.json", config.dump(2) + "\n");
}

LoraSettings read_adapter_config(const std::string& dir, const std::string& arch) {
  const std::string config_path = dir + "/adapter_config.json";
  check(std::filesystem::exists(config_path), "adapter directory " + dir + " has no adapter_config.json");
  const nlohmann::json j = read_json_file(config_path);
  LoraSettings s;
  try {
    check(j.value("peft_type", std::string("LORA")) == "LORA", config_path + ": peft_type is not LORA");
    check(j.contains("r") && j["r"].is_number_integer(), config_path + ": missing integer 'r'");
    s.config.rank = j["r"].get<int64_t>();
    check(s.config.rank >= 1, config_path + ": 'r' must be at least 1, not " + std::to_string(s.config.rank));
    s.config.alpha = j.value("lora_alpha", static_cast<double>(s.config.rank));
    s.config.dropout = j.value("lora_dropout", 0.0);
    check(j.value("bias", std::string("none")) == "none", config_path + ": only bias 'none' is supported");
    // Variants that change what A and B mean are refused rather than loaded wrongly.
    for (const char* flag : {"use_rslora", "use_dora"})
      check(!j.contains(flag) || j[flag].is_null() || !j[flag].get<bool>(), config_path + ": " + flag + " is not supported");
    for (const char* key : {"rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save"})
      check(!j.contains(key) || j[key].is_null() || j[key].empty(), config_path + ": '" + key + "' is not supported");
    if (j.contains("frugal_arch") && j.at("frugal_arch") != arch)
      throw Error(config_path + ": the adapter was made for a " + j.at("frugal_arch").dump() + " model, not a " + arch);
    const auto& targets = j.at("target_modules");
    if (targets.is_string()) s.targets = {targets.get<std::string>()};
    else s.targets = targets.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path + ": " + e.what());
  }
  return s;
}

LoraSettings load_adapter(Model& model, const std::string& dir) {
  const LoraSettings s = read_adapter_config(dir, model.arch());
  apply_lora(model, s, 0);
  const std::string weights = dir + "/adapter_model.safetensors";
  check(std::filesystem::exists(weights), "adapter directory " + dir + " has no adapter_model.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(weights);
  std::set<std::string> expected;
  for (LoraAdapter* a : lora_adapters(model)) {
    for (Param* p : {&a->a(), &a->b()}) {
      check(file.contains(p->name), weights + ": missing tensor '" + p->name + "' (targets " + nlohmann::json(s.targets).dump() +
                                        ")");
      check(file.shape(p->name) == p->value.shape(), weights + ": tensor '" + p->name + "' has shape " +
                                                         file.shape(p->name).str() + ", this model needs " +
                                                         p->value.shape().str());
      file.load_into(p->name, p->value);
      expected.insert(p->name);
    }
  }
  for (const std::string& name : file.names())
    check(expected.count(name), weights + ": tensor '" + name + "' belongs to no adapted module of this model");
  return s;
}

void store_adapted_weights_as(Model& model, DType dtype) {
  if (dtype == DType::F32) return;
  for (const auto& [name, linear] : model.adaptable_linears())
    if (linear->lora()) linear->store_frozen_weight_as(dtype);
}

void merge_lora(Model& model) {
  // A quantised base keeps its adapter beside it (merging needs the base in full precision).
  for (const auto& [name, linear] : model.adaptable_linears())
    if (linear->lora() && !linear->quantized_weight()) linear->merge_lora();
  for (Param* p : model.params()) p->trainable = true;  // buffers (running statistics) stay frozen
}

void quantize_adapted_weights(Model& model, const std::vector<std::string>& adapted, QuantFormat format,
                              const std::function<void(size_t, const Tensor&)>& fill) {
  const std::vector<Param*> params = model.params();
  std::vector<std::pair<Linear*, size_t>> targets;  // the adapted layers and their weights' indices
  int64_t largest = 0;
  for (const auto& [name, linear] : model.adaptable_linears()) {
    Param& w = linear->weight();
    if (std::find(adapted.begin(), adapted.end(), w.name) == adapted.end()) continue;
    targets.emplace_back(linear, static_cast<size_t>(std::find(params.begin(), params.end(), &w) - params.begin()));
    largest = std::max(largest, w.value.numel());
  }
  // One fp32 buffer for all the weights drawn or read one at a time: fresh pages cost more to fault
  // in (about 2 ns per byte on a VM) than drawing the values into warm ones.
  Tensor buffer;
  for (const auto& [linear, index] : targets) {
    Param& w = linear->weight();
    // A weight already there in fp32 (a model loaded whole) is quantised from itself.
    const bool present = !w.value.is_placeholder() && w.value.dtype() == DType::F32;
    if (!present && !buffer.defined()) buffer = Tensor::empty({largest}, DType::F32, MemCategory::Workspace);
    const Tensor scratch = present ? w.value : buffer.slice_rows(0, w.value.numel()).view(w.value.shape());
    if (!present && scratch.has_data()) fill(index, scratch);
    linear->set_quantized_weight(QuantizedMatrix::quantize(scratch.has_data() ? scratch.f32() : nullptr,
                                                           w.value.dim(0), w.value.dim(1), format));
  }
}

void quantize_lm_head(Model& model, QuantFormat format) {
  TiedLmHead* head = model.lm_head();
  // An untied head's weight is "lm_head.weight" (Hugging Face's name); a tied one is the embedding's.
  check(head && head->weight()->name == "lm_head.weight",
        "--quantize-head needs an LM head of the model's own: this model's head is its embedding (tied)");
  check(!head->weight()->trainable, "--quantize-head: the LM head is trained here; only a frozen head is quantised");
  const Tensor w = head->weight()->value;  // (V, D) fp32 or half; kept alive while it is read
  const int64_t D = w.dim(1);
  head->set_quantized_weight(QuantizedMatrix::quantize_by_rows(
      w.dim(0), D, format, TiedLmHead::kVocabBlock, [&](int64_t r0, int64_t r1, float* out) {
        if (w.dtype() == DType::F32) {
          std::copy(w.f32() + r0 * D, w.f32() + r1 * D, out);
        } else {
          half_to_float(w.u16() + r0 * D, w.dtype(), out, (r1 - r0) * D);
        }
      }));
}

std::optional<QuantFormat> quantized_base_format(const std::string& base_precision) {
  if (base_precision == "nf4") return QuantFormat::Nf4;
  if (base_precision == "int8") return QuantFormat::Int8;
  return std::nullopt;
}

void dequantize_adapted_weights(Model& model, QuantFormat format) {
  for (const auto& [name, linear] : model.adaptable_linears()) {
    if (!linear->lora()) continue;
    const Tensor& w = linear->weight().value;
    QuantizedMatrix::quantize(w.f32(), w.dim(0), w.dim(1), format).dequantize_rows(0, w.dim(0), w.f32());
  }
}

}  // namespace frugal
