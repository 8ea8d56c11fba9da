// `frugal chat`: a conversation on the terminal, or on piped lines (tests, scripts). The
// conversation itself is the library's (run/chat_run.h); this reads lines and prints the replies.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "run/chat_run.h"

namespace frugal::cli {

namespace {

// Each line is a user message, except "/exit" (or the end of input) and "/reset" (a new
// conversation). Replies stream to stdout token by token, each ended by a newline; the "> " prompt
// and notes go to stderr, and only when a person is typing.
void run_chat(RunSpec& spec) {
  ChatSession session(spec);
  const bool terminal = isatty(STDIN_FILENO);
  if (terminal) std::fprintf(stderr, "frugal chat: /reset starts over, /exit (or Ctrl-D) ends\n");
  std::string line;
  while (true) {
    if (terminal) {
      std::fputs("> ", stderr);
      std::fflush(stderr);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "/exit") break;
    if (line == "/reset") {
      session.reset();
      if (terminal) std::fprintf(stderr, "(a new conversation)\n");
      continue;
    }
    if (line.empty()) continue;
    session.reply(line, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  register_run(app, Command::Chat, "talk with a chat model directory (its chat template; /reset, /exit)", run_chat);
}

}  // namespace frugal::cli
