#pragma once
// PNG/JPEG (and whatever else stb_image decodes) in, PNG out, through Debian's compiled stb.
// Pixels are floats so that images feed straight into linear algebra (frugal svd).
#include <string>
#include <vector>

namespace frugal {

struct Image {
  int width = 0, height = 0, channels = 0;  // channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  std::vector<float> pixels;                // (channels, height, width), values 0..255
};

// Error "cannot decode image FILE: <reason>" if the file is missing or is not a decodable image.
Image load_image(const std::string& path);

// Rounds and clamps to 0..255 and writes atomically (temp file, then rename).
void save_png(const std::string& path, const Image& image);

}  // namespace frugal
