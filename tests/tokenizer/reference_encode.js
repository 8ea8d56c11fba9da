// The JavaScript reference for frugal's tokenizer parity test (tests/test_tokenizer.cpp): the npm
// package gpt-3-encoder (an independent implementation of OpenAI's GPT-2 encoder).
//   node reference_encode.js PACKAGE_DIR STRINGS.json   -> prints a JSON array of id arrays
// STRINGS.json is a JSON array of strings; each is encoded on its own.
const fs = require('fs');
const encoder = require(process.argv[2]);
const texts = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
process.stdout.write(JSON.stringify(texts.map(t => encoder.encode(t))));
