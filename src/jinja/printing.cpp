// How values become text: {{ v }} and the string form (as @huggingface/jinja prints them, which
// differs from jinja2: true/false rather than True/False, none prints nothing, lists and dicts
// print as JSON with double quotes), and tojson (Python's json.dumps with ensure_ascii=False and
// separators ", " and ": "; numbers as JavaScript writes them).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "jinja/render.h"

namespace frugal::jinja {

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // -d.ddde+XX, the shortest digits that read back as v
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int n = std::stoi(sci.substr(e + 1)) + 1;  // v = 0.DIGITS * 10^n
  const int k = static_cast<int>(digits.size());
  if (k <= n && n <= 21) return sign + digits + std::string(static_cast<size_t>(n - k), '0');
  if (0 < n && n <= 21) return sign + digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  if (-6 < n && n <= 0) return sign + "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  std::string exp = n - 1 >= 0 ? "+" : "-";  // (appended, not "+" + to_string(): GCC 12's -Wrestrict misfires)
  exp += std::to_string(std::abs(n - 1));
  return sign + digits.substr(0, 1) + (k > 1 ? "." + digits.substr(1) : "") + "e" + exp;
}

std::string float_text(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e21) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  return js_number(v);
}

namespace {

void json_string(std::string_view s, bool ensure_ascii, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto u_escape = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const size_t begin = i;
    const uint32_t cp = next_code_point(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (cp < 0x20) {
      u_escape(cp);
    } else if (ensure_ascii && cp >= 0x7F) {
      if (cp >= 0x10000) {
        u_escape(0xD800 + ((cp - 0x10000) >> 10));
        u_escape(0xDC00 + ((cp - 0x10000) & 0x3FF));
      } else {
        u_escape(cp);
      }
    } else {
      out.append(s, begin, i - begin);
    }
  }
  out += '"';
}

class JsonWriter {
 public:
  JsonWriter(Renderer& r, const JsonOptions& o) : r_(r), o_(o) {}
  void write(const Value& v, int depth);
  std::string out;

 private:
  void newline(int depth) {
    if (o_.indent <= 0) return;
    out += '\n';
    out.append(static_cast<size_t>(o_.indent) * static_cast<size_t>(depth), ' ');
  }
  void entries(const std::vector<std::pair<std::string, Value>>& kv, int depth);
  Renderer& r_;
  const JsonOptions& o_;
};

std::vector<std::pair<std::string, Value>> loop_entries(const LoopInfo& l) {
  return {{"index", Value(l.index0 + 1)},        {"index0", Value(l.index0)},
          {"revindex", Value(l.length - l.index0)}, {"revindex0", Value(l.length - l.index0 - 1)},
          {"first", Value(l.index0 == 0)},       {"last", Value(l.index0 == l.length - 1)},
          {"length", Value(l.length)},           {"previtem", l.previtem},
          {"nextitem", l.nextitem}};
}

void JsonWriter::entries(const std::vector<std::pair<std::string, Value>>& kv, int depth) {
  std::vector<const std::pair<std::string, Value>*> order;
  for (const auto& e : kv) order.push_back(&e);
  if (o_.sort_keys) std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  out += '{';
  for (size_t k = 0; k < order.size(); ++k) {
    if (k > 0) out += o_.item_sep;
    newline(depth + 1);
    json_string(order[k]->first, o_.ensure_ascii, out);
    out += o_.key_sep;
    write(order[k]->second, depth + 1);
  }
  if (!order.empty()) newline(depth);
  out += '}';
}

void JsonWriter::write(const Value& v, int depth) {
  if (depth > r_.limits().max_depth) r_.fail("a value nested too deeply to write (a namespace holding itself?)");
  r_.step();
  if (static_cast<int64_t>(out.size()) > r_.limits().max_output_bytes)
    r_.fail("the text of a value exceeds the limit of " + std::to_string(r_.limits().max_output_bytes) + " bytes");
  if (v.undefined()) out += o_.undefined_as_null ? "null" : "undefined";
  else if (v.none()) out += "null";
  else if (const bool* b = v.as<bool>()) out += *b ? "true" : "false";
  else if (const int64_t* i = v.as<int64_t>()) out += std::to_string(*i);
  else if (const double* f = v.as<double>()) out += std::isfinite(*f) ? js_number(*f) : "null";
  else if (const Text* t = v.text()) json_string(t->bytes, o_.ensure_ascii, out);
  else if (const List* l = v.list()) {
    out += '[';
    for (size_t k = 0; k < l->items.size(); ++k) {
      if (k > 0) out += o_.item_sep;
      newline(depth + 1);
      write(l->items[k], depth + 1);
    }
    if (!l->items.empty()) newline(depth);
    out += ']';
  } else if (const Dict* d = v.dict()) entries(d->entries, depth);
  else if (const Namespace* ns = v.ns()) entries(ns->attrs, depth);
  else if (const LoopInfo* loop = v.loop()) entries(loop_entries(*loop), depth);
  else r_.fail("a macro or function cannot be written as text or JSON");
}

}  // namespace

std::string to_json(Renderer& r, const Value& v, const JsonOptions& options) {
  JsonWriter w(r, options);
  w.write(v, 0);
  return std::move(w.out);
}

void append_printed(Renderer& r, TextBuilder& out, const Value& v) {
  if (const Text* t = v.text()) return out.append(*t);
  if (v.undefined() || v.none()) return;
  if (const bool* b = v.as<bool>()) return out.append(*b ? "true" : "false");
  if (const int64_t* i = v.as<int64_t>()) return out.append(std::to_string(*i));
  if (const double* f = v.as<double>()) return out.append(float_text(*f));
  JsonOptions o;
  o.undefined_as_null = false;
  out.append(to_json(r, v, o));
}

std::string printed(Renderer& r, const Value& v) {
  TextBuilder b;
  append_printed(r, b, v);
  return b.take().bytes;
}

}  // namespace frugal::jinja
