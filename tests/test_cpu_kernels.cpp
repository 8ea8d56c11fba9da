// The CPU -> kernel rules with the cpuid bits of the two kinds of machine frugal runs on (an Intel
// Sapphire Rapids Xeon, an AMD Zen 3 EPYC), the start-up decisions, and `frugal doctor` as a user
// runs it: its JSON, its warning about a generic kernel, the restart onto the right kernel when
// OpenBLAS picks a generic one, a kernel that fails the SGEMM check being dropped.
#include <cstdlib>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/threading.h"
#include "kernels/convert.h"
#include "kernels/blas_kernel.h"
#include "kernels/gemm.h"
#include "core/tensor_init.h"
#include "fixtures.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "nn/half_storage.h"
#include "train/precision.h"

using namespace frugal;
using namespace frugal::testing;

namespace {

uint32_t bits(std::initializer_list<int> positions) {
  uint32_t v = 0;
  for (int p : positions) v |= 1u << p;
  return v;
}

// cpuid answers of a CPU: vendor, family/model signature (leaf 1 eax), the feature bits, a brand.
CpuidFunction fake_cpuid(const char* vendor, uint32_t signature, uint32_t leaf1_ecx, uint32_t leaf7_ebx,
                         uint32_t leaf7_edx, uint32_t leaf7_1_eax, const std::string& brand) {
  return [=](uint32_t leaf, uint32_t subleaf) {
    CpuidRegisters r;
    switch (leaf) {
      case 0:
        r.eax = 0x20;
        std::memcpy(&r.ebx, vendor, 4);
        std::memcpy(&r.edx, vendor + 4, 4);
        std::memcpy(&r.ecx, vendor + 8, 4);
        break;
      case 1:
        r.eax = signature;
        r.ecx = leaf1_ecx;
        break;
      case 7:
        if (subleaf == 0) {
          r.eax = 1;
          r.ebx = leaf7_ebx;
          r.edx = leaf7_edx;
        } else {
          r.eax = leaf7_1_eax;
        }
        break;
      case 0x80000000: r.eax = 0x80000008; break;
      case 0x80000002: case 0x80000003: case 0x80000004: {
        char part[16] = {};
        const size_t at = 16 * (leaf - 0x80000002);
        if (at < brand.size()) std::memcpy(part, brand.data() + at, std::min<size_t>(16, brand.size() - at));
        std::memcpy(&r, part, 16);
        break;
      }
      default: break;
    }
    return r;
  };
}

constexpr uint64_t kXcr0Avx512Amx = 0x602e7;  // x87, SSE, AVX, opmask, ZMM, AMX tiles
constexpr uint64_t kXcr0Avx = 0x7;            // an OS that saves no AVX-512 state

// Sapphire Rapids (family 6, model 0x8f): AVX-512 with BF16 and FP16, AMX.
CpuFeatures sapphire_rapids(uint64_t xcr0 = kXcr0Avx512Amx) {
  return cpu_features_from(fake_cpuid("GenuineIntel", (8u << 16) | (6u << 8) | (0xfu << 4), bits({12, 27, 28, 29}),
                                      bits({5, 16, 17, 30, 31}), bits({22, 23, 24}), bits({5}),
                                      "Intel(R) Xeon(R) Platinum 8488C"),
                           xcr0);
}

// Zen 3 (family 0x19 = 0xf + 0xa, model 1): AVX2 and FMA, no AVX-512.
CpuFeatures zen3() {
  return cpu_features_from(fake_cpuid("AuthenticAMD", (0xau << 20) | (0xfu << 8) | (1u << 4), bits({12, 27, 28, 29}),
                                      bits({5}), 0, 0, "AMD EPYC 7763 64-Core Processor"),
                           kXcr0Avx);
}

// Zen 5 (family 0x1a = 0xf + 0xb, model 2): AVX-512 with BF16, no AMX.
CpuFeatures zen5() {
  return cpu_features_from(fake_cpuid("AuthenticAMD", (0xbu << 20) | (0xfu << 8) | (2u << 4), bits({12, 27, 28, 29}),
                                      bits({5, 16, 17, 30, 31}), 0, bits({5}), "AMD EPYC 9655 96-Core Processor"),
                           kXcr0Avx512Amx & ~uint64_t{0x60000});
}

}  // namespace

TEST(CpuKernels, FeaturesFromCpuidBits) {
  const CpuFeatures spr = sapphire_rapids();
  EXPECT_EQ(spr.vendor, "GenuineIntel");
  EXPECT_EQ(spr.model_name, "Intel(R) Xeon(R) Platinum 8488C");
  EXPECT_EQ(spr.family, 6);
  EXPECT_EQ(spr.model, 0x8f);
  EXPECT_TRUE(spr.avx2 && spr.fma && spr.avx512() && spr.avx512_bf16 && spr.avx512_fp16 && spr.amx_bf16);
  const CpuFeatures zen = zen3();
  EXPECT_EQ(zen.vendor, "AuthenticAMD");
  EXPECT_EQ(zen.family, 0x19);
  EXPECT_TRUE(zen.avx2 && zen.fma && zen.f16c);
  EXPECT_FALSE(zen.avx512f || zen.avx512_bf16 || zen.amx_bf16);
  // cpuid says AVX-512, but the OS does not save its registers: not usable.
  const CpuFeatures no_os_support = sapphire_rapids(kXcr0Avx);
  EXPECT_TRUE(no_os_support.avx2);
  EXPECT_FALSE(no_os_support.avx512f || no_os_support.avx512_bf16 || no_os_support.amx_bf16);
}

TEST(CpuKernels, FeatureToKernelRule) {
  EXPECT_EQ(best_openblas_core(sapphire_rapids()), "Cooperlake");
  EXPECT_EQ(best_openblas_core(zen3()), "Zen");
  EXPECT_EQ(best_openblas_core(sapphire_rapids(kXcr0Avx)), "Haswell");
  EXPECT_EQ(best_openblas_core(CpuFeatures{}), "Prescott");
  EXPECT_EQ(fallback_openblas_core("Cooperlake"), "Haswell");
  EXPECT_EQ(fallback_openblas_core("Zen"), "Sandybridge");
  EXPECT_EQ(fallback_openblas_core("Prescott"), "");
  EXPECT_EQ(openblas_core_name("skylakex"), "SkylakeX");  // OpenBLAS compares case-insensitively
  EXPECT_EQ(openblas_core_name("Bogus"), "");
}

TEST(CpuKernels, Bf16UnitsRule) {
  EXPECT_TRUE(bf16_units_pay_off(sapphire_rapids()));  // AMX
  // The same Xeon under a hypervisor that hides AMX (no tile state in XCR0): AVX512_BF16 alone is
  // no faster than fp32 FMAs there.
  const CpuFeatures without_amx = sapphire_rapids(kXcr0Avx512Amx & ~uint64_t{0x60000});
  EXPECT_TRUE(without_amx.avx512_bf16);
  EXPECT_FALSE(without_amx.amx_bf16);
  EXPECT_FALSE(bf16_units_pay_off(without_amx));
  EXPECT_TRUE(bf16_units_pay_off(zen5()));
  EXPECT_FALSE(bf16_units_pay_off(zen3()));
}

TEST(CpuKernels, StartupPlansTheKernel) {
  // Debian's OpenBLAS 0.3.21 falls back to Prescott on Sapphire Rapids: restart with Cooperlake.
  EXPECT_EQ(plan_blas_kernel(sapphire_rapids(), "Prescott", "", false, true).restart_with, "Cooperlake");
  EXPECT_EQ(plan_blas_kernel(sapphire_rapids(), "Cooperlake", "", false, true).restart_with, "");
  EXPECT_EQ(plan_blas_kernel(zen3(), "Zen", "", false, true).restart_with, "");
  EXPECT_EQ(plan_blas_kernel(zen3(), "Prescott", "", false, true).restart_with, "Zen");
  // The user's own OPENBLAS_CORETYPE is respected, but must name a kernel.
  EXPECT_EQ(plan_blas_kernel(sapphire_rapids(), "Prescott", "Prescott", false, true).restart_with, "");
  try {
    plan_blas_kernel(sapphire_rapids(), "Prescott", "Bogus", false, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("OPENBLAS_CORETYPE=Bogus names no OpenBLAS kernel"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("Cooperlake"), std::string::npos) << "names the right one";
  }
  // A kernel that computes wrong results is dropped for the next simpler one, with a warning.
  const KernelPlan wrong = plan_blas_kernel(sapphire_rapids(), "Cooperlake", "", false, false);
  EXPECT_EQ(wrong.restart_with, "Haswell");
  EXPECT_NE(wrong.warning.find("computes wrong results"), std::string::npos);
  // The fallback frugal chose is kept, not upgraded again (that would loop).
  EXPECT_EQ(plan_blas_kernel(sapphire_rapids(), "Haswell", "", true, true).restart_with, "");
  EXPECT_THROW(plan_blas_kernel(zen3(), "Prescott", "", false, false), Error);  // nothing simpler left
}

TEST(CpuKernels, WaitPolicy) {
  EXPECT_EQ(plan_wait_policy(1.0, 2), "PASSIVE");  // another process busy: sleep at barriers
  EXPECT_EQ(plan_wait_policy(0.1, 2), "");
  EXPECT_EQ(plan_wait_policy(1.5, 1), "");  // one thread never waits at a barrier
}

TEST(CpuKernels, RunningKernelComputesCorrectly) {
  EXPECT_FALSE(running_openblas_core().empty());
  EXPECT_TRUE(openblas_sgemm_is_correct());
}

TEST(CpuKernels, HalfGemmMatchesWidenedSgemm) {
  if (!has_half_gemm(DType::BF16)) GTEST_SKIP() << "no bf16 GEMM units on this CPU (" << this_cpu().model_name << ")";
  // Values exact in bf16 and products summed exactly in fp32: both paths give the same numbers.
  const int64_t M = 33, N = 20, K = 47;
  std::vector<float> a(M * K), b(K * N), c_ref(M * N, 1.0f), c(M * N, 1.0f);
  std::vector<uint16_t> ah(M * K), bh(K * N);
  for (int64_t i = 0; i < M * K; ++i) a[i] = static_cast<float>(i % 9) - 4.0f;
  for (int64_t i = 0; i < K * N; ++i) b[i] = 0.25f * static_cast<float>(i % 5);
  float_to_half(a.data(), DType::BF16, ah.data(), M * K);
  float_to_half(b.data(), DType::BF16, bh.data(), K * N);
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      std::vector<float> at(a), bt(b);
      std::vector<uint16_t> aht(ah), bht(bh);
      if (ta)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t k = 0; k < K; ++k) at[k * M + m] = a[m * K + k], aht[k * M + m] = ah[m * K + k];
      if (tb)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < N; ++n) bt[n * K + k] = b[k * N + n], bht[n * K + k] = bh[k * N + n];
      gemm(ta, tb, M, N, K, 0.5f, at.data(), ta ? M : K, bt.data(), tb ? K : N, 1.0f, c_ref.data(), N);
      gemm_half(DType::BF16, ta, tb, M, N, K, 0.5f, aht.data(), ta ? M : K, bht.data(), tb ? K : N, 1.0f, c.data(), N);
      EXPECT_EQ(c, c_ref) << "trans_a " << ta << " trans_b " << tb;
    }
}

// On bf16 units a GPT block's products take their half inputs as they are: nothing as large as an
// activation or a weight matrix is widened to fp32 in its forward and backward -- only bias and gain
// vectors and LoRA's rank-r factors -- with and without LoRA adapters. Under fp16 (oneDNN 2.6 has
// no fp16 matmul) the same block widens its activations, which shows the count works.
TEST(CpuKernels, Bf16BlockWidensNoActivationOrWeightMatrix) {
  if (!has_half_gemm(DType::BF16)) GTEST_SKIP() << "no bf16 GEMM units on this CPU (" << this_cpu().model_name << ")";
  const GptConfig c{.n_layer = 2, .n_head = 4, .n_embd = 64, .n_positions = 32, .vocab_size = 23};
  const int64_t B = 4, T = c.n_positions, D = c.n_embd;
  for (const bool lora : {false, true})
    for (const DType precision : {DType::BF16, DType::F16}) {
      SCOPED_TRACE(std::string(lora ? "LoRA " : "") + dtype_name(precision));
      Gpt model(c);
      model.init_weights(7);
      if (lora) {
        LoraSettings s;
        s.config.rank = 2;
        s.targets = {"c_attn", "c_proj", "c_fc"};
        apply_lora(model, s, 8);
      }
      MasterWeights compute_copy(model.params(), precision, true);
      RunContext rc;
      rc.precision = precision;
      rc = pass_context(rc);
      Tensor x32 = Tensor::empty({B, T, D}, DType::F32, MemCategory::Activations);
      init_normal(x32, 9, 1, 1.0f);
      const Tensor x = round_to(x32, precision, MemCategory::Activations);
      Tensor dy = Tensor::empty({B, T, D}, DType::F32, MemCategory::Workspace);
      init_normal(dy, 10, 1, 1e-2f);
      round_in_place(dy, precision);
      Layer& block = *model.blocks().at(1);
      const int64_t before = widened_values();
      Saved saved;
      forward_child(block, x, saved, rc);
      backward_child(block, dy, saved, rc);
      const int64_t widened = widened_values() - before;
      if (precision == DType::BF16) {
        // LayerNorm gains and biases (15 D values) and, with LoRA, its rank-2 factors (32 D): all
        // together fewer values than the smallest weight matrix (D x D) or one activation. (Counts,
        // exact: no tolerance.)
        EXPECT_LE(widened, (lora ? 47 : 15) * D);
        EXPECT_LT(widened, D * D);
        EXPECT_LT(widened, B * T * D);
      } else {
        EXPECT_GE(widened, B * T * D) << "fp16 widens its activations (no fp16 GEMM)";
      }
    }
}

TEST(CpuKernels, DoctorReportsKernelsRatesAndPolicy) {
  const CliResult r = run_frugal("doctor --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"cpu", "threads", "omp_wait_policy", "openblas", "gemm", "measured", "busy_cores", "warnings"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["cpu"]["model"], this_cpu().model_name);
  // The kernel frugal's start-up leaves running: this test process's own (OpenBLAS's pick, or the
  // environment's), replaced where OpenBLAS fell back to a generic one (as on Sapphire Rapids).
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const KernelPlan plan = plan_blas_kernel(this_cpu(), running_openblas_core(), user ? user : "", false, true);
  EXPECT_EQ(j["openblas"]["kernel"], plan.restart_with.empty() ? running_openblas_core() : plan.restart_with);
  for (const char* dtype : {"f32", "bf16", "f16"}) EXPECT_FALSE(j["gemm"][dtype].get<std::string>().empty()) << dtype;
  // Physical measures: floors that say a rate was measured (not 0, not garbage), not performance
  // claims. The slowest setting here, OpenBLAS's generic Prescott kernel on one thread, measures 17
  // GFLOP/s fp32 and 6 GB/s; a bf16 GEMM without bf16 units runs on widened copies at fp32's rate.
  EXPECT_GT(j["measured"]["gemm_f32_gflops"].get<double>(), 0.5);
  EXPECT_GT(j["measured"]["gemm_bf16_gflops"].get<double>(), 0.1);
  EXPECT_GT(j["measured"]["bandwidth_gbs"].get<double>(), 0.1);
}

TEST(CpuKernels, DoctorWarnsAboutAGenericKernel) {
  if (openblas_core_isa(best_openblas_core(this_cpu())) == 0) GTEST_SKIP() << "this CPU has nothing better than SSE";
  const CliResult r = run_frugal("doctor --json", "OPENBLAS_CORETYPE=Prescott");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["openblas"]["kernel"], "Prescott");  // the user's choice is respected ...
  bool warned = false;                              // ... and warned about
  for (const auto& w : j["warnings"]) warned = warned || w.get<std::string>().find("generic Prescott kernel") != std::string::npos;
  EXPECT_TRUE(warned) << r.out;
}

TEST(CpuKernels, AGenericKernelPickedByOpenBlasIsReplaced) {
  // As if OpenBLAS had picked Prescott by itself (FRUGAL_TEST_OPENBLAS_CORE, test only): frugal
  // restarts on the kernel for this CPU's features.
  const std::string best = best_openblas_core(this_cpu());
  if (openblas_core_isa(best) == 0) GTEST_SKIP() << "this CPU has nothing better than SSE";
  const CliResult r = run_frugal("doctor --json", "-u OPENBLAS_CORETYPE FRUGAL_TEST_OPENBLAS_CORE=Prescott");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["openblas"]["kernel"], best);
  EXPECT_EQ(j["openblas"]["chosen_by"], "frugal (OpenBLAS had picked Prescott)");
}

TEST(CpuKernels, AKernelFailingTheCheckIsDropped) {
  const std::string best = best_openblas_core(this_cpu()), fallback = fallback_openblas_core(best);
  if (fallback.empty()) GTEST_SKIP() << "this CPU has nothing to fall back from";
  const CliResult r =
      run_frugal("doctor --json", "OPENBLAS_CORETYPE=" + best + " FRUGAL_TEST_WRONG_KERNEL=" + best);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("OpenBLAS's " + best + " kernel computes wrong results on this CPU"), std::string::npos)
      << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["openblas"]["kernel"], fallback);
}

TEST(CpuKernels, BadKernelAndThreadSettingsAreRefused) {
  expect_one_line_error(run_frugal("doctor", "OPENBLAS_CORETYPE=Bogus"), "OPENBLAS_CORETYPE=Bogus names no OpenBLAS kernel");
  expect_one_line_error(run_frugal("plan --threads 60000"), "--threads 60000 exceeds the");
}
