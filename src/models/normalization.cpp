#include "models/normalization.h"

#include "core/error.h"
#include "nn/groupnorm.h"
#include "nn/layernorm.h"

namespace frugal {

void validate_norm(const std::string& norm) {
  check(norm == "none" || norm == "batch" || norm == "group" || norm == "layer",
        "unknown normalisation '" + norm + "' (expected none, batch, group or layer)");
}

void init_norm_state(const std::vector<Param*>& state) {
  for (Param* p : state) {
    const std::string& n = p->name;
    if (n.find(".bn.") == std::string::npos && n.find(".norm.") == std::string::npos) continue;
    if (n.ends_with(".weight") || n.ends_with(".running_var")) p->value.fill(1.0f);
    else if (n.ends_with(".bias") || n.ends_with(".running_mean")) p->value.fill_zero();
  }
}

std::unique_ptr<Layer> make_norm_layer(const std::string& norm, const std::string& prefix, int64_t channels,
                                       bool images, std::vector<BatchNorm*>& batchnorms) {
  validate_norm(norm);
  if (norm == "none") return nullptr;
  if (norm == "batch") {
    auto bn = std::make_unique<BatchNorm>(prefix + ".bn", channels);
    batchnorms.push_back(bn.get());
    return bn;
  }
  if (norm == "layer" && !images) return std::make_unique<LayerNorm>(prefix + ".norm", channels, 1e-5f);
  return std::make_unique<GroupNorm>(prefix + ".norm", norm == "group" ? kNormGroups : 1, channels);
}

}  // namespace frugal
