#include "models/model_io.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/cnn.h"
#include "models/config_json.h"
#include "models/gguf_model.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "models/lora_setup.h"
#include "models/mlp.h"
#include "models/weight_files.h"

namespace frugal {

namespace fs = std::filesystem;

std::unique_ptr<Model> model_from_config(const nlohmann::json& config) {
  check(config.is_object(), "config.json: expected a JSON object");
  try {
    if (!config.contains("frugal_arch")) {
      const std::string type = config.value("model_type", std::string("gpt2"));
      if (type == "llama" || type == "qwen2" || type == "qwen3") return std::make_unique<Llama>(LlamaConfig::from_json(config));
      check(type == "gpt2", "config.json: model_type '" + type + "' is not supported (supported: gpt2, llama, qwen2, qwen3)");
      return std::make_unique<Gpt>(GptConfig::from_json(config));
    }
    check(config["frugal_arch"].is_string(), "config.json: 'frugal_arch' must be a string");
    const std::string arch = config["frugal_arch"].get<std::string>();
    if (arch == "mlp") return std::make_unique<Mlp>(MlpConfig::from_json(config));
    if (arch == "cnn") return std::make_unique<Cnn>(CnnConfig::from_json(config));
    if (arch == "linear")
      return std::make_unique<LinearRegression>(require_int(config, "in_features"), require_int(config, "out_features"));
    throw Error("config.json: unknown frugal_arch '" + arch + "'");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("config.json: a value has the wrong type (") + e.what() + ")");
  }
}

namespace {

// True when an lm_head.weight in the file is a copy of the embedding (a tied head), not a parameter.
bool head_is_tied(const Model& model) {
  if (model.arch() == "gpt") return true;
  return model.arch() == "llama" && static_cast<const Llama&>(model).llama_config().tie_word_embeddings;
}

// Maps a name in the file to the model's name; empty for tensors to skip: GPT files may carry a
// "transformer." prefix, attention-mask buffers and a tied lm_head; Llama files of older
// transformers versions carry rotary inv_freq buffers, and tied ones may still store lm_head.
std::string canonical_name(const Model& model, const std::string& name) {
  if (model.arch() == "llama") {
    if (name.ends_with(".rotary_emb.inv_freq")) return "";
    if (name == "lm_head.weight" && head_is_tied(model)) return "";
    return name;
  }
  if (model.arch() != "gpt") return name;
  std::string n = name.starts_with("transformer.") ? name.substr(12) : name;
  static const std::regex mask(R"(h\.\d+\.attn\.(bias|masked_bias))");
  if (std::regex_match(n, mask) || n == "lm_head.weight") return "";
  return n;
}

// A tied head stored explicitly must really be tied. Compared through a scratch ledger: a check
// of the file, not part of the model's memory.
void check_tied_head(const WeightFiles& files, const Model& model) {
  if (!head_is_tied(model)) return;
  for (const char* head : {"lm_head.weight", "transformer.lm_head.weight"}) {
    if (!files.contains(head)) continue;
    const SafetensorsFile& file = files.file_of(head);
    MemoryLedger scratch;
    LedgerScope scope(scratch);
    const Tensor& wte = model.params()[0]->value;
    if (wte.is_placeholder()) return;  // ZeRO-3: wte's rank checks it
    const std::string where = file.path() + ": " + head;
    check(file.shape(head) == wte.shape(), where + " has shape " + file.shape(head).str() + ", the embedding " +
                                               wte.shape().str());
    Tensor lm = Tensor::empty(wte.shape(), wte.dtype(), MemCategory::Workspace);  // wte's type, converted alike
    file.load_into(head, lm);
    check(std::memcmp(lm.raw(), wte.raw(), lm.nbytes()) == 0,
          where + " differs from the token embedding, but the config ties them (tie_word_embeddings)");
  }
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& dir) {
  std::unique_ptr<Model> model = model_from_config(read_model_config(dir));
  load_weights(*model, dir);
  return model;
}

void load_weights(Model& model, const std::string& dir) {
  if (is_gguf_file(dir)) return load_gguf_weights(model, dir);
  const WeightFiles files = WeightFiles::open(dir);
  std::map<std::string, std::string> file_names;  // model name -> name in the file
  for (const std::string& name : files.names()) {
    const std::string canonical = canonical_name(model, name);
    if (canonical.empty()) continue;
    check(file_names.emplace(canonical, name).second,
          files.path() + ": tensor '" + canonical + "' appears twice (with and without a prefix)");
  }
  for (Param* p : model.state()) {
    auto it = file_names.find(p->name);
    check(it != file_names.end(), files.path() + ": missing tensor '" + p->name + "'");
    const SafetensorsFile& file = files.file_of(it->second);
    const Shape shape = file.shape(it->second);
    check(shape == p->value.shape(), file.path() + ": tensor '" + it->second + "' has shape " + shape.str() +
                                         " but config.json implies " + p->value.shape().str());
    // Straight into the parameter: no temporary buffer (nothing for a weight another rank holds).
    if (!p->value.is_placeholder()) file.load_into(it->second, p->value);
    file_names.erase(it);
  }
  for (const auto& [canonical, name] : file_names)
    throw Error(files.path() + ": unexpected tensor '" + name + "' for this " + model.arch() + " configuration");
  check_tied_head(files, model);
}

void read_weight(const Model& model, const std::string& dir, const std::string& name, const Tensor& into) {
  if (is_gguf_file(dir)) return read_gguf_weight(model, dir, name, into);
  const WeightFiles files = WeightFiles::open(dir);
  for (const std::string& stored : files.names()) {
    if (canonical_name(model, stored) != name) continue;
    const SafetensorsFile& file = files.file_of(stored);
    check(file.shape(stored) == into.shape(), file.path() + ": tensor '" + stored + "' has shape " +
                                                  file.shape(stored).str() + ", expected " + into.shape().str());
    file.load_into(stored, into);
    return;
  }
  throw Error(files.path() + ": missing tensor '" + name + "'");
}

void save_model(const Model& model, const std::string& dir) {
  for (const Param* p : base_state(model))
    check(!p->value.is_placeholder(), "cannot save the model: " + p->name + " is quantised (--base-precision nf4|int8) "
                                      "or held by another rank; save the adapter (--save-adapter) instead");
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec && fs::is_directory(dir), "cannot create directory " + dir + ": " + ec.message());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (Param* p : base_state(model)) tensors.emplace_back(p->name, p->value);  // adapters go to --save-adapter
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", model.config().dump(2) + "\n");
}

}  // namespace frugal
