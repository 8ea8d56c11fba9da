#include "text/documents.h"

#include "core/error.h"

namespace frugal {

namespace {

// The lines of text as [begin, end) offsets, each with its newline.
template <typename F>
void for_each_line(std::string_view text, F&& line) {
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    end = end == std::string_view::npos ? text.size() : end + 1;
    line(start, end);
    start = end;
  }
}

bool is_separator(std::string_view line, DocumentSplit split) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return split == DocumentSplit::Fortunes ? line == "%" : line.empty();
}

bool has_fortune_separator(std::string_view text) {
  bool found = false;
  for_each_line(text, [&](size_t a, size_t b) { found = found || is_separator(text.substr(a, b - a), DocumentSplit::Fortunes); });
  return found;
}

}  // namespace

DocumentSplit parse_document_split(const std::string& name) {
  if (name == "auto") return DocumentSplit::Auto;
  if (name == "fortunes") return DocumentSplit::Fortunes;
  if (name == "paragraphs") return DocumentSplit::Paragraphs;
  if (name == "none") return DocumentSplit::None;
  throw Error("--split " + name + ": expected auto, fortunes, paragraphs or none");
}

std::vector<std::string_view> split_documents(std::string_view text, DocumentSplit split) {
  if (split == DocumentSplit::Auto) split = has_fortune_separator(text) ? DocumentSplit::Fortunes : DocumentSplit::None;
  if (split == DocumentSplit::None) return text.empty() ? std::vector<std::string_view>{} : std::vector{text};
  std::vector<std::string_view> docs;
  size_t doc_start = 0;
  const auto close = [&](size_t end) {
    if (end > doc_start) docs.push_back(text.substr(doc_start, end - doc_start));
  };
  for_each_line(text, [&](size_t a, size_t b) {
    if (!is_separator(text.substr(a, b - a), split)) return;
    close(a);
    doc_start = b;
  });
  close(text.size());
  return docs;
}

}  // namespace frugal
