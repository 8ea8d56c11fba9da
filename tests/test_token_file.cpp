// Token files (src/text/token_file.h): written and read back exactly in both widths, mapped rather
// than read, every broken header or body a one-line error; `frugal tokenize` puts <|endoftext|>
// between documents and writes what the tokenizer gives.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "text/bpe_tokenizer.h"
#include "text/documents.h"
#include "text/token_file.h"

using namespace frugal;
using frugal::testing::scratch;

namespace {

void expect_open_error(const std::string& path, const std::string& fragment) {
  try {
    TokenFile f(path);
    ADD_FAILURE() << "opened " << path << "; expected '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

std::vector<int32_t> read_all(const TokenFile& f) {
  std::vector<int32_t> out(static_cast<size_t>(f.size()));
  f.copy(0, f.size(), out.data());
  return out;
}

}  // namespace

TEST(TokenFile, RoundTripInBothWidths) {
  const std::filesystem::path dir = scratch("token_file");
  const std::vector<int32_t> small = {0, 1, 65535, 42, 7};
  write_token_file((dir / "a.tok").string(), small, 65536);
  TokenFile a((dir / "a.tok").string());
  EXPECT_EQ(a.bytes_per_id(), 2);
  EXPECT_EQ(a.vocab_size(), 65536);
  EXPECT_EQ(read_all(a), small);
  EXPECT_EQ(std::filesystem::file_size(dir / "a.tok"), kTokenFileHeaderBytes + 2 * small.size());
  const std::vector<int32_t> large = {70000, 0, 99999};
  write_token_file((dir / "b.tok").string(), large, 100000);
  TokenFile b((dir / "b.tok").string());
  EXPECT_EQ(b.bytes_per_id(), 4);
  EXPECT_EQ(read_all(b), large);
  std::vector<int32_t> window(2);
  b.copy(1, 2, window.data());
  EXPECT_EQ(window, (std::vector<int32_t>{0, 99999}));
  EXPECT_TRUE(is_token_file((dir / "b.tok").string()));
  EXPECT_THROW(write_token_file((dir / "c.tok").string(), std::vector<int32_t>{5}, 5), Error);  // id == vocab
  EXPECT_FALSE(std::filesystem::exists(dir / "c.tok"));  // atomic: nothing left behind
}

TEST(TokenFile, BrokenFilesGiveOneLineErrors) {
  const std::filesystem::path dir = scratch("token_file_broken");
  write_token_file((dir / "good.tok").string(), std::vector<int32_t>{1, 2, 3, 4}, 10);
  const std::string good = read_file((dir / "good.tok").string());
  const auto variant = [&](const std::string& name, std::string bytes) {
    write_file_atomic((dir / name).string(), bytes);
    return (dir / name).string();
  };
  expect_open_error((dir / "missing.tok").string(), "cannot open token file");
  expect_open_error(variant("short.tok", good.substr(0, 20)), "shorter than its 32-byte header");
  std::string magic = good;
  magic[0] = 'X';
  expect_open_error(variant("magic.tok", magic), "bad magic");
  std::string version = good;
  version[8] = 9;
  expect_open_error(variant("version.tok", version), "version 9");
  std::string width = good;
  width[12] = 3;
  expect_open_error(variant("width.tok", width), "bytes per id 3");
  expect_open_error(variant("truncated.tok", good.substr(0, good.size() - 1)), "truncated or corrupt");
  expect_open_error(variant("long.tok", good + "xx"), "truncated or corrupt");
  std::string beyond = good;
  beyond[kTokenFileHeaderBytes + 4] = 10;  // the third id: 10 in a vocabulary of 10
  expect_open_error(variant("beyond.tok", beyond), "id 10 at position 2 is outside the vocabulary of 10");
}

TEST(TokenFile, DocumentsAreFortuneRecordsOrParagraphs) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_documents("one\nline\n%\ntwo\n%\n%\nthree", DocumentSplit::Auto), (V{"one\nline\n", "two\n", "three"}));
  EXPECT_EQ(split_documents("a\nb\n\n\nc\n", DocumentSplit::Paragraphs), (V{"a\nb\n", "c\n"}));
  EXPECT_EQ(split_documents("a\n\nb", DocumentSplit::Auto), (V{"a\n\nb"}));  // no "%" line: one document
  EXPECT_EQ(split_documents("", DocumentSplit::None), V{});
  EXPECT_THROW(parse_document_split("pages"), Error);
}

// `frugal tokenize`: <|endoftext|> between the documents of every input, bin and json alike.
TEST(TokenFile, TokenizeCommandSeparatesDocuments) {
  const std::filesystem::path dir = scratch("tokenize_cli");
  write_file_atomic((dir / "a.txt").string(), "Hello world\n%\nIt's me.\n");
  write_file_atomic((dir / "b.txt").string(), "Last one.");
  const std::string inputs = (dir / "a.txt").string() + " " + (dir / "b.txt").string();
  const std::string tok = (dir / "out.tok").string(), json = (dir / "out.json").string();
  auto r = frugal::testing::run_frugal("tokenize --tokenizer " + std::string(FRUGAL_GPT2_TOKENIZER_DIR) + " " + inputs +
                                       " --out " + tok);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("3 documents"), std::string::npos) << r.out;
  r = frugal::testing::run_frugal("tokenize --tokenizer " + std::string(FRUGAL_GPT2_TOKENIZER_DIR) + " " + inputs +
                                  " --out " + json + " --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  BpeTokenizer t = BpeTokenizer::load(FRUGAL_GPT2_TOKENIZER_DIR);
  std::vector<int32_t> want;
  for (const char* doc : {"Hello world\n", "It's me.\n", "Last one."}) {
    if (!want.empty()) want.push_back(t.end_of_text());
    const auto ids = t.encode(doc);
    want.insert(want.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(nlohmann::json::parse(read_file(json)).get<std::vector<int32_t>>(), want);
  EXPECT_EQ(read_all(TokenFile(tok)), want);
  frugal::testing::expect_one_line_error(
      frugal::testing::run_frugal("tokenize --tokenizer " + dir.string() + " " + inputs + " --out " + tok), "no tokenizer files");
  frugal::testing::expect_one_line_error(
      frugal::testing::run_frugal("tokenize --tokenizer " + std::string(FRUGAL_GPT2_TOKENIZER_DIR) + " " + inputs +
                                  " --out " + tok + " --format csv"),
      "--format csv");
}
