#pragma once
// Strings of the interpreter: UTF-8 bytes with an optional per-byte provenance (which message's
// content each byte came from), the builder that concatenates them, and the Unicode helpers the
// string operations need (code points, JavaScript's whitespace set, case mapping).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::jinja {

struct Text {
  std::string bytes;
  std::vector<int32_t> prov;  // empty: every byte -1 (the common case stays cheap)
  int32_t tag(size_t i) const { return prov.empty() ? -1 : prov[i]; }
};
using TextPtr = std::shared_ptr<const Text>;

TextPtr make_text(std::string bytes, int32_t tag = -1);

// Concatenates texts, keeping provenance; the provenance vector appears with the first tagged byte.
class TextBuilder {
 public:
  void append(std::string_view bytes);  // template bytes (-1)
  void append(const Text& t, size_t begin, size_t end);
  void append(const Text& t) { append(t, 0, t.bytes.size()); }
  size_t size() const { return t_.bytes.size(); }
  const Text& peek() const { return t_; }
  Text take() { return std::move(t_); }
  TextPtr finish() { return std::make_shared<const Text>(std::move(t_)); }

 private:
  Text t_;
};

// The part [begin, end) of `t` as a text of its own.
TextPtr sub_text(const Text& t, size_t begin, size_t end);

bool valid_utf8(std::string_view s);
// The code point starting at s[i] (s is valid UTF-8); advances i past it.
uint32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(uint32_t cp, std::string& out);
// Byte offsets of every code point of s, then s.size().
std::vector<size_t> code_point_starts(std::string_view s);
size_t code_point_count(std::string_view s);

// JavaScript's whitespace (String.prototype.trim, \s): what @huggingface/jinja strips.
bool js_space(uint32_t cp);
size_t skip_space_forward(std::string_view s, size_t from);  // first non-space at or after from
size_t skip_space_back(std::string_view s, size_t to);       // end of s[0, to) without trailing spaces

// Full Unicode case mapping (ß -> SS), as JavaScript's toUpperCase/toLowerCase.
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);

}  // namespace frugal::jinja
