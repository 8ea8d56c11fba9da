#!/usr/bin/env bash
# GPT-2 BPE tokenizer speed: frugal (one thread) against the JavaScript reference (npm
# gpt-3-encoder, which scripts/setup.sh installs) in one run, over every fortune record of the
# fortunes corpus, each encoded on its own. Both tokenizers encode the records that are valid UTF-8
# (the reference reads text), cold (fresh cache) and warm (best later pass); prints MB/s and the ratio.
#
#   bash bench/tokenizer_speed.sh    (BIN defaults to build/tokenizer_speed; ROUNDS 3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/tokenizer_speed}
REFERENCE=${REFERENCE:-.deps/node_modules/gpt-3-encoder}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-out/bench-tokenizer}
mkdir -p "$OUT"
source bench/machine.sh
(unset OPENBLAS_CORETYPE; print_machine "${FRUGAL:-build/frugal}")
/usr/bin/python3 - "$OUT/records.json" <<'PY'
import json, os, sys
d = "/usr/share/games/fortunes"
records = []
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    if not os.path.isfile(p) or name.endswith((".dat", ".u8")):
        continue
    doc = []
    for line in open(p, "rb").read().splitlines(keepends=True):
        if line.rstrip(b"\r\n") == b"%":
            records.append(b"".join(doc)); doc = []
        else:
            doc.append(line)
    records.append(b"".join(doc))
valid = []
for r in records:
    try:
        if r: valid.append(r.decode("utf-8"))
    except UnicodeDecodeError:
        pass
json.dump(valid, open(sys.argv[1], "w"))
PY
OMP_NUM_THREADS=1 "$BIN" "$REFERENCE" "$ROUNDS" > "$OUT/frugal.json"
node bench/tokenizer_speed.js "$(realpath "$REFERENCE")" "$OUT/records.json" "$ROUNDS" > "$OUT/reference.json"
/usr/bin/python3 - "$OUT/frugal.json" "$OUT/reference.json" <<'PY'
import json, sys
f, r = (json.load(open(p)) for p in sys.argv[1:3])
mb = lambda d, k: d["bytes"] / d[k] / 1e6
print("| tokenizer | records | MB | tokens | cold MB/s | warm MB/s |")
print("|---|---:|---:|---:|---:|---:|")
for name, d in (("frugal (C++, 1 thread)", f), ("gpt-3-encoder (node " + __import__("subprocess").run(["node", "--version"], capture_output=True, text=True).stdout.strip() + ")", r)):
    print("| %s | %d | %.2f | %d | %.1f | %.1f |" % (name, d["records"], d["bytes"] / 1e6, d["tokens"], mb(d, "cold_s"), mb(d, "warm_s")))
print("frugal / reference: cold %.1fx, warm %.1fx" % (mb(f, "cold_s") / mb(r, "cold_s"), mb(f, "warm_s") / mb(r, "warm_s")))
PY
