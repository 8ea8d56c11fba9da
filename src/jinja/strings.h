#pragma once
// String operations shared by methods and filters, keeping the provenance of the bytes they keep.
#include <string>
#include <vector>

#include "jinja/render.h"

namespace frugal::jinja {

// strip/lstrip/rstrip/trim: without `chars`, JavaScript's whitespace (what @huggingface/jinja strips,
// even when the template passes characters: see docs/CHAT.md); with `chars` (filters only), those.
Value strip_text(Renderer& r, const Text& t, bool left, bool right, const Text* chars = nullptr);
// Python's split/rsplit; sep null: runs of whitespace.
Value split_text(Renderer& r, const Text& t, const Text* sep, int64_t maxsplit, bool from_right);
// @huggingface/jinja's replace (an empty `old` inserts between characters); the result is template text.
Value replace_text(Renderer& r, const Text& t, const std::string& old_s, const std::string& new_s, int64_t count);
// @huggingface/jinja's title: ASCII letters after a non-word character upper-cased, nothing lowered.
std::string title_case(std::string_view s);
std::string capitalize(std::string_view s);
// The character at code point index i (negative from the end), or undefined.
Value char_at(const Text& t, int64_t i);
// A string argument, or fail naming what needed it.
const Text& text_arg(Renderer& r, const Value* v, const std::string& what);
int64_t int_arg(Renderer& r, const Value* v, int64_t fallback, const std::string& what);
bool bool_arg(Renderer& r, const Value* v, bool fallback, const std::string& what);

}  // namespace frugal::jinja
