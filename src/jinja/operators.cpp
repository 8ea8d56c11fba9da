// Binary operators. Numbers follow Python (// and % floor; integers are 64-bit and overflow is an
// error); + with a string on either side concatenates the other side's printed form, as
// @huggingface/jinja does (jinja2 would refuse); == on lists and dicts is identity, as there.
#include <cmath>

#include "core/error.h"
#include "jinja/render.h"

namespace frugal::jinja {

namespace {

bool numeric(const Value& v) { return v.is<int64_t>() || v.is<double>(); }

void check_overflow(Renderer& r, bool overflow) {
  if (overflow) r.fail("integer overflow (frugal's integers are 64-bit)");
}

int64_t int_power(Renderer& r, int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) check_overflow(r, __builtin_mul_overflow(result, base, &result));
    exp >>= 1;
    if (exp > 0) check_overflow(r, __builtin_mul_overflow(base, base, &base));
  }
  return result;
}

Value int_op(Renderer& r, const std::string& op, int64_t a, int64_t b) {
  int64_t out = 0;
  if (op == "+" || op == "-" || op == "*") {
    check_overflow(r, op == "+"   ? __builtin_add_overflow(a, b, &out)
                      : op == "-" ? __builtin_sub_overflow(a, b, &out)
                                  : __builtin_mul_overflow(a, b, &out));
    return Value(out);
  }
  if (op == "/") {
    if (b == 0) r.fail("division by zero");
    return Value(static_cast<double>(a) / static_cast<double>(b));
  }
  if (op == "//" || op == "%") {
    if (b == 0) r.fail("division by zero");
    if (a == INT64_MIN && b == -1) r.fail("integer overflow (frugal's integers are 64-bit)");
    int64_t q = a / b, m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) {
      --q;
      m += b;
    }
    return Value(op == "//" ? q : m);
  }
  if (op == "**") {
    if (b < 0) {
      if (a == 0) r.fail("0 cannot be raised to a negative power");
      return Value(std::pow(static_cast<double>(a), static_cast<double>(b)));
    }
    return Value(int_power(r, a, b));
  }
  if (op == "<") return Value(a < b);
  if (op == ">") return Value(a > b);
  if (op == "<=") return Value(a <= b);
  return Value(a >= b);  // ">="
}

Value float_op(Renderer& r, const std::string& op, double a, double b) {
  if (op == "+") return Value(a + b);
  if (op == "-") return Value(a - b);
  if (op == "*") return Value(a * b);
  if ((op == "/" || op == "//" || op == "%") && b == 0) r.fail("division by zero");
  if (op == "/") return Value(a / b);
  if (op == "//") return Value(std::floor(a / b));
  if (op == "%") {
    double m = std::fmod(a, b);
    if (m != 0 && ((m < 0) != (b < 0))) m += b;
    return Value(m);
  }
  if (op == "**") {
    if (a == 0 && b < 0) r.fail("0 cannot be raised to a negative power");
    return Value(std::pow(a, b));
  }
  if (op == "<") return Value(a < b);
  if (op == ">") return Value(a > b);
  if (op == "<=") return Value(a <= b);
  return Value(a >= b);
}

// 'ab' * 3, [x] * 3: the size is checked before anything is allocated.
Value repeat(Renderer& r, const Value& seq, int64_t n) {
  n = std::max<int64_t>(n, 0);
  if (const Text* t = seq.text()) {
    const auto len = static_cast<int64_t>(t->bytes.size());
    if (len > 0 && n > r.limits().max_output_bytes / len) r.reserve_string(r.limits().max_output_bytes + 1);
    r.reserve_string(len * n);
    TextBuilder b;
    for (int64_t k = 0; k < n; ++k) b.append(*t);
    return r.make_string(std::move(b));
  }
  const List* l = seq.list();
  const auto len = static_cast<int64_t>(l->items.size());
  if (len > 0 && n > r.limits().max_output_bytes / len) r.reserve_items(r.limits().max_output_bytes + 1);
  r.reserve_items(len * n);
  std::vector<Value> items;
  for (int64_t k = 0; k < n; ++k) items.insert(items.end(), l->items.begin(), l->items.end());
  return r.make_list(std::move(items), l->tuple);
}

}  // namespace

bool equal(const Value& a, const Value& b) {
  const bool an = numeric(a) || a.is<bool>(), bn = numeric(b) || b.is<bool>();
  if (an || bn) {
    if (!(an && bn)) return false;
    if (a.is<int64_t>() && b.is<int64_t>()) return *a.as<int64_t>() == *b.as<int64_t>();
    return a.as_double() == b.as_double();
  }
  if (a.get().index() != b.get().index()) return false;
  if (const Text* t = a.text()) return t->bytes == b.text()->bytes;
  if (a.undefined() || a.none()) return true;
  if (a.list()) return a.list() == b.list();
  if (a.dict()) return a.dict() == b.dict();
  if (a.ns()) return a.ns() == b.ns();
  if (a.loop()) return a.loop() == b.loop();
  return a.callable() == b.callable();
}

bool contains(Renderer& r, const Value& container, const Value& item) {
  if (const Text* t = container.text()) {
    const Text* needle = item.text();
    if (!needle) r.fail("'in <string>' needs a string on its left, not a " + std::string(type_name(item)));
    return t->bytes.find(needle->bytes) != std::string::npos;
  }
  if (const List* l = container.list()) {
    for (const Value& v : l->items)
      if (v.is<bool>() == item.is<bool>() && equal(v, item)) return true;
    return false;
  }
  if (const Dict* d = container.dict()) return item.text() && d->find(item.text()->bytes);
  if (container.undefined()) return false;
  r.fail("'in' needs a string, list or dict on its right, not a " + std::string(type_name(container)));
}

Value binary_op(Renderer& r, const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value(equal(a, b));
  if (op == "!=") return Value(!equal(a, b));
  if (op == "in") return Value(contains(r, b, a));
  if (op == "not in") return Value(!contains(r, b, a));
  if (numeric(a) && numeric(b) && op != "~") {
    if (a.is<int64_t>() && b.is<int64_t>()) return int_op(r, op, *a.as<int64_t>(), *b.as<int64_t>());
    return float_op(r, op, a.as_double(), b.as_double());
  }
  if (op == "**" && (numeric(a) || a.is<bool>()) && (numeric(b) || b.is<bool>()))
    return binary_op(r, op, a.is<bool>() ? Value(int64_t{*a.as<bool>()}) : a, b.is<bool>() ? Value(int64_t{*b.as<bool>()}) : b);
  if (a.none() || b.none()) r.fail("cannot apply '" + op + "' to none");
  if (op == "~" || (op == "+" && (a.text() || b.text()))) {
    if (op == "+" && (a.undefined() || b.undefined())) r.fail("cannot apply '+' to an undefined value");
    TextBuilder out;
    append_printed(r, out, a);
    append_printed(r, out, b);
    return r.make_string(std::move(out));
  }
  if (op == "+" && a.list() && b.list()) {
    std::vector<Value> items = a.list()->items;
    r.reserve_items(static_cast<int64_t>(items.size() + b.list()->items.size()));
    items.insert(items.end(), b.list()->items.begin(), b.list()->items.end());
    return r.make_list(std::move(items));
  }
  if (op == "*" && (a.text() || a.list()) && b.is<int64_t>()) return repeat(r, a, *b.as<int64_t>());
  if (op == "*" && (b.text() || b.list()) && a.is<int64_t>()) return repeat(r, b, *a.as<int64_t>());
  if (a.text() && b.text() && (op == "<" || op == ">" || op == "<=" || op == ">=")) {
    const int c = a.text()->bytes.compare(b.text()->bytes);
    return Value(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
  }
  if (a.undefined() || b.undefined()) r.fail("cannot apply '" + op + "' to an undefined value");
  r.fail("cannot apply '" + op + "' to a " + type_name(a) + " and a " + type_name(b));
}

}  // namespace frugal::jinja
