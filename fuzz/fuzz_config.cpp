// libFuzzer target: arbitrary bytes as a model's config.json (HF GPT-2 keys, or frugal_arch mlp /
// cnn / linear). Parsing and building the model must end in a model or a frugal::Error (or a JSON
// parse error), never a crash, a sanitizer report or a hang. The model is built in a measuring
// ledger, so a config that asks for huge dimensions costs bookkeeping, not memory.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frugal::MemoryLedger ledger(/*measure_only=*/true);
  frugal::LedgerScope scope(ledger);
  try {
    const nlohmann::json config = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(data), size));
    auto model = frugal::model_from_config(config);
    model->init_weights(0);
  } catch (const frugal::Error&) {
  } catch (const nlohmann::json::exception&) {
  } catch (const std::bad_alloc&) {
  }
  return 0;
}
