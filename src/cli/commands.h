#pragma once
// `frugal NAME` subcommands; each registers its flags and the function that runs it. What a run is
// and how it is built lives in the library (src/run/): the commands map flags onto it.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "run/run_spec.h"

namespace frugal::cli {

void register_train(CLI::App& app);
void register_grad(CLI::App& app);
void register_generate(CLI::App& app);
void register_chat(CLI::App& app);
void register_plan(CLI::App& app);
void register_experiment(CLI::App& app);
void register_lora(CLI::App& app);
void register_export(CLI::App& app);
void register_svd(CLI::App& app);
void register_doctor(CLI::App& app);
void register_tokenize(CLI::App& app);

// The subcommand of a described run (train, plan, grad, generate, chat) with its options bound to a
// spec, and `run` called after parsing with the spec finished (--config applied under the flags).
void register_run(CLI::App& app, Command command, const std::string& help, void (*run)(RunSpec&));

// The command line frugal was started with (main records it; plan --memory-budget prints it back).
void record_command_line(int argc, char** argv);
const std::vector<std::string>& recorded_command_line();

}  // namespace frugal::cli
