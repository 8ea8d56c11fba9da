// GGUF tensors into a model's tensors (models/gguf_model.h): names and layouts from the table there.
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

#include "core/error.h"
#include "kernels/convert.h"
#include "models/gguf_model.h"

namespace frugal {

namespace {

// The row-major shape GGUF stores for a tensor of frugal shape `shape`.
Shape stored_shape(const Shape& shape, const GgufTensorPlace& place) {
  return place.layout == GgufLayout::Transposed ? Shape{shape[1], shape[0]} : shape;
}

// Tensor `place.name` of `file` into `into` (frugal's shape, any float type).
void read_into(const GgufFile& file, const GgufTensorPlace& place, const Tensor& into) {
  const GgufTensor& t = file.tensor(place.name);
  const Shape want = stored_shape(into.shape(), place);
  check(t.shape == want, file.path() + ": tensor '" + place.name + "' has shape " + t.shape.str() +
                             " but the metadata implies " + want.str());
  if (!into.has_data()) return;
  if (place.layout == GgufLayout::Same) return file.load_into(place.name, into);
  // A layout to undo: through fp32 (the tensor itself when it is fp32; else a scratch copy, outside
  // the run's books like the reads of safetensors' mapped pages).
  MemoryLedger scratch;
  std::optional<LedgerScope> scope;
  if (into.dtype() != DType::F32) scope.emplace(scratch);
  const Tensor f32 = into.dtype() == DType::F32 ? into.view(want)
                                                : Tensor::empty(want, DType::F32, MemCategory::Workspace);
  file.load_into(place.name, f32);
  from_gguf_layout(f32, want, place);
  if (into.dtype() != DType::F32) round_into(f32, into);
}

// A GPT-2 file may store the tied head; it must equal the embedding.
void check_tied_output(const GgufFile& file, const Model& model) {
  if (!file.contains("output.weight")) return;
  const Tensor& wte = model.find_state("wte.weight").value;
  check(file.tensor("output.weight").shape == file.tensor("token_embd.weight").shape,
        file.path() + ": output.weight has another shape than token_embd.weight, but GPT-2 ties them");
  if (!wte.has_data()) return;
  MemoryLedger scratch;
  LedgerScope scope(scratch);
  Tensor head = Tensor::empty(wte.shape(), wte.dtype(), MemCategory::Workspace);
  file.load_into("output.weight", head);
  check(std::memcmp(head.raw(), wte.raw(), head.nbytes()) == 0,
        file.path() + ": output.weight differs from token_embd.weight, but GPT-2 models tie them");
}

// The file read_gguf_weight reads from, opened once for all of a model's weights (a quantised base
// reads them one at a time; opening maps and validates the whole header, vocabulary included).
std::shared_ptr<const GgufFile> open_cached(const std::string& path) {
  static std::mutex mutex;
  static std::tuple<std::string, uintmax_t, std::filesystem::file_time_type> key;
  static std::shared_ptr<const GgufFile> file;
  std::error_code size_error, time_error;
  const auto now = std::make_tuple(path, std::filesystem::file_size(path, size_error),
                                   std::filesystem::last_write_time(path, time_error));
  std::lock_guard<std::mutex> lock(mutex);
  if (!file || now != key || size_error || time_error) {
    file = std::make_shared<const GgufFile>(GgufFile::open(path));
    key = now;
  }
  return file;
}

}  // namespace

void load_gguf_weights(Model& model, const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  std::map<std::string, bool> used;  // GGUF name -> read
  for (const GgufTensor& t : file.tensors()) used[t.name] = false;
  for (Param* p : model.state()) {
    const GgufTensorPlace place = gguf_place(model, p->name);
    check(file.contains(place.name), path + ": missing tensor '" + place.name + "' (" + p->name + ")");
    read_into(file, place, p->value);
    used[place.name] = true;
  }
  if (used.count("rope_freqs.weight")) used["rope_freqs.weight"] = true;  // the config read it
  if (model.arch() == "gpt" && used.count("output.weight")) {
    check_tied_output(file, model);
    used["output.weight"] = true;
  }
  for (const auto& [name, read] : used)
    check(read, path + ": unexpected tensor '" + name + "' for this " + gguf_architecture(model) + " configuration");
}

void read_gguf_weight(const Model& model, const std::string& path, const std::string& name, const Tensor& into) {
  const std::shared_ptr<const GgufFile> opened = open_cached(path);
  const GgufFile& file = *opened;
  const GgufTensorPlace place = gguf_place(model, name);
  check(file.contains(place.name), path + ": missing tensor '" + place.name + "' (" + name + ")");
  read_into(file, place, into);
}

}  // namespace frugal
