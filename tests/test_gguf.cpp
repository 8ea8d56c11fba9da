// GGUF (io/gguf.h): writer -> reader round trips of every tensor type and metadata kind, q8_0
// against hand-computed blocks and llama.cpp's own writer, and one row per way a file can be wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/ledger.h"
#include "core/tensor.h"
#include "io/atomic_file.h"
#include "io/gguf.h"

using namespace frugal;
namespace fs = std::filesystem;

namespace {

// A fresh, empty directory per test.
fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::path(::testing::TempDir()) / ("frugal_gguf_" + std::string(info->test_suite_name()) + "_" +
                                                 info->name() + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Values that exercise rounding: fractions, signs, magnitudes from 1e-3 to 1e3.
Tensor f32_tensor(const Shape& s, float seed) {
  Tensor t = Tensor::empty(s, DType::F32, MemCategory::Params);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = std::sin(seed + 0.37f * static_cast<float>(i)) * std::pow(10.0f, static_cast<float>(i % 7) - 3.0f);
  return t;
}

Tensor rounded(const Tensor& src, DType half) {
  Tensor t = Tensor::empty(src.shape(), half, MemCategory::Params);
  for (int64_t i = 0; i < src.numel(); ++i)
    t.u16()[i] = half == DType::F16 ? f32_to_f16(src.f32()[i]) : f32_to_bf16(src.f32()[i]);
  return t;
}

Tensor load(const GgufFile& f, const std::string& name, DType dtype) {
  Tensor t = Tensor::empty(f.tensor(name).shape, dtype, MemCategory::Params);
  f.load_into(name, t);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Opens (and loads every tensor of) `path`, expecting an Error of one line naming the file.
// Returns the message ("" when the file opened).
std::string open_error(const std::string& path) {
  try {
    GgufFile f = GgufFile::open(path);
    for (const GgufTensor& t : f.tensors()) load(f, t.name, DType::F32);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << "names the file: " << msg;
    return msg;
  }
  return "";
}

// ---- a hand-built file whose fields the malformed cases overwrite ----

struct Builder {
  std::string b;
  template <typename T>
  size_t put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return b.size() - sizeof(T);
  }
  size_t put_string(const std::string& s) {
    const size_t at = put<uint64_t>(s.size());
    b += s;
    return at;
  }
};

// Where the fields of the base file lie.
struct Layout {
  size_t version, n_tensors, n_kv;
  size_t name_key, name_len;      // "general.name" = "tiny": its key, its value's length field
  size_t align_type, align_value;  // "general.alignment" u32 32
  size_t list_key, list_element, list_count;  // "general.nam2" = [1, 2, 3] (i32)
  size_t big_value;                // "big" u64 5
  size_t flag_value;               // "flag" bool 1
  size_t w0_ndims, w0_ne0, w0_ne1, w0_type;  // "w0": f32 ne [32, 2]
  size_t w1_name, w1_ne0, w1_type, w1_offset;  // "w1": q8_0 ne [32] at 256
};

// A valid GGUF v3 file of 5 metadata entries and two tensors; the data section ends with the last
// tensor (no trailing padding), so every shorter prefix is truncated.
std::string base_file(Layout& at) {
  Builder f;
  f.b = "GGUF";
  at.version = f.put<uint32_t>(3);
  at.n_tensors = f.put<uint64_t>(2);
  at.n_kv = f.put<uint64_t>(5);
  at.name_key = f.put_string("general.name");
  f.put<uint32_t>(8);
  at.name_len = f.put_string("tiny");
  f.put_string("general.alignment");
  at.align_type = f.put<uint32_t>(4);
  at.align_value = f.put<uint32_t>(32);
  at.list_key = f.put_string("general.nam2");
  f.put<uint32_t>(9);
  at.list_element = f.put<uint32_t>(5);
  at.list_count = f.put<uint64_t>(3);
  for (int32_t v : {1, 2, 3}) f.put(v);
  f.put_string("big");
  f.put<uint32_t>(10);
  at.big_value = f.put<uint64_t>(5);
  f.put_string("flag");
  f.put<uint32_t>(7);
  at.flag_value = f.put<uint8_t>(1);

  f.put_string("w0");
  at.w0_ndims = f.put<uint32_t>(2);
  at.w0_ne0 = f.put<uint64_t>(32);
  at.w0_ne1 = f.put<uint64_t>(2);
  at.w0_type = f.put<uint32_t>(0);
  f.put<uint64_t>(0);
  at.w1_name = f.put_string("w1");
  f.put<uint32_t>(1);
  at.w1_ne0 = f.put<uint64_t>(32);
  at.w1_type = f.put<uint32_t>(8);
  at.w1_offset = f.put<uint64_t>(256);
  f.b.resize((f.b.size() + 31) / 32 * 32, '\0');
  for (int i = 0; i < 64; ++i) f.put(0.5f * static_cast<float>(i));
  f.put<uint16_t>(0x3c00);  // q8_0: d = 1
  for (int i = 0; i < 32; ++i) f.put<int8_t>(static_cast<int8_t>(i - 16));
  return f.b;
}

template <typename T>
void poke(std::string& bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
}

}  // namespace

// ---- round trips ----

TEST(GgufRoundTrip, AllTypesAndEveryMetadataKindReadBack) {
  const fs::path p = temp_dir() / "m.gguf";
  GgufWriter w;
  const std::string utf8 = "na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82";  // naïve 日本 🙂
  w.set("general.name", GgufValue::of_string(utf8));
  w.set("n_layer", GgufValue::of_u32(4000000000u));
  w.set("offset", GgufValue::of_i32(-7));
  w.set("n_tokens", GgufValue::of_u64(uint64_t{1} << 40));
  w.set("max_u64", GgufValue::of_u64(static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
  w.set("eps", GgufValue::of_f32(1e-5f));
  w.set("yes", GgufValue::of_bool(true));
  w.set("no", GgufValue::of_bool(false));
  w.set("tokens", GgufValue::of_strings({"a", "", utf8, "<s>"}));
  w.set("ids", GgufValue::of_i32s({-2147483648LL, 0, 2147483647LL}));
  w.set("scores", GgufValue::of_f32s({0.5, -1.25, 3e38}));
  GgufValue u8s;  // the kinds without a constructor, built by hand
  u8s.kind = GgufKind::Array;
  u8s.element = GgufKind::U8;
  u8s.integers = {0, 255};
  w.set("u8s", u8s);
  GgufValue bools = u8s;
  bools.element = GgufKind::Bool;
  bools.integers = {1, 0, 1};
  w.set("bools", bools);
  GgufValue f64;
  f64.kind = GgufKind::F64;
  f64.number = 0.1;
  w.set("f64", f64);
  GgufValue i16;
  i16.kind = GgufKind::I16;
  i16.integer = -32768;
  w.set("i16", i16);
  GgufValue empty = GgufValue::of_strings({});
  w.set("empty", empty);

  const Tensor a = f32_tensor({3, 5}, 0.1f);
  const Tensor b = f32_tensor({2, 3, 7}, 0.2f);
  const Tensor c = f32_tensor({9}, 0.3f);
  const Tensor q = f32_tensor({2, 3, 64}, 0.4f);
  const Tensor h = rounded(f32_tensor({4, 4}, 0.5f), DType::F16);  // stored as it is held
  const Tensor bh = rounded(f32_tensor({1, 2, 2, 3}, 0.6f), DType::BF16);  // widened to f32
  w.add_tensor("a", a, GgmlType::F32);
  w.add_tensor("b", b, GgmlType::F16);
  w.add_tensor("c", c, GgmlType::BF16);
  w.add_tensor("q", q, GgmlType::Q8_0);
  w.add_tensor("h", h, GgmlType::F16);
  w.add_tensor("bh", bh, GgmlType::F32, Shape{12});  // written under another shape
  w.write(p.string());

  const GgufFile f = GgufFile::open(p.string());
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), 16u);
  EXPECT_EQ(f.metadata()[0].first, "general.name");
  EXPECT_EQ(f.metadata()[15].first, "empty");
  EXPECT_EQ(f.get_string("general.name"), utf8);
  EXPECT_EQ(f.get_int("n_layer"), 4000000000LL);
  EXPECT_EQ(f.value("n_layer").kind, GgufKind::U32);
  EXPECT_EQ(f.get_int("offset"), -7);
  EXPECT_EQ(f.get_int("n_tokens"), int64_t{1} << 40);
  EXPECT_EQ(f.value("n_tokens").kind, GgufKind::U64);
  EXPECT_EQ(f.get_int("max_u64"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(f.get_number("eps"), static_cast<double>(1e-5f));
  EXPECT_EQ(f.get_number("n_layer"), 4e9);
  EXPECT_TRUE(f.get_bool("yes"));
  EXPECT_FALSE(f.get_bool("no"));
  EXPECT_EQ(f.get_strings("tokens"), (std::vector<std::string>{"a", "", utf8, "<s>"}));
  EXPECT_EQ(f.get_ints("ids"), (std::vector<int64_t>{-2147483648LL, 0, 2147483647LL}));
  EXPECT_EQ(f.get_numbers("scores"), (std::vector<double>{0.5, -1.25, static_cast<double>(3e38f)}));
  EXPECT_EQ(f.get_numbers("ids"), (std::vector<double>{-2147483648.0, 0, 2147483647.0}));
  EXPECT_EQ(f.get_ints("u8s"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f.value("bools").element, GgufKind::Bool);
  EXPECT_EQ(f.value("bools").integers, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f.get_number("f64"), 0.1);
  EXPECT_EQ(f.get_int("i16"), -32768);
  EXPECT_TRUE(f.get_strings("empty").empty());

  // Tensors in insertion order, shapes row-major, every one aligned to 32 in the file.
  ASSERT_EQ(f.tensors().size(), 6u);
  const std::vector<std::string> names = {"a", "b", "c", "q", "h", "bh"};
  for (size_t i = 0; i < names.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(t.name, names[i]);
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data(t.name)) % 32, 0u) << t.name;  // (the mapping is page-aligned)
  }
  EXPECT_EQ(f.tensor("b").shape, (Shape{2, 3, 7}));
  EXPECT_EQ(f.tensor("q").type, 8u);
  EXPECT_EQ(f.tensor("q").bytes, 12u * 34);
  EXPECT_EQ(f.tensor("bh").shape, (Shape{12}));

  // f32/f16/bf16 bit-exact, in every destination type.
  EXPECT_TRUE(same_bits(load(f, "a", DType::F32), a));
  EXPECT_TRUE(same_bits(load(f, "a", DType::F16), rounded(a, DType::F16)));
  EXPECT_TRUE(same_bits(load(f, "a", DType::BF16), rounded(a, DType::BF16)));
  EXPECT_TRUE(same_bits(load(f, "b", DType::F16), rounded(b, DType::F16)));
  EXPECT_TRUE(same_bits(load(f, "c", DType::BF16), rounded(c, DType::BF16)));
  EXPECT_TRUE(same_bits(load(f, "h", DType::F16), h));
  const Tensor b32 = load(f, "b", DType::F32);
  for (int64_t i = 0; i < b.numel(); ++i) EXPECT_EQ(b32.f32()[i], f16_to_f32(f32_to_f16(b.f32()[i])));
  const Tensor bh32 = load(f, "bh", DType::F32);
  for (int64_t i = 0; i < bh.numel(); ++i) EXPECT_EQ(bh32.f32()[i], bf16_to_f32(bh.u16()[i]));
  // q8_0: the stored bytes are quantize_q8_0's, and load is dequantize_q8_0.
  std::vector<uint8_t> blocks(12 * 34);
  quantize_q8_0(q.f32(), q.numel(), blocks.data());
  EXPECT_EQ(std::memcmp(f.data("q"), blocks.data(), blocks.size()), 0);
  std::vector<float> deq(static_cast<size_t>(q.numel()));
  dequantize_q8_0(blocks.data(), q.numel(), deq.data());
  const Tensor q32 = load(f, "q", DType::F32);
  EXPECT_EQ(std::memcmp(q32.f32(), deq.data(), deq.size() * 4), 0);
  const Tensor q16 = load(f, "q", DType::BF16);
  for (size_t i = 0; i < deq.size(); ++i) EXPECT_EQ(q16.u16()[i], f32_to_bf16(deq[i]));
}

// A tensor larger than one conversion chunk, loaded on several threads, equals the serial result.
TEST(GgufRoundTrip, LargeTensorsConvertInChunks) {
  const fs::path p = temp_dir() / "big.gguf";
  const Tensor x = f32_tensor({70, 1024}, 0.7f);  // 71,680 values: several chunks, a partial last one
  GgufWriter w;
  w.add_tensor("f16", x, GgmlType::F16);
  w.add_tensor("q", x, GgmlType::Q8_0, Shape{35, 2048});
  w.write(p.string());
  const GgufFile f = GgufFile::open(p.string());
  EXPECT_TRUE(same_bits(load(f, "f16", DType::F16), rounded(x, DType::F16)));
  const Tensor x32 = load(f, "f16", DType::F32);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(x32.f32()[i], f16_to_f32(f32_to_f16(x.f32()[i]))) << i;
  std::vector<uint8_t> blocks(static_cast<size_t>(x.numel() / 32 * 34));
  quantize_q8_0(x.f32(), x.numel(), blocks.data());
  std::vector<float> deq(static_cast<size_t>(x.numel()));
  dequantize_q8_0(blocks.data(), x.numel(), deq.data());
  const Tensor q = load(f, "q", DType::F32);
  EXPECT_EQ(q.shape(), (Shape{35, 2048}));
  EXPECT_EQ(std::memcmp(q.f32(), deq.data(), deq.size() * 4), 0);
}

// ---- q8_0 ----

TEST(GgufQ8, HandComputedBlocks) {
  // amax 127: d = 1, id = 1, so q = roundf(x), halves away from zero (not to even).
  float x[32] = {0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 127.0f, -126.4f, 3.49f, 0.0f, -0.49f};
  uint8_t out[34];
  quantize_q8_0(x, 32, out);
  EXPECT_EQ(out[0] | out[1] << 8, 0x3c00);  // d = 1.0 in fp16
  const int8_t want[10] = {1, -1, 2, 3, -3, 127, -126, 3, 0, 0};
  for (int j = 0; j < 10; ++j) EXPECT_EQ(static_cast<int8_t>(out[2 + j]), want[j]) << j;
  for (int j = 10; j < 32; ++j) EXPECT_EQ(out[2 + j], 0) << j;

  // amax 254: d = 2, id = 0.5: 3 -> 1.5 -> 2, -5 -> -2.5 -> -3, 1 -> 0.5 -> 1, -254 -> -127.
  float y[32] = {3.0f, -5.0f, 1.0f, -254.0f, 7.0f};
  quantize_q8_0(y, 32, out);
  EXPECT_EQ(out[0] | out[1] << 8, 0x4000);  // 2.0
  const int8_t want_y[5] = {2, -3, 1, -127, 4};
  for (int j = 0; j < 5; ++j) EXPECT_EQ(static_cast<int8_t>(out[2 + j]), want_y[j]) << j;
  float back[32];
  dequantize_q8_0(out, 32, back);
  EXPECT_EQ(back[0], 4.0f);
  EXPECT_EQ(back[1], -6.0f);
  EXPECT_EQ(back[3], -254.0f);

  // All zeros: d = 0 and id = 0 (no division by zero), every q 0, and back to zeros.
  float z[32] = {};
  std::memset(out, 0xff, sizeof out);
  quantize_q8_0(z, 32, out);
  for (uint8_t byte : out) EXPECT_EQ(byte, 0);
  dequantize_q8_0(out, 32, back);
  for (float v : back) EXPECT_EQ(v, 0.0f);
}

TEST(GgufQ8, DequantizedWithinHalfAStep) {
  std::vector<float> x(32 * 64);
  uint64_t state = 7;
  for (size_t i = 0; i < x.size(); ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float scale = std::pow(10.0f, static_cast<float>(i / 32 % 9) - 4.0f);  // one scale per block
    x[i] = scale * (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f);
  }
  std::vector<uint8_t> blocks(x.size() / 32 * 34);
  quantize_q8_0(x.data(), static_cast<int64_t>(x.size()), blocks.data());
  std::vector<float> back(x.size());
  dequantize_q8_0(blocks.data(), static_cast<int64_t>(x.size()), back.data());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.0f;
    const float d16 = f16_to_f32(f32_to_f16(d));
    // Half a step from rounding q, plus what storing d in fp16 moves the largest q (|q| <= 127), plus
    // the float roundings of x / d (which may put a value just past the half step) and of q * d16.
    const float u = std::ldexp(1.0f, -24);
    const float bound = d / 2 + 127.0f * std::fabs(d16 - d) + 2 * 127.0f * u * std::max(d, d16);
    for (int j = 0; j < 32; ++j)
      EXPECT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), bound) << "block " << b << " value " << j;
  }
}

TEST(GgufQ8, RefusesNonFiniteValuesAndPartialBlocks) {
  std::vector<float> x(32, 1.0f);
  std::vector<uint8_t> out(34);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_q8_0(x.data(), 32, out.data()), Error);
  x[5] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_q8_0(x.data(), 32, out.data()), Error);
  EXPECT_THROW(quantize_q8_0(x.data(), 16, out.data()), Error);
}

// ---- a file written by llama.cpp's own Python writer (gguf-py) ----

namespace {
// Written by gguf-py's GGUFWriter (llama.cpp's gguf-py, numpy 1.24):
//   w = gguf.GGUFWriter(path, arch="llama")
//   w.add_uint32("llama.context_length", 128); w.add_float32("llama.rope.freq_base", 10000.0)
//   w.add_bool("tokenizer.ggml.add_bos_token", True)
//   w.add_array("tokenizer.ggml.tokens", ["a", "é", "<s>"]); w.add_array("tokenizer.ggml.token_type", [1, 2, 3])
//   w.add_tensor("a", (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3))
//   w.add_tensor("b", np.array([[1.5, -2.0], [0.25, 1024.0]], dtype=np.float16))
//   q = (np.arange(64, dtype=np.float32) - 15.5) / 4
//   w.add_tensor("q", gguf.quantize(q.reshape(2, 32), Q8_0), raw_dtype=Q8_0)
constexpr const char* kGgufPyFile =
    "4747554603000000030000000000000006000000000000001400000000000000"
    "67656e6572616c2e617263686974656374757265080000000500000000000000"
    "6c6c616d6114000000000000006c6c616d612e636f6e746578745f6c656e6774"
    "68040000008000000014000000000000006c6c616d612e726f70652e66726571"
    "5f626173650600000000401c461c00000000000000746f6b656e697a65722e67"
    "676d6c2e6164645f626f735f746f6b656e07000000011500000000000000746f"
    "6b656e697a65722e67676d6c2e746f6b656e7309000000080000000300000000"
    "0000000100000000000000610200000000000000c3a903000000000000003c73"
    "3e1900000000000000746f6b656e697a65722e67676d6c2e746f6b656e5f7479"
    "7065090000000500000003000000000000000100000002000000030000000100"
    "0000000000006102000000030000000000000002000000000000000000000000"
    "0000000000000001000000000000006202000000020000000000000002000000"
    "0000000001000000200000000000000001000000000000007102000000200000"
    "0000000000020000000000000008000000400000000000000000000000000000"
    "000080bf000000bf000000000000003f0000803f0000c03f0000000000000000"
    "003e00c000340064000000000000000000000000000000000000000000000000"
    "d0278189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f"
    "777ffc2d2c2f313437393c3f4244474a4c4f5254575a5c5f6264676a6c6f7274"
    "777a7c7f00000000000000000000000000000000000000000000000000000000";

std::string from_hex(const char* hex) {
  std::string out;
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  return out;
}
}  // namespace

TEST(GgufLlamaCpp, ReadsAFileFromGgufPy) {
  const fs::path p = temp_dir() / "gguf-py.gguf";
  write_bytes(p, from_hex(kGgufPyFile));
  const GgufFile f = GgufFile::open(p.string());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.context_length"), 128);
  EXPECT_EQ(f.get_number("llama.rope.freq_base"), 10000.0);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "\xc3\xa9", "<s>"}));
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, 2, 3}));

  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensor("a").shape, (Shape{2, 3}));
  EXPECT_EQ(f.tensor("b").shape, (Shape{2, 2}));
  EXPECT_EQ(f.tensor("q").shape, (Shape{2, 32}));
  const Tensor a = load(f, "a", DType::F32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.f32()[i], 0.5f * static_cast<float>(i) - 1.0f);
  const Tensor b = load(f, "b", DType::F32);
  EXPECT_EQ(b.f32()[0], 1.5f);
  EXPECT_EQ(b.f32()[1], -2.0f);
  EXPECT_EQ(b.f32()[2], 0.25f);
  EXPECT_EQ(b.f32()[3], 1024.0f);
  // gguf-py quantises as ggml's reference does: our quantize_q8_0 gives the same bytes, and the
  // values read are gguf.dequantize's (first and last, printed by gguf-py).
  std::vector<float> q(64);
  for (int i = 0; i < 64; ++i) q[static_cast<size_t>(i)] = (static_cast<float>(i) - 15.5f) / 4;
  std::vector<uint8_t> blocks(2 * 34);
  quantize_q8_0(q.data(), 64, blocks.data());
  EXPECT_EQ(std::memcmp(f.data("q"), blocks.data(), blocks.size()), 0);
  const Tensor qr = load(f, "q", DType::F32);
  EXPECT_EQ(qr.f32()[0], -3.875732421875f);
  EXPECT_EQ(qr.f32()[31], 3.875732421875f);
  EXPECT_EQ(qr.f32()[63], 11.875244140625f);
}

// ---- the reader's API errors ----

TEST(GgufReader, ErrorsNameTheKeyOrTensor) {
  const fs::path p = temp_dir() / "m.gguf";
  GgufWriter w;
  w.set("s", GgufValue::of_string("x"));
  w.set("n", GgufValue::of_u32(3));
  w.add_tensor("t", f32_tensor({2, 32}, 0.0f), GgmlType::Q8_0);
  w.write(p.string());
  const GgufFile f = GgufFile::open(p.string());
  auto message = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { f.value("missing"); }).find("no metadata key 'missing'"), std::string::npos);
  EXPECT_NE(message([&] { f.get_int("missing"); }).find("'missing'"), std::string::npos);
  EXPECT_NE(message([&] { f.get_int("s"); }).find("'s' is a string, not an integer"), std::string::npos);
  EXPECT_NE(message([&] { f.get_string("n"); }).find("'n' is a u32, not a string"), std::string::npos);
  EXPECT_NE(message([&] { f.get_bool("n"); }).find("'n'"), std::string::npos);
  EXPECT_NE(message([&] { f.get_strings("s"); }).find("'s'"), std::string::npos);
  EXPECT_NE(message([&] { f.get_ints("n"); }).find("'n'"), std::string::npos);
  EXPECT_NE(message([&] { f.get_numbers("s"); }).find("'s'"), std::string::npos);
  EXPECT_NE(message([&] { f.tensor("u"); }).find("no tensor 'u'"), std::string::npos);
  EXPECT_NE(message([&] { f.data("u"); }).find("no tensor 'u'"), std::string::npos);
  const std::string shape = message([&] { f.load_into("t", Tensor::empty({64}, DType::F32, MemCategory::Params)); });
  EXPECT_NE(shape.find("tensor 't' has shape [2, 32], expected [64]"), std::string::npos) << shape;
  EXPECT_NE(shape.find(p.string()), std::string::npos) << shape;
  EXPECT_THROW(f.load_into("t", Tensor::empty({2, 32}, DType::I32, MemCategory::Params)), Error);
  for (const std::string& m : {message([&] { f.get_int("s"); }), shape})
    EXPECT_NE(m.find(p.string()), std::string::npos) << m;
}

TEST(GgufReader, LoadIntoAMeasuringLedgerReadsNothing) {
  const fs::path p = temp_dir() / "m.gguf";
  GgufWriter w;
  w.add_tensor("t", f32_tensor({4, 32}, 0.0f), GgmlType::F16);
  w.write(p.string());
  const GgufFile f = GgufFile::open(p.string());
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  Tensor t = Tensor::empty({4, 32}, DType::F32, MemCategory::Params);
  f.load_into("t", t);
  EXPECT_FALSE(t.has_data());
  EXPECT_EQ(ledger.live()[MemCategory::Params], 4u * 32 * 4);
}

// ---- the writer's errors ----

TEST(GgufWriterErrors, RefusesBadInputAndLeavesNoFile) {
  const fs::path d = temp_dir();
  const Tensor x = f32_tensor({2, 48}, 0.0f);
  GgufWriter w;
  w.set("k", GgufValue::of_u32(1));
  EXPECT_THROW(w.set("k", GgufValue::of_string("again")), Error);
  w.add_tensor("x", x, GgmlType::F32);
  EXPECT_THROW(w.add_tensor("x", x, GgmlType::F16), Error);                     // duplicate name
  EXPECT_THROW(w.add_tensor("q", x, GgmlType::Q8_0), Error);                    // rows of 48
  EXPECT_THROW(w.add_tensor("s", x, GgmlType::F32, Shape{95}), Error);          // numel mismatch
  EXPECT_THROW(w.add_tensor("z", x, GgmlType::F32, Shape{0, 96}), Error);       // zero dimension
  EXPECT_THROW(w.add_tensor("u", Tensor(), GgmlType::F32), Error);              // no tensor at all
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), x, GgmlType::F32), Error);    // llama.cpp's name limit
  EXPECT_THROW(GgufValue::of_u64(uint64_t{1} << 63), Error);
  {
    MemoryLedger ledger(/*measure_only=*/true);
    LedgerScope scope(ledger);
    Tensor measured = Tensor::empty({32}, DType::F32, MemCategory::Params);
    EXPECT_THROW(w.add_tensor("m", measured, GgmlType::F32), Error);            // no data
  }
  GgufValue bad_u8;  // a value outside its kind's range
  bad_u8.kind = GgufKind::U8;
  bad_u8.integer = 256;
  GgufWriter w2;
  w2.set("u8", bad_u8);
  EXPECT_THROW(w2.write((d / "u8.gguf").string()), Error);
  EXPECT_FALSE(fs::exists(d / "u8.gguf"));
  // A NaN quantised: the write fails naming the tensor and the file, and leaves nothing behind.
  Tensor nan = f32_tensor({32}, 0.0f);
  nan.f32()[3] = std::numeric_limits<float>::quiet_NaN();
  GgufWriter w3;
  w3.add_tensor("nan", nan, GgmlType::Q8_0);
  const std::string path = (d / "nan.gguf").string();
  try {
    w3.write(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'nan'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(std::distance(fs::directory_iterator(d), fs::directory_iterator()), 0);
}

// ---- malformed files: one row per way a file can be wrong ----

namespace {
struct BadCase {
  const char* name;
  std::function<void(std::string& bytes, const Layout& at)> mutate;
  const char* expected;  // a substring of the error
};

constexpr uint64_t kHuge = uint64_t{1} << 60;

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      {"wrong magic", [](std::string& b, const Layout&) { b[3] = 'X'; }, "not a GGUF file"},
      {"empty file", [](std::string& b, const Layout&) { b.clear(); }, "not a GGUF file"},
      {"version 1", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.version, 1); }, "version 1"},
      {"version 4", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.version, 4); }, "version 4"},
      {"big-endian", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.version, 0x03000000); }, "big-endian"},
      {"huge metadata count", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.n_kv, kHuge); },
       "1152921504606846976 metadata entries"},
      {"huge tensor count", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.n_tensors, kHuge); },
       "1152921504606846976 tensors"},
      {"duplicate key", [](std::string& b, const Layout& at) { b.replace(at.list_key + 8, 12, "general.name"); },
       "duplicate metadata key 'general.name'"},
      {"huge string length", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.name_len, kHuge); },
       "a string of 1152921504606846976 bytes"},
      {"huge key length", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.name_key, kHuge); },
       "metadata entry 0 runs past the end"},
      {"huge array count", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.list_count, kHuge); },
       "an array of 1152921504606846976 i32 values"},
      {"nested array", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.list_element, 9); },
       "'general.nam2' is an array of arrays"},
      {"control bytes in a key",
       [](std::string& b, const Layout& at) {
         b[at.list_key + 8 + 7] = '\n';
         poke<uint32_t>(b, at.list_element, 9);
       },
       "metadata key 'general\\x0anam2' is an array of arrays"},
      {"unknown array element kind", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.list_element, 13); },
       "unknown value type 13"},
      {"unknown value kind", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.align_type, 99); },
       "'general.alignment' has an unknown value type 99"},
      {"alignment not a power of two", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.align_value, 48); },
       "'general.alignment' must be a u32 power of two, got 48"},
      {"alignment 0", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.align_value, 0); },
       "must be a u32 power of two, got 0"},
      {"alignment not a u32", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.align_type, 5); },
       "must be a u32 power of two, got a i32"},
      {"u64 above INT64_MAX", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.big_value, uint64_t{1} << 63); },
       "'big' holds the u64 9223372036854775808"},
      {"bool 2", [](std::string& b, const Layout& at) { poke<uint8_t>(b, at.flag_value, 2); },
       "'flag' holds a bool of value 2"},
      {"duplicate tensor", [](std::string& b, const Layout& at) { b[at.w1_name + 9] = '0'; },
       "duplicate tensor name 'w0'"},
      {"n_dims 5", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w0_ndims, 5); },
       "tensor 'w0' has 5 dimensions"},
      {"n_dims 0", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w0_ndims, 0); },
       "tensor 'w0' has 0 dimensions"},
      {"zero dimension", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w0_ne1, 0); },
       "tensor 'w0' has a dimension of size 0"},
      {"element count overflows",
       [](std::string& b, const Layout& at) {
         poke<uint64_t>(b, at.w0_ne0, uint64_t{1} << 32);
         poke<uint64_t>(b, at.w0_ne1, uint64_t{1} << 32);
       },
       "tensor 'w0' has dimensions whose product overflows"},
      {"byte size overflows", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w0_ne1, uint64_t{1} << 57); },
       "tensor 'w0' has a size in bytes that overflows"},
      {"unsupported type q4_K", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w0_type, 12); },
       "tensor 'w0' has type q4_K"},
      {"unsupported type i32", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w0_type, 26); },
       "has type i32"},
      {"unknown type 99", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w0_type, 99); },
       "has type type 99"},
      {"q8_0 rows of 48", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w1_ne0, 48); },
       "tensor 'w1' is q8_0 with rows of 48 values"},
      {"misaligned offset", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w1_offset, 260); },
       "tensor 'w1' has offset 260, not a multiple of the alignment 32"},
      {"offset past the end", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w1_offset, uint64_t{1} << 40); },
       "tensor 'w1' data (34 bytes at offset 1099511627776"},
      {"offset near 2^64", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w1_offset, ~uint64_t{31}); },
       "runs past the end of the file"},
      {"data cut short", [](std::string& b, const Layout&) { b.pop_back(); }, "tensor 'w1' data (34 bytes"},
      {"overlapping tensors", [](std::string& b, const Layout& at) { poke<uint64_t>(b, at.w1_offset, 224); },
       "tensors 'w0' and 'w1' overlap"},
      {"f32 in place of q8_0 past the end", [](std::string& b, const Layout& at) { poke<uint32_t>(b, at.w1_type, 0); },
       "tensor 'w1' data (128 bytes"},
  };
  return cases;
}
}  // namespace

TEST(GgufMalformed, TheBaseFileIsValid) {
  Layout at{};
  const fs::path p = temp_dir() / "base.gguf";
  write_bytes(p, base_file(at));
  const GgufFile f = GgufFile::open(p.string());
  EXPECT_EQ(f.get_string("general.name"), "tiny");
  EXPECT_EQ(f.get_int("big"), 5);
  EXPECT_EQ(load(f, "w0", DType::F32).f32()[63], 31.5f);
  EXPECT_EQ(load(f, "w1", DType::F32).f32()[0], -16.0f);
  // Version 2 has version 3's layout and is read too.
  std::string v2 = base_file(at);
  poke<uint32_t>(v2, at.version, 2);
  write_bytes(p, v2);
  EXPECT_EQ(GgufFile::open(p.string()).version(), 2u);
}

// A general.alignment set by the caller is the one the writer pads to.
TEST(GgufRoundTrip, WriterHonoursGeneralAlignment) {
  const fs::path p = temp_dir() / "a.gguf";
  GgufWriter w;
  w.set("general.alignment", GgufValue::of_u32(64));
  w.add_tensor("a", f32_tensor({3}, 0.0f), GgmlType::F32);
  w.add_tensor("b", f32_tensor({5}, 0.0f), GgmlType::F16);
  w.write(p.string());
  const GgufFile f = GgufFile::open(p.string());
  EXPECT_EQ(f.tensor("b").offset, 64u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data("a")) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data("b")) % 64, 0u);
  GgufWriter bad;
  bad.set("general.alignment", GgufValue::of_u32(24));
  EXPECT_THROW(bad.write((p.parent_path() / "bad.gguf").string()), Error);
}

TEST(GgufMalformed, EachIsRefusedInOneLineNamingFileAndProblem) {
  const fs::path d = temp_dir();
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.name);
    Layout at{};
    std::string bytes = base_file(at);
    c.mutate(bytes, at);
    const fs::path p = d / "bad.gguf";
    write_bytes(p, bytes);
    const std::string msg = open_error(p.string());
    EXPECT_NE(msg.find(c.expected), std::string::npos) << "got: " << (msg.empty() ? "no error" : msg);
  }
}

// Every proper prefix of a file (the base file, and a writer's up to its last tensor's end) is an
// Error, never a crash or a read past the mapping.
TEST(GgufMalformed, EveryTruncationIsAnError) {
  const fs::path d = temp_dir();
  Layout at{};
  const std::string base = base_file(at);
  const fs::path p = d / "cut.gguf";
  for (size_t n = 0; n < base.size(); ++n) {
    write_bytes(p, base.substr(0, n));
    EXPECT_NE(open_error(p.string()), "") << "prefix of " << n << " bytes opened";
  }
  GgufWriter w;
  w.set("tokens", GgufValue::of_strings({"x", "yz"}));
  w.set("eps", GgufValue::of_f32(0.5f));
  w.add_tensor("a", f32_tensor({3}, 0.0f), GgmlType::F16);
  w.add_tensor("q", f32_tensor({32}, 0.0f), GgmlType::Q8_0);
  const std::string written = (d / "w.gguf").string();
  w.write(written);
  const std::string full = read_file(written);
  const GgufTensor q = GgufFile::open(written).tensor("q");
  // The writer pads after the last tensor too (as gguf-py): its data ends before the padding.
  const uint64_t data_start = full.size() - (q.offset + q.bytes + 31) / 32 * 32;
  const size_t end_of_q = static_cast<size_t>(data_start + q.offset + q.bytes);
  ASSERT_LT(end_of_q, full.size());
  for (size_t n = 0; n < end_of_q; ++n) {
    write_bytes(p, full.substr(0, n));
    EXPECT_NE(open_error(p.string()), "") << "prefix of " << n << " bytes opened";
  }
  write_bytes(p, full.substr(0, end_of_q));  // without the trailing padding it is complete
  EXPECT_EQ(open_error(p.string()), "");
}

// Random bytes overwritten and random cuts: each file loads or is an Error, never a crash.
TEST(GgufMalformed, RandomCorruptionLoadsOrThrowsNeverCrashes) {
  const fs::path d = temp_dir();
  Layout at{};
  const std::string good = base_file(at);
  const std::string p = (d / "mutant.gguf").string();
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  for (int iter = 0; iter < 500; ++iter) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) bytes[next() % bytes.size()] = static_cast<char>(next() & 0xff);
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    write_bytes(p, bytes);
    open_error(p);
  }
}
