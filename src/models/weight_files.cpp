#include "models/weight_files.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace frugal {

namespace fs = std::filesystem;

namespace {
// shard file -> the tensors the index lists in it, in the index's order.
std::map<std::string, std::vector<std::string>> read_index(const std::string& index_path) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_file(index_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(index_path + ": not valid JSON (" + e.what() + ")");
  }
  check(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
        index_path + ": expected an object with a 'weight_map' of tensor names to shard files");
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    check(shard.is_string(), index_path + ": the shard of '" + name + "' is not a file name");
    const std::string file = shard.get<std::string>();
    check(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..",
          index_path + ": shard '" + file + "' is not a file name in the model directory");
    shards[file].push_back(name);
  }
  check(!shards.empty(), index_path + ": the weight_map is empty");
  return shards;
}
}  // namespace

WeightFiles WeightFiles::open(const std::string& dir) {
  WeightFiles w;
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (fs::exists(single) || !fs::exists(index)) {
    check(fs::exists(single) || !fs::exists(dir + "/pytorch_model.bin"),
          "model directory " + dir + " has pytorch_model.bin but no model.safetensors: frugal never loads pickle "
          "files; convert it once (python3: safetensors.torch.save_file(torch.load(path), 'model.safetensors'))");
    check(fs::exists(single), "model directory " + dir + " has no model.safetensors (nor a sharded "
                              "model.safetensors.index.json)");
    w.path_ = single;
    SafetensorsFile file = SafetensorsFile::open(single);
    const std::vector<std::string> names = file.names();
    w.add_file(std::move(file), names);
    return w;
  }
  w.path_ = index;
  for (const auto& [shard, names] : read_index(index)) {
    const std::string path = dir + "/" + shard;
    check(fs::exists(path), index + ": shard " + shard + " (holding " + names.front() + ") is missing from " + dir);
    SafetensorsFile file = SafetensorsFile::open(path);
    for (const std::string& name : names)
      check(file.contains(name), path + ": missing tensor '" + name + "' that " + index + " lists in it");
    w.add_file(std::move(file), names);
  }
  return w;
}

void WeightFiles::add_file(SafetensorsFile file, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    check(where_.emplace(name, files_.size()).second, path_ + ": tensor '" + name + "' is listed twice");
    names_.push_back(name);
  }
  files_.push_back(std::move(file));
}

const SafetensorsFile& WeightFiles::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  check(it != where_.end(), path_ + ": missing tensor '" + name + "'");
  return files_[it->second];
}

}  // namespace frugal
