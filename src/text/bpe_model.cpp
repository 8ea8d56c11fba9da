#include "text/bpe_model.h"

#include <queue>

#include "core/error.h"
#include "text/byte_alphabet.h"

namespace frugal {

namespace {

// A piece seen this often is worth remembering; the cache is dropped when it reaches this size, so
// a long stream of new pieces cannot grow it without bound.
constexpr size_t kMaxCachedPieces = size_t{1} << 20;
constexpr size_t kMaxCachedPieceBytes = 256;  // longer pieces are rare and would bloat the cache

std::string shown(std::string_view token) {
  std::string s(token.substr(0, 40));
  return "'" + s + (token.size() > 40 ? "...'" : "'");
}

}  // namespace

bool BpeModel::add_token(int32_t id, std::string bytes, bool matchable) {
  const auto k = static_cast<size_t>(id);
  if (k >= tokens_.size()) {
    tokens_.resize(k + 1);
    present_.resize(k + 1, false);
  }
  if (present_[k]) return false;
  present_[k] = true;
  ++token_count_;
  if (matchable) ids_.emplace(bytes, id);  // two ids for the same bytes: the first is the one BPE makes
  tokens_[k] = std::move(bytes);
  return true;
}

int32_t BpeModel::find(std::string_view bytes) const {
  const auto it = ids_.find(bytes);
  return it == ids_.end() ? -1 : it->second;
}

int BpeModel::missing_byte_token() {
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = find(std::string(1, static_cast<char>(b)));
    if (byte_ids_[b] < 0) return b;
  }
  return -1;
}

std::string BpeModel::add_merge(std::string_view left, std::string_view right) {
  int32_t parts[2];
  std::string joined;
  for (int k = 0; k < 2; ++k) {
    const std::string_view symbol = k == 0 ? left : right;
    const std::optional<std::string> bytes = alphabet_to_bytes(symbol);
    parts[k] = bytes ? find(*bytes) : -1;
    if (parts[k] < 0) return shown(symbol) + " is not in the vocabulary";
    joined += *bytes;
  }
  const int32_t merged = find(joined);
  if (merged < 0) return "makes " + shown(bytes_to_alphabet(joined)) + ", which the vocabulary lacks";
  merges_.emplace(pair_key(parts[0], parts[1]), Merge{static_cast<int32_t>(merges_.size()), merged});
  return {};
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) {
  if (const auto hit = cache_.find(piece); hit != cache_.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> symbols;
  if (const int32_t whole = ignore_merges_ ? find(piece) : -1; whole >= 0) {
    symbols.push_back(whole);
  } else {
    symbols.reserve(piece.size());
    for (unsigned char b : piece) symbols.push_back(byte_ids_[b]);
    apply_merges(symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (piece.size() > kMaxCachedPieceBytes) return;
  if (cache_.size() >= kMaxCachedPieces) cache_.clear();
  cache_.emplace(std::string(piece), std::move(symbols));
}

void BpeModel::apply_merges(std::vector<int32_t>& symbols) const {
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

}  // namespace frugal
