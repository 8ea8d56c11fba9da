#include "text/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace frugal {

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;  // one per splitter: encode is single-threaded per tokenizer
  ~Compiled() {
    pcre2_match_data_free(match);
    pcre2_code_free(code);
  }
};

RegexSplitter::RegexSplitter(const std::string& pattern, const std::string& source, bool literal)
    : compiled_(std::make_unique<Compiled>()) {
  // MATCH_INVALID_UTF: invalid UTF-8 in the text is matched by nothing (instead of an error), and
  // the text is not checked for validity on every call (which would make splitting quadratic).
  // (PCRE2_LITERAL refuses UCP, which plain text does not need.)
  const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                                  &offset, nullptr);
  if (!compiled_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw Error(source + ": the pre-tokenizer's regular expression is invalid (" +
                reinterpret_cast<const char*>(message) + " at offset " + std::to_string(offset) + " of " +
                pattern.substr(0, 80) + ")");
  }
  // Without a JIT (some machines forbid executable memory) pcre2_match interprets: slower, the same.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
  compiled_->match = pcre2_match_data_create_from_pattern(compiled_->code, nullptr);
  check(compiled_->match != nullptr, source + ": out of memory for a regular expression");
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

bool RegexSplitter::find(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  const int rc = pcre2_match(compiled_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), from, 0,
                             compiled_->match, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    throw Error(std::string("tokenizer: the pre-tokenizer's regular expression failed (") +
                reinterpret_cast<const char*>(message) + ")");
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(compiled_->match);
  begin = ovector[0];
  end = ovector[1];
  return true;
}

}  // namespace frugal
