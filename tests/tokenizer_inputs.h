#pragma once
// Texts the tokenizer tests share (tests/test_tokenizer.cpp: GPT-2's two files; tests/test_hf_tokenizer.cpp:
// tokenizer.json): awkward inputs that exercise every rule of pre-tokenization and the byte alphabet,
// and the fortunes corpus record by record.
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"
#include "io/text_corpus.h"
#include "text/documents.h"
#include "text/utf8.h"

namespace frugal::testing {

inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const DecodedChar c = decode_utf8(s, i);
    if (!c.valid) return false;
    i += c.length;
  }
  return true;
}

// Unicode scripts, emoji sequences, numbers of every kind, contractions, whitespace runs of every
// kind (Unicode spaces, CRLF, NUL), an end-of-text marker written as text.
inline std::vector<std::string> awkward_inputs() {
  return {
      "Hello world", "emoji 😀👍🏽 👨‍👩‍👧 family", "日本語のテキスト、中文。한국어", "a" + std::string(50, ' ') + "b",
      "trailing spaces   ", "   leading", "1234567890 3.14159 1,000,000 ½ Ⅻ ² ٣", "!!!???...,,,;;;--- (x) [y] {z}",
      "'s 't 're 've 'm 'll 'd I'm you're they've he'll she'd it's can't 'S 'T ''s", "line1\r\nline2\r\n\r\nline3",
      "\t\tindented\tx\t", std::string("a\0b\0\0c", 6), "  \n  \n\n\n x", "a\u00a0b\u3000c\u2003d\u2028e\ufeff f\u0085g",
      "e\u0301 caf\u00e9 na\u00efve", "हिन्दी العربية עברית", "<|endoftext|> is text here", "$100 @user #tag ~/path.txt",
      "x\n", "\n", " ", "", "   \t\n", "a  \n  b",
  };
}

// Every fortune record (each on its own) that is valid UTF-8 — the JavaScript references read text,
// not bytes — and the number of records left out for not being so.
struct FortuneRecords {
  std::vector<std::string> texts;
  size_t invalid = 0;
};

inline FortuneRecords fortune_records() {
  FortuneRecords r;
  for (const std::string& path : list_fortune_files()) {
    const std::string file = read_file(path);
    for (std::string_view record : split_documents(file, DocumentSplit::Fortunes)) {
      if (valid_utf8(record)) r.texts.emplace_back(record);
      else ++r.invalid;
    }
  }
  return r;
}

}  // namespace frugal::testing
