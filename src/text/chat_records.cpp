#include "text/chat_records.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_record.h"

namespace frugal {

using nlohmann::json;

namespace {

constexpr size_t kReasonsKept = 10;

std::string with_article(const std::string& format) { return (format == "alpaca" ? "an " : "a ") + format; }

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// A parser message made fit for one line of an error: control bytes as '?', at most 200 bytes (the
// "last read" token of a broken line can be the whole megabyte-long line).
std::string one_line(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() <= 200) return text;
  size_t cut = 200;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return text.substr(0, cut) + "...";
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 7: <what>" as
// "invalid JSON (column 7: <what>)": the line is always 1, the file's line number comes with the error.
std::string invalid_json(const json::parse_error& e) {
  const std::string what = e.what();
  const size_t at = what.find("column ");
  const std::string detail = at == std::string::npos ? "byte " + std::to_string(e.byte) + ": " + what : what.substr(at);
  return "invalid JSON (" + one_line(detail) + ")";
}

// The lines of one file in order: detects (or takes) its format, turns each into an example, and
// refuses or counts the broken ones.
class Collector {
 public:
  Collector(const std::string& source, const ChatReadOptions& options) : options_(options) {
    records_.path = source;
    records_.format = options.format;
  }

  void line(std::string_view text, int64_t number) {
    if (number == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 BOM
    if (blank(text)) return;
    ++non_blank_;
    try {
      take(text, number);
    } catch (const json::exception& e) {  // a case the checks missed: still one line, still this line's
      refuse(number, one_line(e.what()));
    } catch (const Error& e) {
      refuse(number, e.what());
    }
  }

  ChatRecords finish() {
    const std::string& path = records_.path;
    check(non_blank_ > 0, path + ": no examples (the file is empty)");
    if (records_.examples.empty())  // (with skip_bad: without it the first refusal was thrown)
      throw Error(path + ": no examples: all " + std::to_string(non_blank_) + " non-blank lines were refused (first: " +
                  records_.bad_reasons.front() + ")");
    return std::move(records_);
  }

 private:
  void take(std::string_view text, int64_t number) {
    json record;
    try {
      record = json::parse(text);
    } catch (const json::parse_error& e) {
      throw Error(invalid_json(e));
    }
    check(record.is_object(), "not a JSON object (" + json_kind(record) + ")");
    const ChatFormat own = record_format(record);
    if (records_.format == ChatFormat::Auto) detect(record, own, number);
    if (!has_format_key(record, records_.format) && own != ChatFormat::Auto)
      throw Error(with_article(chat_format_name(own)) + " record in " + with_article(chat_format_name(records_.format)) +
                  " file (" + format_origin() + ")");
    ChatExample example = record_example(record, records_.format, options_.require_assistant);
    example.line = number;
    records_.examples.push_back(std::move(example));
  }

  void detect(const json& record, ChatFormat own, int64_t number) {
    if (own == ChatFormat::Auto) {
      std::string keys;
      for (auto it = record.begin(); it != record.end() && keys.size() < 80; ++it)
        keys += (keys.empty() ? "" : ", ") + quoted_text(it.key());
      throw Error("cannot tell the format from the keys (" + (keys.empty() ? std::string("none") : keys) +
                  "): expected messages, conversations, prompt, instruction or text (--data-format chooses one)");
    }
    records_.format = own;
    detected_line_ = number;
  }

  std::string format_origin() const {
    if (detected_line_ == 0) return "format set by --data-format";
    return "format detected from line " + std::to_string(detected_line_) + "; --data-format overrides";
  }

  void refuse(int64_t number, const std::string& why) {
    const std::string reason = records_.path + ":" + std::to_string(number) + ": " + why;
    if (!options_.skip_bad) throw Error(reason);
    ++records_.bad_skipped;
    if (records_.bad_reasons.size() < kReasonsKept) records_.bad_reasons.push_back(reason);
  }

  ChatReadOptions options_;
  ChatRecords records_;
  int64_t non_blank_ = 0;
  int64_t detected_line_ = 0;  // 0: the format was forced
};

}  // namespace

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::Auto: return "auto";
    case ChatFormat::Chat: return "chat";
    case ChatFormat::ShareGpt: return "sharegpt";
    case ChatFormat::PromptCompletion: return "prompt-completion";
    case ChatFormat::Alpaca: return "alpaca";
    case ChatFormat::Text: return "text";
  }
  return "?";
}

ChatFormat parse_chat_format(const std::string& name) {
  for (ChatFormat f : {ChatFormat::Auto, ChatFormat::Chat, ChatFormat::ShareGpt, ChatFormat::PromptCompletion,
                       ChatFormat::Alpaca, ChatFormat::Text})
    if (name == chat_format_name(f)) return f;
  throw Error("data format " + quoted_text(name) + ": expected auto, chat, sharegpt, prompt-completion, alpaca or text");
}

ChatRecords read_chat_records(const std::string& path, const ChatReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  check(in.is_open(), "cannot open " + path + ": " + std::strerror(errno));
  std::error_code ec;
  check(!std::filesystem::is_directory(path, ec), "cannot read " + path + ": it is a directory");
  Collector collector(path, options);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) collector.line(line, number);
  check(!in.bad(), "cannot read " + path + ": " + std::strerror(errno));
  return collector.finish();
}

ChatRecords parse_chat_records(std::string_view jsonl, const std::string& source, const ChatReadOptions& options) {
  Collector collector(source, options);
  int64_t number = 1;
  for (size_t start = 0; start < jsonl.size(); ++number) {
    const size_t end = std::min(jsonl.find('\n', start), jsonl.size());
    collector.line(jsonl.substr(start, end - start), number);
    start = end + 1;
  }
  return collector.finish();
}

}  // namespace frugal
