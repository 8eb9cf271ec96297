#!/usr/bin/env bash
# Decontamination: recall on benchmark examples planted (re-cased, re-punctuated) in
# real documents, and the rate of clean corpus documents flagged, with all the benchmark
# sets of ../shared/data/benchmarks; plus docs/s and MB/s of the stage.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=$(realpath "${SHARED:-../shared/data}")
B=$SHARED/benchmarks
cargo build --release --quiet --bin corpus
BIN=$(realpath "${CARGO_TARGET_DIR:-target}")/release/corpus
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$SHARED" "$WORK/planted.jsonl" <<'PY'
import csv, glob, gzip, io, json, random, sys
shared, out = sys.argv[1], sys.argv[2]
rng = random.Random(7)
def jsonl(path, field):
    return [json.loads(l)[field] for l in gzip.open(path, "rt")]
def csv_col(pattern, col, skip_header):
    rows = []
    for p in sorted(glob.glob(pattern)):
        reader = csv.reader(io.TextIOWrapper(gzip.open(p), encoding="utf-8"))
        if skip_header:
            next(reader, None)
        rows += [r[col] for r in reader if len(r) > col]
    return rows
sets = {
    "gsm8k": jsonl(f"{shared}/benchmarks/gsm8k/test.jsonl.gz", "question"),
    "math": jsonl(f"{shared}/benchmarks/math-subset/test-1000.jsonl.gz", "problem"),
    "mmlu": csv_col(f"{shared}/benchmarks/mmlu/test/*.csv.gz", 0, False),
    "cmmlu": csv_col(f"{shared}/benchmarks/cmmlu/test/*.csv.gz", 1, True),
}
hosts = [json.loads(l)["text"] for l in gzip.open(f"{shared}/corpus/en-news-reuters21578.jsonl.gz", "rt")][:2000]
with open(out, "w") as f:
    for name, items in sets.items():
        for i, q in enumerate(rng.sample(items, 200)):
            # Light edits a web copy might have: case, punctuation, spacing.
            q = q.upper() if i % 2 else q.replace(",", " ;").replace("?", " ?!")
            host = rng.choice(hosts)
            cut = len(host) // 2
            f.write(json.dumps({"id": f"{name}-{i}", "text": host[:cut] + "\n" + q + "\n" + host[cut:], "source": name}) + "\n")
PY
ARGS=(--benchmark gsm8k=$B/gsm8k --benchmark humaneval=$B/humaneval --benchmark mbpp=$B/mbpp
      --benchmark mmlu=$B/mmlu/test --benchmark bbh=$B/bbh/bbh --benchmark math=$B/math-subset
      --benchmark cmmlu=$B/cmmlu/test --benchmark zh-math=$B/zh-math)
"$BIN" decontam "$WORK/planted.jsonl" -o "$WORK/planted" -q "${ARGS[@]}"
"$BIN" decontam "$SHARED/corpus" -o "$WORK/clean" -q --threads 1 "${ARGS[@]}"
python3 - "$WORK" <<'PY'
import json, sys, collections
w = sys.argv[1]
p = json.load(open(f"{w}/planted/stats.json"))["stages"][0]
c = json.load(open(f"{w}/clean/stats.json"))["stages"][0]
print(f"planted: {p['docs_in']} documents with a benchmark example; caught {p['docs_in'] - p['docs_out']} "
      f"({(p['docs_in'] - p['docs_out']) / p['docs_in']:.1%}); by benchmark {p['counters']}")
print(f"clean corpus: {c['docs_in']} documents, flagged {c['docs_in'] - c['docs_out']} "
      f"({(c['docs_in'] - c['docs_out']) / c['docs_in']:.3%}); by benchmark {c['counters']}")
print(f"stage speed, one core: {c['docs_in'] / c['seconds']:.0f} docs/s, {c['bytes_in'] / 1e6 / c['seconds']:.1f} MB/s")
PY
