// Filters (`x|name(args)`). Where @huggingface/jinja has the filter, its behaviour is followed;
// the others follow jinja2.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "jinja/render.h"
#include "jinja/strings.h"

namespace frugal::jinja {

namespace {

Value tojson(Renderer& r, const Value& v, const CallArgs& a) {
  JsonOptions o;
  o.indent = static_cast<int>(std::clamp<int64_t>(int_arg(r, a.get(0, "indent"), 0, "tojson"), 0, 64));
  if (o.indent > 0) o.item_sep = ",";
  o.ensure_ascii = bool_arg(r, a.get(1, "ensure_ascii"), false, "tojson");
  o.sort_keys = bool_arg(r, a.get(2, "sort_keys"), false, "tojson");
  if (const Value* seps = a.get(3, "separators"); seps && !seps->none()) {
    const List* l = seps->list();
    if (!l || l->items.size() != 2) r.fail("tojson's separators must be two strings");
    o.item_sep = text_arg(r, &l->items[0], "tojson's separators").bytes;
    o.key_sep = text_arg(r, &l->items[1], "tojson's separators").bytes;
  }
  return r.make_string(to_json(r, v, o));
}

// The attribute path a.b.0 of an item, or undefined.
Value attribute(Renderer& r, const Value& item, const std::string& path) {
  Value v = item;
  for (size_t begin = 0; begin <= path.size();) {
    size_t end = path.find('.', begin);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(begin, end - begin);
    if (v.list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit))
      v = get_item(r, v, Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))));
    else if (v.dict() || v.ns() || v.loop())
      v = get_attr(r, v, part);
    else
      return Value();
    begin = end + 1;
  }
  return v;
}

const List& list_arg(Renderer& r, const Value& v, const std::string& filter) {
  const List* l = v.list();
  if (!l) r.fail("the filter '" + filter + "' needs a list, not a " + type_name(v));
  return *l;
}

// selectattr, rejectattr, select, reject.
Value select(Renderer& r, const std::string& n, const Value& v, const CallArgs& a) {
  const bool by_attr = n.ends_with("attr"), keep = n.starts_with("select");
  const List& l = list_arg(r, v, n);
  const std::string attr = by_attr ? text_arg(r, a.get(0, "attribute"), n).bytes : "";
  const size_t first = by_attr ? 1 : 0;
  CallArgs test_args;
  for (size_t k = first + 1; k < a.positional.size(); ++k) test_args.positional.push_back(a.positional[k]);
  const Value* test = first < a.positional.size() ? &a.positional[first] : nullptr;
  std::vector<Value> kept;
  for (const Value& item : l.items) {
    r.step();
    const Value x = by_attr ? attribute(r, item, attr) : item;
    bool pass;
    if (by_attr && x.undefined()) pass = false;  // @huggingface/jinja: a missing attribute never passes
    else if (test) pass = apply_test(r, text_arg(r, test, n).bytes, x, test_args);
    else pass = truthy(x);
    if (pass == keep) kept.push_back(item);
  }
  return r.make_list(std::move(kept));
}

Value map_filter(Renderer& r, const Value& v, const CallArgs& a) {
  const List& l = list_arg(r, v, "map");
  std::vector<Value> out;
  if (const Value* attr = a.get(SIZE_MAX, "attribute")) {
    const std::string& path = text_arg(r, attr, "map").bytes;
    const Value* fallback = a.get(SIZE_MAX, "default");
    for (const Value& item : l.items) {
      Value x = attribute(r, item, path);
      out.push_back(x.undefined() && fallback ? *fallback : x);
    }
    return r.make_list(std::move(out));
  }
  const std::string& filter = text_arg(r, a.get(0, "filter"), "map").bytes;
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  for (const Value& item : l.items) out.push_back(apply_filter(r, filter, item, rest));
  return r.make_list(std::move(out));
}

// -1, 0, 1 as @huggingface/jinja orders values (numbers, or strings optionally ignoring case).
int order(Renderer& r, const Value& a, const Value& b, bool case_sensitive) {
  if ((a.number() || a.is<bool>()) && (b.number() || b.is<bool>()))
    return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
  if (a.text() && b.text()) {
    const std::string x = case_sensitive ? a.text()->bytes : to_lower(a.text()->bytes);
    const std::string y = case_sensitive ? b.text()->bytes : to_lower(b.text()->bytes);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if ((a.none() && b.none()) || (a.undefined() && b.undefined())) return 0;
  r.fail(std::string("cannot order a ") + type_name(a) + " and a " + type_name(b));
}

Value sort_filter(Renderer& r, const Value& v, const CallArgs& a) {
  std::vector<Value> items = list_arg(r, v, "sort").items;
  const bool reverse = bool_arg(r, a.get(0, "reverse"), false, "sort");
  const bool case_sensitive = bool_arg(r, a.get(1, "case_sensitive"), false, "sort");
  const Value* attr = a.get(2, "attribute");
  const std::string path = attr && !attr->none() ? printed(r, *attr) : "";
  r.step(static_cast<int64_t>(items.size()) * 8);
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const int c = path.empty() ? order(r, x, y, case_sensitive)
                               : order(r, attribute(r, x, path), attribute(r, y, path), case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return r.make_list(std::move(items));
}

Value dictsort(Renderer& r, const Value& v, const CallArgs& a) {
  const Dict* d = v.dict();
  if (!d) r.fail("the filter 'dictsort' needs a dict, not a " + std::string(type_name(v)));
  const bool case_sensitive = bool_arg(r, a.get(0, "case_sensitive"), false, "dictsort");
  const Value* by = a.get(1, "by");
  const bool by_value = by && text_arg(r, by, "dictsort").bytes == "value";
  const bool reverse = bool_arg(r, a.get(2, "reverse"), false, "dictsort");
  std::vector<Value> pairs;
  for (const auto& [k, x] : d->entries) pairs.push_back(r.make_list({Value::str(k), x}, true));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& p, const Value& q) {
    const int c = order(r, p.list()->items[by_value], q.list()->items[by_value], case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return r.make_list(std::move(pairs));
}

Value number_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a) {
  const Value* fallback = a.get(0, "default");
  if (const Text* t = v.text()) {  // JavaScript's parseInt / parseFloat: the longest numeric prefix
    const std::string s = t->bytes.substr(skip_space_forward(t->bytes, 0));
    char* end = nullptr;
    if (n == "int") {
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (end != s.c_str()) return Value(static_cast<int64_t>(i));
      return fallback ? *fallback : Value(int64_t{0});
    }
    const double f = std::strtod(s.c_str(), &end);
    if (end != s.c_str()) return Value(f);
    return fallback ? *fallback : Value(0.0);
  }
  if (v.number() || v.is<bool>()) {
    if (n == "float") return Value(v.as_double());
    if (const int64_t* i = v.as<int64_t>()) return Value(*i);
    const double f = v.as_double();
    if (!(std::fabs(f) < 9.2e18)) r.fail("the float " + float_text(f) + " does not fit an integer");
    return Value(static_cast<int64_t>(f));
  }
  r.fail("the filter '" + n + "' needs a number or a string, not a " + type_name(v));
}

}  // namespace

Value list_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a);
Value text_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a);

Value apply_filter(Renderer& r, const std::string& n, const Value& v, const CallArgs& a) {
  if (n == "safe") return v;
  if (n == "tojson") return tojson(r, v, a);
  if (n == "default" || n == "d") {
    const bool boolean = bool_arg(r, a.get(1, "boolean"), false, "default");
    if (v.undefined() || (boolean && !truthy(v))) {
      const Value* fallback = a.get(0, "default_value");
      return fallback ? *fallback : Value::str("");
    }
    return v;
  }
  if (n == "string") return v.none() ? Value::str("None") : v.text() ? v : r.make_string(printed(r, v));
  if (n == "int" || n == "float") return number_filter(r, n, v, a);
  if (n == "abs") {
    if (const int64_t* i = v.as<int64_t>()) {
      if (*i == INT64_MIN) r.fail("integer overflow");
      return Value(*i < 0 ? -*i : *i);
    }
    if (const double* f = v.as<double>()) return Value(std::fabs(*f));
    r.fail("the filter 'abs' needs a number, not a " + std::string(type_name(v)));
  }
  if (n == "attr") return get_attr(r, v, text_arg(r, a.get(0, "name"), "attr").bytes);
  if (n == "selectattr" || n == "rejectattr" || n == "select" || n == "reject") return select(r, n, v, a);
  if (n == "map") return map_filter(r, v, a);
  if (n == "sort") return sort_filter(r, v, a);
  if (n == "dictsort") return dictsort(r, v, a);
  if (n == "items") {
    if (v.undefined()) return r.make_list({});
    if (!v.dict()) r.fail("the filter 'items' needs a dict, not a " + std::string(type_name(v)));
    return call_method(r, v, "items", {});
  }
  if (n == "round") {
    if (!v.number()) r.fail("the filter 'round' needs a number, not a " + std::string(type_name(v)));
    const double scale = std::pow(10.0, static_cast<double>(int_arg(r, a.get(0, "precision"), 0, "round")));
    const Value* method = a.get(1, "method");
    const std::string how = method ? text_arg(r, method, "round").bytes : "common";
    const double x = v.as_double() * scale;
    const double y = how == "floor" ? std::floor(x) : how == "ceil" ? std::ceil(x) : std::round(x);
    return Value(y / scale);
  }
  if (v.text() || n == "upper" || n == "lower" || n == "trim" || n == "title" || n == "capitalize" ||
      n == "indent" || n == "replace" || n == "escape" || n == "e")
    return text_filter(r, n, v, a);
  return list_filter(r, n, v, a);
}

}  // namespace frugal::jinja
