// The JavaScript reference for frugal's tokenizer.json parity test (tests/test_hf_tokenizer.cpp):
// Hugging Face's own JavaScript implementation of the format, the npm package @huggingface/tokenizers.
//   node hf_reference_encode.js NODE_MODULES_DIR TOKENIZER.json STRINGS.json   -> a JSON array of id arrays
// STRINGS.json is a JSON array of strings; each is encoded on its own with add_special_tokens false
// (frugal's encode()). A tokenizer_config.json beside TOKENIZER.json is read as Hugging Face would.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.resolve(process.argv[2], '@huggingface/tokenizers'));
const file = process.argv[3];
const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
const config = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : {};
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(file, 'utf8')), config);
const texts = JSON.parse(fs.readFileSync(process.argv[4], 'utf8'));
process.stdout.write(JSON.stringify(texts.map(t => tokenizer.encode(t, { add_special_tokens: false }).ids)));
