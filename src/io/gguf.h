#pragma once
// GGUF files (llama.cpp's model format, version 3; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//   "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)*   strings are u64 length + UTF-8 bytes
//   tensor infos: (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)*
//   padding to general.alignment (default 32), then the tensor data, each tensor at its offset
//   (a multiple of the alignment) from the start of the data section.
// ggml lists dimensions fastest-varying first (ne[0] is the row length): a row-major (rows, cols)
// matrix is ne = [cols, rows]. Here shapes are row-major, as everywhere in frugal: Shape = ne reversed.
//
// The reader memory-maps the file and validates all of it before anything is used: every problem
// is a one-line frugal::Error naming the file (and the key or tensor). Tensor types read: f32, f16,
// bf16 and q8_0 (blocks of 32 int8 values with one fp16 scale); any other type is refused naming it.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"

namespace frugal {

// ggml's tensor types frugal reads and writes (the values are ggml's enum ggml_type).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };
// ggml's name of any type number ("f32", "q8_0", "q4_K", ...; "type N" for numbers ggml lacks).
std::string ggml_type_name(uint32_t type);
constexpr int64_t kQ8Block = 32;  // q8_0: values per block; a block is an fp16 scale d and 32 int8 q (value q * d)

// Metadata value types (the values are gguf's enum gguf_type).
enum class GgufKind : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };

// One metadata value: a scalar, a string, or an array of one scalar kind or of strings (arrays of
// arrays are refused by the reader and not written).
struct GgufValue {
  GgufKind kind = GgufKind::U32;
  GgufKind element = GgufKind::U8;  // arrays: the elements' kind
  int64_t integer = 0;              // U8 .. I64, Bool (0 or 1); a U64 above INT64_MAX is refused
  double number = 0;                // F32, F64
  std::string text;                 // String
  std::vector<int64_t> integers;    // array of integers or bools
  std::vector<double> numbers;      // array of F32 / F64
  std::vector<std::string> texts;   // array of strings

  static GgufValue of_string(std::string s);
  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_u64(uint64_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_strings(std::vector<std::string> v);
  static GgufValue of_i32s(std::vector<int64_t> v);
  static GgufValue of_f32s(std::vector<double> v);
};

// One tensor as the file describes it.
struct GgufTensor {
  std::string name;
  uint32_t type = 0;      // a GgmlType the reader accepted
  Shape shape;            // row-major: ggml's ne reversed (1 to 4 dimensions)
  uint64_t offset = 0;    // from the start of the data section
  uint64_t bytes = 0;     // as stored (q8_0: 34 bytes per block of 32)
};

class GgufFile {
 public:
  // Maps and validates the whole file. Errors: wrong magic or version (2 and 3 share one layout and
  // are read; 1, with 32-bit counts, and any other are refused), a truncated header, a string or array running past
  // the end, an unknown value kind, duplicate keys or tensor names, a general.alignment that is not
  // a power of two, more than 4 dimensions, a zero or overflowing dimension, an unsupported tensor
  // type (named), a q8_0 row length that is not a multiple of 32, an offset that is not aligned, and
  // tensor data that overlaps another tensor's or runs past the end of the file.
  static GgufFile open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return key_index_.count(key) > 0; }
  const GgufValue& value(const std::string& key) const;  // Error "<path>: no metadata key 'KEY'"
  // Typed reads; each an Error naming the key when it is absent or of another kind.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;      // any integer kind
  double get_number(const std::string& key) const;    // F32, F64 or any integer kind
  bool get_bool(const std::string& key) const;
  const std::vector<std::string>& get_strings(const std::string& key) const;  // array of strings
  const std::vector<int64_t>& get_ints(const std::string& key) const;         // array of integers
  std::vector<double> get_numbers(const std::string& key) const;               // array of numbers

  // Tensors, in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return tensor_index_.count(name) > 0; }
  const GgufTensor& tensor(const std::string& name) const;  // Error "<path>: no tensor 'NAME'"
  // The tensor's stored bytes (mapped; valid while this file or a copy of it lives).
  const uint8_t* data(const std::string& name) const;
  // Converts tensor `name` into dst (F32, F16 or BF16, the same shape): f16/bf16 widened or rounded,
  // q8_0 dequantised (q * d). Error naming the tensor on a shape mismatch. Without data in dst
  // (a measuring ledger) nothing is read.
  void load_into(const std::string& name, const Tensor& dst) const;

 private:
  std::string path_;
  uint32_t version_ = 3;
  std::shared_ptr<const MappedFile> map_;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> key_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Builds a GGUF file: metadata and tensors in the order they are added, written atomically
// (io/atomic_file.h) with an alignment of 32 and the tensors converted while they are written, so
// no second copy of a model exists in memory.
class GgufWriter {
 public:
  // Error on a duplicate key.
  void set(const std::string& key, GgufValue value);
  // `value` (F32, F16 or BF16, holding data; kept by reference until write) stored as `type`:
  // F32, F16, BF16 (rounded to nearest even) or Q8_0 (rows of a multiple of 32 values; per block
  // d = absmax / 127 in fp16, q = round(x / d), as llama.cpp's quantize_row_q8_0_ref). `shape` is
  // the row-major shape written (numel equal to value's). Error on a duplicate name, a name of 64
  // bytes or more (llama.cpp's limit), a zero dimension, and a tensor without data.
  void add_tensor(const std::string& name, const Tensor& value, GgmlType type, const Shape& shape);
  void add_tensor(const std::string& name, const Tensor& value, GgmlType type) {
    add_tensor(name, value, type, value.shape());
  }
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    Tensor value;
    GgmlType type;
    Shape shape;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Entry> tensors_;
};

// True when `path` is a file that starts with GGUF's magic (a directory never is).
bool is_gguf_file(const std::string& path);

// q8_0 of n values (n a multiple of 32) into 34 * n / 32 bytes, and back. quantize_q8_0 refuses
// (Error) a NaN or an infinity: the block's scale would be meaningless.
void quantize_q8_0(const float* x, int64_t n, uint8_t* out);
void dequantize_q8_0(const uint8_t* blocks, int64_t n, float* out);

}  // namespace frugal
