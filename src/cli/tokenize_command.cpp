// `frugal tokenize --tokenizer PATH INPUT... --out FILE [--format bin|json] [--split MODE]`: BPE ids
// of text files (GPT-2's files or a tokenizer.json, text/tokenizer.h). Documents (fortune records,
// paragraphs or whole files, --split) are separated by <|endoftext|> (the tokenizer's EOS). `bin`
// writes a token file (text/token_file.h), `json` an array of ids.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "run/run_spec.h"
#include "run/spec_options.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "text/tokenizer.h"
#include "text/documents.h"
#include "text/token_file.h"
#include "run/chat_data_run.h"

namespace frugal::cli {

namespace {
struct TokenizeFlags {
  std::string tokenizer, out, format = "bin", split = "auto";
  std::vector<std::string> inputs;
  bool chat = false;
  RunSpec spec;  // --chat: the template, format and --train-on settings (its ChatSpec)
};

// Progress on stderr about once a second while a large input is read.
class TokenizeProgress {
 public:
  explicit TokenizeProgress(size_t total) : total_(total) {}
  void update(size_t done, size_t tokens) {
    const auto now = std::chrono::steady_clock::now();
    if (total_ < (size_t{8} << 20) || now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    std::fprintf(stderr, "\rtokenize: %.1f of %.1f MiB, %zu tokens", done / 1048576.0, total_ / 1048576.0, tokens);
    shown_ = true;
  }
  ~TokenizeProgress() {
    if (shown_) std::fprintf(stderr, "\n");
  }

 private:
  size_t total_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  bool shown_ = false;
};

// --chat: per example of each JSONL input {"text", "ids", "mask"}, as training renders, tokenizes and
// masks it (mask[i] = 1: token i is a target the loss trains on).
void run_tokenize_chat(TokenizeFlags& f) {
  check(f.format == "json", "tokenize --chat writes --format json (the texts, ids and masks of the examples)");
  f.spec.model.tokenizer = f.tokenizer;
  nlohmann::json out = nlohmann::json::array();
  int64_t tokens = 0, trained = 0;
  for (const std::string& path : f.inputs) {
    ChatFormat format = ChatFormat::Auto;
    for (const TokenizedExample& e : tokenize_chat_file(f.spec, path, format)) {
      out.push_back({{"text", e.text}, {"ids", e.ids}, {"mask", e.mask}});
      tokens += static_cast<int64_t>(e.ids.size());
      trained += e.trained();
    }
    std::fprintf(stderr, "tokenize: %s: %s format\n", path.c_str(), chat_format_name(format));
  }
  write_file_atomic(f.out, out.dump() + "\n");
  std::printf("%zu examples -> %lld tokens, %lld trained, in %s\n", out.size(), static_cast<long long>(tokens),
              static_cast<long long>(trained), f.out.c_str());
}

void run_tokenize(TokenizeFlags& f) {
  check(f.format == "bin" || f.format == "json", "--format " + f.format + ": expected bin or json");
  if (f.chat) return run_tokenize_chat(f);
  const DocumentSplit split = parse_document_split(f.split);
  const std::unique_ptr<TextTokenizer> loaded = load_tokenizer(f.tokenizer);
  TextTokenizer& tokenizer = *loaded;
  check(tokenizer.document_separator() >= 0, f.tokenizer + ": the tokenizer has no <|endoftext|> (EOS) token to "
                                                 "separate documents");
  std::vector<std::string> texts;
  size_t total = 0;
  for (const std::string& path : f.inputs) total += (texts.emplace_back(read_file(path))).size();
  TokenizeProgress progress(total);
  std::vector<int32_t> ids;
  size_t done = 0, documents = 0;
  for (const std::string& text : texts) {
    for (std::string_view doc : split_documents(text, split)) {
      if (documents++ > 0) ids.push_back(tokenizer.document_separator());
      const size_t offset = done + static_cast<size_t>(doc.data() - text.data());
      tokenizer.encode_append(doc, ids, [&](size_t bytes) { progress.update(offset + bytes, ids.size()); });
    }
    done += text.size();
  }
  if (f.format == "bin") write_token_file(f.out, ids, tokenizer.vocab_size());
  else write_file_atomic(f.out, nlohmann::json(ids).dump() + "\n");
  std::printf("%zu documents, %.1f MiB of text -> %zu tokens (%.2f bytes per token) in %s\n", documents,
              total / 1048576.0, ids.size(), ids.empty() ? 0.0 : double(total) / double(ids.size()), f.out.c_str());
}
}  // namespace

void register_tokenize(CLI::App& app) {
  auto flags = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = app.add_subcommand("tokenize", "BPE token ids of text files (a token file for --data)");
  cmd->add_option("inputs", flags->inputs, "text files")->required();
  cmd->add_option("--tokenizer", flags->tokenizer, "a tokenizer.json, or a directory with one or with vocab.json + merges.txt (or encoder.json + vocab.bpe)")
      ->required();
  cmd->add_option("--out", flags->out, "output file")->required();
  cmd->add_option("--format", flags->format, "bin (a token file) or json (an array of ids)")->capture_default_str();
  cmd->add_option("--split", flags->split, "documents: auto (fortune records if any), fortunes, paragraphs, none")
      ->capture_default_str();
  cmd->add_flag("--chat", flags->chat,
                "the inputs are chat/instruction JSONL: write each example's rendered text, ids and trained-token "
                "mask (--format json)");
  cmd->add_option("--data-format", flags->spec.chat.data_format, "--chat: auto | chat | sharegpt | prompt-completion | "
                                                               "alpaca | text")
      ->check(CLI::IsMember({"auto", "chat", "sharegpt", "prompt-completion", "alpaca", "text"}));
  cmd->add_option("--chat-template", flags->spec.chat.chat_template, "--chat: a Jinja chat template file instead of "
                                                                     "the tokenizer_config.json's");
  cmd->add_option("--chat-template-kwargs", flags->spec.chat.template_kwargs, "--chat: extra template variables (JSON object)");
  cmd->add_option("--train-on", flags->spec.chat.train_on, "--chat: assistant | completion | all")
      ->check(CLI::IsMember({"assistant", "completion", "all"}));
  cmd->callback([flags] { run_tokenize(*flags); });
}

}  // namespace frugal::cli
