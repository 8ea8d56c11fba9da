// Compiled with -ffast-math (CMakeLists.txt), like softmax.cpp: glibc's vector expf and vector max
// and sum reductions in the per-row loops. So no infinity is used as a starting max: a row's first
// key tile sets it. The reduction order is fixed by the code, the same on every call, so a
// checkpointing recomputation is bit-identical.
#include "kernels/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/convert.h"
#include "kernels/dropout.h"
#include "kernels/gemm.h"

namespace frugal {

namespace {

// One head's rows in a (B, T, cols) tensor of fp32 or half values: row r at base + r * stride.
struct HeadRows {
  DType type;
  const void* base;  // row 0 of the head, column h * hd
  int64_t stride;    // elements between rows
  int64_t hd;

  // Rows [r0, r0 + n) as fp32 in buf (n, hd), copied or widened, with row stride ld = hd. Always a
  // copy: OpenBLAS's small-matrix kernel runs 64-sized products about 35% faster on contiguous
  // operands than on rows 3D apart.
  const float* load(int64_t r0, int64_t n, float* buf, int64_t& ld) const {
    ld = hd;
    if (type == DType::F32) {
      const float* src = static_cast<const float*>(base) + r0 * stride;
      for (int64_t r = 0; r < n; ++r) std::copy_n(src + r * stride, hd, buf + r * hd);
      return buf;
    }
    const uint16_t* src = static_cast<const uint16_t*>(base) + r0 * stride;
    for (int64_t r = 0; r < n; ++r) half_to_float(src + r * stride, type, buf + r * hd, hd);
    return buf;
  }
};

// The same for the tensors the kernel writes.
struct HeadOut {
  DType type;
  void* base;
  int64_t stride;
  int64_t hd;

  // Writes rows [r0, r0 + n) from src (n, hd), rounding to the half type.
  void store(int64_t r0, int64_t n, const float* src) const {
    for (int64_t r = 0; r < n; ++r) {
      if (type == DType::F32) std::copy_n(src + r * hd, hd, static_cast<float*>(base) + (r0 + r) * stride);
      else float_to_half(src + r * hd, type, static_cast<uint16_t*>(base) + (r0 + r) * stride, hd);
    }
  }
};

size_t element_bytes(DType type) { return type == DType::F32 ? 4 : 2; }

// Head h of batch item b in a (B, T, cols) tensor, starting at column col.
const void* head_at(DType type, const void* t, int64_t b, int64_t T, int64_t cols, int64_t col) {
  return static_cast<const char*>(t) + (b * T * cols + col) * static_cast<int64_t>(element_bytes(type));
}
void* head_at(DType type, void* t, int64_t b, int64_t T, int64_t cols, int64_t col) {
  return static_cast<char*>(t) + (b * T * cols + col) * static_cast<int64_t>(element_bytes(type));
}

struct Dims {
  int64_t B, T, D, H, hd, tile;
  float scale;
  const DropoutKey* dropout = nullptr;  // attention-probability dropout, or none
  const int32_t* positions = nullptr;   // (B, T) positions within examples, or none (one per row)

  // The first key query i of item b sees: its example's first token. Never decreases along a row,
  // so a query tile's first row sees the tile's earliest key.
  int64_t start(int64_t b, int64_t i) const { return positions ? i - positions[b * T + i] : 0; }
};

// Query row i's probabilities against keys [j0, j0 + c) of pair bh (contiguous), through the mask of
// element ((bh * T + i) * T + j).
void drop_row(const Dims& d, int64_t bh, int64_t i, int64_t j0, int64_t c, float* row) {
  DropoutKey k = *d.dropout;
  k.first += static_cast<uint64_t>((bh * d.T + i) * d.T + j0);
  dropout_apply_serial(k, row, row, c);
}

Dims dims_of(int64_t B, int64_t T, int64_t D, int64_t H, int64_t tile) {
  const int64_t hd = D / H;
  return {B, T, D, H, hd, std::min(tile, T), 1.0f / std::sqrt(static_cast<float>(hd))};
}

// Keys j0 .. j0 + c - 1 that query i sees (causal: key index <= i); at least one when j0 <= i.
int64_t visible(int64_t i, int64_t j0, int64_t c) { return std::min(c, i - j0 + 1); }

// dst (cols, rows) with row stride ldd = src^T for src (rows, cols) with row stride lds.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, int64_t ldd, float* dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) dst[c * ldd + r] = src[r * lds + c];
}

// One query row's online-softmax step over a key tile: s (c) holds the scaled scores, of which
// [lo, hi) are visible (lo < hi). Turns s into exp(s - m_new) (0 where masked), updates the running
// max m and sum l, and rescales the row's output accumulator o (hd) to the new max.
void online_softmax_row(float* s, int64_t lo, int64_t hi, int64_t c, bool first, float& m, float& l, float* o,
                        int64_t hd) {
  float mx = s[lo];
  for (int64_t j = lo + 1; j < hi; ++j) mx = s[j] > mx ? s[j] : mx;
  const float m_new = first ? mx : std::max(m, mx);
  float sum = 0.0f;
  for (int64_t j = lo; j < hi; ++j) {
    s[j] = expf(s[j] - m_new);
    sum += s[j];
  }
  std::fill(s, s + lo, 0.0f);
  std::fill(s + hi, s + c, 0.0f);
  if (first) {
    l = sum;
  } else {
    const float correction = expf(m - m_new);
    l = l * correction + sum;
    if (correction != 1.0f)
      for (int64_t d = 0; d < hd; ++d) o[d] *= correction;
  }
  m = m_new;
}

// Forward scratch per thread: s (tile, tile), o (tile, hd), m and l (tile), q, k, v tiles (tile, hd),
// the k tile transposed (hd, tile).
struct ForwardScratch {
  float *s, *o, *m, *l, *q, *k, *v, *kt;
  ForwardScratch(float* base, int64_t t, int64_t hd)
      : s(base), o(s + t * t), m(o + t * hd), l(m + t), q(l + t), k(q + t * hd), v(k + t * hd), kt(v + t * hd) {}
};

// Query rows [i0, i0 + n) of one head against every key tile from the one holding the first row's
// example start up to the diagonal (tiles above it, and tiles wholly before every row's example,
// skipped; the others masked where needed); writes y's rows and lse[i0 ..].
void forward_query_tile(const Dims& d, int64_t bh, const HeadRows& q, const HeadRows& k, const HeadRows& v,
                        const HeadOut& y, float* lse, int64_t i0, ForwardScratch w) {
  const int64_t n = std::min(d.tile, d.T - i0), hd = d.hd, b = bh / d.H;
  int64_t ldq, ldk, ldv;
  const float* qt = q.load(i0, n, w.q, ldq);  // (n, hd)
  std::fill(w.o, w.o + n * hd, 0.0f);
  for (int64_t j0 = d.start(b, i0) / d.tile * d.tile; j0 < i0 + n; j0 += d.tile) {
    const int64_t c = std::min(d.tile, i0 + n - j0);  // keys past the tile's last query are never visible
    const float* kt = k.load(j0, c, w.k, ldk);      // (c, hd)
    const float* vt = v.load(j0, c, w.v, ldv);      // (c, hd)
    // K^T explicitly: a plain product runs about 50% faster than a B-transposed one at tile sizes.
    transpose(kt, c, hd, ldk, c, w.kt);                                        // (hd, c)
    gemm(false, false, n, c, hd, d.scale, qt, ldq, w.kt, c, 0.0f, w.s, c);  // S = scale Q K^T (n, c)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t start = d.start(b, i0 + r), lo = std::max<int64_t>(0, start - j0);
      const int64_t hi = visible(i0 + r, j0, c);
      if (lo >= hi) {  // keys of an earlier example only: nothing for this row
        std::fill(w.s + r * c, w.s + (r + 1) * c, 0.0f);
        continue;
      }
      online_softmax_row(w.s + r * c, lo, hi, c, start >= j0, w.m[r], w.l[r], w.o + r * hd, hd);
      // Dropout after the row sum: O = sum of dropped P V over the undropped normaliser l.
      if (d.dropout) drop_row(d, bh, i0 + r, j0, c, w.s + r * c);
    }
    gemm(false, false, n, hd, c, 1.0f, w.s, c, vt, ldv, 1.0f, w.o, hd);  // O += P V (n, hd)
  }
  for (int64_t r = 0; r < n; ++r) {
    const float inv = 1.0f / w.l[r];
    for (int64_t e = 0; e < hd; ++e) w.o[r * hd + e] *= inv;
    lse[i0 + r] = w.m[r] + logf(w.l[r]);
  }
  y.store(i0, n, w.o);
}

// Backward scratch per thread: p and ds (tile, tile); q, dy, k, v tiles (tile, hd); the key tile
// transposed (hd, tile); dk and dv accumulators of one key tile (tile, hd); the head's q and dy
// transposed and its dq accumulator, transposed, (T, hd) floats each, tile-major: query tile i0's
// (hd, n) block at i0 * hd, row stride n (a stride of T, 4 KiB at T = 1024, slowed the products);
// the row dots (T).
struct BackwardScratch {
  float *p, *ds, *q, *dy, *k, *v, *kt, *dk, *dv, *qt, *dyt, *dqt, *dots;
  float *mask, *pd;  // with dropout: the tile pair's mask (n, c) as 0 or 1 / (1 - p), and dropped P^T (c, n)
  BackwardScratch(float* base, int64_t t, int64_t hd, int64_t T)
      : p(base), ds(p + t * t), q(ds + t * t), dy(q + t * hd), k(dy + t * hd), v(k + t * hd), kt(v + t * hd),
        dk(kt + t * hd), dv(dk + t * hd), qt(dv + t * hd), dyt(qt + T * hd), dqt(dyt + T * hd), dots(dqt + T * hd),
        mask(dots + T), pd(mask + t * t) {}
};

// The views of one (batch, head) pair's inputs and gradients.
struct HeadViews {
  HeadRows q, k, v, y, dy;
  HeadOut dq, dk, dv;
};

HeadViews head_views(DType type, const void* qkv, const void* y, const void* dy, void* dqkv, const Dims& d,
                     int64_t bh) {
  const int64_t b = bh / d.H, col = (bh % d.H) * d.hd, s3 = 3 * d.D;
  auto in = [&](const void* t, int64_t cols, int64_t c0) {
    return HeadRows{type, head_at(type, t, b, d.T, cols, c0), cols, d.hd};
  };
  auto out = [&](int64_t c0) { return HeadOut{type, head_at(type, dqkv, b, d.T, s3, c0), s3, d.hd}; };
  return {in(qkv, s3, col), in(qkv, s3, d.D + col), in(qkv, s3, 2 * d.D + col), in(y, d.D, col), in(dy, d.D, col),
          out(col),         out(d.D + col),         out(2 * d.D + col)};
}

// Once per head, before any tile: dots[i] = rowsum(dY_i * Y_i), and q and dy transposed (tile-major).
void prepare_head(const Dims& d, const HeadViews& h, BackwardScratch w) {
  for (int64_t i0 = 0; i0 < d.T; i0 += d.tile) {
    const int64_t n = std::min(d.tile, d.T - i0);
    int64_t ldy, lddy, ldq;
    const float* yt = h.y.load(i0, n, w.q, ldy);
    const float* dyt = h.dy.load(i0, n, w.dy, lddy);
    for (int64_t r = 0; r < n; ++r) {
      float dot = 0.0f;
      for (int64_t e = 0; e < d.hd; ++e) dot += yt[r * ldy + e] * dyt[r * lddy + e];
      w.dots[i0 + r] = dot;
    }
    transpose(dyt, n, d.hd, lddy, n, w.dyt + i0 * d.hd);
    const float* qt = h.q.load(i0, n, w.q, ldq);  // after y's rows are spent: the same buffer
    transpose(qt, n, d.hd, ldq, n, w.qt + i0 * d.hd);
  }
}

// The backward works on transposed tiles, (keys, queries), on transposed copies of the head's q and
// dy, and accumulates dQ transposed, so that all five products of a tile pair are plain GEMMs
// (no operand transposed) on contiguous operands: OpenBLAS runs those on its small-matrix kernel at
// tile sizes, about 200 GFLOP/s per core at 64 against 130-150 for B-transposed or strided operands,
// while A-transposed products took its packing path (a quarter of the backward for P^T dY alone).
// K's tile is transposed once per key tile, q and dy once per head.

// pt (n): key j's scaled scores against queries i0 .. i0 + n - 1 of item b, turned into the
// probabilities exp(s - lse), 0 for the queries before j and those of a later example (masked).
void recompute_probabilities(const Dims& d, int64_t b, float* pt, int64_t j, int64_t i0, int64_t n, const float* lse) {
  const int64_t first = std::clamp<int64_t>(j - i0, 0, n);
  int64_t last = n;  // queries from `last` on start their example after key j
  if (d.positions)
    while (last > first && d.start(b, i0 + last - 1) > j) --last;
  std::fill(pt, pt + first, 0.0f);
  for (int64_t r = first; r < last; ++r) pt[r] = expf(pt[r] - lse[r]);
  std::fill(pt + last, pt + n, 0.0f);
}

// dst (n) holds key j's row of dP^T; becomes dS^T = P^T * (dP^T - dot) * scale (0 where P is).
void score_gradient_row(const float* pt, float* dst, int64_t n, const float* dots, float scale) {
  for (int64_t r = 0; r < n; ++r) dst[r] = pt[r] * (dst[r] - dots[r]) * scale;
}


// With dropout: the tile pair's mask, (n, c) as 0 or 1 / (1 - p), row by row (each row's keys are
// contiguous elements), then dropped P^T (c, n) = pt times its transpose.
void dropout_tile(const Dims& d, int64_t bh, int64_t i0, int64_t n, int64_t j0, int64_t c, const float* pt,
                  BackwardScratch w) {
  std::fill(w.mask, w.mask + n * c, 1.0f);
  for (int64_t r = 0; r < n; ++r) drop_row(d, bh, i0 + r, j0, c, w.mask + r * c);
  for (int64_t t = 0; t < c; ++t)
    for (int64_t r = 0; r < n; ++r) w.pd[t * n + r] = pt[t * n + r] * w.mask[r * c + t];
}

// Query tile [i0, i0 + n) against key tile [j0, j0 + c) (kt, vt, ktt already loaded): adds this
// pair's parts of dV and dK (the key tile's accumulators) and of dQ^T (the head's accumulator).
void backward_tile(const Dims& d, int64_t bh, const HeadViews& h, const float* lse, int64_t i0, int64_t j0, int64_t c,
                   const float* kt, int64_t ldk, const float* vt, int64_t ldv, BackwardScratch w) {
  const int64_t n = std::min(d.tile, d.T - i0), hd = d.hd;
  int64_t ldq, lddy;
  const float* qt = h.q.load(i0, n, w.q, ldq);     // (n, hd)
  const float* dyt = h.dy.load(i0, n, w.dy, lddy);  // (n, hd)
  float *pt = w.p, *dst = w.ds;
  gemm(false, false, c, n, hd, d.scale, kt, ldk, w.qt + i0 * hd, n, 0.0f, pt, n);  // S^T = scale K Q^T (c, n)
  for (int64_t t = 0; t < c; ++t) recompute_probabilities(d, bh / d.H, pt + t * n, j0 + t, i0, n, lse + i0);
  if (d.dropout) dropout_tile(d, bh, i0, n, j0, c, pt, w);
  gemm(false, false, c, hd, n, 1.0f, d.dropout ? w.pd : pt, n, dyt, lddy, 1.0f, w.dv, hd);  // dV += P^T dY (c, hd)
  gemm(false, false, c, n, hd, 1.0f, vt, ldv, w.dyt + i0 * hd, n, 0.0f, dst, n);   // dP^T = V dY^T (c, n)
  if (d.dropout)  // dP through the mask (the row dots need none: rowsum(P dP) = rowsum(dY Y) still)
    for (int64_t t = 0; t < c; ++t)
      for (int64_t r = 0; r < n; ++r) dst[t * n + r] *= w.mask[r * c + t];
  for (int64_t t = 0; t < c; ++t) score_gradient_row(pt + t * n, dst + t * n, n, w.dots + i0, d.scale);
  gemm(false, false, c, hd, n, 1.0f, dst, n, qt, ldq, 1.0f, w.dk, hd);           // dK += dS^T Q (c, hd)
  gemm(false, false, hd, n, c, 1.0f, w.kt, c, dst, n, 1.0f, w.dqt + i0 * hd, n);  // dQ^T += K^T dS^T (hd, n)
}

// One (batch, head) pair: key tiles in order, and for each the query tiles on and below the diagonal
// up to the last one whose first row's example starts within or before the key tile.
void backward_head(const Dims& d, int64_t bh, const HeadViews& h, const float* lse, BackwardScratch w) {
  prepare_head(d, h, w);
  std::fill(w.dqt, w.dqt + d.T * d.hd, 0.0f);
  for (int64_t j0 = 0; j0 < d.T; j0 += d.tile) {
    const int64_t c = std::min(d.tile, d.T - j0);
    int64_t ldk, ldv;
    const float* kt = h.k.load(j0, c, w.k, ldk);  // (c, hd)
    const float* vt = h.v.load(j0, c, w.v, ldv);  // (c, hd)
    transpose(kt, c, d.hd, ldk, c, w.kt);         // (hd, c)
    std::fill(w.dk, w.dk + c * d.hd, 0.0f);
    std::fill(w.dv, w.dv + c * d.hd, 0.0f);
    for (int64_t i0 = j0; i0 < d.T && d.start(bh / d.H, i0) < j0 + c; i0 += d.tile)
      backward_tile(d, bh, h, lse, i0, j0, c, kt, ldk, vt, ldv, w);
    h.dk.store(j0, c, w.dk);
    h.dv.store(j0, c, w.dv);
  }
  // dQ (T, hd) from its transpose, a tile of rows at a time through the q buffer.
  for (int64_t i0 = 0; i0 < d.T; i0 += d.tile) {
    const int64_t n = std::min(d.tile, d.T - i0);
    transpose(w.dqt + i0 * d.hd, d.hd, n, n, d.hd, w.q);
    h.dq.store(i0, n, w.q);
  }
}

}  // namespace

int64_t flash_attention_forward_scratch(int64_t T, int64_t hd, int64_t tile) {
  const int64_t t = std::min(tile, T);
  return t * t + 5 * t * hd + 2 * t;
}

int64_t flash_attention_backward_scratch(int64_t T, int64_t hd, int64_t tile, bool dropout) {
  const int64_t t = std::min(tile, T);
  return 2 * t * t + 7 * t * hd + 3 * T * hd + T + (dropout ? 2 * t * t : 0);
}

void flash_attention_forward(DType type, const void* qkv, void* y, float* lse, int64_t B, int64_t T, int64_t D,
                             int64_t H, int64_t tile, float* scratch, const DropoutKey* dropout,
                             const int32_t* positions) {
  Dims d = dims_of(B, T, D, H, tile);
  d.dropout = dropout;
  d.positions = positions;
  const int64_t tiles = (T + d.tile - 1) / d.tile, per_thread = flash_attention_forward_scratch(T, d.hd, tile);
  // Every (batch, head, query tile) on its own: dynamic, as the tiles further down cost more; the
  // longest first.
#pragma omp parallel for schedule(dynamic)
  for (int64_t w = 0; w < B * H * tiles; ++w) {
    const int64_t bh = w / tiles, i0 = (tiles - 1 - w % tiles) * d.tile;
    const int64_t b = bh / H, col = (bh % H) * d.hd;
    const HeadRows q{type, head_at(type, qkv, b, T, 3 * D, col), 3 * D, d.hd};
    const HeadRows k{type, head_at(type, qkv, b, T, 3 * D, D + col), 3 * D, d.hd};
    const HeadRows v{type, head_at(type, qkv, b, T, 3 * D, 2 * D + col), 3 * D, d.hd};
    const HeadOut yh{type, head_at(type, y, b, T, D, col), D, d.hd};
    float* mine = scratch + static_cast<int64_t>(omp_get_thread_num()) * per_thread;
    forward_query_tile(d, bh, q, k, v, yh, lse + bh * T, i0, ForwardScratch(mine, d.tile, d.hd));
  }
}

void flash_attention_backward(DType type, const void* qkv, const void* y, const float* lse, const void* dy,
                              void* dqkv, int64_t B, int64_t T, int64_t D, int64_t H, int64_t tile, float* scratch,
                              const DropoutKey* dropout, const int32_t* positions) {
  Dims d = dims_of(B, T, D, H, tile);
  d.dropout = dropout;
  d.positions = positions;
  const int64_t per_thread = flash_attention_backward_scratch(T, d.hd, tile, dropout != nullptr);
  // Dynamic: a thread that another process holds up leaves its next pairs to the others.
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    float* mine = scratch + static_cast<int64_t>(omp_get_thread_num()) * per_thread;
    backward_head(d, bh, head_views(type, qkv, y, dy, dqkv, d, bh), lse + bh * T,
                  BackwardScratch(mine, d.tile, d.hd, T));
  }
}

}  // namespace frugal
