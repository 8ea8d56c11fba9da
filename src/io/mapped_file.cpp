#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace frugal {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> map(new MappedFile());
  map->size_ = static_cast<uint64_t>(st.st_size);
  if (map->size_ == 0) {
    ::close(fd);
    return map;
  }
  void* addr = ::mmap(nullptr, map->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  check(addr != MAP_FAILED, "cannot map " + path + ": " + std::strerror(map_errno));
  map->addr_ = addr;
  return map;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

void MappedFile::release(const uint8_t* begin, size_t n) const {
  // Without this, the pages of tensors already copied out stay in RSS until the file is closed:
  // loading GPT-2 small held its whole 475 MiB fp32 file beside the weights.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto from = reinterpret_cast<uintptr_t>(begin) & ~(page - 1);
  const auto to = reinterpret_cast<uintptr_t>(begin) + n;
  if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
}

}  // namespace frugal
