#pragma once
// Unicode Normalization Form C (ICU), for tokenizer.json's "NFC" normalizer (Qwen2's). Bytes that are
// not valid UTF-8 stay as they are (the normalizer of Hugging Face's tokenizers never sees them: it
// reads text), so normalizing never loses a byte.
#include <string>
#include <string_view>

namespace frugal {

// False when `text` is in NFC already (most text is; `out` is then untouched), else true with the
// normalized text in `out`.
bool nfc_normalize(std::string_view text, std::string& out);

}  // namespace frugal
