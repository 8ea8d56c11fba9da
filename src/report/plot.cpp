#include "report/plot.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace frugal {

namespace {
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
}  // namespace

void plot_png(const std::string& png_path, const PlotSpec& spec, const std::vector<Series>& series) {
  namespace fs = std::filesystem;
  const std::string data_path = png_path + ".dat.tmp";
  {
    std::ofstream data(data_path);
    check(data.good(), "cannot write plot data " + data_path);
    for (const auto& s : series) {
      for (size_t i = 0; i < s.x.size(); ++i) data << s.x[i] << ' ' << s.y[i] << '\n';
      data << "\n\n";  // gnuplot data-set separator
    }
  }
  std::string script = "set terminal pngcairo size 900,540 noenhanced font 'sans,10'\n";
  script += "set output " + quoted(png_path + ".tmp") + "\n";
  script += "set title " + quoted(spec.title) + "\nset xlabel " + quoted(spec.xlabel) + "\nset ylabel " +
            quoted(spec.ylabel) + "\nset grid\nset key outside right\n";
  if (spec.log_y) script += "set logscale y\nset format y \"%.0e\"\n";
  if (spec.log_x) script += "set logscale x 2\n";
  script += "plot ";
  for (size_t i = 0; i < series.size(); ++i) {
    script += (i ? ", " : "") + quoted(data_path) + " index " + std::to_string(i) + " with " +
              (series[i].steps ? "steps" : "lines") + " lw 2 title " + quoted(series[i].title);
  }
  script += "\n";
  // gnuplot's warnings (e.g. an empty range on constant data) are not frugal's output; failures are
  // caught below by the missing file.
  FILE* pipe = popen("gnuplot > /dev/null 2>&1", "w");
  check(pipe != nullptr, "cannot run gnuplot (install the Debian package gnuplot-nox)");
  std::fwrite(script.data(), 1, script.size(), pipe);
  const int status = pclose(pipe);
  fs::remove(data_path);
  check(status == 0 && fs::exists(png_path + ".tmp"),
        "gnuplot failed to draw " + png_path + " (is the Debian package gnuplot-nox installed?)");
  fs::rename(png_path + ".tmp", png_path);
}

}  // namespace frugal
