// --config RUN.yaml|json (src/run/spec_settings.h): the same run as the flags, flags over the file,
// a summary's "run" record replays the run bit for bit, and bad files end in one line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_support.h"

namespace frugal::testing {
namespace {

const char* kTinyFlags = "--layers 1 --dim 32 --heads 2 --ctx 16 --steps 3 --micro-batch 4 --sample-tokens 0 --seed 7";

nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(slurp(p)); }

void write(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }

// A summary without what differs between two runs of one configuration: wall time, RSS, and what
// the machine's rates decide (their first measurement, the predicted step time: the suite's runs
// share a rates cache that a process may measure again when it finds the machine quieter).
nlohmann::json without_timings(nlohmann::json s) {
  for (const char* key : {"step_time_s", "tokens_per_s", "samples_per_s", "peak_rss_bytes", "rates_measurement",
                          "communication_s", "predicted_step_time_s"})
    s.erase(key);
  return s;
}

CliResult train(const std::string& args, const std::filesystem::path& summary) {
  CliResult r = run_frugal("train " + args + " --summary " + summary.string());
  EXPECT_EQ(r.status, 0) << r.err;
  return r;
}

TEST(ConfigFiles, YamlJsonAndFlagsTrainTheSameRun) {
  const auto dir = scratch("config_same_run");
  write(dir / "run.yaml",
        "# the flags of kTinyFlags, in both spellings\nlayers: 1\ndim: 32\nheads: 2\nctx: 16\nsteps: 3\n"
        "micro_batch: 4\nsample-tokens: 0\nseed: 7\n");
  write(dir / "run.json", R"({"layers": 1, "dim": 32, "heads": 2, "ctx": 16, "steps": 3, "micro-batch": 4,
                             "sample_tokens": 0, "seed": 7})");
  // The nested form: a mapping's keys join their parent's with '-'.
  write(dir / "nested.yaml", "layers: 1\ndim: 32\nheads: 2\nctx: 16\nsteps: 3\nmicro:\n  batch: 4\nsample:\n  tokens: 0\nseed: 7\n");
  train(kTinyFlags, dir / "flags.json");
  train("--config " + (dir / "run.yaml").string(), dir / "yaml.json");
  train("--config " + (dir / "run.json").string(), dir / "json.json");
  const nlohmann::json flags = without_timings(read_json(dir / "flags.json"));
  EXPECT_EQ(flags["losses"].size(), 3u);
  EXPECT_EQ(without_timings(read_json(dir / "yaml.json")), flags);
  EXPECT_EQ(without_timings(read_json(dir / "json.json")), flags);
  train("--config " + (dir / "nested.yaml").string(), dir / "nested.json");
  EXPECT_EQ(without_timings(read_json(dir / "nested.json")), flags);
}

TEST(ConfigFiles, FlagsOverrideTheFile) {
  const auto dir = scratch("config_override");
  write(dir / "run.yaml", "layers: 1\ndim: 32\nheads: 2\nctx: 16\nsteps: 3\nmicro-batch: 4\nsample-tokens: 0\nseed: 1\n");
  train("--config " + (dir / "run.yaml").string() + " --seed 7", dir / "override.json");
  train(kTinyFlags, dir / "flags.json");
  EXPECT_EQ(without_timings(read_json(dir / "override.json")), without_timings(read_json(dir / "flags.json")));
  EXPECT_EQ(read_json(dir / "override.json")["run"]["settings"]["seed"], 7);
}

TEST(ConfigFiles, SummaryReplaysTheRunBitForBit) {
  const auto dir = scratch("config_replay");
  // LoRA on a fresh Llama with dropout, bf16 and accumulation: every group of settings is recorded.
  train("--arch llama --layers 2 --dim 32 --heads 4 --kv-heads 2 --ctx 16 --steps 3 --micro-batch 2 --accum 2 "
        "--lora-rank 4 --lora-dropout 0.1 --precision bf16 --lr 0.003 --sample-tokens 0 --seed 11",
        dir / "first.json");
  train("--config " + (dir / "first.json").string() + " --sample-tokens 0", dir / "replay.json");
  const nlohmann::json first = read_json(dir / "first.json");
  const nlohmann::json replay = read_json(dir / "replay.json");
  EXPECT_EQ(first["losses"], replay["losses"]);  // bit for bit: JSON keeps every digit of a double
  EXPECT_EQ(without_timings(replay), without_timings(first));
  EXPECT_EQ(first["run"]["settings"]["lora-rank"], 4);
  EXPECT_EQ(first["run"]["settings"]["precision"], "bf16");
}

TEST(ConfigFiles, CheckpointRecordReplays) {
  const auto dir = scratch("config_checkpoint");
  train(std::string(kTinyFlags) + " --save " + (dir / "model").string() + " --save-every 3", dir / "first.json");
  const auto trainer = dir / "model" / "checkpoints" / "step-00000003" / "trainer.json";
  ASSERT_TRUE(std::filesystem::exists(trainer));
  train("--config " + trainer.string(), dir / "replay.json");
  EXPECT_EQ(read_json(dir / "first.json")["losses"], read_json(dir / "replay.json")["losses"]);
}

TEST(ConfigFiles, ACheckpointRecordFromBeforeTheConfigFilesReplays) {
  // Records written before the config files: "--" keys, and the values meaning "not set" (0 sizes,
  // -1 dropout, empty text) that no flag accepts.
  const auto dir = scratch("config_legacy_record");
  write(dir / "trainer.json", R"({"run": {"--arch": "gpt", "--layers": 1, "--dim": 32, "--heads": 2, "--ctx": 16,
    "--vocab": 0, "--kv-heads": 0, "--norm": "", "--dropout": -1, "--attn-dropout": -1, "--model": "",
    "--micro-batch": 4, "--seed": 7, "--steps": 3, "--precision": "fp32", "world_size": 1}})");
  train("--config " + (dir / "trainer.json").string() + " --sample-tokens 0", dir / "legacy.json");
  train(kTinyFlags, dir / "flags.json");
  EXPECT_EQ(read_json(dir / "legacy.json")["losses"], read_json(dir / "flags.json")["losses"]);
  // A summary from before the records held settings: nothing to replay, said so.
  write(dir / "old-summary.json", R"({"final_loss": 1.0, "run": {"arch": "gpt", "training": {}}})");
  expect_one_line_error(run_frugal("train --config " + (dir / "old-summary.json").string()),
                        "its \"run\" record has no settings");
}

TEST(ConfigFiles, PlanPrintsACommandThatStandsForTheFile) {
  const auto dir = scratch("config_plan_command");
  write(dir / "budget.yaml", "layers: 2\ndim: 64\nheads: 4\nctx: 32\nbatch-size: 8\nmemory-budget: 64MiB\njson: true\n");
  const CliResult r = run_frugal("plan --config " + (dir / "budget.yaml").string() + " --seed 3");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string command = nlohmann::json::parse(r.out)["command"].get<std::string>();
  for (const char* kept : {"--layers 2", "--dim 64", "--heads 4", "--ctx 32", "--seed 3", "--memory-limit 64MiB"})
    EXPECT_NE(command.find(kept), std::string::npos) << kept << " missing in: " << command;
  for (const char* dropped : {"--config", "--json", "--batch-size", "--memory-budget"})
    EXPECT_EQ(command.find(dropped), std::string::npos) << dropped << " left in: " << command;
  // And the command trains (one step of it).
  const CliResult trained = run_frugal(command.substr(std::string("frugal ").size()) + " --steps 1 --sample-tokens 0");
  EXPECT_EQ(trained.status, 0) << trained.err;
}

TEST(ConfigFiles, BadFilesAndKeysAreOneLineErrors) {
  const auto dir = scratch("config_errors");
  const auto with = [&](const std::string& name, const std::string& text) {
    write(dir / name, text);
    return run_frugal("train --config " + (dir / name).string() + " --steps 1");
  };
  expect_one_line_error(with("type.yaml", "lora-rank: eight\n"), "lora-rank: expected an integer, got \"eight\"");
  expect_one_line_error(with("unknown.yaml", "lora-rnak: 8\n"), "unknown key 'lora-rnak' for frugal train; did you mean 'lora-rank'?");
  expect_one_line_error(with("elsewhere.yaml", "prompt: hello\n"), "'prompt' for frugal train (a key of frugal generate)");
  expect_one_line_error(with("twice.yaml", "lora_rank: 8\nlora-rank: 4\n"), "both set lora-rank");
  expect_one_line_error(with("flat-and-nested.yaml", "lora:\n  rank: 8\nlora-rank: 4\n"), "'lora-rank' is set twice (flat and nested)");
  expect_one_line_error(with("range.yaml", "lora-rank: -1\n"), "lora-rank: --lora-rank: Value -1 not in range");
  expect_one_line_error(with("choice.yaml", "precision: fp8\n"), "precision: --precision: fp8 not in {fp32,fp16,bf16}");
  expect_one_line_error(with("flag.yaml", "qk-norm: yes\n"), "qk-norm: expected true or false");
  expect_one_line_error(with("nested.yaml", "lora:\n  rnak: 8\n"), "unknown key 'lora-rnak' for frugal train; did you mean 'lora-rank'?");
  expect_one_line_error(with("list.yaml", "- layers\n- 2\n"), "expected a mapping of settings");
  expect_one_line_error(with("broken.yaml", "layers: [1, 2\n"), "not valid YAML");
  expect_one_line_error(with("broken.json", "{\"layers\": 1,}"), "not valid JSON");
  expect_one_line_error(with("nest.yaml", "config: other.yaml\n"), "'config' inside a config file");
  expect_one_line_error(run_frugal("train --config " + (dir / "missing.yaml").string()), "cannot read the file");
  // A key and a flag that contradict each other: the combination is refused, never silently dropped.
  write(dir / "fresh.yaml", "layers: 2\n");
  expect_one_line_error(run_frugal("train --config " + (dir / "fresh.yaml").string() + " --model " + dir.string()),
                        "brings its own architecture");
  write(dir / "lora.yaml", "lora-alpha: 16\n");
  expect_one_line_error(run_frugal("train --config " + (dir / "lora.yaml").string() + " --steps 1"),
                        "--lora-alpha/--lora-dropout/--lora-targets need --lora-rank R");
}

TEST(ConfigFiles, PlanGradAndGenerateTakeConfigsToo) {
  const auto dir = scratch("config_commands");
  write(dir / "plan.yaml", "arch: llama\nlayers: 2\ndim: 64\nheads: 4\nlora-rank: 8\njson: true\n");
  const CliResult from_file = run_frugal("plan --config " + (dir / "plan.yaml").string());
  const CliResult from_flags = run_frugal("plan --arch llama --layers 2 --dim 64 --heads 4 --lora-rank 8 --json");
  ASSERT_EQ(from_file.status, 0) << from_file.err;
  ASSERT_EQ(from_flags.status, 0) << from_flags.err;
  EXPECT_EQ(without_timings(nlohmann::json::parse(from_file.out)), without_timings(nlohmann::json::parse(from_flags.out)));
  write(dir / "gen.yaml", "tokens: 3\nsteps: 2\n");  // steps is a key of train, not of generate
  expect_one_line_error(run_frugal("generate --model " + dir.string() + " --config " + (dir / "gen.yaml").string()),
                        "unknown key 'steps' for frugal generate");
}

}  // namespace
}  // namespace frugal::testing
