#include "nn/half_storage.h"

#include <cmath>
#include <unordered_map>
#include <vector>

#include "kernels/convert.h"

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

namespace {
bool is_half(DType d) { return d == DType::F16 || d == DType::BF16; }
}  // namespace

void round_to_precision(const Tensor& t, const RunContext& rc) {
  if (rc.precision == DType::F32 || !t.defined() || t.dtype() != DType::F32 || !t.has_data()) return;
  round_through_half(t.f32(), rc.precision, t.numel());
}

Tensor to_storage(const Tensor& t, const RunContext& rc) {
  if (rc.precision == DType::F32 || !t.defined() || t.dtype() != DType::F32) return t;
  const std::shared_ptr<Buffer>& source = t.buffer();
  const int64_t first = static_cast<int64_t>(t.offset_bytes() / sizeof(float));  // t's first element
  int64_t half_offset = 0;
  std::shared_ptr<Buffer> half = rc.half_cache ? rc.half_cache->find(source, half_offset) : nullptr;
  if (!half) {
    // The whole source buffer, so every view of it (and the buffer itself) maps into one copy.
    const int64_t n = static_cast<int64_t>(source->bytes() / sizeof(float));
    Tensor copy = Tensor::empty({n}, rc.precision, MemCategory::Activations);
    if (copy.has_data() && source->data())
      float_to_half(static_cast<const float*>(source->data()), rc.precision, copy.u16(), n);
    half = copy.buffer();
    half_offset = 0;
    if (rc.half_cache) rc.half_cache->add(source, half, 0);
  }
  return Tensor::from_buffer(half, static_cast<size_t>(half_offset + first) * 2, t.shape(), rc.precision);
}

Tensor to_compute(const Tensor& t, const RunContext& rc) {
  if (!t.defined() || !is_half(t.dtype()) || t.category() != MemCategory::Activations) return t;
  Tensor wide = Tensor::empty(t.shape(), DType::F32, MemCategory::Workspace);
  if (wide.has_data() && t.has_data()) half_to_float(t.u16(), t.dtype(), wide.f32(), t.numel());
  // Saving the widened copy again (a recomputation's block input) finds the half copy it came from.
  if (rc.half_cache) rc.half_cache->add(wide.buffer(), t.buffer(), static_cast<int64_t>(t.offset_bytes() / 2));
  return wide;
}

Tensor f32_value(const Tensor& value) {
  if (value.dtype() == DType::F32) return value;
  Tensor wide = Tensor::empty(value.shape(), DType::F32, MemCategory::Workspace);
  if (wide.has_data() && value.has_data()) half_to_float(value.u16(), value.dtype(), wide.f32(), value.numel());
  return wide;
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
  if (t.dtype() != DType::F16 && t.dtype() != DType::BF16) return true;
  std::vector<float> wide(static_cast<size_t>(t.numel()));
  half_to_float(t.u16(), t.dtype(), wide.data(), t.numel());
  for (float v : wide)
    if (!std::isfinite(v)) return false;
  return true;
}

// Composites call children first, so the innermost layer that produced the value is found first.
void probe(const Tensor& t, Layer& layer, const RunContext& rc, const char* what) {
  if (!rc.probe || !rc.probe->first.empty() || all_finite(t)) return;
  rc.probe->first = std::string(what) + " " + layer_label(layer) + " in block " + std::to_string(rc.block_index);
}
}  // namespace

Tensor forward_child(Layer& layer, const Tensor& x, Saved& saved, const RunContext& rc) {
  if (rc.precision == DType::F32) {
    Tensor y = layer.forward(x, saved, rc);
    probe(y, layer, rc, "output of");
    return y;
  }
  Tensor y = layer.forward(to_compute(x, rc), saved, rc);
  round_to_precision(y, rc);  // before the saved copies are made: the layer may have saved y itself
  for (Tensor& t : saved.tensors) t = to_storage(t, rc);
  probe(y, layer, rc, "output of");
  return to_storage(y, rc);
}

Tensor backward_child(Layer& layer, const Tensor& dy, Saved& saved, const RunContext& rc) {
  if (rc.precision != DType::F32)
    for (Tensor& t : saved.tensors) t = to_compute(t, rc);
  Tensor dx = layer.backward(dy, saved, rc);
  round_to_precision(dx, rc);
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
