#pragma once
// Settings from outside the command line: a --config file (YAML or JSON), a spec dict (Python's
// frugal.train(spec), the C++ API's json), a recorded run. Keys are the long flag names without
// dashes, flat ("lora-rank: 8"; "lora_rank" is the same key). They go through the very options the
// flags do (run/spec_options.h): the same conversion, range checks and one-line errors; a key the
// command does not have is an error naming the nearest one it has.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "run/run_spec.h"

namespace frugal {

// A settings file as {key: value}: YAML (any name) or JSON (*.json). A run summary's or `plan
// --json`'s record ({"run": {"settings": {...}}}) and a training-state checkpoint's trainer state
// ({"run": {...}}) give the settings they recorded, so `--config summary.json` replays a run.
// Error (one line, with the file and line) for a file that cannot be read or parsed, or that is not
// a mapping of keys to values.
nlohmann::json read_settings_file(const std::string& path);

// Sets each key's option on `app` (a command registered by add_spec_options) unless the command line
// already set it (flags win over files). `source` names the settings in errors ("run.yaml", "spec").
void apply_settings(CLI::App& app, const nlohmann::json& settings, const std::string& source);

// After the command line is parsed: --config's file applied under it, `given` filled with every key
// the user set, and `command_line` (when set: the arguments as given) rewritten with the file's keys
// as flags in place of --config FILE, so the command plan --memory-budget prints runs without it.
void finish_spec(CLI::App& app, RunSpec& spec);

// A spec of `command` from settings alone (the API's and Python's dicts), through the same options.
RunSpec spec_from_settings(const nlohmann::json& settings, Command command);

}  // namespace frugal
