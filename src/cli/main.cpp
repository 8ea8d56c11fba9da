// frugal: train and fine-tune neural networks in little memory, and show where every byte goes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"frugal: memory-frugal training with measured memory"};
  app.require_subcommand(1);
  frugal::cli::register_train(app);
  frugal::cli::register_grad(app);
  frugal::cli::register_generate(app);
  frugal::cli::register_plan(app);
  frugal::cli::register_experiment(app);
  frugal::cli::register_lora(app);
  frugal::cli::register_svd(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "frugal: error: %s\n", e.what());
    return 2;
  } catch (const frugal::Error& e) {
    std::fprintf(stderr, "frugal: error: %s\n", e.what());
    return 1;
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "frugal: error: invalid JSON: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "frugal: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "frugal: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
