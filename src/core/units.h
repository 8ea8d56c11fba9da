#pragma once
// Human-readable sizes, counts and durations, and the parser for sizes given on the command line.
// In core because every layer reports bytes (the planner's errors, progress lines, reports).
#include <cstdint>
#include <string>

namespace frugal {

std::string format_bytes(double bytes);      // "12.3 MiB"
std::string format_count(double n);          // "4.84M"
std::string format_seconds(double seconds);  // "1.23 s", "45.0 ms"

// Parses sizes like "512MiB", "1.5GB", "4096" (bytes); Error on anything else.
uint64_t parse_size(const std::string& text);

}  // namespace frugal
