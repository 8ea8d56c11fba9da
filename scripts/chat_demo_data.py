#!/usr/bin/python3
"""Chat fine-tuning demo data from Debian's iso-codes package: questions about the ISO 3166-1 codes
of countries, answered in one fixed sentence, as chat JSONL (docs/CHAT-DATA.md).

    python3 scripts/chat_demo_data.py OUT_DIR [--eval-fraction 0.1] [--seed 0]

writes OUT_DIR/train.jsonl, OUT_DIR/eval.jsonl and OUT_DIR/facts.txt (plain text about every country,
held-out ones included: what a base model would have read before instruction tuning). The eval file
holds countries the train file never
mentions, so it measures whether the model learned the answer format and the codes' pattern rather than
one country's line. Per country: its alpha-2, alpha-3 and numeric code asked in one of several
phrasings (a third of them after a system prompt), and a two-turn chat asking alpha-2 then alpha-3.
The output depends on the seed and the iso-codes version only. Standard library only (Debian's
/usr/bin/python3); each file is written to a temporary name and renamed, so a crash leaves none half
written.
"""
import argparse
import json
import os
import random
import sys

SOURCE = "/usr/share/iso-codes/json/iso_3166-1.json"

SYSTEM_PROMPTS = [
    "You answer questions about ISO 3166 country codes.",
    "You are a concise assistant. Answer in one sentence.",
]

QUESTIONS = {
    "alpha-2": [
        "What is the ISO 3166 alpha-2 code of {name}?",
        "What's the two-letter country code for {name}?",
        "Which ISO 3166-1 alpha-2 code does {name} have?",
        "Give me the alpha-2 code of {name}.",
    ],
    "alpha-3": [
        "What is the ISO 3166 alpha-3 code of {name}?",
        "What's the three-letter country code for {name}?",
        "Which ISO 3166-1 alpha-3 code does {name} have?",
        "Give me the alpha-3 code of {name}.",
    ],
    "numeric": [
        "What is the ISO 3166 numeric code of {name}?",
        "Which three-digit numeric code does ISO 3166-1 give {name}?",
        "Give me the numeric country code of {name}.",
    ],
}

FOLLOW_UPS = ["And its alpha-3 code?", "What about the three-letter code?", "And the alpha-3 one?"]

FIELDS = {"alpha-2": "alpha_2", "alpha-3": "alpha_3", "numeric": "numeric"}


def answer(kind, country):
    return f"The {kind} code of {country['name']} is {country[FIELDS[kind]]}."


def question(rng, kind, country):
    return {"role": "user", "content": rng.choice(QUESTIONS[kind]).format(name=country["name"])}


def examples_of(rng, country):
    """The chats about one country: one per kind of code, then alpha-2 followed by alpha-3."""
    chats = []
    for kind in QUESTIONS:
        chats.append([question(rng, kind, country), {"role": "assistant", "content": answer(kind, country)}])
    chats.append([question(rng, "alpha-2", country), {"role": "assistant", "content": answer("alpha-2", country)},
                  {"role": "user", "content": rng.choice(FOLLOW_UPS)},
                  {"role": "assistant", "content": answer("alpha-3", country)}])
    for messages in chats:
        if rng.random() < 1 / 3:
            messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return [{"messages": m} for m in chats]


def load_countries(path):
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)["3166-1"]
    except OSError as e:
        sys.exit(f"chat_demo_data: cannot read {path} ({e.strerror}): install Debian's iso-codes "
                 "(bash scripts/setup.sh)")
    # The everyday name where iso-codes has one ("Bolivia" for "Bolivia, Plurinational State of").
    countries = [{"name": e.get("common_name", e["name"]), "alpha_2": e["alpha_2"], "alpha_3": e["alpha_3"],
                  "numeric": e["numeric"]} for e in entries]
    return sorted(countries, key=lambda c: c["alpha_2"])


def write_jsonl_atomic(path, records):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def facts_text(countries):
    """Plain text about every country (held-out ones included): what a base model would have read
    before instruction tuning, in the words the answers use."""
    return "".join(" ".join(answer(kind, c) for kind in QUESTIONS) + "\n" for c in countries)


def write_text_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--eval-fraction", type=float, default=0.1, help="share of countries held out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default=SOURCE, help=f"iso-codes' ISO 3166-1 JSON (default {SOURCE})")
    args = parser.parse_args()
    if not 0 < args.eval_fraction < 1:
        parser.error("--eval-fraction must lie between 0 and 1")
    rng = random.Random(args.seed)
    countries = load_countries(args.source)
    rng.shuffle(countries)
    n_eval = max(1, round(len(countries) * args.eval_fraction))
    splits = {"eval": countries[:n_eval], "train": countries[n_eval:]}
    os.makedirs(args.out_dir, exist_ok=True)
    for split in ("train", "eval"):
        examples = [e for c in splits[split] for e in examples_of(rng, c)]
        rng.shuffle(examples)
        path = os.path.join(args.out_dir, f"{split}.jsonl")
        write_jsonl_atomic(path, examples)
        print(f"chat_demo_data: {path}: {len(examples)} examples about {len(splits[split])} countries")
    facts = os.path.join(args.out_dir, "facts.txt")
    write_text_atomic(facts, facts_text(sorted(countries, key=lambda c: c["alpha_2"])))
    print(f"chat_demo_data: {facts}: a line of plain text about each of the {len(countries)} countries")


if __name__ == "__main__":
    main()
