#!/usr/bin/env bash
# Rule-based `quality` stage: (1) how its drops line up with DCLM's human quality labels
# (../shared/data/quality/dclm-human-labels), alone and followed by the shipped quality
# classifier, (2) documents/s and MB/s of the stage on
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
# The shipped quality classifier on the same documents (one score per line, input order).
"$BIN" scorer score --model quality "$SHARED/quality/dclm-human-labels/labels.jsonl.gz" > "$WORK/model.txt"
python3 - "$WORK/labels" "$SHARED/quality/dclm-human-labels/labels.jsonl.gz" "$WORK/model.txt" <<'PY'
import gzip, json, sys, collections
out, labels_path, model_path = sys.argv[1:4]
def load(p):
    return [json.loads(l) for l in gzip.open(p, "rt")]
label = lambda d: d.get("meta", {}).get("extra", {}).get("label")
kept = collections.Counter(label(d) for d in load(f"{out}/docs/part-00000.jsonl.gz"))
dropped_docs = load(f"{out}/dropped/part-00000.jsonl.gz")
dropped = collections.Counter(label(d) for d in dropped_docs)
good, bad = kept[1] + dropped[1], kept[0] + dropped[0]
print(f"DCLM human labels: {good} good, {bad} bad")
print(f"  dropped: {dropped[0]} bad ({dropped[0]/bad:.1%} of bad), {dropped[1]} good ({dropped[1]/good:.1%} of good)")
print(f"  precision of drops (share of dropped that humans call bad): {dropped[0]/max(1,dropped[0]+dropped[1]):.1%}")

# Rules and the quality classifier together: the rules drop first, then the classifier
# drops what scores below a threshold (the default config's order of the two stages).
docs = load(labels_path)
y = [d["label"] for d in docs]
score = [float(x) for x in open(model_path)]
ruled = {d["text"] for d in dropped_docs}
rule = [d["text"] in ruled for d in docs]
def auc(s):
    pos = [a for a, l in zip(s, y) if l == 1]
    neg = [a for a, l in zip(s, y) if l == 0]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
print(f"  ROC-AUC: rules (kept/dropped) {auc([0.0 if r else 1.0 for r in rule]):.3f}, "
      f"classifier {auc(score):.3f}, rules then classifier {auc([s - 1 if r else s for s, r in zip(score, rule)]):.3f}")
print("  | classifier threshold | rules + classifier drop: bad | good | classifier alone: bad | good |")
print("  |---|---|---|---|---|")
for t in (0.02, 0.05, 0.08, 0.1, 0.2):
    both = [r or s < t for s, r in zip(score, rule)]
    alone = [s < t for s in score]
    share = lambda drop, lab: sum(d for d, l in zip(drop, y) if l == lab) / (bad if lab == 0 else good)
    print(f"  | {t} | {share(both, 0):.1%} | {share(both, 1):.1%} | {share(alone, 0):.1%} | {share(alone, 1):.1%} |")
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
