#include "io/file_fingerprint.h"

#include <zlib.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace frugal {

nlohmann::json file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open " + path);
  std::vector<char> piece(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t bytes = 0;
  while (in) {
    in.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    const std::streamsize n = in.gcount();
    crc = crc32(crc, reinterpret_cast<const Bytef*>(piece.data()), static_cast<uInt>(n));
    bytes += static_cast<uint64_t>(n);
  }
  check(in.eof(), "cannot read " + path);
  return {{"bytes", bytes}, {"crc32", static_cast<uint64_t>(crc)}};
}

}  // namespace frugal
