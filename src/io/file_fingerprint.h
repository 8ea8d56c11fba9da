#pragma once
// A file's size and CRC-32, for recording what a checkpoint holds or depends on.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// {"bytes": size, "crc32": CRC-32 of the contents}, read in 1 MiB pieces (the file may be large).
// Error naming the file if it cannot be read.
nlohmann::json file_fingerprint(const std::string& path);

}  // namespace frugal
