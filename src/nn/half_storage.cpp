#include "nn/half_storage.h"

#include <cmath>
#include <unordered_map>
#include <vector>

#include "kernels/convert.h"
#include "kernels/elementwise.h"

namespace frugal {

struct HalfCache {
  struct Entry {
    std::weak_ptr<Buffer> source;  // guards against a freed buffer's address being reused
    std::weak_ptr<Buffer> half;
    int64_t half_offset = 0;  // element of the half buffer where the source buffer's element 0 sits
  };
  std::unordered_map<const Buffer*, Entry> entries;

  // The half buffer holding `source`'s values, if one is still alive.
  std::shared_ptr<Buffer> find(const std::shared_ptr<Buffer>& source, int64_t& half_offset) const {
    auto it = entries.find(source.get());
    if (it == entries.end() || it->second.source.lock() != source) return nullptr;
    half_offset = it->second.half_offset;
    return it->second.half.lock();
  }
  void add(const std::shared_ptr<Buffer>& source, const std::shared_ptr<Buffer>& half, int64_t half_offset) {
    entries[source.get()] = {source, half, half_offset};
  }
};

std::shared_ptr<HalfCache> make_half_cache() { return std::make_shared<HalfCache>(); }

void round_activation_in_place(const Tensor& t, const RunContext& rc) {
  if (rc.precision == DType::F32 || !t.defined() || t.dtype() != DType::F32) return;
  round_in_place(t, rc.precision);
}

Tensor round_activation(const Tensor& t, const RunContext& rc) {
  if (rc.precision == DType::F32 || !t.defined() || t.dtype() != DType::F32) return t;
  const std::shared_ptr<Buffer>& source = t.buffer();
  const int64_t first = static_cast<int64_t>(t.offset_bytes() / sizeof(float));  // t's first element
  int64_t half_offset = 0;
  std::shared_ptr<Buffer> half = rc.half_cache ? rc.half_cache->find(source, half_offset) : nullptr;
  if (!half) {
    // The whole source buffer, so every view of it (and the buffer itself) maps into one copy.
    const int64_t n = static_cast<int64_t>(source->bytes() / sizeof(float));
    half = round_to(Tensor::from_buffer(source, 0, {n}, DType::F32), rc.precision, MemCategory::Activations).buffer();
    half_offset = 0;
    if (rc.half_cache) rc.half_cache->add(source, half, 0);
  }
  return Tensor::from_buffer(half, static_cast<size_t>(half_offset + first) * 2, t.shape(), rc.precision);
}

Tensor widen_activation(const Tensor& t, const RunContext& rc) {
  if (!t.defined() || !is_half(t.dtype()) || t.category() != MemCategory::Activations) return t;
  Tensor wide = widen(t);
  // Saving the widened copy again (a recomputation's block input) finds the half copy it came from.
  if (rc.half_cache) rc.half_cache->add(wide.buffer(), t.buffer(), static_cast<int64_t>(t.offset_bytes() / 2));
  return wide;
}

RunContext pass_context(const RunContext& rc) {
  RunContext pass = rc;
  if (pass.precision != DType::F32 && !pass.half_cache) pass.half_cache = make_half_cache();
  return pass;
}

std::string layer_label(Layer& layer) {
  std::vector<Param*> params;
  layer.collect_params(params);
  if (params.empty()) return layer.kind();
  std::string prefix = params.front()->name;
  const size_t dot = prefix.rfind('.');
  if (dot != std::string::npos) prefix.resize(dot);  // "h.1.mlp.c_fc.weight" -> "h.1.mlp.c_fc"
  return prefix + " (" + layer.kind() + ")";
}

namespace {
bool all_finite(const Tensor& t) {
  if (!t.defined() || !t.has_data()) return true;
  if (t.dtype() == DType::F32) {
    const float* v = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(v[i])) return false;
    return true;
  }
  return !is_half(t.dtype()) || all_finite(widen(t));
}

// Composites call children first, so the innermost layer that produced the value is found first.
void probe(const Tensor& t, Layer& layer, const RunContext& rc, const char* what) {
  if (!rc.probe || !rc.probe->first.empty() || all_finite(t)) return;
  rc.probe->first = std::string(what) + " " + layer_label(layer) + " in block " + std::to_string(rc.block_index);
}
}  // namespace

Tensor residual_add(const Tensor& a, const Tensor& b, const RunContext& rc) {
  if (is_half(a.dtype()) && b.dtype() == a.dtype()) {  // both stored half: add them as they are
    Tensor y = Tensor::empty(a.shape(), a.dtype(), MemCategory::Activations);
    if (!measuring(a)) add_half(a.dtype(), a.u16(), b.u16(), y.u16(), a.numel());
    return y;
  }
  const Tensor a32 = widen_activation(a, rc), b32 = widen_activation(b, rc);
  Tensor y = Tensor::empty(a.shape(), DType::F32, MemCategory::Activations);
  if (!measuring(a)) add(a32.f32(), b32.f32(), y.f32(), a.numel());
  return round_activation(y, rc);
}

Tensor forward_child(Layer& layer, const Tensor& x, Saved& saved, const RunContext& rc) {
  if (rc.precision == DType::F32) {
    Tensor y = layer.forward(x, saved, rc);
    probe(y, layer, rc, "output of");
    return y;
  }
  Tensor y = layer.forward(layer.computes_in(rc.precision) ? x : widen_activation(x, rc), saved, rc);
  // The half copies are the rounded values: y itself (which the layer may have saved) and what it
  // saved share one copy through the cache, and the fp32 y is not read again.
  for (Tensor& t : saved.tensors) t = round_activation(t, rc);
  Tensor stored = round_activation(y, rc);
  probe(stored, layer, rc, "output of");  // the stored value: fp16 overflow shows here, not in y
  return stored;
}

Tensor backward_child(Layer& layer, const Tensor& dy, Saved& saved, const RunContext& rc) {
  const bool widened = rc.precision != DType::F32 && !layer.computes_in(rc.precision);
  if (widened)
    for (Tensor& t : saved.tensors) t = widen_activation(t, rc);
  // A gradient handed on in the half type (by a layer on the half units) reaches a layer that
  // computes in fp32 as an fp32 workspace copy, like its saved tensors.
  Tensor dx = layer.backward(widened && is_half(dy.dtype()) ? widen(dy) : dy, saved, rc);
  round_activation_in_place(dx, rc);
  probe(dx, layer, rc, "input gradient of");
  if (rc.probe && rc.probe->first.empty()) {  // a weight gradient can go non-finite with a finite dx
    std::vector<Param*> params;
    layer.collect_params(params);
    for (const Param* p : params)
      if (p->trainable && !all_finite(p->grad)) {
        rc.probe->first = "gradient of " + p->name + " in block " + std::to_string(rc.block_index);
        break;
      }
  }
  return dx;
}

}  // namespace frugal
