#include "experiments/lora.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/units.h"
#include "experiments/experiment_gpt.h"
#include "io/atomic_file.h"
#include "io/text_corpus.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "report/plot.h"
#include "report/summary.h"
#include "train/data.h"
#include "train/executor.h"
#include "train/trainer.h"

namespace frugal {

namespace {

constexpr const char* kHeldOut = "science";
constexpr int64_t kContext = kExperimentContext;
// Mean loss over fixed windows of the evaluation text.
double heldout_loss(Model& model, const std::string& text) {
  TokenWindows windows(text, kContext, 99, "held-out evaluation text");
  RunContext rc;
  rc.training = false;
  double total = 0;
  const int batches = 8;
  for (int b = 0; b < batches; ++b) {
    const Batch batch = windows.batch(b, 16);
    total += loss_only(model, batch, static_cast<double>(batch.targets.numel()), rc);
  }
  return total / batches;
}

struct RunResult {
  double loss = 0, step_time = 0;
  int64_t trainable = 0;
  size_t grad_optimizer_bytes = 0;
  size_t params_bytes = 0;  // the weights' peak while fine-tuning (a quantised base: its quantised bytes)
};

// Runs in the current ledger, which must be fresh (its peaks are the run's) and outlive `keep`.
// `dropout`: GPT-2's three dropouts (embedding, attention probabilities, residual branches) while
// fine-tuning, as a GPT-2 config.json asks for (0.1 in the released models).
RunResult fine_tune(const std::string& pretrained, const std::string& train_text, const std::string& eval_text,
                    int64_t rank, int64_t steps, std::unique_ptr<Model>* keep = nullptr, double dropout = 0,
                    std::optional<QuantFormat> base = std::nullopt) {
  MemoryLedger& ledger = MemoryLedger::current();
  std::unique_ptr<Model> model = load_model(pretrained);
  static_cast<Gpt&>(*model).set_dropout(dropout, dropout, dropout);
  if (rank > 0) {
    LoraSettings s;
    s.config.rank = rank;
    s.config.alpha = 2.0 * static_cast<double>(rank);
    s.targets = {"c_attn", "c_proj", "c_fc"};
    apply_lora(*model, s, 7);
    // (The experiment loads its small model whole; the CLI quantises while loading.)
    if (base) quantize_adapted_weights(*model, adapted_weight_names(*model, s.targets), *base, {});
  }
  ledger.reset_peaks();  // (the loading's fp32 transient is not fine-tuning's)
  RunResult r;
  r.trainable = model->trainable_parameter_count();
  if (steps > 0) {
    TokenWindows data(train_text, kContext, 11, "fine-tuning text");
    TrainOptions o;
    o.steps = steps;
    o.micro_batch = 16;
    o.lr = rank > 0 ? 3e-3f : 5e-4f;  // adapters start from zero and take a larger step
    o.warmup = 10;
    Trainer trainer(*model, data, o);
    std::vector<double> times;
    for (int64_t s = 0; s < steps; ++s) {
      const double t = trainer.step(s).seconds;
      if (s > 0) times.push_back(t);
    }
    r.step_time = median(times);
  }
  r.grad_optimizer_bytes = ledger.peak()[MemCategory::Grads] + ledger.peak()[MemCategory::Optimizer];
  r.params_bytes = ledger.peak()[MemCategory::Params];
  r.loss = heldout_loss(*model, eval_text);
  if (keep) *keep = std::move(model);
  return r;
}

// Largest |logit| difference between the model with adapters and the merged model.
double merge_check(Model& model, const std::string& text) {
  const Batch batch = TokenWindows(text, kContext, 5, "merge check").batch(0, 4);
  RunContext rc;
  rc.training = false;
  Tensor with_adapter = forward_only(model, batch.inputs, rc).clone(MemCategory::Workspace);
  merge_lora(model);
  Tensor merged = forward_only(model, batch.inputs, rc);
  double worst = 0;
  for (int64_t i = 0; i < merged.numel(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(merged.f32()[i] - with_adapter.f32()[i])));
  return worst;
}

std::string markdown(const nlohmann::json& r) {
  std::ostringstream md;
  char line[256];
  md << "# LoRA fine-tuning: fewer trainable numbers, less memory, a held-out loss between the base and "
        "full fine-tuning\n\nProduced by `frugal experiment lora --out DIR`. A GPT (4 blocks, width 128, context "
     << kContext << ") is pretrained on the fortunes text without the file `" << kHeldOut << "` ("
     << r["pretrain_steps"].get<int64_t>() << " steps), then fine-tuned on the first 80% of `" << kHeldOut << "` ("
     << r["finetune_steps"].get<int64_t>() << " steps, micro-batch 16) and evaluated on its last 20%. LoRA adapts "
        "c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj with alpha = 2r.\n\n"
     << "| run | trainable numbers | weights | gradient + AdamW bytes | step time | held-out loss |\n"
        "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& row : r["runs"]) {
    std::snprintf(line, sizeof line, "| %s | %s | %s | %s | %s | %.4f |\n", row["name"].get<std::string>().c_str(),
                  format_count(row["trainable"].get<double>()).c_str(),
                  format_bytes(row.value("params_bytes", 0.0)).c_str(),
                  format_bytes(row["grad_optimizer_bytes"].get<double>()).c_str(),
                  row["step_time_s"].get<double>() > 0 ? format_seconds(row["step_time_s"].get<double>()).c_str() : "-",
                  row["heldout_loss"].get<double>());
    md << line;
  }
  md << "\nParameter arithmetic: an n x n matrix has n^2 numbers; its adapter has 2rn, fewer whenever r < n/2. "
        "Here, per block, c_attn (128 x 384), c_proj (128 x 128), c_fc (128 x 512) and mlp.c_proj (512 x 128) hold "
     << r["arithmetic"]["adapted_matrix_numbers"].get<int64_t>() << " numbers; at r = 8 their adapters hold "
     << r["arithmetic"]["adapter_numbers_r8"].get<int64_t>() << ".\n\n";
  std::snprintf(line, sizeof line,
                "Merge check: the largest difference between the logits of base + adapter (r = 8) and of the merged "
                "model is %.2e.\n\n![held-out loss](lora.png)\n",
                r["merge_max_abs_diff"].get<double>());
  md << line;
  return md.str();
}

// The held-out fortunes file is the fine-tuning text (first 80% to train, the rest to evaluate);
// every other file is pretraining text.
struct ExperimentTexts {
  std::vector<std::string> pretrain_files;
  std::string train_text, eval_text;
};

ExperimentTexts split_texts() {
  ExperimentTexts t;
  std::string held_out_path;
  for (const std::string& path : list_fortune_files())
    (std::filesystem::path(path).filename() == kHeldOut ? held_out_path : t.pretrain_files.emplace_back(path)) = path;
  check(!held_out_path.empty(), std::string("the fortunes file '") + kHeldOut + "' is missing (Debian package fortunes)");
  const std::string held_out = fortunes_text({held_out_path});
  const size_t split = held_out.size() * 4 / 5;
  t.train_text = held_out.substr(0, split);
  t.eval_text = held_out.substr(split);
  return t;
}

// The base model every fine-tuning starts from, saved as a model directory.
void pretrain(const std::vector<std::string>& files, int64_t steps, const std::string& dir) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  Gpt model(experiment_gpt());
  model.init_weights(1);
  TokenWindows data(fortunes_text(files), kContext, 2, "fortunes without " + std::string(kHeldOut));
  TrainOptions o;
  o.steps = steps;
  o.micro_batch = 16;
  o.lr = 2e-3f;
  o.warmup = 20;
  Trainer trainer(model, data, o);
  for (int64_t s = 0; s < steps; ++s) trainer.step(s);
  save_model(model, dir);
}

nlohmann::json run_row(const std::string& name, int64_t rank, const RunResult& result) {
  return {{"name", name}, {"rank", rank}, {"trainable", result.trainable},
          {"grad_optimizer_bytes", result.grad_optimizer_bytes}, {"params_bytes", result.params_bytes},
          {"step_time_s", result.step_time}, {"heldout_loss", result.loss}};
}

// The numbers of one block's adapted matrices (width 128: c_attn, attn c_proj, c_fc, mlp c_proj)
// against those of their rank-8 adapters.
nlohmann::json adapter_arithmetic() {
  const int64_t d = 128;
  return {{"adapted_matrix_numbers", d * 3 * d + d * d + d * 4 * d + 4 * d * d},
          {"adapter_numbers_r8", 8 * ((d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d))}};
}

// QLoRA's question: the same rank-8 adapters on a base stored in 4 (nf4) or 8 (int8) bits; their
// rows are added to `runs`.
std::map<std::string, RunResult> quantized_base_runs(const std::string& pretrained, const ExperimentTexts& texts,
                                                     int64_t steps, nlohmann::json& runs) {
  std::map<std::string, RunResult> out;
  for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
    MemoryLedger ledger;
    LedgerScope scope(ledger);
    const RunResult q = fine_tune(pretrained, texts.train_text, texts.eval_text, 8, steps, nullptr, 0, format);
    runs.push_back(run_row("LoRA r = 8, " + quant_format_name(format) + " base", 8, q));
    out[quant_format_name(format)] = q;
  }
  return out;
}

// The summary numbers of the runs (besides the table's rows).
void record_results(nlohmann::json& r, const RunResult& base, const RunResult& full, const RunResult& r8,
                    const std::pair<RunResult, RunResult>& dropout, const std::map<std::string, RunResult>& quantized) {
  r["trainable_params"] = {{"full", full.trainable}, {"lora", r8.trainable}};
  r["heldout_loss"] = {{"base", base.loss}, {"lora", r8.loss}, {"full", full.loss},
                       {"full_dropout", dropout.first.loss}, {"lora_dropout", dropout.second.loss}};
  r["step_time_s"] = {{"full", full.step_time}, {"lora", r8.step_time}};
  r["params_bytes"] = {{"lora", r8.params_bytes}};
  for (const auto& [format, q] : quantized) {
    r["heldout_loss"]["lora_" + format] = q.loss;
    r["step_time_s"]["lora_" + format] = q.step_time;
    r["params_bytes"]["lora_" + format] = q.params_bytes;
  }
  r["grad_optimizer_bytes"] = {{"full", full.grad_optimizer_bytes}, {"lora", r8.grad_optimizer_bytes}};
}

}  // namespace

nlohmann::json run_lora_experiment(const std::string& out_dir, double steps_scale) {
  std::filesystem::create_directories(out_dir);
  const ExperimentTexts texts = split_texts();
  const auto scaled = [&](int64_t steps) { return std::max<int64_t>(2, static_cast<int64_t>(steps * steps_scale)); };
  const int64_t pretrain_steps = scaled(400), finetune_steps = scaled(150);
  const std::string pretrained = out_dir + "/lora-pretrained";
  pretrain(texts.pretrain_files, pretrain_steps, pretrained);

  nlohmann::json r;
  r["pretrain_steps"] = pretrain_steps;
  r["finetune_steps"] = finetune_steps;
  nlohmann::json runs = nlohmann::json::array();
  auto run = [&](int64_t rank, int64_t steps, double dropout = 0) {
    MemoryLedger ledger;
    LedgerScope scope(ledger);
    return fine_tune(pretrained, texts.train_text, texts.eval_text, rank, steps, nullptr, dropout);
  };
  const RunResult base = run(0, 0);
  runs.push_back({{"name", "base (no fine-tuning)"}, {"rank", 0}, {"trainable", 0}, {"grad_optimizer_bytes", 0},
                  {"params_bytes", base.params_bytes}, {"step_time_s", 0.0}, {"heldout_loss", base.loss}});
  const RunResult full = run(0, finetune_steps);
  runs.push_back(run_row("full fine-tuning", 0, full));
  Series lora_series{"LoRA", {}, {}, false}, base_series{"base", {}, {}, false}, full_series{"full fine-tuning", {}, {}, false};
  RunResult r8;
  double merge_diff = 0;
  for (int64_t rank : {1, 4, 8, 16}) {
    MemoryLedger ledger;  // declared before the model it outlives
    LedgerScope scope(ledger);
    std::unique_ptr<Model> tuned;
    const RunResult lora = fine_tune(pretrained, texts.train_text, texts.eval_text, rank, finetune_steps, &tuned);
    runs.push_back(run_row("LoRA r = " + std::to_string(rank), rank, lora));
    for (Series* s : {&lora_series, &base_series, &full_series}) s->x.push_back(static_cast<double>(rank));
    lora_series.y.push_back(lora.loss);
    base_series.y.push_back(base.loss);
    full_series.y.push_back(full.loss);
    if (rank == 8) {
      r8 = lora;
      merge_diff = merge_check(*tuned, texts.eval_text);
    }
  }
  // With GPT-2's dropout (0.1 at all three sites): held-out loss beside the runs without it.
  const RunResult full_dropout = run(0, finetune_steps, 0.1), lora_dropout = run(8, finetune_steps, 0.1);
  runs.push_back(run_row("full fine-tuning, dropout 0.1", 0, full_dropout));
  runs.push_back(run_row("LoRA r = 8, dropout 0.1", 8, lora_dropout));
  const std::map<std::string, RunResult> quantized = quantized_base_runs(pretrained, texts, finetune_steps, runs);
  r["runs"] = runs;
  record_results(r, base, full, r8, {full_dropout, lora_dropout}, quantized);
  r["merge_max_abs_diff"] = merge_diff;
  r["arithmetic"] = adapter_arithmetic();
  plot_png(out_dir + "/lora.png", {"Held-out loss after fine-tuning", "LoRA rank r", "loss", false, true},
           {lora_series, full_series, base_series});
  std::filesystem::remove_all(pretrained);
  write_file_atomic(out_dir + "/lora.json", r.dump(2) + "\n");
  write_file_atomic(out_dir + "/lora.md", markdown(r));
  return r;
}

}  // namespace frugal
