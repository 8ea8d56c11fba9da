#include "io/safetensors.h"


#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace frugal {

// The format is little-endian; we copy raw bytes straight into tensors.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

struct FileDType {
  const char* name;
  size_t size;
  DType dtype;  // frugal type it loads as
};
constexpr FileDType kFileDTypes[] = {
    {"F32", 4, DType::F32}, {"F16", 2, DType::F16}, {"BF16", 2, DType::BF16},
    {"I32", 4, DType::I32}, {"I64", 8, DType::I32}, {"U8", 1, DType::U8},
};

const FileDType* find_file_dtype(const std::string& name) {
  for (const auto& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* safetensors_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

Shape make_shape(const std::vector<int64_t>& d) {
  switch (d.size()) {
    case 0: return Shape{};
    case 1: return Shape{d[0]};
    case 2: return Shape{d[0], d[1]};
    case 3: return Shape{d[0], d[1], d[2]};
    default: return Shape{d[0], d[1], d[2], d[3]};
  }
}

// Element i of a float-typed source, widened to f32 (memcpy: data in a mapping may be unaligned).
float read_float(const uint8_t* src, DType t, size_t i) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, src + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, src + 2 * i, 2);
  return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// The dimensions of a header entry's "shape"; numel receives their product. Error on negative or
// non-integer entries and on sizes that overflow.
Shape parse_shape(const nlohmann::json& jshape, const std::string& tw, uint64_t& numel) {
  check(jshape.size() <= Shape::kMaxDims,
        tw + "has " + std::to_string(jshape.size()) + " dimensions (at most 4 are supported)");
  std::vector<int64_t> dims;
  numel = 1;
  for (const auto& d : jshape) {
    check(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
          tw + "has a shape entry that is not a non-negative integer: " + d.dump());
    const uint64_t v = d.get<uint64_t>();
    check(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
              !__builtin_mul_overflow(numel, v, &numel) &&
              numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
          tw + "has a shape " + jshape.dump() + " whose size overflows");
    dims.push_back(static_cast<int64_t>(v));
  }
  return make_shape(dims);
}

// One tensor's header entry, validated against the data section's size.
SafeTensor parse_entry(const std::string& name, const nlohmann::json& entry, uint64_t data_size,
                       const std::string& where) {
  const std::string tw = where + "tensor '" + name + "' ";
  check(entry.is_object(), tw + "header entry is not an object");
  check(entry.contains("dtype") && entry["dtype"].is_string(), tw + "has no dtype string");
  check(entry.contains("shape") && entry["shape"].is_array(), tw + "has no shape array");
  check(entry.contains("data_offsets") && entry["data_offsets"].is_array(), tw + "has no data_offsets array");
  SafeTensor t;
  t.name = name;
  t.file_dtype = entry["dtype"].get<std::string>();
  const FileDType* fd_type = find_file_dtype(t.file_dtype);
  check(fd_type != nullptr, tw + "has unsupported dtype " + t.file_dtype + " (supported: F32, F16, BF16, I32, I64)");
  t.dtype = fd_type->dtype;
  uint64_t numel = 0, need = 0;
  t.shape = parse_shape(entry["shape"], tw, numel);
  check(!__builtin_mul_overflow(numel, fd_type->size, &need),
        tw + "has a shape " + entry["shape"].dump() + " whose size overflows");
  const auto& off = entry["data_offsets"];
  check(off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
        tw + "data_offsets must be two non-negative integers, got " + off.dump());
  t.begin = off[0].get<uint64_t>();
  t.end = off[1].get<uint64_t>();
  std::string range = "[";  // built by append: GCC 12 warns (falsely, -Wrestrict) on "[" + string
  range.append(std::to_string(t.begin)).append(", ").append(std::to_string(t.end)).append("]");
  check(t.begin <= t.end, tw + "has data_offsets " + range + " with begin after end");
  check(t.end <= data_size,
        tw + "has data_offsets " + range + " beyond the data section of " + std::to_string(data_size) + " bytes");
  check(t.end - t.begin == need, tw + "has data_offsets " + range + " but shape " + t.shape.str() + " " + t.file_dtype +
                                     " needs " + std::to_string(need) + " bytes");
  return t;
}

// The header as JSON; Error when it is not a JSON object.
nlohmann::json parse_header(const uint8_t* begin, const uint8_t* end, const std::string& where) {
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(begin, end);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(where + "header is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception& e) {  // e.g. a number literal that overflows (found by fuzzing)
    throw Error(where + "header is not valid JSON (" + e.what() + ")");
  }
  check(header.is_object(), where + "header is not a JSON object");
  return header;
}

// Sorts by data offset and refuses tensors whose bytes overlap.
void sort_and_check_overlap(std::vector<SafeTensor>& tensors, const std::string& where) {
  std::sort(tensors.begin(), tensors.end(), [](const SafeTensor& a, const SafeTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const SafeTensor* prev = nullptr;  // the non-empty tensor reaching furthest so far
  for (const SafeTensor& t : tensors) {
    if (t.begin == t.end) continue;  // empty tensors occupy no bytes
    if (prev && t.begin < prev->end)  // (not check(): the message would read prev when null)
      throw Error(where + "tensors '" + prev->name + "' and '" + t.name + "' overlap in the data section");
    if (!prev || t.end > prev->end) prev = &t;
  }
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const std::string where = path + ": ";
  std::shared_ptr<const MappedFile> map = MappedFile::open(path);
  const uint8_t* bytes = map->bytes();
  const uint64_t file_size = map->size();
  check(file_size >= 8, where + "not a safetensors file (" + std::to_string(file_size) +
                            " bytes, shorter than the 8-byte header length)");
  uint64_t header_len;
  std::memcpy(&header_len, bytes, 8);
  check(header_len <= file_size - 8, where + "header length " + std::to_string(header_len) +
                                         " exceeds the file size " + std::to_string(file_size));
  check(header_len <= kMaxHeaderBytes,
        where + "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");

  SafetensorsFile f;
  f.path_ = path;
  f.map_ = map;
  f.data_ = bytes + 8 + header_len;
  f.data_size_ = file_size - 8 - header_len;
  const nlohmann::json header = parse_header(bytes + 8, bytes + 8 + header_len, where);
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") {
      f.tensors_.push_back(parse_entry(name, entry, f.data_size_, where));
      continue;
    }
    check(entry.is_object(), where + "__metadata__ is not an object");
    for (const auto& [k, v] : entry.items()) {
      check(v.is_string(), where + "__metadata__ value for '" + k + "' is not a string");
      f.metadata_[k] = v.get<std::string>();
    }
  }
  sort_and_check_overlap(f.tensors_, where);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

const SafeTensor& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  check(it != index_.end(), path_ + ": no tensor named '" + name + "'");
  return tensors_[it->second];
}

Shape SafetensorsFile::shape(const std::string& name) const { return info(name).shape; }

std::string SafetensorsFile::file_dtype(const std::string& name) const { return info(name).file_dtype; }

Tensor SafetensorsFile::load(const std::string& name, MemCategory cat, DType want) const {
  const SafeTensor& t = info(name);
  const bool integer = !is_float(t.dtype);
  if (!integer)
    check(is_float(want), path_ + ": tensor '" + name + "' is " + t.file_dtype + " but " + dtype_name(want) +
                              " was requested");
  Tensor out = Tensor::empty(t.shape, integer ? t.dtype : want, cat);
  load_into(name, out);
  return out;
}

void SafetensorsFile::load_into(const std::string& name, const Tensor& out) const {
  const SafeTensor& t = info(name);
  const std::string tw = path_ + ": tensor '" + name + "' ";
  check(out.shape() == t.shape, tw + "has shape " + t.shape.str() + ", expected " + out.shape().str());
  const bool integer = !is_float(t.dtype);
  const DType out_type = out.dtype();
  // Integers load as their own type (I64 as I32), floats as any float type.
  check(integer ? out_type == t.dtype : is_float(out_type),
        tw + "has dtype " + t.file_dtype + ", expected " +
            (is_float(out_type) ? "a floating type" : std::string(out_type == DType::U8 ? "U8" : "I32/I64")));
  if (!out.has_data()) return;  // measuring: the planner only needs the size
  const uint8_t* src = data_ + t.begin;
  const size_t n = static_cast<size_t>(t.shape.numel());

  if (t.file_dtype == "I64") {
    int32_t* dst = out.i32();
    for (size_t i = 0; i < n; ++i) {
      int64_t v;
      std::memcpy(&v, src + 8 * i, 8);
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        throw Error(tw + "(I64) holds " + std::to_string(v) + " at index " + std::to_string(i) +
                    ", outside the int32 range");
      dst[i] = static_cast<int32_t>(v);
    }
  } else if (t.dtype == out_type) {
    std::memcpy(out.raw(), src, out.nbytes());
  } else if (out_type == DType::F32) {
    float* dst = out.f32();
    for (size_t i = 0; i < n; ++i) dst[i] = read_float(src, t.dtype, i);
  } else {  // to F16 or BF16 from another float type
    uint16_t* dst = out.u16();
    for (size_t i = 0; i < n; ++i) {
      const float v = read_float(src, t.dtype, i);
      dst[i] = out_type == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
    }
  }
  map_->release(src, t.end - t.begin);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the header in the caller's order, matching the data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string tw = "cannot write " + path + ": tensor '" + name + "' ";
    check(name != "__metadata__", tw + "uses the reserved name __metadata__");
    check(seen.insert(name).second, tw + "appears twice");
    check(t.defined() && (t.has_data() || t.nbytes() == 0), tw + "has no data");
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int i = 0; i < t.ndim(); ++i) shape.push_back(t.dim(i));
    header[name] = {{"dtype", safetensors_name(t.dtype())},
                    {"shape", shape},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    throw Error("cannot write " + path + ": a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  const uint64_t header_len = text.size();

  write_file_atomic(path, [&](const ByteSink& sink) {
    sink(&header_len, 8);
    sink(text.data(), text.size());
    for (const auto& [name, t] : tensors)
      if (t.nbytes() > 0) sink(t.raw(), t.nbytes());
  });
}

}  // namespace frugal
