#include "models/model_io.h"

#include <filesystem>
#include <fstream>
#include <regex>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/cnn.h"
#include "models/gpt.h"
#include "models/mlp.h"

namespace frugal {

namespace fs = std::filesystem;

std::unique_ptr<Model> model_from_config(const nlohmann::json& config) {
  check(config.is_object(), "config.json: expected a JSON object");
  if (!config.contains("frugal_arch")) return std::make_unique<Gpt>(GptConfig::from_json(config));
  const std::string arch = config["frugal_arch"].get<std::string>();
  if (arch == "mlp") return std::make_unique<Mlp>(MlpConfig::from_json(config));
  if (arch == "cnn") return std::make_unique<Cnn>(CnnConfig::from_json(config));
  if (arch == "linear") {
    for (const char* key : {"in_features", "out_features"})
      check(config.contains(key) && config[key].is_number_integer(),
            std::string("config.json: missing integer key '") + key + "'");
    return std::make_unique<LinearRegression>(config["in_features"].get<int64_t>(),
                                              config["out_features"].get<int64_t>());
  }
  throw Error("config.json: unknown frugal_arch '" + arch + "'");
}

namespace {

// Maps a name in the file to the model's name; empty for tensors to skip.
std::string canonical_gpt_name(const std::string& name) {
  std::string n = name.starts_with("transformer.") ? name.substr(12) : name;
  static const std::regex mask(R"(h\.\d+\.attn\.(bias|masked_bias))");
  if (std::regex_match(n, mask) || n == "lm_head.weight") return "";
  return n;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& dir) {
  check(fs::is_directory(dir), "model directory " + dir + " not found");
  const std::string config_path = dir + "/config.json";
  check(fs::exists(config_path), "model directory " + dir + " has no config.json");
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  std::unique_ptr<Model> model;
  try {
    model = model_from_config(config);
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path + ": " + e.what());
  }
  const std::string weights_path = dir + "/model.safetensors";
  check(fs::exists(weights_path), "model directory " + dir + " has no model.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(weights_path);

  std::map<std::string, std::string> file_names;  // model name -> name in the file
  const bool gpt = model->arch() == "gpt";
  for (const std::string& name : file.names()) {
    const std::string canonical = gpt ? canonical_gpt_name(name) : name;
    if (!canonical.empty()) file_names[canonical] = name;
  }
  for (Param* p : model->state()) {
    auto it = file_names.find(p->name);
    check(it != file_names.end(), weights_path + ": missing tensor '" + p->name + "'");
    const Shape shape = file.shape(it->second);
    check(shape == p->value.shape(), weights_path + ": tensor '" + it->second + "' has shape " + shape.str() +
                                         " but config.json implies " + p->value.shape().str());
    Tensor loaded = file.load(it->second, MemCategory::Workspace);
    p->value.copy_from(loaded);
    file_names.erase(it);
  }
  for (const auto& [canonical, name] : file_names)
    throw Error(weights_path + ": unexpected tensor '" + name + "' for this " + model->arch() + " configuration");
  if (gpt && (file.contains("lm_head.weight") || file.contains("transformer.lm_head.weight"))) {
    // A tied head stored explicitly must really be tied.
    const std::string head = file.contains("lm_head.weight") ? "lm_head.weight" : "transformer.lm_head.weight";
    Tensor lm = file.load(head, MemCategory::Workspace);
    const Tensor& wte = model->params()[0]->value;
    check(lm.shape() == wte.shape(), weights_path + ": lm_head.weight shape " + lm.shape().str() + " differs from wte");
    for (int64_t i = 0; i < lm.numel(); ++i)
      check(lm.f32()[i] == wte.f32()[i], weights_path + ": lm_head.weight differs from wte.weight (frugal's GPT-2 "
                                                        "ties them)");
  }
  return model;
}

void save_model(const Model& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec && fs::is_directory(dir), "cannot create directory " + dir + ": " + ec.message());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (Param* p : model.state()) tensors.emplace_back(p->name, p->value);
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", model.config().dump(2) + "\n");
}

}  // namespace frugal
