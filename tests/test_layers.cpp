// One table, every layer kind of src/nn (in the manner of ggml's test-backend-ops). Each row gets:
//   FiniteDifferences       dL/dx and dL/dp by central differences (tests/gradcheck.h);
//   MeasureModeBooksRealBytes  a measuring ledger books exactly the bytes of a real forward and
//                              backward, in fp32 and through the half-precision storage path, and
//                              no kernel runs (a measured tensor has no data: a kernel would crash);
//   HalfPrecisionStorage    under fp16 and bf16 (forward_child / backward_child, as the executor
//                              calls layers) the output and saved tensors are half, statistics fp32,
//                              the output is the fp32 output rounded, gradients stay close to fp32.
// A new layer joins by adding a row; LayerTable.CoversEveryLayerClassInSrcNn fails until it has one.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

#include "core/rng.h"
#include "core/tensor_init.h"
#include "gradcheck.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "nn/activations.h"
#include "nn/attention.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/embedding.h"
#include "nn/gelu.h"
#include "nn/groupnorm.h"
#include "nn/half_storage.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/pool2d.h"
#include "nn/rmsnorm.h"
#include "nn/grouped_attention.h"
#include "nn/llama_block.h"
#include "nn/swiglu.h"
#include "kernels/rope.h"
#include "nn/sequential.h"
#include "nn/transformer_block.h"
#include "tolerances.h"
#include "train/gradient_snapshot.h"
#include "train/precision.h"

using namespace frugal;
using namespace frugal::testing;

namespace {

enum class Input {
  Normal,     // N(0, input_scale^2)
  Separated,  // values 0.1 apart in a random order: no max-pool window or ReLU sign flips under eps
  Tokens,     // int32 ids below `vocab`
};

struct LayerRow {
  std::string name;         // the test's name
  std::string layer_class;  // the C++ class it covers
  std::function<std::unique_ptr<Layer>()> make;  // the layer with its parameters set (random where they have data)
  Shape input;
  uint64_t input_seed = 92;
  Input input_kind = Input::Normal;
  float input_scale = 1.0f;  // Normal: the standard deviation; Separated: the offset below 0 of the lowest value
  int64_t vocab = 0;       // Tokens
  bool training = true;    // false: evaluation (BatchNorm's running statistics)
  float eps = 1e-2f;       // finite-difference step
  int max_coords = 48;     // coordinates checked per tensor
  // Central differences in fp32 err by truncation, eps^2 |f'''| / 6 against |f'| (the function's
  // own: the same on every kernel), plus rounding: the loss's fp32 error, gamma_n of the magnitudes
  // its sums add (n the longest chain of reductions: under 30 for one layer, about 100 for a block),
  // over 2 eps: ~1e-4 of the gradient for a layer, up to ~1e-3 for a block (its attention's and
  // norms' gradients are small against the loss's magnitudes). 1e-2 is 9x the largest (GroupNormVectors'
  // truncation, groups of 3 values: 1.1e-3 on every kernel), 2e-2 19x the blocks' (1.1e-3 at most,
  // rounding included), and a wrong or missing term of a gradient is O(1).
  double fd_tolerance = 1e-2;
  bool composite = false;  // calls children through forward_child: under half precision its output is
                           // rounded inside too, so it is compared with a tolerance, not bit for bit
};

// The layer's parameters drawn from `seed`: fp32 tensors that hold data (a half frozen weight is
// drawn before it is rounded; in measure mode nothing has data).
void randomize(Layer& layer, uint64_t seed, float scale = 0.5f) {
  std::vector<Param*> params;
  layer.collect_params(params);
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& v = params[k]->value;
    if (v.dtype() != DType::F32 || !v.has_data()) continue;
    for (int64_t i = 0; i < v.numel(); ++i) v.f32()[i] = scale * rng_normal(seed + k, 99, static_cast<uint64_t>(i));
  }
}

std::unique_ptr<Layer> randomized(std::unique_ptr<Layer> layer, uint64_t seed, float scale = 0.5f) {
  randomize(*layer, seed, scale);
  return layer;
}

// A linear layer with a LoRA adapter on a frozen base (B non-zero, so every path carries gradient);
// base_precision F16/BF16 stores the frozen weight in half precision.
std::unique_ptr<Layer> lora_linear(WeightLayout layout, double dropout, DType base_precision = DType::F32) {
  auto layer = std::make_unique<Linear>("fc", 6, 5, layout, true);
  randomize(*layer, 41);
  layer->weight().trainable = false;
  layer->bias()->trainable = false;
  LoraAdapter& adapter = layer->attach_lora("adapter", LoraConfig{.rank = 3, .alpha = 6, .dropout = dropout}, 42);
  if (adapter.b().value.has_data()) init_normal(adapter.b().value, 43, 1, 0.5f);
  if (base_precision != DType::F32) layer->store_frozen_weight_as(base_precision);
  return layer;
}

std::unique_ptr<Layer> tiny_mlp_block() {
  auto block = std::make_unique<Sequential>("mlp");
  block->add(std::make_unique<Linear>("mlp.c_fc", 6, 8, WeightLayout::InOut, true));
  block->add(std::make_unique<Gelu>());
  block->add(std::make_unique<Linear>("mlp.c_proj", 8, 6, WeightLayout::InOut, true));
  return randomized(std::move(block), 17);
}

// The same on a base quantised to nf4 or int8 (8 x 8: one block of 64 values).
std::unique_ptr<Layer> quantized_lora_linear(WeightLayout layout, QuantFormat format) {
  auto layer = std::make_unique<Linear>("fc", 8, 8, layout, true);
  randomize(*layer, 45);
  layer->bias()->trainable = false;
  LoraAdapter& adapter = layer->attach_lora("adapter", LoraConfig{.rank = 3, .alpha = 6, .dropout = 0.0}, 46);
  if (adapter.b().value.has_data()) init_normal(adapter.b().value, 47, 1, 0.5f);
  const Tensor& w = layer->weight().value;
  layer->set_quantized_weight(QuantizedMatrix::quantize(w.has_data() ? w.f32() : nullptr, 8, 8, format));
  return layer;
}

std::unique_ptr<Layer> batchnorm_with_running_statistics() {
  auto bn = std::make_unique<BatchNorm>("bn", 3);
  if (bn->running_mean().value.has_data())
    for (int c = 0; c < 3; ++c) {
      bn->running_mean().value.f32()[c] = 0.3f * c;
      bn->running_var().value.f32()[c] = 0.5f + c;
    }
  return randomized(std::move(bn), 55);
}

// Attention on the fused kernel with the given tile, whatever Auto would pick.
std::unique_ptr<Layer> flash_attention(int64_t dim, int64_t heads, int64_t tile, float dropout = 0.0f) {
  auto layer = std::make_unique<CausalSelfAttention>(dim, heads);
  layer->set_kernel(AttentionKernel::Flash);
  layer->set_tile(tile);
  layer->set_dropout(dropout);
  return layer;
}

std::unique_ptr<Layer> attention_with_dropout(int64_t dim, int64_t heads, float dropout) {
  auto layer = std::make_unique<CausalSelfAttention>(dim, heads);
  layer->set_dropout(dropout);
  return layer;
}

// Llama's attention core: 16 wide, 4 query heads of 4 sharing kv_heads key/value heads, rotary
// frequencies 1 and 0.1 (theta 100: angles at 5 positions that matter).
std::unique_ptr<Layer> grouped_attention(int64_t kv_heads, AttentionKernel kernel = AttentionKernel::Auto) {
  auto layer = std::make_unique<GroupedQueryAttention>(4, kv_heads, 4, rope_inverse_frequencies(4, 100.0));
  layer->attention().set_kernel(kernel);
  if (kernel == AttentionKernel::Flash) layer->attention().set_tile(2);
  return layer;
}

// A Llama decoder layer: 8 wide, 4 heads over 2 key/value heads, a 12-wide SwiGLU MLP.
std::unique_ptr<Layer> llama_block(bool qwen2_biases, AttentionKernel kernel = AttentionKernel::Auto) {
  LlamaBlockShape shape{.dim = 8, .heads = 4, .kv_heads = 2, .intermediate = 12, .eps = 1e-5f,
                        .rope_frequencies = rope_inverse_frequencies(2, 10000.0), .qkv_bias = qwen2_biases};
  auto block = std::make_unique<LlamaBlock>(0, shape);
  block->attention().attention().set_kernel(kernel);
  if (kernel == AttentionKernel::Flash) block->attention().attention().set_tile(2);
  return randomized(std::move(block), 19, 0.4f);
}

// A Qwen3 decoder layer: 8 wide, heads of 4 (attention 16 wide), per-head q/k norms, biases on
// all four projections.
std::unique_ptr<Layer> qwen3_block(AttentionKernel kernel) {
  LlamaBlockShape shape{.dim = 8, .heads = 4, .kv_heads = 2, .intermediate = 12, .head_dim = 4, .eps = 1e-5f,
                        .rope_frequencies = rope_inverse_frequencies(4, 100.0), .qkv_bias = true, .o_bias = true,
                        .qk_norm = true};
  auto block = std::make_unique<LlamaBlock>(0, shape);
  block->attention().attention().set_kernel(kernel);
  if (kernel == AttentionKernel::Flash) block->attention().attention().set_tile(2);
  return randomized(std::move(block), 19, 0.4f);
}

const std::vector<LayerRow>& layer_rows() {
  static const std::vector<LayerRow> rows = {
      {.name = "LinearInOut", .layer_class = "Linear",
       .make = [] { return randomized(std::make_unique<Linear>("fc", 6, 5, WeightLayout::InOut, true), 1); },
       .input = {2, 3, 6}, .input_seed = 2},
      {.name = "LinearOutIn", .layer_class = "Linear",
       .make = [] { return randomized(std::make_unique<Linear>("fc", 7, 4, WeightLayout::OutIn, true), 3); },
       .input = {5, 7}, .input_seed = 4},
      {.name = "LinearLoraFolded", .layer_class = "Linear",
       .make = [] { return lora_linear(WeightLayout::InOut, 0.0); }, .input = {4, 6}, .input_seed = 44},
      {.name = "LinearLoraOutIn", .layer_class = "Linear",
       .make = [] { return lora_linear(WeightLayout::OutIn, 0.0); }, .input = {4, 6}, .input_seed = 44},
      {.name = "LinearLoraDropout", .layer_class = "Linear",
       .make = [] { return lora_linear(WeightLayout::InOut, 0.3); }, .input = {4, 6}, .input_seed = 44},
      {.name = "LinearLoraBf16Base", .layer_class = "Linear",
       .make = [] { return lora_linear(WeightLayout::InOut, 0.0, DType::BF16); }, .input = {4, 6}, .input_seed = 44},
      {.name = "LinearLoraNf4Base", .layer_class = "Linear",
       .make = [] { return quantized_lora_linear(WeightLayout::InOut, QuantFormat::Nf4); }, .input = {4, 8}, .input_seed = 48},
      {.name = "LinearLoraInt8BaseOutIn", .layer_class = "Linear",
       .make = [] { return quantized_lora_linear(WeightLayout::OutIn, QuantFormat::Int8); }, .input = {4, 8},
       .input_seed = 49},
      {.name = "RmsNorm", .layer_class = "RmsNorm",
       .make = [] { return randomized(std::make_unique<RmsNorm>("norm", 8, 1e-5f), 9); }, .input = {3, 4, 8},
       .input_seed = 10},
      {.name = "LayerNorm", .layer_class = "LayerNorm",
       .make = [] { return randomized(std::make_unique<LayerNorm>("ln", 8, 1e-5f), 7); }, .input = {3, 4, 8},
       .input_seed = 8},
      {.name = "GroupNormImages", .layer_class = "GroupNorm",
       .make = [] { return randomized(std::make_unique<GroupNorm>("gn", 2, 4, 1e-5f), 21); }, .input = {3, 4, 3, 2},
       .input_seed = 22},
      {.name = "GroupNormOneGroup", .layer_class = "GroupNorm",
       .make = [] { return randomized(std::make_unique<GroupNorm>("gn", 1, 4, 1e-5f), 22); }, .input = {3, 4, 3, 2},
       .input_seed = 22},
      {.name = "GroupNormVectors", .layer_class = "GroupNorm",
       .make = [] { return randomized(std::make_unique<GroupNorm>("gn", 2, 6, 1e-5f), 23); }, .input = {5, 6},
       .input_seed = 24},
      {.name = "BatchNorm1dTraining", .layer_class = "BatchNorm",
       .make = [] { return randomized(std::make_unique<BatchNorm>("bn", 4), 51); }, .input = {6, 4}, .input_seed = 52,
       .input_scale = 2.0f},
      {.name = "BatchNorm2dTraining", .layer_class = "BatchNorm",
       .make = [] { return randomized(std::make_unique<BatchNorm>("bn", 3), 53); }, .input = {3, 3, 4, 3},
       .input_seed = 54},
      {.name = "BatchNormEval", .layer_class = "BatchNorm", .make = batchnorm_with_running_statistics,
       .input = {2, 3, 3, 3}, .input_seed = 56, .training = false},
      {.name = "Gelu", .layer_class = "Gelu", .make = [] { return std::make_unique<Gelu>(); }, .input = {50},
       .input_seed = 9, .input_scale = 2.0f, .eps = 1e-3f},
      {.name = "ReLU", .layer_class = "ReLU", .make = [] { return std::make_unique<ReLU>(); }, .input = {2, 3, 4, 4},
       .input_seed = 71, .input_kind = Input::Separated, .input_scale = 4.75f},
      {.name = "Flatten", .layer_class = "Flatten", .make = [] { return std::make_unique<Flatten>(); },
       .input = {2, 3, 4, 5}, .input_seed = 73},
      {.name = "MaxPool", .layer_class = "MaxPool2d", .make = [] { return std::make_unique<MaxPool2d>(2); },
       .input = {2, 3, 6, 5}, .input_seed = 41, .input_kind = Input::Separated, .input_scale = 4.0f},
      {.name = "MaxPoolOverlapping", .layer_class = "MaxPool2d",
       .make = [] { return std::make_unique<MaxPool2d>(3, 2); }, .input = {2, 2, 7, 7}, .input_seed = 42,
       .input_kind = Input::Separated, .input_scale = 4.0f},
      {.name = "AvgPool", .layer_class = "AvgPool2d", .make = [] { return std::make_unique<AvgPool2d>(2); },
       .input = {2, 3, 5, 4}, .input_seed = 43},  // H = 5: the last row is dropped (floor)
      {.name = "AvgPoolOverlapping", .layer_class = "AvgPool2d",
       .make = [] { return std::make_unique<AvgPool2d>(3, 2); }, .input = {1, 2, 7, 6}, .input_seed = 44},
      {.name = "Conv2dStride1Pad1", .layer_class = "Conv2d",
       .make = [] { return randomized(std::make_unique<Conv2d>("c", 3, 4, 3, 1, 1), 21); }, .input = {2, 3, 5, 5},
       .input_seed = 22},
      {.name = "Conv2dStride2Pad0", .layer_class = "Conv2d",
       .make = [] { return randomized(std::make_unique<Conv2d>("c", 2, 3, 3, 2, 0), 23); }, .input = {2, 2, 7, 6},
       .input_seed = 24},
      {.name = "Conv2dPointwiseNoBias", .layer_class = "Conv2d",
       .make = [] { return randomized(std::make_unique<Conv2d>("c", 3, 2, 1, 1, 0, /*bias=*/false), 25); },
       .input = {2, 3, 4, 4}, .input_seed = 26},
      {.name = "Attention", .layer_class = "CausalSelfAttention",
       .make = [] { return std::make_unique<CausalSelfAttention>(8, 2); }, .input = {2, 5, 24}, .input_seed = 10,
       .max_coords = 96},
      // 150 positions: the kernels take query rows in blocks of 64 (kernels/attention.cpp), the last partial.
      {.name = "AttentionThreeRowBlocks", .layer_class = "CausalSelfAttention",
       .make = [] { return std::make_unique<CausalSelfAttention>(4, 2); }, .input = {1, 150, 12}, .input_seed = 12,
       .max_coords = 96},
      // The fused kernel (nn/attention.h AttentionKernel::Flash), forced: Auto picks the
      // materialising one at these lengths. 150 positions in tiles of 64: three query and three key
      // tiles, the last partial, tiles above the diagonal skipped and the diagonal ones masked.
      {.name = "AttentionFlash", .layer_class = "CausalSelfAttention",
       .make = [] { return flash_attention(8, 2, 64); }, .input = {2, 5, 24}, .input_seed = 10, .max_coords = 96},
      {.name = "AttentionFlashThreeTiles", .layer_class = "CausalSelfAttention",
       .make = [] { return flash_attention(4, 2, 64); }, .input = {1, 150, 12}, .input_seed = 12,
       .max_coords = 96},
      // Tiles of 2 over 5 positions: a partial last tile, more than one tile per row in the online softmax.
      {.name = "AttentionFlashSmallTiles", .layer_class = "CausalSelfAttention",
       .make = [] { return flash_attention(8, 2, 2); }, .input = {2, 5, 24}, .input_seed = 10, .max_coords = 96},
      // Dropout on the probabilities (masks regenerated in backward; per tile in the fused kernel).
      {.name = "AttentionDropout", .layer_class = "CausalSelfAttention",
       .make = [] { return attention_with_dropout(8, 2, 0.3f); }, .input = {2, 5, 24}, .input_seed = 10,
       .max_coords = 96},
      {.name = "AttentionFlashDropout", .layer_class = "CausalSelfAttention",
       .make = [] { return flash_attention(8, 2, 2, 0.3f); }, .input = {2, 5, 24}, .input_seed = 10,
       .max_coords = 96},
      // q (4 heads) | k | v (kv_heads each), heads 4 wide: 16 + 2 x 4 kv_heads columns.
      {.name = "GroupedQueryAttention", .layer_class = "GroupedQueryAttention",
       .make = [] { return grouped_attention(2); }, .input = {2, 5, 32}, .input_seed = 31, .max_coords = 96,
       .composite = true},
      {.name = "GroupedQueryAttentionOneKvHead", .layer_class = "GroupedQueryAttention",
       .make = [] { return grouped_attention(1); }, .input = {2, 5, 24}, .input_seed = 32, .max_coords = 96,
       .composite = true},
      {.name = "GroupedQueryAttentionMultiHead", .layer_class = "GroupedQueryAttention",
       .make = [] { return grouped_attention(4); }, .input = {2, 5, 48}, .input_seed = 33, .max_coords = 96,
       .composite = true},
      {.name = "GroupedQueryAttentionFlash", .layer_class = "GroupedQueryAttention",
       .make = [] { return grouped_attention(2, AttentionKernel::Flash); }, .input = {2, 5, 32}, .input_seed = 31,
       .max_coords = 96, .composite = true},
      {.name = "SwiGlu", .layer_class = "SwiGlu", .make = [] { return std::make_unique<SwiGlu>(); },
       .input = {3, 2, 10}, .input_seed = 34, .input_scale = 2.0f, .eps = 1e-3f},
      {.name = "LlamaBlock", .layer_class = "LlamaBlock", .make = [] { return llama_block(false); },
       .input = {2, 4, 8}, .input_seed = 35, .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      {.name = "LlamaBlockQwen2Biases", .layer_class = "LlamaBlock", .make = [] { return llama_block(true); },
       .input = {2, 4, 8}, .input_seed = 36, .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      {.name = "LlamaBlockFlash", .layer_class = "LlamaBlock",
       .make = [] { return llama_block(false, AttentionKernel::Flash); }, .input = {2, 4, 8}, .input_seed = 35,
       .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      {.name = "LlamaBlockQwen3", .layer_class = "LlamaBlock",
       .make = [] { return qwen3_block(AttentionKernel::Auto); }, .input = {2, 4, 8}, .input_seed = 37,
       .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      {.name = "LlamaBlockQwen3Flash", .layer_class = "LlamaBlock",
       .make = [] { return qwen3_block(AttentionKernel::Flash); }, .input = {2, 4, 8}, .input_seed = 37,
       .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      // The token table alone (Llama: positions enter through the rotary embedding).
      {.name = "EmbeddingTokensOnly", .layer_class = "Embedding",
       .make = [] { return randomized(std::make_unique<Embedding>("model.embed_tokens.weight", 11, 4), 12); },
       .input = {2, 5}, .input_kind = Input::Tokens, .vocab = 11},
      {.name = "Embedding", .layer_class = "Embedding",
       .make = [] { return randomized(std::make_unique<Embedding>(11, 6, 4), 12); }, .input = {2, 5},
       .input_kind = Input::Tokens, .vocab = 11},
      // With dropout after the sum (the mask is a function of the pass's context: fixed across the
      // finite differences, regenerated in backward).
      {.name = "EmbeddingDropout", .layer_class = "Embedding",
       .make = [] {
         auto embedding = std::make_unique<Embedding>(11, 6, 4);
         embedding->set_dropout(0.3f);
         return randomized(std::move(embedding), 12);
       },
       .input = {2, 5}, .input_kind = Input::Tokens, .vocab = 11},
      {.name = "SequentialMlpBlock", .layer_class = "Sequential", .make = tiny_mlp_block, .input = {3, 6},
       .input_seed = 15, .composite = true},
      {.name = "TransformerBlock", .layer_class = "TransformerBlock",
       .make = [] { return randomized(std::make_unique<TransformerBlock>(0, 8, 2, 1e-5f), 13, 0.3f); },
       .input = {2, 3, 8}, .input_seed = 14, .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      // Its attention on the fused kernel, which saves its output: the buffer c_proj saves as its input.
      {.name = "TransformerBlockFlash", .layer_class = "TransformerBlock",
       .make = [] {
         auto block = std::make_unique<TransformerBlock>(0, 8, 2, 1e-5f);
         block->set_attention_kernel(AttentionKernel::Flash);
         block->set_attention_tile(2);
         return randomized(std::move(block), 13, 0.3f);
       },
       .input = {2, 3, 8}, .input_seed = 14, .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
      // Dropout on both residual branches' outputs.
      {.name = "TransformerBlockDropout", .layer_class = "TransformerBlock",
       .make = [] {
         auto block = std::make_unique<TransformerBlock>(0, 8, 2, 1e-5f);
         block->set_residual_dropout(0.3f);
         return randomized(std::move(block), 13, 0.3f);
       },
       .input = {2, 3, 8}, .input_seed = 14, .max_coords = 24, .fd_tolerance = 2e-2, .composite = true},
  };
  return rows;
}

// Under --precision fp16/bf16 the trainer stores every parameter in the half type (its compute
// copy; train/precision.h): the same for a row's layer. Tensors already half stay as they are.
void store_params_in(Layer& layer, DType half) {
  std::vector<Param*> params;
  layer.collect_params(params);
  for (Param* p : params)
    if (p->value.dtype() == DType::F32) p->value = round_to(p->value, half, MemCategory::Params);
}

// The fp32 reference with the values those half parameters hold.
void round_params_through(Layer& layer, DType half) {
  std::vector<Param*> params;
  layer.collect_params(params);
  for (Param* p : params)
    if (p->value.dtype() == DType::F32) round_in_place(p->value, half);
}

// The row's input, allocated in the current ledger (data only in a real one): fp32, or under
// fp16/bf16 the half activation the previous layer would have stored.
Tensor make_input(const LayerRow& row, DType precision) {
  if (row.input_kind == Input::Tokens) {
    Tensor ids = Tensor::empty(row.input, DType::I32, MemCategory::Activations);
    if (ids.has_data())  // repeated ids on purpose: their gradients accumulate
      for (int64_t i = 0; i < ids.numel(); ++i) ids.i32()[i] = static_cast<int32_t>((i * 7 + 3) % row.vocab);
    return ids;
  }
  Tensor x = Tensor::empty(row.input, DType::F32, MemCategory::Activations);
  if (x.has_data() && row.input_kind == Input::Normal) {
    for (int64_t i = 0; i < x.numel(); ++i)
      x.f32()[i] = row.input_scale * rng_normal(row.input_seed, 77, static_cast<uint64_t>(i));
  } else if (x.has_data()) {
    std::vector<int64_t> order(static_cast<size_t>(x.numel()));
    std::iota(order.begin(), order.end(), 0);
    std::vector<float> key(order.size());
    for (size_t i = 0; i < key.size(); ++i) key[i] = rng_uniform(row.input_seed, 5, i);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });
    for (size_t i = 0; i < order.size(); ++i) x.f32()[order[i]] = 0.1f * static_cast<float>(i) - row.input_scale;
  }
  return precision == DType::F32 ? x : round_to(x, precision, MemCategory::Activations);
}

// The half roundings on the longest path from the fp32 reference to what HalfPrecisionStorage
// compares (nn/half_storage.h; the input, the parameters and dy are the same half values in both
// runs): a layer's output and its input gradient (2: a saved tensor is its input or output, already
// rounded); attention's probabilities too, saved and multiplied on the half units (3); an adapter's
// h = x A^T and g = dy B (4). Composites count their children's outputs and input gradients and the
// residual sums: GroupedQueryAttention the rotated q/k/v, the attention's output and probabilities
// forward, the attention's and the rotation's gradients back (5); Sequential's c_fc, GELU, c_proj
// each way (6); a GPT block 11 forward (ln_1, c_attn, attention and its probabilities, attn.c_proj,
// the residual, ln_2, c_fc, GELU, mlp.c_proj, the residual) and 10 back (its 9 children and the
// residual), as test_mixed_precision.cpp counts them (21); a Llama block 13 forward (input norm,
// q/k/v, Qwen3's head norms, the rotation, attention and probabilities, o_proj, residual, post norm,
// gate/up, SwiGLU, down, residual) and 15 back (those children, the q/k/v and gate/up gradients'
// sums, the residuals) (28).
int half_roundings(const LayerRow& row, Layer& layer, DType half) {
  if (row.layer_class == "LlamaBlock") return 28;
  if (row.layer_class == "TransformerBlock") return 21;
  if (row.layer_class == "Sequential") return 6;
  if (row.layer_class == "GroupedQueryAttention") return 5;
  // (a quantised base on the half units: one more, its tiles dequantised to the half type)
  if (auto* linear = dynamic_cast<Linear*>(&layer); linear && linear->lora())
    return linear->quantized_weight() && linear->computes_in(half) ? 5 : 4;
  if (row.layer_class == "CausalSelfAttention") return 3;
  return 2;
}

RunContext row_context(const LayerRow& row, DType precision) {
  RunContext rc;
  rc.training = row.training;
  rc.seed = 7;  // LoRA dropout masks
  rc.precision = precision;
  return pass_context(rc);
}

// How the executor calls a layer: directly in fp32, through the half-storage wrappers otherwise.
Tensor call_forward(Layer& layer, const Tensor& x, Saved& saved, const RunContext& rc) {
  return rc.precision == DType::F32 ? layer.forward(x, saved, rc) : forward_child(layer, x, saved, rc);
}
Tensor call_backward(Layer& layer, const Tensor& dy, Saved& saved, const RunContext& rc) {
  return rc.precision == DType::F32 ? layer.backward(dy, saved, rc) : backward_child(layer, dy, saved, rc);
}

std::vector<float> values_of(const Tensor& t) {
  const Tensor wide = widen(t);
  return std::vector<float>(wide.f32(), wide.f32() + wide.numel());
}

// ||a - b|| / ||b|| (train/gradient_snapshot.h) of float values.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  return frugal::relative_difference(std::vector<double>(a.begin(), a.end()), std::vector<double>(b.begin(), b.end()));
}

class LayerTable : public ::testing::TestWithParam<LayerRow> {};

// gtest prints a failing row by this (not as bytes).
void PrintTo(const LayerRow& row, std::ostream* os) { *os << row.name; }

std::string row_name(const ::testing::TestParamInfo<LayerRow>& info) { return info.param.name; }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Nn, LayerTable, ::testing::ValuesIn(layer_rows()), row_name);

TEST_P(LayerTable, FiniteDifferences) {
  const LayerRow& row = GetParam();
  std::unique_ptr<Layer> layer = row.make();
  const auto entries = grad_check(*layer, make_input(row, DType::F32), row_context(row, DType::F32), row.eps,
                                  row.max_coords);
  ASSERT_FALSE(entries.empty());
  // fd_tolerance: truncation plus the fp32 loss's rounding over 2 eps (its comment in LayerRow)
  for (const auto& e : entries) EXPECT_LE(e.rel_error, row.fd_tolerance) << e.what;
}

namespace {

struct Footprint {
  MemorySnapshot after_forward, peak_forward, after_backward, peak_all;
};

// The ledger's books over building the row's layer and one forward and backward under `precision`.
Footprint footprint(const LayerRow& row, bool measure, DType precision) {
  MemoryLedger ledger(measure);
  LedgerScope scope(ledger);
  std::unique_ptr<Layer> layer = row.make();
  if (precision != DType::F32) store_params_in(*layer, precision);
  const Tensor x = make_input(row, precision);
  EXPECT_EQ(x.has_data(), !measure);
  const RunContext rc = row_context(row, precision);
  Footprint f;
  ledger.reset_peaks();
  Saved saved;
  const Tensor y = call_forward(*layer, x, saved, rc);
  EXPECT_EQ(y.has_data(), !measure);
  f.after_forward = ledger.live();
  f.peak_forward = ledger.peak();
  {
    Tensor dy = Tensor::empty(y.shape(), DType::F32, MemCategory::Workspace);
    if (!measure) dy.fill(0.5f);
    const Tensor dx = call_backward(*layer, dy, saved, rc);
    if (dx.defined()) {
      EXPECT_EQ(dx.shape(), x.shape());
    }
    f.after_backward = ledger.live();
  }
  f.peak_all = ledger.peak();
  return f;
}

}  // namespace

TEST_P(LayerTable, MeasureModeBooksRealBytes) {
  for (const DType precision : {DType::F32, DType::F16, DType::BF16}) {
    const Footprint measured = footprint(GetParam(), true, precision);
    const Footprint real = footprint(GetParam(), false, precision);
    for (int c = 0; c < kNumMemCategories; ++c) {
      const std::string where = precision_name(precision) + " " + mem_category_name(static_cast<MemCategory>(c));
      EXPECT_EQ(measured.after_forward.bytes[c], real.after_forward.bytes[c]) << where;
      EXPECT_EQ(measured.peak_forward.bytes[c], real.peak_forward.bytes[c]) << where;
      EXPECT_EQ(measured.after_backward.bytes[c], real.after_backward.bytes[c]) << where;
      EXPECT_EQ(measured.peak_all.bytes[c], real.peak_all.bytes[c]) << where;
    }
    EXPECT_EQ(measured.peak_all.total, real.peak_all.total) << precision_name(precision);
  }
}

namespace {

// Every float tensor saved for backward (children included) in `half`; statistics in fp32. (An
// empty slot is a tensor the parent keeps in another form: GroupedQueryAttention's inner qkv.)
void expect_saved_in(const Saved& saved, DType half) {
  for (const Tensor& t : saved.tensors)
    if (t.defined() && t.dtype() != DType::I32) {
      EXPECT_EQ(t.dtype(), half) << "a saved tensor " << t.shape().str();
    }
  for (const Tensor& t : saved.stats) EXPECT_EQ(t.dtype(), DType::F32) << "a saved statistic " << t.shape().str();
  for (const Saved& child : saved.children) expect_saved_in(child, half);
}

std::vector<std::vector<float>> param_grads(Layer& layer) {
  std::vector<Param*> params;
  layer.collect_params(params);
  std::vector<std::vector<float>> grads;
  for (Param* p : params)
    if (p->grad.defined()) grads.push_back(values_of(p->grad));
  return grads;
}

}  // namespace

TEST_P(LayerTable, HalfPrecisionStorage) {
  const LayerRow& row = GetParam();
  for (const DType half : {DType::F16, DType::BF16}) {
    SCOPED_TRACE(precision_name(half));
    // Output and gradients differ from fp32 by what storing activations in the half type loses: to
    // first order each of the R = half_roundings on the path moves what it rounds by at most u_h
    // (2^-11, 2^-8) of itself, and what follows by u_h of the magnitudes it passes through (which on
    // these rows' data are O(1) of the result: no sum cancels much); worst case, all aligned, R u_h.
    // Products on the half units add in fp32 in another order than the reference: 2 gamma_n, n = 512
    // above any row's longest chain of fp32 reductions (the 150-position attention's, ~310).
    std::unique_ptr<Layer> reference = row.make(), layer = row.make();
    const double unit = half == DType::F16 ? kFp16Unit : kBf16Unit;
    const double tolerance = half_roundings(row, *layer, half) * unit + 2 * gamma_n(512);
    round_params_through(*reference, half);
    store_params_in(*layer, half);
    const Tensor x = make_input(row, half);  // the half activation, or token ids
    const RunContext rc32 = row_context(row, DType::F32), rc = row_context(row, half);
    Saved saved32, saved;
    const Tensor x32 = is_half(x.dtype()) ? widen(x, MemCategory::Activations) : x;
    const Tensor y32 = reference->forward(x32, saved32, rc32);
    const Tensor y = forward_child(*layer, x, saved, rc);
    EXPECT_EQ(y.dtype(), half);
    EXPECT_EQ(y.category(), MemCategory::Activations);
    expect_saved_in(saved, half);
    std::vector<float> rounded = values_of(y32);
    round_through_half(rounded.data(), half, static_cast<int64_t>(rounded.size()));
    // A layer that widens computes exactly what fp32 computes on the same values; one that multiplies
    // in the half type (or holds one that does) sums in another order.
    if (row.composite || layer->computes_in(half)) EXPECT_LE(relative_difference(values_of(y), rounded), tolerance);
    else EXPECT_EQ(values_of(y), rounded) << "the output is the fp32 output rounded";

    Tensor dy32 = random_tensor(y.shape(), 4242, 1.0f, MemCategory::Workspace);
    round_in_place(dy32, half);  // the loss gradient, as the executor stores it
    const Tensor dx32 = reference->backward(dy32, saved32, rc32);
    const std::vector<float> dx32_values = dx32.defined() ? values_of(dx32) : std::vector<float>{};
    const Tensor dy = Tensor::empty(y.shape(), DType::F32, MemCategory::Workspace);
    dy.copy_from(dy32);
    // The same gradient handed in the half type, as a layer on the half units hands it on, to a
    // second copy of the layer: the same input gradient (backward_child widens it for a layer that
    // computes in fp32).
    std::unique_ptr<Layer> from_half = row.make();
    store_params_in(*from_half, half);
    Saved saved_half;
    forward_child(*from_half, x, saved_half, rc);
    const Tensor dx_from_half = backward_child(*from_half, round_to(dy32, half, MemCategory::Workspace), saved_half, rc);
    const Tensor dx = backward_child(*layer, dy, saved, rc);
    ASSERT_EQ(dx.defined(), dx32.defined());
    if (dx.defined()) {
      // Activation gradients hold half values: in fp32 buffers, or in the half type itself from a
      // layer that multiplies on the half units (linear, attention, and what contains them).
      // (A linear layer with an adapter keeps dx in fp32 for the adapter to add its part to.)
      auto* linear = dynamic_cast<Linear*>(layer.get());
      const bool half_units = (row.layer_class == "CausalSelfAttention" || (linear && !linear->lora())) &&
                              layer->computes_in(half);
      if (half_units) EXPECT_EQ(dx.dtype(), half);
      else EXPECT_TRUE(dx.dtype() == DType::F32 || dx.dtype() == half) << dtype_name(dx.dtype());
      std::vector<float> dx_rounded = values_of(dx);
      round_through_half(dx_rounded.data(), half, static_cast<int64_t>(dx_rounded.size()));
      EXPECT_EQ(values_of(dx), dx_rounded);
      EXPECT_LE(relative_difference(values_of(dx), dx32_values), tolerance);
      EXPECT_EQ(values_of(dx_from_half), values_of(dx)) << "a half dy gives the same input gradient";
    }
    const auto grads = param_grads(*layer), grads32 = param_grads(*reference);
    ASSERT_EQ(grads.size(), grads32.size());
    for (size_t k = 0; k < grads.size(); ++k) EXPECT_LE(relative_difference(grads[k], grads32[k]), tolerance) << k;
  }
}

// Every class in src/nn that derives from Layer has a row.
TEST(LayerTableCoverage, CoversEveryLayerClassInSrcNn) {
  std::set<std::string> classes, covered;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(FRUGAL_SOURCE_DIR) + "/src/nn")) {
    if (entry.path().extension() != ".h") continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {  // "class Name : public Layer {"
      std::istringstream words(line);
      std::string keyword, name, colon, access, base;
      words >> keyword >> name >> colon >> access >> base;
      if (keyword == "class" && colon == ":" && access == "public" && base == "Layer") classes.insert(name);
    }
  }
  for (const LayerRow& row : layer_rows()) covered.insert(row.layer_class);
  EXPECT_GE(classes.size(), 14u) << "the scan of src/nn found too few Layer classes";
  for (const std::string& c : classes) EXPECT_TRUE(covered.count(c)) << c << " has no row in layer_rows()";
  for (const std::string& c : covered) EXPECT_TRUE(classes.count(c)) << c << " is not a Layer class in src/nn";
}
