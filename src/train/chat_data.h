#pragma once
// Instruction / chat examples as training batches (issue 34). Each example is a token sequence with a
// mask of the tokens the loss trains on (text/chat_examples.h); as a sample it gives inputs ids[0..n-2]
// and targets ids[1..n-1], a target ignored (-100) where its token is not trained.
//   packing:  each sample is a row of --ctx tokens filled with whole examples in order (a new row when
//             the next one does not fit), the rest of the row padding that nothing attends to or trains
//             on; positions restart at every example and attention never crosses one (Batch::positions).
//   no packing: each sample is one example at its own length: a micro-batch's examples lie one after
//             another in a single (1, N) row without padding (a ragged batch, Batch::example_starts).
// Examples are shuffled per epoch by (seed, epoch): the batch of step s is a pure function of
// (seed, s), as for every DataSource.
#include <cstdint>
#include <string>
#include <vector>

#include "train/data.h"

namespace frugal {

struct TokenizedExample;

// --truncate for examples longer than the context: keep the first or the last --ctx + 1 tokens, or drop.
enum class Truncate { Right, Left, Drop };
Truncate parse_truncate(const std::string& name);  // "right", "left", "drop"

// One example fitted to the context: its tokens and their trained flags.
struct ChatSequence {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // mask[i] = 1: token i is a target
  int64_t line = 0;           // of its JSONL file
};

// What fitting examples to the context did (the summary reports it).
struct FitCounts {
  int64_t examples = 0;           // kept
  int64_t truncated = 0;          // longer than --ctx + 1 tokens, cut
  int64_t dropped_too_long = 0;   // longer, dropped (--truncate drop)
  int64_t skipped_untrained = 0;  // no trained token left (after truncation, or none to begin with)
  int64_t tokens = 0, trained_tokens = 0;  // of the kept examples
};

// Fits tokenized examples to `context` target positions (sequences of at most context + 1 tokens).
std::vector<ChatSequence> fit_examples(std::vector<TokenizedExample> examples, int64_t context, Truncate truncate,
                                       FitCounts& counts);

class ChatBatches : public DataSource {
 public:
  // shuffle false: every epoch in the examples' own order (`frugal grad` over a whole file).
  ChatBatches(std::vector<ChatSequence> examples, int64_t context, bool packing, uint64_t seed,
              std::string description, bool shuffle = true);
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return description_; }
  // Samples in one epoch: examples, or packed rows (their number depends on the epoch's order).
  int64_t samples_in_epoch(int64_t epoch);
  // Of the examples that filled the rows of epoch 0: the share of target positions that are padding.
  double padding_fraction();

 private:
  const std::vector<int64_t>& order(int64_t epoch);                       // examples, shuffled
  const std::vector<std::vector<int64_t>>& rows(int64_t epoch);           // packed rows of example indices
  std::pair<int64_t, int64_t> locate(int64_t sample);                     // (epoch, index within it)
  Batch ragged(int64_t step, int64_t batch_size);
  Batch packed(int64_t step, int64_t batch_size);

  std::vector<ChatSequence> examples_;
  int64_t context_;
  bool packing_;
  uint64_t seed_;
  std::string description_;
  bool shuffle_;
  int64_t order_epoch_ = -1, rows_epoch_ = -1;
  std::vector<int64_t> order_;
  std::vector<std::vector<int64_t>> rows_;
  std::vector<int64_t> epoch_samples_;  // samples of epochs 0, 1, ... (packing: computed as needed)
};

// Batches of examples in the shapes ChatBatches makes, with nothing in them: the planner measures
// these (packing: (B, ctx) rows; no packing: the longest ragged micro-batch, every example ctx long).
class ChatBatchShapes : public DataSource {
 public:
  ChatBatchShapes(int64_t context, bool packing) : context_(context), packing_(packing) {}
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return "chat example shapes"; }

 private:
  int64_t context_;
  bool packing_;
};

}  // namespace frugal
