// What packing costs the fused attention kernel (issue 34): E examples of L tokens packed into one
// row of E x L (positions restarting at each example, kernels/flash_attention.h) against the same
// examples as E rows of L tokens, forward + backward, alternating within each round. Prints the
// median of each and packed / separate.
//
//   packed_attention [--examples 8] [--length 128] [--heads 12] [--head-dim 64] [--tile 64]
//                    [--rounds 9] [--threads N]
// bench/packed_attention.sh runs it at GPT-2 small's head sizes (docs/BENCHMARKS.md "Packing").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/threading.h"
#include "kernels/flash_attention.h"

using namespace frugal;

namespace {

struct Options {
  int64_t examples = 8, length = 128, H = 12, hd = 64, tile = kFlashDefaultTile, rounds = 9;
  int threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--examples") o.examples = std::stoll(v);
    else if (a == "--length") o.length = std::stoll(v);
    else if (a == "--heads") o.H = std::stoll(v);
    else if (a == "--head-dim") o.hd = std::stoll(v);
    else if (a == "--tile") o.tile = std::stoll(v);
    else if (a == "--rounds") o.rounds = std::stoll(v);
    else if (a == "--threads") o.threads = std::stoi(v);
  }
  return o;
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.threads > 0) set_num_threads(o.threads);
  const int64_t D = o.H * o.hd, N = o.examples * o.length;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> qkv(static_cast<size_t>(N * 3 * D)), dy(static_cast<size_t>(N * D));
  for (float& x : qkv) x = normal(rng);
  for (float& x : dy) x = normal(rng);
  std::vector<float> y(dy.size()), dqkv(qkv.size()), lse(static_cast<size_t>(N * o.H));
  std::vector<int32_t> positions(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) positions[static_cast<size_t>(i)] = static_cast<int32_t>(i % o.length);
  const int64_t scratch_floats = std::max(flash_attention_forward_scratch(N, o.hd, o.tile),
                                          flash_attention_backward_scratch(N, o.hd, o.tile));
  std::vector<float> scratch(static_cast<size_t>(scratch_floats * num_threads()));
  // rows x T: one packed row of N, or `examples` rows of `length` (the same memory, read the same way).
  auto pass = [&](int64_t rows, int64_t T, const int32_t* pos) {
    const double start = seconds();
    flash_attention_forward(DType::F32, qkv.data(), y.data(), lse.data(), rows, T, D, o.H, o.tile, scratch.data(),
                            nullptr, pos);
    flash_attention_backward(DType::F32, qkv.data(), y.data(), lse.data(), dy.data(), dqkv.data(), rows, T, D, o.H,
                             o.tile, scratch.data(), nullptr, pos);
    return seconds() - start;
  };
  pass(1, N, positions.data());  // warm-up
  std::vector<double> packed, separate;
  for (int64_t r = 0; r < o.rounds; ++r) {
    packed.push_back(pass(1, N, positions.data()));
    separate.push_back(pass(o.examples, o.length, nullptr));
  }
  std::printf("%lld examples of %lld tokens, %lld heads of %lld, tile %lld, %d threads: packed %.2f ms, separate "
              "%.2f ms, packed / separate %.3f\n",
              static_cast<long long>(o.examples), static_cast<long long>(o.length), static_cast<long long>(o.H),
              static_cast<long long>(o.hd), static_cast<long long>(o.tile), num_threads(), 1e3 * median(packed),
              1e3 * median(separate), median(packed) / median(separate));
  return 0;
}
