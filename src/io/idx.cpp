#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace frugal {

namespace {

// Owns a gzFile; reads exactly as many bytes as asked unless the file ends or is corrupt.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    f_ = gzopen(path.c_str(), "rb");
    check(f_ != nullptr, "cannot open " + path + ": " + std::strerror(errno ? errno : ENOMEM));
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Bytes actually read; throws on a decompression or I/O error (a cut-off gzip stream included).
  size_t read(void* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(f_, static_cast<char*>(dst) + got, chunk);
      if (r < 0 || (r == 0 && !gzeof(f_))) fail();
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    int err = Z_OK;
    gzerror(f_, &err);
    if (err != Z_OK) fail();  // e.g. Z_BUF_ERROR: compressed stream ended early
    return got;
  }

 private:
  [[noreturn]] void fail() {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    const std::string why = err == Z_ERRNO ? std::strerror(errno) : (msg ? msg : "unknown error");
    throw Error("cannot read " + path_ + ": " + why + (err == Z_ERRNO ? "" : " (truncated or corrupt?)"));
  }
  std::string path_;
  gzFile f_;
};

}  // namespace

IdxArray read_idx(const std::string& path, int64_t max_items) {
  GzReader in(path);
  uint8_t magic[4];
  check(in.read(magic, 4) == 4, path + ": not an IDX file (shorter than its 4-byte magic)");
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%02X%02X%02X%02X", magic[0], magic[1], magic[2], magic[3]);
  check(magic[0] == 0 && magic[1] == 0 && magic[3] >= 1 && magic[3] <= 4,
        path + ": not an IDX file (magic " + hex + ")");
  check(magic[2] == 0x08, path + ": IDX magic " + hex + " has an unsupported element type (only unsigned bytes, 0x08)");

  IdxArray out;
  int64_t total = 1;
  for (int i = 0; i < magic[3]; ++i) {
    uint8_t b[4];
    check(in.read(b, 4) == 4, path + ": IDX header is truncated");
    const int64_t d = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    check(!__builtin_mul_overflow(total, d, &total), path + ": IDX dimensions overflow");
    out.dims.push_back(d);
  }
  const int64_t item = out.dims[0] ? total / out.dims[0] : 0;
  const bool partial = max_items >= 0 && max_items < out.dims[0];
  if (partial) out.dims[0] = max_items;
  const int64_t want = partial ? max_items * item : total;

  // Grow as data arrives rather than trusting a (possibly corrupt) header with a huge allocation.
  size_t got = 0;
  while (got < static_cast<size_t>(want)) {
    const size_t step = std::min<size_t>(static_cast<size_t>(want) - got, size_t{64} << 20);
    out.data.resize(got + step);
    const size_t r = in.read(out.data.data() + got, step);
    got += r;
    if (r < step) break;
  }
  check(got == static_cast<size_t>(want), path + ": IDX payload is truncated (expected " + std::to_string(want) +
                                              " bytes, found " + std::to_string(got) + ")");
  if (!partial) {
    uint8_t extra;
    check(in.read(&extra, 1) == 0, path + ": IDX file is longer than its dimensions say");
  }
  return out;
}

}  // namespace frugal
