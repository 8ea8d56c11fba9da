#pragma once
// One exception type for every user-facing failure (include/frugal/error.h: the public API throws
// it too). The CLI catches it and prints "frugal: error: <message>" on one line with a non-zero exit
// status.
#include <string>

#include "frugal/error.h"

namespace frugal {

// Throws Error(message) unless cond holds. For checks on user input and invariants alike.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace frugal
