#pragma once
// Tokens to the program tree (jinja/ast.h). Nesting (brackets, blocks, `not`, unary signs) deeper
// than Limits::max_depth is refused, so that neither parsing nor evaluating recurses without bound.
// Statements other than if/for/set/macro/break/continue/raw are refused as "unsupported construct".
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace frugal::jinja {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name, int max_depth)
      : tokens_(std::move(tokens)), name_(name), max_depth_(max_depth) {}
  Program parse();

  // Expressions (parser_expr.cpp).
  ExprPtr expression();  // a if b else c

 private:
  struct Nest {  // one level of nesting, refused past max_depth
    explicit Nest(Parser& p);
    ~Nest() { --p.depth_; }
    Parser& p;
  };
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void unexpected() const;
  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& next() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  bool at_punct(std::string_view p, size_t ahead = 0) const;
  bool at_name(std::string_view n, size_t ahead = 0) const;
  void expect_punct(std::string_view p);
  void expect_close();  // %}
  std::string expect_name();

  // Statements (parser.cpp).
  Body body(std::initializer_list<std::string_view> enders, std::string* ended_by);
  std::unique_ptr<Stmt> statement();
  std::unique_ptr<Stmt> if_statement(int line);
  std::unique_ptr<Stmt> for_statement(int line);
  std::unique_ptr<Stmt> set_statement(int line);
  std::unique_ptr<Stmt> macro_statement(int line);

  ExprPtr or_expr();
  ExprPtr and_expr();
  ExprPtr not_expr();
  ExprPtr compare_expr();
  ExprPtr binary_level(int level);
  ExprPtr test_expr();
  ExprPtr filter_expr();
  ExprPtr unary_expr();
  ExprPtr postfix_expr();
  ExprPtr primary();
  ExprPtr sequence(Expr::Kind kind, std::string_view close);
  ExprPtr dict_literal(int line);
  ExprPtr tuple_tail(ExprPtr first, int line);
  Postfix subscript(int line);
  Args call_args();

  std::vector<Token> tokens_;
  const std::string& name_;
  int max_depth_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loops_ = 0;  // enclosing for loops (break/continue need one); a macro body starts at 0
};

std::shared_ptr<const Program> parse_template(std::string_view source, const std::string& name, int max_depth);

}  // namespace frugal::jinja
