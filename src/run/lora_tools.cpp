// `frugal lora merge | extract`: fold a PEFT adapter into a model, or extract a low-rank adapter
// from the difference between a fine-tuned model and its base (truncated SVD).
#include <cmath>
#include <cstdio>

#include "run/lora_tools.h"
#include "run/run_spec.h"
#include "core/error.h"
#include "core/threading.h"
#include "kernels/convert.h"
#include "linalg/svd.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "text/tokenizer.h"

namespace frugal {

void lora_merge(const LoraToolSpec& f) {
  apply_threads(f.threads);
  prepare_output_dir(f.out_dir, "--out");
  const DType out_type = parse_precision(f.dtype, "--dtype");
  std::unique_ptr<Model> model = load_model(f.model_dir);
  const LoraSettings settings = load_adapter(*model, f.adapter_dir);
  const size_t adapters = lora_adapters(*model).size();
  // An adapter trained on a quantised base learnt the difference from the *dequantised* weights:
  // those are what it is merged into (W' = deq(q(W)) + scale B A).
  if (const std::optional<QuantFormat> format = quantized_base_format(f.base_precision)) {
    dequantize_adapted_weights(*model, *format);
  } else {
    check(f.base_precision == "fp32", "--base-precision " + f.base_precision + ": merging takes the base as stored "
                                      "in the model directory (fp32), or as nf4/int8 quantised it");
  }
  merge_lora(*model);
  if (out_type != DType::F32)
    for (Param* p : model->state()) p->value = round_to(p->value, out_type, MemCategory::Params);
  save_model(*model, f.out_dir);
  if (tokenizer_present(f.model_dir)) copy_tokenizer_files(f.model_dir, f.out_dir);  // keeps its tokenizer
  std::printf("merged %zu LoRA adapters (r = %lld, alpha = %g) into %s\n", adapters,
              static_cast<long long>(settings.config.rank), settings.config.alpha, f.out_dir.c_str());
}

void lora_extract(const LoraToolSpec& f) {
  apply_threads(f.threads);
  prepare_output_dir(f.out_dir, "--out");
  std::unique_ptr<Model> base = load_model(f.base_dir);
  std::unique_ptr<Model> tuned = load_model(f.tuned_dir);
  check(base->config() == tuned->config(), "--base and --tuned hold different architectures (config.json differs)");
  LoraSettings settings;
  settings.config.rank = f.rank;
  settings.config.alpha = f.alpha > 0 ? f.alpha : static_cast<double>(f.rank);
  settings.targets = parse_lora_targets(f.targets.empty() ? (base->arch() == "gpt" ? "c_attn,c_proj,c_fc" : "layers")
                                                          : f.targets);
  if (f.targets.empty() && base->arch() != "gpt") {
    settings.targets.clear();
    for (const auto& [name, linear] : base->adaptable_linears()) settings.targets.push_back(name);
  }
  const auto tuned_linears = tuned->adaptable_linears();
  apply_lora(*base, settings, 0);
  const float scale = static_cast<float>(settings.config.scale());
  std::printf("%-28s %12s %16s\n", "module", "rel. error", "energy captured");
  const auto base_linears = base->adaptable_linears();
  for (size_t m = 0; m < base_linears.size(); ++m) {
    Linear& b = *base_linears[m].second;
    if (!b.lora()) continue;
    const Tensor& w0 = b.weight().value;
    const Tensor& w1 = tuned_linears[m].second->weight().value;
    const bool in_out = b.layout() == WeightLayout::InOut;
    const int64_t out = in_out ? w0.dim(1) : w0.dim(0), in = in_out ? w0.dim(0) : w0.dim(1);
    // delta in PEFT's (out, in) orientation: B A approximates it / scale
    std::vector<float> delta(static_cast<size_t>(out * in));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        const int64_t k = in_out ? i * out + o : o * in + i;
        delta[o * in + i] = w1.f32()[k] - w0.f32()[k];
      }
    std::vector<double> all;
    const TruncatedSvd svd = truncated_svd(delta.data(), out, in, f.rank, &all);
    LoraAdapter& adapter = *b.lora();
    for (int64_t r = 0; r < f.rank; ++r) {
      for (int64_t i = 0; i < in; ++i) adapter.a().value.f32()[r * in + i] = svd.vt[r * in + i];
      for (int64_t o = 0; o < out; ++o) adapter.b().value.f32()[o * f.rank + r] = svd.u[o * f.rank + r] * svd.s[r] / scale;
    }
    double total = 0, kept = 0;
    for (size_t k = 0; k < all.size(); ++k) {
      total += all[k] * all[k];
      if (static_cast<int64_t>(k) < f.rank) kept += all[k] * all[k];
    }
    const double rel_error = total > 0 ? std::sqrt(std::max(0.0, total - kept) / total) : 0.0;
    std::printf("%-28s %12.3e %15.2f%%\n", base_linears[m].first.c_str(), rel_error,
                total > 0 ? 100.0 * kept / total : 100.0);
  }
  save_adapter(*base, settings, f.out_dir);
  std::printf("wrote a rank-%lld PEFT adapter to %s\n", static_cast<long long>(f.rank), f.out_dir.c_str());
}

}  // namespace frugal
