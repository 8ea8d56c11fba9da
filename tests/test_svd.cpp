// Truncated SVD (src/linalg/svd) against matrices whose singular values are known by construction
// and against numpy; images through stb; and `frugal svd` as a user meets it.
#include <gtest/gtest.h>

#include "cli_support.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "io/image.h"
#include "linalg/svd.h"
#include "tolerances.h"

namespace fs = std::filesystem;
using frugal::Image;

namespace {
using frugal::testing::gamma_n;
using frugal::testing::kFp32Unit;
using frugal::testing::scratch;
using frugal::testing::slurp;

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> m(rows * cols);
  for (float& v : m) v = dist(gen);
  return m;
}

// An n x n orthogonal matrix (row-major, double): the product of two Householder reflections
// I - 2 v v^T / (v^T v) with random v.
std::vector<double> orthogonal(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> q(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (int reflection = 0; reflection < 2; ++reflection) {
    std::vector<double> v(n);
    double vv = 0;
    for (double& x : v) x = dist(gen), vv += x * x;
    // q <- q (I - 2 v v^T / vv)
    for (int64_t i = 0; i < n; ++i) {
      double qv = 0;
      for (int64_t j = 0; j < n; ++j) qv += q[i * n + j] * v[j];
      for (int64_t j = 0; j < n; ++j) q[i * n + j] -= 2.0 * qv * v[j] / vv;
    }
  }
  return q;
}

// sum of squares of a - b (both rows x cols).
double diff_sq(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
  return s;
}

// How far reconstruct(t, k) may be from the exact U_k S_k Vt_k of LAPACK's double factors (themselves
// exact to ~n 1e-16 of ||A||, negligible here): U, S and Vt rounded once each to float, U S once more,
// then the GEMM's k-term sums (gamma_k, any kernel): per element (gamma_k + 4 u) (|U_k| S_k |Vt_k|)_ij
// to first order. Returns the Frobenius norm of that.
double reconstruction_bound(const frugal::TruncatedSvd& t, int64_t k) {
  double sq = 0;
  for (int64_t i = 0; i < t.rows; ++i)
    for (int64_t j = 0; j < t.cols; ++j) {
      double m = 0;
      for (int64_t r = 0; r < k; ++r)
        m += std::fabs(double{t.u[i * t.rank + r]}) * t.s[r] * std::fabs(double{t.vt[r * t.cols + j]});
      sq += m * m;
    }
  return (gamma_n(static_cast<double>(k)) + 4 * kFp32Unit) * std::sqrt(sq);
}

// A smooth gradient plus noise in 0..255, like a photograph's channel: (rows, cols).
std::vector<float> image_like(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> noise(-20.0f, 20.0f);
  std::vector<float> m(rows * cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      m[i * cols + j] = std::clamp(40.0f + 150.0f * i / rows + 50.0f * j / cols + noise(gen), 0.0f, 255.0f);
  return m;
}
}  // namespace

TEST(SvdLinalg, RotatedDiagonalHasItsSingularValues) {
  // A = U diag(3, 2, 1) V^T with U the first 3 columns of a 5x5 orthogonal matrix: (5, 3).
  const int64_t m = 5, n = 3;
  const std::vector<double> q5 = orthogonal(m, 1), q3 = orthogonal(n, 2);
  const double sigma[] = {3.0, 2.0, 1.0};
  std::vector<float> a(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double v = 0;
      for (int64_t r = 0; r < n; ++r) v += q5[i * m + r] * sigma[r] * q3[j * n + r];
      a[i * n + j] = static_cast<float>(v);
    }
  const std::vector<double> s = frugal::singular_values(a.data(), m, n);
  ASSERT_EQ(s.size(), 3u);
  // A's float rounding E (|E_ij| <= u |A_ij|) moves each singular value by at most ||E||_2 <=
  // u ||A||_F = u sqrt(14) = 2.2e-7 (Weyl); LAPACK's double work, ~1e-15, and t.s's float rounding
  // (u s <= 1.8e-7) add little: 1e-5 is over 20 times the sum.
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(s[r], sigma[r], 1e-5);
  std::vector<double> all;
  const frugal::TruncatedSvd t = frugal::truncated_svd(a.data(), m, n, 2, &all);
  ASSERT_EQ(t.s.size(), 2u);
  EXPECT_NEAR(t.s[0], 3.0, 1e-5);
  EXPECT_NEAR(t.s[1], 2.0, 1e-5);
  ASSERT_EQ(all.size(), 3u);  // every value, not only the kept ones
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(all[r], sigma[r], 1e-5);
}

TEST(SvdLinalg, SumOfTwoOuterProductsHasRankTwo) {
  // A = 2 x y^T + 0.5 p q^T with orthonormal x, p (columns of a 7x7 orthogonal matrix) and y, q
  // (of a 4x4 one): singular values 2, 0.5, 0, 0.
  const int64_t m = 7, n = 4;
  const std::vector<double> qm = orthogonal(m, 3), qn = orthogonal(n, 4);
  std::vector<float> a(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      a[i * n + j] = static_cast<float>(2.0 * qm[i * m + 0] * qn[j * n + 0] + 0.5 * qm[i * m + 1] * qn[j * n + 1]);
  const std::vector<double> s = frugal::singular_values(a.data(), m, n);
  ASSERT_EQ(s.size(), 4u);
  // Weyl, as above: within u ||A||_F = u sqrt(4.25) = 1.2e-7 of 2, 0.5, 0, 0; 1e-5 is 80 times that.
  EXPECT_NEAR(s[0], 2.0, 1e-5);
  EXPECT_NEAR(s[1], 0.5, 1e-5);
  EXPECT_NEAR(s[2], 0.0, 1e-5);
  EXPECT_NEAR(s[3], 0.0, 1e-5);
  // Rank 2 already reproduces A: the float matrix's dropped singular values hold at most its rounding
  // (Mirsky: ||(s_3, s_4)|| <= ||E||_F <= u ||A||_F), plus the reconstruction's own rounding.
  const frugal::TruncatedSvd t2 = frugal::truncated_svd(a.data(), m, n, 2);
  const std::vector<float> a2 = frugal::reconstruct(t2, 2);
  const double a_norm = std::sqrt(diff_sq(a, std::vector<float>(a.size(), 0.0f)));
  EXPECT_LT(std::sqrt(diff_sq(a, a2)), reconstruction_bound(t2, 2) + kFp32Unit * a_norm);
}

TEST(SvdLinalg, ErrorFallsWithRankAndVanishesAtFullRank) {
  const int64_t m = 40, n = 30;
  const std::vector<float> a = random_matrix(m, n, 5);
  const frugal::TruncatedSvd t = frugal::truncated_svd(a.data(), m, n, n);
  const std::vector<double> s = frugal::singular_values(a.data(), m, n);
  const double norm = std::sqrt(diff_sq(a, std::vector<float>(a.size(), 0.0f)));
  double previous = INFINITY;
  for (int64_t k = 1; k <= n; ++k) {
    const double err_sq = diff_sq(a, frugal::reconstruct(t, k));
    // Each rank removes s_k^2 (at least ~0.7 here) from the squared error: far above the rounding below.
    EXPECT_LT(std::sqrt(err_sq), previous) << "rank " << k;
    previous = std::sqrt(err_sq);
    // Eckart-Young: the squared error is the energy of the dropped singular values. The computed
    // reconstruction is off the exact one by F, ||F|| <= reconstruction_bound, so ||A - A_k - F||^2
    // is within 2 sqrt(tail) ||F|| + ||F||^2 of the tail (Cauchy-Schwarz): at most 2.3e-3 here, and
    // 1e-4 ||A||^2 = 0.11 is over 40 times that.
    double tail = 0;
    for (int64_t i = k; i < n; ++i) tail += s[i] * s[i];
    EXPECT_NEAR(err_sq, tail, 1e-4 * norm * norm) << "rank " << k;
  }
  // At full rank only the reconstruction's rounding is left.
  EXPECT_LT(previous / norm, reconstruction_bound(t, n) / norm);
}

TEST(SvdLinalg, FullRankImageReconstructionAbove60Db) {
  const int64_t m = 48, n = 64;
  const std::vector<float> a = image_like(m, n, 6);
  const frugal::TruncatedSvd t = frugal::truncated_svd(a.data(), m, n, m);
  const std::vector<float> back = frugal::reconstruct(t, m);
  const double mse = diff_sq(a, back) / static_cast<double>(a.size());
  const double psnr = mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : INFINITY;
  // Full rank: only the reconstruction's rounding, at most reconstruction_bound; as a PSNR that is
  // over 100 dB here, so 60 dB (the test's claim) holds with 40 dB to spare.
  EXPECT_GE(psnr, 60.0);
}

TEST(SvdLinalg, RejectsRankOutsideOneToMinDimension) {
  const std::vector<float> a = random_matrix(6, 4, 7);
  EXPECT_THROW(frugal::truncated_svd(a.data(), 6, 4, 0), frugal::Error);
  try {
    frugal::truncated_svd(a.data(), 6, 4, 5);
    FAIL() << "rank 5 of a 6 x 4 matrix was accepted";
  } catch (const frugal::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find('5'), std::string::npos) << msg;
    EXPECT_NE(msg.find('4'), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(frugal::truncated_svd(a.data(), 6, 4, 4));
}

TEST(SvdLinalg, FactorsHaveOrthonormalColumnsAndRows) {
  const int64_t m = 40, n = 30, k = 12;
  const std::vector<float> a = random_matrix(m, n, 8);
  const frugal::TruncatedSvd t = frugal::truncated_svd(a.data(), m, n, k);
  ASSERT_EQ(t.u.size(), static_cast<size_t>(m * k));
  ASSERT_EQ(t.vt.size(), static_cast<size_t>(k * n));
  for (int64_t p = 0; p < k; ++p)
    for (int64_t q = 0; q < k; ++q) {
      double uu = 0, vv = 0;
      for (int64_t i = 0; i < m; ++i) uu += double{t.u[i * k + p]} * t.u[i * k + q];
      for (int64_t j = 0; j < n; ++j) vv += double{t.vt[p * n + j]} * t.vt[q * n + j];
      // LAPACK's double factors are orthonormal to ~1e-15; rounded to float each entry moves by u of
      // itself, so a Gram entry (summed in double) by at most 2 u sum_i |u_ip| |u_iq| <= 2 u = 1.2e-7
      // (Cauchy-Schwarz, unit columns): 1e-5 is 80 times that.
      EXPECT_NEAR(uu, p == q ? 1.0 : 0.0, 1e-5) << p << "," << q;
      EXPECT_NEAR(vv, p == q ? 1.0 : 0.0, 1e-5) << p << "," << q;
    }
  for (int64_t r = 1; r < k; ++r) EXPECT_GE(t.s[r - 1], t.s[r]);  // exact: rounding to float keeps the order
}

TEST(SvdLinalg, MatchesNumpy) {
  if (!fs::exists("/usr/bin/python3") ||
      std::system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's /usr/bin/python3 with numpy is not available";
  const int64_t m = 37, n = 23;
  const std::vector<float> a = random_matrix(m, n, 9);
  const fs::path dir = scratch("numpy");
  {
    std::ofstream out(dir / "a.txt");
    char buf[32];
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        std::snprintf(buf, sizeof buf, "%.9g ", a[i * n + j]);  // round-trips a float exactly
        out << buf;
      }
      out << '\n';
    }
  }
  const std::string cmd = "/usr/bin/python3 -c \"import numpy, sys; a = numpy.loadtxt(sys.argv[1], ndmin=2); "
                          "print(' '.join(repr(float(x)) for x in numpy.linalg.svd(a, compute_uv=False)))\" " +
                          (dir / "a.txt").string() + " > " + (dir / "s.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::istringstream in(slurp(dir / "s.txt"));
  std::vector<double> expected;
  for (double x; in >> x;) expected.push_back(x);
  const std::vector<double> s = frugal::singular_values(a.data(), m, n);
  ASSERT_EQ(s.size(), expected.size());
  // Both are double SVDs (dgesdd) of the same matrix, backward stable: each within ~min(m, n) 1e-16
  // ||A||_2 = 3e-14 of exact, against a smallest singular value near sqrt(37) - sqrt(23) = 1.3. The
  // bound, 1e-5 relative, is far above that (a float SVD would err by ~1e-6 of ||A||).
  for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(s[i], expected[i], 1e-5 * expected[i]) << "index " << i;
}

TEST(SvdImage, PngRoundTripKeepsPixels) {
  Image img{5, 3, 3, std::vector<float>(5 * 3 * 3)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<float>((i * 37) % 256);
  img.pixels[0] = -12.0f;  // clamped to 0
  img.pixels[1] = 300.0f;  // clamped to 255
  img.pixels[2] = 9.6f;    // rounded to 10
  const fs::path path = scratch("image") / "round.png";
  frugal::save_png(path.string(), img);
  const Image back = frugal::load_image(path.string());
  ASSERT_EQ(back.width, 5);
  ASSERT_EQ(back.height, 3);
  ASSERT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels[0], 0.0f);
  EXPECT_EQ(back.pixels[1], 255.0f);
  EXPECT_EQ(back.pixels[2], 10.0f);
  for (size_t i = 3; i < img.pixels.size(); ++i) EXPECT_EQ(back.pixels[i], img.pixels[i]) << i;
  EXPECT_FALSE(fs::exists(path.string() + ".tmp." + std::to_string(getpid())));
}

TEST(SvdImage, MissingOrUndecodableFileIsAnError) {
  const fs::path dir = scratch("image");
  std::ofstream(dir / "text.png") << "this is not an image\n";
  for (const fs::path& p : {dir / "missing.png", dir / "text.png"}) {
    try {
      frugal::load_image(p.string());
      FAIL() << p << " was accepted";
    } catch (const frugal::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("cannot decode image " + p.string()), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// ---- frugal svd, run as a user would -------------------------------------------------------------

namespace {
using Result = frugal::testing::CliResult;
using frugal::testing::expect_one_line_error;
using frugal::testing::run_frugal;

// A 32 x 24 RGB gradient with noise, written by frugal's own save_png.
fs::path gradient_png() {
  const fs::path path = scratch("cli") / "gradient.png";
  const int w = 32, h = 24;
  Image img{w, h, 3, {}};
  for (int c = 0; c < 3; ++c) {
    const std::vector<float> channel = image_like(h, w, 10 + c);
    img.pixels.insert(img.pixels.end(), channel.begin(), channel.end());
  }
  frugal::save_png(path.string(), img);
  return path;
}

double psnr_of(const nlohmann::json& row) {
  return row.at("psnr_db").is_null() ? INFINITY : row.at("psnr_db").get<double>();  // null: exact
}
}  // namespace

TEST(SvdCli, WritesReconstructionsReportAndPlots) {
  const fs::path image = gradient_png(), out = scratch("cli") / "out";
  const Result r = run_frugal("svd " + image.string() + " --ranks 1,4,24 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* name : {"rank_1.png", "rank_4.png", "rank_24.png", "svd.json", "spectrum.png", "energy.png"})
    EXPECT_TRUE(fs::exists(out / name)) << name;
  const Image back = frugal::load_image((out / "rank_4.png").string());
  EXPECT_EQ(back.width, 32);
  EXPECT_EQ(back.height, 24);

  const nlohmann::json j = nlohmann::json::parse(slurp(out / "svd.json"));
  ASSERT_EQ(j.at("ranks").size(), 3u);
  const nlohmann::json& ranks = j.at("ranks");
  EXPECT_EQ(ranks[0].at("rank"), 1);
  EXPECT_EQ(ranks[2].at("rank"), 24);
  // More rank, less error: by the dropped singular values' energy, far above rounding.
  EXPECT_LT(psnr_of(ranks[0]), psnr_of(ranks[1]));
  EXPECT_LT(psnr_of(ranks[1]), psnr_of(ranks[2]));
  EXPECT_GE(psnr_of(ranks[2]), 60.0);  // rank 24 is full rank: rounding only, over 100 dB (below)
  EXPECT_EQ(ranks[1].at("stored_per_channel"), 4 * (32 + 24 + 1));
  EXPECT_EQ(j.at("dense_per_channel"), 32 * 24);
  EXPECT_GT(ranks[0].at("relative_error").get<double>(), ranks[1].at("relative_error").get<double>());
  // At full rank the relative error is the reconstruction's rounding: within reconstruction_bound of
  // each channel, here from the same image, decomposition and product as the command's.
  const Image png = frugal::load_image(image.string());
  double bound_sq = 0, norm_sq = 0;
  for (int c = 0; c < png.channels; ++c) {
    const float* channel = png.pixels.data() + c * 32 * 24;
    bound_sq += std::pow(reconstruction_bound(frugal::truncated_svd(channel, 24, 32, 24), 24), 2);
    for (int i = 0; i < 32 * 24; ++i) norm_sq += double{channel[i]} * channel[i];
  }
  EXPECT_LT(ranks[2].at("relative_error").get<double>(), std::sqrt(bound_sq / norm_sq));
  // Exact: with every value kept, the kept energy and the total are the same sum.
  EXPECT_NEAR(ranks[2].at("energy").get<double>(), 1.0, 1e-9);
  ASSERT_EQ(j.at("singular_values").size(), 3u);
  EXPECT_EQ(j.at("singular_values")[0].size(), 24u);
  EXPECT_NE(r.out.find("PSNR"), std::string::npos) << r.out;
}

TEST(SvdCli, FileThatIsNotAnImageIsAOneLineError) {
  const fs::path text = scratch("cli") / "notes.txt";
  std::ofstream(text) << "not an image\n";
  expect_one_line_error(run_frugal("svd " + text.string() + " --out " + (scratch("cli") / "bad").string()),
                        "cannot decode image");
}

TEST(SvdCli, RankAboveSmallerSideIsAOneLineError) {
  const fs::path image = gradient_png();
  const Result r = run_frugal("svd " + image.string() + " --ranks 100 --out " + (scratch("cli") / "big").string());
  expect_one_line_error(r, "100");
  EXPECT_NE(r.err.find("24"), std::string::npos) << r.err;
}
