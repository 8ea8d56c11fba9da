#include "run/autopilot_spec.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/units.h"
#include "models/causal_lm.h"
#include "train/precision.h"

namespace frugal {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// The model a configuration of these flags trains, shapes only (its precision decides the weights' storage).
ConfiguredModelFactory shapes_of(const ModelSpec& model, const std::string& data, const LoraSpec& lora) {
  return [&model, &data, &lora](const TrainOptions& o) {
    return build_model(model, data, o.seed, /*with_weights=*/false, lora, nullptr, storage_spec(o));
  };
}

// The least memory a run of these flags can take: micro-batch 1, memory-poor checkpointing.
size_t smallest_total(const ModelSpec& model, const std::string& data, const LoraSpec& lora, TrainOptions o,
                      int64_t batch_size, DType precision) {
  o.micro_batch = 1;
  o.accum = batch_size;
  o.checkpoint = "memory-poor";
  o.activation_budget = 0;
  o.precision = precision;
  o.steps = std::max<int64_t>(o.steps, 2);
  const ConfiguredModelFactory make_model = shapes_of(model, data, lora);
  return plan_training_memory([&] { return make_model(o); }, o).peak.total;
}

std::string size_text(size_t bytes) { return format_bytes(static_cast<double>(bytes)); }

// What would make the run fit, each with the smallest total it reaches.
// `least`: the configuration of the least memory the search itself found.
std::string what_would_fit(const AutopilotRequest& request, const AutopilotInputs& in, const Candidate& least) {
  const int64_t n = request.batch_size;
  const size_t reached = least.plan.peak.total;
  const size_t unconstrained = smallest_total(in.model, in.data, in.lora, in.options, n, request.precisions.front());
  const size_t smallest = std::min(reached, unconstrained);
  std::vector<std::string> options;
  const auto offer = [&](const std::string& what, size_t total) {  // only what needs less
    if (total < smallest) options.push_back(what + " " + size_text(total));
  };
  if (unconstrained < reached)
    options.push_back("any micro-batch and checkpointing (drop --micro-batch/--checkpoint) " + size_text(unconstrained));
  if (request.precisions.size() == 1 && request.precisions.front() == DType::F32)
    offer("bf16 (--allow precision)", smallest_total(in.model, in.data, in.lora, in.options, n, DType::BF16));
  if (request.optimizers == std::vector<std::string>{"adamw"}) {
    TrainOptions eight = in.options;
    eight.optimizer = "adamw8bit";
    offer("8-bit AdamW (--allow optimizer)", smallest_total(in.model, in.data, in.lora, eight, n, request.precisions.front()));
  }
  const std::unique_ptr<Model> model = build_model(in.model, in.data, in.options.seed, false, in.lora);
  if (!in.lora.active() && (as_causal_lm(*model) || model->arch() == "mlp")) {
    LoraSpec lora = in.lora;
    lora.rank = 8;
    offer("LoRA r8 (--lora-rank 8)", smallest_total(in.model, in.data, lora, in.options, n, request.precisions.front()));
  }
  if (as_causal_lm(*model) && as_causal_lm(*model)->context() >= 2) {
    ModelSpec shorter = in.model;
    shorter.ctx = as_causal_lm(*model)->context() / 2;
    offer("--ctx " + std::to_string(shorter.ctx),
          smallest_total(shorter, in.data, in.lora, in.options, n, request.precisions.front()));
  }
  // ZeRO-1 over mpirun ranks shards the optimizer state and the fp32 masters (what they hold at the
  // peak); an estimate (`frugal plan --ranks 2 --zero 1|2` plans each rank exactly).
  const size_t sharded = least.plan.at_peak[MemCategory::Optimizer] + least.plan.at_peak[MemCategory::MasterParams];
  if (sharded > 0) offer("2 ranks with --zero 1 (mpirun -np 2), per rank about", reached - sharded / 2);
  std::string text;
  for (const std::string& o : options) text += (text.empty() ? "" : ", ") + o;
  return text;
}

}  // namespace

bool wants_autopilot(const MemorySpec& f) {
  if (!f.budget.empty()) return true;
  check(f.batch_size == 0 && f.allow.empty(),
        "--batch-size and --allow go with --memory-budget (without it: --micro-batch and --accum)");
  return false;
}

AutopilotRequest autopilot_request(const MemorySpec& f, const AutopilotInputs& in) {
  check(f.batch_size > 0, "--memory-budget needs --batch-size N (the samples of one optimizer step)");
  check(!in.given.count("--accum"), "--accum is chosen by --memory-budget (--batch-size / micro-batch); drop it");
  AutopilotRequest r;
  r.budget_bytes = static_cast<int64_t>(parse_size(f.budget));
  check(r.budget_bytes > 0, "--memory-budget must be positive");
  r.batch_size = f.batch_size;
  if (in.given.count("--micro-batch")) r.micro_batch = in.options.micro_batch;
  if (in.given.count("--checkpoint")) r.checkpoint = in.options.checkpoint;
  bool precision = false, optimizer = false;
  for (const std::string& item : split_list(f.allow)) {
    check(item == "precision" || item == "optimizer", "--allow takes precision and/or optimizer, not '" + item + "'");
    (item == "precision" ? precision : optimizer) = true;
  }
  check(!(precision && in.given.count("--precision")),
        "--allow precision lets --memory-budget choose the precision; drop --precision or --allow precision");
  check(!(optimizer && in.given.count("--optimizer")),
        "--allow optimizer lets --memory-budget choose AdamW or its 8-bit variant; drop --optimizer or --allow optimizer");
  r.precisions = precision ? std::vector<DType>{DType::F32, DType::BF16, DType::F16}
                           : std::vector<DType>{in.options.precision};
  r.optimizers = optimizer ? std::vector<std::string>{"adamw", "adamw8bit"} : std::vector<std::string>{in.options.optimizer};
  return r;
}

AutopilotResult run_autopilot(const AutopilotRequest& request, const AutopilotInputs& in) {
  AutopilotResult result = search_configurations(shapes_of(in.model, in.data, in.lora), in.options, request,
                                                 machine_rates());
  if (result.chosen()) return result;
  const Candidate& smallest = *result.smallest();
  std::string constraints;
  if (request.micro_batch > 0) constraints += " with --micro-batch " + std::to_string(request.micro_batch);
  if (!request.checkpoint.empty()) constraints += " with --checkpoint " + request.checkpoint;
  const std::string help = what_would_fit(request, in, smallest);
  throw Error("nothing fits in --memory-budget " + size_text(static_cast<size_t>(request.budget_bytes)) + constraints +
              " (batch " + std::to_string(request.batch_size) + "): the smallest configuration needs " +
              size_text(smallest.plan.peak.total) + " (" + smallest.describe() + ")" +
              (help.empty() ? std::string() : "; it would take " + help));
}

void apply_candidate(const Candidate& chosen, TrainOptions& options, CheckpointSpec& checkpoint,
                     PrecisionSpec& precision) {
  options.micro_batch = chosen.options.micro_batch;
  options.accum = chosen.options.accum;
  checkpoint.strategy = chosen.options.checkpoint;
  checkpoint.activation_budget =
      chosen.options.activation_budget > 0 ? std::to_string(chosen.options.activation_budget) : "";
  precision.precision = precision_name(chosen.options.precision);
  options.optimizer = chosen.options.optimizer;
  // --optimizer-block with --allow optimizer applies to the adamw8bit candidates; another choice
  // has no blocks to size.
  if (options.optimizer != "adamw8bit") options.optimizer_block = TrainOptions{}.optimizer_block;
  apply_checkpoint_spec(checkpoint, options);
  apply_precision_spec(precision, options);
  options.validate();
}

std::string train_command_line(const Candidate& chosen, const std::string& budget, const std::vector<std::string>& args) {
  // The flags the autopilot decides (and plan's own) are replaced; the others are kept as given.
  static const std::set<std::string> replaced = {"--memory-budget", "--batch-size", "--allow",     "--micro-batch",
                                                 "--accum",         "--checkpoint", "--precision", "--activation-budget",
                                                 "--memory-limit",  "--optimizer"};
  std::vector<std::string> kept = {"frugal", "train"};
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::string name = a.substr(0, a.find('='));
    if (a == "--json") continue;
    if (name == "--ranks") {  // (plan's own)
      if (a.find('=') == std::string::npos) ++i;
      continue;
    }
    const bool unused_block = name == "--optimizer-block" && chosen.options.optimizer != "adamw8bit";
    if (replaced.count(name) || unused_block) {
      if (a.find('=') == std::string::npos) ++i;  // its value
      continue;
    }
    kept.push_back(a);
  }
  const TrainOptions& o = chosen.options;
  for (const std::string& a : {std::string("--micro-batch"), std::to_string(o.micro_batch), std::string("--accum"),
                               std::to_string(o.accum), std::string("--checkpoint"), o.checkpoint})
    kept.push_back(a);
  if (o.activation_budget > 0) {
    kept.push_back("--activation-budget");
    kept.push_back(std::to_string(o.activation_budget));
  }
  kept.push_back("--precision");
  kept.push_back(precision_name(o.precision));
  kept.push_back("--optimizer");
  kept.push_back(o.optimizer);
  kept.push_back("--memory-limit");
  kept.push_back(budget);
  std::string line;
  for (const std::string& a : kept) {
    const bool plain = a.find_first_of(" \t'\"$\\*?;&|<>()`") == std::string::npos && !a.empty();
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (line.empty() ? "" : " ") + (plain ? a : quoted + "'");
  }
  return line;
}

}  // namespace frugal
