#pragma once
// The values of the interpreter. Lists and dicts are immutable and held by shared_ptr, so that the
// identity of an element (messages[k]) survives slicing and assignment; namespaces are the only
// mutable objects (as in jinja2's sandbox). A container records how deeply it nests, so that
// destroying or printing one never recurses deeper than the limits allow.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "jinja/text.h"

namespace frugal::jinja {

struct List;
struct Dict;
struct Namespace;
struct LoopInfo;
struct Callable;

struct Undefined {};
struct None {};

class Value {
 public:
  using Variant = std::variant<Undefined, None, bool, int64_t, double, TextPtr, std::shared_ptr<const List>,
                               std::shared_ptr<const Dict>, std::shared_ptr<Namespace>,
                               std::shared_ptr<const LoopInfo>, std::shared_ptr<const Callable>>;
  Value() = default;
  template <typename T>
  Value(T v) : v_(std::move(v)) {}  // NOLINT: implicit from any alternative
  Value(const char*) = delete;        // would become a bool
  static Value str(std::string bytes, int32_t tag = -1) { return Value(make_text(std::move(bytes), tag)); }

  const Variant& get() const { return v_; }
  template <typename T>
  const T* as() const { return std::get_if<T>(&v_); }
  template <typename T>
  bool is() const { return std::holds_alternative<T>(v_); }
  bool undefined() const { return is<Undefined>(); }
  bool none() const { return is<None>(); }
  bool number() const { return is<int64_t>() || is<double>(); }
  const Text* text() const { auto* p = as<TextPtr>(); return p ? p->get() : nullptr; }
  const List* list() const { auto* p = as<std::shared_ptr<const List>>(); return p ? p->get() : nullptr; }
  const Dict* dict() const { auto* p = as<std::shared_ptr<const Dict>>(); return p ? p->get() : nullptr; }
  Namespace* ns() const { auto* p = as<std::shared_ptr<Namespace>>(); return p ? p->get() : nullptr; }
  const LoopInfo* loop() const { auto* p = as<std::shared_ptr<const LoopInfo>>(); return p ? p->get() : nullptr; }
  const Callable* callable() const { auto* p = as<std::shared_ptr<const Callable>>(); return p ? p->get() : nullptr; }
  double as_double() const;  // a number or bool as a double

 private:
  Variant v_;
};

struct List {
  std::vector<Value> items;
  bool tuple = false;
  int depth = 1;  // 1 + the deepest list or dict inside
};

struct Dict {
  std::vector<std::pair<std::string, Value>> entries;  // in insertion order
  int depth = 1;
  const Value* find(std::string_view key) const;
  void index();  // call once the entries are complete: large dicts get a hash index

 private:
  std::unordered_map<std::string, size_t> index_;
};

struct Namespace {
  std::vector<std::pair<std::string, Value>> attrs;
  Value* find(std::string_view key);
  void set(const std::string& key, Value v);
};

// `loop` inside a for: computed on access instead of a dict per iteration.
struct LoopInfo {
  int64_t index0 = 0, length = 0;
  Value previtem, nextitem;  // Undefined at the ends
};

struct MacroStmt;
struct Scope;
// A macro, a global function (range, namespace, ...), or a method bound to its object.
struct Callable {
  enum class Kind { Macro, Global, Method } kind;
  const MacroStmt* macro = nullptr;
  std::weak_ptr<Scope> closure;  // weak: a scope holding its own macro must not keep itself alive
  std::string name;              // the global's or method's name
  Value self;                    // a method's object
};

// The variables of one scope (the template, a for loop, a macro call); lookups walk the parents.
struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* find(const std::string& name) const;
};

// 1 + the nesting of v's deepest list or dict (0 for anything else).
int depth_of(const Value& v);
// Python's truth value (as @huggingface/jinja's __bool__).
bool truthy(const Value& v);
// The type's name for error messages ("string", "list", ...).
const char* type_name(const Value& v);

}  // namespace frugal::jinja
