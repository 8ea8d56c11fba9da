#pragma once
// Whole-file reads and crash-safe writes. A write goes to "<path>.tmp.<pid>", is flushed and
// fsync'd, then renamed over <path>: readers (and a crash) see either the old file or the new one,
// never a half-written checkpoint.
#include <cstddef>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// Receives consecutive chunks of the file being written.
using ByteSink = std::function<void(const void* data, size_t size)>;

// A file written piece by piece (a log that grows during a run) and made visible under `path` only
// by commit(). Destroyed without commit() (an error, a crash), it leaves `path` as it was and
// removes the temporary file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // Error if the temporary file cannot be created
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  void commit();  // flush, fsync, rename over `path`, fsync the directory

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
};

// Streams the file through `produce` (which calls the sink as often as it likes), so large
// tensors need not be copied into one string first. If `produce` throws, the temporary file is
// removed, `path` is left untouched, and the exception propagates.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce);
void write_file_atomic(const std::string& path, const std::string& bytes);

// Makes a rename inside `path`'s directory durable: fsyncs that directory (best effort: a failure
// here is not worth failing the write).
void fsync_parent_dir(const std::string& path);

// The whole file. Error "cannot open <path>: <strerror>" if it cannot be opened or read.
std::string read_file(const std::string& path);
// The whole file parsed as JSON. Error "<path>: not valid JSON (...)" if it is not.
nlohmann::json read_json_file(const std::string& path);

}  // namespace frugal
