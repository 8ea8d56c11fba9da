// A training run of a spec: `frugal train`, frugal::train() and Python's frugal.train().
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "run/train_run.h"

#include "comm/communicator.h"
#include "core/error.h"
#include "core/threading.h"
#include "core/units.h"
#include "io/atomic_file.h"
#include "io/fashion_mnist.h"
#include "models/causal_lm.h"
#include "models/model_io.h"
#include "report/memory_table.h"
#include "report/plot.h"
#include "report/progress.h"
#include "report/summary.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/generate.h"
#include "train/machine_rates.h"
#include "train/planner.h"
#include "train/run_description.h"
#include "run/autopilot_spec.h"
#include "run/chat_data_run.h"
#include "train/chat_eval.h"
#include "run/model_builder.h"
#include "run/process_setup.h"
#include "run/rates_process.h"
#include "run/run_record.h"
#include "text/tokenizer.h"

namespace frugal {

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

// One `frugal train` run: its flags, what it builds, and what the loop records. Under mpirun every
// rank trains; rank 0 (the lead) alone prints progress and writes outputs.
struct TrainRun {
  TrainRun(RunSpec& f, Communicator& c, MemoryLedger& l, std::optional<CheckpointRef> r)
      : spec(f), comm(c), ledger(l), resume(std::move(r)) {}

  RunSpec& spec;
  Communicator& comm;
  MemoryLedger& ledger;
  std::optional<CheckpointRef> resume;
  MemoryPlan plan;
  LoraSettings lora;
  std::unique_ptr<Model> model;
  std::unique_ptr<DataSource> data;
  std::unique_ptr<Trainer> trainer;
  int64_t first_step = 0;
  bool token_model = false;
  int64_t tokens_per_sample = 1;
  std::vector<StepRecord> records;
  std::vector<TimelineEvent> timeline;  // of one steady-state step, for --plots
  double bytes_per_step = 0;            // this rank's payload handed to collectives
  MemorySnapshot measured;              // the ledger's peaks over training (before the masters go back)
  size_t memory_limit = 0;              // --memory-limit (or --memory-budget) in bytes; 0: none
  double predicted_step_s = 0;          // the cost model's, for the summary
  bool stopped = false;                 // the step callback ended the run before --steps
  std::optional<ChatDataSet> chat;      // --data FILE.jsonl: its examples and counts
  std::vector<nlohmann::json> evals;    // each evaluation: step, loss, perplexity, accuracy
  double best_eval_loss = INFINITY;     // --save-best keeps the model that scored it

  bool lead() const { return comm.rank() == 0; }
};

// --resume: the configuration comes from the checkpoint (flags given here must agree with it).
std::optional<CheckpointRef> adopt_resume(RunSpec& f, const Communicator& comm) {
  if (f.output.resume.empty()) return std::nullopt;
  CheckpointRef resume = latest_checkpoint(f.output.resume);
  const std::string taken = adopt_checkpoint_settings(f, resume, comm.size());
  if (comm.rank() == 0)
    std::fprintf(stderr, "frugal train: resuming from %s after step %lld; from the checkpoint:%s\n", resume.dir.c_str(),
                 static_cast<long long>(resume.steps_done), taken.c_str());
  check(resume.steps_done < f.options.steps, "--resume: the checkpoint is already at step " +
                                                 std::to_string(resume.steps_done) + " of --steps " +
                                                 std::to_string(f.options.steps) + "; pass a larger --steps");
  return resume;
}

// LoRA on a base quantised to nf4/int8: no model to --save, checkpoints without weights.
bool quantized_base(const RunSpec& f) { return f.lora.active() && quantized_base_format(f.lora.base_precision); }

// The spec resolved, and output locations (checked before a run can waste time).
void apply_train_flags(RunSpec& f, bool lead) {
  resolve_spec(f, Command::Train);
  if (!lead) return;
  check_output_file(f.output.summary_path, "--summary");
  check_output_file(f.output.metrics_path, "--metrics");
  prepare_output_dir(f.output.save_dir, "--save");
  prepare_output_dir(f.output.plots_dir, "--plots");
  prepare_output_dir(f.output.save_adapter_dir, "--save-adapter");
}

// --memory-budget: the fastest configuration that fits, applied to the flags; --memory-limit (the
// budget by default). Returns the limit in bytes (0: none).
size_t choose_configuration(RunSpec& f, const Communicator& comm) {
  const MemorySpec& m = f.memory;
  const size_t limit = m.limit.empty() ? 0 : parse_size(m.limit);
  check(m.limit.empty() || limit > 0, "--memory-limit must be positive");
  if (!wants_autopilot(m)) return limit;
  check(f.output.resume.empty(), "--memory-budget with --resume: the checkpoint fixes the configuration (--memory-limit "
                          "still applies)");
  check(comm.size() == 1, "--memory-budget under mpirun is not supported: run `frugal plan --memory-budget` and pass "
                          "its flags");
  const AutopilotInputs in{f.model, f.data, f.lora, f.options, f.given};
  const AutopilotResult result = run_autopilot(autopilot_request(m, in), in);
  const Candidate& chosen = *result.chosen();
  apply_candidate(chosen, f.options, f.checkpoint, f.precision);
  report_rates_measurement();
  std::fprintf(stderr, "memory budget %s: %s (predicted %s, %s per step; %lld of %zu configurations fit)\n",
               m.budget.c_str(), chosen.describe().c_str(), format_bytes(static_cast<double>(chosen.plan.peak.total)).c_str(),
               format_seconds(chosen.step_seconds).c_str(), static_cast<long long>(result.fitting), result.candidates.size());
  return limit > 0 ? limit : parse_size(m.budget);
}

// The prediction first (before anything is allocated), then the model, its data and the trainer.
void build_run(TrainRun& run) {
  RunSpec& f = run.spec;
  // Named explicitly, so the flags a checkpoint records keep it: a resumed run's --model is the
  // checkpoint, which holds no tokenizer files.
  if (f.model.tokenizer.empty()) f.model.tokenizer = tokenizer_dir(f.model);
  // This rank's plan (its shards under --zero), with collectives that move nothing.
  const std::unique_ptr<Communicator> planned_rank = planning_communicator(run.comm.rank(), run.comm.size());
  run.plan = plan_training_memory(
      [&] {
        std::unique_ptr<Model> model = build_model(f.model, f.data, f.options.seed, /*with_weights=*/false, f.lora,
                                                   nullptr, storage_spec(f.options, planned_rank.get()));
        check_settings_apply(f.options, *model);
        return model;
      },
      f.options, planned_rank.get());
  run.predicted_step_s = predict_step_time(run.plan.work, machine_rates()).total();
  if (run.memory_limit > 0) {  // a run that cannot fit never starts
    check(run.plan.peak.total <= run.memory_limit,
          "--memory-limit " + format_bytes(static_cast<double>(run.memory_limit)) + " is below this run's planned peak of " +
              format_bytes(static_cast<double>(run.plan.peak.total)) +
              " (see `frugal plan`; --memory-budget chooses settings that fit)");
    run.ledger.set_limit(run.memory_limit);
  }
  // Test only: an allocation larger than planned, at the first time the phase comes ("backward 1:64MiB").
  if (const char* forced = std::getenv("FRUGAL_TEST_FORCE_ALLOCATION")) {
    const std::string spec = forced;
    const size_t colon = spec.rfind(':');
    check(colon != std::string::npos, "FRUGAL_TEST_FORCE_ALLOCATION must be PHASE:SIZE");
    run.ledger.force_allocation_at(spec.substr(0, colon), parse_size(spec.substr(colon + 1)));
  }
  run.model = build_model(f.model, f.data, f.options.seed, /*with_weights=*/true, f.lora, &run.lora,
                          storage_spec(f.options, &run.comm));
  if (is_chat_data(f.data, f.chat)) {
    use_fused_attention_for_examples(*run.model, true);
    const int64_t context = as_causal_lm(*run.model)->context();
    run.chat = load_chat_data(f, context, run.lead());
    run.data = std::make_unique<ChatBatches>(std::move(run.chat->train), context, f.chat.packing, f.options.seed,
                                             "chat examples from " + f.data);
  } else {
    run.data = make_data_source(f.data, *run.model, f.options.seed, model_tokenizer(f.model));
  }
  run.trainer = std::make_unique<Trainer>(*run.model, *run.data, f.options);
  if (run.resume) restore_training_checkpoint(*run.resume, *run.trainer, run.comm);
  run.first_step = run.resume ? run.resume->steps_done : 0;
  run.token_model = as_causal_lm(*run.model) != nullptr;
  run.tokens_per_sample = run.token_model ? as_causal_lm(*run.model)->context() : 1;
  if (run.chat && !f.chat.packing) {  // a sample is one example: its mean number of predictions
    const FitCounts& n = run.chat->train_counts;
    run.tokens_per_sample = std::max<int64_t>(1, (n.tokens - n.examples) / std::max<int64_t>(1, n.examples));
  }
}

void print_header(const TrainRun& run) {
  const TrainOptions& o = run.spec.options;
  const Model& model = *run.model;
  const std::string zero = o.zero && run.comm.size() > 1 ? ", ZeRO-" + std::to_string(o.zero) : "";
  const std::string fused = o.fused_update ? ", updates fused into the backward pass" : "";
  report_rates_measurement();
  std::fprintf(stderr, "frugal train: %s, %s parameters (%s trainable), %zu blocks, data: %s, batch %lld x %lld micro-batches x %d ranks, %s%s%s\n",
               model.arch().c_str(), format_count(static_cast<double>(model.parameter_count())).c_str(),
               format_count(static_cast<double>(model.trainable_parameter_count())).c_str(), model.blocks().size(),
               run.data->describe().c_str(), static_cast<long long>(o.micro_batch), static_cast<long long>(o.accum),
               run.comm.size(), precision_name(o.precision).c_str(), zero.c_str(), fused.c_str());
  const nlohmann::json compute = compute_description();
  std::fprintf(stderr, "compute: %s, %d threads; GEMM f32 %s, bf16 %s\n", compute["cpu"].get<std::string>().c_str(),
               compute["threads"].get<int>(), compute["gemm_f32"].get<std::string>().c_str(),
               compute["gemm_bf16"].get<std::string>().c_str());
  if (model.arch() == "gpt") {
    const nlohmann::json d = as_causal_lm(model)->dropout();
    std::fprintf(stderr, "dropout while training: embedding %g, attention probabilities %g, residual branches %g\n",
                 d["embd"].get<double>(), d["attn"].get<double>(), d["resid"].get<double>());
  }
  std::fprintf(stderr, "predicted peak memory: %s (activations %s)\n",
               format_bytes(static_cast<double>(run.plan.peak.total)).c_str(),
               format_bytes(static_cast<double>(run.plan.peak[MemCategory::Activations])).c_str());
}

// Evaluation on the held-out chat examples after step s (1-based `done`): printed, in --metrics, kept
// for the summary; with --save-best a new lowest loss writes a training-state checkpoint of that step
// into --save DIR/best (the previous best removed), which `--model` and `--resume` read.
void evaluate_held_out(TrainRun& run, int64_t done, AtomicFileWriter* metrics, const nlohmann::json& config,
                       Progress& progress) {
  const RunSpec& f = run.spec;
  const EvalMetrics m = evaluate_examples(*run.model, run.chat->eval, f.options.run_context(done));
  const nlohmann::json record{{"step", done}, {"eval_loss", m.loss}, {"eval_perplexity", m.perplexity},
                              {"eval_accuracy", m.accuracy}, {"eval_tokens", m.tokens}};
  run.evals.push_back(record);
  if (run.lead()) {
    progress.set_eval(done, m.loss, m.perplexity, m.accuracy);
    if (metrics) metrics->write(record.dump() + "\n");
  }
  if (!f.chat.save_best) return;
  // Rank 0's loss decides for every rank (their sums may differ in the last bits, and a sharded
  // checkpoint needs all of them); a NaN is never the best.
  double loss = run.lead() ? m.loss : 0.0;
  run.comm.allreduce_sum(&loss, 1);
  if (!(loss < run.best_eval_loss)) return;
  run.best_eval_loss = loss;
  write_training_checkpoint(f.output.save_dir + "/best", done, *run.model, *run.trainer, config, /*keep=*/1, run.comm);
}

bool evaluation_due(const TrainRun& run, int64_t done) {
  if (!run.chat || run.chat->eval.empty()) return false;
  const int64_t every = run.spec.chat.eval_every;
  return done == run.spec.options.steps || (every > 0 && done % every == 0);
}

// The optimizer steps, with the progress line, --metrics lines, the memory timeline of one
// steady-state step (--plots) and training-state checkpoints (--save-every). `on_step` (when set)
// gets each step's metrics and may stop the run after that step: then a checkpoint is written there
// too (with --save-every), so the run can be resumed from where it stopped.
void run_steps(TrainRun& run, const StepCallback& on_step) {
  const RunSpec& f = run.spec;
  std::unique_ptr<AtomicFileWriter> metrics;
  if (run.lead() && !f.output.metrics_path.empty()) metrics = std::make_unique<AtomicFileWriter>(f.output.metrics_path);
  Progress progress(f.options.steps, run.token_model, f.options.batch_size() * run.comm.size() * run.tokens_per_sample);
  const nlohmann::json config = checkpoint_record(f, run.comm.size());
  const int64_t bytes_before = run.comm.bytes_communicated();
  const int64_t timeline_step = run.first_step + (f.options.steps - run.first_step > 1 ? 1 : 0);  // state allocated
  for (int64_t s = run.first_step; s < f.options.steps; ++s) {
    const bool timed = !f.output.plots_dir.empty() && s == timeline_step;
    if (timed) run.ledger.start_timeline();
    run.records.push_back(run.trainer->step(s));
    if (timed) {
      run.ledger.stop_timeline();
      run.timeline = run.ledger.timeline();
    }
    const nlohmann::json step = step_metrics(run.records.back(), run.ledger);
    if (run.lead()) progress.update(run.records.back(), run.ledger);
    if (metrics) metrics->write(step.dump() + "\n");
    if (evaluation_due(run, s + 1)) evaluate_held_out(run, s + 1, metrics.get(), config, progress);
    int64_t stop = on_step && !on_step(step) ? 1 : 0;
    // Every rank stops at the same step (each rank of an API run has its callback; the CLI's have none).
    if (on_step && run.comm.size() > 1) run.comm.allreduce_sum(&stop, 1);
    run.stopped = stop > 0 && s + 1 < f.options.steps;
    const bool due = f.output.save_every > 0 && (s + 1) % f.output.save_every == 0;
    if (due || (run.stopped && f.output.save_every > 0))  // (every rank: under --zero each writes its share)
      write_training_checkpoint(f.output.save_dir, s + 1, *run.model, *run.trainer, config, f.output.keep, run.comm);
    if (run.stopped) break;
  }
  run.bytes_per_step = static_cast<double>(run.comm.bytes_communicated() - bytes_before) /
                       static_cast<double>(run.records.size());
  if (run.lead()) progress.finish();
  if (metrics) metrics->commit();
}

// Every rank's own peaks (ZeRO-1 shards optimizer state and masters, ZeRO-2 gradients too): rank 0
// reports them all.
nlohmann::json rank_memory(const MemorySnapshot& measured, Communicator& comm) {
  constexpr int kFields = 5;
  std::vector<int64_t> per_rank(static_cast<size_t>(comm.size()) * kFields, 0);
  int64_t* mine = per_rank.data() + comm.rank() * kFields;
  mine[0] = static_cast<int64_t>(measured[MemCategory::Optimizer]);
  mine[1] = static_cast<int64_t>(measured[MemCategory::MasterParams]);
  mine[2] = static_cast<int64_t>(measured[MemCategory::Grads]);
  mine[3] = static_cast<int64_t>(measured.total);
  mine[4] = static_cast<int64_t>(measured[MemCategory::Params]);
  comm.allreduce_sum(per_rank.data(), static_cast<int64_t>(per_rank.size()));
  nlohmann::json ranks;
  for (int r = 0; r < comm.size(); ++r) {
    const int64_t* f = per_rank.data() + r * kFields;
    ranks.push_back({{"rank", r}, {"params", f[4]}, {"optimizer", f[0]}, {"master_params", f[1]}, {"grads", f[2]},
                     {"total", f[3]}});
  }
  return ranks;
}

// The summary of DESIGN.md plus the data-parallel keys. Reads the memory peaks, then puts the fp32
// masters back into the model (the conversion is not training; evaluation and --save need them).
nlohmann::json summarize(TrainRun& run) {
  RunFacts facts;
  facts.steps = run.records;
  facts.token_model = run.token_model;
  facts.samples_per_step = run.spec.options.batch_size() * run.comm.size();
  facts.tokens_per_sample = run.tokens_per_sample;
  facts.total_params = run.model->parameter_count();
  facts.trainable_params = run.model->trainable_parameter_count();
  facts.layer_count = static_cast<int64_t>(run.model->blocks().size());
  facts.measured = run.measured = run.ledger.peak();
  facts.predicted = run.plan.peak;
  facts.kernels = run.plan.kernels;
  facts.at_peak = run.ledger.at_peak();
  run.trainer->finish();
  facts.final_loss_scale = run.trainer->loss_scale();
  nlohmann::json summary = make_summary(facts);
  summary["world_size"] = run.comm.size();
  summary["stopped_early"] = run.stopped;  // the step callback ended it before --steps
  summary["first_step"] = run.first_step + 1;  // losses[0] is this step's (1-based; > 1 after --resume)
  summary["zero"] = run.spec.options.zero;
  summary["fused_update"] = run.spec.options.fused_update;
  summary["communicated_bytes_per_step"] = run.bytes_per_step;
  std::vector<double> comm_times;
  for (const StepRecord& r : run.records)
    if (r.step > 0 || run.records.size() == 1) comm_times.push_back(r.communication_s);
  summary["communication_s"] = median(comm_times);  // per step: gradient collectives and ZeRO-3 fetches, waiting included
  summary["ranks"] = rank_memory(facts.measured, run.comm);
  summary["compute"] = compute_description();
  summary["run"] = describe_run(*run.model, run.spec.options);  // what ran, read from the model and options
  summary["run"]["settings"] = run_settings(run.spec);  // and the settings that replay it (--config SUMMARY)
  summary["predicted_step_time_s"] = run.predicted_step_s;  // the cost model's, beside step_time_s
  // What measuring the cost model's rates cost, when this run had to (in a child process: its RSS is
  // not in peak_rss_bytes); null when the cache served them.
  const std::optional<RatesMeasurement> rates = last_rates_measurement();
  summary["rates_measurement"] = rates ? nlohmann::json{{"seconds", rates->seconds}, {"peak_rss_bytes", rates->peak_rss_bytes}}
                                       : nlohmann::json(nullptr);
  if (run.token_model) summary["dropout"] = as_causal_lm(*run.model)->dropout();
  if (run.memory_limit > 0) summary["memory_limit"] = run.memory_limit;
  if (run.chat) {
    summary["chat_data"] = run.chat->describe();
    summary["chat_data"]["packing"] = run.spec.chat.packing;
    if (run.spec.chat.packing)
      summary["chat_data"]["padding_fraction"] = static_cast<ChatBatches&>(*run.data).padding_fraction();
    summary["evals"] = run.evals;
    if (!run.evals.empty()) summary["eval_loss"] = run.evals.back()["eval_loss"];
    if (run.spec.chat.save_best && std::isfinite(run.best_eval_loss)) summary["best_eval_loss"] = run.best_eval_loss;
  }
  return summary;
}

// Whether rank 0 needs the trained model after training: to evaluate, sample or save it.
bool uses_trained_model(const TrainRun& run) {
  const RunSpec& f = run.spec;
  return f.data == "fashion-mnist" || (run.token_model && f.data != "synthetic" && !run.chat && f.output.sample_tokens > 0) ||
         !f.output.save_dir.empty() || !f.output.save_adapter_dir.empty();
}

// Test accuracy (Fashion-MNIST) and a sample of generated text (GPT on text), into the summary.
void evaluate_and_sample(TrainRun& run, nlohmann::json& summary) {
  const RunSpec& f = run.spec;
  if (f.data == "fashion-mnist") {
    const ImageDataset test = load_fashion_mnist(kFashionMnistDir, /*train=*/false);
    const double accuracy = classification_accuracy(*run.model, test, run.model->arch() == "mlp");
    summary["eval_accuracy"] = accuracy;
    std::printf("test accuracy (10000 Fashion-MNIST test images): %.2f%%\n", 100.0 * accuracy);
  }
  if (run.token_model && f.data != "synthetic" && !run.chat && f.output.sample_tokens > 0) {  // (chat: frugal chat)
    SampleOptions sample;
    sample.tokens = f.output.sample_tokens;
    sample.seed = f.options.seed;
    CausalLm& lm = *as_causal_lm(*run.model);
    std::string text;
    if (TextTokenizer* tokenizer = model_tokenizer(f.model)) {
      // From what an empty prompt is: Llama 3's BOS, GPT-2's <|endoftext|> (else token 0).
      std::vector<int32_t> start = tokenizer->prompt_ids("");
      if (start.empty()) start = {0};
      text = tokenizer->decode(generate_tokens(lm, start, sample));
    } else {
      text = generate_text(lm, "\n", sample);
    }
    const int64_t vocab = lm.vocab_size();
    std::printf("\nloss %.3f -> %.3f (a uniform guess over %lld tokens scores ln %lld = %.3f). A sample:\n%s\n",
                run.records.front().loss, run.records.back().loss, static_cast<long long>(vocab),
                static_cast<long long>(vocab), std::log(static_cast<double>(vocab)), text.c_str());
  }
}

void write_outputs(const TrainRun& run, const nlohmann::json& summary) {
  const RunSpec& f = run.spec;
  if (!f.output.save_dir.empty() && quantized_base(f)) {
    std::printf("training checkpoints in %s/checkpoints (the quantised base is not written as a model)\n",
                f.output.save_dir.c_str());
  } else if (!f.output.save_dir.empty()) {
    save_model(*run.model, f.output.save_dir);  // the base weights; adapters go to --save-adapter
    const std::string tokenizer = tokenizer_dir(f.model);
    if (!tokenizer.empty()) copy_tokenizer_files(tokenizer, f.output.save_dir);  // the model keeps its tokenizer
    std::printf("saved model to %s\n", f.output.save_dir.c_str());
  }
  if (!f.output.save_adapter_dir.empty()) {
    save_adapter(*run.model, run.lora, f.output.save_adapter_dir);
    std::printf("saved LoRA adapter (PEFT format) to %s\n", f.output.save_adapter_dir.c_str());
  }
  if (!f.output.plots_dir.empty()) write_plots(f.output.plots_dir, run.records, run.timeline, f.options.checkpoint);
  if (!f.output.summary_path.empty()) write_file_atomic(f.output.summary_path, summary.dump(2) + "\n");
}

}  // namespace

nlohmann::json train_run(RunSpec& f, const StepCallback& on_step) {
  Communicator& comm = world();
  std::optional<CheckpointRef> resume = adopt_resume(f, comm);
  apply_train_flags(f, comm.rank() == 0);
  apply_threads(f.threads);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  TrainRun run(f, comm, ledger, std::move(resume));
  run.memory_limit = choose_configuration(f, comm);
  build_run(run);
  if (run.lead()) print_header(run);
  run_steps(run, on_step);
  ledger.set_limit(0);  // the limit covers training, which the plan predicts; not evaluation or sampling
  nlohmann::json summary = summarize(run);
  if (uses_trained_model(run)) run.trainer->gather_model(0);  // (ZeRO-3: the weights are spread over the ranks)
  if (!run.lead()) return summary;
  print_memory_report(run.plan.peak, run.measured, ledger.cached_bytes());
  print_kernels(run.plan.kernels);
  std::printf("\nfinal loss %.4f after %lld steps%s; median step %s (predicted %s), %s %s/s\n",
              summary["final_loss"].get<double>(), static_cast<long long>(run.first_step + run.records.size()),
              run.stopped ? " (stopped by the step callback)" : "",
              format_seconds(summary["step_time_s"].get<double>()).c_str(), format_seconds(run.predicted_step_s).c_str(),
              format_count(summary[run.token_model ? "tokens_per_s" : "samples_per_s"].get<double>()).c_str(),
              run.token_model ? "tokens" : "samples");
  evaluate_and_sample(run, summary);
  write_outputs(run, summary);
  return summary;
}

}  // namespace frugal
