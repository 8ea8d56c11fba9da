#!/usr/bin/env node
// llama_reference.mjs: the independent llama.cpp referee of frugal's GGUF export.
//
// It loads a GGUF file (and optionally a LoRA adapter GGUF) with llama.cpp itself, through
// node-llama-cpp's prebuilt CPU binaries (no compilation, no download, no GPU), and reports what
// llama.cpp makes of it: tokenization, raw logits, greedy generation, and a few vocabulary facts.
// The GGUF tests (GoogleTest, which spawn this script) and the GGUF bench compare frugal against it.
//
// Usage:
//   node tests/gguf/llama_reference.mjs REQUEST.json
//
// REQUEST.json (every key but "node_modules" and "model" is optional):
//   {
//     "node_modules": "/abs/path/node_modules", // where node-llama-cpp is imported from (absolute)
//     "model":        "m.gguf",                 // relative paths are relative to REQUEST.json's folder
//     "lora":         "adapter.gguf",           // a LoRA adapter GGUF applied to the context
//     "lora_scale":   1.0,                      // the adapter's user scale (default 1)
//     "tokenize":     ["text", ...],            // texts to tokenize (see "ids"/"ids_special" below)
//     "logits_of":    [ids...],                 // a prompt of token ids: raw logits at every position
//     "logits_out":   "logits.f32",             // where those logits go (required with logits_of)
//     "generate":     {"prompt": [ids...], "tokens": 32},   // greedy generation
//     "threads":      2,                        // CPU threads (default 2)
//     "kv_cache":     "f16"                     // KV cache type: "f16" (llama.cpp's default) or
//                                               // "f32" (tighter comparisons: no rounding of K/V)
//   }
//
// Output: exactly one JSON line on stdout (llama.cpp's own log lines are dropped; with the
// environment variable LLAMA_REFERENCE_VERBOSE=1 they are printed on stderr):
//   {"n_vocab": N, "arch": "llama", "bos": id|null, "eos": id|null, "add_bos": bool,
//    "chat_template": "..."|null,
//    "tokenize": [{"text": ..., "ids": [...], "ids_special": [...]}, ...],
//    "logits_positions": P,          // present with logits_of: P = logits_of.length
//    "generated": [ids...],          // present with generate: exactly "tokens" ids
//    "generated_text": "..."}        // and their text: model.detokenize(ids, true) (llama_detokenize
//                                    // with special tokens rendered)
// On any error (missing file, load failure, bad request): one line on stderr, exit status 1; the
// line ends with llama.cpp's error log lines, e.g. "[llama.cpp: ... missing tensor '...']".
// (A few malformed files make llama.cpp hit a GGML_ASSERT, e.g. a missing
// llama.feed_forward_length: then the process aborts, exit status 134, with the assertion on stderr.)
//
// What each field is, in llama.cpp terms:
//  - "ids":         model.tokenize(text, false) -> common_tokenize(vocab, text, add_special=false,
//                   parse_special=false) -> llama_tokenize(..., add_special=false, parse_special=false):
//                   no BOS/EOS added; the text of a CONTROL token (token_type 3, e.g.
//                   "<|endoftext|>") stays plain text, but a USER_DEFINED token's text (token_type
//                   4) still becomes that token, as in HF tokenizers (llama-vocab.cpp
//                   tokenizer_st_partition).
//  - "ids_special": model.tokenize(text, true) -> llama_tokenize(..., add_special=false,
//                   parse_special=true): control and user-defined tokens' text becomes those
//                   tokens; still no BOS/EOS added.
//  - "bos"/"eos":   model.tokens.bos / .eos (llama_vocab_bos / llama_vocab_eos), null if none.
//  - "add_bos":     llama_vocab_get_add_bos (model._model.shouldPrependBosToken()), false when
//                   there is no BOS token; i.e. whether
//                   llama.cpp itself would put BOS in front of a prompt (tokenizer.ggml.add_bos_token
//                   or the vocabulary type's default). The ids above never contain that BOS.
//  - "n_vocab":     llama_vocab_n_tokens: the length of tokenizer.ggml.tokens; checked against the
//                   number of logits llama.cpp returns.
//  - "arch", "chat_template": general.architecture, tokenizer.chat_template from the GGUF header.
//  - logits: sequence.controlledEvaluate([[id, {generateNext: {logits: true}}], ...]) over the whole
//    prompt in ONE batch (batch size >= prompt length), so llama.cpp outputs every position. Each
//    position's values come from llama_get_logits_ith through node-llama-cpp's sampler with its
//    default config (temperature 0 => the chain is only llama_sampler_init_greedy, which selects and
//    does not modify logits; no penalties, no top-k/p): they are the raw, unnormalized logits of
//    all n_vocab tokens. They are written as float32 little-endian, row-major [P][n_vocab]
//    (position-major), row i = logits predicting the token after prompt[i].
//  - generated: the prompt is evaluated, then each step takes the argmax of the raw logits
//    (computed here; ties go to the lowest id, like llama.cpp's greedy sampler) and feeds it back,
//    exactly "tokens" times; EOS does not stop it. The sequence's history is cleared before it, so
//    it does not see the logits_of prompt.
//
// Context settings: 1 sequence, contextSize = max(prompt lengths, generate prompt + tokens) + 8,
// batchSize = contextSize (>= every prompt), flashAttention: false (llama.cpp's non-flash path),
// threads from the request (default 2), gpuLayers 0 (CPU only), useMmap false (the file is read
// into memory, so a test may rewrite it afterwards), no sampler randomness anywhere (greedy).
// The KV cache is F16 (llama.cpp's and node-llama-cpp's default) unless "kv_cache": "f32"; F16
// rounds K and V, which moves the logits of a tiny random model by about 1e-3.
//
// LoRA: createContext({lora: {adapters: [{filePath, scale: lora_scale}]}}) ->
// llama_adapter_lora_init + llama_set_adapters_lora(ctx, [adapter], [scale]). llama.cpp then computes,
// for every base weight W named <name> with tensors <name>.lora_a / <name>.lora_b in the adapter,
//     y = W x + s * B (A x),     s = lora_scale * alpha / rank   (alpha = adapter.lora.alpha, a
//                                f32; rank = lora_b.ne[0]; if alpha == 0 then s = lora_scale)
// with, in ggml ne order (ne[0] = contiguous, = the input dimension of W whose ne is [n_in, n_out]):
//     lora_a.ne = [n_in, rank]   (PyTorch/PEFT lora_A.weight [rank, n_in], stored as is)
//     lora_b.ne = [rank, n_out]  (PyTorch/PEFT lora_B.weight [n_out, rank], stored as is)
// (llama.cpp src/llama-adapter.cpp, llama_adapter_lora_weight::get_scale, and src/llama-graph.cpp
// build_lora_mm). The adapter's header needs general.type = "adapter", general.architecture = the
// base model's, adapter.type = "lora", adapter.lora.alpha (f32). token_embd is the exception
// (lora_a transposed, see llama-adapter.cpp).

import fs from "node:fs";
import path from "node:path";
import url from "node:url";

// llama.cpp's log lines at error level: on failure they are appended to the one error line
// (they name the cause, e.g. a missing tensor); LLAMA_REFERENCE_VERBOSE=1 prints them as they come.
const verbose = process.env.LLAMA_REFERENCE_VERBOSE === "1";
const llamaLogs = [];

function fail(message) {
    let line = String(message);
    const logs = [...new Set(llamaLogs)]; // node-llama-cpp may retry a failed load: same lines twice
    if (logs.length > 0) line += ` [llama.cpp: ${logs.join(" | ")}]`;
    process.stderr.write(`llama_reference: ${line.replace(/\s*\n\s*/g, " ")}\n`);
    process.exit(1);
}

// llama.cpp and node-llama-cpp may log to stdout through console.info/console.log; stdout must
// carry only the result line, so everything else goes to stderr.
const writeStdout = process.stdout.write.bind(process.stdout);
console.log = console.info = console.debug = (...args) => process.stderr.write(args.join(" ") + "\n");

function isIdArray(a) {
    return Array.isArray(a) && a.every((x) => Number.isInteger(x) && x >= 0);
}

async function main() {
    const requestPath = process.argv[2];
    if (!requestPath || process.argv.length > 3)
        fail("usage: node llama_reference.mjs REQUEST.json");
    let req;
    try {
        req = JSON.parse(fs.readFileSync(requestPath, "utf8"));
    } catch (e) {
        fail(`cannot read request ${requestPath}: ${e.message}`);
    }
    const base = path.dirname(path.resolve(requestPath));
    const resolve = (p) => path.resolve(base, p);

    if (typeof req.node_modules !== "string") fail("request: node_modules (string) is required");
    if (typeof req.model !== "string") fail("request: model (string) is required");
    const modelPath = resolve(req.model);
    if (!fs.existsSync(modelPath)) fail(`model file not found: ${modelPath}`);
    const loraPath = req.lora != null ? resolve(req.lora) : null;
    if (loraPath != null && !fs.existsSync(loraPath)) fail(`lora file not found: ${loraPath}`);
    const loraScale = req.lora_scale ?? 1.0;
    if (typeof loraScale !== "number") fail("request: lora_scale must be a number");
    const texts = req.tokenize ?? [];
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string"))
        fail("request: tokenize must be an array of strings");
    const logitsOf = req.logits_of ?? null;
    if (logitsOf != null) {
        if (!isIdArray(logitsOf) || logitsOf.length === 0) fail("request: logits_of must be a non-empty array of token ids");
        if (typeof req.logits_out !== "string") fail("request: logits_out is required with logits_of");
    }
    const gen = req.generate ?? null;
    if (gen != null) {
        if (!isIdArray(gen.prompt) || gen.prompt.length === 0) fail("request: generate.prompt must be a non-empty array of token ids");
        if (!Number.isInteger(gen.tokens) || gen.tokens < 0) fail("request: generate.tokens must be an integer >= 0");
    }
    const kvCache = req.kv_cache ?? "f16";
    if (kvCache !== "f16" && kvCache !== "f32") fail('request: kv_cache must be "f16" or "f32"');
    const threads = req.threads ?? 2;
    if (!Number.isInteger(threads) || threads < 1) fail("request: threads must be a positive integer");

    const entry = path.join(path.resolve(req.node_modules), "node-llama-cpp", "dist", "index.js");
    if (!fs.existsSync(entry)) fail(`node-llama-cpp not found under ${req.node_modules}`);
    const { getLlama, LlamaLogLevel } = await import(url.pathToFileURL(entry).href);

    const llama = await getLlama({
        gpu: false,
        build: "never",
        usePrebuiltBinaries: true,
        skipDownload: true,
        progressLogs: false,
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => {
            const text = String(message).trim();
            if (verbose) process.stderr.write(`[llama.cpp ${level}] ${text}\n`);
            if ((level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) && text !== "") llamaLogs.push(text);
        },
        maxThreads: threads,
    });

    const model = await llama.loadModel({
        modelPath,
        vocabOnly: logitsOf == null && gen == null, // a tokenize-only request skips the weights
        gpuLayers: 0,
        useMmap: false,
        defaultContextFlashAttention: false,
        ignoreMemorySafetyChecks: true,
    });

    const meta = model.fileInfo.metadata ?? {};
    const arch = meta.general?.architecture ?? null;
    const tokenList = meta.tokenizer?.ggml?.tokens;
    let nVocab = Array.isArray(tokenList) ? tokenList.length : null;
    const chatTemplate = typeof meta.tokenizer?.chat_template === "string" ? meta.tokenizer.chat_template : null;

    const out = {
        n_vocab: nVocab,
        arch,
        bos: model.tokens.bos ?? null,
        eos: model.tokens.eos ?? null,
        add_bos: model.tokens.bos != null && model._model.shouldPrependBosToken(),
        chat_template: chatTemplate,
        tokenize: texts.map((text) => ({
            text,
            ids: Array.from(model.tokenize(text, false)),
            ids_special: Array.from(model.tokenize(text, true)),
        })),
    };

    if (logitsOf != null || gen != null) {
        const need = Math.max(logitsOf?.length ?? 0, gen ? gen.prompt.length + gen.tokens : 0) + 8;
        const context = await model.createContext({
            contextSize: need,
            batchSize: need,
            sequences: 1,
            threads,
            flashAttention: false,
            ignoreMemorySafetyChecks: true,
            failedCreationRemedy: false,
            ...(kvCache === "f32" ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
            ...(loraPath != null ? { lora: { adapters: [{ filePath: loraPath, scale: loraScale }] } } : {}),
        });
        const sequence = context.getSequence();

        // One position's logits (a Map token -> logit over the whole vocabulary) as a Float32Array.
        const toRow = (result, where) => {
            const m = result?.next?.logits;
            if (!(m instanceof Map)) throw new Error(`no logits returned at ${where}`);
            if (nVocab == null) nVocab = m.size;
            if (m.size !== nVocab) throw new Error(`llama.cpp returned ${m.size} logits at ${where}, expected n_vocab = ${nVocab}`);
            const row = new Float32Array(nVocab);
            for (const [token, value] of m) row[token] = value;
            return row;
        };
        const argmax = (row) => {
            let best = 0;
            for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
            return best;
        };
        const withLogits = (id) => [id, { generateNext: { logits: true } }];

        if (logitsOf != null) {
            const results = await sequence.controlledEvaluate(logitsOf.map(withLogits));
            const buf = Buffer.alloc(logitsOf.length * nVocab * 4);
            for (let i = 0; i < logitsOf.length; i++) {
                const row = toRow(results[i], `logits_of position ${i}`);
                for (let j = 0; j < row.length; j++) buf.writeFloatLE(row[j], (i * nVocab + j) * 4);
            }
            fs.writeFileSync(resolve(req.logits_out), buf);
            out.logits_positions = logitsOf.length;
        }

        if (gen != null) {
            await sequence.clearHistory();
            const generated = [];
            if (gen.tokens > 0) {
                const input = gen.prompt.map((id, i) => (i === gen.prompt.length - 1 ? withLogits(id) : id));
                let results = await sequence.controlledEvaluate(input);
                let next = argmax(toRow(results[gen.prompt.length - 1], "the end of generate.prompt"));
                generated.push(next);
                while (generated.length < gen.tokens) {
                    results = await sequence.controlledEvaluate([withLogits(next)]);
                    next = argmax(toRow(results[0], `generated token ${generated.length}`));
                    generated.push(next);
                }
            }
            out.generated = generated;
            out.generated_text = model.detokenize(generated, true);  // control tokens' text included
        }
        out.n_vocab = nVocab;
        await context.dispose();
    }

    await model.dispose();
    await llama.dispose();
    writeStdout(JSON.stringify(out) + "\n");
}

main().then(
    () => process.exit(0),
    // llama.cpp's log lines reach the logger asynchronously: let them arrive before failing
    (e) => setTimeout(() => fail(e?.message ?? e), 200),
);
