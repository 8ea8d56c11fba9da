#pragma once
// A whole file mapped read-only (private): how the weight-file readers (safetensors, GGUF) see their
// bytes. The mapping is page cache, not training memory; a tensor copied out of it has its pages
// dropped from the process again (release), so loading a model never holds its file beside it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace frugal {

class MappedFile {
 public:
  // Error "cannot open/map PATH: why" or "PATH: not a regular file". An empty file maps nothing
  // (mmap refuses a length of 0): size() 0, bytes() null; the reader refuses it as too short.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* bytes() const { return static_cast<const uint8_t*>(addr_); }
  uint64_t size() const { return size_; }
  // Drops the pages of [begin, begin + n) from the process's RSS (read again from the file if touched).
  void release(const uint8_t* begin, size_t n) const;

 private:
  MappedFile() = default;
  void* addr_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace frugal
