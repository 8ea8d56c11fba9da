// Weights born in their storage type (models/param_storage.h, issue 15): a half model never
// exists in fp32 as a whole. The ledger's Params peak is the half bytes exactly, and the values are
// bit for bit those of an fp32 initialisation rounded afterwards.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "core/ledger.h"
#include "fixtures.h"
#include "kernels/convert.h"
#include "models/cnn.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/mlp.h"
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

namespace {

// Every model the CLI builds, with each kind of normalisation (gains, shifts and running statistics).
std::vector<std::function<std::unique_ptr<Model>()>> every_architecture() {
  const auto mlp = [](const std::string& norm) {
    MlpConfig c;
    c.in_features = 5, c.hidden = 8, c.out_features = 3, c.n_layers = 3, c.norm = norm, c.classification = true;
    return [c] { return std::unique_ptr<Model>(std::make_unique<Mlp>(c)); };
  };
  const auto cnn = [](const std::string& norm) {
    CnnConfig c;
    c.channels = 4, c.n_blocks = 1, c.classes = 3, c.norm = norm;
    return [c] { return std::unique_ptr<Model>(std::make_unique<Cnn>(c)); };
  };
  return {[] { return std::unique_ptr<Model>(std::make_unique<Gpt>(small_gpt())); },
          [] { return std::unique_ptr<Model>(std::make_unique<LinearRegression>(4, 2)); },
          mlp("batch"), mlp("layer"), mlp("group"), cnn("batch"), cnn("layer"), cnn("group")};
}

}  // namespace

// The contract that lets a model be built with shapes only: init_weights writes every tensor of
// state(), buffers included, whatever was there before.
TEST(ParamStorage, InitWeightsWritesEveryTensor) {
  for (const auto& construct : every_architecture()) {
    const auto fresh = construct(), scribbled = construct();
    SCOPED_TRACE(fresh->arch() + " " + fresh->config().dump());
    fresh->init_weights(9);
    for (Param* p : scribbled->state()) p->value.fill(7.0f);
    scribbled->init_weights(9);
    const auto a = scribbled->state(), b = fresh->state();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(std::memcmp(a[i]->value.raw(), b[i]->value.raw(), b[i]->value.nbytes()), 0) << a[i]->name;
  }
}

// Every architecture is born half under bf16 (with and without master weights): the values are
// those of an fp32 initialisation rounded, and no fp32 copy of a half tensor ever exists.
TEST(ParamStorage, EveryArchitectureIsBornHalf) {
  for (const auto& construct : every_architecture()) {
    for (const bool masters : {true, false}) {
      const auto fp32 = construct();
      fp32->init_weights(5);
      SCOPED_TRACE(fp32->arch() + " " + fp32->config().dump() + (masters ? " masters" : " no masters"));
      MemoryLedger ledger;
      LedgerScope scope(ledger);
      const auto model = build_in_storage(construct, [&](const Model&) {
        ParamStorage s;
        s.precision = DType::BF16;
        s.master_weights = masters;
        return s;
      });
      model->init_weights(5);
      size_t buffer_bytes = 0;
      for (size_t i = model->params().size(); i < model->state().size(); ++i) buffer_bytes += model->state()[i]->value.nbytes();
      EXPECT_EQ(ledger.peak()[MemCategory::Params], masters ? buffer_bytes : buffer_bytes + 2 * parameter_numel(*model));
      expect_rounded_copies(*model, *fp32);
      for (size_t i = model->params().size(); i < model->state().size(); ++i) {  // running statistics: fp32, equal
        const Tensor& born = model->state()[i]->value;
        EXPECT_EQ(born.dtype(), DType::F32);
        EXPECT_EQ(std::memcmp(born.raw(), fp32->state()[i]->value.raw(), born.nbytes()), 0);
      }
    }
  }
}
