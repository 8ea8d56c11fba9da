// Fine-tunes a tiny model through frugal's public API (include/frugal/frugal.h): a fresh Llama
// with LoRA adapters, a step callback that prints each loss and stops once the loss drops below a
// target, then the plan of the same run. Prints one JSON line at the end for the test that runs it.
//
//   finetune_tiny [STEPS]
#include <frugal/frugal.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 6;
  const nlohmann::json spec = {{"arch", "llama"}, {"layers", 2},        {"dim", 32},        {"heads", 4},
                               {"ctx", 32},       {"micro-batch", 4},   {"steps", steps},   {"lora-rank", 4},
                               {"lr", 0.05},      {"warmup", 0},        {"sample-tokens", 0}, {"seed", 3}};
  try {
    int seen = 0;
    const nlohmann::json summary = frugal::train(spec, [&](const nlohmann::json& step) {
      ++seen;
      std::printf("step %d: loss %.4f\n", step["step"].get<int>(), step["loss"].get<double>());
      return seen < steps;  // (stops at the last step: the same run, ended by the callback)
    });
    nlohmann::json planned = spec;
    planned.erase("sample-tokens");  // (a key of train's outputs, not of plan)
    const nlohmann::json plan = frugal::plan(planned);
    const nlohmann::json result = {{"steps_seen", seen},
                                   {"losses", summary["losses"]},
                                   {"trainable_params", summary["trainable_params"]},
                                   {"planned_total", plan["predicted_memory"]["total"]},
                                   {"measured_total", summary["memory"]["total"]}};
    std::printf("%s\n", result.dump().c_str());
    frugal::train({{"lora-rnak", 4}});  // a typo: frugal::Error with the CLI's one-line message
  } catch (const frugal::Error& e) {
    std::printf("frugal::Error: %s\n", e.what());
    return 0;
  }
  return 1;  // (the typo must have been refused)
}
