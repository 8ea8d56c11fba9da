// I/O layer: atomic writes, safetensors round trips and malformed-file rejection, IDX and
// Fashion-MNIST loading, text corpora.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/ledger.h"
#include "core/tensor.h"
#include "io/atomic_file.h"
#include "io/fashion_mnist.h"
#include "io/idx.h"
#include "io/safetensors.h"
#include "io/text_corpus.h"

using namespace frugal;
namespace fs = std::filesystem;

namespace {

// A fresh, empty directory per test.
fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::path(::testing::TempDir()) /
               ("frugal_io_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
                std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a literal header and data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

// Expects opening (and loading every tensor of) `bytes` to throw an Error mentioning `needle`.
void expect_rejected(const std::string& bytes, const std::string& needle) {
  const fs::path p = temp_dir() / "bad.safetensors";
  write_bytes(p, bytes);
  try {
    SafetensorsFile f = SafetensorsFile::open(p.string());
    for (const auto& name : f.names()) f.load(name, MemCategory::Params);
    FAIL() << "no error; expected one mentioning: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << "names the file: " << e.what();
  }
}

Tensor f32_tensor(const Shape& s, float start) {
  Tensor t = Tensor::empty(s, DType::F32, MemCategory::Params);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = start + 0.25f * static_cast<float>(i);
  return t;
}

std::string gzip_bytes(const fs::path& p, const std::string& bytes) {
  gzFile g = gzopen(p.c_str(), "wb");
  EXPECT_NE(g, nullptr);
  EXPECT_EQ(gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(g);
  return p.string();
}

std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload) {
  std::string out;
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  };
  be32(magic);
  for (uint32_t d : dims) be32(d);
  out.append(payload.begin(), payload.end());
  return out;
}

}  // namespace

// ---- atomic files ----

TEST(IoAtomicFile, ReplacesTargetAndLeavesNoTemporary) {
  const fs::path d = temp_dir();
  const std::string p = (d / "out.bin").string();
  write_file_atomic(p, std::string("old contents"));
  write_file_atomic(p, std::string("new"));
  EXPECT_EQ(read_file(p), "new");
  int n = 0;
  for (const auto& e : fs::directory_iterator(d)) {
    ++n;
    EXPECT_EQ(e.path().filename(), "out.bin");
  }
  EXPECT_EQ(n, 1);
}

TEST(IoAtomicFile, FailedProducerKeepsOldFile) {
  const fs::path d = temp_dir();
  const std::string p = (d / "out.bin").string();
  write_file_atomic(p, std::string("keep me"));
  EXPECT_THROW(write_file_atomic(p,
                                 [](const ByteSink& sink) {
                                   sink("partial", 7);
                                   throw Error("producer failed");
                                 }),
               Error);
  EXPECT_EQ(read_file(p), "keep me");
  EXPECT_FALSE(fs::exists(p + ".tmp." + std::to_string(::getpid())));
}

TEST(IoAtomicFile, ErrorsNameThePath) {
  const fs::path d = temp_dir();
  try {
    read_file((d / "missing").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open " + (d / "missing").string() + ": No such file or directory");
  }
  try {
    write_file_atomic((d / "no-such-dir" / "x").string(), std::string("x"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((d / "no-such-dir" / "x").string()), std::string::npos) << e.what();
  }
}

// ---- safetensors ----

TEST(IoSafetensors, RoundTripAllDtypesAndMetadata) {
  const fs::path p = temp_dir() / "model.safetensors";
  Tensor a = f32_tensor({2, 3}, -1.0f);
  Tensor h = Tensor::empty({5}, DType::F16, MemCategory::Params);
  Tensor b = Tensor::empty({2, 2}, DType::BF16, MemCategory::Params);
  Tensor n = Tensor::empty({1, 2, 1, 3}, DType::I32, MemCategory::Params);
  Tensor scalar = f32_tensor({}, 42.0f);
  Tensor empty = Tensor::empty({0, 7}, DType::F32, MemCategory::Params);
  const float hv[5] = {0.5f, -2.0f, 65504.0f, 1e-3f, 0.0f};
  for (int i = 0; i < 5; ++i) h.u16()[i] = f32_to_f16(hv[i]);
  const float bv[4] = {1.0f, -3.5f, 1e30f, 0.1f};
  for (int i = 0; i < 4; ++i) b.u16()[i] = f32_to_bf16(bv[i]);
  for (int i = 0; i < 6; ++i) n.i32()[i] = i * 1000 - 2500;

  write_safetensors(p.string(),
                    {{"z.weight", a}, {"half", h}, {"brain", b}, {"ids", n}, {"scalar", scalar}, {"nothing", empty}},
                    {{"format", "pt"}, {"note", "frugal test"}});

  SafetensorsFile f = SafetensorsFile::open(p.string());
  EXPECT_EQ(f.names(), (std::vector<std::string>{"z.weight", "half", "brain", "ids", "scalar", "nothing"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "frugal test");
  EXPECT_TRUE(f.contains("half"));
  EXPECT_FALSE(f.contains("__metadata__"));
  EXPECT_EQ(f.file_dtype("half"), "F16");
  EXPECT_EQ(f.file_dtype("brain"), "BF16");
  EXPECT_EQ(f.file_dtype("ids"), "I32");
  EXPECT_EQ(f.shape("ids"), (Shape{1, 2, 1, 3}));
  EXPECT_EQ(f.shape("scalar"), Shape{});

  Tensor a2 = f.load("z.weight", MemCategory::Params);
  ASSERT_EQ(a2.dtype(), DType::F32);
  EXPECT_EQ(std::memcmp(a2.raw(), a.raw(), a.nbytes()), 0);

  Tensor h32 = f.load("half", MemCategory::Params);  // F16 stored, F32 loaded
  ASSERT_EQ(h32.dtype(), DType::F32);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(h32.f32()[i], f16_to_f32(f32_to_f16(hv[i])));
  Tensor h16 = f.load("half", MemCategory::Params, DType::F16);  // kept as stored
  EXPECT_EQ(std::memcmp(h16.raw(), h.raw(), h.nbytes()), 0);

  Tensor b32 = f.load("brain", MemCategory::Params);
  ASSERT_EQ(b32.dtype(), DType::F32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b32.f32()[i], bf16_to_f32(f32_to_bf16(bv[i])));
  Tensor b16 = f.load("brain", MemCategory::Params, DType::BF16);
  EXPECT_EQ(std::memcmp(b16.raw(), b.raw(), b.nbytes()), 0);

  Tensor a16 = f.load("z.weight", MemCategory::Params, DType::BF16);  // F32 -> BF16 rounds
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a16.u16()[i], f32_to_bf16(a.f32()[i]));

  Tensor n2 = f.load("ids", MemCategory::Params);  // integers stay integers
  ASSERT_EQ(n2.dtype(), DType::I32);
  EXPECT_EQ(std::memcmp(n2.raw(), n.raw(), n.nbytes()), 0);

  EXPECT_EQ(f.load("scalar", MemCategory::Params).f32()[0], 42.0f);
  EXPECT_EQ(f.load("nothing", MemCategory::Params).shape(), (Shape{0, 7}));
  EXPECT_THROW(f.load("missing", MemCategory::Params), Error);
  EXPECT_THROW(f.load("z.weight", MemCategory::Params, DType::I32), Error);
}

TEST(IoSafetensors, HeaderIsPaddedToMultipleOf8) {
  const fs::path d = temp_dir();
  for (int len = 1; len <= 9; ++len) {
    const std::string p = (d / ("t" + std::to_string(len))).string();
    write_safetensors(p, {{std::string(static_cast<size_t>(len), 'x'), f32_tensor({3}, 1.0f)}});
    const std::string bytes = read_file(p);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + n + 12);
    EXPECT_EQ(bytes[8], '{');
    EXPECT_EQ(SafetensorsFile::open(p).load(std::string(static_cast<size_t>(len), 'x'), MemCategory::Params).f32()[2],
              1.5f);
  }
}

TEST(IoSafetensors, ReadsI64AsI32AndHandWrittenFiles) {
  // As torch would write it: I64 ids, an unsorted header, extra whitespace.
  int64_t ids[3] = {-100, 0, 2147483647};
  std::string data(reinterpret_cast<const char*>(ids), sizeof ids);
  float w = 3.0f;
  data.append(reinterpret_cast<const char*>(&w), 4);
  const fs::path p = temp_dir() / "batch.safetensors";
  write_bytes(p, safetensors_bytes(
                     R"( {"w": {"dtype": "F32", "shape": [1], "data_offsets": [24, 28]},
                          "targets": {"dtype": "I64", "shape": [1, 3], "data_offsets": [0, 24]},
                          "__metadata__": {}} )",
                     data));
  SafetensorsFile f = SafetensorsFile::open(p.string());
  EXPECT_EQ(f.names(), (std::vector<std::string>{"targets", "w"}));
  EXPECT_EQ(f.info("targets").dtype, DType::I32);
  Tensor t = f.load("targets", MemCategory::Activations);
  ASSERT_EQ(t.dtype(), DType::I32);
  EXPECT_EQ(t.shape(), (Shape{1, 3}));
  EXPECT_EQ(t.i32()[0], -100);
  EXPECT_EQ(t.i32()[2], 2147483647);
  EXPECT_EQ(f.load("w", MemCategory::Params).f32()[0], 3.0f);
}

TEST(IoSafetensors, LoadInMeasuringLedgerCopiesNothing) {
  const fs::path p = temp_dir() / "m.safetensors";
  write_safetensors(p.string(), {{"w", f32_tensor({4, 4}, 0.0f)}});
  SafetensorsFile f = SafetensorsFile::open(p.string());
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  Tensor t = f.load("w", MemCategory::Params);
  EXPECT_FALSE(t.has_data());
  EXPECT_EQ(ledger.live()[MemCategory::Params], 64u);
}

TEST(IoSafetensors, WriterRejectsBadInput) {
  const fs::path d = temp_dir();
  Tensor a = f32_tensor({2}, 0.0f);
  EXPECT_THROW(write_safetensors((d / "dup").string(), {{"a", a}, {"a", a}}), Error);
  EXPECT_THROW(write_safetensors((d / "meta").string(), {{"__metadata__", a}}), Error);
  EXPECT_THROW(write_safetensors((d / "undef").string(), {{"a", Tensor()}}), Error);
  EXPECT_FALSE(fs::exists(d / "dup"));
}

// ---- malformed safetensors: one row per way a file can be wrong ----

namespace {

struct MalformedFile {
  const char* name;  // the test's name
  std::string bytes;
  const char* error;  // what the Error must say (besides the file's path)
};

// An 8-byte header length of `n`, then `rest`.
std::string with_header_length(uint64_t n, const std::string& rest) {
  return std::string(reinterpret_cast<const char*>(&n), 8) + rest;
}

// A file with one tensor entry `entry` (JSON) under the name `name` and `data_bytes` zero bytes.
std::string one_tensor(const std::string& name, const std::string& entry, size_t data_bytes) {
  return safetensors_bytes("{\"" + name + "\": " + entry + "}", std::string(data_bytes, '\0'));
}

std::string i64_out_of_range() {
  const int64_t v[2] = {1, int64_t{1} << 40};
  return safetensors_bytes(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})",
                           std::string(reinterpret_cast<const char*>(v), 16));
}

const std::vector<MalformedFile>& malformed_files() {
  static const std::vector<MalformedFile> files = {
      {"EmptyFile", "", "shorter than the 8-byte header length"},
      {"FiveByteFile", "abcde", "shorter than the 8-byte header length"},
      {"HeaderLengthLargerThanFile", with_header_length(100, "{}"), "header length 100 exceeds the file size 10"},
      {"HeaderLengthHuge", with_header_length(uint64_t{1} << 56, "{}"), "exceeds the file size"},
      {"HeaderNotJson", safetensors_bytes("{\"a\": ", ""), "not valid JSON"},
      {"HeaderBinaryGarbage", safetensors_bytes(std::string("\0\xff\x01\x02", 4), ""), "not valid JSON"},
      // Found by fuzz/fuzz_safetensors.cpp: a number literal that overflows.
      {"NumberThatOverflows", safetensors_bytes("{\"b\": 88E8888000000000000000000.0887}", ""), "not valid JSON"},
      {"HeaderJsonArray", safetensors_bytes("[1, 2]", ""), "not a JSON object"},
      {"UnknownDtypeF64", one_tensor("w", R"({"dtype": "F64", "shape": [1], "data_offsets": [0, 8]})", 8),
       "tensor 'w' has unsupported dtype F64"},
      {"UnknownDtypeQ4", one_tensor("q", R"({"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]})", 1),
       "tensor 'q' has unsupported dtype Q4"},
      {"NegativeShape", one_tensor("w", R"({"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]})", 8),
       "tensor 'w' has a shape entry that is not a non-negative integer: -1"},
      {"FractionalShape", one_tensor("w", R"({"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]})", 4),
       "not a non-negative integer"},
      {"DataOffsetsBeyondFile", one_tensor("w", R"({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})", 8),
       "tensor 'w' has data_offsets [0, 16] beyond the data section of 8 bytes"},
      {"OffsetsDisagreeWithShape",
       one_tensor("h.0.attn.c_attn.weight", R"({"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 100]})", 100),
       "tensor 'h.0.attn.c_attn.weight' has data_offsets [0, 100] but shape [4, 8] F32 needs 128 bytes"},
      {"OffsetsNotTwoIntegers", one_tensor("w", R"({"dtype": "F32", "shape": [1], "data_offsets": [0]})", 4),
       "data_offsets must be two non-negative integers"},
      {"OffsetsBeginAfterEnd", one_tensor("w", R"({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]})", 4),
       "data_offsets [4, 0] with begin after end"},
      {"MissingDtype", one_tensor("w", R"({"shape": [1], "data_offsets": [0, 4]})", 4), "tensor 'w' has no dtype"},
      {"EntryNotAnObject", one_tensor("w", "3", 0), "tensor 'w' header entry is not an object"},
      {"OverlappingTensors",
       safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                         std::string(12, '\0')),
       "tensors 'a' and 'b' overlap"},
      {"I64OutOfInt32Range", i64_out_of_range(),
       "tensor 'ids' (I64) holds 1099511627776 at index 1, outside the int32 range"},
      {"FiveDimensions", one_tensor("w", R"({"dtype": "F32", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 4]})", 4),
       "tensor 'w' has 5 dimensions"},
      {"ShapeProductOverflows",
       one_tensor("w", R"({"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 4]})", 4),
       "whose size overflows"},
      // numel fits in int64 but numel * 4 bytes does not.
      {"ShapeBytesOverflow",
       one_tensor("w", R"({"dtype": "F32", "shape": [4611686018427387904, 2], "data_offsets": [0, 4]})", 4),
       "whose size overflows"},
      {"ShapeEntryBeyondInt64",
       one_tensor("w", R"({"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]})", 4),
       "whose size overflows"},
      {"MetadataNotStrings", safetensors_bytes(R"({"__metadata__": {"epoch": 3}})", ""),
       "__metadata__ value for 'epoch'"},
      {"MetadataNotAnObject", safetensors_bytes(R"({"__metadata__": [1]})", ""), "__metadata__ is not an object"},
  };
  return files;
}

class IoSafetensorsMalformed : public ::testing::TestWithParam<MalformedFile> {};

}  // namespace

TEST_P(IoSafetensorsMalformed, IsRejectedNamingFileAndProblem) { expect_rejected(GetParam().bytes, GetParam().error); }

INSTANTIATE_TEST_SUITE_P(Io, IoSafetensorsMalformed, ::testing::ValuesIn(malformed_files()),
                         [](const ::testing::TestParamInfo<MalformedFile>& info) { return info.param.name; });

TEST(IoSafetensorsFiles, MissingFileAndDirectory) {
  const fs::path d = temp_dir();
  EXPECT_THROW(SafetensorsFile::open((d / "absent.safetensors").string()), Error);
  EXPECT_THROW(SafetensorsFile::open(d.string()), Error);
}

// ---- IDX ----

TEST(IoIdx, RoundTripPlainAndGzip) {
  const fs::path d = temp_dir();
  std::vector<uint8_t> pixels(2 * 3 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 11);
  const std::string bytes = idx_bytes(0x00000803, {2, 3, 4}, pixels);
  write_bytes(d / "plain-idx3-ubyte", bytes);
  gzip_bytes(d / "img-idx3-ubyte.gz", bytes);
  for (const char* name : {"plain-idx3-ubyte", "img-idx3-ubyte.gz"}) {
    IdxArray a = read_idx((d / name).string());
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 4})) << name;
    EXPECT_EQ(a.data, pixels) << name;
    IdxArray first = read_idx((d / name).string(), 1);
    EXPECT_EQ(first.dims, (std::vector<int64_t>{1, 3, 4})) << name;
    EXPECT_EQ(first.data, std::vector<uint8_t>(pixels.begin(), pixels.begin() + 12)) << name;
  }
  gzip_bytes(d / "labels.gz", idx_bytes(0x00000801, {3}, {7, 0, 9}));
  IdxArray labels = read_idx((d / "labels.gz").string());
  EXPECT_EQ(labels.dims, (std::vector<int64_t>{3}));
  EXPECT_EQ(labels.data, (std::vector<uint8_t>{7, 0, 9}));
}

TEST(IoIdx, WrongMagicIsAnError) {
  const fs::path d = temp_dir();
  gzip_bytes(d / "a.gz", idx_bytes(0x08030000, {1}, {0}));
  EXPECT_THROW(read_idx((d / "a.gz").string()), Error);
  write_bytes(d / "float", idx_bytes(0x00000D01, {1}, {0, 0, 0, 0}));  // float payloads unsupported
  try {
    read_idx((d / "float").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0x00000D01"), std::string::npos) << e.what();
  }
  write_bytes(d / "short", "\0\0");
  EXPECT_THROW(read_idx((d / "short").string()), Error);
}

TEST(IoIdx, TruncatedPayloadIsAnError) {
  const fs::path d = temp_dir();
  const std::string bytes = idx_bytes(0x00000803, {10, 28, 28}, std::vector<uint8_t>(9 * 28 * 28, 1));
  write_bytes(d / "plain", bytes);
  gzip_bytes(d / "short.gz", bytes);
  for (const char* name : {"plain", "short.gz"}) {
    try {
      read_idx((d / name).string());
      FAIL() << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
  // A gzip stream cut off mid-way is an error too, not a silent short read.
  const std::string gz = read_file((d / "short.gz").string());
  write_bytes(d / "cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_THROW(read_idx((d / "cut.gz").string()), Error);
  // Trailing bytes mean the header lies about the size.
  write_bytes(d / "long", idx_bytes(0x00000801, {2}, {1, 2, 3}));
  EXPECT_THROW(read_idx((d / "long").string()), Error);
}

// ---- Fashion-MNIST ----

TEST(IoFashionMnist, MissingFileNamesThePackage) {
  const fs::path d = temp_dir();
  try {
    load_fashion_mnist(d.string(), /*train=*/true);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
    EXPECT_NE(msg.find((d / "train-images-idx3-ubyte.gz").string()), std::string::npos) << msg;
  }
}

TEST(IoFashionMnist, LoadsSyntheticFilesOutsideTheTrainingLedger) {
  const fs::path d = temp_dir();
  std::vector<uint8_t> pixels(3 * 28 * 28, 0);
  pixels[0] = 255;
  pixels[28 * 28] = 51;
  gzip_bytes(d / "t10k-images-idx3-ubyte.gz", idx_bytes(0x00000803, {3, 28, 28}, pixels));
  gzip_bytes(d / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x00000801, {3}, {4, 0, 9}));
  MemoryLedger training;
  LedgerScope scope(training);
  ImageDataset ds = load_fashion_mnist(d.string(), /*train=*/false);
  EXPECT_EQ(ds.images.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(ds.images.f32()[0], 1.0f);
  EXPECT_FLOAT_EQ(ds.images.f32()[28 * 28], 0.2f);  // 51 / 255.0f: one correctly rounded division, 0.2f itself
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{4, 0, 9}));
  EXPECT_EQ(training.live().total, 0u);  // a data set is not training memory
  EXPECT_EQ(load_fashion_mnist(d.string(), false, 2).labels.size(), 2u);

  gzip_bytes(d / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x00000801, {3}, {4, 10, 9}));
  EXPECT_THROW(load_fashion_mnist(d.string(), false), Error);
}

TEST(IoFashionMnist, LoadsInstalledTestSplit) {
  if (!fs::exists(kFashionMnistDir)) GTEST_SKIP() << kFashionMnistDir << " not installed";
  ImageDataset ds = load_fashion_mnist(kFashionMnistDir, /*train=*/false, 100);
  ASSERT_EQ(ds.images.shape(), (Shape{100, 1, 28, 28}));
  ASSERT_EQ(ds.labels.size(), 100u);
  float lo = 1.0f, hi = 0.0f;
  for (int64_t i = 0; i < ds.images.numel(); ++i) {
    lo = std::min(lo, ds.images.f32()[i]);
    hi = std::max(hi, ds.images.f32()[i]);
  }
  // Exact: p / 255.0f for bytes p lies in [0, 1] (division is monotone and 255 / 255 is 1). And the
  // data set's own content: 100 garments include bright pixels.
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 1.0f);
  EXPECT_GT(hi, 0.5f);
  std::vector<int> seen(10, 0);
  for (int32_t y : ds.labels) {
    ASSERT_GE(y, 0);
    ASSERT_LE(y, 9);
    seen[static_cast<size_t>(y)] = 1;
  }
  EXPECT_GE(std::count(seen.begin(), seen.end(), 1), 5);  // the split's first 100 labels cover most classes
}

// ---- text ----

TEST(IoText, LoadTextFileErrors) {
  const fs::path d = temp_dir();
  EXPECT_THROW(load_text_file((d / "missing.txt").string()), Error);
  write_bytes(d / "empty.txt", "");
  EXPECT_THROW(load_text_file((d / "empty.txt").string()), Error);
  write_bytes(d / "a.txt", "hello\n");
  EXPECT_EQ(load_text_file((d / "a.txt").string()), "hello\n");
}

TEST(IoText, FortunesDirectoryRules) {
  const fs::path d = temp_dir();
  try {
    load_fortunes_corpus(d.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fortunes"), std::string::npos) << e.what();
  }
  write_bytes(d / "b", "second\n%\nthird");
  write_bytes(d / "a", "first\r\n%\r\n");
  write_bytes(d / "a.dat", "binary index");
  write_bytes(d / "a.u8", "duplicate");
  fs::create_directories(d / "off");
  write_bytes(d / "off" / "c", "offensive");
  EXPECT_EQ(list_fortune_files(d.string()), (std::vector<std::string>{(d / "a").string(), (d / "b").string()}));
  EXPECT_EQ(load_fortunes_corpus(d.string()), "first\n\nsecond\n\nthird\n");
}

TEST(IoText, InstalledFortunesCorpus) {
  if (!fs::exists(kFortunesDir)) GTEST_SKIP() << kFortunesDir << " not installed";
  const std::string text = load_fortunes_corpus();
  EXPECT_GT(text.size(), 100000u);  // the installed files hold megabytes; a failed read gets far less
  EXPECT_EQ(text.find("\n%\n"), std::string::npos);
  EXPECT_NE(text.rfind("%\n", 0), 0u);  // nor as the first line
}

TEST(IoSafetensorsFiles, RandomCorruptionLoadsOrThrowsNeverCrashes) {
  const fs::path d = temp_dir();
  const std::string good_path = (d / "good").string();
  Tensor h = Tensor::zeros({3}, DType::F16, MemCategory::Params);
  write_safetensors(good_path, {{"a", f32_tensor({2, 3}, 0.0f)}, {"b", h}}, {{"k", "v"}});
  const std::string good = read_file(good_path);
  const std::string p = (d / "mutant").string();
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  for (int iter = 0; iter < 200; ++iter) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) bytes[next() % bytes.size()] = static_cast<char>(next() & 0xff);
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    write_bytes(p, bytes);
    try {
      SafetensorsFile f = SafetensorsFile::open(p);
      for (const auto& name : f.names()) f.load(name, MemCategory::Params);
    } catch (const Error&) {
    }
  }
}

namespace {
// This process's resident pages of mapped files (kB -> bytes), from /proc/self/status.
int64_t resident_file_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("RssFile:", 0) == 0) return std::stoll(line.substr(8)) * 1024;
  return -1;
}
}  // namespace

// Loading a tensor leaves none of its mapped file pages in the process: a 64 MiB tensor raises the
// resident file pages by far less than its size (without the release, by all of it).
TEST(Safetensors, LoadingReleasesTheMappedPages) {
  const std::string path = (std::filesystem::temp_directory_path() / ("frugal_release_" + std::to_string(getpid()) + ".safetensors")).string();
  {
    Tensor big = Tensor::zeros({16 << 20}, DType::F32, MemCategory::Workspace);  // 64 MiB
    write_safetensors(path, {{"big", big}}, {});
  }
  Tensor into = Tensor::empty({16 << 20}, DType::BF16, MemCategory::Workspace);
  into.fill_zero();  // its own pages resident before the measurement
  const int64_t before = resident_file_bytes();
  ASSERT_GE(before, 0);
  {
    const SafetensorsFile file = SafetensorsFile::open(path);
    file.load_into("big", into);
    // A count of pages, not a rounding: after the release only the header's page and the tensor's
    // partial edge pages can stay (kilobytes); 8 MiB, an eighth of the tensor, is far from both that
    // and the 64 MiB an unreleased mapping keeps.
    EXPECT_LT(resident_file_bytes() - before, int64_t{8} << 20);
  }
  std::filesystem::remove(path);
}
