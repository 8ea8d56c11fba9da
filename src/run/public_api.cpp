// include/frugal/frugal.h: the public API is the run layer's functions behind a spec of settings.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "frugal/frugal.h"
#include "kernels/convert.h"
#include "run/generate_run.h"
#include "run/grad_run.h"
#include "run/model_builder.h"
#include "run/plan_run.h"
#include "run/process_setup.h"
#include "run/spec_settings.h"
#include "run/train_run.h"
#include "text/tokenizer.h"
#include "train/generate.h"

namespace frugal {

namespace {

size_t element_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  throw Error("batch: dtype '" + dtype + "' is not one of F32, F64, I32, I64");
}

template <typename T>
void widen_all(const Array& a, std::vector<double>& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, a.bytes.data() + i * sizeof(T), sizeof(T));  // (bytes of a vector: no alignment promised)
    out[i] = static_cast<double>(v);
  }
}

// A host array's elements as doubles (exact for every int32 and float), its dtype read once.
std::vector<double> as_doubles(const Array& a, int64_t count) {
  std::vector<double> out(static_cast<size_t>(count));
  if (a.dtype == "F32") widen_all<float>(a, out);
  else if (a.dtype == "F64") widen_all<double>(a, out);
  else if (a.dtype == "I32") widen_all<int32_t>(a, out);
  else widen_all<int64_t>(a, out);
  return out;
}

// The batch array `name` as a tensor of the model's type (token ids I32, features F32).
Tensor batch_tensor(const std::map<std::string, Array>& batch, const std::string& name, DType want) {
  const auto it = batch.find(name);
  check(it != batch.end(), "batch: a batch needs arrays 'inputs' and 'targets' (no '" + name + "')");
  const Array& a = it->second;
  check(!a.shape.empty() && a.shape.size() <= static_cast<size_t>(Shape::kMaxDims),
        "batch: '" + name + "' has " + std::to_string(a.shape.size()) + " dimensions (1 to 4)");
  int64_t count = 1;
  for (int64_t d : a.shape) {
    check(d > 0, "batch: '" + name + "' has an empty or negative dimension");
    count *= d;
  }
  check(a.bytes.size() == static_cast<size_t>(count) * element_size(a.dtype),
        "batch: '" + name + "' holds " + std::to_string(a.bytes.size()) + " bytes, its shape and dtype need " +
            std::to_string(static_cast<size_t>(count) * element_size(a.dtype)));
  Shape shape;
  switch (a.shape.size()) {
    case 1: shape = Shape{a.shape[0]}; break;
    case 2: shape = Shape{a.shape[0], a.shape[1]}; break;
    case 3: shape = Shape{a.shape[0], a.shape[1], a.shape[2]}; break;
    default: shape = Shape{a.shape[0], a.shape[1], a.shape[2], a.shape[3]}; break;
  }
  Tensor t = Tensor::empty(shape, want, MemCategory::Activations);
  const std::vector<double> values = as_doubles(a, count);
  for (int64_t i = 0; i < count; ++i) {
    const double v = values[static_cast<size_t>(i)];
    if (want == DType::I32) {
      check(v == std::floor(v) && std::fabs(v) <= 2147483647.0,
            "batch: '" + name + "' holds " + std::to_string(v) + ", not a token id (this model takes integers)");
      t.i32()[i] = static_cast<int32_t>(v);
    } else {
      t.f32()[i] = static_cast<float>(v);
    }
  }
  return t;
}

Array host_array(const Tensor& t) {
  Array a;
  a.dtype = "F32";
  for (int d = 0; d < t.ndim(); ++d) a.shape.push_back(t.dim(d));
  a.bytes.resize(static_cast<size_t>(t.numel()) * sizeof(float));
  float* out = reinterpret_cast<float*>(a.bytes.data());
  if (t.dtype() == DType::F32) std::memcpy(out, t.f32(), a.bytes.size());
  else half_to_float(t.u16(), t.dtype(), out, t.numel());
  return a;
}

}  // namespace

nlohmann::json plan(const nlohmann::json& spec) {
  check_library_process();
  RunSpec s = spec_from_settings(spec, Command::Plan);
  return plan_run(s, /*print=*/false);
}

nlohmann::json train(const nlohmann::json& spec, const StepCallback& on_step) {
  check_library_process();
  RunSpec s = spec_from_settings(spec, Command::Train);
  return train_run(s, on_step);
}

std::string generate(const nlohmann::json& spec, const std::function<void(const std::string&)>& on_text) {
  check_library_process();
  RunSpec s = spec_from_settings(spec, Command::Generate);
  return generate_run(s, on_text);
}

std::vector<int32_t> tokenize(const std::string& tokenizer, const std::string& text) {
  if (tokenizer.empty()) return byte_tokens(text);
  ModelSpec model;
  model.tokenizer = tokenizer;
  std::vector<int32_t> ids;
  model_tokenizer(model)->encode_append(text, ids);
  return ids;
}

Gradients grad(const nlohmann::json& spec, const std::map<std::string, Array>& batch) {
  check_library_process();
  RunSpec s = spec_from_settings(spec, Command::Grad);
  Gradients out;
  grad_run(
      s,
      [&](const Model& model) {
        return Batch{batch_tensor(batch, "inputs", model.input_dtype()), batch_tensor(batch, "targets", model.target_dtype())};
      },
      [&](double loss, const std::vector<std::pair<std::string, Tensor>>& grads) {
        out.loss = loss;
        for (const auto& [name, tensor] : grads) out.tensors[name] = host_array(tensor);
      });
  return out;
}

}  // namespace frugal
