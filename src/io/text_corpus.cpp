#include "io/text_corpus.h"

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "core/error.h"
#include "io/atomic_file.h"

namespace frugal {

namespace fs = std::filesystem;

std::string load_text_file(const std::string& path) {
  check(fs::exists(path), "text file " + path + " not found");
  std::string text = read_file(path);
  check(!text.empty(), "text file " + path + " is empty");
  return text;
}

std::vector<std::string> list_fortune_files(const std::string& dir) {
  const std::string missing = "no fortune files in " + dir + " (install the Debian package fortunes)";
  std::error_code ec;
  check(fs::is_directory(dir, ec), missing);
  std::vector<std::string> files;
  try {
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".dat" || ext == ".u8") continue;
      if (!e.is_regular_file(ec)) continue;  // subdirectories, dangling links
      files.push_back(e.path().string());
    }
  } catch (const fs::filesystem_error& e) {
    throw Error("cannot list " + dir + ": " + e.code().message());
  }
  check(!files.empty(), missing);
  std::sort(files.begin(), files.end());
  return files;
}

std::string load_fortunes_corpus(const std::string& dir) { return fortunes_text(list_fortune_files(dir)); }

std::string fortunes_text(const std::vector<std::string>& paths) {
  std::string out;
  for (const std::string& path : paths) {
    const std::string text = read_file(path);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      std::string_view line(text.data() + pos, eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line != "%") out.append(line);
      out.push_back('\n');
      pos = eol + 1;
    }
  }
  return out;
}

}  // namespace frugal
