#include "report/memory_table.h"

#include <cstdio>

#include "core/units.h"

namespace frugal {

void print_memory_table(const std::vector<std::string>& titles, const std::vector<MemorySnapshot>& columns) {
  std::printf("  %-24s", "peak bytes by category");
  for (const auto& t : titles) std::printf(" %12s", t.c_str());
  std::printf("\n");
  auto row = [&](const char* name, auto value_of) {
    std::printf("  %-24s", name);
    for (const auto& c : columns) std::printf(" %12s", format_bytes(static_cast<double>(value_of(c))).c_str());
    std::printf("\n");
  };
  for (int k = 0; k < kNumMemCategories; ++k)
    row(mem_category_name(static_cast<MemCategory>(k)), [k](const MemorySnapshot& s) { return s.bytes[k]; });
  row("total (peak of the sum)", [](const MemorySnapshot& s) { return s.total; });
}

}  // namespace frugal
