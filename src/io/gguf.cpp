#include "io/gguf.h"


#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace frugal {

// GGUF is little-endian (big-endian files exist but are rare); bytes are copied as they are.
static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kQ8BlockBytes = 2 + kQ8Block;  // fp16 scale + 32 int8
// llama.cpp refuses tensor names of GGML_MAX_NAME (64) bytes or more; the writer does too.
constexpr size_t kMaxNameBytes = 63;
constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// ggml's type names (ggml.c type_traits), indexed by enum ggml_type. Numbers ggml retired keep a
// name saying so, so that an old file's message is still precise.
constexpr const char* kGgmlTypeNames[] = {
    "f32",     "f16",      "q4_0",    "q4_1",          "q4_2 (removed)", "q4_3 (removed)", "q5_0",
    "q5_1",    "q8_0",     "q8_1",    "q2_K",          "q3_K",           "q4_K",           "q5_K",
    "q6_K",    "q8_K",     "iq2_xxs", "iq2_xs",        "iq3_xxs",        "iq1_s",          "iq4_nl",
    "iq3_s",   "iq2_s",    "iq4_xs",  "i8",            "i16",            "i32",            "i64",
    "f64",     "iq1_m",    "bf16",    "q4_0_4_4 (removed)", "q4_0_4_8 (removed)", "q4_0_8_8 (removed)",
    "tq1_0",   "tq2_0",    "iq4_nl_4_4 (removed)", "iq4_nl_4_8 (removed)", "iq4_nl_8_8 (removed)",
    "mxfp4",   "nvfp4",    "q1_0",    "q2_0",
};

// gguf's value type names (gguf.cpp GGUF_TYPE_NAME), indexed by enum gguf_type.
constexpr const char* kKindNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
constexpr uint32_t kKindCount = sizeof(kKindNames) / sizeof(kKindNames[0]);

const char* kind_name(GgufKind k) {
  const auto i = static_cast<uint32_t>(k);
  return i < kKindCount ? kKindNames[i] : "unknown";
}

bool is_integer_kind(GgufKind k) {
  switch (k) {
    case GgufKind::U8: case GgufKind::I8: case GgufKind::U16: case GgufKind::I16:
    case GgufKind::U32: case GgufKind::I32: case GgufKind::U64: case GgufKind::I64: return true;
    default: return false;
  }
}
bool is_float_kind(GgufKind k) { return k == GgufKind::F32 || k == GgufKind::F64; }

// Bytes of one scalar of kind k (0 for strings and arrays, which have no fixed size).
uint64_t scalar_size(GgufKind k) {
  switch (k) {
    case GgufKind::U8: case GgufKind::I8: case GgufKind::Bool: return 1;
    case GgufKind::U16: case GgufKind::I16: return 2;
    case GgufKind::U32: case GgufKind::I32: case GgufKind::F32: return 4;
    case GgufKind::U64: case GgufKind::I64: case GgufKind::F64: return 8;
    default: return 0;
  }
}

// The values an integer kind can hold (U64 limited to int64, where frugal keeps integers).
std::pair<int64_t, int64_t> integer_range(GgufKind k) {
  switch (k) {
    case GgufKind::U8: return {0, UINT8_MAX};
    case GgufKind::I8: return {INT8_MIN, INT8_MAX};
    case GgufKind::U16: return {0, UINT16_MAX};
    case GgufKind::I16: return {INT16_MIN, INT16_MAX};
    case GgufKind::U32: return {0, UINT32_MAX};
    case GgufKind::I32: return {INT32_MIN, INT32_MAX};
    case GgufKind::U64: return {0, INT64_MAX};
    case GgufKind::Bool: return {0, 1};
    default: return {INT64_MIN, INT64_MAX};
  }
}

bool is_read_type(uint32_t type) {
  return type == static_cast<uint32_t>(GgmlType::F32) || type == static_cast<uint32_t>(GgmlType::F16) ||
         type == static_cast<uint32_t>(GgmlType::BF16) || type == static_cast<uint32_t>(GgmlType::Q8_0);
}

// Stored bytes of `numel` values of a readable type; false on overflow.
bool stored_bytes(uint32_t type, uint64_t numel, uint64_t& bytes) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32: return !__builtin_mul_overflow(numel, uint64_t{4}, &bytes);
    case GgmlType::F16: case GgmlType::BF16: return !__builtin_mul_overflow(numel, uint64_t{2}, &bytes);
    case GgmlType::Q8_0: return !__builtin_mul_overflow(numel / kQ8Block, kQ8BlockBytes, &bytes);
  }
  return false;
}

Shape make_shape(const std::vector<int64_t>& d) {
  switch (d.size()) {
    case 1: return Shape{d[0]};
    case 2: return Shape{d[0], d[1]};
    case 3: return Shape{d[0], d[1], d[2]};
    default: return Shape{d[0], d[1], d[2], d[3]};
  }
}

// A key or tensor name for a message: in quotes, on one line (control bytes escaped: a name may
// hold any bytes), and cut short if long.
std::string printable(const std::string& name) {
  constexpr size_t kMaxShown = 200;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto ch = static_cast<unsigned char>(name[i]);
    if (ch >= 0x20 && ch != 0x7f) {
      out += static_cast<char>(ch);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", ch);
      out += hex;
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return out + "'";
}

// fp16/bf16 <-> fp32 over arrays with core/half.h's scalar conversions (io sits beside kernels in
// the layer order, so kernels/convert.h's vectorised ones are out of reach; F16C's scalar
// instruction is fast enough beside file reads).
void widen_halves(const uint16_t* src, DType type, float* dst, int64_t n) {
  if (type == DType::F16)
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void round_to_halves(const float* src, DType type, uint16_t* dst, int64_t n) {
  if (type == DType::F16)
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

uint64_t pad_to(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Reads the header with every access bounds-checked against the mapping. `context` names what is
// being read (a key, a tensor) for the one-line error when something runs past the end.
class Cursor {
 public:
  Cursor(const uint8_t* bytes, uint64_t size, const std::string& where) : bytes_(bytes), size_(size), where_(where) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  // Error unless `n` more bytes exist; `what` describes them when they are more than a scalar.
  void need(uint64_t n, const std::string& what = "") const {
    if (n > remaining()) past_end(what.empty() ? std::to_string(n) + " bytes" : what);
  }
  [[noreturn]] void past_end(const std::string& what) const {
    throw Error(where_ + context_ + " runs past the end of the file: " + what + " at byte " + std::to_string(pos_) +
                ", the file has " + std::to_string(size_) + " bytes");
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string() {
    const uint64_t n = read<uint64_t>();
    if (n > remaining()) past_end("a string of " + std::to_string(n) + " bytes");  // before allocating
    std::string s(reinterpret_cast<const char*>(bytes_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* bytes_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& where_;
  std::string context_ = "the header";
};

// One integer of kind k (validated: bools 0/1, u64 within int64).
int64_t read_integer(Cursor& c, GgufKind k, const std::string& where, const std::string& key) {
  switch (k) {
    case GgufKind::U8: return c.read<uint8_t>();
    case GgufKind::I8: return c.read<int8_t>();
    case GgufKind::U16: return c.read<uint16_t>();
    case GgufKind::I16: return c.read<int16_t>();
    case GgufKind::U32: return c.read<uint32_t>();
    case GgufKind::I32: return c.read<int32_t>();
    case GgufKind::I64: return c.read<int64_t>();
    case GgufKind::Bool: {
      const uint8_t b = c.read<uint8_t>();
      if (b > 1) throw Error(where + "metadata key " + printable(key) + " holds a bool of value " + std::to_string(b) + " (0 or 1)");
      return b;
    }
    default: {  // U64
      const uint64_t v = c.read<uint64_t>();
      if (v > kInt64Max)  // (per array element: the message is built only on failure)
        throw Error(where + "metadata key " + printable(key) + " holds the u64 " + std::to_string(v) +
                    ", above the largest value frugal reads (2^63 - 1)");
      return static_cast<int64_t>(v);
    }
  }
}

double read_float(Cursor& c, GgufKind k) {
  return k == GgufKind::F32 ? static_cast<double>(c.read<float>()) : c.read<double>();
}

// A value kind as stored (a u32), refused unless gguf defines it.
GgufKind read_kind(Cursor& c, const std::string& where, const std::string& key) {
  const uint32_t k = c.read<uint32_t>();
  check(k < kKindCount, where + "metadata key " + printable(key) + " has an unknown value type " + std::to_string(k));
  return static_cast<GgufKind>(k);
}

void read_array(Cursor& c, GgufValue& v, const std::string& where, const std::string& key) {
  v.element = read_kind(c, where, key);
  check(v.element != GgufKind::Array,
        where + "metadata key " + printable(key) + " is an array of arrays (not supported)");
  const uint64_t count = c.read<uint64_t>();
  // Every element needs at least its size (a string its 8-byte length): a count the rest of the
  // file cannot hold is refused before anything is allocated for it.
  const uint64_t least = v.element == GgufKind::String ? 8 : scalar_size(v.element);
  if (count > c.remaining() / least)
    c.past_end("an array of " + std::to_string(count) + " " + kind_name(v.element) + " values");
  if (v.element == GgufKind::String) {
    v.texts.reserve(count);
    for (uint64_t i = 0; i < count; ++i) v.texts.push_back(c.read_string());
  } else if (is_float_kind(v.element)) {
    v.numbers.reserve(count);
    for (uint64_t i = 0; i < count; ++i) v.numbers.push_back(read_float(c, v.element));
  } else {
    v.integers.reserve(count);
    for (uint64_t i = 0; i < count; ++i) v.integers.push_back(read_integer(c, v.element, where, key));
  }
}

GgufValue read_value(Cursor& c, const std::string& where, const std::string& key) {
  GgufValue v;
  v.kind = read_kind(c, where, key);
  if (v.kind == GgufKind::String)
    v.text = c.read_string();
  else if (v.kind == GgufKind::Array)
    read_array(c, v, where, key);
  else if (is_float_kind(v.kind))
    v.number = read_float(c, v.kind);
  else
    v.integer = read_integer(c, v.kind, where, key);
  return v;
}

// The data alignment: general.alignment when present (a u32 power of two), else 32.
uint32_t alignment_of(const std::vector<std::pair<std::string, GgufValue>>& metadata, const std::string& where) {
  for (const auto& [key, v] : metadata) {
    if (key != "general.alignment") continue;
    const bool ok = v.kind == GgufKind::U32 && v.integer > 0 && std::has_single_bit(static_cast<uint64_t>(v.integer));
    check(ok, where + "metadata key 'general.alignment' must be a u32 power of two, got " +
                  (v.kind == GgufKind::U32 ? std::to_string(v.integer) : std::string("a ") + kind_name(v.kind)));
    return static_cast<uint32_t>(v.integer);
  }
  return kDefaultAlignment;
}

// One tensor info, validated on its own (alignment, bounds and overlaps come later).
GgufTensor read_tensor_info(Cursor& c, const std::string& where, uint64_t index) {
  c.set_context("tensor info " + std::to_string(index));
  GgufTensor t;
  t.name = c.read_string();
  const std::string tw = where + "tensor " + printable(t.name) + " ";
  c.set_context("tensor " + printable(t.name));
  const uint32_t n_dims = c.read<uint32_t>();
  check(n_dims >= 1 && n_dims <= kMaxDims, tw + "has " + std::to_string(n_dims) + " dimensions (1 to 4 are read)");
  std::vector<int64_t> dims(n_dims);
  uint64_t numel = 1;
  for (uint32_t i = 0; i < n_dims; ++i) {
    const uint64_t ne = c.read<uint64_t>();
    check(ne != 0, tw + "has a dimension of size 0 (ne[" + std::to_string(i) + "])");
    check(!__builtin_mul_overflow(numel, ne, &numel) && numel <= kInt64Max,
          tw + "has dimensions whose product overflows (ne[" + std::to_string(i) + "] = " + std::to_string(ne) + ")");
    dims[n_dims - 1 - i] = static_cast<int64_t>(ne);  // ggml lists the fastest-varying first
  }
  t.shape = make_shape(dims);
  t.type = c.read<uint32_t>();
  check(is_read_type(t.type), tw + "has type " + ggml_type_name(t.type) +
                                  ", which frugal does not read (f32, f16, bf16 and q8_0 are read)");
  check(t.type != static_cast<uint32_t>(GgmlType::Q8_0) || t.shape[-1] % kQ8Block == 0,
        tw + "is q8_0 with rows of " + std::to_string(t.shape[-1]) + " values, not a multiple of 32");
  check(stored_bytes(t.type, numel, t.bytes), tw + "has a size in bytes that overflows");
  t.offset = c.read<uint64_t>();
  return t;
}

// Tensors sorted by offset may not share a byte.
void check_no_overlap(const std::vector<GgufTensor>& tensors, const std::string& where) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = tensors[order[i - 1]];
    const GgufTensor& t = tensors[order[i]];
    if (t.offset < prev.offset + prev.bytes)  // (no overflow: both lie within the file, checked before)
      throw Error(where + "tensors " + printable(prev.name) + " and " + printable(t.name) +
                  " overlap in the data section");
  }
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  constexpr uint32_t n = sizeof(kGgmlTypeNames) / sizeof(kGgmlTypeNames[0]);
  return type < n ? kGgmlTypeNames[type] : "type " + std::to_string(type);
}

// ---- values ----

GgufValue GgufValue::of_string(std::string s) {
  GgufValue v;
  v.kind = GgufKind::String;
  v.text = std::move(s);
  return v;
}
GgufValue GgufValue::of_u32(uint32_t x) {
  GgufValue v;
  v.kind = GgufKind::U32;
  v.integer = x;
  return v;
}
GgufValue GgufValue::of_i32(int32_t x) {
  GgufValue v;
  v.kind = GgufKind::I32;
  v.integer = x;
  return v;
}
GgufValue GgufValue::of_u64(uint64_t x) {
  check(x <= kInt64Max, "GGUF value: the u64 " + std::to_string(x) + " is above 2^63 - 1, which frugal does not hold");
  GgufValue v;
  v.kind = GgufKind::U64;
  v.integer = static_cast<int64_t>(x);
  return v;
}
GgufValue GgufValue::of_f32(float x) {
  GgufValue v;
  v.kind = GgufKind::F32;
  v.number = x;
  return v;
}
GgufValue GgufValue::of_bool(bool x) {
  GgufValue v;
  v.kind = GgufKind::Bool;
  v.integer = x ? 1 : 0;
  return v;
}
GgufValue GgufValue::of_strings(std::vector<std::string> xs) {
  GgufValue v;
  v.kind = GgufKind::Array;
  v.element = GgufKind::String;
  v.texts = std::move(xs);
  return v;
}
GgufValue GgufValue::of_i32s(std::vector<int64_t> xs) {
  GgufValue v;
  v.kind = GgufKind::Array;
  v.element = GgufKind::I32;
  v.integers = std::move(xs);
  return v;
}
GgufValue GgufValue::of_f32s(std::vector<double> xs) {
  GgufValue v;
  v.kind = GgufKind::Array;
  v.element = GgufKind::F32;
  v.numbers = std::move(xs);
  return v;
}

// ---- reading ----

GgufFile GgufFile::open(const std::string& path) {
  const std::string where = path + ": ";
  std::shared_ptr<const MappedFile> map = MappedFile::open(path);
  const uint64_t file_size = map->size();
  check(file_size >= sizeof(kMagic) && std::memcmp(map->bytes(), kMagic, sizeof(kMagic)) == 0,
        where + "not a GGUF file (it does not start with \"GGUF\")");
  Cursor c(map->bytes(), file_size, where);
  c.read<uint32_t>();  // the magic

  GgufFile f;
  f.path_ = path;
  f.map_ = map;
  f.version_ = c.read<uint32_t>();
  check(f.version_ != 1, where + "GGUF version 1 (32-bit counts) is not supported; versions 2 and 3 are read");
  check(f.version_ != 0x02000000u && f.version_ != 0x03000000u, where + "a big-endian GGUF file, not supported");
  check(f.version_ == 2 || f.version_ == 3,
        where + "unsupported GGUF version " + std::to_string(f.version_) + "; versions 2 and 3 are read");
  const uint64_t n_tensors = c.read<uint64_t>();
  const uint64_t n_kv = c.read<uint64_t>();
  // (each entry has at least 13 bytes, each tensor info 32: the loops below end at the file's end
  // either way, this says so up front)
  const std::string left = std::to_string(c.remaining()) + " bytes after the header can hold (truncated or corrupt)";
  check(n_kv <= c.remaining() / 13,
        where + "the header declares " + std::to_string(n_kv) + " metadata entries, more than the " + left);
  check(n_tensors <= c.remaining() / 32,
        where + "the header declares " + std::to_string(n_tensors) + " tensors, more than the " + left);

  for (uint64_t i = 0; i < n_kv; ++i) {
    c.set_context("metadata entry " + std::to_string(i));
    std::string key = c.read_string();
    check(f.key_index_.count(key) == 0, where + "duplicate metadata key " + printable(key));
    c.set_context("metadata key " + printable(key));
    GgufValue v = read_value(c, where, key);
    f.key_index_[key] = f.metadata_.size();
    f.metadata_.emplace_back(std::move(key), std::move(v));
  }
  const uint32_t alignment = alignment_of(f.metadata_, where);

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t = read_tensor_info(c, where, i);
    check(f.tensor_index_.count(t.name) == 0, where + "duplicate tensor name " + printable(t.name));
    check(t.offset % alignment == 0, where + "tensor " + printable(t.name) + " has offset " + std::to_string(t.offset) +
                                         ", not a multiple of the alignment " + std::to_string(alignment));
    f.tensor_index_[t.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (when there are tensors).
  const uint64_t data_start = pad_to(c.pos(), alignment);
  const uint64_t data_size = data_start <= file_size ? file_size - data_start : 0;
  for (const GgufTensor& t : f.tensors_) {
    check(data_start <= file_size && t.offset <= data_size && t.bytes <= data_size - t.offset,
          where + "tensor " + printable(t.name) + " data (" + std::to_string(t.bytes) + " bytes at offset " +
              std::to_string(t.offset) + " of the data section) runs past the end of the file (" +
              std::to_string(data_size) + " bytes of data)");
  }
  check_no_overlap(f.tensors_, where);
  f.data_ = map->bytes() + std::min(data_start, file_size);
  return f;
}

const GgufValue& GgufFile::value(const std::string& key) const {
  auto it = key_index_.find(key);
  check(it != key_index_.end(), path_ + ": no metadata key " + printable(key));
  return metadata_[it->second].second;
}

namespace {

std::string kind_phrase(const GgufValue& v) {
  if (v.kind == GgufKind::Array) return std::string("an array of ") + kind_name(v.element);
  return std::string("a ") + kind_name(v.kind);
}

// The value of `key` when `ok` says its kind fits, else an Error naming what it is.
const GgufValue& typed(const GgufFile& f, const std::string& key, bool (*ok)(const GgufValue&), const char* want) {
  const GgufValue& v = f.value(key);
  check(ok(v), f.path() + ": metadata key " + printable(key) + " is " + kind_phrase(v) + ", not " + want);
  return v;
}

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  return typed(*this, key, [](const GgufValue& v) { return v.kind == GgufKind::String; }, "a string").text;
}

int64_t GgufFile::get_int(const std::string& key) const {
  return typed(*this, key, [](const GgufValue& v) { return is_integer_kind(v.kind); }, "an integer").integer;
}

double GgufFile::get_number(const std::string& key) const {
  const GgufValue& v = typed(
      *this, key, [](const GgufValue& v) { return is_integer_kind(v.kind) || is_float_kind(v.kind); }, "a number");
  return is_float_kind(v.kind) ? v.number : static_cast<double>(v.integer);
}

bool GgufFile::get_bool(const std::string& key) const {
  return typed(*this, key, [](const GgufValue& v) { return v.kind == GgufKind::Bool; }, "a bool").integer != 0;
}

const std::vector<std::string>& GgufFile::get_strings(const std::string& key) const {
  return typed(
             *this, key, [](const GgufValue& v) { return v.kind == GgufKind::Array && v.element == GgufKind::String; },
             "an array of strings")
      .texts;
}

const std::vector<int64_t>& GgufFile::get_ints(const std::string& key) const {
  return typed(
             *this, key, [](const GgufValue& v) { return v.kind == GgufKind::Array && is_integer_kind(v.element); },
             "an array of integers")
      .integers;
}

std::vector<double> GgufFile::get_numbers(const std::string& key) const {
  const GgufValue& v = typed(
      *this, key,
      [](const GgufValue& v) {
        return v.kind == GgufKind::Array && (is_integer_kind(v.element) || is_float_kind(v.element));
      },
      "an array of numbers");
  if (is_float_kind(v.element)) return v.numbers;
  return std::vector<double>(v.integers.begin(), v.integers.end());
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  check(it != tensor_index_.end(), path_ + ": no tensor " + printable(name));
  return tensors_[it->second];
}

const uint8_t* GgufFile::data(const std::string& name) const { return data_ + tensor(name).offset; }

namespace {

constexpr int64_t kChunk = 8192;  // values converted at a time (a multiple of the q8_0 block)
static_assert(kChunk % kQ8Block == 0);

// Values [first, first + n) of a stored tensor as fp32. The source is copied out of the mapping
// first: a file's alignment may be as small as 1, so its floats need not be aligned.
void widen_chunk(const uint8_t* src, uint32_t type, int64_t first, int64_t n, float* out) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
      std::memcpy(out, src + 4 * first, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
    case GgmlType::BF16: {
      std::array<uint16_t, kChunk> half;
      std::memcpy(half.data(), src + 2 * first, static_cast<size_t>(n) * 2);
      widen_halves(half.data(), type == static_cast<uint32_t>(GgmlType::F16) ? DType::F16 : DType::BF16, out, n);
      return;
    }
    case GgmlType::Q8_0:
      dequantize_q8_0(src + first / kQ8Block * static_cast<int64_t>(kQ8BlockBytes), n, out);
      return;
  }
}

DType dtype_of(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    default: return DType::F32;
  }
}


}  // namespace

void GgufFile::load_into(const std::string& name, const Tensor& dst) const {
  const GgufTensor& t = tensor(name);
  const std::string tw = path_ + ": tensor " + printable(name) + " ";
  check(dst.shape() == t.shape, tw + "has shape " + t.shape.str() + ", expected " + dst.shape().str());
  const DType out = dst.dtype();
  check(out == DType::F32 || out == DType::F16 || out == DType::BF16,
        tw + "can only be loaded into an f32, f16 or bf16 tensor");
  if (!dst.has_data()) return;  // measuring: the planner only needs the size
  const uint8_t* src = data_ + t.offset;
  const int64_t n = t.shape.numel();
  const bool same = t.type != static_cast<uint32_t>(GgmlType::Q8_0) && dtype_of(t.type) == out;
  if (same) {
    std::memcpy(dst.raw(), src, static_cast<size_t>(t.bytes));
  } else {
    float* f32_out = out == DType::F32 ? dst.f32() : nullptr;
    uint16_t* half_out = out == DType::F32 ? nullptr : dst.u16();
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t first = k * kChunk, m = std::min(kChunk, n - first);
      if (f32_out) {
        widen_chunk(src, t.type, first, m, f32_out + first);
      } else {
        std::array<float, kChunk> buf;
        widen_chunk(src, t.type, first, m, buf.data());
        round_to_halves(buf.data(), out, half_out + first, m);
      }
    }
  }
  map_->release(src, static_cast<size_t>(t.bytes));
}

// ---- q8_0 ----

void quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  check(n % kQ8Block == 0, "quantize_q8_0: " + std::to_string(n) + " values, not a multiple of 32");
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8Block; ++j) {
      // (a NaN or inf would make the scale meaningless and its int8 conversion undefined; the message is
      // built only then: this loop runs over every weight)
      if (!std::isfinite(xb[j]))
        throw Error("quantize_q8_0: non-finite value " + std::to_string(xb[j]) + " at index " +
                    std::to_string(b * kQ8Block + j));
      amax = std::max(amax, std::fabs(xb[j]));
    }
    // As ggml's quantize_row_q8_0_ref: the scale in fp32 for the quantisation, stored as fp16.
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t* block = out + b * static_cast<int64_t>(kQ8BlockBytes);
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(block, &dh, 2);
    for (int64_t j = 0; j < kQ8Block; ++j) {
      const auto q = static_cast<int8_t>(std::roundf(xb[j] * id));  // half away from zero, as ggml
      std::memcpy(block + 2 + j, &q, 1);
    }
  }
}

void dequantize_q8_0(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* block = blocks + b * static_cast<int64_t>(kQ8BlockBytes);
    uint16_t dh;
    std::memcpy(&dh, block, 2);
    const float d = f16_to_f32(dh);
    for (int64_t j = 0; j < kQ8Block; ++j)
      out[b * kQ8Block + j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
  }
}

// ---- writing ----

namespace {

// Little-endian serialisation of the header.
struct Bytes {
  std::string s;
  template <typename T>
  void put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void put_string(const std::string& text) {
    put<uint64_t>(text.size());
    s += text;
  }
};

void put_integer(Bytes& b, GgufKind k, int64_t v, const std::string& key) {
  const auto [lo, hi] = integer_range(k);
  if (v < lo || v > hi)  // (per array element: the message is built only on failure)
    throw Error("GGUF writer: metadata key " + printable(key) + ": " + std::to_string(v) + " does not fit a " + kind_name(k));
  switch (scalar_size(k)) {
    case 1: b.put(static_cast<uint8_t>(v)); return;
    case 2: b.put(static_cast<uint16_t>(v)); return;
    case 4: b.put(static_cast<uint32_t>(v)); return;
    default: b.put(static_cast<uint64_t>(v)); return;
  }
}

void put_float(Bytes& b, GgufKind k, double v) {
  if (k == GgufKind::F32)
    b.put(static_cast<float>(v));
  else
    b.put(v);
}

void put_value(Bytes& b, const std::string& key, const GgufValue& v) {
  check(static_cast<uint32_t>(v.kind) < kKindCount,
        "GGUF writer: metadata key " + printable(key) + " has an unknown kind");
  b.put(static_cast<uint32_t>(v.kind));
  if (v.kind == GgufKind::String) {
    b.put_string(v.text);
  } else if (v.kind == GgufKind::Array) {
    check(static_cast<uint32_t>(v.element) < kKindCount && v.element != GgufKind::Array,
          "GGUF writer: metadata key " + printable(key) + " is an array of arrays or of an unknown kind");
    b.put(static_cast<uint32_t>(v.element));
    if (v.element == GgufKind::String) {
      b.put<uint64_t>(v.texts.size());
      for (const std::string& s : v.texts) b.put_string(s);
    } else if (is_float_kind(v.element)) {
      b.put<uint64_t>(v.numbers.size());
      for (double x : v.numbers) put_float(b, v.element, x);
    } else {
      b.put<uint64_t>(v.integers.size());
      for (int64_t x : v.integers) put_integer(b, v.element, x, key);
    }
  } else if (is_float_kind(v.kind)) {
    put_float(b, v.kind, v.number);
  } else {
    put_integer(b, v.kind, v.integer, key);
  }
}

uint64_t stored_bytes_of(GgmlType type, int64_t numel) {
  uint64_t bytes = 0;
  stored_bytes(static_cast<uint32_t>(type), static_cast<uint64_t>(numel), bytes);
  return bytes;
}

// Streams `value` stored as `type` through the sink, kChunk values at a time.
void write_tensor_data(const Tensor& value, GgmlType type, const ByteSink& sink) {
  const int64_t n = value.numel();
  const DType src = value.dtype();
  if (type != GgmlType::Q8_0 && dtype_of(static_cast<uint32_t>(type)) == src) {
    sink(value.raw(), value.nbytes());  // stored as it is held
    return;
  }
  std::vector<float> f32(kChunk);
  std::vector<uint16_t> halves(kChunk);
  std::vector<uint8_t> blocks(kChunk / kQ8Block * kQ8BlockBytes);
  for (int64_t first = 0; first < n; first += kChunk) {
    const int64_t m = std::min(kChunk, n - first);
    const float* x = src == DType::F32 ? value.f32() + first : f32.data();
    if (src != DType::F32) widen_halves(value.u16() + first, src, f32.data(), m);
    switch (type) {
      case GgmlType::F32:
        sink(x, static_cast<size_t>(m) * 4);
        break;
      case GgmlType::F16:
      case GgmlType::BF16:
        round_to_halves(x, type == GgmlType::F16 ? DType::F16 : DType::BF16, halves.data(), m);
        sink(halves.data(), static_cast<size_t>(m) * 2);
        break;
      case GgmlType::Q8_0:
        quantize_q8_0(x, m, blocks.data());
        sink(blocks.data(), static_cast<size_t>(m / kQ8Block * static_cast<int64_t>(kQ8BlockBytes)));
        break;
    }
  }
}

void pad_sink(const ByteSink& sink, uint64_t written, uint64_t alignment) {
  static const std::vector<char> zeros(1 << 16, 0);  // alignments above 64 KiB are padded in pieces
  for (uint64_t pad = pad_to(written, alignment) - written; pad > 0;) {
    const uint64_t m = std::min<uint64_t>(pad, zeros.size());
    sink(zeros.data(), m);
    pad -= m;
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (const auto& kv : metadata_) check(kv.first != key, "GGUF writer: duplicate metadata key " + printable(key));
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, const Tensor& value, GgmlType type, const Shape& shape) {
  const std::string tw = "GGUF writer: tensor " + printable(name) + " ";
  for (const Entry& e : tensors_) check(e.name != name, "GGUF writer: duplicate tensor " + printable(name));
  check(name.size() <= kMaxNameBytes, tw + "has a name of " + std::to_string(name.size()) +
                                          " bytes; llama.cpp reads at most 63");
  check(value.defined() && value.has_data(), tw + "holds no data");
  check(value.dtype() == DType::F32 || value.dtype() == DType::F16 || value.dtype() == DType::BF16,
        tw + "must be f32, f16 or bf16 to be written");
  const auto type_number = static_cast<uint32_t>(type);
  check(is_read_type(type_number), tw + "cannot be written as " + ggml_type_name(type_number));
  check(shape.ndim() >= 1, tw + "needs at least one dimension");
  for (int i = 0; i < shape.ndim(); ++i) check(shape[i] > 0, tw + "has a dimension of size 0 in " + shape.str());
  check(shape.numel() == value.numel(),
        tw + "has " + std::to_string(value.numel()) + " values but shape " + shape.str());
  check(type != GgmlType::Q8_0 || shape[-1] % kQ8Block == 0,
        tw + "cannot be q8_0: rows of " + std::to_string(shape[-1]) + " values, not a multiple of 32");
  tensors_.push_back(Entry{name, value, type, shape});
}

void GgufWriter::write(const std::string& path) const {
  const uint32_t alignment = alignment_of(metadata_, "cannot write " + path + ": ");
  Bytes header;
  header.s.append(kMagic, sizeof(kMagic));
  header.put<uint32_t>(3);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata_.size());
  for (const auto& [key, v] : metadata_) {
    header.put_string(key);
    put_value(header, key, v);
  }
  uint64_t offset = 0;  // each tensor at the next multiple of the alignment, as ggml and gguf-py
  for (const Entry& e : tensors_) {
    header.put_string(e.name);
    header.put<uint32_t>(static_cast<uint32_t>(e.shape.ndim()));
    for (int i = e.shape.ndim() - 1; i >= 0; --i) header.put<uint64_t>(static_cast<uint64_t>(e.shape[i]));
    header.put<uint32_t>(static_cast<uint32_t>(e.type));
    header.put<uint64_t>(offset);
    offset = pad_to(offset + stored_bytes_of(e.type, e.shape.numel()), alignment);
  }
  write_file_atomic(path, [&](const ByteSink& sink) {
    sink(header.s.data(), header.s.size());
    pad_sink(sink, header.s.size(), alignment);
    for (const Entry& e : tensors_) {
      try {
        write_tensor_data(e.value, e.type, sink);
      } catch (const Error& err) {  // (quantize_q8_0's non-finite values: say which tensor)
        throw Error("cannot write " + path + ": tensor " + printable(e.name) + ": " + err.what());
      }
      pad_sink(sink, stored_bytes_of(e.type, e.shape.numel()), alignment);
    }
  });
}

}  // namespace frugal
