#include "text/bpe_tokenizer.h"

#include <filesystem>
#include <queue>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "text/byte_alphabet.h"
#include "text/pretokenizer.h"

namespace frugal {

namespace {

// A piece seen this often is worth remembering; the cache is dropped when it reaches this size, so
// a long stream of new pieces cannot grow it without bound.
constexpr size_t kMaxCachedPieces = size_t{1} << 20;
constexpr size_t kMaxCachedPieceBytes = 256;  // longer pieces are rare and would bloat the cache

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
  tokens_.assign(static_cast<size_t>(n), std::string());
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (const auto& [text, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= n)
      throw Error(source + ": token " + shown(text) + " has id " + id.dump() + ", not one of 0.." + std::to_string(n - 1));
    const auto k = static_cast<size_t>(id.get<int64_t>());
    if (seen[k]) throw Error(source + ": id " + std::to_string(k) + " is given to two tokens");
    const std::optional<std::string> bytes = alphabet_to_bytes(text);
    if (!bytes) throw Error(source + ": token " + shown(text) + " is not written in GPT-2's byte alphabet");
    seen[k] = true;
    tokens_[k] = *bytes;
    ids_.emplace(*bytes, static_cast<int32_t>(k));
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = ids_.find(std::string(1, static_cast<char>(b)));
    check(it != ids_.end(), source + ": the vocabulary lacks the single-byte token of byte " + std::to_string(b));
    byte_ids_[b] = it->second;
  }
  const auto eot = ids_.find(std::string(kEndOfText));
  end_of_text_ = eot == ids_.end() ? -1 : eot->second;
}

void BpeTokenizer::read_merges(std::string_view text, const std::string& source) {
  int64_t line_number = 0;
  int32_t rank = 0;
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
    int32_t parts[2];
    std::string joined;
    for (int k = 0; k < 2; ++k) {
      const std::optional<std::string> bytes = alphabet_to_bytes(symbols[k]);
      const auto it = bytes ? ids_.find(*bytes) : ids_.end();
      if (it == ids_.end()) throw Error(where() + ": " + shown(symbols[k]) + " is not in the vocabulary (the two files disagree)");
      parts[k] = it->second;
      joined += *bytes;
    }
    const auto merged = ids_.find(joined);
    if (merged == ids_.end())
      throw Error(where() + " makes " + shown(bytes_to_alphabet(joined)) + ", which the vocabulary lacks (the two files disagree)");
    merges_.emplace(pair_key(parts[0], parts[1]), Merge{rank++, merged->second});  // a repeated pair keeps its first rank
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
    encode_piece(piece, out);
    const auto done = static_cast<size_t>(piece.data() + piece.size() - text.data());
    if (progress && done >= next_report) {
      progress(done);
      next_report = done + (size_t{1} << 20);
    }
  });
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) {
  if (const auto hit = cache_.find(piece); hit != cache_.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> symbols;
  symbols.reserve(piece.size());
  for (unsigned char b : piece) symbols.push_back(byte_ids_[b]);
  apply_merges(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (piece.size() > kMaxCachedPieceBytes) return;
  if (cache_.size() >= kMaxCachedPieces) cache_.clear();
  cache_.emplace(std::string(piece), std::move(symbols));
}

void BpeTokenizer::apply_merges(std::vector<int32_t>& symbols) const {
  // GPT-2's loop (merge every occurrence of the lowest-ranked pair, left to right, then look again)
  // costs O(n^2) on an n-byte piece: a megabyte without a space would take hours. The same merges in
  // O(n log n): candidate pairs in a heap by (rank, position), the symbols in a linked list, and a
  // popped pair skipped when either side has changed since. Equal ranks pop left to right, and a pair
  // made by a merge has a higher rank than that merge (its token had to exist first), so the order
  // of merges is GPT-2's.
  check(symbols.size() < (size_t{1} << 31), "tokenizer: a piece of text of 2 GiB or more without a break");
  const auto n = static_cast<int32_t>(symbols.size());
  if (n < 2) return;
  struct Candidate {
    int32_t rank, left, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<int32_t> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
  for (int32_t k = 0; k < n; ++k) next[k] = k + 1 < n ? k + 1 : -1, prev[k] = k - 1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto consider = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges_.find(pair_key(symbols[left], symbols[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left, symbols[left], symbols[next[left]]});
  };
  for (int32_t k = 0; k + 1 < n; ++k) consider(k);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t right = next[c.left];
    if (right < 0 || symbols[c.left] != c.left_id || symbols[right] != c.right_id) continue;  // changed since
    symbols[c.left] = merges_.at(pair_key(c.left_id, c.right_id)).merged;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    symbols[right] = -1;  // gone (ids are >= 0, so no candidate matches it)
    consider(prev[c.left]);
    consider(c.left);
  }
  int32_t w = 0;
  for (int32_t k = 0; k >= 0; k = next[k]) symbols[w++] = symbols[k];
  symbols.resize(static_cast<size_t>(w));
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(tokens_.size()))  // (not check(): decode calls this per token)
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(tokens_.size() - 1) + ")");
  return tokens_[static_cast<size_t>(id)];
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

}  // namespace frugal
