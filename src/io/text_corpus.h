#pragma once
// Byte-level text corpora for language-model training: the text is used as raw bytes (vocab 256).
#include <string>
#include <vector>

namespace frugal {

inline constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

// The whole file. Error if it is missing, unreadable or empty.
std::string load_text_file(const std::string& path);

// The plain-text fortune files of `dir`, sorted by name for determinism: regular files only,
// skipping the strfile indexes (*.dat) and UTF-8 duplicates (*.u8), and subdirectories (such as
// the offensive "off/" set). Error naming the Debian package `fortunes` if there are none.
std::vector<std::string> list_fortune_files(const std::string& dir = kFortunesDir);

// Concatenates those files, turning each "%" separator line into a blank line so fortunes are
// separated as paragraphs, and making sure each file ends with a newline.
std::string load_fortunes_corpus(const std::string& dir = kFortunesDir);

// The same for a chosen list of fortune files (e.g. all but a held-out one).
std::string fortunes_text(const std::vector<std::string>& paths);

}  // namespace frugal
