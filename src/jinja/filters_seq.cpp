// Filters on strings and on sequences.
#include <algorithm>

#include "core/error.h"
#include "jinja/render.h"
#include "jinja/strings.h"

namespace frugal::jinja {

namespace {

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// @huggingface/jinja's indent: width spaces (or the string) before every line but the first (first=
// true: that one too) and empty ones (blank=true: those too).
Value indent(Renderer& r, const Text& t, const CallArgs& a) {
  const Value* width = a.get(0, "width");
  const std::string pad = width && width->text() ? width->text()->bytes
                                                 : std::string(static_cast<size_t>(std::clamp<int64_t>(
                                                                   int_arg(r, width, 4, "indent"), 0, 1 << 20)),
                                                               ' ');
  const bool first = bool_arg(r, a.get(1, "first"), false, "indent");
  const bool blank = bool_arg(r, a.get(2, "blank"), false, "indent");
  std::string out;
  size_t begin = 0;
  for (bool first_line = true;; first_line = false) {
    const size_t end = std::min(t.bytes.find('\n', begin), t.bytes.size());
    if ((first || !first_line) && (blank || end > begin)) out += pad;
    out.append(t.bytes, begin, end - begin);
    r.reserve_string(static_cast<int64_t>(out.size()));
    if (end == t.bytes.size()) break;
    out += '\n';
    begin = end + 1;
  }
  return r.make_string(std::move(out));
}

// A string as the list of its characters (for first, last, reverse, list, join).
Value characters(Renderer& r, const Text& t) {
  const std::vector<size_t> starts = code_point_starts(t.bytes);
  std::vector<Value> items;
  r.reserve_items(static_cast<int64_t>(starts.size()));
  for (size_t k = 0; k + 1 < starts.size(); ++k) items.push_back(Value(sub_text(t, starts[k], starts[k + 1])));
  return r.make_list(std::move(items));
}

Value join(Renderer& r, const List& l, const CallArgs& a) {
  const Value* sep = a.get(0, "d");
  const Value* attr = a.get(1, "attribute");
  TextBuilder b;
  for (size_t k = 0; k < l.items.size(); ++k) {
    if (k > 0 && sep) append_printed(r, b, *sep);
    append_printed(r, b, attr ? get_item(r, l.items[k], *attr) : l.items[k]);
    r.reserve_string(static_cast<int64_t>(b.size()));
  }
  return r.make_string(std::move(b));
}

Value extreme(Renderer& r, const List& l, bool want_max) {
  if (l.items.empty()) return Value();
  const Value* best = &l.items[0];
  for (const Value& v : l.items) {
    const Value less = binary_op(r, "<", want_max ? *best : v, want_max ? v : *best);
    if (truthy(less)) best = &v;
  }
  return *best;
}

Value sum(Renderer& r, const List& l, const CallArgs& a) {
  const Value* attr = a.get(0, "attribute");
  const Value* start = a.get(1, "start");
  Value total = start ? *start : Value(int64_t{0});
  for (const Value& v : l.items) total = binary_op(r, "+", total, attr ? get_item(r, v, *attr) : v);
  return total;
}

Value batch(Renderer& r, const List& l, const CallArgs& a) {
  const int64_t size = int_arg(r, a.get(0, "linecount"), 0, "batch");
  if (size <= 0) r.fail("the filter 'batch' needs a positive size");
  const Value* fill = a.get(1, "fill_with");
  std::vector<Value> rows;
  for (size_t k = 0; k < l.items.size(); k += static_cast<size_t>(size)) {
    std::vector<Value> row(l.items.begin() + static_cast<ptrdiff_t>(k),
                           l.items.begin() + static_cast<ptrdiff_t>(std::min(l.items.size(), k + static_cast<size_t>(size))));
    if (fill && !fill->none())
      while (static_cast<int64_t>(row.size()) < size) row.push_back(*fill);
    rows.push_back(r.make_list(std::move(row)));
  }
  return r.make_list(std::move(rows));
}

}  // namespace

Value list_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a);

Value text_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a) {
  const Text* t = v.text();
  if (!t) r.fail("the filter '" + n + "' needs a string, not a " + std::string(type_name(v)));
  if (n == "upper") return r.make_string(to_upper(t->bytes));
  if (n == "lower") return r.make_string(to_lower(t->bytes));
  if (n == "title") return r.make_string(title_case(t->bytes));
  if (n == "capitalize") return r.make_string(capitalize(t->bytes));
  if (n == "trim") {
    const Value* chars = a.get(0, "chars");
    return strip_text(r, *t, true, true, chars && !chars->none() ? &text_arg(r, chars, "trim") : nullptr);
  }
  if (n == "indent") return indent(r, *t, a);
  if (n == "escape" || n == "e") return r.make_string(html_escape(t->bytes));
  if (n == "replace") {
    return replace_text(r, *t, text_arg(r, a.get(0, "old"), "replace").bytes,
                        text_arg(r, a.get(1, "new"), "replace").bytes, int_arg(r, a.get(2, "count"), -1, "replace"));
  }
  if (n == "length" || n == "count") return Value(static_cast<int64_t>(code_point_count(t->bytes)));
  if (n == "wordcount") return Value(static_cast<int64_t>(split_text(r, *t, nullptr, -1, false).list()->items.size()));
  if (n == "join") return v;
  if (n == "reverse") {
    const std::vector<size_t> starts = code_point_starts(t->bytes);
    TextBuilder b;
    for (size_t k = starts.size() - 1; k > 0; --k) b.append(*t, starts[k - 1], starts[k]);
    return r.make_string(std::move(b));
  }
  return list_filter(r, n, characters(r, *t), a);
}

Value list_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a) {
  if (n == "length" || n == "count") {
    if (const Dict* d = v.dict()) return Value(static_cast<int64_t>(d->entries.size()));
    if (v.undefined()) return Value(int64_t{0});
  }
  if (n == "list" && v.dict()) return call_method(r, v, "keys", {});
  const List* l = v.list();
  if (!l) {
    if (n == "length" || n == "count" || n == "first" || n == "last" || n == "reverse" || n == "list" || n == "join" ||
        n == "unique" || n == "sum" || n == "min" || n == "max" || n == "batch")
      r.fail("the filter '" + n + "' needs a list, not a " + std::string(type_name(v)));
    r.fail("unsupported filter '" + n + "'");
  }
  if (n == "length" || n == "count") return Value(static_cast<int64_t>(l->items.size()));
  if (n == "first") return l->items.empty() ? Value() : l->items.front();
  if (n == "last") return l->items.empty() ? Value() : l->items.back();
  if (n == "list") return v;
  if (n == "reverse") {
    std::vector<Value> items(l->items.rbegin(), l->items.rend());
    return r.make_list(std::move(items));
  }
  if (n == "join") return join(r, *l, a);
  if (n == "unique") {
    std::vector<Value> out;
    for (const Value& x : l->items) {
      r.step(static_cast<int64_t>(out.size()) / 16 + 1);
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    }
    return r.make_list(std::move(out));
  }
  if (n == "sum") return sum(r, *l, a);
  if (n == "min" || n == "max") return extreme(r, *l, n == "max");
  if (n == "batch") return batch(r, *l, a);
  r.fail("unsupported filter '" + n + "'");
}

}  // namespace frugal::jinja
