#!/usr/bin/env bash
# Decontamination: recall on benchmark examples planted (re-cased, re-punctuated, whole
# or as a 15-word / 20-character partial span) in real documents, and the rate of clean
# corpus documents flagged, with all the benchmark sets of ../shared/data/benchmarks,
# for both policies (drop, remove-span); speed of the stage; index build vs load time.
# Peers, same benchmark files, every PEER_SAMPLE-th clean document (default 10), one core:
# datatrove's NGramsDecontFilter (benches/peers/decontam_datatrove.py; its indexer needs
# lighteval and the Hugging Face Hub, so the index is written with its own recipe) when
# PEER_PYTHON (default python3) has datatrove, and a straightforward Python 13-gram scanner
# (benches/peers/decontam_baseline.py).
#   benches/decontam.sh            (SHARED=... to point at another data folder)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=$(realpath "${SHARED:-../shared/data}")
B=$SHARED/benchmarks
# CORPUS_BIN=path: use that binary instead of building the release one.
if [ -z "${CORPUS_BIN:-}" ]; then
    cargo build --release --quiet --bin corpus
fi
BIN=$(realpath "${CORPUS_BIN:-${CARGO_TARGET_DIR:-target}/release/corpus}")
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
def partial(name, q):
    # A paraphrase-free span: 15 words (20 characters of Chinese) from a random place.
    if name == "cmmlu":
        s = rng.randrange(0, max(1, len(q) - 20))
        return q[s:s + 20]
    w = q.split()
    s = rng.randrange(0, max(1, len(w) - 15))
    return " ".join(w[s:s + 15])
with open(out, "w") as f:
    for kind in ("whole", "partial"):
        for name, items in sets.items():
            if kind == "partial":
                items = [q for q in items if (len(q) >= 30 if name == "cmmlu" else len(q.split()) >= 20)]
            for i, q in enumerate(rng.sample(items, 200)):
                if kind == "partial":
                    q = partial(name, q)
                # Light edits a web copy might have: case, punctuation, spacing.
                q = q.upper() if i % 2 else q.replace(",", " ;").replace("?", " ?!")
                host = rng.choice(hosts)
                cut = len(host) // 2
                # `planted` (a field the stage keeps) names the planted text for the misses.
                f.write(json.dumps({"id": f"{kind}-{name}-{i}", "text": host[:cut] + "\n" + q + "\n" + host[cut:],
                                    "source": f"{kind}-{name}", "planted": q}) + "\n")
PY
ARGS=(--benchmark gsm8k=$B/gsm8k --benchmark humaneval=$B/humaneval --benchmark mbpp=$B/mbpp
      --benchmark mmlu=$B/mmlu/test --benchmark bbh=$B/bbh/bbh --benchmark math=$B/math-subset
      --benchmark cmmlu=$B/cmmlu/test --benchmark zh-math=$B/zh-math)

# Index: built once (the command prints its build time), then loaded by each run.
"$BIN" decontam index "${ARGS[@]}" -o "$WORK/bench.index"
head -1 "$WORK/planted.jsonl" > "$WORK/one.jsonl"
TIMEFORMAT=%R
best() { # best of 3 wall-clock seconds of a command
    local b=999 t
    for _ in 1 2 3; do
        t=$( { time "$@" >/dev/null 2>&1; } 2>&1 )
        b=$(python3 -c "print(min($b, $t))")
    done
    echo "$b"
}
T_BUILD=$(best "$BIN" decontam "$WORK/one.jsonl" -o "$WORK/one-b" -q --overwrite "${ARGS[@]}")
T_LOAD=$(best "$BIN" decontam "$WORK/one.jsonl" -o "$WORK/one-i" -q --overwrite --index "$WORK/bench.index")
echo "one-document run: $T_BUILD s with --benchmark (builds and writes the index), $T_LOAD s with --index (loads it); index $(stat -c %s "$WORK/bench.index") bytes"

for POLICY in drop remove-span; do
    "$BIN" decontam "$WORK/planted.jsonl" -o "$WORK/planted-$POLICY" -q --index "$WORK/bench.index" \
        --policy "$POLICY" --report "$WORK/planted-$POLICY.json"
    "$BIN" decontam "$SHARED/corpus" -o "$WORK/clean-$POLICY" -q --threads 1 --index "$WORK/bench.index" \
        --policy "$POLICY" --report "$WORK/clean-$POLICY.json"
    # What a span removal left behind: scanned again, nothing may match.
    "$BIN" decontam "$WORK/planted-$POLICY" -o "$WORK/rescan-$POLICY" -q --index "$WORK/bench.index"
done
python3 - "$WORK" <<'PY'
import json, sys, collections
w = sys.argv[1]
def stage(d):
    return json.load(open(f"{w}/{d}/stats.json"))["stages"][0]
for policy in ("drop", "remove-span"):
    p, c, r = stage(f"planted-{policy}"), stage(f"clean-{policy}"), stage(f"rescan-{policy}")
    print(f"== policy {policy}")
    for kind in ("whole", "partial"):
        caught = collections.Counter()
        total = collections.Counter()
        for line in open(f"{w}/planted.jsonl"):
            d = json.loads(line)
            if d["id"].startswith(kind):
                total[d["source"]] += 1
        # A planted document is caught when the stage dropped or edited it.
        import gzip, glob
        untouched = {}
        for f in sorted(glob.glob(f"{w}/planted-{policy}/docs/*.jsonl.gz")):
            for line in gzip.open(f, "rt"):
                d = json.loads(line)
                extra = d.get("meta", {}).get("extra", {})
                if "decontam" not in extra:
                    untouched[d["id"]] = extra.get("planted", "")
        for line in open(f"{w}/planted.jsonl"):
            d = json.loads(line)
            if d["id"].startswith(kind) and d["id"] not in untouched:
                caught[d["source"]] += 1
        n, k = sum(total.values()), sum(caught.values())
        print(f"planted {kind}: caught {k} of {n} ({k / n:.1%}); " +
              ", ".join(f"{s.split('-', 1)[1]} {caught[s]}/{total[s]}" for s in total))
        if policy == "drop":
            for i, q in untouched.items():
                if i.startswith(kind):
                    print(f"  missed {i}: {q[:100]!r}")
    print(f"planted: drops {p['drops']}, edited {p['counters'].get('edited', 0)}, "
          f"host bytes kept {p['bytes_out'] / p['bytes_in']:.1%}; left matching after the stage: "
          f"{r['docs_in'] - r['docs_out']} of {r['docs_in']}")
    flagged = c['docs_in'] - c['docs_out'] + c['counters'].get('edited', 0)
    print(f"clean corpus: {c['docs_in']} documents, flagged {flagged} ({flagged / c['docs_in']:.3%}): "
          f"drops {c['drops']}, edited {c['counters'].get('edited', 0)}; "
          f"bytes removed {c['bytes_in'] - c['bytes_out']} ({(c['bytes_in'] - c['bytes_out']) / c['bytes_in']:.4%})")
    print(f"stage speed, one core: {c['docs_in'] / c['seconds']:.0f} docs/s, {c['bytes_in'] / 1e6 / c['seconds']:.1f} MB/s")
    rep = json.load(open(f"{w}/clean-{policy}.json"))
    for b in rep["benchmarks"]:
        if b["documents_matching"]:
            print(f"  report {b['name']}: {b['documents']} docs ({b['documents_matching']} matching), "
                  f"{b['examples_matched']} examples, e.g. {b['matched_examples'][0]['example']} "
                  f"\"{b['sample_ngrams'][0]['ngram']}\"")
PY

# The scan alone, in memory, timed by the thread's CPU clock (per core, whatever else
# runs on the machine): benches/decontam_scan.rs.
cargo bench --quiet --bench decontam_scan -- --index "$WORK/bench.index" --data "$SHARED/corpus"

# Peers on the clean corpus, side by side with the stage's speed above (policy drop).
PEER_PYTHON=${PEER_PYTHON:-python3}
PEER_SAMPLE=${PEER_SAMPLE:-10}
OURS=$(python3 -c "import json, sys; c = json.load(open(sys.argv[1]))['stages'][0]; print(c['bytes_in'] / 1e6 / c['seconds'])" "$WORK/clean-drop/stats.json")
peer() { # python script name
    local line
    line=$("$1" "benches/peers/$2" --n 13 --sample "$PEER_SAMPLE" "${ARGS[@]}" "$SHARED/corpus" 2>/dev/null | tail -1)
    echo "$line"
    python3 -c "import re, sys; m = float(re.search(r'([0-9.]+) MB/s', sys.argv[1]).group(1)); print(f'  corpus decontam {float(sys.argv[2]):.1f} MB/s is {float(sys.argv[2]) / m:.0f}x $3')" \
        "$line" "$OURS"
}
echo "== peers, one core, every ${PEER_SAMPLE}th clean document"
if "$PEER_PYTHON" -c "import datatrove.pipeline.decont, spacy" 2>/dev/null; then
    peer "$PEER_PYTHON" decontam_datatrove.py "datatrove NGramsDecontFilter"
else
    echo "datatrove: not installed for $PEER_PYTHON (PEER_PYTHON=... a Python with datatrove)"
fi
peer python3 decontam_baseline.py "the Python baseline"
