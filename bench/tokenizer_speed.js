// The JavaScript reference's throughput for bench/tokenizer_speed.sh: gpt-3-encoder over the
// fortunes records (each record on its own: the reference slows down badly on large inputs),
// cold (first pass, fresh cache) and warm (best of ROUNDS later passes).
//   node tokenizer_speed.js PACKAGE_DIR RECORDS.json [ROUNDS]
const fs = require('fs');
const encoder = require(process.argv[2]);
const records = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const rounds = Number(process.argv[4] || 3);
const bytes = records.reduce((n, r) => n + Buffer.byteLength(r, 'utf8'), 0);
let tokens = 0;
let t = process.hrtime.bigint();
for (const r of records) tokens += encoder.encode(r).length;
const cold = Number(process.hrtime.bigint() - t) / 1e9;
let warm = Infinity;
for (let k = 0; k < rounds; ++k) {
  t = process.hrtime.bigint();
  for (const r of records) encoder.encode(r);
  warm = Math.min(warm, Number(process.hrtime.bigint() - t) / 1e9);
}
process.stdout.write(JSON.stringify({bytes, records: records.length, tokens, cold_s: cold, warm_s: warm}) + '\n');
