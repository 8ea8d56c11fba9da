#pragma once
// Template source to tokens, with Hugging Face's whitespace rules: the source loses one trailing
// newline (keep_trailing_newline=False); lstrip_blocks removes spaces and tabs before a block or
// comment tag that starts a line, trim_blocks the newline after one; {% generation %} tags are
// dropped; `-` inside a tag strips the whitespace on its side. These are applied as
// @huggingface/jinja applies them (to the whole source, before tokenizing) so that output matches
// it byte for byte. {% raw %} ... {% endraw %} becomes one text token.
#include <string>
#include <string_view>
#include <vector>

namespace frugal::jinja {

struct Token {
  enum class Type { Text, StmtOpen, StmtClose, ExprOpen, ExprClose, Name, String, Int, Float, Punct, End } type;
  std::string text;  // the text, the name, the string's value, the number's digits or the punctuation
  int line = 0;      // in the original source
};

// Throws frugal::Error "NAME:LINE: ..." on malformed input (unterminated strings, comments, tags).
std::vector<Token> tokenize(std::string_view source, const std::string& name);

}  // namespace frugal::jinja
