#pragma once
// GPT-2's pre-tokenisation: the text is cut into pieces that BPE then encodes one by one, by the
// regular expression of OpenAI's encoder (as JavaScript evaluates it, with the u flag):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out as a scanner (no regex engine): contractions; letter runs, digit runs and runs of
// anything else, each with one optional leading space; whitespace runs, which leave their last
// character to the next piece when a non-space follows. \p{L} and \p{N} are Unicode's letter and
// number categories (ICU); \s is JavaScript's whitespace set. A byte that is not part of valid UTF-8
// counts as "anything else", so every byte string is cut, and the pieces concatenate to it.
#include <functional>
#include <string_view>

namespace frugal {

// Calls `piece` for every piece of `text`, in order.
void pretokenize(std::string_view text, const std::function<void(std::string_view)>& piece);

}  // namespace frugal
