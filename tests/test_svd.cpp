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

namespace fs = std::filesystem;
using frugal::Image;

namespace {
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
  EXPECT_NEAR(s[0], 2.0, 1e-5);
  EXPECT_NEAR(s[1], 0.5, 1e-5);
  EXPECT_NEAR(s[2], 0.0, 1e-5);
  EXPECT_NEAR(s[3], 0.0, 1e-5);
  // Rank 2 already reproduces A.
  const std::vector<float> a2 = frugal::reconstruct(frugal::truncated_svd(a.data(), m, n, 2), 2);
  EXPECT_LT(std::sqrt(diff_sq(a, a2)), 1e-5);
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
    EXPECT_LT(std::sqrt(err_sq), previous) << "rank " << k;
    previous = std::sqrt(err_sq);
    // Eckart-Young: the squared error is the energy of the dropped singular values.
    double tail = 0;
    for (int64_t i = k; i < n; ++i) tail += s[i] * s[i];
    EXPECT_NEAR(err_sq, tail, 1e-4 * norm * norm) << "rank " << k;
  }
  EXPECT_LT(previous / norm, 1e-5);
}

TEST(SvdLinalg, FullRankImageReconstructionAbove60Db) {
  const int64_t m = 48, n = 64;
  const std::vector<float> a = image_like(m, n, 6);
  const std::vector<float> back = frugal::reconstruct(frugal::truncated_svd(a.data(), m, n, m), m);
  const double mse = diff_sq(a, back) / static_cast<double>(a.size());
  const double psnr = mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : INFINITY;
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
      EXPECT_NEAR(uu, p == q ? 1.0 : 0.0, 1e-5) << p << "," << q;
      EXPECT_NEAR(vv, p == q ? 1.0 : 0.0, 1e-5) << p << "," << q;
    }
  for (int64_t r = 1; r < k; ++r) EXPECT_GE(t.s[r - 1], t.s[r]);
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
  EXPECT_LT(psnr_of(ranks[0]), psnr_of(ranks[1]));
  EXPECT_LT(psnr_of(ranks[1]), psnr_of(ranks[2]));
  EXPECT_GE(psnr_of(ranks[2]), 60.0);
  EXPECT_EQ(ranks[1].at("stored_per_channel"), 4 * (32 + 24 + 1));
  EXPECT_EQ(j.at("dense_per_channel"), 32 * 24);
  EXPECT_GT(ranks[0].at("relative_error").get<double>(), ranks[1].at("relative_error").get<double>());
  EXPECT_LT(ranks[2].at("relative_error").get<double>(), 1e-5);
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
