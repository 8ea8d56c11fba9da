#include "run/chat_data_run.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/rng.h"
#include "models/causal_lm.h"
#include "run/model_builder.h"
#include "text/tokenizer.h"

namespace frugal {

namespace {

constexpr uint64_t kEvalSplitStream = 0xE5A1;

struct FileExamples {
  ChatFormat format;
  std::vector<TokenizedExample> examples;
  int64_t bad_skipped = 0;
};

TextTokenizer& chat_tokenizer(const RunSpec& spec) {
  TextTokenizer* tokenizer = model_tokenizer(spec.model);
  check(tokenizer != nullptr, "chat data needs the model's tokenizer: --model DIR with tokenizer files, or --tokenizer");
  return *tokenizer;
}

// A file's examples read, rendered, tokenized and masked; with --skip-bad-examples the lines the reader
// or the template refuse are counted instead. `keep_text`: the rendered texts too (`frugal tokenize`).
FileExamples read_file_examples(const RunSpec& spec, const std::string& path, bool keep_text) {
  const ChatSpec& c = spec.chat;
  const TrainOn asked = parse_train_on(c.train_on);
  ChatReadOptions read;
  read.format = parse_chat_format(c.data_format);
  read.skip_bad = c.skip_bad;
  read.require_assistant = asked == TrainOn::Assistant || asked == TrainOn::Completion;
  ChatRecords records = read_chat_records(path, read);
  TextTokenizer& tokenizer = chat_tokenizer(spec);
  const ChatRendering rendering = load_chat_rendering(tokenizer_dir(spec.model), c.chat_template, c.template_kwargs, tokenizer);
  const TrainOn on = resolve_train_on(asked, records.format);
  FileExamples out{records.format, {}, records.bad_skipped};
  for (const ChatExample& e : records.examples) {
    try {
      out.examples.push_back(tokenize_example(e, records.format, on, rendering, tokenizer, path));
      if (!keep_text) out.examples.back().text.clear();
    } catch (const Error&) {
      if (!c.skip_bad) throw;
      ++out.bad_skipped;
    }
  }
  return out;
}

void print_counts(const std::string& what, const std::string& path, const FitCounts& n, int64_t bad) {
  std::fprintf(stderr, "%s %s: %lld examples (%lld tokens, %lld trained), %lld truncated, %lld too long dropped, "
               "%lld without trained tokens skipped, %lld malformed skipped\n", what.c_str(), path.c_str(),
               static_cast<long long>(n.examples), static_cast<long long>(n.tokens), static_cast<long long>(n.trained_tokens),
               static_cast<long long>(n.truncated), static_cast<long long>(n.dropped_too_long),
               static_cast<long long>(n.skipped_untrained), static_cast<long long>(bad));
}

nlohmann::json counts_json(const FitCounts& n) {
  return {{"examples", n.examples}, {"tokens", n.tokens}, {"trained_tokens", n.trained_tokens},
          {"truncated", n.truncated}, {"dropped_too_long", n.dropped_too_long},
          {"skipped_without_trained_tokens", n.skipped_untrained}};
}

}  // namespace

nlohmann::json ChatDataSet::describe() const {
  nlohmann::json j{{"format", chat_format_name(format)}, {"train_on", train_on_name(train_on)},
                   {"train", counts_json(train_counts)}, {"malformed_skipped", bad_skipped}};
  if (!eval.empty()) j["eval"] = counts_json(eval_counts);
  return j;
}

ChatDataSet load_chat_data(const RunSpec& spec, int64_t context, bool print) {
  const ChatSpec& c = spec.chat;
  const Truncate truncate = parse_truncate(c.truncate);
  FileExamples train = read_file_examples(spec, spec.data, /*keep_text=*/false);
  ChatDataSet set;
  set.format = train.format;
  set.train_on = resolve_train_on(parse_train_on(c.train_on), train.format);
  set.bad_skipped = train.bad_skipped;
  std::vector<TokenizedExample> held;
  if (c.eval_fraction > 0) {  // a fixed share of the examples by (seed, index): the same split on --resume
    std::vector<TokenizedExample> kept;
    for (size_t i = 0; i < train.examples.size(); ++i)
      (rng_uniform(spec.options.seed, kEvalSplitStream, i) < c.eval_fraction ? held : kept)
          .push_back(std::move(train.examples[i]));
    train.examples = std::move(kept);
    check(!held.empty(), "--eval-fraction " + std::to_string(c.eval_fraction) + " holds out no example of " +
                             std::to_string(train.examples.size()) + ": pass a larger fraction");
  } else if (!c.eval_data.empty()) {
    FileExamples eval = read_file_examples(spec, c.eval_data, /*keep_text=*/false);
    held = std::move(eval.examples);
    set.bad_skipped += eval.bad_skipped;
  }
  set.train = fit_examples(std::move(train.examples), context, truncate, set.train_counts);
  if (!held.empty()) set.eval = fit_examples(std::move(held), context, truncate, set.eval_counts);
  if (print) {
    std::fprintf(stderr, "chat data: %s format (%s), training on %s tokens, %s\n", chat_format_name(set.format),
                 c.data_format == "auto" ? "detected" : "--data-format", train_on_name(set.train_on),
                 c.packing ? "packed into rows of the context" : "one example per sample");
    print_counts("  train", spec.data, set.train_counts, train.bad_skipped);
    if (!set.eval.empty())
      print_counts("  eval ", c.eval_data.empty() ? "(held out of --data)" : c.eval_data, set.eval_counts, 0);
  }
  check(!set.train.empty(), spec.data + ": no example left to train on (see the counts above)");
  check(held.empty() || !set.eval.empty(), "evaluation: no held-out example fits the context");
  return set;
}

Batch whole_file_batch(const RunSpec& spec, const Model& model) {
  const CausalLm* lm = as_causal_lm(model);
  check(lm != nullptr, "chat data needs a language model, not " + model.arch());
  const int64_t context = lm->context();
  ChatDataSet set = load_chat_data(spec, context, /*print=*/true);
  ChatBatches batches(std::move(set.train), context, spec.chat.packing, 0, spec.data, /*shuffle=*/false);
  return batches.batch(0, batches.samples_in_epoch(0));
}

std::vector<TokenizedExample> tokenize_chat_file(const RunSpec& spec, const std::string& path, ChatFormat& format) {
  FileExamples file = read_file_examples(spec, path, /*keep_text=*/true);
  format = file.format;
  return std::move(file.examples);
}

}  // namespace frugal
