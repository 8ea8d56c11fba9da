#pragma once
// Held-out chat examples scored while training (issue 34): the loss over their trained tokens (the
// same masking as training), its perplexity, and how often the most likely token is the target.
#include <cstdint>
#include <vector>

#include "models/model.h"
#include "train/chat_data.h"

namespace frugal {

struct EvalMetrics {
  double loss = 0;        // mean cross-entropy over the trained tokens
  double perplexity = 0;  // exp(loss)
  double accuracy = 0;    // share of trained tokens whose argmax logit is the target
  int64_t tokens = 0;     // trained tokens scored
};

// Each example in its own forward pass (no gradients, no packing: nothing to mask), with `rc`'s
// precision. The LM head's logits are taken a chunk of rows at a time, never (T, V) at once.
EvalMetrics evaluate_examples(Model& model, const std::vector<ChatSequence>& examples, RunContext rc);

}  // namespace frugal
