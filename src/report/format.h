#pragma once
// Human-readable numbers for progress lines and reports.
#include <cstdint>
#include <string>
#include <vector>

namespace frugal {

std::string format_bytes(double bytes);      // "12.3 MiB"
std::string format_count(double n);          // "4.84M"
std::string format_seconds(double seconds);  // "1.23 s", "45 ms"

// Parses sizes like "512MiB", "1.5GB", "4096" (bytes); Error on anything else.
uint64_t parse_size(const std::string& text);

struct MemorySnapshot;
// The memory report by category: one column per snapshot (e.g. predicted and measured).
void print_memory_table(const std::vector<std::string>& column_titles, const std::vector<MemorySnapshot>& columns);

}  // namespace frugal
