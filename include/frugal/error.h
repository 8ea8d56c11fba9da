#pragma once
// The one exception type of frugal: every refused input and failed run throws it with a one-line
// message (the command-line tool prints it as "frugal: error: <message>").
#include <stdexcept>
#include <string>

namespace frugal {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace frugal
