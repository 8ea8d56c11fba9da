// Chat fine-tuning data (src/text/chat_records.h): each of the five formats read and mapped to
// messages, the format detected from the first record or forced, every refused line one exact line
// "FILE:LINE: why" (or counted and skipped), BOMs, blank lines and CRLF, non-ASCII text kept byte for
// byte, files read line by line, and the iso-codes demo data of scripts/chat_demo_data.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/chat_records.h"

using namespace frugal;

namespace {

// A scratch directory of this test process (tests/cli_support.h's needs the frugal binary).
std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("frugal_test_" + std::to_string(getpid())) / name;
  std::filesystem::create_directories(dir);
  return dir;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// "role: content" per message, "|" between them: one string to compare a whole example against.
std::string flat(const ChatExample& e) {
  if (e.messages.empty()) return "text: " + e.text;
  std::string out;
  for (const ChatMessage& m : e.messages) out += (out.empty() ? "" : " | ") + m.role + ": " + m.content;
  return out;
}

// The error parse_chat_records gives for `jsonl` ("" when it gives none).
std::string error_of(const std::string& jsonl, const ChatReadOptions& options = {}) {
  try {
    parse_chat_records(jsonl, "data.jsonl", options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

ChatReadOptions forced(ChatFormat format) {
  ChatReadOptions o;
  o.format = format;
  return o;
}

}  // namespace

TEST(ChatRecords, FormatNames) {
  for (ChatFormat f : {ChatFormat::Auto, ChatFormat::Chat, ChatFormat::ShareGpt, ChatFormat::PromptCompletion,
                       ChatFormat::Alpaca, ChatFormat::Text})
    EXPECT_EQ(parse_chat_format(chat_format_name(f)), f);
  EXPECT_STREQ(chat_format_name(ChatFormat::PromptCompletion), "prompt-completion");
  EXPECT_STREQ(chat_format_name(ChatFormat::ShareGpt), "sharegpt");
  try {
    parse_chat_format("openai");
    ADD_FAILURE() << "accepted 'openai'";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "data format \"openai\": expected auto, chat, sharegpt, prompt-completion, alpaca or text");
  }
}

// One record of each format (and variants), detected, mapped to messages as the header says.
TEST(ChatRecords, ReadsEachFormat) {
  struct Case {
    std::string line;
    ChatFormat format;
    std::string example;
  };
  const std::vector<Case> cases = {
      {R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
       R"({"role":"assistant","content":"Hello."}]})",
       ChatFormat::Chat, "system: Be brief. | user: Hi | assistant: Hello."},
      {R"({"id":7,"messages":[{"role":"user","content":"Q","name":"x","weight":0}],"meta":{"a":[1]}})",
       ChatFormat::Chat, "user: Q"},
      {R"({"conversations":[{"from":"system","value":"S"},{"from":"human","value":"Q"},{"from":"gpt","value":"A"}]})",
       ChatFormat::ShareGpt, "system: S | user: Q | assistant: A"},
      {R"({"conversations":[{"from":"user","value":"Q"},{"from":"assistant","value":"A"}]})", ChatFormat::ShareGpt,
       "user: Q | assistant: A"},
      {R"({"prompt":"2+2=","completion":" 4"})", ChatFormat::PromptCompletion, "user: 2+2= | assistant:  4"},
      {R"({"instruction":"Add.","input":"2 and 2","output":"4"})", ChatFormat::Alpaca,
       "user: Add.\n\n2 and 2 | assistant: 4"},
      {R"({"instruction":"Say hi.","input":"","output":"Hi"})", ChatFormat::Alpaca, "user: Say hi. | assistant: Hi"},
      {R"({"instruction":"Say hi.","output":"Hi","text":"### Instruction: Say hi."})", ChatFormat::Alpaca,
       "user: Say hi. | assistant: Hi"},
      {R"({"instruction":"Say hi.","input":null,"output":"Hi","system":"Be kind."})", ChatFormat::Alpaca,
       "system: Be kind. | user: Say hi. | assistant: Hi"},
      {R"({"instruction":"I","output":"O","system":""})", ChatFormat::Alpaca, "user: I | assistant: O"},
      {R"({"text":"Once upon a time"})", ChatFormat::Text, "text: Once upon a time"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    const ChatRecords r = parse_chat_records(c.line + "\n", "data.jsonl");
    EXPECT_EQ(r.format, c.format);
    EXPECT_EQ(r.path, "data.jsonl");
    ASSERT_EQ(r.examples.size(), 1u);
    EXPECT_EQ(r.examples[0].line, 1);
    EXPECT_EQ(flat(r.examples[0]), c.example);
  }
}

TEST(ChatRecords, DetectsFromFirstRecordAndCountsLinesFromOne) {
  const std::string jsonl = "\n  \n{\"prompt\":\"a\",\"completion\":\"b\"}\r\n\n{\"prompt\":\"c\",\"completion\":\"d\"}";
  const ChatRecords r = parse_chat_records(jsonl, "pc.jsonl");
  EXPECT_EQ(r.format, ChatFormat::PromptCompletion);
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].line, 3);
  EXPECT_EQ(r.examples[1].line, 5);  // the last line has no newline
  EXPECT_EQ(flat(r.examples[1]), "user: c | assistant: d");
}

TEST(ChatRecords, OverrideForcesTheFormat) {
  // An Alpaca record with a "text" key (as tatsu-lab/alpaca has): auto reads it as Alpaca, forced text
  // takes the text.
  const std::string line = R"({"instruction":"I","output":"O","text":"### I O"})";
  EXPECT_EQ(parse_chat_records(line, "a.jsonl").format, ChatFormat::Alpaca);
  const ChatRecords r = parse_chat_records(line, "a.jsonl", forced(ChatFormat::Text));
  EXPECT_EQ(r.format, ChatFormat::Text);
  EXPECT_EQ(flat(r.examples.at(0)), "text: ### I O");
  EXPECT_EQ(error_of(R"({"text":"x"})", forced(ChatFormat::Chat)),
            "data.jsonl:1: a text record in a chat file (format set by --data-format)");
  EXPECT_EQ(error_of(R"({"answer":"x"})", forced(ChatFormat::PromptCompletion)),
            "data.jsonl:1: missing key \"prompt\"");
  EXPECT_EQ(error_of(R"({"answer":"x"})", forced(ChatFormat::Chat)), "data.jsonl:1: missing key \"messages\"");
  EXPECT_EQ(error_of(R"({"answer":"x"})", forced(ChatFormat::ShareGpt)), "data.jsonl:1: missing key \"conversations\"");
  EXPECT_EQ(error_of(R"({"answer":"x"})", forced(ChatFormat::Alpaca)), "data.jsonl:1: missing key \"instruction\"");
  EXPECT_EQ(error_of(R"({"answer":"x"})", forced(ChatFormat::Text)), "data.jsonl:1: missing key \"text\"");
}

// Every kind of refusal: the exact message, one line, with the file and line.
TEST(ChatRecordsBadInput, EachRefusalIsOneExactLine) {
  const std::string chat = R"({"messages":[{"role":"user","content":"q"}]})";
  struct Case {
    std::string jsonl;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"{\"messages\": [}", "data.jsonl:1: invalid JSON (column 15: syntax error while parsing value - unexpected '}'; "
                            "expected '[', '{', or a literal)"},
      {chat + "\n{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]", "data.jsonl:2: invalid JSON (column 44: syntax "
                                                                       "error while parsing object - unexpected end of "
                                                                       "input; expected '}')"},
      {"[1,2]", "data.jsonl:1: not a JSON object (a list)"},
      {chat + "\n\"just text\"", "data.jsonl:2: not a JSON object (a string)"},
      {R"({"question":"q","answer":"a"})", "data.jsonl:1: cannot tell the format from the keys (\"answer\", "
                                           "\"question\"): expected messages, conversations, prompt, instruction or "
                                           "text (--data-format chooses one)"},
      {chat + "\n" + R"({"prompt":"p","completion":"c"})",
       "data.jsonl:2: a prompt-completion record in a chat file (format detected from line 1; --data-format overrides)"},
      {R"({"prompt":"p"})", "data.jsonl:1: missing key \"completion\""},
      {R"({"prompt":"p","completion":"c"})" "\n" R"({"completion":"c"})", "data.jsonl:2: missing key \"prompt\""},
      {R"({"instruction":"i","input":"x"})", "data.jsonl:1: missing key \"output\""},
      {R"({"instruction":"i","input":3,"output":"o"})", "data.jsonl:1: \"input\" is a number, expected a string"},
      {R"({"text":null})", "data.jsonl:1: \"text\" is null, expected a string"},
      {R"({"messages":{}})", "data.jsonl:1: \"messages\" is an object, expected a list of messages"},
      {R"({"messages":[]})", "data.jsonl:1: empty \"messages\" list"},
      {R"({"conversations":[]})", "data.jsonl:1: empty \"conversations\" list"},
      {R"({"messages":["hi"]})",
       "data.jsonl:1: messages[0] is a string, expected an object with \"role\" and \"content\""},
      {R"({"messages":[{"role":"user","content":"q"},{"content":"a"}]})", "data.jsonl:1: messages[1] has no \"role\""},
      {R"({"messages":[{"role":7,"content":"a"}]})", "data.jsonl:1: messages[0].role is a number, expected a string"},
      {R"({"messages":[{"role":"bot","content":"a"}]})",
       "data.jsonl:1: messages[0].role \"bot\" is not a known role (expected system, user or assistant)"},
      {R"({"messages":[{"role":"user","content":"q"},{"role":"tool","content":"{}"}]})",
       "data.jsonl:1: messages[1].role \"tool\" is not supported yet (expected system, user or assistant)"},
      {R"({"messages":[{"role":"user"}]})", "data.jsonl:1: messages[0] has no \"content\""},
      {R"({"messages":[{"role":"assistant","content":null}]})",
       "data.jsonl:1: messages[0].content is null, expected a string"},
      {R"({"messages":[{"role":"user","content":1.5}]})",
       "data.jsonl:1: messages[0].content is a number, expected a string"},
      {R"({"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}]})",
       "data.jsonl:1: messages[0].content is a list, expected a string"},
      {R"({"conversations":[{"from":"bot","value":"a"}]})", "data.jsonl:1: conversations[0].from \"bot\" is not a "
                                                            "known role (expected human, gpt, system, user or assistant)"},
      {R"({"conversations":[{"from":"human","value":true}]})",
       "data.jsonl:1: conversations[0].value is a boolean, expected a string"},
      {"{\"text\":\"caf\xC3\"}", "data.jsonl:1: invalid JSON (column 14: syntax error while parsing value - invalid "
                                  "string: ill-formed UTF-8 byte; last read: '\"caf\xC3\"')"},
      {R"({"text":"\ud800"})", "data.jsonl:1: invalid JSON (column 16: syntax error while parsing value - invalid "
                               "string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF; last read: "
                               "'\"\\ud800\"')"},
      {"{\"text\":\"a\nb\"}", "data.jsonl:1: invalid JSON (column 11: syntax error while parsing value - invalid "
                              "string: missing closing quote; last read: '\"a')"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.jsonl);
    const std::string error = error_of(c.jsonl);
    EXPECT_EQ(error, c.error);
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
}

TEST(ChatRecordsBadInput, LongBrokenLineGivesAShortMessage) {
  const std::string line = "{\"text\":\"" + std::string(3 << 20, 'x');  // 3 MiB, never closed
  const std::string error = error_of(line);
  EXPECT_TRUE(error.starts_with("data.jsonl:1: invalid JSON (column 3145738: ")) << error.substr(0, 100);
  EXPECT_LT(error.size(), 300u);
}

TEST(ChatRecordsBadInput, EmptyFileAndNothingReadableNameTheFile) {
  EXPECT_EQ(error_of(""), "data.jsonl: no examples (the file is empty)");
  EXPECT_EQ(error_of("\n \n\r\n"), "data.jsonl: no examples (the file is empty)");
  ChatReadOptions skip;
  skip.skip_bad = true;
  EXPECT_EQ(error_of("[]\n{\"messages\":[]}\n", skip),
            "data.jsonl: no examples: all 2 non-blank lines were refused (first: data.jsonl:1: not a JSON object (a list))");
}

TEST(ChatRecords, SkipBadCountsAndKeepsTheFirstTenReasons) {
  std::string jsonl;
  for (int i = 0; i < 30; ++i)
    jsonl += i % 2 ? "{\"text\":\"ok " + std::to_string(i) + "\"}\n" : "{\"text\":" + std::to_string(i) + "}\n";
  EXPECT_EQ(error_of(jsonl), "data.jsonl:1: \"text\" is a number, expected a string");
  ChatReadOptions skip;
  skip.skip_bad = true;
  const ChatRecords r = parse_chat_records(jsonl, "data.jsonl", skip);
  EXPECT_EQ(r.format, ChatFormat::Text);  // the refused first line still named the format
  EXPECT_EQ(r.examples.size(), 15u);
  EXPECT_EQ(r.examples[0].line, 2);
  EXPECT_EQ(r.examples[0].text, "ok 1");
  EXPECT_EQ(r.bad_skipped, 15);
  ASSERT_EQ(r.bad_reasons.size(), 10u);
  EXPECT_EQ(r.bad_reasons[0], "data.jsonl:1: \"text\" is a number, expected a string");
  EXPECT_EQ(r.bad_reasons[9], "data.jsonl:19: \"text\" is a number, expected a string");
}

TEST(ChatRecords, SkipBadDetectsFromTheFirstReadableRecord) {
  ChatReadOptions skip;
  skip.skip_bad = true;
  const ChatRecords r = parse_chat_records("not json\n{\"q\":1}\n{\"text\":\"t\"}\n{\"prompt\":\"p\",\"completion\":\"c\"}\n",
                                           "data.jsonl", skip);
  EXPECT_EQ(r.format, ChatFormat::Text);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.bad_skipped, 3);
  EXPECT_EQ(r.bad_reasons.at(2),
            "data.jsonl:4: a prompt-completion record in a text file (format detected from line 3; --data-format "
            "overrides)");
}

TEST(ChatRecords, ByteOrderMarksAreIgnored) {
  // On line 1 (an editor's), and at the start of later lines too (files joined with cat keep theirs).
  const std::string bom = "\xEF\xBB\xBF";
  const ChatRecords r = parse_chat_records(bom + "{\"text\":\"t\"}\n" + bom + "{\"text\":\"u\"}\n", "bom.jsonl");
  EXPECT_EQ(r.format, ChatFormat::Text);
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].text, "t");
  EXPECT_EQ(r.examples[1].text, "u");
  EXPECT_EQ(error_of(bom + "\n"), "data.jsonl: no examples (the file is empty)");
  EXPECT_EQ(error_of("{\"text\":\"t\"}\n" + bom + bom + "{}"),
            "data.jsonl:2: invalid JSON (column 4: syntax error while parsing value - invalid literal; last read: '\xEF\xBB\xBF\xEF')");
}

TEST(ChatRecords, UnicodeIsKeptByteForByte) {
  // Raw UTF-8 (Greek, CJK, an emoji, a combining accent not normalised) and \u escapes (a surrogate
  // pair, a NUL) read back as exactly these bytes.
  const std::string raw = "\xCE\xBA\xCE\xB1\xCE\xBB\xCE\xB7\xCE\xBC\xCE\xAD\xCF\x81\xCE\xB1 \xE4\xBD\xA0\xE5\xA5\xBD "
                          "\xF0\x9F\x98\x80 e\xCC\x81";
  const std::string jsonl = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + raw +
                            "\"},{\"role\":\"assistant\",\"content\":\"\\ud83d\\ude00\\u0000\\u00e9\\n\"}]}\n";
  const ChatRecords r = parse_chat_records(jsonl, "u.jsonl");
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.examples[0].messages[0].content, raw);
  EXPECT_EQ(r.examples[0].messages[1].content, std::string("\xF0\x9F\x98\x80\0\xC3\xA9\n", 8));
}

TEST(ChatRecords, MixedFormatFileIsRefusedAtTheFirstStranger) {
  const std::string jsonl = "{\"conversations\":[{\"from\":\"human\",\"value\":\"q\"}]}\n"
                            "{\"conversations\":[{\"from\":\"gpt\",\"value\":\"a\"}]}\n"
                            "{\"instruction\":\"i\",\"output\":\"o\"}\n"
                            "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}\n";
  EXPECT_EQ(error_of(jsonl),
            "data.jsonl:3: an alpaca record in a sharegpt file (format detected from line 1; --data-format overrides)");
  ChatReadOptions skip;
  skip.skip_bad = true;
  const ChatRecords r = parse_chat_records(jsonl, "data.jsonl", skip);
  EXPECT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.bad_skipped, 2);
  EXPECT_EQ(r.bad_reasons.at(1),
            "data.jsonl:4: a chat record in a sharegpt file (format detected from line 1; --data-format overrides)");
}

TEST(ChatRecords, RequireAssistant) {
  const std::string jsonl = "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n"
                            "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"q\"}]}\n";
  EXPECT_EQ(parse_chat_records(jsonl, "data.jsonl").examples.size(), 2u);
  ChatReadOptions require;
  require.require_assistant = true;
  EXPECT_EQ(error_of(jsonl, require), "data.jsonl:2: no assistant message");
  require.skip_bad = true;
  const ChatRecords r = parse_chat_records(jsonl, "data.jsonl", require);
  EXPECT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.bad_skipped, 1);
  // The mapped formats always end in an assistant turn; text has none and is not checked.
  require.skip_bad = false;
  EXPECT_EQ(parse_chat_records("{\"prompt\":\"p\",\"completion\":\"\"}", "d", require).examples.size(), 1u);
  EXPECT_EQ(parse_chat_records("{\"text\":\"t\"}", "d", require).examples.size(), 1u);
}

TEST(ChatRecords, ReadsAFileLineByLine) {
  const auto dir = scratch_dir("chat_records");
  const std::string big(2 << 20, 'z');  // a 2 MiB line
  write_text(dir / "a.jsonl", "\xEF\xBB\xBF{\"prompt\":\"p\",\"completion\":\"" + big +
                                  "\"}\r\n\r\n{\"prompt\":\"p2\",\"completion\":\"c2\"}");
  const ChatRecords r = read_chat_records((dir / "a.jsonl").string());
  EXPECT_EQ(r.path, (dir / "a.jsonl").string());
  EXPECT_EQ(r.format, ChatFormat::PromptCompletion);
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].messages.at(1).content, big);
  EXPECT_EQ(r.examples[1].line, 3);
  write_text(dir / "b.jsonl", "{\"text\":\"t\"}\n{\"text\":\"t\"\n");
  try {
    read_chat_records((dir / "b.jsonl").string());
    ADD_FAILURE() << "read a broken file";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "b.jsonl").string() + ":2: invalid JSON (column 12: syntax error while "
                                                                   "parsing object - unexpected end of input; expected '}')");
  }
}

TEST(ChatRecords, MissingFileOrDirectoryIsAnError) {
  const auto dir = scratch_dir("chat_records_missing");
  EXPECT_THROW(read_chat_records((dir / "none.jsonl").string()), Error);
  try {
    read_chat_records(dir.string());
    ADD_FAILURE() << "read a directory";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot read " + dir.string() + ": it is a directory");
  }
}

// scripts/chat_demo_data.py's train and eval files from Debian's iso-codes read as chat data, with
// disjoint countries.
TEST(ChatRecordsDemo, IsoCodesDataReads) {
  ASSERT_TRUE(std::filesystem::exists("/usr/share/iso-codes/json/iso_3166-1.json"))
      << "Debian's iso-codes package is missing: run scripts/setup.sh";
  const auto dir = scratch_dir("chat_demo_data");
  const std::string cmd = "/usr/bin/python3 " + std::string(FRUGAL_SOURCE_DIR) + "/scripts/chat_demo_data.py " +
                          dir.string() + " > " + (dir / "log").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ChatReadOptions require;
  require.require_assistant = true;
  const ChatRecords train = read_chat_records((dir / "train.jsonl").string(), require);
  const ChatRecords eval = read_chat_records((dir / "eval.jsonl").string(), require);
  EXPECT_EQ(train.format, ChatFormat::Chat);
  EXPECT_GT(train.examples.size(), 400u);
  EXPECT_GT(eval.examples.size(), 20u);
  EXPECT_EQ(train.examples[0].messages.back().role, "assistant");
  // Every answer names its country; no eval country appears in the train answers.
  const auto country = [](const std::string& answer) {  // "The alpha-2 code of France is FR."
    const size_t of = answer.find(" of "), is = answer.rfind(" is ");
    return of == std::string::npos || is == std::string::npos ? std::string() : answer.substr(of + 4, is - of - 4);
  };
  std::set<std::string> train_countries;
  for (const ChatExample& e : train.examples) train_countries.insert(country(e.messages.back().content));
  for (const ChatExample& e : eval.examples) {
    const std::string c = country(e.messages.back().content);
    ASSERT_FALSE(c.empty()) << e.messages.back().content;
    EXPECT_EQ(train_countries.count(c), 0u) << c;
  }
}
