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
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/mlp.h"

namespace frugal {

namespace fs = std::filesystem;

std::unique_ptr<Model> model_from_config(const nlohmann::json& config) {
  check(config.is_object(), "config.json: expected a JSON object");
  try {
    if (!config.contains("frugal_arch")) return std::make_unique<Gpt>(GptConfig::from_json(config));
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

// Maps a name in the file to the model's name; empty for tensors to skip.
std::string canonical_gpt_name(const std::string& name) {
  std::string n = name.starts_with("transformer.") ? name.substr(12) : name;
  static const std::regex mask(R"(h\.\d+\.attn\.(bias|masked_bias))");
  if (std::regex_match(n, mask) || n == "lm_head.weight") return "";
  return n;
}

// A tied head stored explicitly must really be tied. Compared through a scratch ledger: a check
// of the file, not part of the model's memory.
void check_tied_head(const SafetensorsFile& file, const Model& model) {
  for (const char* head : {"lm_head.weight", "transformer.lm_head.weight"}) {
    if (!file.contains(head)) continue;
    MemoryLedger scratch;
    LedgerScope scope(scratch);
    const Tensor& wte = model.params()[0]->value;
    if (wte.is_placeholder()) return;  // ZeRO-3: wte's rank checks it
    const std::string where = file.path() + ": " + head;
    check(file.shape(head) == wte.shape(), where + " has shape " + file.shape(head).str() + ", wte " + wte.shape().str());
    Tensor lm = Tensor::empty(wte.shape(), wte.dtype(), MemCategory::Workspace);  // wte's type, converted alike
    file.load_into(head, lm);
    check(std::memcmp(lm.raw(), wte.raw(), lm.nbytes()) == 0,
          where + " differs from wte.weight (frugal's GPT-2 ties them)");
  }
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& dir) {
  std::unique_ptr<Model> model = model_from_config(read_model_config(dir));
  load_weights(*model, dir);
  return model;
}

void load_weights(Model& model_ref, const std::string& dir) {
  Model* model = &model_ref;
  const std::string weights_path = dir + "/model.safetensors";
  check(fs::exists(weights_path) || !fs::exists(dir + "/pytorch_model.bin"),
        "model directory " + dir + " has pytorch_model.bin but no model.safetensors: frugal never loads pickle files; "
        "convert it once (python3: safetensors.torch.save_file(torch.load(path), 'model.safetensors'))");
  check(fs::exists(weights_path), "model directory " + dir + " has no model.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(weights_path);

  std::map<std::string, std::string> file_names;  // model name -> name in the file
  const bool gpt = model->arch() == "gpt";
  for (const std::string& name : file.names()) {
    const std::string canonical = gpt ? canonical_gpt_name(name) : name;
    if (canonical.empty()) continue;
    check(file_names.emplace(canonical, name).second,
          weights_path + ": tensor '" + canonical + "' appears twice (with and without a prefix)");
  }
  for (Param* p : model->state()) {
    auto it = file_names.find(p->name);
    check(it != file_names.end(), weights_path + ": missing tensor '" + p->name + "'");
    const Shape shape = file.shape(it->second);
    check(shape == p->value.shape(), weights_path + ": tensor '" + it->second + "' has shape " + shape.str() +
                                         " but config.json implies " + p->value.shape().str());
    // Straight into the parameter: no temporary buffer (nothing for a weight another rank holds).
    if (!p->value.is_placeholder()) file.load_into(it->second, p->value);
    file_names.erase(it);
  }
  for (const auto& [canonical, name] : file_names)
    throw Error(weights_path + ": unexpected tensor '" + name + "' for this " + model->arch() + " configuration");
  if (gpt) check_tied_head(file, *model);
}

void read_weight(const Model& model, const std::string& dir, const std::string& name, const Tensor& into) {
  const std::string weights_path = dir + "/model.safetensors";
  const SafetensorsFile file = SafetensorsFile::open(weights_path);
  for (const std::string& stored : file.names()) {
    if ((model.arch() == "gpt" ? canonical_gpt_name(stored) : stored) != name) continue;
    check(file.shape(stored) == into.shape(), weights_path + ": tensor '" + stored + "' has shape " +
                                                  file.shape(stored).str() + ", expected " + into.shape().str());
    file.load_into(stored, into);
    return;
  }
  throw Error(weights_path + ": missing tensor '" + name + "'");
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
