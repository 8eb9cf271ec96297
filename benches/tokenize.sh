#!/usr/bin/env bash
# Tokenizer throughput: corpus (benches/tokenize.rs) vs Python tiktoken
# (benches/peers/tiktoken_peer.py), same vocabulary, pattern and documents, encoding only,
# on 1 thread and on N threads; prints both and the ratios (see benches/README.md).
# Usage: benches/tokenize.sh [--data DIR] [--runs N] [--threads N]
# Needs: python3 with tiktoken and dashscope (Qwen's qwen.tiktoken comes with dashscope).
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/corpus
runs=3
threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
mkdir -p target/bench-data
qwen=$(python3 tests/parity/tiktoken_parity.py qwen-vocab)
cl100k=target/bench-data/cl100k_base.tiktoken
cargo bench --bench tokenize -- --dump-cl100k "$cl100k" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pattern in qwen cl100k; do
  if [ $pattern = qwen ]; then vocab=$qwen; else vocab=$cl100k; fi
  echo "== $pattern: $vocab" >&2
  cargo bench --bench tokenize -- --vocab "$vocab" --pattern $pattern --data "$data" \
    --runs "$runs" --threads "$threads" | sed "s/^/$pattern /" | tee -a "$out"
  python3 benches/peers/tiktoken_peer.py --vocab "$vocab" --pattern $pattern \
    --runs "$runs" --threads "$threads" "$data" | sed "s/^/$pattern /" | tee -a "$out"
done
echo
echo "| vocabulary + pattern | threads | corpus tokens/s | corpus MB/s | corpus CPU s | tiktoken tokens/s | tiktoken MB/s | tiktoken CPU s | corpus / tiktoken |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '{
  key = $1 " " $3; split($3, t, "=");
  for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  if ($2 == "corpus") { ct[key] = v["tokens_per_s"]; cm[key] = v["mb_per_s"]; ctok[key] = v["tokens"]; cc[key] = v["cpu_seconds"] }
  else { tt[key] = v["tokens_per_s"]; tm[key] = v["mb_per_s"]; ttok[key] = v["tokens"]; tc[key] = v["cpu_seconds"]; order[++n] = key; thr[key] = t[2]; pat[key] = $1 }
} END {
  for (i = 1; i <= n; i++) {
    k = order[i];
    if (ctok[k] != ttok[k]) { print "token counts differ for " k ": " ctok[k] " vs " ttok[k] > "/dev/stderr"; bad = 1 }
    printf "| %s | %s | %.2fM | %.2f | %.2f | %.2fM | %.2f | %.2f | %.2fx |\n", pat[k], thr[k], ct[k] / 1e6, cm[k], cc[k], tt[k] / 1e6, tm[k], tc[k], ct[k] / tt[k]
  }
  exit bad
}' "$out"
