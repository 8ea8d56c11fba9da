#include "text/chat_examples.h"

#include <algorithm>

#include "core/error.h"
#include "text/hf_tokenizer.h"
#include "text/nfc.h"

namespace frugal {

namespace {

// Bytes [begin, end) of the rendered text that the loss trains on.
struct Span {
  size_t begin, end;
};

// The trained bytes of assistant message k: from the end of the generation prompt that starts its
// turn through the first end-of-turn token after its content, all found through the interpreter's
// per-byte turn and content records. `fail` raises the example's error.
template <typename Fail>
Span assistant_span(const jinja::Rendered& r, int32_t k, const std::string& generation_prompt,
                    const std::vector<std::string>& end_of_turn, const Fail& fail) {
  const auto first = std::find(r.turn.begin(), r.turn.end(), k);
  if (first == r.turn.end()) fail("the chat template renders nothing for assistant message " + std::to_string(k));
  const size_t a = static_cast<size_t>(first - r.turn.begin());
  const size_t b = r.turn.size() - static_cast<size_t>(std::find(r.turn.rbegin(), r.turn.rend(), k) - r.turn.rbegin());
  // The turn's header, as far as it repeats the generation prompt (never into the message's content).
  size_t matched = 0;
  while (a + matched < b && matched < generation_prompt.size() && r.content[a + matched] < 0 &&
         r.text[a + matched] == generation_prompt[matched])
    ++matched;
  if (matched == 0)
    fail("assistant message " + std::to_string(k) + "'s turn does not start with the template's generation prompt " +
         nlohmann::json(generation_prompt).dump() + ": cannot tell the prompt from the answer");
  size_t from = a + matched;
  for (size_t i = from; i < b; ++i)
    if (r.content[i] == k) from = i + 1;  // after the message's last content byte
  size_t best = std::string::npos, best_len = 0;
  for (const std::string& token : end_of_turn) {
    for (size_t at = r.text.find(token, from); at != std::string::npos && at + token.size() <= b;
         at = r.text.find(token, at + 1)) {
      const bool written_by_template = std::all_of(r.content.begin() + static_cast<std::ptrdiff_t>(at),
                                                   r.content.begin() + static_cast<std::ptrdiff_t>(at + token.size()),
                                                   [](int32_t c) { return c < 0; });
      if (!written_by_template) continue;
      if (at < best) best = at, best_len = token.size();
      break;
    }
  }
  if (best == std::string::npos)
    fail("the chat template writes no end-of-turn token (" + nlohmann::json(end_of_turn).dump() +
         ") after assistant message " + std::to_string(k) + ": the model would never learn to stop");
  return {a + matched, best + best_len};
}

// What add_generation_prompt appends to the conversation's text.
template <typename Fail>
std::string generation_prompt(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                              const std::string& without, const Fail& fail) {
  const std::string with = rendering.chat_template->render(chat_context(rendering, messages, true)).text;
  if (with.size() <= without.size() || with.compare(0, without.size(), without) != 0)
    fail("the chat template's add_generation_prompt does not append a generation prompt to the conversation");
  return with.substr(without.size());
}

// The rendered text and its trained spans (chat template).
template <typename Fail>
std::pair<std::string, std::vector<Span>> render_with_spans(const ChatExample& e, TrainOn on,
                                                            const ChatRendering& rendering, const Fail& fail) {
  jinja::Rendered r = rendering.chat_template->render(chat_context(rendering, e.messages, false));
  std::vector<Span> spans;
  if (on == TrainOn::All) {
    spans.push_back({0, r.text.size()});
    return {std::move(r.text), spans};
  }
  const std::string prompt = generation_prompt(rendering, e.messages, r.text, fail);
  int32_t last = -1;
  for (size_t k = 0; k < e.messages.size(); ++k)
    if (e.messages[k].role == "assistant") last = static_cast<int32_t>(k);
  if (last < 0) fail("no assistant message to train on (--train-on " + std::string(train_on_name(on)) + ")");
  for (int32_t k = on == TrainOn::Completion ? last : 0; k <= last; ++k)
    if (e.messages[static_cast<size_t>(k)].role == "assistant")
      spans.push_back(assistant_span(r, k, prompt, rendering.end_of_turn, fail));
  return {std::move(r.text), spans};
}

// Without a template: [system "\n\n"] prompt completion EOS, the completion and EOS trained.
template <typename Fail>
std::pair<std::string, std::vector<Span>> concatenate(const ChatExample& e, TrainOn on, const ChatRendering& rendering,
                                                      const Fail& fail) {
  const auto& m = e.messages;
  const bool system = !m.empty() && m[0].role == "system";
  if (m.size() != (system ? 3u : 2u) || m[system ? 1 : 0].role != "user" || m.back().role != "assistant")
    fail("the model has no chat template, so only prompt-completion shaped examples (user, then assistant) can be "
         "concatenated: pass --chat-template FILE");
  std::string text = system ? m[0].content + "\n\n" : std::string();
  text += m[system ? 1 : 0].content;
  const size_t answer = text.size();
  text += m.back().content + rendering.eos_token;
  return {text, {{on == TrainOn::All ? 0 : answer, text.size()}}};
}

// The byte offset in the tokenizer's normalized text of offset `at` in `text`.
size_t normalized_offset(const std::string& text, size_t at, bool nfc) {
  std::string out;
  if (!nfc || !nfc_normalize(std::string_view(text).substr(0, at), out)) return at;
  return out.size();
}

// mask[i] = 1 when token i's bytes overlap a span (token 0 is never a target).
template <typename Fail>
std::vector<uint8_t> token_mask(const std::string& text, const std::vector<int32_t>& ids, std::vector<Span> spans,
                                TextTokenizer& tokenizer, const Fail& fail) {
  const auto* hf = dynamic_cast<const HfTokenizer*>(&tokenizer);
  const bool nfc = hf && hf->normalizes_nfc();
  for (Span& s : spans) s = {normalized_offset(text, s.begin, nfc), normalized_offset(text, s.end, nfc)};
  std::vector<uint8_t> mask(ids.size(), 0);
  size_t offset = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t end = offset + tokenizer.token_bytes(ids[i]).size();
    for (const Span& s : spans)
      if (offset < s.end && end > s.begin) mask[i] = i > 0;
    offset = end;
  }
  std::string normalized;
  if (!nfc || !nfc_normalize(text, normalized)) normalized = text;
  if (offset != normalized.size()) fail("the tokens do not spell the rendered text: cannot place the trained spans");
  return mask;
}

}  // namespace

TrainOn parse_train_on(const std::string& name) {
  if (name.empty()) return TrainOn::Default;
  if (name == "assistant") return TrainOn::Assistant;
  if (name == "completion") return TrainOn::Completion;
  if (name == "all") return TrainOn::All;
  throw Error("--train-on: '" + name + "' is not one of assistant, completion, all");
}

const char* train_on_name(TrainOn on) {
  switch (on) {
    case TrainOn::Assistant: return "assistant";
    case TrainOn::Completion: return "completion";
    case TrainOn::All: return "all";
    default: return "default";
  }
}

TrainOn resolve_train_on(TrainOn on, ChatFormat format) {
  if (on != TrainOn::Default) return on;
  if (format == ChatFormat::Text) return TrainOn::All;
  if (format == ChatFormat::PromptCompletion || format == ChatFormat::Alpaca) return TrainOn::Completion;
  return TrainOn::Assistant;
}

int64_t TokenizedExample::trained() const { return std::count(mask.begin(), mask.end(), uint8_t{1}); }

TokenizedExample tokenize_example(const ChatExample& example, ChatFormat format, TrainOn on,
                                  const ChatRendering& rendering, TextTokenizer& tokenizer, const std::string& source) {
  auto fail = [&](const std::string& why) { throw Error(source + ":" + std::to_string(example.line) + ": " + why); };
  TokenizedExample out;
  out.line = example.line;
  std::vector<Span> spans;
  if (format == ChatFormat::Text) {
    out.text = example.text + rendering.eos_token;
    spans.push_back({0, out.text.size()});
  } else {
    std::pair<std::string, std::vector<Span>> rendered;
    try {
      rendered = rendering.chat_template ? render_with_spans(example, on, rendering, fail)
                                         : concatenate(example, on, rendering, fail);
    } catch (const Error& e) {  // the template's own errors (raise_exception, limits) name the example too
      const std::string where = source + ":" + std::to_string(example.line) + ": ";
      if (std::string(e.what()).rfind(where, 0) == 0) throw;
      fail(std::string("the chat template: ") + e.what());
    }
    out.text = std::move(rendered.first);
    spans = std::move(rendered.second);
  }
  tokenizer.encode_append(out.text, out.ids);
  out.mask = token_mask(out.text, out.ids, spans, tokenizer, fail);
  return out;
}

}  // namespace frugal
