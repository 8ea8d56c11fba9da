// For loops and macro calls: the statements that open a scope of their own.
#include <algorithm>

#include "core/error.h"
#include "jinja/render.h"

namespace frugal::jinja {

// A list to iterate: a list itself, a dict's keys, a string's characters; undefined is empty.
std::shared_ptr<const List> Renderer::iteration_items(const Value& iterable) {
  if (auto* l = iterable.as<std::shared_ptr<const List>>()) return *l;
  std::vector<Value> items;
  if (const Dict* d = iterable.dict()) {
    for (const auto& [k, v] : d->entries) items.push_back(Value::str(k));
  } else if (const Text* t = iterable.text()) {
    const std::vector<size_t> starts = code_point_starts(t->bytes);
    reserve_items(static_cast<int64_t>(starts.size()));
    for (size_t k = 0; k + 1 < starts.size(); ++k) items.push_back(Value(sub_text(*t, starts[k], starts[k + 1])));
  } else if (!iterable.undefined()) {
    fail("cannot loop over a " + std::string(type_name(iterable)));
  }
  Value list = make_list(std::move(items));
  return *list.as<std::shared_ptr<const List>>();
}

Renderer::Flow Renderer::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  std::shared_ptr<const List> items = iteration_items(eval(*s.expr, scope));
  auto loop_scope = std::make_shared<Scope>();
  loop_scope->parent = scope;
  if (s.filter) {  // for x in xs if cond: the loop sees only the items that pass
    std::vector<Value> kept;
    for (const Value& item : items->items) {
      step();
      bind(s.targets, item, *loop_scope);
      if (truthy(eval(*s.filter, loop_scope))) kept.push_back(item);
    }
    items = *make_list(std::move(kept)).as<std::shared_ptr<const List>>();
  }
  if (items->items.empty()) {
    exec(s.else_body, loop_scope);
    return Flow::Normal;
  }
  const auto n = static_cast<int64_t>(items->items.size());
  for (int64_t i = 0; i < n; ++i) {
    step();
    const Value& item = items->items[static_cast<size_t>(i)];
    auto info = std::make_shared<LoopInfo>();
    info->index0 = i;
    info->length = n;
    if (i > 0) info->previtem = items->items[static_cast<size_t>(i - 1)];
    if (i + 1 < n) info->nextitem = items->items[static_cast<size_t>(i + 1)];
    loop_scope->vars["loop"] = Value(std::shared_ptr<const LoopInfo>(std::move(info)));
    line_ = s.line;
    bind(s.targets, item, *loop_scope);
    const int32_t outer_turn = current_turn_;
    if (const Dict* d = item.dict())
      if (auto it = messages_.find(d); it != messages_.end()) current_turn_ = it->second;
    const Flow f = exec(s.body, loop_scope);
    current_turn_ = outer_turn;
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

Value Renderer::call(const Value& callee, const CallArgs& args, const std::string& what) {
  const Callable* c = callee.callable();
  if (!c) {
    if (callee.undefined()) fail("'" + what + "' is undefined: it cannot be called");
    fail("'" + what + "' is a " + type_name(callee) + ", not something to call");
  }
  switch (c->kind) {
    case Callable::Kind::Macro: return call_macro(*c, args);
    case Callable::Kind::Global: return call_global(*this, c->name, args);
    case Callable::Kind::Method: return call_method(*this, c->self, c->name, args);
  }
  return Value();
}

Value Renderer::call_macro(const Callable& c, const CallArgs& args) {
  const MacroStmt& m = *c.macro;
  std::shared_ptr<Scope> closure = c.closure.lock();
  if (!closure) fail("unsupported construct: macro '" + m.name + "' called after the block that defined it ended");
  if (calls_ >= limits_.max_depth) fail("macro calls nested deeper than " + std::to_string(limits_.max_depth));
  if (args.positional.size() > m.params.size())
    fail("macro '" + m.name + "' takes at most " + std::to_string(m.params.size()) + " arguments");
  for (const auto& kv : args.keyword)
    if (std::none_of(m.params.begin(), m.params.end(), [&](const auto& p) { return p.first == kv.first; }))
      fail("macro '" + m.name + "' has no parameter '" + kv.first + "'");
  auto scope = std::make_shared<Scope>();
  scope->parent = closure;
  std::vector<size_t> defaults;
  for (size_t k = 0; k < m.params.size(); ++k) {
    const Value* given = args.get(k, m.params[k].first);
    scope->vars[m.params[k].first] = given ? *given : Value();
    if (!given && m.params[k].second) defaults.push_back(k);
  }
  for (size_t k : defaults) scope->vars[m.params[k].first] = eval(*m.params[k].second, scope);
  struct Depth {
    int& n;
    explicit Depth(int& d) : n(++d) {}
    ~Depth() { --n; }
  } depth(calls_);
  return capture(m.body, scope);
}

}  // namespace frugal::jinja
