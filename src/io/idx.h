#pragma once
// IDX files (the MNIST / Fashion-MNIST container): a big-endian magic 0x00 0x00 <type> <ndims>,
// ndims big-endian u32 sizes, then the row-major payload. Only unsigned-byte payloads (type 0x08)
// exist in those data sets, so only they are supported. Files may be gzip-compressed; zlib's
// gzread detects the gzip magic and reads plain files unchanged.
#include <cstdint>
#include <string>
#include <vector>

namespace frugal {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {N, 28, 28} for images (0x00000803), {N} for labels (0x00000801)
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
};

// Reads and validates an IDX file: magic, 1 to 4 dimensions, and a payload of exactly the size the
// dimensions say (a truncated or over-long file is an Error). With max_items >= 0 only the first
// max_items entries along dimension 0 are read (dims[0] then says how many were), and the rest of
// the file is not checked.
IdxArray read_idx(const std::string& path, int64_t max_items = -1);

}  // namespace frugal
