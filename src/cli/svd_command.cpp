// `frugal svd IMAGE --ranks 1,5,20,50 --out DIR`: truncated-SVD compression of an image. Each
// channel is an (h, w) matrix A; its rank-k approximation A_k stores k(h + w + 1) numbers instead
// of h*w. Writes DIR/rank_<k>.png, DIR/svd.json and the singular spectrum and cumulative energy as
// DIR/spectrum.png and DIR/energy.png, and prints one table row per rank.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "run/run_spec.h"
#include "run/spec_options.h"
#include "core/error.h"
#include "core/threading.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "linalg/svd.h"
#include "report/plot.h"

namespace frugal::cli {

namespace {
struct SvdFlags {
  std::string image, out_dir = "out/svd";
  std::vector<int64_t> ranks;  // empty: the defaults that fit the image
  int threads = 0;
};

struct RankRow {
  int64_t rank = 0;
  double psnr_db = 0, relative_error = 0, energy = 0;
  int64_t stored = 0;  // per channel: k (h + w + 1)
};

std::vector<std::string> channel_names(int channels) {
  switch (channels) {
    case 1: return {"grey"};
    case 2: return {"grey", "alpha"};
    case 3: return {"red", "green", "blue"};
    default: return {"red", "green", "blue", "alpha"};
  }
}

// The requested ranks, sorted and unique. Ranks asked for explicitly must fit; the defaults are
// trimmed to the image so that `frugal svd small.png` works.
std::vector<int64_t> checked_ranks(std::vector<int64_t> ranks, const Image& img, const std::string& path) {
  const int64_t max_rank = std::min(img.height, img.width);
  if (ranks.empty()) {
    for (int64_t k : {1, 5, 20, 50})
      if (k <= max_rank) ranks.push_back(k);
  }
  for (int64_t k : ranks)
    check(k >= 1 && k <= max_rank, "--ranks: rank " + std::to_string(k) + " is out of range for " + path + " (" +
                                       std::to_string(img.width) + " x " + std::to_string(img.height) +
                                       "): ranks go from 1 to min(height, width) = " + std::to_string(max_rank));
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  return ranks;
}

// Fraction of sum(s^2) held by the top k values; a zero channel is captured by any rank.
double energy_fraction(const std::vector<double>& s, int64_t k) {
  double top = 0, total = 0;
  for (size_t i = 0; i < s.size(); ++i) (static_cast<int64_t>(i) < k ? top : total) += s[i] * s[i];
  total += top;
  return total > 0 ? top / total : 1.0;
}

void plot_spectrum(const std::string& dir, const std::vector<std::vector<double>>& spectra,
                   const std::vector<std::string>& names, double rounding_level) {
  // Values below LAPACK's rounding level (max(h, w) * eps * s_max, the usual numerical-rank cutoff)
  // are zeros in double precision: on a log axis their noise (1e-100 and below) would squeeze the
  // real spectrum flat, so they are left out of the plot (svd.json keeps them). An all-black image
  // has only zeros and is drawn on a linear axis instead.
  bool any_positive = false;
  for (const auto& s : spectra) any_positive = any_positive || (!s.empty() && s[0] > 0);
  std::vector<Series> values, energy;
  for (size_t c = 0; c < spectra.size(); ++c) {
    Series v{names[c], {}, {}}, e{names[c], {}, {}};
    const double cutoff = spectra[c].empty() ? 0.0 : rounding_level * spectra[c][0];
    for (size_t i = 0; i < spectra[c].size(); ++i) {
      const double index = static_cast<double>(i + 1);
      if (spectra[c][i] > cutoff || !any_positive)
        v.x.push_back(index), v.y.push_back(spectra[c][i]);
      e.x.push_back(index);
      e.y.push_back(energy_fraction(spectra[c], static_cast<int64_t>(i + 1)));
    }
    if (!v.x.empty()) values.push_back(std::move(v));
    energy.push_back(std::move(e));
  }
  plot_png(dir + "/spectrum.png", {"Singular values per channel", "index i", "singular value s_i", any_positive, false},
           values);
  plot_png(dir + "/energy.png", {"Cumulative energy per channel", "rank k", "sum of s_i^2, i <= k, over the total",
                                 false, false},
           energy);
}

void print_table(const std::string& path, const Image& img, const std::vector<RankRow>& rows) {
  const int64_t hw = int64_t{img.height} * img.width;
  std::printf("%s: %d x %d, %d channel%s; numbers per channel: dense %lld\n", path.c_str(), img.width, img.height,
              img.channels, img.channels == 1 ? "" : "s", static_cast<long long>(hw));
  std::printf("%6s %10s %12s %12s %9s %9s\n", "rank", "PSNR (dB)", "rel. error", "stored", "of dense", "energy");
  for (const RankRow& r : rows)
    std::printf("%6lld %10.2f %12.3e %12lld %8.1f%% %8.3f%%\n", static_cast<long long>(r.rank), r.psnr_db,
                r.relative_error, static_cast<long long>(r.stored), 100.0 * r.stored / hw, 100.0 * r.energy);
}

void write_json(const std::string& json_path, const std::string& image_path, const Image& img,
                const std::vector<RankRow>& rows, const std::vector<std::vector<double>>& spectra) {
  const int64_t hw = int64_t{img.height} * img.width;
  nlohmann::json j;
  j["image"] = image_path;
  j["width"] = img.width;
  j["height"] = img.height;
  j["channels"] = img.channels;
  j["channel_names"] = channel_names(img.channels);
  j["dense_per_channel"] = hw;
  j["ranks"] = nlohmann::json::array();
  for (const RankRow& r : rows) {
    // An exact reconstruction has infinite PSNR, which JSON cannot hold: null.
    j["ranks"].push_back({{"rank", r.rank},
                          {"psnr_db", std::isfinite(r.psnr_db) ? nlohmann::json(r.psnr_db) : nlohmann::json()},
                          {"relative_error", r.relative_error},
                          {"stored_per_channel", r.stored},
                          {"stored_fraction", static_cast<double>(r.stored) / hw},
                          {"energy", r.energy},
                          {"file", "rank_" + std::to_string(r.rank) + ".png"}});
  }
  j["singular_values"] = spectra;  // [channel][i], descending
  write_file_atomic(json_path, j.dump(2) + "\n");
}

void run_svd(const SvdFlags& f) {
  apply_threads(f.threads);
  const Image img = load_image(f.image);
  const std::vector<int64_t> ranks = checked_ranks(f.ranks, img, f.image);
  prepare_output_dir(f.out_dir, "--out");
  const int64_t h = img.height, w = img.width, hw = h * w, top_rank = ranks.back();
  const std::vector<std::string> names = channel_names(img.channels);

  // Per channel: the factors at the largest rank (only those are kept) and all singular values.
  std::vector<TruncatedSvd> factors;
  std::vector<std::vector<double>> spectra(img.channels);  // [channel] (min(h, w)), descending
  double norm_sq = 0;                                      // ||A||_F^2 over all channels
  for (int c = 0; c < img.channels; ++c) {
    const float* channel = img.pixels.data() + c * hw;  // (h, w)
    factors.push_back(truncated_svd(channel, h, w, top_rank, &spectra[c]));
    for (int64_t i = 0; i < hw; ++i) norm_sq += double{channel[i]} * channel[i];
  }

  std::vector<RankRow> rows;
  for (int64_t k : ranks) {
    Image approx{img.width, img.height, img.channels, std::vector<float>(img.pixels.size())};
    double err_sq = 0, energy = 0;
    for (int c = 0; c < img.channels; ++c) {
      const std::vector<float> a_k = reconstruct(factors[c], k);  // (h, w)
      std::copy(a_k.begin(), a_k.end(), approx.pixels.begin() + c * hw);
      for (int64_t i = 0; i < hw; ++i) {
        const double d = double{img.pixels[c * hw + i]} - a_k[i];
        err_sq += d * d;
      }
      energy += energy_fraction(spectra[c], k) / img.channels;
    }
    // PSNR and error of the float reconstruction, before the PNG rounds it to 8 bits.
    const double mse = err_sq / static_cast<double>(img.pixels.size());
    const double psnr = mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : std::numeric_limits<double>::infinity();
    rows.push_back({k, psnr, norm_sq > 0 ? std::sqrt(err_sq / norm_sq) : 0.0, energy, k * (h + w + 1)});
    save_png(f.out_dir + "/rank_" + std::to_string(k) + ".png", approx);
  }

  print_table(f.image, img, rows);
  write_json(f.out_dir + "/svd.json", f.image, img, rows, spectra);
  plot_spectrum(f.out_dir, spectra, names,
                static_cast<double>(std::max(h, w)) * std::numeric_limits<double>::epsilon());
  std::printf("wrote %s/rank_<k>.png, svd.json, spectrum.png, energy.png\n", f.out_dir.c_str());
}
}  // namespace

void register_svd(CLI::App& app) {
  auto flags = std::make_shared<SvdFlags>();
  CLI::App* cmd = app.add_subcommand(
      "svd", "truncated-SVD compression of an image at several ranks: PSNR, error, storage, singular spectrum");
  cmd->add_option("image", flags->image, "PNG or JPEG image (each channel is compressed as its own matrix)")
      ->required();
  cmd->add_option("--ranks", flags->ranks, "ranks to keep, comma-separated, each 1..min(height, width) "
                                           "(default: those of 1,5,20,50 that fit)")
      ->delimiter(',');
  cmd->add_option("--out", flags->out_dir, "output directory: rank_<k>.png, svd.json, spectrum.png, energy.png")
      ->capture_default_str();
  add_threads_option(*cmd, flags->threads);
  cmd->callback([flags] { run_svd(*flags); });
}

}  // namespace frugal::cli
