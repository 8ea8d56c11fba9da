#include "nn/embedding.h"

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/embedding.h"

namespace frugal {

Embedding::Embedding(int64_t vocab, int64_t positions, int64_t dim) : vocab_(vocab), positions_(positions), dim_(dim) {
  wte_ = {"wte.weight", Tensor::zeros({vocab, dim}, DType::F32, MemCategory::Params), {}, true};
  wpe_ = {"wpe.weight", Tensor::zeros({positions, dim}, DType::F32, MemCategory::Params), {}, true};
}

Embedding::Embedding(const std::string& weight_name, int64_t vocab, int64_t dim) : vocab_(vocab), positions_(0), dim_(dim) {
  wte_ = {weight_name, Tensor::zeros({vocab, dim}, DType::F32, MemCategory::Params), {}, true};
  wpe_ = {"", Tensor(), {}, false};
}

Tensor Embedding::forward(const Tensor& tokens, Saved& saved, const RunContext& rc) {
  Tensor y = rc.positions ? forward_packed(tokens, *rc.positions, saved) : forward_at(tokens, 0, saved);  // (B, T, D)
  dropout_in_place(y, dropout_, rc);
  return y;
}

Tensor Embedding::forward_at(const Tensor& tokens, int64_t first_position, Saved& saved) {
  check(tokens.ndim() == 2 && tokens.dtype() == DType::I32, "embedding: expected int32 token ids (B, T), got " +
                                                                dtype_name(tokens.dtype()) + " " + tokens.shape().str());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  check(first_position >= 0 && (!has_positions() || first_position + T <= positions_),
        "embedding: sequence length " + std::to_string(T) +
            (first_position ? " from position " + std::to_string(first_position) : std::string()) +
            " exceeds n_positions " + std::to_string(positions_));
  Tensor y = Tensor::empty({B, T, dim_}, DType::F32, MemCategory::Activations);  // (B, T, D)
  saved.tensors = {tokens};
  const DType type = wte_.value.dtype();
  check(!has_positions() || wpe_.value.dtype() == type, "embedding: wte and wpe are stored in different types");
  if (measuring(tokens)) return y;
  check_ids(tokens);
  const int32_t* ids = tokens.i32();
  // A half table is read row by row (no fp32 copy of the whole 50,257 x 768 wte per call).
  const int64_t offset = first_position * dim_;  // wpe's row first_position onwards
  if (type == DType::F32)
    embedding_forward(ids, wte_.value.f32(), has_positions() ? wpe_.value.f32() + offset : nullptr, y.f32(), B, T, dim_);
  else
    embedding_forward_half(type, ids, wte_.value.u16(), has_positions() ? wpe_.value.u16() + offset : nullptr, y.f32(),
                           B, T, dim_);
  return y;
}

Tensor Embedding::forward_packed(const Tensor& tokens, const Tensor& positions, Saved& saved) {
  check(tokens.ndim() == 2 && tokens.dtype() == DType::I32 && positions.shape() == tokens.shape(),
        "embedding: expected int32 token ids (B, T) and their positions, got " + tokens.shape().str() + " and " +
            positions.shape().str());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  Tensor y = Tensor::empty({B, T, dim_}, DType::F32, MemCategory::Activations);  // (B, T, D)
  saved.tensors = {tokens};
  if (measuring(tokens) || !positions.has_data()) return y;
  check_ids(tokens);
  const int32_t* pos = positions.i32();
  if (has_positions())
    for (int64_t i = 0; i < B * T; ++i)
      check(pos[i] >= 0 && pos[i] < positions_, "embedding: position " + std::to_string(pos[i]) +
                                                    " of an example exceeds n_positions " + std::to_string(positions_));
  if (wte_.value.dtype() == DType::F32)
    embedding_forward(tokens.i32(), wte_.value.f32(), has_positions() ? wpe_.value.f32() : nullptr, y.f32(), B, T,
                      dim_, pos);
  else
    embedding_forward_half(wte_.value.dtype(), tokens.i32(), wte_.value.u16(),
                           has_positions() ? wpe_.value.u16() : nullptr, y.f32(), B, T, dim_, pos);
  return y;
}

void Embedding::check_ids(const Tensor& tokens) const {
  const int32_t* ids = tokens.i32();
  for (int64_t i = 0; i < tokens.numel(); ++i)
    check(ids[i] >= 0 && ids[i] < vocab_, "token id " + std::to_string(ids[i]) +
                                              " in the data is out of range for the model's vocab_size " +
                                              std::to_string(vocab_));
}

Tensor Embedding::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& tokens = saved.tensors.at(0);
  if (!wte_.trainable && !wpe_.trainable) return {};
  // A frozen table's share is computed into scratch and dropped (the kernel updates both).
  Tensor dwte = wte_.trainable ? wte_.ensure_grad() : Tensor::zeros(wte_.value.shape(), DType::F32, MemCategory::Workspace);
  Tensor dwpe = !has_positions() ? Tensor()
                : wpe_.trainable ? wpe_.ensure_grad()
                                 : Tensor::zeros(wpe_.value.shape(), DType::F32, MemCategory::Workspace);
  const Tensor g = dropout_.active(rc) ? dropout_copy(dy, dropout_, rc) : dy;  // through the mask (B, T, D)
  if (!measuring(dy))
    embedding_backward(tokens.i32(), g.f32(), dwte.f32(), has_positions() ? dwpe.f32() : nullptr, tokens.dim(0),
                       tokens.dim(1), dim_, rc.positions && rc.positions->has_data() ? rc.positions->i32() : nullptr);
  return {};
}

void Embedding::collect_params(std::vector<Param*>& out) {
  out.push_back(&wte_);
  if (has_positions()) out.push_back(&wpe_);
}

}  // namespace frugal
