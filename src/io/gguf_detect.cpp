// Telling a GGUF file from a model directory (--model takes either).
#include <cstring>
#include <fstream>

#include "io/gguf.h"

namespace frugal {

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in && in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace frugal
