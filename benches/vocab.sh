#!/usr/bin/env bash
# Vocabulary: compression (bytes per token) of the shipped extended vocabulary against
# cl100k_base and Qwen's own, at several sizes; training time; determinism; and a cross
# check of the token counts against Python tiktoken (see benches/README.md).
#
#   benches/vocab.sh [CORPUS_DIR]
#
# CORPUS_DIR defaults to ../shared/data/corpus. Qwen's qwen.tiktoken comes from the PyPI
# package dashscope (downloaded with pip into target/bench-data/vocab, never committed),
# or from $QWEN_TIKTOKEN. Out-of-domain text: the en/zh sentences of
# ../shared/data/langid/sentences.dev.jsonl.gz (Leipzig corpora via lingua, Apache-2.0),
# or $SENTENCES.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus_dir="${1:-../shared/data/corpus}"
sentences="${SENTENCES:-../shared/data/langid/sentences.dev.jsonl.gz}"
target="${CARGO_TARGET_DIR:-target}"
work="$target/bench-data/vocab"
mkdir -p "$work"
cargo build --release --locked --bin corpus
bin="$target/release/corpus"
shipped=models/assets/corpus152k.tiktoken.gz

qwen="${QWEN_TIKTOKEN:-$work/qwen.tiktoken}"
if [ ! -f "$qwen" ]; then
    python3 -m pip download --quiet --no-deps dashscope==2.0.2 -d "$work/pip"
    python3 - "$work" <<'PY'
import glob, sys, zipfile
work = sys.argv[1]
whl = glob.glob(f"{work}/pip/dashscope-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("dashscope/resources/qwen.tiktoken")
open(f"{work}/qwen.tiktoken", "wb").write(data)
PY
fi
echo "qwen.tiktoken: $(sha256sum "$qwen" | cut -d' ' -f1)"

# Same settings as models/recipes/build_vocab.sh, at other sizes.
common=(--base cl100k --corpus "$corpus_dir" --pattern qwen --min-frequency 2
        --max-token-bytes 24 --holdout 0.1 -q)
vocabs=(--vocab cl100k)
# 99156: cl100k_base minus its multi-digit tokens, nothing learned: the cost of the
# single-digit pattern alone.
for size in 99156 110000 120000 130000 140000; do
    "$bin" vocab build "${common[@]}" --size "$size" -o "$work/s$size.tiktoken.gz"
    vocabs+=(--vocab "${size}=$work/s$size.tiktoken.gz")
done
# The shipped size, timed, on one and on two threads: the file must equal the shipped one.
for t in 1 2; do
    start=$(date +%s.%N)
    "$bin" vocab build "${common[@]}" --size 151643 -t "$t" -o "$work/full-t$t.tiktoken.gz"
    end=$(date +%s.%N)
    printf 'build 151643 tokens, %s thread(s): %.1f s, ' "$t" "$(echo "$end - $start" | bc)"
    if cmp -s "$work/full-t$t.tiktoken.gz" "$shipped"; then echo "identical to $shipped"
    else echo "DIFFERS from $shipped"; exit 1; fi
done
vocabs+=(--vocab "shipped=$shipped" --vocab "qwen=$qwen")

echo
echo "Held-out 10% of $corpus_dir (not trained on):"
"$bin" vocab compare "${vocabs[@]}" --holdout 0.1 "$corpus_dir"
echo
echo "Out-of-domain sentences ($sentences, en and zh):"
"$bin" vocab compare "${vocabs[@]}" --langs en,zh "$sentences"

echo
echo "Cross check with Python tiktoken $(python3 -c 'import tiktoken; print(tiktoken.__version__)') (same files and pattern, sentences; [shipped, qwen]):"
"$bin" vocab compare --vocab cl100k --vocab "shipped=$shipped" --vocab "qwen=$qwen" \
    --langs en,zh --json "$sentences" > "$work/compare.json"
python3 - "$shipped" "$qwen" "$sentences" "$work/compare.json" <<'PY'
import base64, gzip, json, sys
import tiktoken
shipped, qwen, sentences, ours = sys.argv[1:]
side = json.load(open(shipped.replace(".tiktoken.gz", ".json")))
def ranks(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return {base64.b64decode(t): int(r) for t, r in (l.split() for l in raw.splitlines() if l)}
# (tiktoken's own cl100k_base would be downloaded at first use: left out.)
encs = [tiktoken.Encoding(name=n, pat_str=side["pattern"], mergeable_ranks=ranks(p),
                          special_tokens={})
        for n, p in (("shipped", shipped), ("qwen", qwen))]
counts = {}
for line in gzip.open(sentences, "rt"):
    d = json.loads(line)
    if d["lang"] in ("en", "zh"):
        c = counts.setdefault(d["lang"], [0] * len(encs))
        for i, e in enumerate(encs):
            c[i] += len(e.encode_ordinary(d["text"]))
rows = {r["lang"]: r["tokens"][1:] for r in json.load(open(ours))["rows"]}
ok = all(rows[l] == c for l, c in counts.items())
for l, c in sorted(counts.items()):
    print(f"  {l}: tiktoken {c}, corpus {rows[l]}")
print("  token counts identical" if ok else "  TOKEN COUNTS DIFFER")
sys.exit(0 if ok else 1)
PY
