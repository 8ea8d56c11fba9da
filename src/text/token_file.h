#pragma once
// Token files (.tok): the ids of a tokenised corpus, read by memory-mapping, never copied whole.
//
// Layout (little-endian), 32-byte header then the ids:
//   offset  0: 8 bytes  magic "FRUGTOK\0"
//   offset  8: uint32   version (1)
//   offset 12: uint32   bytes per id: 2 (uint16, vocabularies up to 65,536) or 4 (uint32)
//   offset 16: uint64   number of ids
//   offset 24: uint64   vocabulary size (every id is below it)
//   offset 32: the ids
#include <cstdint>
#include <span>
#include <string>

namespace frugal {

inline constexpr char kTokenFileMagic[8] = {'F', 'R', 'U', 'G', 'T', 'O', 'K', '\0'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileHeaderBytes = 32;

// Writes `ids` atomically; uint16 when the vocabulary fits. Error for an id outside the vocabulary.
void write_token_file(const std::string& path, std::span<const int32_t> ids, int64_t vocab_size);

// True when the file starts with the token-file magic.
bool is_token_file(const std::string& path);

// A token file mapped read-only. Opening checks the header, the exact size and every id (read in
// blocks with pread, so the check does not leave the file's pages in the process's RSS).
class TokenFile {
 public:
  explicit TokenFile(const std::string& path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  int64_t size() const { return count_; }
  int64_t vocab_size() const { return vocab_size_; }
  int bytes_per_id() const { return width_; }
  const std::string& path() const { return path_; }
  // Copies ids [start, start + n) into out, then tells the kernel it may drop those pages from this
  // process (they stay in the page cache): a long run's RSS does not grow with the corpus.
  void copy(int64_t start, int64_t n, int32_t* out) const;

 private:
  void open_checked();  // header, size and ids checked, then the mapping
  std::string path_;
  int fd_ = -1;
  const unsigned char* data_ = nullptr;  // the whole file, mapped
  size_t mapped_bytes_ = 0;
  int64_t count_ = 0, vocab_size_ = 0;
  int width_ = 2;
};

}  // namespace frugal
