// The JavaScript reference for frugal's chat-template parity test (tests/test_jinja.cpp): Hugging
// Face's own JavaScript renderer of chat templates, the npm package @huggingface/jinja.
//   node render_reference.js NODE_MODULES_DIR CASES.json   -> a JSON array, one entry per case
// CASES.json is a JSON array of {"template": "...", "context": {...}}; each entry of the output is the
// rendered string, or {"error": "..."} when the reference refuses the case.
const fs = require('fs');
const path = require('path');
const { Template } = require(path.resolve(process.argv[2], '@huggingface/jinja'));
const cases = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const out = cases.map((c) => {
  try {
    return new Template(c.template).render(c.context);
  } catch (e) {
    return { error: String((e && e.message) || e) };
  }
});
process.stdout.write(JSON.stringify(out));
