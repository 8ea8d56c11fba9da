#include "train/chat_data.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cross_entropy.h"
#include "text/chat_examples.h"

namespace frugal {

namespace {

constexpr uint64_t kChatStream = 0xC4A7;  // the shuffles' stream, apart from other data sources'

// Sequence `e` as a sample's slots [at, at + n - 1) of (inputs, targets, positions) row pointers.
void put_example(const ChatSequence& e, int32_t* inputs, int32_t* targets, int32_t* positions) {
  const int64_t slots = static_cast<int64_t>(e.ids.size()) - 1;
  for (int64_t t = 0; t < slots; ++t) {
    inputs[t] = e.ids[static_cast<size_t>(t)];
    targets[t] = e.mask[static_cast<size_t>(t + 1)] ? e.ids[static_cast<size_t>(t + 1)] : kIgnoreIndex;
    positions[t] = static_cast<int32_t>(t);
  }
}

int64_t slots(const ChatSequence& e) { return static_cast<int64_t>(e.ids.size()) - 1; }

}  // namespace

Truncate parse_truncate(const std::string& name) {
  if (name == "right") return Truncate::Right;
  if (name == "left") return Truncate::Left;
  if (name == "drop") return Truncate::Drop;
  throw Error("--truncate: '" + name + "' is not one of right, left, drop");
}

std::vector<ChatSequence> fit_examples(std::vector<TokenizedExample> examples, int64_t context, Truncate truncate,
                                       FitCounts& counts) {
  std::vector<ChatSequence> out;
  const size_t keep = static_cast<size_t>(context + 1);
  for (TokenizedExample& e : examples) {
    ChatSequence s{std::move(e.ids), std::move(e.mask), e.line};
    if (s.ids.size() > keep) {
      if (truncate == Truncate::Drop) {
        ++counts.dropped_too_long;
        continue;
      }
      ++counts.truncated;
      const size_t cut = s.ids.size() - keep;
      if (truncate == Truncate::Right) {
        s.ids.resize(keep), s.mask.resize(keep);
      } else {  // the first kept token becomes a context-only token: it has no prediction before it
        s.ids.erase(s.ids.begin(), s.ids.begin() + static_cast<std::ptrdiff_t>(cut));
        s.mask.erase(s.mask.begin(), s.mask.begin() + static_cast<std::ptrdiff_t>(cut));
        s.mask[0] = 0;
      }
    }
    const int64_t trained = std::count(s.mask.begin() + (s.mask.empty() ? 0 : 1), s.mask.end(), uint8_t{1});
    if (s.ids.size() < 2 || trained == 0) {
      ++counts.skipped_untrained;
      continue;
    }
    counts.tokens += static_cast<int64_t>(s.ids.size());
    counts.trained_tokens += trained;
    out.push_back(std::move(s));
  }
  counts.examples = static_cast<int64_t>(out.size());
  return out;
}

ChatBatches::ChatBatches(std::vector<ChatSequence> examples, int64_t context, bool packing, uint64_t seed,
                         std::string description, bool shuffle)
    : examples_(std::move(examples)), context_(context), packing_(packing), seed_(seed),
      description_(std::move(description)), shuffle_(shuffle) {
  check(!examples_.empty(), "chat data: no example left to train on (see the counts above)");
  for (const ChatSequence& e : examples_)
    check(slots(e) >= 1 && slots(e) <= context_, "chat data: an example does not fit the context");
}

const std::vector<int64_t>& ChatBatches::order(int64_t epoch) {
  if (epoch != order_epoch_) {
    const int64_t n = static_cast<int64_t>(examples_.size());
    order_.resize(static_cast<size_t>(n));
    std::iota(order_.begin(), order_.end(), 0);
    for (int64_t i = n - 1; shuffle_ && i > 0; --i) {  // Fisher-Yates with counter-based draws
      const uint64_t j = philox4x32(seed_, rng_stream(kChatStream, 1, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(i))[0] %
                         static_cast<uint64_t>(i + 1);
      std::swap(order_[static_cast<size_t>(i)], order_[j]);
    }
    order_epoch_ = epoch;
  }
  return order_;
}

const std::vector<std::vector<int64_t>>& ChatBatches::rows(int64_t epoch) {
  if (epoch != rows_epoch_) {
    rows_.clear();
    int64_t used = context_;  // forces a first row
    for (int64_t e : order(epoch)) {
      const int64_t n = slots(examples_[static_cast<size_t>(e)]);
      if (used + n > context_) rows_.emplace_back(), used = 0;
      rows_.back().push_back(e);
      used += n;
    }
    rows_epoch_ = epoch;
  }
  return rows_;
}

int64_t ChatBatches::samples_in_epoch(int64_t epoch) {
  if (!packing_) return static_cast<int64_t>(examples_.size());
  while (static_cast<int64_t>(epoch_samples_.size()) <= epoch)
    epoch_samples_.push_back(static_cast<int64_t>(rows(static_cast<int64_t>(epoch_samples_.size())).size()));
  return epoch_samples_[static_cast<size_t>(epoch)];
}

std::pair<int64_t, int64_t> ChatBatches::locate(int64_t sample) {
  int64_t epoch = 0;
  if (!packing_) return {sample / samples_in_epoch(0), sample % samples_in_epoch(0)};
  while (sample >= samples_in_epoch(epoch)) sample -= samples_in_epoch(epoch++);
  return {epoch, sample};
}

double ChatBatches::padding_fraction() {
  if (!packing_) return 0.0;
  int64_t used = 0;
  for (const auto& row : rows(0))
    for (int64_t e : row) used += slots(examples_[static_cast<size_t>(e)]);
  const double total = static_cast<double>(rows(0).size()) * static_cast<double>(context_);
  return 1.0 - static_cast<double>(used) / total;
}

Batch ChatBatches::batch(int64_t step, int64_t batch_size) {
  return packing_ ? packed(step, batch_size) : ragged(step, batch_size);
}

Batch ChatBatches::ragged(int64_t step, int64_t batch_size) {
  std::vector<int64_t> chosen;
  int64_t total = 0;
  for (int64_t k = 0; k < batch_size; ++k) {
    const auto [epoch, index] = locate(step * batch_size + k);
    chosen.push_back(order(epoch)[static_cast<size_t>(index)]);
    total += slots(examples_[static_cast<size_t>(chosen.back())]);
  }
  Batch b{Tensor::empty({1, total}, DType::I32, MemCategory::Activations),
          Tensor::empty({1, total}, DType::I32, MemCategory::Activations)};
  b.positions = Tensor::empty({1, total}, DType::I32, MemCategory::Activations);
  b.example_starts = {0};
  for (int64_t e : chosen) {
    const int64_t at = b.example_starts.back();
    put_example(examples_[static_cast<size_t>(e)], b.inputs.i32() + at, b.targets.i32() + at, b.positions.i32() + at);
    b.example_starts.push_back(at + slots(examples_[static_cast<size_t>(e)]));
  }
  return b;
}

Batch ChatBatches::packed(int64_t step, int64_t batch_size) {
  const int64_t T = context_;
  Batch b{Tensor::empty({batch_size, T}, DType::I32, MemCategory::Activations),
          Tensor::empty({batch_size, T}, DType::I32, MemCategory::Activations)};
  b.positions = Tensor::empty({batch_size, T}, DType::I32, MemCategory::Activations);
  for (int64_t k = 0; k < batch_size; ++k) {
    const auto [epoch, index] = locate(step * batch_size + k);
    int32_t *in = b.inputs.i32() + k * T, *tg = b.targets.i32() + k * T, *pos = b.positions.i32() + k * T;
    int64_t at = 0;
    for (int64_t e : rows(epoch)[static_cast<size_t>(index)]) {
      put_example(examples_[static_cast<size_t>(e)], in + at, tg + at, pos + at);
      at += slots(examples_[static_cast<size_t>(e)]);
    }
    // Padding: its own example (positions from 0), token 0, nothing trained; no real token sees it.
    for (int64_t t = at; t < T; ++t) in[t] = 0, tg[t] = kIgnoreIndex, pos[t] = static_cast<int32_t>(t - at);
  }
  return b;
}

Batch ChatBatchShapes::batch(int64_t, int64_t batch_size) {
  const int64_t rows = packing_ ? batch_size : 1, cols = packing_ ? context_ : batch_size * context_;
  Batch b{Tensor::empty({rows, cols}, DType::I32, MemCategory::Activations),
          Tensor::empty({rows, cols}, DType::I32, MemCategory::Activations)};
  b.positions = Tensor::empty({rows, cols}, DType::I32, MemCategory::Activations);
  if (!packing_)
    for (int64_t e = 0; e <= batch_size; ++e) b.example_starts.push_back(e * context_);
  return b;
}

}  // namespace frugal
