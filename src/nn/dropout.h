#pragma once
// Dropout inside GPT's layers (after the embedding sum, on each residual branch's output), with the
// masks of kernels/dropout.h: keyed by the run's seed, the optimizer step, the block, the site and the
// element's place in the optimizer batch, so backward and recomputation regenerate them and nothing
// is stored. Off unless rc.training and p > 0.
#include "kernels/dropout.h"
#include "nn/layer.h"

namespace frugal {

// Where in a block a dropout sits (part of the mask's stream).
enum class DropoutSite : uint64_t { Embedding = 1, AttentionResidual = 2, MlpResidual = 3, AttentionProbabilities = 4 };

// Dropout of probability p at `site` for the pass `rc` describes, on a tensor whose dim 0 is the batch.
struct DropoutSpec {
  float p = 0.0f;
  DropoutSite site = DropoutSite::Embedding;
  bool active(const RunContext& rc) const { return p > 0.0f && rc.training; }
  // `per_sample`: the elements of one sample (a batch-major tensor's numel / dim 0; attention's H T T).
  DropoutKey key(const RunContext& rc, int64_t per_sample) const;
};

// x masked in place (fp32 or half).
void dropout_in_place(const Tensor& x, const DropoutSpec& spec, const RunContext& rc);
// A masked fp32 copy of x (Workspace): a gradient that is needed unmasked elsewhere too (fp32, so a
// half gradient and an fp32 one holding the same values give the same bits).
Tensor dropout_copy(const Tensor& x, const DropoutSpec& spec, const RunContext& rc);

}  // namespace frugal
