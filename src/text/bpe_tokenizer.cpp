#include "text/bpe_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "text/byte_alphabet.h"
#include "text/pretokenizer.h"

namespace frugal {

namespace {

struct FilePair {
  std::string vocab, merges;
};

// The tokenizer files of `dir`, or "" names when it has neither pair.
FilePair tokenizer_files(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const auto& [vocab, merges] : {std::pair{"vocab.json", "merges.txt"}, std::pair{"encoder.json", "vocab.bpe"}}) {
    const std::string v = dir + "/" + vocab, m = dir + "/" + merges;
    if (fs::exists(v) || fs::exists(m)) {
      check(fs::exists(v) && fs::exists(m), dir + ": has " + (fs::exists(v) ? v : m) + " but not " + (fs::exists(v) ? m : v));
      return {v, m};
    }
  }
  return {};
}

std::string shown(std::string_view token) {
  std::string s(token.substr(0, 40));
  return "'" + s + (token.size() > 40 ? "...'" : "'");
}

}  // namespace

bool BpeTokenizer::present(const std::string& dir) {
  namespace fs = std::filesystem;
  return (fs::exists(dir + "/vocab.json") && fs::exists(dir + "/merges.txt")) ||
         (fs::exists(dir + "/encoder.json") && fs::exists(dir + "/vocab.bpe"));
}

void BpeTokenizer::copy_files(const std::string& from, const std::string& to) {
  const FilePair files = tokenizer_files(from);
  check(!files.vocab.empty(), from + ": no tokenizer files to copy");
  if (std::filesystem::equivalent(from, to)) return;
  for (const std::string& path : {files.vocab, files.merges})
    write_file_atomic(to + "/" + std::filesystem::path(path).filename().string(), read_file(path));
}

BpeTokenizer BpeTokenizer::load(const std::string& dir) {
  check(std::filesystem::is_directory(dir), "tokenizer directory " + dir + " does not exist");
  const FilePair files = tokenizer_files(dir);
  check(!files.vocab.empty(), dir + ": no tokenizer files (expected vocab.json + merges.txt, or encoder.json + vocab.bpe)");
  return from_text(read_file(files.vocab), read_file(files.merges), files.vocab + " and " + files.merges);
}

BpeTokenizer BpeTokenizer::from_text(std::string_view vocab_json, std::string_view merges, const std::string& source) {
  BpeTokenizer t;
  t.read_vocabulary(vocab_json, source);
  t.read_merges(merges, source);
  return t;
}

void BpeTokenizer::read_vocabulary(std::string_view vocab_json, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(vocab_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": the vocabulary is not valid JSON (" + e.what() + ")");
  }
  check(j.is_object() && !j.empty(), source + ": the vocabulary is not a JSON object of token -> id");
  const int64_t n = static_cast<int64_t>(j.size());
  for (const auto& [text, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= n)
      throw Error(source + ": token " + shown(text) + " has id " + id.dump() + ", not one of 0.." + std::to_string(n - 1));
    std::optional<std::string> bytes = alphabet_to_bytes(text);
    if (!bytes) throw Error(source + ": token " + shown(text) + " is not written in GPT-2's byte alphabet");
    if (!model_.add_token(id.get<int32_t>(), std::move(*bytes)))
      throw Error(source + ": id " + id.dump() + " is given to two tokens");
  }
  const int missing = model_.missing_byte_token();
  check(missing < 0, source + ": the vocabulary lacks the single-byte token of byte " + std::to_string(missing));
  end_of_text_ = model_.find(kEndOfText);
}

void BpeTokenizer::read_merges(std::string_view text, const std::string& source) {
  int64_t line_number = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.starts_with("#version") || line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::vector<std::string_view> symbols;
    for (size_t i = 0; i < line.size();) {
      const size_t a = line.find_first_not_of(" \t\r", i);
      if (a == std::string_view::npos) break;
      const size_t b = std::min(line.find_first_of(" \t\r", a), line.size());
      symbols.push_back(line.substr(a, b - a));
      i = b;
    }
    // (No check() in this loop: its message would be built for each of the 50,000 lines.)
    const auto where = [&] { return source + ": merges line " + std::to_string(line_number); };
    if (symbols.size() != 2)
      throw Error(where() + " has " + std::to_string(symbols.size()) + " symbols, not 2: " + shown(line));
    const std::string problem = model_.add_merge(symbols[0], symbols[1]);
    if (!problem.empty()) throw Error(where() + ": " + problem + " (the two files disagree)");
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) {
  std::vector<int32_t> out;
  encode_append(text, out);
  return out;
}

void BpeTokenizer::encode_append(std::string_view text, std::vector<int32_t>& out,
                                 const std::function<void(size_t bytes_done)>& progress) {
  size_t next_report = size_t{1} << 20;
  pretokenize(text, [&](std::string_view piece) {
    model_.encode_piece(piece, out);
    const auto done = static_cast<size_t>(piece.data() + piece.size() - text.data());
    if (progress && done >= next_report) {
      progress(done);
      next_report = done + (size_t{1} << 20);
    }
  });
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  const std::string* bytes = model_.token(id);
  if (!bytes)  // (not check(): decode calls this per token)
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(vocab_size() - 1) + ")");
  return *bytes;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

}  // namespace frugal
