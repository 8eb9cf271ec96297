#!/usr/bin/env bash
# Rule-based `quality` stage: (1) how its drops line up with DCLM's human quality labels
# (../shared/data/quality/dclm-human-labels), (2) documents/s and MB/s of the stage on
# the English+Chinese corpus (../shared/data/corpus), one worker thread.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
cargo build --release --quiet --bin corpus
BIN=${CARGO_TARGET_DIR:-target}/release/corpus
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/labels.toml" <<TOML
[input]
paths = ["$(realpath "$SHARED/quality/dclm-human-labels/labels.jsonl.gz")"]
[output]
dir = "$WORK/labels"
dropped = true
[[stages]]
kind = "quality"
TOML
"$BIN" run "$WORK/labels.toml" -q
python3 - "$WORK/labels" <<'PY'
import gzip, json, sys, collections
out = sys.argv[1]
def load(p):
    return [json.loads(l) for l in gzip.open(p, "rt")]
label = lambda d: d.get("meta", {}).get("extra", {}).get("label")
kept = collections.Counter(label(d) for d in load(f"{out}/docs/part-00000.jsonl.gz"))
dropped = collections.Counter(label(d) for d in load(f"{out}/dropped/part-00000.jsonl.gz"))
good, bad = kept[1] + dropped[1], kept[0] + dropped[0]
print(f"DCLM human labels: {good} good, {bad} bad")
print(f"  dropped: {dropped[0]} bad ({dropped[0]/bad:.1%} of bad), {dropped[1]} good ({dropped[1]/good:.1%} of good)")
print(f"  precision of drops (share of dropped that humans call bad): {dropped[0]/max(1,dropped[0]+dropped[1]):.1%}")
PY
sed -e "s|$(realpath "$SHARED/quality/dclm-human-labels/labels.jsonl.gz")|$(realpath "$SHARED/corpus")|; s|$WORK/labels|$WORK/corpus|; s|dropped = true|dropped = false|" \
  "$WORK/labels.toml" > "$WORK/corpus.toml"
"$BIN" run "$WORK/corpus.toml" -q --threads 1
python3 - "$WORK/corpus/stats.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["stages"][0]
print(f"corpus: {st['docs_in']} docs, {st['bytes_in']/1e6:.1f} MB in {st['seconds']:.2f} s of stage time: "
      f"{st['docs_in']/st['seconds']:.0f} docs/s, {st['bytes_in']/1e6/st['seconds']:.1f} MB/s per core; kept {st['docs_out']}")
PY
