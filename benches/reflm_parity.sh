#!/usr/bin/env bash
# Parity of a trained reference-model checkpoint with Hugging Face transformers, and the
# training speed of a small config (benches/README.md, "Reference model"):
# packs tests/data/text with the shipped vocabulary, trains benches/configs/ref-parity.toml
# (60 steps), scores 64 validation windows with `corpus ref eval` and with
# models/recipes/hf_parity.py (exit 1 above 1e-3), and prints the training summary.
# Usage: benches/reflm_parity.sh [--python PYTHON] [--threads N]
# Needs: python with torch, transformers, pyarrow.
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
bin=target/release/corpus
out=target/bench-out/reflm-parity
rm -rf "$out"; mkdir -p "$out"
"$bin" tokens pack --vocab models/assets/corpus152k.tiktoken.gz \
  tests/data/text/en-reviews-movie_reviews.jsonl.gz tests/data/text/zh-wiki-cmrc2018.jsonl.gz \
  -o "$out/shards" --seq-len 256 --val-fraction 0.1 -q
"$bin" ref train --shards "$out/shards" --config benches/configs/ref-parity.toml \
  --out "$out/model" -t "$threads" -q
cat "$out/model/summary.json"
"$bin" ref eval --shards "$out/shards" --checkpoint "$out/model" --max-windows 64 \
  --json "$out/corpus-eval.json" -t "$threads" > /dev/null
"$py" models/recipes/hf_parity.py --shards "$out/shards" --checkpoint "$out/model" \
  --max-windows 64 --corpus-json "$out/corpus-eval.json"
