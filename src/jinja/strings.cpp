#include "jinja/strings.h"

#include <cctype>

#include "core/error.h"

namespace frugal::jinja {

const Text& text_arg(Renderer& r, const Value* v, const std::string& what) {
  const Text* t = v ? v->text() : nullptr;
  if (!t) r.fail(what + " needs a string argument" + (v ? ", not a " + std::string(type_name(*v)) : ""));
  return *t;
}

int64_t int_arg(Renderer& r, const Value* v, int64_t fallback, const std::string& what) {
  if (!v || v->none() || v->undefined()) return fallback;
  if (const int64_t* i = v->as<int64_t>()) return *i;
  r.fail(what + " needs an integer argument, not a " + std::string(type_name(*v)));
}

bool bool_arg(Renderer& r, const Value* v, bool fallback, const std::string& what) {
  if (!v || v->undefined()) return fallback;
  if (const bool* b = v->as<bool>()) return *b;
  r.fail(what + " needs a boolean argument, not a " + std::string(type_name(*v)));
}

namespace {

bool in_set(uint32_t cp, const Text* chars) {
  if (!chars) return js_space(cp);
  for (size_t i = 0; i < chars->bytes.size();)
    if (next_code_point(chars->bytes, i) == cp) return true;
  return false;
}

}  // namespace

Value strip_text(Renderer& r, const Text& t, bool left, bool right, const Text* chars) {
  const std::vector<size_t> starts = code_point_starts(t.bytes);
  size_t b = 0, e = starts.size() - 1;
  auto cp_at = [&](size_t k) {
    size_t i = starts[k];
    return next_code_point(t.bytes, i);
  };
  while (left && b < e && in_set(cp_at(b), chars)) ++b;
  while (right && e > b && in_set(cp_at(e - 1), chars)) --e;
  TextBuilder out;
  out.append(t, starts[b], starts[e]);
  return r.make_string(std::move(out));
}

Value split_text(Renderer& r, const Text& t, const Text* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::pair<size_t, size_t>> parts;  // byte ranges
  const std::string& s = t.bytes;
  if (sep) {
    if (sep->bytes.empty()) r.fail("split() got an empty separator");
    const size_t n = sep->bytes.size();
    if (!from_right) {
      size_t begin = 0;
      for (size_t at; (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) &&
                      (at = s.find(sep->bytes, begin)) != std::string::npos;
           begin = at + n)
        parts.emplace_back(begin, at);
      parts.emplace_back(begin, s.size());
    } else {
      size_t end = s.size();
      for (size_t at; (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) && end >= n &&
                      (at = s.rfind(sep->bytes, end - n)) != std::string::npos;
           end = at)
        parts.emplace_back(at + n, end);
      parts.emplace_back(0, end);
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = skip_space_forward(s, 0); i < s.size(); i = skip_space_forward(s, i)) {
      size_t end = i;
      for (size_t next = end; end < s.size() && !js_space(next_code_point(s, next)); next = end) end = next;
      words.emplace_back(i, end);
      i = end;
    }
    const auto limit = maxsplit < 0 ? words.size() : std::min(words.size(), static_cast<size_t>(maxsplit) + 1);
    if (limit < words.size()) {  // the last part keeps the rest as written
      if (!from_right) {
        words[limit - 1].second = s.size();
        words.resize(limit);
      } else {
        words.erase(words.begin(), words.end() - static_cast<ptrdiff_t>(limit));
        words[0].first = 0;
      }
    }
    parts = std::move(words);
  }
  r.reserve_items(static_cast<int64_t>(parts.size()));
  std::vector<Value> items;
  for (const auto& [b, e] : parts) items.push_back(Value(sub_text(t, b, e)));
  return r.make_list(std::move(items));
}

Value replace_text(Renderer& r, const Text& t, const std::string& old_s, const std::string& new_s, int64_t count) {
  const std::string& s = t.bytes;
  int64_t left = count < 0 ? INT64_MAX : count;
  std::string out;
  if (old_s.empty()) {
    const std::vector<size_t> starts = code_point_starts(s);
    for (size_t k = 0; k < starts.size(); ++k) {
      if (left-- > 0) out += new_s;
      if (k + 1 < starts.size()) out.append(s, starts[k], starts[k + 1] - starts[k]);
      r.reserve_string(static_cast<int64_t>(out.size()));
    }
    return r.make_string(std::move(out));
  }
  size_t begin = 0;
  for (size_t at; left > 0 && (at = s.find(old_s, begin)) != std::string::npos; begin = at + old_s.size(), --left) {
    out.append(s, begin, at - begin);
    out += new_s;
    r.reserve_string(static_cast<int64_t>(out.size()));
  }
  out.append(s, begin);
  return r.make_string(std::move(out));
}

std::string title_case(std::string_view s) {
  std::string out(s);
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t i = 0; i < out.size(); ++i)
    if (word(out[i]) && (i == 0 || !word(out[i - 1])) && (out[i] & 0x80) == 0)
      out[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i])));
  return out;
}

std::string capitalize(std::string_view s) {
  if (s.empty()) return "";
  size_t i = 0;
  next_code_point(s, i);
  return to_upper(s.substr(0, i)) + std::string(s.substr(i));
}

Value char_at(const Text& t, int64_t i) {
  const std::vector<size_t> starts = code_point_starts(t.bytes);
  const auto n = static_cast<int64_t>(starts.size()) - 1;
  if (i < 0) i += n;
  if (i < 0 || i >= n) return Value();
  return Value(sub_text(t, starts[static_cast<size_t>(i)], starts[static_cast<size_t>(i) + 1]));
}

}  // namespace frugal::jinja
