// libFuzzer target: arbitrary bytes as a chat template and its context. The input is the template's
// bytes, then a NUL, then a JSON object for the context; without a NUL (or when the JSON does not
// parse) a fixed chat is the context. Parsing and rendering must end in output or a frugal::Error
// (a JSON context that nlohmann refuses ends in its exception), never a crash, a sanitizer report,
// a leak or a hang.   scripts/fuzz.sh runs it.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "jinja/chat_template.h"

namespace {

const nlohmann::ordered_json& fixed_context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 😀"},
                 {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello", "tool_calls": [
                   {"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]},
                 {"role": "tool", "content": "{\"ok\": true}"}, {"role": "user", "content": "  bye \n"}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  // Smaller limits than the defaults keep each input fast; tests/test_jinja.cpp covers the defaults.
  frugal::jinja::Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 1'000'000;
  try {
    const auto tpl = frugal::jinja::Template::parse(source, "fuzz.jinja", limits);
    nlohmann::ordered_json ctx = fixed_context();
    if (nul != std::string_view::npos) {
      nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(input.substr(nul + 1), nullptr, false);
      if (parsed.is_object()) ctx = std::move(parsed);
    }
    const frugal::jinja::Rendered r = tpl.render(ctx);
    if (r.turn.size() != r.text.size() || r.content.size() != r.text.size()) __builtin_trap();
  } catch (const frugal::Error&) {
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
