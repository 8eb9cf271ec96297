#!/usr/bin/env bash
# HTML main-text extraction: quality (snippet precision/recall/F1, scored as trafilatura's
# evaluation does) and speed on one core, corpus vs trafilatura and resiliparse, over the
# 662 annotated pages of ../shared/data/extraction/trafilatura-eval (see its SOURCE.md).
# Usage: benches/extract.sh [--data DIR] [--runs N] [--cpu N]
# Installs trafilatura (+ lxml_html_clean, which its jusText fallback needs) and
# resiliparse from PyPI if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/extraction/trafilatura-eval
[ -d "$DATA" ] || DATA=/work/shared/data/extraction/trafilatura-eval
RUNS=3
CPU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --cpu) CPU=$2; shift 2 ;;
    *) echo "usage: $0 [--data DIR] [--runs N] [--cpu N]" >&2; exit 2 ;;
  esac
done
python3 -c "import trafilatura, resiliparse, lxml_html_clean" 2>/dev/null \
  || python3 -m pip install --quiet trafilatura resiliparse lxml_html_clean
cargo build --release --quiet --bin corpus
BIN=${CARGO_TARGET_DIR:-target}/release/corpus
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# One core for everyone: corpus with one worker thread, the peers in one process.
PIN="taskset -c $CPU"
command -v taskset >/dev/null || PIN=""
for i in $(seq "$RUNS"); do
  $PIN "$BIN" extract "$DATA/html" -o "$WORK/corpus.jsonl" -t 1 2>>"$WORK/corpus.log"
done
$PIN python3 benches/extract_eval.py peers "$DATA" --runs "$RUNS" --json "$WORK/peers.json" >/dev/null
python3 benches/extract_eval.py report "$DATA" "$WORK/corpus.jsonl" "$WORK/corpus.log" "$WORK/peers.json"
