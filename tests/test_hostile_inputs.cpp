// Hostile inputs through the command line (issue 8): truncated, corrupt and malicious files for
// every parser (safetensors, config.json, PEFT adapters, batches, images) and bad flag values.
// Each must give a non-zero exit and one line naming the problem: no crash, no hang, no silent
// wrong answer. scripts/test.sh runs this under AddressSanitizer + UBSan too.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cli_support.h"

namespace fs = std::filesystem;
using namespace frugal::testing;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file: 8-byte little-endian header length, the header, the data.
std::string safetensors(const std::string& header, const std::string& data, uint64_t claimed_length = 0) {
  std::string out(8, '\0');
  const uint64_t n = claimed_length ? claimed_length : header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// A small GPT model directory and a PEFT adapter for it, made once.
const fs::path& model_dir() {
  static const fs::path dir = [] {
    const fs::path d = scratch("hostile-model");
    const CliResult r = run_frugal("train --arch gpt --layers 1 --dim 16 --heads 2 --ctx 8 --vocab 256 --data synthetic "
                                   "--steps 1 --micro-batch 2 --lora-rank 2 --save " + (d / "model").string() +
                                   " --save-adapter " + (d / "adapter").string());
    EXPECT_EQ(r.status, 0) << r.err;
    return d;
  }();
  return dir;
}

// A copy of the model (or adapter) directory with one file replaced.
fs::path with_file(const std::string& name, const std::string& what, const std::string& file, const std::string& bytes) {
  const fs::path d = scratch("hostile-" + name);
  fs::remove_all(d);
  fs::copy(model_dir() / what, d, fs::copy_options::recursive);
  if (bytes == "<delete>") fs::remove(d / file);
  else write(d / file, bytes);
  return d;
}

struct Case {
  std::string name;
  std::function<std::string()> command;  // frugal arguments
  std::string fragment;                  // the error line must name this
};

std::string grad_on(const fs::path& model) {
  const fs::path batch = scratch("hostile-batch") / "ok.safetensors";
  if (!fs::exists(batch)) {  // a valid batch: inputs/targets I32 (2, 8)
    std::string data(2 * 2 * 8 * 4, '\0');
    write(batch, safetensors(R"({"inputs":{"dtype":"I32","shape":[2,8],"data_offsets":[0,64]},)"
                             R"("targets":{"dtype":"I32","shape":[2,8],"data_offsets":[64,128]}})", data));
  }
  return "grad --model " + model.string() + " --batch " + batch.string() + " --out " +
         (scratch("hostile-out") / "g.safetensors").string();
}

std::string grad_with_batch(const std::string& name, const std::string& bytes) {
  const fs::path batch = scratch("hostile-batch") / (name + ".safetensors");
  write(batch, bytes);
  return "grad --model " + (model_dir() / "model").string() + " --batch " + batch.string() + " --out " +
         (scratch("hostile-out") / "g.safetensors").string();
}

std::string weights(const std::string& name, const std::string& bytes) {
  return grad_on(with_file(name, "model", "model.safetensors", bytes));
}
std::string config(const std::string& name, const std::string& json) {
  return grad_on(with_file(name, "model", "config.json", json));
}
std::string adapter(const std::string& name, const std::string& file, const std::string& bytes) {
  return "generate --model " + (model_dir() / "model").string() + " --adapter " +
         with_file(name, "adapter", file, bytes).string() + " --prompt ab --tokens 2";
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // safetensors: lengths, JSON, dtypes, shapes, offsets, names
      {"truncated to 5 bytes", [] { return weights("st-5", "abcde"); }, "model.safetensors"},
      {"header length past the end", [] { return weights("st-len", safetensors("{}", "", 1u << 30)); }, "model.safetensors"},
      {"header length 2^63", [] { return weights("st-huge", safetensors("{}", "", uint64_t{1} << 63)); }, "model.safetensors"},
      {"header not JSON", [] { return weights("st-json", safetensors("{\"a\": [", "")); }, "model.safetensors"},
      {"header not UTF-8", [] { return weights("st-utf8", safetensors("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd")); }, "model.safetensors"},
      {"unknown dtype", [] { return weights("st-dtype", safetensors(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"negative dimension", [] { return weights("st-neg", safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"huge dimensions", [] { return weights("st-dims", safetensors(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"negative offset", [] { return weights("st-off", safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd")); }, "model.safetensors"},
      {"offsets past the data", [] { return weights("st-past", safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "abcd")); }, "model.safetensors"},
      {"offsets that overflow", [] { return weights("st-ovf", safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}})", "abcd")); }, "model.safetensors"},
      {"overlapping tensors", [] { return weights("st-overlap", safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"size disagrees with shape", [] { return weights("st-size", safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"a tensor is missing", [] { return weights("st-missing", safetensors(R"({"wte.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd")); }, "model.safetensors"},
      {"weights file deleted", [] { return weights("st-deleted", "<delete>"); }, "model.safetensors"},
      // config.json
      {"config not JSON", [] { return config("cfg-json", "{\"n_layer\": 1,"); }, "config.json"},
      {"config huge n_layer", [] { return config("cfg-layers", R"({"n_layer":1000000000,"n_head":2,"n_embd":16,"n_positions":8,"vocab_size":256})"); }, "n_layer"},
      {"config n_embd not divisible", [] { return config("cfg-div", R"({"n_layer":1,"n_head":3,"n_embd":16,"n_positions":8,"vocab_size":256})"); }, "divisible"},
      {"config wrong type", [] { return config("cfg-type", R"({"n_layer":"one","n_head":2,"n_embd":16,"n_positions":8,"vocab_size":256})"); }, "n_layer"},
      {"config unknown architecture", [] { return config("cfg-arch", R"({"frugal_arch":"rnn"})"); }, "rnn"},
      // PEFT adapters
      {"adapter config not JSON", [] { return adapter("ad-json", "adapter_config.json", "not json"); }, "adapter_config.json"},
      {"adapter rank negative", [] { return adapter("ad-rank", "adapter_config.json", R"({"r":-2,"lora_alpha":2,"target_modules":["c_attn"]})"); }, "adapter"},
      {"adapter weights truncated", [] { return adapter("ad-trunc", "adapter_model.safetensors", "\x10\x00\x00"); }, "adapter_model.safetensors"},
      // batches
      {"batch tokens out of the vocabulary", [] {
         std::string data(2 * 2 * 8 * 4, '\0');
         data[0] = '\x00'; data[1] = '\x10';  // token 4096 >= vocab 256
         return grad_with_batch("vocab", safetensors(R"({"inputs":{"dtype":"I32","shape":[2,8],"data_offsets":[0,64]},)"
                                                     R"("targets":{"dtype":"I32","shape":[2,8],"data_offsets":[64,128]}})", data));
       }, "token"},
      {"batch of floats for a GPT", [] {
         std::string data(2 * 2 * 8 * 4, '\0');
         return grad_with_batch("float", safetensors(R"({"inputs":{"dtype":"F32","shape":[2,8],"data_offsets":[0,64]},)"
                                                     R"("targets":{"dtype":"I32","shape":[2,8],"data_offsets":[64,128]}})", data));
       }, "inputs"},
      // images
      {"image that is not one", [] {
         const fs::path p = scratch("hostile-img") / "text.png";
         write(p, "this is not a PNG");
         return "svd " + p.string() + " --ranks 1 --out " + (scratch("hostile-img") / "out").string();
       }, "text.png"},
      {"truncated PNG", [] {
         const fs::path p = scratch("hostile-img") / "cut.png";
         write(p, std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10", 20));
         return "svd " + p.string() + " --ranks 1 --out " + (scratch("hostile-img") / "out").string();
       }, "cut.png"},
      // flag values
      {"size with an unknown unit", [] { return std::string("plan --checkpoint optimal --activation-budget 12XB"); }, "12XB"},
      {"micro-batch 0", [] { return std::string("train --micro-batch 0 --steps 1"); }, "--micro-batch"},
      {"unknown architecture", [] { return std::string("train --arch rnn --steps 1"); }, "--arch"},
      {"resume from nothing", [] { return "train --resume " + (scratch("hostile-none") / "nothing").string(); }, "--resume"},
  };
  return all;
}

}  // namespace

TEST(HostileInputs, EachGivesOneLineAndANonZeroExit) {
  ASSERT_GE(cases().size(), 20u);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    expect_one_line_error(run_frugal(c.command()), c.fragment);
  }
}
