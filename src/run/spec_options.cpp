#include "run/spec_options.h"

namespace frugal {

namespace {

void add_model_options(CLI::App& app, ModelSpec& f) {
  app.add_option("--arch", f.arch, "fresh model architecture (llama: RMSNorm, rotary positions, SwiGLU, grouped-query attention)")
      ->check(CLI::IsMember({"gpt", "llama", "mlp", "cnn", "linear"}))
      ->capture_default_str();
  app.add_option("--model", f.model_dir, "load a model directory (config.json + model.safetensors) instead");
  app.add_option("--layers", f.layers, "blocks (gpt: transformer blocks; mlp: linear layers; cnn: conv blocks)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--dim", f.dim, "width (gpt: n_embd; mlp: hidden units; cnn: channels of the first block)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--heads", f.heads, "attention heads (gpt, llama)")->check(CLI::Range(1, 1024));
  app.add_option("--kv-heads", f.kv_heads, "llama: key/value heads shared by the query heads (default heads / 2)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--mlp-dim", f.mlp_dim, "llama: the SwiGLU MLP's intermediate size (default 8/3 dim, a multiple of 8)")
      ->check(CLI::Range(1, 1 << 18));
  app.add_option("--head-dim", f.head_dim, "llama: width of each attention head (default dim / heads; Qwen3 sets its own)")
      ->check(CLI::Range(2, 4096));
  app.add_flag("--qk-norm", f.qk_norm, "llama: RMSNorm on each query and key head before the rotation (a Qwen3 model)");
  app.add_flag("--untied-head", f.untied_head, "llama: an LM head of its own, not the embedding (tie_word_embeddings "
                                               "false, as Llama-3.1-8B; default tied, as SmolLM2)");
  app.add_option("--ctx", f.ctx, "context length (gpt, llama)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--vocab", f.vocab, "vocabulary size (gpt, llama; byte-level text needs 256)")->check(CLI::Range(2, 1 << 24));
  app.add_flag("--batchnorm", f.batchnorm, "BatchNorm between the MLP's layers (same as --norm batch)");
  app.add_option("--norm", f.norm, "normalisation in the MLP/CNN: none | batch | group | layer")
      ->check(CLI::IsMember({"none", "batch", "group", "layer"}));
  app.add_option("--loss-chunk", f.loss_chunk, "gpt: rows per chunk of the fused LM head + loss (0: automatic, 256 at GPT-2's vocabulary)");
  app.add_option("--attention", f.attention, "gpt: causal attention kernel: auto (materialising up to T = 384, fused above) | flash | materialized")
      ->check(CLI::IsMember({"auto", "flash", "materialized"}))
      ->capture_default_str();
  app.add_option("--attention-tile", f.attention_tile, "gpt: query/key tile of the fused attention (0: 64)");
  app.add_option("--dropout", f.dropout, "gpt: dropout probability of the embedding, attention and residual "
                                         "dropout while training (default: config.json's *_pdrop, 0 when absent)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--embd-dropout", f.embd_dropout, "gpt: dropout after the embedding sum (embd_pdrop)")->check(CLI::Range(0.0, 0.99));
  app.add_option("--attn-dropout", f.attn_dropout, "gpt: dropout on the attention probabilities (attn_pdrop)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--resid-dropout", f.resid_dropout, "gpt: dropout on each residual branch's output (resid_pdrop)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--tokenizer", f.tokenizer,
                 "tokenizer: a tokenizer.json (Hugging Face, byte-level BPE: GPT-2, Llama 3, Qwen2, SmolLM) or a "
                 "directory with one or with GPT-2's vocab.json + merges.txt; default: the --model directory's, else "
                 "byte-level text");
}

void add_precision_options(CLI::App& app, PrecisionSpec& f) {
  app.add_option("--precision", f.precision, "storage of activations and the weights' compute copy: fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  app.add_option("--master-weights", f.master_weights, "FP32 master weights in half precision (on|off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--loss-scale", f.loss_scale, "dynamic | none | VALUE (default: dynamic for fp16, none for bf16)");
  app.add_option("--loss-scale-init", f.scaler.value, "initial dynamic loss scale")->capture_default_str();
  app.add_option("--loss-scale-interval", f.scaler.growth_interval,
                 "finite steps in a row before the dynamic scale grows")
      ->capture_default_str();
  app.add_option("--loss-scale-growth", f.scaler.growth, "factor the dynamic scale grows by")->capture_default_str();
  app.add_option("--loss-scale-backoff", f.scaler.backoff, "factor the dynamic scale shrinks by on overflow")
      ->capture_default_str();
}

void add_lora_options(CLI::App& app, LoraSpec& f) {
  app.add_option("--lora-rank", f.rank, "LoRA rank r (0: off): train only A (r x in) and B (out x r)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("--lora-alpha", f.alpha, "LoRA scale numerator: delta W = (alpha / r) B A (default: r)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lora-dropout", f.dropout, "dropout on the LoRA path")->check(CLI::Range(0.0, 0.99));
  app.add_option("--lora-targets", f.targets,
                 "modules to adapt (PEFT suffix match): GPT c_attn,c_proj,c_fc (default c_attn); Llama q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default q_proj,v_proj); MLP layer indices");
  app.add_option("--adapter", f.adapter, "load a PEFT LoRA adapter directory (its config sets rank, alpha, targets)");
  app.add_option("--base-precision", f.base_precision,
                 "storage of the adapted frozen weights: fp32 | bf16 | fp16 | nf4 | int8 (4/8-bit blocks)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "nf4", "int8"}))->capture_default_str();
  app.add_flag("--quantize-head", f.quantize_head,
               "with --base-precision nf4|int8: store the model's own frozen LM head (untied) in that format too "
               "(Llama-3.1-8B: 1.0 GiB in bf16, 0.27 in nf4; PEFT/bitsandbytes keep it in bf16)");
}

void add_checkpoint_options(CLI::App& app, CheckpointSpec& f) {
  app.add_option("--checkpoint", f.strategy,
                 "activation checkpointing: store-all | memory-poor (O(1), n(n+1)/2 forwards) | sqrt | optimal")
      ->check(CLI::IsMember({"store-all", "memory-poor", "sqrt", "optimal"}))
      ->capture_default_str();
  app.add_option("--activation-budget", f.activation_budget,
                 "peak activation bytes for --checkpoint optimal (e.g. 64MiB)");
}

void add_training_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--steps", o.steps, "optimizer steps")->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  app.add_option("--micro-batch", o.micro_batch, "samples per micro-batch")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  app.add_option("--accum", o.accum, "micro-batches per optimizer step (gradient accumulation)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))->capture_default_str();
  app.add_option("--optimizer", o.optimizer, "adamw | adamw8bit (moments in 8 bits, block-wise) | sgd")
      ->check(CLI::IsMember({"adamw", "adamw8bit", "sgd"}))
      ->capture_default_str();
  app.add_option("--optimizer-block", o.optimizer_block,
                 "adamw8bit: numbers per quantisation block, each with an fp32 absmax (a power of 2)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "decoupled weight decay (2-D tensors)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--warmup", o.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--schedule", o.schedule, "cosine | constant")
      ->check(CLI::IsMember({"cosine", "constant"}))->capture_default_str();
  app.add_option("--seed", o.seed, "seed for weights, data order and dropout")->capture_default_str();
  app.add_option("--bn-stats", o.bn_stats,
                 "BatchNorm running statistics under --accum: micro (update per micro-batch) | batch (merge, update once)")
      ->check(CLI::IsMember({"micro", "batch"}))->capture_default_str();
  app.add_flag("--fused-update", o.fused_update,
               "update each block's parameters during the backward pass and free their gradients at once "
               "(needs --accum 1, --clip-grad-norm 0, no loss scaling)");
  app.add_option("--zero", o.zero,
                 "under mpirun: 1 shards optimizer state and FP32 master weights across ranks (ZeRO-1); 2 the "
                 "gradients too (ZeRO-2); 3 the weights too, each block's fetched when it runs (ZeRO-3)")
      ->check(CLI::Range(0, 3))->capture_default_str();
}

void add_memory_options(CLI::App& app, MemorySpec& f, bool with_limit) {
  app.add_option("--memory-budget", f.budget,
                 "choose micro-batch, accumulation and checkpointing (and with --allow precision the precision) "
                 "that fit this many bytes, fastest first (e.g. 1GiB); needs --batch-size");
  app.add_option("--batch-size", f.batch_size, "samples per optimizer step, for --memory-budget")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--allow", f.allow,
                 "what --memory-budget may change beyond micro-batch and checkpointing: precision, optimizer "
                 "(AdamW or adamw8bit; --optimizer-block then sizes adamw8bit's blocks), or both (comma-separated)");
  if (with_limit)
    app.add_option("--memory-limit", f.limit,
                   "stop with an error before any allocation would take live bytes past SIZE (default with "
                   "--memory-budget: the budget)");
}

void add_train_outputs(CLI::App& app, RunSpec& s) {
  app.add_option("--save-adapter", s.output.save_adapter_dir, "write the trained LoRA adapter as a PEFT directory");
  app.add_option("--data", s.data,
                 "synthetic | fashion-mnist | fortunes | PATH (a text file, byte tokens) | FILE.jsonl (chat or "
                 "instruction examples, rendered with the model's chat template)")
      ->capture_default_str();
  app.add_option("--save", s.output.save_dir, "write the trained model directory");
  app.add_option("--summary", s.output.summary_path, "write the run summary (JSON)");
  app.add_option("--metrics", s.output.metrics_path, "write one JSON line per step");
  app.add_option("--plots", s.output.plots_dir, "write loss and memory-timeline PNGs into this directory");
  app.add_option("--sample-tokens", s.output.sample_tokens, "bytes to generate after training a GPT on text (0: none)")
      ->capture_default_str();
  app.add_option("--save-every", s.output.save_every,
                 "write a training-state checkpoint every N steps into --save DIR/checkpoints (0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))->capture_default_str();
  app.add_option("--keep", s.output.keep, "training-state checkpoints kept (the newest)")
      ->check(CLI::Range(1, 1 << 20))->capture_default_str();
  add_memory_options(app, s.memory, /*with_limit=*/true);
  app.add_option("--resume", s.output.resume,
                 "continue from the newest complete checkpoint in DIR (a --save directory, its checkpoints/, or one step-N)");
}

// Chat data (--data FILE.jsonl). `evaluation`: train's evaluation while training too.
void add_chat_options(CLI::App& app, ChatSpec& c, bool evaluation) {
  app.add_option("--data-format", c.data_format,
                 "JSONL records: auto (from the first record's keys) | chat | sharegpt | prompt-completion | alpaca | text")
      ->check(CLI::IsMember({"auto", "chat", "sharegpt", "prompt-completion", "alpaca", "text"}))
      ->capture_default_str();
  app.add_option("--chat-template", c.chat_template, "a Jinja chat template file instead of the model's");
  app.add_option("--chat-template-kwargs", c.template_kwargs,
                 "extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
  app.add_option("--train-on", c.train_on,
                 "tokens the loss trains on: assistant (every assistant turn) | completion (the last one) | all "
                 "(default: assistant for chats, completion for prompt-completion and Alpaca, all for text)")
      ->check(CLI::IsMember({"assistant", "completion", "all"}));
  app.add_flag("--packing", c.packing,
               "fill each row of --ctx tokens with whole examples (attention stays within each one)");
  app.add_option("--truncate", c.truncate, "examples longer than --ctx: right | left (keep the end) | drop")
      ->check(CLI::IsMember({"right", "left", "drop"}))
      ->capture_default_str();
  app.add_flag("--skip-bad-examples", c.skip_bad, "skip and count malformed JSONL lines instead of stopping");
  if (!evaluation) return;
  app.add_option("--eval-data", c.eval_data, "held-out JSONL examples: eval loss, perplexity and token accuracy");
  app.add_option("--eval-fraction", c.eval_fraction, "hold this fraction of --data's examples out for evaluation")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--eval-every", c.eval_every, "evaluate every N steps (0: after the last step only)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_flag("--save-best", c.save_best, "keep the model with the lowest eval loss in --save DIR/best");
}

// generate's and chat's: the model, the sampling, and the chat template (generate: with --messages).
void add_generate_options(CLI::App& app, RunSpec& s, Command command) {
  app.add_option("--model", s.model.model_dir, "model directory");
  if (command == Command::Generate) {
    app.add_option("--prompt", s.generate.prompt, "text to continue");
    app.add_option("--messages", s.generate.messages,
                   "a JSON list of {\"role\", \"content\"} messages (or {\"messages\": [...]}) rendered with the chat "
                   "template as the prompt; prints only the reply, which ends at the end-of-turn token");
  } else {
    app.add_option("--system", s.generate.system, "a system message that starts the conversation");
  }
  app.add_option("--chat-template", s.chat.chat_template, "a Jinja chat template file instead of the model's");
  app.add_option("--chat-template-kwargs", s.chat.template_kwargs,
                 "extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
  app.add_option("--adapter", s.lora.adapter, "a PEFT LoRA adapter to merge before sampling");
  app.add_option("--base-precision", s.lora.base_precision,
                 "with --adapter: the base as it was fine-tuned, fp32 | nf4 | int8 (a half base samples as fp32)")
      ->check(CLI::IsMember({"fp32", "nf4", "int8"}))->capture_default_str();
  app.add_option("--tokenizer", s.model.tokenizer, "tokenizer.json or tokenizer directory (default: the model directory's, else bytes)");
  app.add_option("--tokens", s.generate.sample.tokens,
                 command == Command::Chat ? "the most tokens of a reply" : "tokens to generate")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("--temperature", s.generate.sample.temperature, "0: greedy")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--top-k", s.generate.sample.top_k, "sample among the k most likely (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", s.generate.sample.top_p,
                 "sample among the most likely tokens whose probabilities sum to P, 0 < P <= 1 (after --top-k; 1: off)")
      ->capture_default_str();
  app.add_option("--seed", s.options.seed, "sampling seed");
  if (command == Command::Chat) return;
  app.add_flag("--no-kv-cache", s.generate.no_kv_cache,
               "re-run the whole context for every token (the path before the KV cache, for comparison)");
  app.add_flag("--stream", s.generate.stream, "print each token as soon as it is generated");
  app.add_flag("--timing", s.generate.timing, "print the first token's latency and the tokens per second on stderr");
}

}  // namespace

void add_threads_option(CLI::App& app, int& threads) {
  app.add_option("--threads", threads,
                 "OpenMP/OpenBLAS threads (0: OMP_NUM_THREADS if set, else one per physical core)")
      ->check(CLI::Range(0, 1 << 16));
}

void add_spec_options(CLI::App& app, RunSpec& s, Command command) {
  app.add_option("--config", s.config,
                 "read settings from a YAML or JSON file (keys: these flags' names, e.g. lora-rank: 8; a summary or "
                 "checkpoint's \"run\" record replays that run); flags given here win over the file");
  if (command == Command::Generate || command == Command::Chat) {
    add_generate_options(app, s, command);
    add_threads_option(app, s.threads);
    return;
  }
  add_model_options(app, s.model);
  if (command == Command::Grad) {
    add_checkpoint_options(app, s.checkpoint);
    add_lora_options(app, s.lora);
    add_precision_options(app, s.precision);
    app.add_option("--batch", s.grad.batch_path, "safetensors file with 'inputs' and 'targets'");
    app.add_option("--data", s.data, "chat data instead of --batch: every example of FILE.jsonl in one step");
    add_chat_options(app, s.chat, /*evaluation=*/false);
    app.add_option("--out", s.grad.out_path, "where to write the gradients (safetensors)");
    app.add_option("--accum", s.options.accum, "split the batch into K equal micro-batches and accumulate")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
    add_threads_option(app, s.threads);
    return;
  }
  add_training_options(app, s.options);
  add_threads_option(app, s.threads);
  add_checkpoint_options(app, s.checkpoint);
  add_lora_options(app, s.lora);
  add_precision_options(app, s.precision);
  add_chat_options(app, s.chat, /*evaluation=*/command == Command::Train);
  if (command == Command::Train) {
    add_train_outputs(app, s);
    return;
  }
  app.add_option("--data", s.data, "as for train (decides the MLP's input and output sizes)");
  app.add_flag("--json", s.plan.json, "print JSON instead of a table");
  app.add_option("--ranks", s.plan.ranks, "plan every rank of an mpirun job of this many ranks (with --zero: each one's shards)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  add_memory_options(app, s.memory, /*with_limit=*/false);
}

}  // namespace frugal
