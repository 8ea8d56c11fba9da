#pragma once
// Cutting input files into documents for tokenisation (`frugal tokenize`); the token stream puts
// <|endoftext|> between documents.
#include <string>
#include <string_view>
#include <vector>

namespace frugal {

enum class DocumentSplit {
  Auto,        // fortune records when the file has a line "%", else the whole file
  Fortunes,    // records between lines that are exactly "%" (the fortunes package's format)
  Paragraphs,  // runs of lines separated by one or more empty lines
  None,        // the whole file is one document
};

// "auto", "fortunes", "paragraphs", "none"; Error otherwise.
DocumentSplit parse_document_split(const std::string& name);

// The documents of `text`, as views into it; empty documents are dropped. Each keeps its own
// newlines, the separator lines are not part of any.
std::vector<std::string_view> split_documents(std::string_view text, DocumentSplit split);

}  // namespace frugal
