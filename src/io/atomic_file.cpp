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

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
  file_ = std::fopen(tmp_.c_str(), "wb");
  check(file_ != nullptr, "cannot write " + path_ + ": " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(tmp_.c_str());
}

void AtomicFileWriter::fail(const std::string& what) {
  const std::string why = errno_text();
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_.c_str());
  throw Error("cannot write " + path_ + ": " + what + why);
}

void AtomicFileWriter::write(const void* data, size_t size) {
  check(file_ != nullptr, "cannot write " + path_ + ": already committed");
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail("");
}

void AtomicFileWriter::commit() {
  check(file_ != nullptr, "cannot write " + path_ + ": already committed");
  if (std::fflush(file_) != 0) fail("");
  if (::fsync(::fileno(file_)) != 0) fail("fsync: ");
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) fail("");
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename: ");
  fsync_parent_dir(path_);
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce) {
  AtomicFileWriter writer(path);  // removes its temporary file if `produce` throws
  produce([&](const void* data, size_t size) { writer.write(data, size); });
  writer.commit();
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

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

}  // namespace frugal
