#pragma once
// Line plots as PNG through gnuplot (Debian's gnuplot-nox), so figures are drawn by a real
// plotting program. Errors (gnuplot missing, write failure) are reported as frugal::Error.
#include <string>
#include <vector>

namespace frugal {

struct Series {
  std::string title;
  std::vector<double> x, y;
  bool steps = false;  // draw as a step function (memory timelines)
};

struct PlotSpec {
  std::string title, xlabel, ylabel;
  bool log_y = false;
  bool log_x = false;
};

void plot_png(const std::string& png_path, const PlotSpec& spec, const std::vector<Series>& series);

}  // namespace frugal
