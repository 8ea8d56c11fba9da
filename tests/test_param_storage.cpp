// Weights born in their storage type (models/param_storage.h, issue 15): a half model never
// exists in fp32 as a whole. The ledger's Params peak is the half bytes exactly, and the values are
// bit for bit those of an fp32 initialisation rounded afterwards.
#include <gtest/gtest.h>

#include <cstring>

#include "core/ledger.h"
#include "fixtures.h"
#include "kernels/convert.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/param_storage.h"
#include "train/precision.h"

using namespace frugal;

namespace {

GptConfig small_gpt() {
  GptConfig c = frugal::testing::tiny_gpt_config();
  c.vocab_size = 300;
  return c;
}

int64_t parameter_numel(const Model& m) {
  int64_t n = 0;
  for (Param* p : m.params()) n += p->value.numel();
  return n;
}

// Every tensor of `born` equals the fp32 model's value rounded to its type, bit for bit.
void expect_rounded_copies(const Model& born, const Model& fp32) {
  const auto a = born.params(), b = fp32.params();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i]->name);
    const Tensor want = a[i]->value.dtype() == DType::F32 ? b[i]->value
                                                           : round_to(b[i]->value, a[i]->value.dtype(), MemCategory::Workspace);
    ASSERT_EQ(a[i]->value.dtype(), want.dtype());
    EXPECT_EQ(std::memcmp(a[i]->value.raw(), want.raw(), want.nbytes()), 0);
  }
}

}  // namespace

// LoRA on a bf16 base under --precision bf16: every base tensor is born bf16; the Params peak is
// two bytes per parameter, nothing more.
TEST(ParamStorage, FrozenBaseIsBornHalf) {
  Gpt fp32(small_gpt());
  fp32.init_weights(3);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  const auto model = build_in_storage([] { return std::make_unique<Gpt>(small_gpt()); }, [](const Model& m) {
    ParamStorage s;
    s.precision = DType::BF16;
    s.frozen_base = true;
    s.base = DType::F16;  // adapted weights keep their own half type
    s.adapted = adapted_weight_names(m, {"c_attn"});
    return s;
  });
  model->init_weights(3);
  EXPECT_EQ(ledger.peak()[MemCategory::Params], static_cast<size_t>(2 * parameter_numel(*model)));
  EXPECT_EQ(model->params()[0]->value.dtype(), DType::BF16);  // wte
  EXPECT_EQ(model->state().size(), fp32.state().size());
  for (Param* p : model->params())
    EXPECT_EQ(p->value.dtype(), p->name.find("c_attn.weight") != std::string::npos ? DType::F16 : DType::BF16) << p->name;
  expect_rounded_copies(*model, fp32);
}

// Full fine-tuning under bf16 with masters: trainable tensors are born fp32 as the masters, which
// MasterWeights adopts; the compute copies are the only Params bytes.
TEST(ParamStorage, TrainableTensorsAreBornAsMasters) {
  Gpt fp32(small_gpt());
  fp32.init_weights(4);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  const auto model = build_in_storage([] { return std::make_unique<Gpt>(small_gpt()); }, [](const Model&) {
    ParamStorage s;
    s.precision = DType::BF16;
    return s;
  });
  model->init_weights(4);
  const int64_t n = parameter_numel(*model);
  EXPECT_EQ(ledger.live()[MemCategory::Params], 0u);
  MasterWeights masters(model->params(), DType::BF16, /*keep_master=*/true);
  EXPECT_EQ(ledger.peak()[MemCategory::Params], static_cast<size_t>(2 * n));
  EXPECT_EQ(ledger.peak()[MemCategory::MasterParams], static_cast<size_t>(4 * n));  // adopted, never copied
  expect_rounded_copies(*model, fp32);
  masters.restore_fp32();
  expect_rounded_copies(*model, fp32);  // the masters kept the fp32 draw exactly
}

// An all-fp32 storage builds the model as before (constructor values kept).
TEST(ParamStorage, Fp32StorageBuildsAsUsual) {
  const auto model = build_in_storage([] { return std::make_unique<Gpt>(small_gpt()); }, [](const Model&) { return ParamStorage{}; });
  for (Param* p : model->params()) EXPECT_EQ(p->value.dtype(), DType::F32);
}
