#include "jinja/text.h"

#include <unicode/ucasemap.h>

#include "core/error.h"

namespace frugal::jinja {

TextPtr make_text(std::string bytes, int32_t tag) {
  Text t;
  if (tag >= 0) t.prov.assign(bytes.size(), tag);
  t.bytes = std::move(bytes);
  return std::make_shared<const Text>(std::move(t));
}

void TextBuilder::append(std::string_view bytes) {
  t_.bytes.append(bytes);
  if (!t_.prov.empty()) t_.prov.resize(t_.bytes.size(), -1);
}

void TextBuilder::append(const Text& t, size_t begin, size_t end) {
  if (begin >= end) return;
  const size_t old = t_.bytes.size();
  t_.bytes.append(t.bytes, begin, end - begin);
  if (t.prov.empty() && t_.prov.empty()) return;
  t_.prov.resize(old, -1);  // materializes an all -1 provenance
  if (t.prov.empty())
    t_.prov.resize(t_.bytes.size(), -1);
  else
    t_.prov.insert(t_.prov.end(), t.prov.begin() + static_cast<ptrdiff_t>(begin),
                   t.prov.begin() + static_cast<ptrdiff_t>(end));
}

TextPtr sub_text(const Text& t, size_t begin, size_t end) {
  TextBuilder b;
  b.append(t, begin, end);
  return b.finish();
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return false;
    i += n;
  }
  return true;
}

uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<size_t> code_point_starts(std::string_view s) {
  std::vector<size_t> starts;
  starts.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(s.size());
  return starts;
}

size_t code_point_count(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool js_space(uint32_t cp) {
  if (cp <= 32) return cp == 32 || (cp >= 9 && cp <= 13);
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

size_t skip_space_forward(std::string_view s, size_t from) {
  while (from < s.size()) {
    size_t next = from;
    if (!js_space(next_code_point(s, next))) break;
    from = next;
  }
  return from;
}

size_t skip_space_back(std::string_view s, size_t to) {
  while (to > 0) {
    size_t begin = to - 1;
    while (begin > 0 && (static_cast<unsigned char>(s[begin]) & 0xC0) == 0x80) --begin;
    size_t i = begin;
    if (!js_space(next_code_point(s, i))) break;
    to = begin;
  }
  return to;
}

namespace {

template <typename F>
std::string map_case(std::string_view s, F&& map) {
  UErrorCode err = U_ZERO_ERROR;
  UCaseMap* csm = ucasemap_open("", 0, &err);
  check(U_SUCCESS(err), "ICU case mapping is unavailable");
  std::string out(s.size() * 3 + 16, '\0');
  const int32_t n = map(csm, out.data(), static_cast<int32_t>(out.size()), s.data(), static_cast<int32_t>(s.size()), &err);
  ucasemap_close(csm);
  check(U_SUCCESS(err), "case mapping failed");
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string to_upper(std::string_view s) { return map_case(s, ucasemap_utf8ToUpper); }
std::string to_lower(std::string_view s) { return map_case(s, ucasemap_utf8ToLower); }

}  // namespace frugal::jinja
