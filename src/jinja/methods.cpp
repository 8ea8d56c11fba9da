// Attributes, subscripts and methods. Strings: startswith endswith split rsplit strip lstrip
// rstrip upper lower title capitalize replace find count join; dicts: items keys values get.
// Lists have none: they are immutable (jinja2's sandbox refuses append and the like too).
#include "core/error.h"
#include "jinja/render.h"
#include "jinja/strings.h"

namespace frugal::jinja {

namespace {

bool is_string_method(const std::string& n) {
  static const char* const kNames[] = {"startswith", "endswith", "split", "rsplit", "strip",  "lstrip", "rstrip",
                                       "upper",      "lower",    "title", "capitalize", "replace", "find", "count",
                                       "join"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}

bool is_dict_method(const std::string& n) { return n == "items" || n == "keys" || n == "values" || n == "get"; }

Value bound(const Value& self, const std::string& name) {
  return Value(std::make_shared<const Callable>(Callable{Callable::Kind::Method, nullptr, {}, name, self}));
}

bool affix(Renderer& r, const Text& t, const Value* arg, bool prefix, const std::string& what) {
  auto test = [&](const Text& a) {
    const std::string& s = t.bytes;
    return s.size() >= a.bytes.size() &&
           s.compare(prefix ? 0 : s.size() - a.bytes.size(), a.bytes.size(), a.bytes) == 0;
  };
  if (const List* l = arg ? arg->list() : nullptr) {
    for (const Value& v : l->items)
      if (test(text_arg(r, &v, what))) return true;
    return false;
  }
  return test(text_arg(r, arg, what));
}

Value string_method(Renderer& r, const Text& t, const std::string& n, const CallArgs& a) {
  const std::string what = "'" + n + "()'";
  if (n == "startswith" || n == "endswith") return Value(affix(r, t, a.get(0, "prefix"), n == "startswith", what));
  if (n == "split" || n == "rsplit") {
    const Value* sep = a.get(0, "sep");
    const Text* sep_text = sep && !sep->none() ? &text_arg(r, sep, what) : nullptr;
    return split_text(r, t, sep_text, int_arg(r, a.get(1, "maxsplit"), -1, what), n == "rsplit");
  }
  // @huggingface/jinja ignores strip's argument: strip('\n') strips all whitespace there too.
  if (n == "strip" || n == "lstrip" || n == "rstrip") return strip_text(r, t, n != "rstrip", n != "lstrip");
  if (n == "upper") return r.make_string(to_upper(t.bytes));
  if (n == "lower") return r.make_string(to_lower(t.bytes));
  if (n == "title") return r.make_string(title_case(t.bytes));
  if (n == "capitalize") return r.make_string(capitalize(t.bytes));
  if (n == "replace") {
    const Text& old_s = text_arg(r, a.get(0, "old"), what);
    const Text& new_s = text_arg(r, a.get(1, "new"), what);
    return replace_text(r, t, old_s.bytes, new_s.bytes, int_arg(r, a.get(2, "count"), -1, what));
  }
  if (n == "find" || n == "count") {
    const std::string& needle = text_arg(r, a.get(0, "sub"), what).bytes;
    if (n == "find") {
      const size_t at = t.bytes.find(needle);
      return Value(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(code_point_count(t.bytes.substr(0, at))));
    }
    if (needle.empty()) return Value(static_cast<int64_t>(code_point_count(t.bytes) + 1));
    int64_t count = 0;
    for (size_t at = t.bytes.find(needle); at != std::string::npos; at = t.bytes.find(needle, at + needle.size())) ++count;
    return Value(count);
  }
  // join
  const Value* items = a.get(0, "iterable");
  const List* l = items ? items->list() : nullptr;
  if (!l) r.fail(what + " needs a list");
  TextBuilder b;
  for (size_t k = 0; k < l->items.size(); ++k) {
    if (k > 0) b.append(t);
    append_printed(r, b, l->items[k]);
  }
  return r.make_string(std::move(b));
}

Value dict_method(Renderer& r, const Dict& d, const std::string& n, const CallArgs& a) {
  if (n == "get") {
    const Value* v = d.find(text_arg(r, a.get(0, "key"), "'get()'").bytes);
    if (v) return *v;
    const Value* fallback = a.get(1, "default");
    return fallback ? *fallback : Value(None{});
  }
  std::vector<Value> items;
  for (const auto& [k, v] : d.entries) {
    if (n == "keys") items.push_back(Value::str(k));
    else if (n == "values") items.push_back(v);
    else items.push_back(r.make_list({Value::str(k), v}, true));
  }
  return r.make_list(std::move(items));
}

}  // namespace

Value get_attr(Renderer& r, const Value& v, const std::string& name) {
  if (const Dict* d = v.dict()) {
    if (const Value* x = d->find(name)) return *x;
    return is_dict_method(name) ? bound(v, name) : Value();
  }
  if (Namespace* ns = v.ns()) {
    const Value* x = ns->find(name);
    return x ? *x : Value();
  }
  if (const LoopInfo* l = v.loop()) {
    if (name == "index") return Value(l->index0 + 1);
    if (name == "index0") return Value(l->index0);
    if (name == "revindex") return Value(l->length - l->index0);
    if (name == "revindex0") return Value(l->length - l->index0 - 1);
    if (name == "first") return Value(l->index0 == 0);
    if (name == "last") return Value(l->index0 == l->length - 1);
    if (name == "length") return Value(l->length);
    if (name == "previtem") return l->previtem;
    if (name == "nextitem") return l->nextitem;
    if (name == "cycle" || name == "depth" || name == "depth0" || name == "changed")
      r.fail("unsupported construct 'loop." + name + "'");
    return Value();
  }
  if (v.text() && is_string_method(name)) return bound(v, name);
  return Value();
}

Value get_item(Renderer& r, const Value& v, const Value& key) {
  if (const Text* k = key.text()) {
    if (const Dict* d = v.dict()) {
      const Value* x = d->find(k->bytes);
      return x ? *x : Value();
    }
    return get_attr(r, v, k->bytes);
  }
  if (v.dict() || v.ns()) r.fail("a dict key must be a string, not a " + std::string(type_name(key)));
  const int64_t* i = key.as<int64_t>();
  if (!i) r.fail("an index must be an integer or a string, not a " + std::string(type_name(key)));
  if (const List* l = v.list()) {
    const auto n = static_cast<int64_t>(l->items.size());
    const int64_t at = *i < 0 ? *i + n : *i;
    return at >= 0 && at < n ? l->items[static_cast<size_t>(at)] : Value();
  }
  if (const Text* t = v.text()) return char_at(*t, *i);
  if (v.none()) r.fail("none cannot be indexed");
  return Value();
}

Value call_method(Renderer& r, const Value& self, const std::string& name, const CallArgs& args) {
  if (const Text* t = self.text())
    if (is_string_method(name)) return string_method(r, *t, name, args);
  if (const Dict* d = self.dict())
    if (is_dict_method(name)) return dict_method(r, *d, name, args);
  if (self.list()) {
    if (name == "append" || name == "extend" || name == "pop" || name == "insert" || name == "remove" ||
        name == "clear" || name == "sort" || name == "reverse")
      r.fail("lists cannot be changed ('" + name + "'): chat templates run in jinja2's immutable sandbox");
  }
  if (self.undefined()) r.fail("an undefined value has no method '" + name + "'");
  r.fail("unsupported construct: a " + std::string(type_name(self)) + " has no method '" + name + "'");
}

}  // namespace frugal::jinja
