#include "train/quantized_base_record.h"

#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "io/file_fingerprint.h"

namespace frugal {

namespace fs = std::filesystem;

namespace {
// The files a model directory's weights and architecture come from.
bool is_base_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "config.json" || name == "model.safetensors.index.json" || p.extension() == ".safetensors";
}

// `dir` may be a single file too: a GGUF model.
nlohmann::json base_files(const fs::path& dir, bool cached) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, uintmax_t, fs::file_time_type>, nlohmann::json> known;
  nlohmann::json files = nlohmann::json::object();
  std::vector<fs::directory_entry> entries;
  if (fs::is_regular_file(dir)) entries.emplace_back(dir);
  else entries.assign(fs::directory_iterator(dir), fs::directory_iterator());
  for (const fs::directory_entry& e : entries) {
    if (!e.is_regular_file() || (!is_base_file(e.path()) && e.path() != dir)) continue;
    const std::string path = e.path().string();
    const auto key = std::make_tuple(path, e.file_size(), e.last_write_time());
    std::lock_guard<std::mutex> lock(mutex);
    auto it = known.find(key);
    if (!cached || it == known.end()) it = known.insert_or_assign(key, file_fingerprint(path)).first;
    files[e.path().filename().string()] = it->second;
  }
  return files;
}
}  // namespace

nlohmann::json record_quantized_base(const std::string& model_dir) {
  if (model_dir.empty()) return {{"model_dir", ""}, {"files", nlohmann::json::object()}};
  const fs::path dir = fs::absolute(model_dir).lexically_normal();
  return {{"model_dir", dir.string()}, {"files", base_files(dir, /*cached=*/true)}};
}

std::string verify_quantized_base(const nlohmann::json& record, const std::string& checkpoint_dir) {
  const std::string where = "--resume: the checkpoint " + checkpoint_dir + " trained LoRA on a quantised base";
  try {
    const std::string dir = record.at("model_dir").get<std::string>();
    if (dir.empty()) return dir;  // a fresh model: its flags and seed are in the run's configuration
    check(fs::exists(dir), where + " loaded from " + dir + ", which no longer exists (the base is not stored "
                                   "in the checkpoint)");
    const nlohmann::json now = base_files(dir, /*cached=*/false);
    for (const auto& [name, recorded] : record.at("files").items()) {
      check(now.contains(name), where + " loaded from " + dir + ", which no longer holds " + name);
      check(now.at(name) == recorded, where + " from " + dir + ", whose " + name +
                                          " has changed since (size or CRC-32); resume against the same base");
    }
    for (const auto& [name, print] : now.items())
      check(record.at("files").contains(name), where + " from " + dir + ", which now holds " + name +
                                                   " besides the files it had; resume against the same base");
    return dir;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ", but its record of the base is malformed (" + e.what() + ")");
  }
}

}  // namespace frugal
