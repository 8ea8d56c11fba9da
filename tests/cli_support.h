#pragma once
// Running the frugal binary from tests as a user would, and checking its one-line errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace frugal::testing {

// The documented fixed overhead of a process beyond its ledger's bytes (README "Memory budget",
// docs/BENCHMARKS.md "Process overhead beyond the ledger"): code, libraries, thread stacks, OpenBLAS's
// and oneDNN's buffers. bench/process_overhead.sh measured at most 66 MiB (a 50,257-wide LM head).
constexpr int64_t kProcessOverheadBytes = int64_t{96} << 20;

struct CliResult {
  int status;  // exit status; 128 + signal when killed
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory for this test process: TMP/frugal_test_<pid>/<name>.
inline std::filesystem::path scratch(const std::string& name) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("frugal_test_" + std::to_string(getpid())) / name;
  std::filesystem::create_directories(dir);
  return dir;
}

// `env_settings` as env(1) takes them: "VAR=value", "-u VAR". Standard input: `stdin_path`.
inline CliResult run_frugal(const std::string& args, const std::string& env_settings = "",
                            const std::string& stdin_path = "/dev/null") {
  const std::filesystem::path dir = scratch("io");
  const std::string cmd = "env " + env_settings + " OMP_NUM_THREADS=1 " + FRUGAL_BINARY + " " + args + " > " +
                          (dir / "out").string() + " 2> " + (dir / "err").string() + " < " + stdin_path;
  const int raw = std::system(cmd.c_str());
  // The shell reports a child killed by a signal as exit status 128 + signal.
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), slurp(dir / "out"), slurp(dir / "err")};
}

// frugal with `input` piped to its standard input (`frugal chat`).
inline CliResult run_frugal_input(const std::string& args, const std::string& input) {
  const std::filesystem::path path = scratch("io") / "in";
  std::ofstream(path, std::ios::binary) << input;
  return run_frugal(args, "", path.string());
}

// A non-zero exit without a crash, and one non-empty line naming the problem.
inline void expect_one_line_error(const CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.status, 0);
  EXPECT_LT(r.status, 128) << "killed by a signal (crash): " << r.err;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  EXPECT_EQ(err.find('\n'), std::string::npos) << "more than one line: " << r.err;
  EXPECT_NE(err.find("error"), std::string::npos) << r.err;
  EXPECT_NE(err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
}

// An error after the run has started (its header lines are on stderr too): a non-zero exit without
// a crash, and a last line "frugal: error: ..." naming the problem.
inline void expect_error_after_start(const CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.status, 0);
  EXPECT_LT(r.status, 128) << "killed by a signal (crash): " << r.err;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  const std::string last = err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1);
  EXPECT_EQ(last.rfind("frugal: error", 0), 0u) << r.err;
  EXPECT_NE(last.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
}

}  // namespace frugal::testing
