// `frugal train | plan | grad | generate` (and register_run, which `frugal chat` shares): each maps its flags (and --config FILE) onto a run spec
// and hands it to the library (src/run/).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "run/chat_data_run.h"
#include "run/generate_run.h"
#include "run/grad_run.h"
#include "run/plan_run.h"
#include "run/spec_options.h"
#include "run/spec_settings.h"
#include "run/train_run.h"

namespace frugal::cli {

void register_run(CLI::App& app, Command command, const std::string& help, void (*run)(RunSpec&)) {
  auto spec = std::make_shared<RunSpec>(default_spec(command));
  CLI::App* cmd = app.add_subcommand(command_name(command), help);
  add_spec_options(*cmd, *spec, command);
  cmd->callback([spec, cmd, run] {
    spec->command_line = recorded_command_line();
    finish_spec(*cmd, *spec);
    run(*spec);
  });
}

namespace {

void run_train(RunSpec& spec) { train_run(spec); }

void run_plan(RunSpec& spec) {
  const nlohmann::json plan = plan_run(spec, /*print=*/true);
  if (spec.plan.json) std::printf("%s\n", plan.dump(2).c_str());
}

// Prints {"loss": x} and writes every trainable parameter's gradient under its name.
void run_grad(RunSpec& spec) {
  check(!spec.model.model_dir.empty(), "frugal grad needs --model DIR");
  const bool chat = is_chat_data(spec.data, spec.chat);
  check(spec.grad.batch_path.empty() != spec.data.empty(),
        "frugal grad needs one of --batch FILE (a safetensors file with 'inputs' and 'targets') and --data FILE.jsonl");
  check(spec.data.empty() || chat, "frugal grad --data takes chat data (FILE.jsonl, or --data-format)");
  check(!spec.grad.out_path.empty(), "frugal grad needs --out FILE (where the gradients go)");
  if (world().rank() == 0) check_output_file(spec.grad.out_path, "--out");
  const std::string& path = spec.grad.batch_path;
  grad_run(
      spec,
      [&](const Model& model) {
        if (chat) return whole_file_batch(spec, model);
        const SafetensorsFile file = SafetensorsFile::open(path);
        check(file.contains("inputs") && file.contains("targets"), path + ": a batch needs tensors 'inputs' and 'targets'");
        return Batch{file.load("inputs", MemCategory::Activations, model.input_dtype()),
                     file.load("targets", MemCategory::Activations, model.target_dtype())};
      },
      [&](double loss, const std::vector<std::pair<std::string, Tensor>>& grads) {
        write_safetensors(spec.grad.out_path, grads);
        std::printf("%s\n", nlohmann::json{{"loss", loss}}.dump().c_str());
      });
}

// The prompt, then each token's text: as it comes with --stream, else all at once at the end.
void run_generate(RunSpec& spec) {
  const bool stream = spec.generate.stream;
  const std::string text = generate_run(spec, [stream](const std::string& piece) {
    if (!stream) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  if (!stream) std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::vector<std::string>& command_line_store() {
  static std::vector<std::string> args;
  return args;
}

}  // namespace

void record_command_line(int argc, char** argv) { command_line_store().assign(argv, argv + argc); }
const std::vector<std::string>& recorded_command_line() { return command_line_store(); }

void register_train(CLI::App& app) {
  register_run(app, Command::Train, "train or fine-tune a model (no flags: the built-in demo)", run_train);
}
void register_plan(CLI::App& app) {
  register_run(app, Command::Plan, "predict training memory by category without running", run_plan);
}
void register_grad(CLI::App& app) {
  register_run(app, Command::Grad, "one forward + backward on a batch; prints the loss, writes gradients", run_grad);
}
void register_generate(CLI::App& app) {
  register_run(app, Command::Generate, "sample text from a language model directory (GPT-2, Llama family)", run_generate);
}

}  // namespace frugal::cli
