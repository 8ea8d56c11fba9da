#pragma once
// The weight files of a model directory: model.safetensors, or the shards that
// model.safetensors.index.json's weight_map names (Hugging Face's sharded checkpoints, e.g.
// model-00001-of-00002.safetensors). Each shard is memory-mapped (io/safetensors.h), so a tensor
// is read from its shard when it is loaded, shard after shard, never the whole model at once.
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace frugal {

class WeightFiles {
 public:
  // Error naming the directory and what is missing: no weights at all (or only a pickle file), a
  // malformed index, a shard the index names that is not there or lacks a tensor it is listed for.
  static WeightFiles open(const std::string& dir);
  // Every tensor name, in file order.
  const std::vector<std::string>& names() const { return names_; }
  const SafetensorsFile& file_of(const std::string& name) const;  // Error if no file holds it
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  // For messages: dir/model.safetensors or dir/model.safetensors.index.json.
  const std::string& path() const { return path_; }

 private:
  void add_file(SafetensorsFile file, const std::vector<std::string>& names);

  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // name -> index into files_
  std::vector<std::string> names_;
};

}  // namespace frugal
