#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace frugal {

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void fsync_parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  check(f != nullptr, "cannot write " + path + ": " + errno_text());
  auto fail = [&](const std::string& what) {
    const std::string why = errno_text();
    if (f) std::fclose(f);
    f = nullptr;
    std::remove(tmp.c_str());
    throw Error("cannot write " + path + ": " + what + why);
  };
  try {
    produce([&](const void* data, size_t size) {
      if (size > 0 && std::fwrite(data, 1, size, f) != size) fail("");
    });
  } catch (...) {
    if (f) std::fclose(f);
    f = nullptr;
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fflush(f) != 0) fail("");
  if (::fsync(::fileno(f)) != 0) fail("fsync: ");
  const int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) fail("");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename: ");
  fsync_parent_dir(path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(bytes.data(), bytes.size()); });
}

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  check(f != nullptr, "cannot open " + path + ": " + errno_text());
  std::string out;
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) out.append(chunk, n);
  const bool failed = std::ferror(f);
  const std::string why = errno_text();
  std::fclose(f);
  check(!failed, "cannot read " + path + ": " + why);
  return out;
}

}  // namespace frugal
