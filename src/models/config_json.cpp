#include "models/config_json.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "models/gguf_model.h"

namespace frugal {

int64_t require_int(const nlohmann::json& j, const char* key) {
  check(j.contains(key), std::string("config.json: missing key '") + key + "'");
  check(j[key].is_number_integer(), std::string("config.json: '") + key + "' must be an integer");
  return j[key].get<int64_t>();
}

nlohmann::json read_model_config(const std::string& dir) {
  if (is_gguf_file(dir)) return config_from_gguf(GgufFile::open(dir));
  check(std::filesystem::is_directory(dir), "model directory " + dir + " not found");
  const std::string path = dir + "/config.json";
  check(std::filesystem::exists(path), "model directory " + dir + " has no config.json");
  const nlohmann::json config = read_json_file(path);
  check(config.is_object(), path + ": expected a JSON object");
  return config;
}

}  // namespace frugal
