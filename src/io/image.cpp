#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "io/atomic_file.h"

namespace frugal {

Image load_image(const std::string& path) {
  // stb reports a missing file as "can't fopen"; say so in our words.
  check(std::filesystem::is_regular_file(path), "cannot decode image " + path + ": no such file");
  int w = 0, h = 0, c = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &c, 0), stbi_image_free);
  if (!data) {  // the reason is null while nothing failed: only read it here
    const char* reason = stbi_failure_reason();
    throw Error("cannot decode image " + path + ": " + (reason ? reason : "unknown format"));
  }
  Image img{w, h, c, std::vector<float>(static_cast<size_t>(c) * h * w)};
  // stb interleaves channels (h, w, c); frugal keeps each channel as its own (h, w) matrix.
  const stbi_uc* src = data.get();
  for (int ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < int64_t{h} * w; ++i) img.pixels[ch * int64_t{h} * w + i] = src[i * c + ch];
  return img;
}

void save_png(const std::string& path, const Image& image) {
  const int64_t hw = int64_t{image.height} * image.width;
  check(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4 &&
            image.pixels.size() == static_cast<size_t>(image.channels * hw),
        "cannot write " + path + ": not a 1..4 channel image with matching pixel count");
  std::vector<uint8_t> interleaved(image.channels * hw);  // (h, w, c)
  for (int ch = 0; ch < image.channels; ++ch)
    for (int64_t i = 0; i < hw; ++i) {
      const float r = std::round(image.pixels[ch * hw + i]);
      const float v = r >= 0.0f ? std::min(r, 255.0f) : 0.0f;  // NaN -> 0
      interleaved[i * image.channels + ch] = static_cast<uint8_t>(v);
    }
  // Encode into memory first, then write: the sink of write_file_atomic may throw, and an exception
  // must not unwind through stb's C frames.
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  const int ok = stbi_write_png_to_func(append, &png, image.width, image.height, image.channels,
                                        interleaved.data(), image.width * image.channels);
  check(ok != 0, "cannot encode PNG " + path);
  write_file_atomic(path, png);
}

}  // namespace frugal
