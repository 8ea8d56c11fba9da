#include "train/chat_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "nn/half_storage.h"
#include "nn/lm_head.h"
#include "train/executor.h"

namespace frugal {

namespace {

constexpr int64_t kRowsPerChunk = 64;  // logits rows held at a time for the accuracy

// Rows of `logits` (rows, V) whose largest value is at the target (targets -100 skipped).
int64_t correct_rows(const Tensor& logits, const int32_t* targets, int64_t rows) {
  const int64_t V = logits.dim(-1);
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == kIgnoreIndex) continue;
    const float* row = logits.f32() + r * V;
    correct += (std::max_element(row, row + V) - row) == targets[r];
  }
  return correct;
}

// Sum over the rows with a target of logsumexp(row) - row[target].
double summed_cross_entropy(const Tensor& logits, const int32_t* targets, int64_t rows) {
  const int64_t V = logits.dim(-1);
  double sum = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == kIgnoreIndex) continue;
    const float* row = logits.f32() + r * V;
    const double max = *std::max_element(row, row + V);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(row[v]) - max);
    sum += max + std::log(z) - row[targets[r]];
  }
  return sum;
}

// One example: (summed loss, correct tokens) of its trained targets.
std::pair<double, int64_t> score(Model& model, const ChatSequence& e, const RunContext& rc) {
  const int64_t n = static_cast<int64_t>(e.ids.size()) - 1;
  Tensor inputs = Tensor::empty({1, n}, DType::I32, MemCategory::Activations);
  Tensor targets = Tensor::empty({1, n}, DType::I32, MemCategory::Activations);
  for (int64_t t = 0; t < n; ++t) {
    inputs.i32()[t] = e.ids[static_cast<size_t>(t)];
    targets.i32()[t] = e.mask[static_cast<size_t>(t + 1)] ? e.ids[static_cast<size_t>(t + 1)] : kIgnoreIndex;
  }
  TiedLmHead* head = model.lm_head();
  if (!head) {  // a model whose chain ends in logits: the loss from them, in double
    const Tensor logits = forward_only(model, inputs, rc);  // (1, n, V)
    return {summed_cross_entropy(logits, targets.i32(), n), correct_rows(logits, targets.i32(), n)};
  }
  Tensor h = inputs;
  for (const auto& block : model.blocks()) {
    Saved discard;
    h = forward_child(*block, h, discard, rc);
  }
  const double loss = head->loss(h, targets, 1.0, rc);  // normalizer 1: the sum
  const Tensor rows = h.view({n, h.dim(-1)});
  int64_t correct = 0;
  for (int64_t r0 = 0; r0 < n; r0 += kRowsPerChunk) {
    const int64_t r1 = std::min(n, r0 + kRowsPerChunk);
    correct += correct_rows(head->logits(rows.slice_rows(r0, r1)), targets.i32() + r0, r1 - r0);
  }
  return {loss, correct};
}

}  // namespace

EvalMetrics evaluate_examples(Model& model, const std::vector<ChatSequence>& examples, RunContext rc) {
  rc.training = false;
  rc.positions = nullptr;
  EvalMetrics m;
  double loss_sum = 0;
  int64_t correct = 0;
  for (const ChatSequence& e : examples) {
    const auto [loss, right] = score(model, e, rc);
    loss_sum += loss;
    correct += right;
    m.tokens += std::count(e.mask.begin() + 1, e.mask.end(), uint8_t{1});
  }
  check(m.tokens > 0, "evaluation: the held-out examples have no trained token");
  m.loss = loss_sum / static_cast<double>(m.tokens);
  m.perplexity = std::exp(m.loss);
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.tokens);
  return m;
}

}  // namespace frugal
