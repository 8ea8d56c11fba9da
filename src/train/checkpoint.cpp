#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/file_fingerprint.h"
#include "io/safetensors.h"
#include "models/model_io.h"
#include "train/quantized_base_record.h"

namespace frugal {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFiles[] = {"config.json", "model.safetensors", "state.safetensors"};

std::string step_name(int64_t steps_done) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(steps_done));
  return name;
}

// Why the checkpoint in dir cannot be used, or "" if it is complete.
std::string damage(const fs::path& dir, nlohmann::json& trainer) {
  const fs::path meta = dir / "trainer.json";
  if (!fs::exists(meta)) return "no trainer.json";
  try {
    trainer = nlohmann::json::parse(read_file(meta.string()));
    // A sharded checkpoint keeps its weights in the ranks' state files; a run on a quantised base
    // writes none (the base is rebuilt from its source).
    const bool no_model = trainer.value("sharded", false) || trainer.contains("quantized_base");
    const bool no_state = trainer.value("sharded", false);
    for (const char* file : kFiles) {
      const std::string name = file;
      const bool optional = (name == "model.safetensors" && no_model) || (name == "state.safetensors" && no_state);
      if (!trainer.at("files").contains(file) && !optional) return "trainer.json records no " + name;
    }
    for (const auto& [file, recorded] : trainer.at("files").items()) {
      const fs::path path = dir / file;
      if (!fs::exists(path)) return "no " + file;
      if (file_fingerprint(path.string()) != recorded) return file + " does not match its recorded size and CRC-32";
    }
    trainer.at("steps_done").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return std::string("trainer.json is malformed (") + e.what() + ")";
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<fs::path> step_dirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(root)) return dirs;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && entry.path().filename().string().starts_with("step-")) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());  // zero-padded step numbers: name order is step order
  return dirs;
}

}  // namespace

namespace {
// Every rank waits here until all have arrived (a sum nobody reads).
void barrier(Communicator& comm) {
  int64_t arrived = 1;
  comm.allreduce_sum(&arrived, 1);
}

// Each rank's state file of a sharded checkpoint: its CRC and size, collected on every rank.
nlohmann::json write_rank_states(const fs::path& partial, Trainer& trainer, Communicator& comm) {
  const std::string mine = state_file_name(comm.rank(), comm.size(), true);
  write_safetensors((partial / mine).string(), trainer.state_tensors());
  const nlohmann::json print = file_fingerprint((partial / mine).string());
  std::vector<int64_t> all(static_cast<size_t>(comm.size()) * 2, 0);
  all[static_cast<size_t>(comm.rank()) * 2] = print.at("bytes").get<int64_t>();
  all[static_cast<size_t>(comm.rank()) * 2 + 1] = print.at("crc32").get<int64_t>();
  comm.allreduce_sum(all.data(), static_cast<int64_t>(all.size()));
  nlohmann::json files;
  for (int r = 0; r < comm.size(); ++r)
    files[state_file_name(r, comm.size(), true)] = {{"bytes", static_cast<uint64_t>(all[static_cast<size_t>(r) * 2])},
                                                     {"crc32", static_cast<uint64_t>(all[static_cast<size_t>(r) * 2 + 1])}};
  return files;
}

// A LoRA base quantised to nf4/int8: its weights are placeholders, held by the adapted layers.
bool has_quantized_base(const Model& model) {
  for (const Param* p : model.state())
    if (p->value.is_placeholder()) return true;
  return false;
}
}  // namespace

std::string state_file_name(int rank, int ranks, bool sharded) {
  return sharded && ranks > 1 ? "state.rank-" + std::to_string(rank) + ".safetensors" : "state.safetensors";
}

void write_training_checkpoint(const std::string& root, int64_t steps_done, const Model& model, Trainer& trainer,
                               const nlohmann::json& run_config, int keep, Communicator& comm) {
  const bool sharded = trainer.sharded_state();
  if (!sharded && comm.rank() != 0) return;  // every rank holds the same state: rank 0 writes it
  const fs::path dir = fs::path(root) / "checkpoints";
  const std::string name = step_name(steps_done);
  const fs::path partial = dir / std::string(".").append(name).append(".partial");  // (append: GCC 12's -Wrestrict)
  const fs::path final_dir = dir / name;
  if (comm.rank() == 0) {
    fs::create_directories(dir);
    fs::remove_all(partial);
    fs::create_directories(partial);
  }
  nlohmann::json meta = trainer.state_json();
  if (sharded) {  // each rank its own state; the weights are in those files (no model.safetensors)
    barrier(comm);
    meta["files"] = write_rank_states(partial, trainer, comm);
    meta["sharded"] = true;
    if (comm.rank() == 0) write_file_atomic((partial / "config.json").string(), model.config().dump(2) + "\n");
  } else if (has_quantized_base(model)) {  // the base is rebuilt from its source on --resume
    write_file_atomic((partial / "config.json").string(), model.config().dump(2) + "\n");
    write_safetensors((partial / "state.safetensors").string(), trainer.state_tensors());  // all but the base
    meta["files"]["state.safetensors"] = file_fingerprint((partial / "state.safetensors").string());
    meta["quantized_base"] = record_quantized_base(run_config.value("model", std::string()));
  } else {
    save_model(model, partial.string());  // config.json + model.safetensors, each fsync'd
    write_safetensors((partial / "state.safetensors").string(), trainer.state_tensors());
    for (const char* file : {"model.safetensors", "state.safetensors"}) meta["files"][file] = file_fingerprint((partial / file).string());
  }
  if (comm.rank() == 0) {
    meta["format"] = "frugal-training-checkpoint-1";
    meta["steps_done"] = steps_done;
    meta["run"] = run_config;
    meta["files"]["config.json"] = file_fingerprint((partial / "config.json").string());
    write_file_atomic((partial / "trainer.json").string(), meta.dump(2) + "\n");
    fs::remove_all(final_dir);
    fs::rename(partial, final_dir);
    fsync_parent_dir(final_dir.string());  // makes the rename durable
    // Keep the newest `keep` complete checkpoints.
    std::vector<fs::path> dirs = step_dirs(dir);
    for (size_t i = 0; i + static_cast<size_t>(std::max(keep, 1)) < dirs.size(); ++i) fs::remove_all(dirs[i]);
  }
  if (sharded) barrier(comm);  // no rank goes on before the checkpoint is in place
}

CheckpointRef latest_checkpoint(const std::string& root) {
  fs::path base = root;
  check(fs::is_directory(base), "--resume " + root + ": no such directory");
  if (fs::exists(base / "trainer.json")) {  // one step directory
    nlohmann::json trainer;
    const std::string why = damage(base, trainer);
    check(why.empty(), "--resume " + root + ": " + why);
    return {base.string(), trainer.at("steps_done").get<int64_t>(), trainer};
  }
  if (fs::is_directory(base / "checkpoints")) base /= "checkpoints";
  std::vector<fs::path> dirs = step_dirs(base);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    nlohmann::json trainer;
    const std::string why = damage(*it, trainer);
    if (why.empty()) return {it->string(), trainer.at("steps_done").get<int64_t>(), trainer};
    std::fprintf(stderr, "frugal: skipping checkpoint %s: %s\n", it->c_str(), why.c_str());
  }
  throw Error("--resume " + root + ": no complete checkpoint found (written by --save-every N --save DIR)");
}

void restore_training_checkpoint(const CheckpointRef& checkpoint, Trainer& trainer, const Communicator& comm) {
  const bool sharded = checkpoint.trainer.value("sharded", false);
  check(sharded == trainer.sharded_state(),
        "--resume: the checkpoint " + checkpoint.dir + (sharded ? " holds state sharded across ranks (--zero)" : " holds unsharded state") +
            ", this run's is " + (trainer.sharded_state() ? "sharded" : "not") + " (pass the run's --zero)");
  const SafetensorsFile state =
      SafetensorsFile::open(checkpoint.dir + "/" + state_file_name(comm.rank(), comm.size(), sharded));
  trainer.restore_state(state, checkpoint.trainer);
}

}  // namespace frugal
