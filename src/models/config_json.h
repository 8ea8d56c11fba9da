#pragma once
// Reading config.json values with errors that name the key.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// The integer value of `key`; Error "config.json: missing key 'key'" or "... must be an integer".
int64_t require_int(const nlohmann::json& j, const char* key);

// Parses dir/config.json; Error naming the file if it is missing or not a JSON object.
nlohmann::json read_model_config(const std::string& dir);

}  // namespace frugal
