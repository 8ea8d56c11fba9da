// frugal: train and fine-tune neural networks in little memory, and show where every byte goes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "run/process_setup.h"
#include "run/rates_process.h"
#include "comm/communicator.h"
#include "core/error.h"

namespace {

// "frugal: error: ..." (with the rank when several processes run).
void print_error(const char* what) {
  const frugal::Communicator& world = frugal::world();
  if (world.size() > 1)
    std::fprintf(stderr, "frugal: error (rank %d of %d): %s\n", world.rank(), world.size(), what);
  else
    std::fprintf(stderr, "frugal: error: %s\n", what);
}

int run(int argc, char** argv) {
  CLI::App app{"frugal: memory-frugal training with measured memory"};
  app.require_subcommand(1);
  frugal::cli::register_train(app);
  frugal::cli::register_grad(app);
  frugal::cli::register_generate(app);
  frugal::cli::register_chat(app);
  frugal::cli::register_plan(app);
  frugal::cli::register_experiment(app);
  frugal::cli::register_lora(app);
  frugal::cli::register_export(app);
  frugal::cli::register_svd(app);
  frugal::cli::register_doctor(app);
  frugal::cli::register_tokenize(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(e.what());
    return 2;
  } catch (const frugal::Error& e) {
    print_error(e.what());
    return 1;
  } catch (const nlohmann::json::exception& e) {
    print_error((std::string("invalid JSON: ") + e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    print_error(e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    frugal::prepare_process(argv);  // the BLAS kernel and OpenMP's wait policy (may restart frugal)
  } catch (const frugal::Error& e) {
    std::fprintf(stderr, "frugal: error: %s\n", e.what());
    return 2;
  }
  frugal::init_distributed(argc, argv);
  // Rates measured in this process would count in the peak RSS a budget bounds; under MPI each rank
  // would start a child, so ranks measure in process (a distributed run plans per rank anyway).
  if (frugal::world().size() == 1) frugal::measure_rates_in_child_processes();
  frugal::cli::record_command_line(argc, argv);  // plan --memory-budget prints the train command
  const int code = run(argc, argv);
  // A failing rank ends the whole job: the others may be waiting for it in a collective.
  if (code != 0 && frugal::world().size() > 1) frugal::world().abort(code);
  frugal::finalize_distributed();
  return code;
}
