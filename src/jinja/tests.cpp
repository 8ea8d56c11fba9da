// Jinja tests (`x is defined`, `x is divisibleby 3`, ...).
#include "core/error.h"
#include "jinja/render.h"
#include "jinja/strings.h"

namespace frugal::jinja {

namespace {

// Python's `is`: containers by identity (as equal() compares them), the rest by type and value.
bool same_object(const Value& a, const Value& b) { return a.get().index() == b.get().index() && equal(a, b); }

bool compare_test(Renderer& r, const std::string& n, const Value& v, const Value& other) {
  if (n == "equalto" || n == "eq" || n == "==") return equal(v, other);
  if (n == "ne" || n == "!=") return !equal(v, other);
  const std::string op = n == "lt" || n == "lessthan" ? "<" : n == "le" ? "<=" : n == "gt" || n == "greaterthan" ? ">" : ">=";
  return truthy(binary_op(r, op, v, other));
}

}  // namespace

bool apply_test(Renderer& r, const std::string& n, const Value& v, const CallArgs& args) {
  if (n == "defined") return !v.undefined();
  if (n == "undefined") return v.undefined();
  if (n == "none") return v.none();
  if (n == "string") return v.text() != nullptr;
  if (n == "number") return v.is<int64_t>() || v.is<double>();
  if (n == "integer") return v.is<int64_t>();
  if (n == "float") return v.is<double>();
  if (n == "boolean") return v.is<bool>();
  if (n == "true") return v.is<bool>() && *v.as<bool>();
  if (n == "false") return v.is<bool>() && !*v.as<bool>();
  if (n == "mapping") return v.dict() || v.loop();
  if (n == "iterable" || n == "sequence") return v.list() || v.text() || v.dict();
  if (n == "callable") return v.callable() != nullptr;
  if (n == "lower" || n == "upper") {
    const Text* t = v.text();
    return t && t->bytes == (n == "lower" ? to_lower(t->bytes) : to_upper(t->bytes));
  }
  if (n == "odd" || n == "even") {
    const int64_t* i = v.as<int64_t>();
    if (!i) r.fail("the test '" + n + "' needs an integer, not a " + type_name(v));
    return (*i % 2 != 0) == (n == "odd");
  }
  const Value* arg = args.get(0, "value");
  if (n == "divisibleby") {
    const int64_t* i = v.as<int64_t>();
    const int64_t d = int_arg(r, arg, 0, "the test 'divisibleby'");
    if (!i || d == 0) r.fail("the test 'divisibleby' needs an integer and a non-zero divisor");
    return *i % d == 0;
  }
  if (n == "in") {
    if (!arg) r.fail("the test 'in' needs a value to look in");
    return contains(r, *arg, v);
  }
  if (n == "sameas") return arg && same_object(v, *arg);
  static const char* const kCompare[] = {"equalto", "eq", "==", "ne", "!=", "lt", "lessthan", "le",
                                         "<=",      "gt", ">",  "greaterthan", "ge", ">=", "<"};
  for (const char* c : kCompare)
    if (n == c) {
      if (!arg) r.fail("the test '" + n + "' needs a value to compare with");
      return compare_test(r, n, v, *arg);
    }
  r.fail("unsupported test '" + n + "'");
}

}  // namespace frugal::jinja
