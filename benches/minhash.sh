#!/usr/bin/env bash
# MinHash dedup speed and memory, corpus vs datasketch and datatrove on the same documents.
#
# 1. Signatures, one core: `corpus dedup --fuzzy --pass signatures -t 1` vs datasketch
#    (MinHash.update_batch) and datatrove's MinhashDedupSignature (benches/peers/minhash_sig.py),
#    all with 5-word shingles and 112 hashes, on N documents taken round-robin from the
#    English and Chinese files of ../shared/data/corpus.
# 2. The whole in-memory dedup (`corpus dedup --fuzzy`, signatures + clusters + filter)
#    with 1 and 2 threads.
# 3. Peak memory of each multi-pass pass and of the in-memory mode on 1x and 4x the
#    input (4 copies of the input file), to show which ones grow with corpus size.
# Usage: benches/minhash.sh [N]   (default 20000; CORPUS_DIR overrides the data folder)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
CORPUS_DIR=${CORPUS_DIR:-../shared/data/corpus}
cargo build --release --quiet --bin corpus
BIN=${CARGO_TARGET_DIR:-target}/release/corpus
python3 -c "import datasketch, datatrove, spacy, xxhash" 2>/dev/null \
  || python3 -m pip install --quiet datasketch datatrove tokenizers spacy xxhash
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$N" "$CORPUS_DIR" "$WORK/input.jsonl" <<'PY'
import gzip, json, sys, itertools
n, d, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
names = ["en-news-reuters21578", "zh-reviews-sophonplus", "en-web-nltk-webtext", "zh-mixed-fewclue",
         "en-reviews-movie_reviews", "zh-wiki-cmrc2018"]
streams = [gzip.open(f"{d}/{x}.jsonl.gz", "rt", encoding="utf-8") for x in names]
docs = []
for lines in itertools.zip_longest(*streams):
    for l in lines:
        if l is not None and len(docs) < n:
            docs.append(json.loads(l))
    if len(docs) >= n:
        break
with open(out, "w", encoding="utf-8") as f:
    for x in docs:
        f.write(json.dumps({"id": x["id"], "text": x["text"]}, ensure_ascii=False) + "\n")
mb = sum(len(x["text"].encode()) for x in docs) / 1e6
print(f"input: {len(docs)} documents, {mb:.1f} MB of text", file=sys.stderr)
PY
rss() { /usr/bin/time -f "%M" -o "$WORK/rss" "$@"; echo "peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB"; }

echo "== signatures, one core"
rss "$BIN" dedup --fuzzy --pass signatures -t 1 --work-dir "$WORK/w1" "$WORK/input.jsonl"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  python3 benches/peers/minhash_sig.py "$WORK/input.jsonl" 2>&1 | grep -E "docs/s"

echo "== in-memory dedup (signatures + clusters + filter)"
for t in 1 2; do
  rm -rf "$WORK/out"
  start=$(date +%s.%N)
  rss "$BIN" dedup --fuzzy -t "$t" -o "$WORK/out" "$WORK/input.jsonl" 2>&1 | grep -E "signatures|clusters|peak"
  echo "threads $t: wall $(echo "$(date +%s.%N) - $start" | bc) s"
done

echo "== memory of each pass, 1x and 4x the input"
for k in 1 4; do
  mkdir -p "$WORK/in$k"
  for i in $(seq 1 $k); do cp "$WORK/input.jsonl" "$WORK/in$k/part-$i.jsonl"; done
  W=$WORK/mp$k
  echo "-- ${k}x: $(( k * N )) documents"
  echo -n "signatures: "; rss "$BIN" dedup --fuzzy -q --pass signatures --work-dir "$W" "$WORK/in$k"
  echo -n "buckets:    "; rss "$BIN" dedup --fuzzy -q --pass buckets --work-dir "$W" "$WORK/in$k"
  echo -n "cluster:    "; rss "$BIN" dedup --fuzzy -q --pass cluster --work-dir "$W" "$WORK/in$k"
  echo -n "filter:     "; rss "$BIN" dedup --fuzzy -q --pass filter --work-dir "$W" -o "$WORK/o$k" "$WORK/in$k"
  echo -n "in-memory:  "; rss "$BIN" dedup --fuzzy -q -o "$WORK/m$k" "$WORK/in$k"
done
