#include "text/hf_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "text/byte_alphabet.h"
#include "text/nfc.h"

namespace frugal {

namespace {

// Reports the bytes of the input done, at most about once a MiB. Pieces that are not views of the
// input (normalized or prefixed copies) are skipped: the next piece that is one reports.
struct Progress {
  std::string_view text;
  const std::function<void(size_t)>& hear;
  size_t next = size_t{1} << 20;
  void at(std::string_view piece) {
    if (!hear || piece.data() < text.data() || piece.data() + piece.size() > text.data() + text.size()) return;
    const auto done = static_cast<size_t>(piece.data() + piece.size() - text.data());
    if (done < next) return;
    hear(done);
    next = done + (size_t{1} << 20);
  }
};

}  // namespace

std::vector<int32_t> HfTokenizer::encode(std::string_view text) {
  std::vector<int32_t> out;
  encode_append(text, out);
  return out;
}

void HfTokenizer::encode_append(std::string_view text, std::vector<int32_t>& out,
                                const std::function<void(size_t bytes_done)>& progress) {
  Progress p{text, progress};
  // The stages nest rather than build lists: added tokens on the raw text, then normalization of
  // each stretch between them, then added tokens that match normalized text, then pre-tokenization.
  const auto piece = [&](std::string_view s) {
    model_.encode_piece(s, out);
    p.at(s);
  };
  const auto normalized = [&](std::string_view s, int32_t id) {
    if (id >= 0) out.push_back(id);
    else pre_tokenizer_.split(s, piece);
  };
  raw_matcher_.split(text, [&](std::string_view s, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
      p.at(s);
      return;
    }
    std::string copy;
    const std::string_view n = nfc_ && nfc_normalize(s, copy) ? std::string_view(copy) : s;
    normalized_matcher_.split(n, normalized);
  });
}

const std::string& HfTokenizer::token_bytes(int32_t id) const {
  const std::string* bytes = model_.token(id);
  if (!bytes)  // (not check(): decode calls this per token)
    throw Error("token id " + std::to_string(id) + " is not in the tokenizer's vocabulary (ids 0.." +
                std::to_string(vocab_size() - 1) + ")");
  return *bytes;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

int32_t HfTokenizer::token_id(std::string_view written) const {
  for (const AddedToken& t : added_)
    if (t.content == written) return t.id;
  const std::optional<std::string> bytes = alphabet_to_bytes(written);
  return bytes ? model_.find(*bytes) : -1;
}

bool HfTokenizer::is_special(int32_t id) const {
  return std::any_of(added_.begin(), added_.end(), [&](const AddedToken& t) { return t.id == id && t.special; });
}

int32_t HfTokenizer::checked_id(int32_t id, const char* what) const {
  check(id == -1 || model_.token(id) != nullptr,
        std::string(what) + " id " + std::to_string(id) + " is not a token of the tokenizer (ids 0.." +
            std::to_string(vocab_size() - 1) + ")");
  return id;
}

void HfTokenizer::set_bos_id(int32_t id) { bos_id_ = checked_id(id, "BOS"); }
void HfTokenizer::set_eos_id(int32_t id) { eos_id_ = checked_id(id, "EOS"); }

bool HfTokenizer::adds_bos() const {
  return bos_id_ >= 0 && std::find(template_prefix_.begin(), template_prefix_.end(), bos_id_) != template_prefix_.end();
}

void HfTokenizer::set_split_special_tokens(bool on) {
  split_special_tokens_ = on;
  build_matchers();
}

void HfTokenizer::build_matchers() {
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const AddedToken& t : added_) {
    if (t.special && split_special_tokens_) continue;
    if (!t.normalized) {
      raw.push_back(t);
      raw_patterns.push_back(t.content);
      continue;
    }
    std::string n;  // a normalized token is looked for in its normalized form
    normalized.push_back(t);
    normalized_patterns.push_back(nfc_ && nfc_normalize(t.content, n) ? n : t.content);
  }
  raw_matcher_ = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
  normalized_matcher_ = AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));
}

}  // namespace frugal
