// `frugal train`: train or fine-tune; with no flags, the built-in demo (a small GPT on the text
// of Debian's fortunes package, then a few generated lines).
#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/threading.h"
#include "comm/communicator.h"
#include "io/atomic_file.h"
#include "io/fashion_mnist.h"
#include "models/gpt.h"
#include "models/model_io.h"
#include "core/units.h"
#include "report/memory_table.h"
#include "report/plot.h"
#include "report/progress.h"
#include "report/summary.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/generate.h"
#include "train/checkpoint.h"
#include "train/planner.h"

namespace frugal::cli {

namespace {


void print_memory_report(const MemorySnapshot& predicted, const MemorySnapshot& measured, size_t cached) {
  std::printf("\nmemory\n");
  print_memory_table({"predicted", "measured"}, {predicted, measured});
  std::printf("  %-24s %12s %12s\n", "allocator cache (reuse)", "", format_bytes(static_cast<double>(cached)).c_str());
  std::printf("  %-24s %12s %12s\n", "process peak RSS (OS)", "", format_bytes(static_cast<double>(peak_rss_bytes())).c_str());
}

void write_plots(const std::string& dir, const std::vector<StepRecord>& steps, const std::vector<TimelineEvent>& timeline,
                 const std::string& strategy) {
  std::filesystem::create_directories(dir);
  Series loss{"training loss", {}, {}, false};
  for (const auto& s : steps) {
    loss.x.push_back(static_cast<double>(s.step + 1));
    loss.y.push_back(s.loss);
  }
  plot_png(dir + "/loss.png", {"Training loss", "optimizer step", "loss", false}, {loss});
  if (timeline.empty()) return;
  std::vector<Series> series(kNumMemCategories + 1);
  for (int c = 0; c < kNumMemCategories; ++c) series[c] = {mem_category_name(static_cast<MemCategory>(c)), {}, {}, true};
  series[kNumMemCategories] = {"total", {}, {}, true};
  for (const auto& e : timeline) {
    auto& s = series[static_cast<int>(e.category)];
    s.x.push_back(e.time_s * 1e3);
    s.y.push_back(static_cast<double>(e.live_bytes) / (1 << 20));
    series[kNumMemCategories].x.push_back(e.time_s * 1e3);
    series[kNumMemCategories].y.push_back(static_cast<double>(e.live_total) / (1 << 20));
  }
  plot_png(dir + "/memory_timeline.png", {"Live memory during one training step (" + strategy + ")", "time (ms)", "MiB", false},
           series);
}

void run_train(TrainFlags& f) {
  Communicator& comm = world();
  const bool lead = comm.rank() == 0;
  // --resume: the configuration comes from the checkpoint (flags given here must agree with it).
  std::optional<CheckpointRef> resume;
  if (!f.resume.empty()) {
    resume = latest_checkpoint(f.resume);
    const std::string taken = adopt_checkpoint_config(f, *resume, comm.size());
    if (lead)
      std::fprintf(stderr, "frugal train: resuming from %s after step %lld; from the checkpoint:%s\n", resume->dir.c_str(),
                   static_cast<long long>(resume->steps_done), taken.c_str());
    check(resume->steps_done < f.options.steps, "--resume: the checkpoint is already at step " +
                                                    std::to_string(resume->steps_done) + " of --steps " +
                                                    std::to_string(f.options.steps) + "; pass a larger --steps");
  }
  check(f.save_every == 0 || !f.save_dir.empty(), "--save-every needs --save DIR (checkpoints go to DIR/checkpoints)");
  check(f.save_every == 0 || f.options.zero == 0, "--save-every with --zero 1 is not supported (the optimizer state is "
                                                  "sharded across ranks); use --zero 0");
  apply_checkpoint_flags(f.checkpoint, f.options);
  apply_precision_flags(f.precision, f.options);
  // Under mpirun every rank trains; rank 0 alone prints progress and writes outputs.
  check(f.save_adapter_dir.empty() || f.lora.active(), "--save-adapter needs LoRA (--lora-rank R or --adapter DIR)");
  if (lead) {
    check_output_file(f.summary_path, "--summary");
    check_output_file(f.metrics_path, "--metrics");
    prepare_output_dir(f.save_dir, "--save");
    prepare_output_dir(f.plots_dir, "--plots");
    prepare_output_dir(f.save_adapter_dir, "--save-adapter");
  }
  set_num_threads(f.threads);
  MemoryLedger ledger;
  LedgerScope scope(ledger);

  // Predict before anything is allocated.
  const MemoryPlan plan = plan_training_memory(
      [&] { return build_model(f.model, f.data, f.options.seed, /*with_weights=*/false, f.lora); }, f.options);

  LoraSettings lora;
  std::unique_ptr<Model> model = build_model(f.model, f.data, f.options.seed, /*with_weights=*/true, f.lora, &lora);
  std::unique_ptr<DataSource> data = make_data_source(f.data, *model, f.options.seed);
  Trainer trainer(*model, *data, f.options);
  if (resume) restore_training_checkpoint(*resume, trainer);
  const int64_t first_step = resume ? resume->steps_done : 0;
  const nlohmann::json config = run_config(f, comm.size());
  const bool token_model = model->arch() == "gpt";
  const int64_t tokens_per_sample = token_model ? static_cast<Gpt&>(*model).context() : 1;
  if (lead) {
    std::fprintf(stderr, "frugal train: %s, %s parameters (%s trainable), %zu blocks, data: %s, batch %lld x %lld micro-batches x %d ranks, %s%s\n",
                 model->arch().c_str(), format_count(static_cast<double>(model->parameter_count())).c_str(),
                 format_count(static_cast<double>(model->trainable_parameter_count())).c_str(),
                 model->blocks().size(), data->describe().c_str(), static_cast<long long>(f.options.micro_batch),
                 static_cast<long long>(f.options.accum), comm.size(), precision_name(f.options.precision).c_str(),
                 f.options.zero && comm.size() > 1 ? ", ZeRO-1" : "");
    std::fprintf(stderr, "predicted peak memory: %s (activations %s)\n",
                 format_bytes(static_cast<double>(plan.peak.total)).c_str(),
                 format_bytes(static_cast<double>(plan.peak[MemCategory::Activations])).c_str());
  }

  std::unique_ptr<std::ofstream> metrics;
  if (lead && !f.metrics_path.empty()) {
    metrics = std::make_unique<std::ofstream>(f.metrics_path + ".tmp");
    check(metrics->good(), "cannot write " + f.metrics_path);
  }
  Progress progress(f.options.steps, token_model, f.options.batch_size() * comm.size() * tokens_per_sample);
  const int64_t bytes_before = comm.bytes_communicated();
  std::vector<StepRecord> records;
  std::vector<TimelineEvent> timeline;
  // A steady-state step (state already allocated).
  const int64_t timeline_step = first_step + (f.options.steps - first_step > 1 ? 1 : 0);
  for (int64_t s = first_step; s < f.options.steps; ++s) {
    if (!f.plots_dir.empty() && s == timeline_step) ledger.start_timeline();
    records.push_back(trainer.step(s));
    if (!f.plots_dir.empty() && s == timeline_step) {
      ledger.stop_timeline();
      timeline = ledger.timeline();
    }
    if (lead) progress.update(records.back(), ledger);
    if (metrics) *metrics << step_metrics(records.back(), ledger).dump() << '\n';
    if (lead && f.save_every > 0 && (s + 1) % f.save_every == 0)
      write_training_checkpoint(f.save_dir, s + 1, *model, trainer, config, f.keep);
  }
  const double bytes_per_step =
      static_cast<double>(comm.bytes_communicated() - bytes_before) / static_cast<double>(f.options.steps - first_step);
  if (lead) progress.finish();
  if (metrics) {
    metrics->close();
    check(metrics->good(), "cannot write " + f.metrics_path + ".tmp");
    std::filesystem::rename(f.metrics_path + ".tmp", f.metrics_path);
  }

  RunFacts facts;
  facts.steps = records;
  facts.token_model = token_model;
  facts.samples_per_step = f.options.batch_size() * comm.size();
  facts.tokens_per_sample = tokens_per_sample;
  facts.total_params = model->parameter_count();
  facts.trainable_params = model->trainable_parameter_count();
  facts.layer_count = static_cast<int64_t>(model->blocks().size());
  facts.measured = ledger.peak();
  facts.predicted = plan.peak;
  facts.at_peak = ledger.at_peak();
  // Mixed precision: fp32 weights (the masters) back in the model for evaluation, sampling and --save.
  // After the peaks are read: the conversion back is not part of training.
  trainer.finish();
  facts.final_loss_scale = trainer.loss_scale();
  nlohmann::json summary = make_summary(facts);
  summary["world_size"] = comm.size();
  summary["first_step"] = first_step + 1;  // losses[0] is this step's (1-based; > 1 after --resume)
  summary["zero"] = f.options.zero;
  summary["communicated_bytes_per_step"] = bytes_per_step;  // this rank's payload handed to collectives
  std::vector<double> comm_times;
  for (const StepRecord& r : records)
    if (r.step > 0 || records.size() == 1) comm_times.push_back(r.communication_s);
  summary["communication_s"] = median(comm_times);  // per step: the gradient allreduce, waiting included
  // Every rank's own peaks (ZeRO-1 shards optimizer state and masters): rank 0 reports them all.
  std::vector<int64_t> per_rank(static_cast<size_t>(comm.size()) * 3, 0);
  per_rank[comm.rank() * 3 + 0] = static_cast<int64_t>(facts.measured[MemCategory::Optimizer]);
  per_rank[comm.rank() * 3 + 1] = static_cast<int64_t>(facts.measured[MemCategory::MasterParams]);
  per_rank[comm.rank() * 3 + 2] = static_cast<int64_t>(facts.measured.total);
  comm.allreduce_sum(per_rank.data(), static_cast<int64_t>(per_rank.size()));
  for (int r = 0; r < comm.size(); ++r)
    summary["ranks"].push_back({{"rank", r}, {"optimizer", per_rank[r * 3]}, {"master_params", per_rank[r * 3 + 1]},
                                {"total", per_rank[r * 3 + 2]}});
  if (!lead) return;
  print_memory_report(plan.peak, facts.measured, ledger.cached_bytes());
  std::printf("\nfinal loss %.4f after %lld steps; median step %s, %s %s/s\n", summary["final_loss"].get<double>(),
              static_cast<long long>(f.options.steps), format_seconds(summary["step_time_s"].get<double>()).c_str(),
              format_count(summary[token_model ? "tokens_per_s" : "samples_per_s"].get<double>()).c_str(),
              token_model ? "tokens" : "samples");

  if (f.data == "fashion-mnist") {
    const ImageDataset test = load_fashion_mnist(kFashionMnistDir, /*train=*/false);
    const double accuracy = classification_accuracy(*model, test, model->arch() == "mlp");
    summary["eval_accuracy"] = accuracy;
    std::printf("test accuracy (10000 Fashion-MNIST test images): %.2f%%\n", 100.0 * accuracy);
  }
  if (token_model && f.data != "synthetic" && f.sample_tokens > 0) {
    SampleOptions sample;
    sample.tokens = f.sample_tokens;
    sample.seed = f.options.seed;
    std::printf("\nloss %.3f -> %.3f (a uniform guess over 256 bytes scores ln 256 = 5.545). A sample:\n%s\n",
                records.front().loss, records.back().loss,
                generate_text(static_cast<Gpt&>(*model), "\n", sample).c_str());
  }
  if (!f.save_dir.empty()) {
    save_model(*model, f.save_dir);  // the base weights; adapters go to --save-adapter
    std::printf("saved model to %s\n", f.save_dir.c_str());
  }
  if (!f.save_adapter_dir.empty()) {
    save_adapter(*model, lora, f.save_adapter_dir);
    std::printf("saved LoRA adapter (PEFT format) to %s\n", f.save_adapter_dir.c_str());
  }
  if (!f.plots_dir.empty()) write_plots(f.plots_dir, records, timeline, f.options.checkpoint);
  if (!f.summary_path.empty()) write_file_atomic(f.summary_path, summary.dump(2) + "\n");
}

}  // namespace

void register_train(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  flags->options.steps = 1200;  // the demo: about a minute on 2 cores
  flags->options.micro_batch = 16;
  flags->options.lr = 2e-3f;
  flags->options.warmup = 50;
  CLI::App* cmd = app.add_subcommand("train", "train or fine-tune a model (no flags: the built-in demo)");
  add_model_flags(*cmd, flags->model);
  add_training_flags(*cmd, flags->options, flags->threads);
  add_checkpoint_flags(*cmd, flags->checkpoint);
  add_lora_flags(*cmd, flags->lora);
  cmd->add_option("--save-adapter", flags->save_adapter_dir, "write the trained LoRA adapter as a PEFT directory");
  add_precision_flags(*cmd, flags->precision);
  cmd->add_option("--data", flags->data, "synthetic | fashion-mnist | fortunes | PATH (a text file, byte tokens)")
      ->capture_default_str();
  cmd->add_option("--save", flags->save_dir, "write the trained model directory");
  cmd->add_option("--summary", flags->summary_path, "write the run summary (JSON)");
  cmd->add_option("--metrics", flags->metrics_path, "write one JSON line per step");
  cmd->add_option("--plots", flags->plots_dir, "write loss and memory-timeline PNGs into this directory");
  cmd->add_option("--sample-tokens", flags->sample_tokens, "bytes to generate after training a GPT on text (0: none)")
      ->capture_default_str();
  cmd->add_option("--save-every", flags->save_every,
                  "write a training-state checkpoint every N steps into --save DIR/checkpoints (0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))->capture_default_str();
  cmd->add_option("--keep", flags->keep, "training-state checkpoints kept (the newest)")
      ->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--resume", flags->resume,
                  "continue from the newest complete checkpoint in DIR (a --save directory, its checkpoints/, or one step-N)");
  cmd->callback([flags, cmd] {
    for (const CLI::Option* opt : cmd->get_options())
      if (opt->count() > 0) flags->given.insert(opt->get_name());
    run_train(*flags);
  });
}

}  // namespace frugal::cli
