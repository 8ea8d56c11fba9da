// The fused LM head + cross-entropy (nn/lm_head.h) against the unfused kernels it replaced (a tied
// Linear's logits, the loss over all (N, V) logits, the Linear's backward), and the fused head at
// several chunk sizes, on one machine in one run, alternating. Prints medians of forward + backward
// wall time per configuration and the scratch each needs.
//
//   build/lm_head_kernels [ROWS] [DIM] [VOCAB] [ROUNDS] [CHUNKS...]   (default 1024 768 50257 3 64 128 256 512 1024)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/tensor_init.h"
#include "kernels/cross_entropy.h"
#include "nn/linear.h"
#include "nn/lm_head.h"
#include "train/loss.h"

using namespace frugal;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double unfused(Param& wte, const Tensor& h, const Tensor& targets, double normalizer) {
  const auto t0 = std::chrono::steady_clock::now();
  Linear head(&wte, h.dim(-1), wte.value.dim(0), WeightLayout::OutIn);
  Saved saved;
  const Tensor logits = head.forward(h, saved, RunContext{});
  Tensor dlogits;
  loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, dlogits);
  head.backward(dlogits, saved, RunContext{});
  return seconds_since(t0);
}

double fused(Param& wte, const Tensor& h, const Tensor& targets, double normalizer, int64_t chunk) {
  const auto t0 = std::chrono::steady_clock::now();
  TiedLmHead head(&wte, h.dim(-1), wte.value.dim(0));
  head.set_chunk_rows(chunk);
  Tensor dh;
  head.loss_forward_backward(h, targets, normalizer, RunContext{}, dh);
  return seconds_since(t0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 1024, D = argc > 2 ? std::atoll(argv[2]) : 768;
  const int64_t V = argc > 3 ? std::atoll(argv[3]) : 50257;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 3;
  std::vector<int64_t> chunks;
  for (int i = 5; i < argc; ++i) chunks.push_back(std::atoll(argv[i]));
  if (chunks.empty()) chunks = {64, 128, 256, 512, 1024};
  Param wte{"wte.weight", Tensor::empty({V, D}, DType::F32, MemCategory::Params), {}, true};
  init_normal(wte.value, 1, 1, 0.02f);
  Tensor h = Tensor::empty({N, D}, DType::F32, MemCategory::Activations);
  init_normal(h, 1, 2, 1.0f);
  Tensor targets = Tensor::empty({N}, DType::I32, MemCategory::Activations);
  for (int64_t i = 0; i < N; ++i) targets.i32()[i] = static_cast<int32_t>((i * 7919) % V);
  std::map<std::string, std::vector<double>> times;
  for (int r = 0; r < rounds; ++r) {
    times["unfused"].push_back(unfused(wte, h, targets, static_cast<double>(N)));
    for (int64_t c : chunks) times["fused chunk " + std::to_string(c)].push_back(fused(wte, h, targets, double(N), c));
  }
  std::printf("rows %lld, dim %lld, vocab %lld, %d threads, %d rounds (median forward + backward)\n",
              static_cast<long long>(N), static_cast<long long>(D), static_cast<long long>(V), omp_get_max_threads(), rounds);
  const double base = median(times["unfused"]);
  std::printf("| head | time | / unfused | logits scratch |\n|---|---:|---:|---:|\n");
  std::printf("| unfused | %.3f s | 1.00 | %.1f MiB x 2 |\n", base, double(N) * V * 4 / (1 << 20));
  for (int64_t c : chunks) {
    const double t = median(times["fused chunk " + std::to_string(c)]);
    std::printf("| fused, chunk %lld | %.3f s | %.2f | %.1f MiB |\n", static_cast<long long>(c), t, t / base,
                double(std::min(c, N)) * V * 4 / (1 << 20));
  }
  return 0;
}
