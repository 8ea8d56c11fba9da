#pragma once
// A run's chat data (--data FILE.jsonl): read (text/chat_records.h), rendered with the model's chat
// template, tokenized and masked (text/chat_examples.h), fitted to the context (train/chat_data.h),
// and split into training and held-out examples (--eval-data, --eval-fraction).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run/run_spec.h"
#include "text/chat_examples.h"
#include "train/chat_data.h"

namespace frugal {

struct ChatDataSet {
  ChatFormat format = ChatFormat::Auto;  // as detected or forced
  TrainOn train_on = TrainOn::Default;   // resolved
  std::vector<ChatSequence> train, eval;
  FitCounts train_counts, eval_counts;
  int64_t bad_skipped = 0;               // malformed lines skipped (--skip-bad-examples)
  // For the summary: format, train_on, packing, counts (examples, truncated, dropped, skipped, tokens).
  nlohmann::json describe() const;
};

// Every example of the spec's --data (and --eval-data or --eval-fraction) for a model of `context`
// positions with the spec's tokenizer. `print`: a line per file on stderr (format, counts).
ChatDataSet load_chat_data(const RunSpec& spec, int64_t context, bool print);

// `frugal grad --data FILE.jsonl`: every example of the file in one batch, in file order: packed rows
// of the context with --packing, else one example per sample (ragged).
// The context is the model's.
Batch whole_file_batch(const RunSpec& spec, const Model& model);

// The examples of one JSONL file tokenized and masked, nothing fitted to the context (`frugal tokenize
// --chat`): with the spec's tokenizer, template, --train-on and --skip-bad-examples.
std::vector<TokenizedExample> tokenize_chat_file(const RunSpec& spec, const std::string& path, ChatFormat& format);

}  // namespace frugal
