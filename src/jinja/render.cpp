// Statements: text, {{ }}, if, for (with loop, filters, else, break/continue), set, macros; the
// output with its per-byte turn, and the limits.
#include "jinja/render.h"

#include <algorithm>

#include "core/error.h"

namespace frugal::jinja {

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : keyword)
    if (k == name) return &v;
  return nullptr;
}

void Renderer::fail(const std::string& message) const {
  std::string one_line = message;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  std::replace(one_line.begin(), one_line.end(), '\r', ' ');
  throw Error(name_ + ":" + std::to_string(line_) + ": " + one_line);
}

void Renderer::step(int64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps)
    fail("the template takes more than " + std::to_string(limits_.max_steps) + " evaluation steps (a runaway loop?)");
}

void Renderer::reserve_string(int64_t bytes) {
  if (bytes > limits_.max_output_bytes)
    fail("a string of " + std::to_string(bytes) + " bytes exceeds the limit of " +
         std::to_string(limits_.max_output_bytes));
  step(bytes / 64);
}

void Renderer::reserve_items(int64_t items) {
  const int64_t max_items = limits_.max_output_bytes / 64;
  if (items > max_items)
    fail("a list of " + std::to_string(items) + " items exceeds the limit of " + std::to_string(max_items));
  step(items);
}

Value Renderer::make_list(std::vector<Value> items, bool tuple) {
  reserve_items(static_cast<int64_t>(items.size()));
  auto list = std::make_shared<List>();
  for (const Value& v : items) list->depth = std::max(list->depth, depth_of(v) + 1);
  if (list->depth > limits_.max_depth) fail("lists and dicts nested deeper than " + std::to_string(limits_.max_depth));
  list->items = std::move(items);
  list->tuple = tuple;
  return Value(std::shared_ptr<const List>(std::move(list)));
}

Value Renderer::make_dict(std::vector<std::pair<std::string, Value>> entries) {
  reserve_items(static_cast<int64_t>(entries.size()));
  auto dict = std::make_shared<Dict>();
  for (const auto& [k, v] : entries) dict->depth = std::max(dict->depth, depth_of(v) + 1);
  if (dict->depth > limits_.max_depth) fail("lists and dicts nested deeper than " + std::to_string(limits_.max_depth));
  dict->entries = std::move(entries);
  dict->index();
  return Value(std::shared_ptr<const Dict>(std::move(dict)));
}

Value Renderer::make_string(TextBuilder&& b) {
  reserve_string(static_cast<int64_t>(b.size()));
  return Value(b.finish());
}

Value Renderer::make_string(std::string bytes) {
  reserve_string(static_cast<int64_t>(bytes.size()));
  return Value::str(std::move(bytes));
}

Value Renderer::make_namespace() {
  if (static_cast<int64_t>(namespaces_.size()) >= limits_.max_steps / 256)
    fail("more than " + std::to_string(limits_.max_steps / 256) + " namespaces");
  step(16);
  namespaces_.push_back(std::make_shared<Namespace>());
  return Value(namespaces_.back());
}

Rendered Renderer::run(const Program& program, std::shared_ptr<Scope> globals,
                       std::unordered_map<const Dict*, int32_t> messages) {
  messages_ = std::move(messages);
  sinks_.emplace_back();
  struct BreakCycles {  // namespaces may hold themselves: empty them all, then let go
    std::vector<std::shared_ptr<Namespace>>& all;
    ~BreakCycles() {
      for (auto& ns : all) ns->attrs.clear();
      all.clear();
    }
  } break_cycles{namespaces_};
  exec(program.body, globals);
  Text out = sinks_[0].take();
  Rendered r;
  r.content = out.prov.empty() ? std::vector<int32_t>(out.bytes.size(), -1) : std::move(out.prov);
  r.text = std::move(out.bytes);
  r.turn.reserve(r.text.size());
  for (const auto& [end, turn] : turn_runs_) r.turn.resize(end, turn);
  return r;
}

void Renderer::emit(const Text& t) {
  if (t.bytes.empty()) return;
  TextBuilder& sink = sinks_.back();
  if (static_cast<int64_t>(sink.size() + t.bytes.size()) > limits_.max_output_bytes)
    fail("the output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  step(static_cast<int64_t>(t.bytes.size()) / 64);
  sink.append(t);
  if (sinks_.size() > 1) return;
  if (!turn_runs_.empty() && turn_runs_.back().second == current_turn_)
    turn_runs_.back().first = sink.size();
  else
    turn_runs_.emplace_back(sink.size(), current_turn_);
}

void Renderer::print(const Value& v) {
  if (const Text* t = v.text()) return emit(*t);
  if (v.undefined() || v.none()) return;
  TextBuilder b;
  append_printed(*this, b, v);
  emit(b.peek());
}

Value Renderer::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  sinks_.emplace_back();
  exec(body, scope);
  Value v = Value(sinks_.back().finish());
  sinks_.pop_back();
  return v;
}

Renderer::Flow Renderer::exec(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& s : body) {
    step();
    line_ = s->line;
    switch (s->kind) {
      case Stmt::Kind::Text: {
        Text t{s->text, {}};
        emit(t);
        break;
      }
      case Stmt::Kind::Print: print(eval(*s->expr, scope)); break;
      case Stmt::Kind::If:
        for (const auto& [cond, branch] : s->branches) {
          line_ = s->line;
          if (cond && !truthy(eval(*cond, scope))) continue;
          if (Flow f = exec(branch, scope); f != Flow::Normal) return f;
          break;
        }
        break;
      case Stmt::Kind::For:
        if (Flow f = exec_for(*s, scope); f != Flow::Normal) return f;
        break;
      case Stmt::Kind::Set:
      case Stmt::Kind::SetBlock: exec_set(*s, scope); break;
      case Stmt::Kind::Macro: {
        Callable c{Callable::Kind::Macro, s->macro.get(), scope, s->macro->name, Value()};
        scope->vars[s->macro->name] = Value(std::make_shared<const Callable>(std::move(c)));
        break;
      }
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
    }
  }
  return Flow::Normal;
}

void Renderer::bind(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
  if (targets.size() == 1) {
    scope.vars[targets[0]] = v;
    return;
  }
  const List* l = v.list();
  if (!l) fail("cannot unpack a " + std::string(type_name(v)) + " into " + std::to_string(targets.size()) + " names");
  if (l->items.size() != targets.size())
    fail("cannot unpack " + std::to_string(l->items.size()) + " values into " + std::to_string(targets.size()) +
         " names");
  for (size_t k = 0; k < targets.size(); ++k) scope.vars[targets[k]] = l->items[k];
}

void Renderer::exec_set(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  Value v = s.kind == Stmt::Kind::SetBlock ? capture(s.body, scope) : eval(*s.expr, scope);
  line_ = s.line;
  if (s.attr.empty()) return bind(s.targets, v, *scope);
  const Value* target = scope->find(s.targets[0]);
  Namespace* ns = target ? target->ns() : nullptr;
  if (!ns) fail("cannot set attribute '" + s.attr + "' of '" + s.targets[0] + "': only a namespace() takes attributes");
  ns->set(s.attr, std::move(v));
}

}  // namespace frugal::jinja
