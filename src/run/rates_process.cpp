#include "run/rates_process.h"

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threading.h"

extern char** environ;

namespace frugal {

namespace {

std::optional<RatesMeasurement>& measurement() {
  static std::optional<RatesMeasurement> m;
  return m;
}

// The child's output (stdout and stderr together) until it closes them.
std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) out.append(buffer, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  return out;
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

MachineRates measure_rates_in_child_process() {
  const std::string threads = std::to_string(num_threads());
  std::vector<std::string> args = {"frugal", "doctor", "--measure-rates", "--threads", threads};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  check(::pipe(pipe_fds) == 0, std::string("cannot measure this machine's rates: pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  std::fflush(nullptr);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    throw Error(std::string("cannot start a process to measure this machine's rates: ") + std::strerror(spawned));
  }
  const std::string output = read_all(pipe_fds[0]);
  ::close(pipe_fds[0]);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string line = last_line(output);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "measuring this machine's rates in a child process (frugal doctor --measure-rates) failed: " +
            (line.empty() ? std::string("no output") : line));
  MachineRates rates;
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && machine_rates_from_json(j, rates),
        "frugal doctor --measure-rates printed no rates: " + line);
  measurement() = RatesMeasurement{seconds, static_cast<int64_t>(usage.ru_maxrss) * 1024};
  return rates;
}

void report_rates_measurement() {
  static bool reported = false;
  if (reported || !measurement()) return;
  reported = true;
  std::fprintf(stderr, "measured this machine's rates for the cost model in a child process (%.1f s, peak RSS %.0f MiB)\n",
               measurement()->seconds, static_cast<double>(measurement()->peak_rss_bytes) / (1 << 20));
}

void measure_rates_in_child_processes() { set_rates_measurer(measure_rates_in_child_process); }

std::optional<RatesMeasurement> last_rates_measurement() { return measurement(); }

}  // namespace frugal
