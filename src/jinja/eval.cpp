// Expressions.
#include <algorithm>

#include "core/error.h"
#include "jinja/render.h"

namespace frugal::jinja {

Value Renderer::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  struct Nesting {  // the parser bounds expression nesting; this bounds it together with macro calls
    Renderer& r;
    explicit Nesting(Renderer& renderer) : r(renderer) {
      if (++r.nesting_ > 8 * r.limits_.max_depth) r.fail("expressions and macro calls nested too deeply");
    }
    ~Nesting() { --r.nesting_; }
  } nesting(*this);
  step();
  line_ = e.line;
  switch (e.kind) {
    case Expr::Kind::Literal: return e.value;
    case Expr::Kind::Name: return eval_name(e, scope);
    case Expr::Kind::List:
    case Expr::Kind::Tuple:
    case Expr::Kind::Dict: return eval_literal_container(e, scope);
    case Expr::Kind::Postfix: return eval_postfix(e, scope);
    case Expr::Kind::Filter:
    case Expr::Kind::Test: return eval_pipes(e, scope);
    case Expr::Kind::Unary: {
      const Value v = eval(*e.items[0], scope);
      line_ = e.line;
      if (v.is<bool>() || v.is<int64_t>()) {
        const int64_t i = v.is<bool>() ? int64_t{*v.as<bool>()} : *v.as<int64_t>();
        if (e.name == "-" && i == INT64_MIN) fail("integer overflow");
        return Value(e.name == "-" ? -i : i);
      }
      if (const double* f = v.as<double>()) return Value(e.name == "-" ? -*f : *f);
      fail("unary '" + e.name + "' needs a number, not a " + type_name(v));
    }
    case Expr::Kind::Not: return Value(!truthy(eval(*e.items[0], scope)));
    case Expr::Kind::Binary: return eval_binary(e, scope);
    case Expr::Kind::And:
    case Expr::Kind::Or: {
      Value v;
      for (const auto& item : e.items) {
        v = eval(*item, scope);
        if (truthy(v) == (e.kind == Expr::Kind::Or)) break;  // Python: the deciding operand itself
      }
      return v;
    }
    case Expr::Kind::Cond:
      if (truthy(eval(*e.items[1], scope))) return eval(*e.items[0], scope);
      return e.items[2] ? eval(*e.items[2], scope) : Value();
  }
  return Value();
}

Value Renderer::eval_name(const Expr& e, const std::shared_ptr<Scope>& scope) {
  if (const Value* v = scope->find(e.name)) return *v;
  if (is_global(e.name)) {
    Callable c{Callable::Kind::Global, nullptr, {}, e.name, Value()};
    return Value(std::make_shared<const Callable>(std::move(c)));
  }
  return Value();
}

Value Renderer::eval_literal_container(const Expr& e, const std::shared_ptr<Scope>& scope) {
  if (e.kind != Expr::Kind::Dict) {
    std::vector<Value> items;
    items.reserve(e.items.size());
    for (const auto& item : e.items) items.push_back(eval(*item, scope));
    return make_list(std::move(items), e.kind == Expr::Kind::Tuple);
  }
  std::vector<std::pair<std::string, Value>> entries;
  for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
    const Value key = eval(*e.items[k], scope);
    const Text* t = key.text();
    if (!t) fail("a dict key must be a string, not a " + std::string(type_name(key)));
    Value v = eval(*e.items[k + 1], scope);
    auto same = std::find_if(entries.begin(), entries.end(), [&](const auto& kv) { return kv.first == t->bytes; });
    if (same != entries.end())
      same->second = std::move(v);
    else
      entries.emplace_back(t->bytes, std::move(v));
  }
  return make_dict(std::move(entries));
}

// A chain of one precedence level, left to right. Runs of string concatenation (+ or ~ on
// strings) build one string instead of one per operator.
Value Renderer::eval_binary(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.items[0], scope);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    const std::string& op = e.ops[k];
    if ((op == "+" || op == "~") && left.text()) {
      TextBuilder b;
      b.append(*left.text());
      size_t j = k;
      for (; j < e.ops.size() && (e.ops[j] == "+" || e.ops[j] == "~"); ++j) {
        const Value right = eval(*e.items[j + 1], scope);
        line_ = e.line;
        if (right.none() || (e.ops[j] == "+" && right.undefined()))
          fail("cannot apply '" + e.ops[j] + "' to a string and " + (right.none() ? "none" : "an undefined value"));
        reserve_string(static_cast<int64_t>(b.size()));
        append_printed(*this, b, right);
      }
      left = make_string(std::move(b));
      k = j - 1;
      continue;
    }
    const Value right = eval(*e.items[k + 1], scope);
    line_ = e.line;
    left = binary_op(*this, op, left, right);
  }
  return left;
}

CallArgs Renderer::eval_args(const Args& a, const std::shared_ptr<Scope>& scope) {
  CallArgs out;
  for (const auto& p : a.positional) out.positional.push_back(eval(*p, scope));
  for (const auto& [k, v] : a.keyword) {
    for (const auto& [seen, unused] : out.keyword)
      if (seen == k) fail("the keyword argument '" + k + "' is given twice");
    out.keyword.emplace_back(k, eval(*v, scope));
  }
  return out;
}

Value Renderer::eval_postfix(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value v = eval(*e.items[0], scope);
  std::string what = e.items[0]->kind == Expr::Kind::Name ? e.items[0]->name : "the expression";
  for (size_t k = 0; k < e.postfix.size(); ++k) {
    const Postfix& p = e.postfix[k];
    switch (p.kind) {
      case Postfix::Kind::Attr:
        if (k + 1 < e.postfix.size() && e.postfix[k + 1].kind == Postfix::Kind::Call) {
          CallArgs args = eval_args(e.postfix[k + 1].args, scope);
          line_ = p.line;
          if (v.undefined()) fail("'" + what + "' is undefined: it has no method '" + p.name + "'");
          const Dict* d = v.dict();
          const Value* member = d ? d->find(p.name) : nullptr;
          v = member ? call(*member, args, p.name) : call_method(*this, v, p.name, args);
          ++k;
        } else {
          line_ = p.line;
          if (v.undefined()) fail("'" + what + "' is undefined: it has no attribute '" + p.name + "'");
          v = get_attr(*this, v, p.name);
        }
        what = p.name;
        break;
      case Postfix::Kind::Index: {
        const Value key = eval(*p.index, scope);
        line_ = p.line;
        if (v.undefined()) fail("'" + what + "' is undefined: it cannot be indexed");
        v = get_item(*this, v, key);
        break;
      }
      case Postfix::Kind::Slice: v = slice(v, p, scope); break;
      case Postfix::Kind::Call: {
        CallArgs args = eval_args(p.args, scope);
        line_ = p.line;
        v = call(v, args, what);
        break;
      }
    }
  }
  return v;
}

Value Renderer::eval_pipes(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value v = eval(*e.items[0], scope);
  for (const Pipe& p : e.pipes) {
    CallArgs args = eval_args(p.args, scope);
    line_ = p.line;
    if (e.kind == Expr::Kind::Filter) {
      v = apply_filter(*this, p.name, v, args);
    } else {
      v = Value(apply_test(*this, p.name, v, args) != p.negate);
    }
  }
  return v;
}

namespace {

// Python's slice indices for a sequence of n items (step != 0).
std::vector<int64_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v, int64_t step) {
  auto clamp = [&](const Value& v, int64_t fallback, int64_t lo, int64_t hi) {
    if (v.undefined() || v.none()) return fallback;
    int64_t i = *v.as<int64_t>();
    if (i < 0) i += n;
    return std::clamp(i, lo, hi);
  };
  const int64_t start = step > 0 ? clamp(start_v, 0, 0, n) : clamp(start_v, n - 1, -1, n - 1);
  const int64_t stop = step > 0 ? clamp(stop_v, n, 0, n) : clamp(stop_v, -1, -1, n - 1);
  std::vector<int64_t> out;
  // The count first (no i += step past the ends of int64: a step of 2^63 - 1 would wrap around).
  const uint64_t span = step > 0 ? (stop > start ? static_cast<uint64_t>(stop - start) : 0)
                                 : (start > stop ? static_cast<uint64_t>(start - stop) : 0);
  const uint64_t stride = step > 0 ? static_cast<uint64_t>(step) : 0 - static_cast<uint64_t>(step);
  const uint64_t count = span == 0 ? 0 : (span - 1) / stride + 1;
  for (uint64_t k = 0; k < count; ++k) out.push_back(start + static_cast<int64_t>(k) * step);
  return out;
}

}  // namespace

Value Renderer::slice(const Value& v, const Postfix& p, const std::shared_ptr<Scope>& scope) {
  Value parts[3];
  for (int k = 0; k < 3; ++k) {
    if (p.slice[k]) parts[k] = eval(*p.slice[k], scope);
    if (!parts[k].undefined() && !parts[k].none() && !parts[k].is<int64_t>())
      fail("a slice takes integers, not a " + std::string(type_name(parts[k])));
  }
  line_ = p.line;
  const int64_t step_by = parts[2].is<int64_t>() ? *parts[2].as<int64_t>() : 1;
  if (step_by == 0) fail("a slice step cannot be zero");
  if (const List* l = v.list()) {
    std::vector<Value> items;
    for (int64_t i : slice_indices(static_cast<int64_t>(l->items.size()), parts[0], parts[1], step_by))
      items.push_back(l->items[static_cast<size_t>(i)]);
    return make_list(std::move(items), l->tuple);
  }
  const Text* t = v.text();
  if (!t) fail("cannot slice a " + std::string(type_name(v)));
  const std::vector<size_t> starts = code_point_starts(t->bytes);
  TextBuilder b;
  for (int64_t i : slice_indices(static_cast<int64_t>(starts.size() - 1), parts[0], parts[1], step_by))
    b.append(*t, starts[static_cast<size_t>(i)], starts[static_cast<size_t>(i) + 1]);
  return make_string(std::move(b));
}

}  // namespace frugal::jinja
