#include "jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"
#include "jinja/text.h"

namespace frugal::jinja {

namespace {

// Source bytes with the original line of each, so that errors name lines of the file as written.
struct Source {
  std::string text;
  std::vector<int32_t> line;
  void keep(const Source& from, size_t i) {
    text += from.text[i];
    line.push_back(from.line[i]);
  }
};

bool one_of(char c, const char* set) { return c != '\0' && std::strchr(set, c) != nullptr; }

bool line_break_before(std::string_view s, size_t i) {
  if (i == 0) return true;
  if (s[i - 1] == '\n' || s[i - 1] == '\r') return true;
  // U+2028 and U+2029 end lines for JavaScript's multiline ^ too
  return i >= 3 && s.compare(i - 3, 2, "\xE2\x80") == 0 && (s[i - 1] == '\xA8' || s[i - 1] == '\xA9');
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1"
Source lstrip_blocks(const Source& in) {
  Source out;
  const std::string& s = in.text;
  for (size_t i = 0; i < s.size();) {
    if (line_break_before(s, i)) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && one_of(s[j + 1], "#%-")) i = j;  // the indentation goes
    }
    out.keep(in, i++);
  }
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1"
Source trim_blocks(const Source& in) {
  Source out;
  const std::string& s = in.text;
  for (size_t i = 0; i < s.size();) {
    if (i + 2 < s.size() && one_of(s[i], "#%-") && s[i + 1] == '}' && s[i + 2] == '\n') {
      out.keep(in, i);
      out.keep(in, i + 1);
      i += 3;
    } else {
      out.keep(in, i++);
    }
  }
  return out;
}

size_t skip_js_space(std::string_view s, size_t i) { return skip_space_forward(s, i); }

// The end of a {%-? (end)?generation -?%} tag starting at i (0 when there is none); sets the strip flags.
size_t generation_tag(std::string_view s, size_t i, bool& lstrip, bool& rstrip) {
  if (s.compare(i, 2, "{%") != 0) return 0;
  size_t k = i + 2;
  lstrip = k < s.size() && s[k] == '-';
  k = skip_js_space(s, k + (lstrip ? 1 : 0));
  if (s.compare(k, 13, "endgeneration") == 0)
    k += 13;
  else if (s.compare(k, 10, "generation") == 0)
    k += 10;
  else
    return 0;
  k = skip_js_space(s, k);
  rstrip = k < s.size() && s[k] == '-';
  if (rstrip) ++k;
  return s.compare(k, 2, "%}") == 0 ? k + 2 : 0;
}

// {% generation %} and {% endgeneration %} (Hugging Face's assistant-mask markers) are removed.
Source drop_generation_tags(const Source& in) {
  Source out;
  const std::string& s = in.text;
  size_t last = 0;
  for (size_t i = s.find("{%"); i != std::string::npos; i = s.find("{%", i + 1)) {
    bool lstrip = false, rstrip = false;
    const size_t tag_end = generation_tag(s, i, lstrip, rstrip);
    if (tag_end == 0) continue;
    const size_t after_end = skip_js_space(s, tag_end);
    const size_t kept_end = lstrip ? std::max(last, skip_space_back(s, i)) : i;
    for (size_t k = last; k < kept_end; ++k) out.keep(in, k);
    if (!rstrip)
      for (size_t k = tag_end; k < after_end; ++k) out.keep(in, k);
    last = after_end;
    i = after_end - 1;
  }
  for (size_t k = last; k < s.size(); ++k) out.keep(in, k);
  return out;
}

Source preprocess(std::string_view source) {
  Source src;
  src.text.assign(source);
  if (!src.text.empty() && src.text.back() == '\n') src.text.pop_back();
  int line = 1;
  for (char c : src.text) {
    src.line.push_back(line);
    line += c == '\n';
  }
  return drop_generation_tags(trim_blocks(lstrip_blocks(src)));
}

class Lexer {
 public:
  Lexer(Source src, const std::string& name) : src_(std::move(src)), s_(src_.text), name_(name) {}
  std::vector<Token> run();

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(name_ + ":" + std::to_string(line()) + ": syntax error: " + message);
  }
  int line() const { return src_.line.empty() ? 1 : src_.line[std::min(pos_, src_.line.size() - 1)]; }
  void push(Token::Type type, std::string text) { tokens_.push_back({type, std::move(text), line()}); }
  void text_until_tag();
  void open_tag();
  void comment();
  bool raw_block(size_t open_end);
  void strip_last_text();
  void tag_token();
  void string_literal();
  void number();
  void escape(char c, std::string& out);

  Source src_;
  std::string_view s_;
  const std::string& name_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
  bool text_mode_ = true;
  int curly_ = 0;
};


std::vector<Token> Lexer::run() {
  while (pos_ < s_.size()) {
    if (!text_mode_) {
      tag_token();
      continue;
    }
    text_until_tag();
    if (pos_ < s_.size()) open_tag();
  }
  if (!text_mode_) fail("the template ends inside a tag");
  tokens_.push_back({Token::Type::End, "", line()});
  return std::move(tokens_);
}

// Text up to the next {%, {{ or {#.
void Lexer::text_until_tag() {
  size_t end = pos_;
  for (;; ++end) {
    end = s_.find('{', end);
    if (end == std::string_view::npos) {
      end = s_.size();
      break;
    }
    if (end + 1 < s_.size() && one_of(s_[end + 1], "%{#")) break;
  }
  if (end > pos_) push(Token::Type::Text, std::string(s_.substr(pos_, end - pos_)));
  pos_ = end;
}

void Lexer::strip_last_text() {
  if (tokens_.empty() || tokens_.back().type != Token::Type::Text) return;
  std::string& t = tokens_.back().text;
  t.resize(skip_space_back(t, t.size()));
  if (t.empty()) tokens_.pop_back();
}

// {#, {% or {{ (or their - forms) at pos_.
void Lexer::open_tag() {
  if (s_.compare(pos_, 2, "{#") == 0) return comment();
  const bool stmt = s_.compare(pos_, 2, "{%") == 0;
  const bool strip = pos_ + 2 < s_.size() && s_[pos_ + 2] == '-';
  if (strip) strip_last_text();
  const size_t open_end = pos_ + 2 + (strip ? 1 : 0);
  if (stmt && raw_block(open_end)) return;
  push(stmt ? Token::Type::StmtOpen : Token::Type::ExprOpen, stmt ? "{%" : "{{");
  pos_ = open_end;
  curly_ = 0;
  text_mode_ = false;
}

void Lexer::comment() {
  size_t p = pos_ + 2;
  const bool strip_before = p < s_.size() && s_[p] == '-';
  const size_t end = s_.find("#}", p);
  if (end == std::string_view::npos) fail("a comment {# is never closed");
  const bool strip_after = end > p + (strip_before ? 1 : 0) && s_[end - 1] == '-';
  if (strip_before) strip_last_text();
  pos_ = end + 2;
  if (strip_after) pos_ = skip_space_forward(s_, pos_);
  text_mode_ = true;
}

// {% raw %}...{% endraw %} (open_end: just after "{%" or "{%-"): one text token, verbatim.
bool Lexer::raw_block(size_t open_end) {
  size_t p = skip_space_forward(s_, open_end);
  if (s_.compare(p, 3, "raw") != 0) return false;
  p = skip_space_forward(s_, p + 3);
  const bool trim_content_start = p < s_.size() && s_[p] == '-';
  if (s_.compare(p + (trim_content_start ? 1 : 0), 2, "%}") != 0) return false;
  const size_t content = p + (trim_content_start ? 3 : 2);
  for (size_t q = s_.find("{%", content); q != std::string_view::npos; q = s_.find("{%", q + 1)) {
    const bool trim_content_end = q + 2 < s_.size() && s_[q + 2] == '-';
    size_t k = skip_space_forward(s_, q + 2 + (trim_content_end ? 1 : 0));
    if (s_.compare(k, 6, "endraw") != 0) continue;
    k = skip_space_forward(s_, k + 6);
    const bool strip_after = k < s_.size() && s_[k] == '-';
    if (s_.compare(k + (strip_after ? 1 : 0), 2, "%}") != 0) continue;
    const size_t begin = trim_content_start ? skip_space_forward(s_, content) : content;
    const size_t end = trim_content_end ? std::max(begin, skip_space_back(s_, q)) : q;
    if (end > begin) push(Token::Type::Text, std::string(s_.substr(begin, end - begin)));
    pos_ = k + (strip_after ? 3 : 2);
    if (strip_after) pos_ = skip_space_forward(s_, pos_);
    text_mode_ = true;
    return true;
  }
  fail("{% raw %} is never closed by {% endraw %}");
}

void Lexer::tag_token() {
  pos_ = skip_space_forward(s_, pos_);
  if (pos_ >= s_.size()) fail("the template ends inside a tag");
  const char c = s_[pos_];
  if (c == '-' && pos_ + 2 < s_.size() && s_[pos_ + 2] == '}' && (s_[pos_ + 1] == '%' || s_[pos_ + 1] == '}')) {
    push(s_[pos_ + 1] == '%' ? Token::Type::StmtClose : Token::Type::ExprClose, "");
    pos_ = skip_space_forward(s_, pos_ + 3);
    text_mode_ = true;
    return;
  }
  static constexpr const char* kPunct[] = {"{%", "%}", "{{", "}}", "(", ")", "{", "}", "[", "]", ",", ".", ":", "|", "<=",
                                           ">=", "==", "!=", "<",  ">",  "+", "-", "~", "**", "*", "//", "/", "%", "="};
  for (const char* p : kPunct) {
    const std::string_view punct(p);
    if ((punct == "}}" && curly_ > 0) || s_.compare(pos_, punct.size(), punct) != 0) continue;
    if (punct == "{%" || punct == "{{") fail("'" + std::string(punct) + "' inside a tag");
    pos_ += punct.size();
    if (punct == "%}" || punct == "}}") {
      push(punct == "%}" ? Token::Type::StmtClose : Token::Type::ExprClose, "");
      text_mode_ = true;
      return;
    }
    curly_ += punct == "{" ? 1 : punct == "}" ? -1 : 0;
    push(Token::Type::Punct, std::string(punct));
    return;
  }
  if (c == '\'' || c == '"') return string_literal();
  if (c >= '0' && c <= '9') return number();
  const size_t start = pos_;
  while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
  if (pos_ == start) {
    size_t i = pos_;
    std::string ch;
    append_utf8(next_code_point(s_, i), ch);
    fail("unexpected character '" + ch + "'");
  }
  push(Token::Type::Name, std::string(s_.substr(start, pos_ - start)));
}

uint32_t hex_value(std::string_view digits) {
  uint32_t v = 0;
  for (char d : digits) {
    if (!std::isxdigit(static_cast<unsigned char>(d))) return UINT32_MAX;
    v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(d)) ? d - '0' : (d | 0x20) - 'a' + 10);
  }
  return v;
}

// A backslash escape; pos_ is just after the letter c. Unknown escapes stay as written (Python).
void Lexer::escape(char c, std::string& out) {
  static constexpr std::string_view kFrom = "ntrbfv'\"\\", kTo = "\n\t\r\b\f\v'\"\\";
  if (const size_t k = kFrom.find(c); k != std::string_view::npos) {
    out += kTo[k];
    return;
  }
  if (c != 'x' && c != 'u') {
    out += '\\';
    out += c;
    return;
  }
  const size_t n = c == 'x' ? 2 : 4;
  uint32_t cp = hex_value(s_.substr(pos_, n));
  if (cp == UINT32_MAX || pos_ + n > s_.size()) fail("a bad \\" + std::string(1, c) + " escape in a string literal");
  pos_ += n;
  if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
    const uint32_t low = hex_value(s_.substr(pos_ + 2, 4));
    if (low >= 0xDC00 && low < 0xE000) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      pos_ += 6;
    }
  }
  if (cp >= 0xD800 && cp < 0xE000) fail("a lone surrogate escape in a string literal");
  append_utf8(cp, out);
}

void Lexer::string_literal() {
  const char quote = s_[pos_++];
  const int start_line = line();
  std::string value;
  while (true) {
    if (pos_ >= s_.size()) {
      pos_ = s_.size();
      throw Error(name_ + ":" + std::to_string(start_line) + ": syntax error: a string literal is never closed");
    }
    const char c = s_[pos_++];
    if (c == quote) break;
    if (c != '\\') {
      value += c;
      continue;
    }
    if (pos_ >= s_.size()) continue;
    escape(s_[pos_++], value);
  }
  tokens_.push_back({Token::Type::String, std::move(value), start_line});
}

void Lexer::number() {
  const size_t start = pos_;
  while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  const bool after_dot = !tokens_.empty() && tokens_.back().type == Token::Type::Punct && tokens_.back().text == ".";
  bool is_float = false;
  if (!after_dot && pos_ + 1 < s_.size() && s_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
    is_float = true;
    for (++pos_; pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]));) ++pos_;
  }
  push(is_float ? Token::Type::Float : Token::Type::Int, std::string(s_.substr(start, pos_ - start)));
}

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& name) {
  check(valid_utf8(source), name + ":1: the template is not valid UTF-8");
  return Lexer(preprocess(source), name).run();
}

}  // namespace frugal::jinja
