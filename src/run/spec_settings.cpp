#include "run/spec_settings.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "run/run_record.h"
#include "run/spec_options.h"

namespace frugal {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "--config " + path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A YAML node as JSON. Plain scalars take the type they spell (integer, number, true/false, null);
// quoted ones stay strings. Only true/false are booleans: "on"/"off" (--master-weights) stay words.
nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& item : node) object[item.first.as<std::string>()] = yaml_to_json(item.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : node) array.push_back(yaml_to_json(item));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted
      if (text == "true" || text == "True") return true;
      if (text == "false" || text == "False") return false;
      if (text == "~" || text == "null") return nullptr;
      const nlohmann::json number = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      return number.is_number() ? number : nlohmann::json(text);
    }
    default:
      return nullptr;
  }
}

// The settings a recorded run holds, or the file's own mapping.
nlohmann::json settings_of(const nlohmann::json& document, const std::string& path) {
  check(document.is_object(), "--config " + path + ": expected a mapping of settings (key: value), got a " +
                                  std::string(document.type_name()));
  if (!document.contains("run") || !document["run"].is_object()) return document;
  const nlohmann::json& run = document["run"];
  if (run.contains("settings")) return run["settings"];  // a summary or `plan --json`
  check(run.contains("world_size"), "--config " + path + ": its \"run\" record has no settings (a summary "
                                    "written before frugal recorded them): nothing to replay");
  // A training-state checkpoint's trainer state ("--arch" keys before the config files, and the values
  // meaning "not set" that records now leave out).
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [key, value] : run.items()) {
    const std::string name = key.rfind("--", 0) == 0 ? key.substr(2) : key;
    if (name != "world_size" && !unset_setting(name, value)) settings[name] = value;
  }
  return settings;
}

// Key as the option names it: "lora_rank" and "--lora-rank" are "lora-rank".
std::string normalized_key(std::string key) {
  if (key.rfind("--", 0) == 0) key = key.substr(2);
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "unknown key 'lora-rnak' (did you mean 'lora-rank'?)", or which command has it.
std::string unknown_key_message(const CLI::App& app, const std::string& key) {
  std::string nearest;
  size_t best = SIZE_MAX;
  for (const CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_name();
    if (name.rfind("--", 0) != 0 || name == "--help" || name == "--config") continue;
    const size_t d = edit_distance(key, name.substr(2));
    if (d < best) best = d, nearest = name.substr(2);
  }
  std::string elsewhere;
  for (Command other : {Command::Train, Command::Plan, Command::Grad, Command::Generate, Command::Chat}) {
    if (app.get_name() == command_name(other)) continue;
    CLI::App probe;
    RunSpec spec = default_spec(other);
    add_spec_options(probe, spec, other);
    if (probe.get_option_no_throw("--" + key)) {
      elsewhere = std::string(" (a key of frugal ") + command_name(other) + ")";
      break;
    }
  }
  return "unknown key '" + key + "' for frugal " + app.get_name() + elsewhere +
         (nearest.empty() ? std::string() : "; did you mean '" + nearest + "'?");
}

// Keys whose text may be written as a number (sizes in bytes, a fixed loss scale).
bool accepts_number(const std::string& key) {
  return key == "memory-budget" || key == "memory-limit" || key == "activation-budget" || key == "loss-scale";
}

std::string describe(const nlohmann::json& value) {
  const std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

// The value as the option's text ("8", "0.002", "c_attn,c_proj"), or Error naming what it wanted.
std::string option_text(const CLI::Option& opt, const std::string& key, const nlohmann::json& value) {
  const std::string type = opt.get_type_name().substr(0, opt.get_type_name().find(':'));
  const std::string got = ", got " + describe(value);
  if (opt.get_expected_max() == 0) {  // a flag
    check(value.is_boolean(), key + ": expected true or false" + got);
    return value.get<bool>() ? "true" : "false";
  }
  if (type == "INT" || type == "UINT") {
    // (an integral float such as YAML's 1e6 is an integer too, within int64's range)
    const bool integral_float = value.is_number_float() && std::fabs(value.get<double>()) < 9.2e18 &&
                                value.get<double>() == std::floor(value.get<double>());
    check(value.is_number_integer() || integral_float, key + ": expected an integer" + got);
    return value.is_number_integer() ? value.dump() : std::to_string(static_cast<int64_t>(value.get<double>()));
  }
  if (type == "FLOAT") {
    check(value.is_number(), key + ": expected a number" + got);
    return value.dump();
  }
  if (value.is_array()) {  // a list: --lora-targets q_proj,v_proj
    std::string joined;
    for (const nlohmann::json& item : value) {
      check(item.is_string() || item.is_number_integer(), key + ": expected a list of names" + got);
      joined += (joined.empty() ? "" : ",") + (item.is_string() ? item.get<std::string>() : item.dump());
    }
    return joined;
  }
  if (value.is_number() && accepts_number(key)) return value.dump();
  check(value.is_string(), key + ": expected a string" + got);
  return value.get<std::string>();
}

// The nested form flat: {"lora": {"rank": 8}} is {"lora-rank": 8}.
nlohmann::json flattened(const nlohmann::json& settings, const std::string& source, const std::string& prefix = "") {
  nlohmann::json flat = nlohmann::json::object();
  for (const auto& [key, value] : settings.items()) {
    if (!value.is_object()) {
      check(!flat.contains(prefix + key), source + ": '" + prefix + key + "' is set twice (flat and nested)");
      flat[prefix + key] = value;
      continue;
    }
    const nlohmann::json inside = flattened(value, source, prefix + key + "-");
    for (const auto& [inner, item] : inside.items()) {
      check(!flat.contains(inner) && !settings.contains(inner), source + ": '" + inner + "' is set twice (flat and nested)");
      flat[inner] = item;
    }
  }
  return flat;
}

// Settings (flat) as the flags that set them, after `args`; keys in `skip` (given otherwise) left out.
void append_as_flags(std::vector<std::string>& args, const nlohmann::json& flat, const CLI::App& app,
                     const std::set<std::string>& skip) {
  for (const auto& [key, value] : flat.items()) {
    const std::string name = "--" + normalized_key(key);
    const CLI::Option* opt = app.get_option_no_throw(name);
    if (!opt || skip.count(name)) continue;
    if (opt->get_expected_max() == 0) {
      if (value.get<bool>()) args.push_back(name);
      continue;
    }
    args.push_back(name);
    args.push_back(option_text(*opt, normalized_key(key), value));
  }
}

}  // namespace

nlohmann::json read_settings_file(const std::string& path) {
  const std::string text = read_text(path);
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  nlohmann::json document;
  if (json) {
    try {
      document = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error("--config " + path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
  } else {
    try {
      document = yaml_to_json(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      throw Error("--config " + path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML (" + e.msg + ")");
    }
  }
  return settings_of(document, path);
}

void apply_settings(CLI::App& app, const nlohmann::json& nested, const std::string& source) {
  check(nested.is_object(), source + ": expected a mapping of settings (key: value), got a " +
                                std::string(nested.type_name()));
  const nlohmann::json settings = flattened(nested, source);
  std::map<std::string, std::string> spelled;  // normalized key -> as written
  for (const auto& [written, value] : settings.items()) {
    const std::string key = normalized_key(written);
    const auto [first, fresh] = spelled.emplace(key, written);
    check(fresh, source + ": '" + first->second + "' and '" + written + "' both set " + key);
    check(key != "config" || source == "spec", source + ": 'config' inside a config file (files do not include others)");
    CLI::Option* opt = app.get_option_no_throw("--" + key);
    check(opt && key != "help", source + ": " + unknown_key_message(app, key));
    check(!value.is_null(), source + ": " + key + " has no value");
    if (opt->count() > 0) continue;  // the command line (or the spec over its file) wins
    std::string text;
    try {
      text = option_text(*opt, key, value);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
    try {
      opt->add_result(text);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw Error(source + ": " + key + ": " + e.what());
    }
  }
}

void finish_spec(CLI::App& app, RunSpec& spec) {
  if (!spec.config.empty()) {
    std::set<std::string> on_line;  // (what the file must not override, nor repeat in the command line)
    for (const CLI::Option* opt : app.get_options())
      if (opt->count() > 0) on_line.insert(opt->get_name());
    const nlohmann::json file = flattened(read_settings_file(spec.config), spec.config);
    apply_settings(app, file, spec.config);
    // The command line the file and the flags stand for: the file's keys as flags in place of --config.
    if (!spec.command_line.empty()) {
      std::vector<std::string> args;
      for (size_t i = 0; i < spec.command_line.size(); ++i) {
        const std::string& a = spec.command_line[i];
        if (a == "--config") ++i;  // and its value
        else if (a.rfind("--config=", 0) != 0) args.push_back(a);
      }
      append_as_flags(args, file, app, on_line);
      spec.command_line = args;
    }
  }
  spec.given.clear();
  for (const CLI::Option* opt : app.get_options())
    if (opt->count() > 0) spec.given.insert(opt->get_name());
}

RunSpec spec_from_settings(const nlohmann::json& settings, Command command) {
  CLI::App app{"", command_name(command)};
  RunSpec spec = default_spec(command);
  add_spec_options(app, spec, command);
  app.parse(std::vector<std::string>{});
  apply_settings(app, settings, "spec");
  // The command line these settings stand for (plan --memory-budget prints it back).
  spec.command_line = {"frugal", command_name(command)};
  append_as_flags(spec.command_line, flattened(settings, "spec"), app, {});
  finish_spec(app, spec);
  return spec;
}

}  // namespace frugal
