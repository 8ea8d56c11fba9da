// Expressions, by precedence as @huggingface/jinja parses them (loosest first): a if b else c; or;
// and; not; comparisons and in / not in; + - ~; * / // %; **; is tests; | filters; unary - +;
// postfix .name [index] [a:b:c] (args); literals, names and brackets.
#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/error.h"
#include "jinja/parser.h"

namespace frugal::jinja {

namespace {

ExprPtr node(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

ExprPtr literal(Value v, int line) {
  ExprPtr e = node(Expr::Kind::Literal, line);
  e->value = std::move(v);
  return e;
}

Postfix step(Postfix::Kind kind, int line) {
  Postfix p;
  p.kind = kind;
  p.line = line;
  return p;
}

// Tests that take an argument without brackets: `x is divisibleby 3`, `x is sameas false`.
bool test_takes_bare_argument(const std::string& name) {
  return name == "divisibleby" || name == "equalto" || name == "eq" || name == "sameas" || name == "in" ||
         name == "ne" || name == "lt" || name == "le" || name == "gt" || name == "ge";
}

}  // namespace

ExprPtr Parser::expression() {
  Nest nest(*this);
  const int line = peek().line;
  ExprPtr value = or_expr();
  if (!at_name("if")) return value;
  ++pos_;
  ExprPtr e = node(Expr::Kind::Cond, line);
  e->items.push_back(std::move(value));
  e->items.push_back(or_expr());
  if (at_name("else")) {
    ++pos_;
    e->items.push_back(expression());
  } else {
    e->items.push_back(nullptr);  // `a if c` without else: undefined when c is false
  }
  return e;
}

ExprPtr Parser::or_expr() {
  const int line = peek().line;
  ExprPtr first = and_expr();
  if (!at_name("or")) return first;
  ExprPtr e = node(Expr::Kind::Or, line);
  e->items.push_back(std::move(first));
  while (at_name("or")) {
    ++pos_;
    e->items.push_back(and_expr());
  }
  return e;
}

ExprPtr Parser::and_expr() {
  const int line = peek().line;
  ExprPtr first = not_expr();
  if (!at_name("and")) return first;
  ExprPtr e = node(Expr::Kind::And, line);
  e->items.push_back(std::move(first));
  while (at_name("and")) {
    ++pos_;
    e->items.push_back(not_expr());
  }
  return e;
}

ExprPtr Parser::not_expr() {
  if (!at_name("not")) return compare_expr();
  Nest nest(*this);
  ExprPtr e = node(Expr::Kind::Not, next().line);
  e->items.push_back(not_expr());
  return e;
}

ExprPtr Parser::compare_expr() {
  static constexpr std::string_view kOps[] = {"==", "!=", "<", ">", "<=", ">="};
  const int line = peek().line;
  ExprPtr first = binary_level(0);
  ExprPtr e;
  for (;;) {
    std::string op;
    if (at_name("not") && at_name("in", 1)) {
      op = "not in";
      pos_ += 2;
    } else if (at_name("in")) {
      op = "in";
      ++pos_;
    } else if (peek().type == Token::Type::Punct && std::find(std::begin(kOps), std::end(kOps), std::string_view(peek().text)) != std::end(kOps)) {
      op = next().text;
    } else {
      break;
    }
    if (!e) {
      e = node(Expr::Kind::Binary, line);
      e->items.push_back(std::move(first));
    }
    e->ops.push_back(op);
    e->items.push_back(binary_level(0));
  }
  return e ? std::move(e) : std::move(first);
}

// Level 0: + - ~; level 1: * / // %; level 2: ** (left to right, as @huggingface/jinja).
ExprPtr Parser::binary_level(int level) {
  static const std::vector<std::vector<std::string_view>> kLevels = {{"+", "-", "~"}, {"*", "/", "//", "%"}, {"**"}};
  const auto operand = [&] { return level == 2 ? test_expr() : binary_level(level + 1); };
  const int line = peek().line;
  ExprPtr first = operand();
  ExprPtr e;
  const auto& ops = kLevels[static_cast<size_t>(level)];
  while (peek().type == Token::Type::Punct && std::find(ops.begin(), ops.end(), std::string_view(peek().text)) != ops.end()) {
    if (!e) {
      e = node(Expr::Kind::Binary, line);
      e->items.push_back(std::move(first));
    }
    e->ops.push_back(next().text);
    e->items.push_back(operand());
  }
  return e ? std::move(e) : std::move(first);
}

ExprPtr Parser::test_expr() {
  const int line = peek().line;
  ExprPtr operand = filter_expr();
  if (!at_name("is")) return operand;
  ExprPtr e = node(Expr::Kind::Test, line);
  e->items.push_back(std::move(operand));
  while (at_name("is")) {
    Pipe test;
    test.line = next().line;
    if (at_name("not")) {
      test.negate = true;
      ++pos_;
    }
    test.name = expect_name();
    if (at_punct("(")) {
      test.args = call_args();
    } else if (test_takes_bare_argument(test.name) && !at_name("and") && !at_name("or") && !at_name("else") &&
               !at_name("if") && peek().type != Token::Type::ExprClose && peek().type != Token::Type::StmtClose) {
      test.args.positional.push_back(unary_expr());
    }
    e->pipes.push_back(std::move(test));
  }
  return e;
}

ExprPtr Parser::filter_expr() {
  const int line = peek().line;
  ExprPtr operand = unary_expr();
  if (!at_punct("|")) return operand;
  ExprPtr e = node(Expr::Kind::Filter, line);
  e->items.push_back(std::move(operand));
  while (at_punct("|")) {
    Pipe filter;
    filter.line = next().line;
    filter.name = expect_name();
    if (at_punct("(")) filter.args = call_args();
    e->pipes.push_back(std::move(filter));
  }
  return e;
}

ExprPtr Parser::unary_expr() {
  if (!at_punct("-") && !at_punct("+")) return postfix_expr();
  Nest nest(*this);
  ExprPtr e = node(Expr::Kind::Unary, peek().line);
  e->name = next().text;
  e->items.push_back(unary_expr());
  return e;
}

ExprPtr Parser::postfix_expr() {
  const int line = peek().line;
  ExprPtr base = primary();
  ExprPtr e;
  while (at_punct(".") || at_punct("[") || at_punct("(")) {
    if (!e) {
      e = node(Expr::Kind::Postfix, line);
      e->items.push_back(std::move(base));
    }
    const Token& t = next();
    if (t.text == "(") {
      --pos_;
      Postfix p = step(Postfix::Kind::Call, t.line);
      p.args = call_args();
      e->postfix.push_back(std::move(p));
    } else if (t.text == "[") {
      e->postfix.push_back(subscript(t.line));
    } else if (peek().type == Token::Type::Int) {  // foo.0: an index
      Postfix p = step(Postfix::Kind::Index, t.line);
      p.index = primary();
      e->postfix.push_back(std::move(p));
    } else {
      Postfix p = step(Postfix::Kind::Attr, t.line);
      p.name = expect_name();
      e->postfix.push_back(std::move(p));
    }
  }
  return e ? std::move(e) : std::move(base);
}

// After '[': an index or a slice a:b:c (each part optional), then ']'.
Postfix Parser::subscript(int line) {
  Nest nest(*this);
  Postfix p = step(Postfix::Kind::Index, line);
  ExprPtr parts[3];
  size_t n = 0;
  if (!at_punct(":")) parts[0] = expression();
  while (at_punct(":")) {
    ++pos_;
    if (++n > 2) fail("syntax error: a slice takes at most three parts");
    p.kind = Postfix::Kind::Slice;
    if (!at_punct(":") && !at_punct("]")) parts[n] = expression();
  }
  if (p.kind == Postfix::Kind::Index && !parts[0]) unexpected();
  expect_punct("]");
  if (p.kind == Postfix::Kind::Index) {
    p.index = std::move(parts[0]);
  } else {
    for (size_t k = 0; k < 3; ++k) p.slice[k] = std::move(parts[k]);
  }
  return p;
}

// '(' [positional, ...] [name=value, ...] ')'
Args Parser::call_args() {
  Nest nest(*this);
  expect_punct("(");
  Args args;
  while (!at_punct(")")) {
    if (at_punct("*") || at_punct("**")) fail("unsupported construct '" + peek().text + "' argument unpacking");
    if (peek().type == Token::Type::Name && at_punct("=", 1)) {
      std::string key = next().text;
      ++pos_;
      args.keyword.emplace_back(std::move(key), expression());
    } else {
      if (!args.keyword.empty()) fail("syntax error: a positional argument after keyword arguments");
      args.positional.push_back(expression());
    }
    if (!at_punct(",")) break;
    ++pos_;
  }
  expect_punct(")");
  return args;
}

ExprPtr Parser::primary() {
  const Token& t = peek();
  const int line = t.line;
  switch (t.type) {
    case Token::Type::String: {
      std::string s;
      while (peek().type == Token::Type::String) s += next().text;  // 'a' 'b' is 'ab'
      return literal(Value::str(std::move(s)), line);
    }
    case Token::Type::Int: {
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (ec != std::errc()) fail("the integer " + t.text + " is too large");
      ++pos_;
      return literal(Value(v), line);
    }
    case Token::Type::Float:
      ++pos_;
      return literal(Value(std::strtod(t.text.c_str(), nullptr)), line);
    case Token::Type::Name: {
      const std::string& n = t.text;
      ++pos_;
      if (n == "true" || n == "True") return literal(Value(true), line);
      if (n == "false" || n == "False") return literal(Value(false), line);
      if (n == "none" || n == "None") return literal(Value(None{}), line);
      ExprPtr e = node(Expr::Kind::Name, line);
      e->name = n;
      return e;
    }
    case Token::Type::Punct:
      if (t.text == "(") {
        Nest nest(*this);
        ++pos_;
        if (at_punct(")")) {
          ++pos_;
          return node(Expr::Kind::Tuple, line);
        }
        ExprPtr first = expression();
        if (at_punct(",")) first = tuple_tail(std::move(first), line);
        expect_punct(")");
        return first;
      }
      if (t.text == "[") return sequence(Expr::Kind::List, "]");
      if (t.text == "{") return dict_literal(line);
      break;
    default:
      break;
  }
  unexpected();
}

// first, a, b, ... (a trailing comma allowed) as a tuple; stops before ')' or a closing tag.
ExprPtr Parser::tuple_tail(ExprPtr first, int line) {
  ExprPtr e = node(Expr::Kind::Tuple, line);
  e->items.push_back(std::move(first));
  while (at_punct(",")) {
    ++pos_;
    if (at_punct(")") || peek().type == Token::Type::StmtClose) break;
    e->items.push_back(expression());
  }
  return e;
}

ExprPtr Parser::sequence(Expr::Kind kind, std::string_view close) {
  Nest nest(*this);
  ExprPtr e = node(kind, next().line);
  while (!at_punct(close)) {
    e->items.push_back(expression());
    if (!at_punct(",")) break;
    ++pos_;
  }
  expect_punct(close);
  return e;
}

ExprPtr Parser::dict_literal(int line) {
  Nest nest(*this);
  ++pos_;
  ExprPtr e = node(Expr::Kind::Dict, line);
  while (!at_punct("}")) {
    e->items.push_back(expression());
    expect_punct(":");
    e->items.push_back(expression());
    if (!at_punct(",")) break;
    ++pos_;
  }
  expect_punct("}");
  return e;
}

}  // namespace frugal::jinja
