#include "jinja/value.h"

namespace frugal::jinja {

double Value::as_double() const {
  if (auto* i = as<int64_t>()) return static_cast<double>(*i);
  if (auto* f = as<double>()) return *f;
  if (auto* b = as<bool>()) return *b ? 1.0 : 0.0;
  return 0.0;
}

const Value* Dict::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Dict::index() {
  if (entries.size() <= 8) return;
  index_.clear();
  for (size_t i = 0; i < entries.size(); ++i) index_[entries[i].first] = i;  // a later duplicate wins
}

Value* Namespace::find(std::string_view key) {
  for (auto& [k, v] : attrs)
    if (k == key) return &v;
  return nullptr;
}

void Namespace::set(const std::string& key, Value v) {
  if (Value* old = find(key))
    *old = std::move(v);
  else
    attrs.emplace_back(key, std::move(v));
}

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

int depth_of(const Value& v) {
  if (const List* l = v.list()) return l->depth;
  if (const Dict* d = v.dict()) return d->depth;
  return 0;
}

bool truthy(const Value& v) {
  struct Visitor {
    bool operator()(const Undefined&) const { return false; }
    bool operator()(const None&) const { return false; }
    bool operator()(bool b) const { return b; }
    bool operator()(int64_t i) const { return i != 0; }
    bool operator()(double f) const { return f != 0.0 && f == f; }
    bool operator()(const TextPtr& t) const { return !t->bytes.empty(); }
    bool operator()(const std::shared_ptr<const List>& l) const { return !l->items.empty(); }
    bool operator()(const std::shared_ptr<const Dict>& d) const { return !d->entries.empty(); }
    bool operator()(const std::shared_ptr<Namespace>&) const { return true; }
    bool operator()(const std::shared_ptr<const LoopInfo>&) const { return true; }
    bool operator()(const std::shared_ptr<const Callable>&) const { return true; }
  };
  return std::visit(Visitor{}, v.get());
}

const char* type_name(const Value& v) {
  static constexpr const char* kNames[] = {"undefined", "none",      "boolean", "integer",  "float",   "string",
                                           "list",      "dict",      "namespace", "loop",   "callable"};
  if (const List* l = v.list(); l && l->tuple) return "tuple";
  return kNames[v.get().index()];
}

}  // namespace frugal::jinja
