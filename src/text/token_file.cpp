#include "text/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace frugal {

namespace {

template <typename T>
void put(std::string& out, T v) {  // little-endian (the machines frugal runs on are)
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
T get(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

int64_t id_at(const unsigned char* ids, int width, int64_t i) {
  return width == 2 ? get<uint16_t>(ids + 2 * i) : get<uint32_t>(ids + 4 * i);
}

void read_exactly(int fd, void* out, size_t bytes, off_t offset, const std::string& path) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t r = pread(fd, static_cast<char*>(out) + done, bytes - done, offset + static_cast<off_t>(done));
    check(r > 0 || (r < 0 && errno == EINTR), "token file " + path + ": read failed (" + std::strerror(errno) + ")");
    if (r > 0) done += static_cast<size_t>(r);
  }
}

}  // namespace

void write_token_file(const std::string& path, std::span<const int32_t> ids, int64_t vocab_size) {
  check(vocab_size > 0 && vocab_size <= (int64_t{1} << 31), "token file: vocabulary size " + std::to_string(vocab_size));
  const uint32_t width = vocab_size <= 65536 ? 2 : 4;
  std::string header(kTokenFileMagic, sizeof kTokenFileMagic);
  put<uint32_t>(header, kTokenFileVersion);
  put<uint32_t>(header, width);
  put<uint64_t>(header, ids.size());
  put<uint64_t>(header, static_cast<uint64_t>(vocab_size));
  write_file_atomic(path, [&](const ByteSink& sink) {
    sink(header.data(), header.size());
    std::vector<unsigned char> block;
    for (size_t i = 0; i < ids.size(); i += 1 << 20) {
      const size_t n = std::min(ids.size() - i, size_t{1} << 20);
      block.resize(n * width);
      for (size_t k = 0; k < n; ++k) {
        const int32_t id = ids[i + k];
        if (id < 0 || id >= vocab_size)  // (not check(): its message would be built for every id)
          throw Error("token file " + path + ": id " + std::to_string(id) + " is outside the vocabulary of " +
                      std::to_string(vocab_size));
        const auto narrow = static_cast<uint16_t>(id);
        if (width == 2) std::memcpy(&block[2 * k], &narrow, 2);
        else std::memcpy(&block[4 * k], &id, 4);
      }
      sink(block.data(), block.size());
    }
  });
}

bool is_token_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[sizeof kTokenFileMagic] = {};
  const bool yes = pread(fd, magic, sizeof magic, 0) == static_cast<ssize_t>(sizeof magic) &&
                   std::memcmp(magic, kTokenFileMagic, sizeof magic) == 0;
  close(fd);
  return yes;
}

TokenFile::TokenFile(const std::string& path) : path_(path) {
  fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd_ >= 0, "cannot open token file " + path + ": " + std::strerror(errno));
  try {
    open_checked();
  } catch (...) {
    close(fd_);
    throw;
  }
}

void TokenFile::open_checked() {
  const std::string& path = path_;
  const std::string me = "token file " + path + ": ";
  struct stat st {};
  check(fstat(fd_, &st) == 0, me + "cannot stat (" + std::strerror(errno) + ")");
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  check(file_bytes >= kTokenFileHeaderBytes, me + "shorter than its 32-byte header");
  unsigned char h[kTokenFileHeaderBytes];
  read_exactly(fd_, h, sizeof h, 0, path);
  check(std::memcmp(h, kTokenFileMagic, sizeof kTokenFileMagic) == 0, me + "not a token file (bad magic)");
  check(get<uint32_t>(h + 8) == kTokenFileVersion, me + "version " + std::to_string(get<uint32_t>(h + 8)) + " (this frugal reads 1)");
  width_ = static_cast<int>(get<uint32_t>(h + 12));
  check(width_ == 2 || width_ == 4, me + "bytes per id " + std::to_string(width_) + " (must be 2 or 4)");
  const uint64_t count = get<uint64_t>(h + 16), vocab = get<uint64_t>(h + 24);
  // Ids are read as int32: a vocabulary past 2^31 would let ids through that copy() turns negative.
  check(vocab >= 1 && vocab <= (uint64_t{1} << 31) && (width_ == 4 || vocab <= 65536), me + "bad vocabulary size " + std::to_string(vocab));
  check(count <= (file_bytes - kTokenFileHeaderBytes) / static_cast<uint64_t>(width_) &&
            file_bytes == kTokenFileHeaderBytes + count * static_cast<uint64_t>(width_),
        me + std::to_string(file_bytes) + " bytes, but its header promises " + std::to_string(count) + " ids of " +
            std::to_string(width_) + " bytes (truncated or corrupt)");
  count_ = static_cast<int64_t>(count);
  vocab_size_ = static_cast<int64_t>(vocab);
  std::vector<unsigned char> block;
  for (int64_t i = 0; i < count_; i += 1 << 20) {  // every id below the vocabulary size
    const int64_t n = std::min<int64_t>(count_ - i, 1 << 20);
    block.resize(static_cast<size_t>(n * width_));
    read_exactly(fd_, block.data(), block.size(), static_cast<off_t>(kTokenFileHeaderBytes + i * width_), path);
    for (int64_t k = 0; k < n; ++k)
      if (id_at(block.data(), width_, k) >= vocab_size_)  // (not check(): its message would be built for every id)
        throw Error(me + "id " + std::to_string(id_at(block.data(), width_, k)) + " at position " +
                    std::to_string(i + k) + " is outside the vocabulary of " + std::to_string(vocab_size_));
  }
  mapped_bytes_ = static_cast<size_t>(file_bytes);
  void* p = mmap(nullptr, mapped_bytes_, PROT_READ, MAP_SHARED, fd_, 0);
  check(p != MAP_FAILED, me + "cannot map (" + std::strerror(errno) + ")");
  data_ = static_cast<const unsigned char*>(p);
  madvise(p, mapped_bytes_, MADV_RANDOM);  // windows are sampled at random: no read-ahead
}

TokenFile::~TokenFile() {
  if (data_) munmap(const_cast<unsigned char*>(data_), mapped_bytes_);
  if (fd_ >= 0) close(fd_);
}

void TokenFile::copy(int64_t start, int64_t n, int32_t* out) const {
  check(start >= 0 && n >= 0 && start + n <= count_, "token file " + path_ + ": window outside the file");
  const unsigned char* ids = data_ + kTokenFileHeaderBytes;
  for (int64_t k = 0; k < n; ++k) out[k] = static_cast<int32_t>(id_at(ids, width_, start + k));
  // The kernel maps more than the pages read (fault-around, large page-cache folios: measured about
  // 0.8 MiB per window), so the 2 MiB-aligned region around the window is released.
  constexpr uintptr_t kRegion = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(data_), end = begin + mapped_bytes_;
  const uintptr_t from = std::max(begin, reinterpret_cast<uintptr_t>(ids + start * width_) & ~(kRegion - 1));
  const uintptr_t to = std::min(end, (reinterpret_cast<uintptr_t>(ids + (start + n) * width_) + kRegion - 1) & ~(kRegion - 1));
  madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);  // both page-aligned: the mapping is
}

}  // namespace frugal
