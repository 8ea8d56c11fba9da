#pragma once
// One exception type for every user-facing failure. The CLI catches it and prints
// "frugal: error: <message>" on one line with a non-zero exit status.
#include <stdexcept>
#include <string>

namespace frugal {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) unless cond holds. For checks on user input and invariants alike.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace frugal
