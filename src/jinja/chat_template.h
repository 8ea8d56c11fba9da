#pragma once
// Hugging Face chat templates: a Jinja interpreter that renders them as transformers does
// (jinja2's sandbox with trim_blocks, lstrip_blocks, no trailing newline, loop controls; globals
// raise_exception, strftime_now, range, namespace, dict), checked byte for byte against Hugging
// Face's JavaScript renderer (npm @huggingface/jinja; docs/CHAT.md lists the subset and the
// differences). Rendering also says, for every output byte, which message's turn wrote it and which
// message's content it is a byte of: the loss mask of an assistant turn is found while rendering,
// never by searching the text.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::jinja {

struct Program;

struct Limits {  // hostile templates end with a one-line Error within these
  int64_t max_output_bytes = 64ll << 20;  // also the largest string, and 1/64 of it the longest list
  int64_t max_steps = 20'000'000;         // evaluation steps (nodes evaluated, loop iterations)
  int max_depth = 200;                    // parser nesting and macro/call recursion
};

struct Rendered {
  std::string text;
  // Per byte of `text`: k when the byte was written while the innermost for-loop iteration whose
  // item IS (object identity, not equality) the element messages[k] of the context's "messages"
  // list was running (so `set loop_messages = messages`, `messages[1:]` keep identity); else -1.
  std::vector<int32_t> turn;
  // Per byte: k when the byte is a byte of the string messages[k]["content"] (provenance carried
  // through +, ~, slicing, strip/lstrip/rstrip/trim, split, indexing a char, filters/methods that
  // keep substrings, string concatenation in set/namespace; bytes created by the template or by
  // transformations like upper/replace/tojson are -1).
  std::vector<int32_t> content;
};

class Template {
 public:
  // Parses `source`; `name` (a file path or "the model's chat template") starts every error:
  // "NAME:LINE: unsupported construct 'xyz'" style, one line, naming the construct and template line.
  static Template parse(std::string_view source, std::string name, Limits limits = {});
  // `context`: a JSON object of globals (messages, add_generation_prompt, bos_token, eos_token and
  // any extra kwargs such as enable_thinking). Errors (raise_exception, type errors, limits) are
  // frugal::Error naming the template and line. nlohmann::json keeps object keys sorted; pass an
  // ordered_json (as parsed from a JSON line) to keep them in the order written, as Hugging Face does.
  Rendered render(const nlohmann::json& context) const;
  Rendered render(const nlohmann::ordered_json& context) const;

  const std::string& name() const { return name_; }

 private:
  Template(std::shared_ptr<const Program> program, std::string name, Limits limits)
      : program_(std::move(program)), name_(std::move(name)), limits_(limits) {}
  std::shared_ptr<const Program> program_;  // immutable: copies share it
  std::string name_;
  Limits limits_;
};

}  // namespace frugal::jinja
