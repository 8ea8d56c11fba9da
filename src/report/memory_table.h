#pragma once
// The memory report by category, as `train` and `plan` print it.
#include <string>
#include <vector>

#include "core/ledger.h"

namespace frugal {

// One column per snapshot (e.g. predicted and measured), one row per category and the total.
void print_memory_table(const std::vector<std::string>& column_titles, const std::vector<MemorySnapshot>& columns);

}  // namespace frugal
