#pragma once
// Mixed precision storage (--precision fp16|bf16). Layers compute in fp32 on fp32 tensors; around
// every layer call these helpers give the semantics of half-precision storage:
//   - a layer's input is widened to an fp32 workspace copy for its kernels (the copy lives only
//     during the call), unless the layer computes in the half type itself (Layer::computes_in: a
//     linear layer on a CPU with bf16 units); its output is rounded to the half type and handed on
//     as a half tensor (round-to-nearest-even; fp16 overflow gives inf);
//   - what a layer saves for backward (Saved::tensors, not Saved::stats) is replaced by a
//     half-precision copy as soon as its forward returns, and widened back to fp32 workspace
//     just before its backward;
//   - its input gradient (backward) is rounded to the half type in place (kept in fp32 buffers:
//     gradients are workspace, not stored activations) -- or, from a layer on the half units
//     (linear, attention) and the elementwise layers between them, handed on in the half type
//     itself, and widened to an fp32 workspace copy only for a layer that computes in fp32.
// So the Activations category holds half tensors only (and fp32 Saved::stats); the fp32 copies a
// layer computes on show up as Workspace, as a kernel's scratch would.
// Composite layers (TransformerBlock, Sequential) and the executor call their children through
// forward_child / backward_child; with precision F32 these are plain calls.
#include <memory>

#include "nn/layer.h"

namespace frugal {

// A pass's map from fp32 buffers to their half copies (and from widened copies back to the half
// buffer they came from), so one tensor saved by two layers, or stored by the executor and saved
// by a layer, is kept once. Holds only weak references: it frees nothing and keeps nothing alive.
struct HalfCache;
std::shared_ptr<HalfCache> make_half_cache();

// With rc.probe set, both also record the first call whose output or input gradient is non-finite.
Tensor forward_child(Layer& layer, const Tensor& x, Saved& saved, const RunContext& rc);
Tensor backward_child(Layer& layer, const Tensor& dy, Saved& saved, const RunContext& rc);

// The activation forms of kernels/convert.h's widen and round, under rc.precision:
// An fp32 workspace copy of a half-precision activation, or t itself when it is not one.
Tensor widen_activation(const Tensor& t, const RunContext& rc);
// The half-precision copy of an fp32 activation (shared through rc.half_cache), or t itself when
// precision is F32 or t is not an fp32 activation.
Tensor round_activation(const Tensor& t, const RunContext& rc);
// Rounds an fp32 activation or activation gradient through rc.precision in place (nothing for F32,
// other dtypes, measure mode).
void round_activation_in_place(const Tensor& t, const RunContext& rc);

// a + b (a residual connection) into a new activation tensor in the storage precision: two half
// tensors added as they are, else in fp32 and rounded.
Tensor residual_add(const Tensor& a, const Tensor& b, const RunContext& rc);

// The context of one pass over the chain: under mixed precision, a fresh HalfCache. Every pass
// (the executor's, the planner's block-cost measurement) starts from it.
RunContext pass_context(const RunContext& rc);

// A layer for messages: its parameters' common prefix and kind ("h.1.mlp.c_fc (linear)"), or its kind.
std::string layer_label(Layer& layer);

}  // namespace frugal
