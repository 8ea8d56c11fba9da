#pragma once
// GPT-2's byte-level alphabet: every byte 0..255 stands for one printable Unicode character, so a
// vocabulary of byte strings can be written as text (vocab.json, merges.txt). Printable Latin-1
// bytes stand for themselves ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF); the other 68 bytes, in
// order, for U+0100 onwards (the space 0x20 is 'Ġ' U+0120, the newline 0x0A is 'Ċ' U+010A).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frugal {

// The code point byte b is written as.
char32_t byte_to_codepoint(uint8_t b);

// The raw bytes a vocabulary string (UTF-8 text in the alphabet above) stands for; nullopt when it
// is not valid UTF-8 or holds a character outside the alphabet.
std::optional<std::string> alphabet_to_bytes(std::string_view text);

// The inverse: raw bytes written in the alphabet, as UTF-8.
std::string bytes_to_alphabet(std::string_view bytes);

}  // namespace frugal
