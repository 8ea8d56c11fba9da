#pragma once
// The parsed template. Chains of one precedence level (a + b + c, x|f|g, a.b[0](1)) are one node
// with a list of operands, so that evaluating a long chain never recurses deeper than the
// template's bracket and block nesting, which the parser bounds.
#include <memory>
#include <string>
#include <vector>

#include "jinja/value.h"

namespace frugal::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// Arguments of a call, filter or test: positional ones, then keyword ones.
struct Args {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

// One step of a postfix chain: .name, [index], [a:b:c], (args).
struct Postfix {
  enum class Kind { Attr, Index, Slice, Call } kind;
  int line = 0;
  std::string name;          // Attr
  ExprPtr index;             // Index
  ExprPtr slice[3];          // Slice: start, stop, step (null when left out)
  Args args;                 // Call
};

// One filter (|name(args)) or test (is [not] name(args)) of a chain.
struct Pipe {
  int line = 0;
  std::string name;
  bool negate = false;  // tests: `is not`
  Args args;
};

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    List,      // items
    Tuple,     // items
    Dict,      // items: key, value, key, value, ...
    Postfix,   // items[0], postfix
    Filter,    // items[0], pipes
    Test,      // items[0], pipes
    Unary,     // name ("-" or "+"), items[0]
    Not,       // items[0]
    Binary,    // items, ops (left to right, one precedence level)
    And,       // items
    Or,        // items
    Cond,      // items: then, condition, else (else may be null: undefined)
  } kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  std::vector<Postfix> postfix;
  std::vector<Pipe> pipes;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct MacroStmt {
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default null when none
  Body body;
};

struct Stmt {
  enum class Kind { Text, Print, If, For, Set, SetBlock, Macro, Break, Continue } kind;
  int line = 0;
  std::string text;                                 // Text
  ExprPtr expr;                                     // Print; Set's value; For's iterable
  ExprPtr filter;                                   // For ... if filter
  std::vector<std::pair<ExprPtr, Body>> branches;   // If: (condition, body); a null condition is else
  std::vector<std::string> targets;                 // For, Set, SetBlock: names (unpacked when several)
  std::string attr;                                 // Set ns.attr: targets[0] is ns
  Body body, else_body;                             // For, SetBlock
  std::unique_ptr<MacroStmt> macro;                 // Macro
};

struct Program {
  Body body;
};

}  // namespace frugal::jinja
