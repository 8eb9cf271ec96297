#!/usr/bin/env bash
# Throughput of the scoring stages on real text, one worker thread each, side by side in
# one run: the rule filters (`quality` defaults), the word blocklists (`safety` with the
# LDNOOBW en+zh lists), and the ONNX classifiers (`classifier`, quality and safety) on
# tract and, when CORPUS_ONNXRUNTIME_LIB names a libonnxruntime, on ONNX Runtime; plus
# `corpus extract` on the trafilatura pages for the pipeline's extraction rate.
#
# Input: every 10th document of ../shared/data/corpus (English + Chinese).
# Usage: benches/classifier.sh   (PROFILE=dev: debug build with optimized deps;
#        BIN=path: a prebuilt corpus binary)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=$(realpath "${SHARED:-../shared/data}")
PROFILE=${PROFILE:-release}
if [ -n "${BIN:-}" ]; then
  : # a prebuilt binary
elif [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin corpus
  BIN=${CARGO_TARGET_DIR:-target}/release/corpus
else
  cargo build --quiet --bin corpus
  BIN=${CARGO_TARGET_DIR:-target}/debug/corpus
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 - "$SHARED/corpus" "$WORK/sample.jsonl" <<'PY'
import gzip, json, os, sys
src, dst = sys.argv[1], sys.argv[2]
with open(dst, "w") as out:
    for name in sorted(os.listdir(src)):
        if name.endswith(".jsonl.gz"):
            for i, line in enumerate(gzip.open(os.path.join(src, name), "rt")):
                if i % 10 == 0:
                    out.write(line)
PY

run_stage() { # label, stage TOML
  local label=$1 stage=$2 dir="$WORK/out-$RANDOM"
  cat > "$WORK/c.toml" <<TOML
[input]
paths = ["$WORK/sample.jsonl"]
[output]
dir = "$dir"
[[stages]]
$stage
TOML
  "$BIN" run "$WORK/c.toml" -q --threads 1
  python3 - "$dir/stats.json" "$label" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["stages"][0]
print(f"| {sys.argv[2]} | {st['docs_in']} | {st['bytes_in']/1e6:.1f} | {st['seconds']:.2f} | "
      f"{st['docs_in']/st['seconds']:.0f} | {st['bytes_in']/1e6/st['seconds']:.2f} |")
PY
  rm -rf "$dir"
}

echo "| stage (one thread) | docs | MB | stage s | docs/s | MB/s |"
echo "|---|---|---|---|---|---|"
run_stage "quality rules (defaults)" 'kind = "quality"'
run_stage "safety word lists (LDNOOBW en+zh)" "kind = \"safety\"
text_word_lists = [\"$SHARED/safety/blocklist-ldnoobw/en.txt\", \"$SHARED/safety/blocklist-ldnoobw/zh.txt\"]"
for score in quality safety; do
  run_stage "classifier $score, tract" "kind = \"classifier\"
score = \"$score\"
mode = \"annotate\""
  if [ -n "${CORPUS_ONNXRUNTIME_LIB:-}" ]; then
    run_stage "classifier $score, onnxruntime" "kind = \"classifier\"
score = \"$score\"
mode = \"annotate\"
backend = \"onnxruntime\"
library = \"$CORPUS_ONNXRUNTIME_LIB\""
  fi
done
PAGES=$(ls "$SHARED/extraction/trafilatura-eval/html" | wc -l)
START=$(date +%s.%N)
"$BIN" extract -q -t 1 -o "$WORK/extract.jsonl" "$SHARED/extraction/trafilatura-eval/html"
END=$(date +%s.%N)
python3 -c "import sys; p, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'| corpus extract (trafilatura pages, whole command) | {p} | | {s:.2f} | {p/s:.0f} | |')" "$PAGES" "$START" "$END"
