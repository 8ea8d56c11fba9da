#include "jinja/parser.h"

#include <algorithm>

#include "core/error.h"

namespace frugal::jinja {

namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case Token::Type::Text: return "text";
    case Token::Type::StmtOpen: return "'{%'";
    case Token::Type::StmtClose: return "'%}'";
    case Token::Type::ExprOpen: return "'{{'";
    case Token::Type::ExprClose: return "'}}'";
    case Token::Type::String: return "a string";
    case Token::Type::End: return "the end of the template";
    default: return "'" + t.text + "'";
  }
}

std::unique_ptr<Stmt> make_stmt(Stmt::Kind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

bool is_ender(std::string_view name) {
  static constexpr std::string_view kEnders[] = {"endif", "elif", "else", "endfor", "endset", "endmacro", "endraw"};
  return std::find(std::begin(kEnders), std::end(kEnders), name) != std::end(kEnders);
}

}  // namespace

Parser::Nest::Nest(Parser& parser) : p(parser) {
  if (++p.depth_ > p.max_depth_)
    p.fail("nesting deeper than " + std::to_string(p.max_depth_) + " levels (brackets, blocks or operators)");
}

void Parser::fail(const std::string& message) const {
  throw Error(name_ + ":" + std::to_string(peek().line) + ": " + message);
}

void Parser::unexpected() const { fail("syntax error: unexpected " + describe(peek())); }

bool Parser::at_punct(std::string_view p, size_t ahead) const {
  const Token& t = peek(ahead);
  return t.type == Token::Type::Punct && t.text == p;
}

bool Parser::at_name(std::string_view n, size_t ahead) const {
  const Token& t = peek(ahead);
  return t.type == Token::Type::Name && t.text == n;
}

void Parser::expect_punct(std::string_view p) {
  if (!at_punct(p)) fail("syntax error: expected '" + std::string(p) + "', got " + describe(peek()));
  ++pos_;
}

void Parser::expect_close() {
  if (peek().type != Token::Type::StmtClose) fail("syntax error: expected '%}', got " + describe(peek()));
  ++pos_;
}

std::string Parser::expect_name() {
  if (peek().type != Token::Type::Name) fail("syntax error: expected a name, got " + describe(peek()));
  return next().text;
}

Program Parser::parse() {
  Program program;
  program.body = body({}, nullptr);
  return program;
}

// Statements up to {% ENDER %} (one of enders; consumed up to the ender's name), or to the end of
// the template when enders is empty.
Body Parser::body(std::initializer_list<std::string_view> enders, std::string* ended_by) {
  Nest nest(*this);
  Body out;
  for (;;) {
    const Token& t = peek();
    if (t.type == Token::Type::End) {
      if (enders.size() == 0) return out;
      fail("syntax error: the template ends before {% " + std::string(*(enders.end() - 1)) + " %}");
    }
    if (t.type == Token::Type::Text) {
      out.push_back(make_stmt(Stmt::Kind::Text, t.line));
      out.back()->text = t.text;
      ++pos_;
    } else if (t.type == Token::Type::ExprOpen) {
      ++pos_;
      auto s = make_stmt(Stmt::Kind::Print, t.line);
      s->expr = expression();
      if (peek().type != Token::Type::ExprClose) fail("syntax error: expected '}}', got " + describe(peek()));
      ++pos_;
      out.push_back(std::move(s));
    } else if (t.type == Token::Type::StmtOpen) {
      const Token& name = peek(1);
      if (name.type == Token::Type::Name && std::find(enders.begin(), enders.end(), name.text) != enders.end()) {
        pos_ += 2;
        *ended_by = name.text;
        return out;
      }
      ++pos_;
      out.push_back(statement());
    } else {
      unexpected();
    }
  }
}

std::unique_ptr<Stmt> Parser::statement() {
  const Token& t = peek();
  if (t.type != Token::Type::Name) fail("syntax error: expected a statement name after '{%', got " + describe(t));
  const std::string name = t.text;
  const int line = t.line;
  ++pos_;
  if (name == "if") return if_statement(line);
  if (name == "for") return for_statement(line);
  if (name == "set") return set_statement(line);
  if (name == "macro") return macro_statement(line);
  if (name == "break" || name == "continue") {
    if (loops_ == 0) fail("'" + name + "' outside a for loop");
    expect_close();
    return make_stmt(name == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
  }
  if (is_ender(name)) fail("syntax error: '" + name + "' without its opening statement");
  fail("unsupported construct '" + name + "'");
}

std::unique_ptr<Stmt> Parser::if_statement(int line) {
  auto s = make_stmt(Stmt::Kind::If, line);
  ExprPtr cond = expression();
  for (;;) {
    expect_close();
    std::string ender;
    Body b = body({"elif", "else", "endif"}, &ender);
    s->branches.emplace_back(std::move(cond), std::move(b));
    if (ender == "endif") break;
    if (ender == "else") {
      expect_close();
      Body e = body({"endif"}, &ender);
      s->branches.emplace_back(nullptr, std::move(e));
      break;
    }
    cond = expression();  // elif
  }
  expect_close();
  return s;
}

std::unique_ptr<Stmt> Parser::for_statement(int line) {
  auto s = make_stmt(Stmt::Kind::For, line);
  const bool parenthesized = at_punct("(");
  if (parenthesized) ++pos_;
  s->targets.push_back(expect_name());
  while (at_punct(",")) {
    ++pos_;
    s->targets.push_back(expect_name());
  }
  if (parenthesized) expect_punct(")");
  if (!at_name("in")) fail("syntax error: expected 'in' in the for statement, got " + describe(peek()));
  ++pos_;
  s->expr = or_expr();
  if (at_name("if")) {
    ++pos_;
    s->filter = expression();
  }
  if (at_name("recursive")) fail("unsupported construct 'recursive'");
  expect_close();
  ++loops_;
  std::string ender;
  s->body = body({"else", "endfor"}, &ender);
  --loops_;
  if (ender == "else") {
    expect_close();
    s->else_body = body({"endfor"}, &ender);
  }
  expect_close();
  return s;
}

std::unique_ptr<Stmt> Parser::set_statement(int line) {
  auto s = make_stmt(Stmt::Kind::Set, line);
  s->targets.push_back(expect_name());
  if (at_punct(".")) {
    ++pos_;
    s->attr = expect_name();
  }
  while (s->attr.empty() && at_punct(",")) {
    ++pos_;
    s->targets.push_back(expect_name());
  }
  if (at_punct("=")) {
    ++pos_;
    const int value_line = peek().line;
    ExprPtr value = expression();
    s->expr = at_punct(",") ? tuple_tail(std::move(value), value_line) : std::move(value);
    expect_close();
    return s;
  }
  if (at_punct("|")) fail("unsupported construct 'set with a filter'");
  if (s->targets.size() != 1 || !s->attr.empty()) fail("syntax error: a block set takes one name");
  expect_close();
  s->kind = Stmt::Kind::SetBlock;
  std::string ender;
  s->body = body({"endset"}, &ender);
  expect_close();
  return s;
}

std::unique_ptr<Stmt> Parser::macro_statement(int line) {
  auto s = make_stmt(Stmt::Kind::Macro, line);
  s->macro = std::make_unique<MacroStmt>();
  s->macro->name = expect_name();
  expect_punct("(");
  while (!at_punct(")")) {
    std::string param = expect_name();
    ExprPtr fallback;
    if (at_punct("=")) {
      ++pos_;
      fallback = expression();
    }
    for (const auto& [existing, unused] : s->macro->params)
      if (existing == param) fail("syntax error: macro parameter '" + param + "' named twice");
    s->macro->params.emplace_back(std::move(param), std::move(fallback));
    if (!at_punct(",")) break;
    ++pos_;
  }
  expect_punct(")");
  expect_close();
  const int outer_loops = loops_;
  loops_ = 0;
  std::string ender;
  s->macro->body = body({"endmacro"}, &ender);
  loops_ = outer_loops;
  expect_close();
  return s;
}

std::shared_ptr<const Program> parse_template(std::string_view source, const std::string& name, int max_depth) {
  Parser parser(tokenize(source, name), name, max_depth);
  return std::make_shared<const Program>(parser.parse());
}

}  // namespace frugal::jinja
