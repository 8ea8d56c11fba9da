// Forward + backward of the two causal attention kernels, alternating within each round so both see
// the same machine state: the materialising one (kernels/attention.h) and the fused one
// (kernels/flash_attention.h). Prints the median time of each and fused / materialised per T.
//
//   attention_kernels [--batch 4] [--heads 12] [--head-dim 64] [--rounds 7] [--tile 64]
//                     [--dtype f32|bf16|f16] [--threads N] [--cpu-time] T...
// --cpu-time: the process's CPU time instead of wall time, steadier on a machine shared with other
// work (with one thread: with more, OpenMP's spinning at barriers counts too).
// bench/attention_kernels.sh runs it at GPT-2 small's sizes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/threading.h"
#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/flash_attention.h"
#include "kernels/gemm.h"

using namespace frugal;

namespace {

struct Options {
  int64_t B = 4, H = 12, hd = 64, rounds = 7, tile = kFlashDefaultTile;
  int threads = 0;
  bool cpu_time = false;
  DType dtype = DType::F32;
  std::vector<int64_t> lengths;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--batch") o.B = std::stoll(next());
    else if (a == "--heads") o.H = std::stoll(next());
    else if (a == "--head-dim") o.hd = std::stoll(next());
    else if (a == "--rounds") o.rounds = std::stoll(next());
    else if (a == "--tile") o.tile = std::stoll(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--cpu-time") o.cpu_time = true;
    else if (a == "--dtype") {
      const std::string d = next();
      o.dtype = d == "bf16" ? DType::BF16 : d == "f16" ? DType::F16 : DType::F32;
    } else o.lengths.push_back(std::stoll(a));
  }
  return o;
}

double now(bool cpu_time) {
  if (!cpu_time) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds(bool cpu_time, const std::function<void()>& f) {
  const double t0 = now(cpu_time);
  f();
  return now(cpu_time) - t0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The buffers of one T, fp32 and (for a half dtype) their half copies.
struct Buffers {
  std::vector<float> qkv, y, dy, dqkv, att, lse, scratch, fscratch, bscratch, scores, rows;
  std::vector<uint16_t> qkv_h, y_h, dy_h, dqkv_h, att_h, scores_h;
};

Buffers make_buffers(const Options& o, int64_t T) {
  const int64_t D = o.H * o.hd, threads = per_thread(1);
  Buffers b;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  b.qkv.resize(o.B * T * 3 * D);
  b.dy.resize(o.B * T * D);
  for (float& x : b.qkv) x = normal(rng);
  for (float& x : b.dy) x = normal(rng);
  b.y.resize(o.B * T * D);
  b.dqkv.resize(b.qkv.size());
  b.lse.resize(o.B * o.H * T);
  b.fscratch.resize(per_thread(flash_attention_forward_scratch(T, o.hd, o.tile)));
  b.bscratch.resize(per_thread(flash_attention_backward_scratch(T, o.hd, o.tile)));
  const bool half = o.dtype != DType::F32;
  b.att.resize(half ? 0 : o.B * o.H * T * T);
  b.scratch.resize(half ? 0 : threads * T * T);
  if (half) {
    for (auto* v : {&b.qkv_h, &b.dqkv_h}) v->resize(b.qkv.size());
    for (auto* v : {&b.y_h, &b.dy_h}) v->resize(b.dy.size());
    float_to_half(b.qkv.data(), o.dtype, b.qkv_h.data(), static_cast<int64_t>(b.qkv.size()));
    float_to_half(b.dy.data(), o.dtype, b.dy_h.data(), static_cast<int64_t>(b.dy.size()));
    b.att_h.resize(o.B * o.H * T * T);
    b.scores.resize(o.H * T * T);
    b.scores_h.resize(o.H * T * T);
    b.rows.resize(threads * T);
  }
  return b;
}

// Forward then backward of the materialising kernel; returns the two times.
std::pair<double, double> run_materialized(const Options& o, int64_t T, Buffers& b) {
  const int64_t D = o.H * o.hd;
  if (o.dtype == DType::F32) {
    return {seconds(o.cpu_time, [&] { attention_forward(b.qkv.data(), b.y.data(), b.att.data(), o.B, T, D, o.H); }),
            seconds(o.cpu_time, [&] {
              attention_backward(b.qkv.data(), b.att.data(), b.dy.data(), b.dqkv.data(), o.B, T, D, o.H,
                                 b.scratch.data());
            })};
  }
  return {seconds(o.cpu_time,
                  [&] {
                    attention_forward_half(o.dtype, b.qkv_h.data(), b.y_h.data(), b.att_h.data(), b.scores.data(),
                                           o.B, T, D, o.H);
                  }),
          seconds(o.cpu_time, [&] {
            attention_backward_half(o.dtype, b.qkv_h.data(), b.att_h.data(), b.dy_h.data(), b.dqkv_h.data(), o.B, T,
                                    D, o.H, b.scores.data(), b.scores_h.data(), b.rows.data());
          })};
}

// The same for the fused kernel.
std::pair<double, double> run_flash(const Options& o, int64_t T, Buffers& b) {
  const int64_t D = o.H * o.hd;
  const bool half = o.dtype != DType::F32;
  const void* qkv = half ? static_cast<const void*>(b.qkv_h.data()) : b.qkv.data();
  void* y = half ? static_cast<void*>(b.y_h.data()) : b.y.data();
  const void* dy = half ? static_cast<const void*>(b.dy_h.data()) : b.dy.data();
  void* dqkv = half ? static_cast<void*>(b.dqkv_h.data()) : b.dqkv.data();
  return {seconds(o.cpu_time,
                  [&] { flash_attention_forward(o.dtype, qkv, y, b.lse.data(), o.B, T, D, o.H, o.tile, b.fscratch.data()); }),
          seconds(o.cpu_time, [&] {
            flash_attention_backward(o.dtype, qkv, y, b.lse.data(), dy, dqkv, o.B, T, D, o.H, o.tile,
                                     b.bscratch.data());
          })};
}

// Medians of the forward, backward and whole times over the rounds.
struct Medians {
  std::vector<double> forward, backward, total;
  void add(std::pair<double, double> t) {
    forward.push_back(t.first);
    backward.push_back(t.second);
    total.push_back(t.first + t.second);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  set_num_threads(o.threads);
  if (o.dtype != DType::F32 && !has_half_gemm(o.dtype)) {
    std::fprintf(stderr, "no half GEMM units for %s here: the materialising kernel would run on fp32 copies\n",
                 dtype_name(o.dtype).c_str());
    return 2;
  }
  std::printf("B=%lld H=%lld hd=%lld tile=%lld dtype=%s threads=%d rounds=%lld %s\n", static_cast<long long>(o.B),
              static_cast<long long>(o.H), static_cast<long long>(o.hd), static_cast<long long>(o.tile),
              dtype_name(o.dtype).c_str(), num_threads(), static_cast<long long>(o.rounds),
              o.cpu_time ? "CPU time" : "wall time");
  std::printf("%6s %28s %28s %8s\n", "T", "materialised ms (fwd+bwd)", "fused ms (fwd+bwd)", "ratio");
  for (int64_t T : o.lengths) {
    Buffers b = make_buffers(o, T);
    run_materialized(o, T, b);  // warm-up: page faults, OpenBLAS buffers
    run_flash(o, T, b);
    Medians mat, flash;
    for (int64_t r = 0; r < o.rounds; ++r) {
      mat.add(run_materialized(o, T, b));
      flash.add(run_flash(o, T, b));
    }
    const double m = median(mat.total) * 1e3, f = median(flash.total) * 1e3;
    std::printf("%6lld %8.2f (%7.2f + %7.2f) %8.2f (%7.2f + %7.2f) %8.3f\n", static_cast<long long>(T), m,
                median(mat.forward) * 1e3, median(mat.backward) * 1e3, f, median(flash.forward) * 1e3,
                median(flash.backward) * 1e3, f / m);
    std::fflush(stdout);
  }
  return 0;
}
