#pragma once
// The interpreter's state for one render: scopes, the output and its capture stack (macro bodies
// and block sets render into strings of their own), the turn being written, and the limits'
// counters. Expressions are in eval.cpp, statements in render.cpp, the built-in filters, tests,
// methods and globals in files of their own.
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/chat_template.h"
#include "jinja/value.h"

namespace frugal::jinja {

// Evaluated arguments of a call, filter or test.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The argument at `index`, or the keyword one named `name`; nullptr when neither was given.
  const Value* get(size_t index, std::string_view name) const;
};

class Renderer {
 public:
  Renderer(const std::string& name, const Limits& limits) : name_(name), limits_(limits) {}
  // Renders `program` with `globals` (the context); `messages` maps each message dict to its index.
  Rendered run(const Program& program, std::shared_ptr<Scope> globals,
               std::unordered_map<const Dict*, int32_t> messages);

  [[noreturn]] void fail(const std::string& message) const;
  void step(int64_t n = 1);
  void at_line(int line) { line_ = line; }
  const Limits& limits() const { return limits_; }

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value call(const Value& callee, const CallArgs& args, const std::string& what);
  // New values, refused past the limits before anything large is allocated.
  Value make_list(std::vector<Value> items, bool tuple = false);
  Value make_dict(std::vector<std::pair<std::string, Value>> entries);
  Value make_string(TextBuilder&& b);
  Value make_string(std::string bytes);
  void reserve_string(int64_t bytes);  // refuses a string that would be too long; charges its steps
  void reserve_items(int64_t items);   // the same for a list
  Value make_namespace();

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void exec_set(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void bind(const std::vector<std::string>& targets, const Value& v, Scope& scope);
  std::shared_ptr<const List> iteration_items(const Value& iterable);
  Value call_macro(const Callable& c, const CallArgs& args);
  Value capture(const Body& body, const std::shared_ptr<Scope>& scope);
  void print(const Value& v);
  void emit(const Text& t);

  Value eval_name(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_postfix(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_pipes(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_literal_container(const Expr& e, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Args& a, const std::shared_ptr<Scope>& scope);
  Value slice(const Value& v, const Postfix& p, const std::shared_ptr<Scope>& scope);

  const std::string& name_;
  Limits limits_;
  int line_ = 0;
  int64_t steps_ = 0;
  int calls_ = 0;                // nested macro calls
  int nesting_ = 0;              // nested evaluation (guards the stack)
  std::vector<TextBuilder> sinks_;  // sinks_[0]: the output; the others: captures
  std::vector<std::pair<size_t, int32_t>> turn_runs_;  // (end byte, turn) of the output, expanded at the end
  int32_t current_turn_ = -1;
  std::unordered_map<const Dict*, int32_t> messages_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;  // all of this render's (cycles are broken at the end)
};

// Built-ins (filters.cpp, tests.cpp, methods.cpp, globals.cpp, operators.cpp, printing.cpp).
Value apply_filter(Renderer& r, const std::string& name, const Value& operand, const CallArgs& args);
bool apply_test(Renderer& r, const std::string& name, const Value& operand, const CallArgs& args);
Value get_attr(Renderer& r, const Value& v, const std::string& name);
Value get_item(Renderer& r, const Value& v, const Value& key);
Value call_method(Renderer& r, const Value& self, const std::string& name, const CallArgs& args);
bool is_global(const std::string& name);
Value call_global(Renderer& r, const std::string& name, const CallArgs& args);
Value binary_op(Renderer& r, const std::string& op, const Value& a, const Value& b);
bool equal(const Value& a, const Value& b);
bool contains(Renderer& r, const Value& container, const Value& item);
// How {{ v }} prints v (as @huggingface/jinja: true/false, lists and dicts as JSON, none as "").
void append_printed(Renderer& r, TextBuilder& out, const Value& v);
std::string printed(Renderer& r, const Value& v);
struct JsonOptions {
  int indent = 0;  // 0: on one line
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false, ensure_ascii = false, undefined_as_null = true;
};
std::string to_json(Renderer& r, const Value& v, const JsonOptions& options);
std::string js_number(double v);     // JavaScript's String(number)
std::string float_text(double v);    // how @huggingface/jinja prints a float: 1.0, 0.5, 1e+21

}  // namespace frugal::jinja
