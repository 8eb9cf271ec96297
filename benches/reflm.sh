#!/usr/bin/env bash
# Reference model on real data (benches/README.md, "Reference model"):
#  1. pack the developer corpus (../shared/data/corpus) with the shipped vocabulary and
#     train configs/ref-tiny.toml on it: tokens/s, validation perplexity vs the unigram
#     baseline;
#  2. perplexity at 1x, 2x and 4x the training context, with and without NTK/LogN;
#  3. data quality: the same token budget on the pipeline's output
#     (benches/configs/corpus-clean.toml) and on its unfiltered input, both scored on the
#     clean held-out documents (the validation split of the cleaned pack: documents whose
#     id hashes into validation are held out of both training sets).
# Usage: benches/reflm.sh [--threads N] [--steps N] [--skip-quality]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
steps=
quality=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --skip-quality) quality=0; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
bin=target/release/corpus
out=target/bench-out/reflm
mkdir -p "$out"
vocab=models/assets/corpus152k.tiktoken.gz
cfg=configs/ref-tiny.toml
set_steps=()
if [ -n "$steps" ]; then
  sed "s/^steps = .*/steps = $steps/" "$cfg" > "$out/ref.toml"
  cfg=$out/ref.toml
fi
pack() { # inputs... -> dir
  local dir=$1; shift
  /usr/bin/time -f "pack $dir: %e s, %M KB" "$bin" tokens pack --vocab $vocab "$@" -o "$dir" \
    --seq-len 2048 --val-fraction 0.02 -t "$threads" -q
}
echo "== 1. pack the developer corpus (unfiltered)" >&2
pack "$out/raw" ../shared/data/corpus
echo "== 1. train $cfg on it" >&2
rm -rf "$out/raw-model"
/usr/bin/time -f "train: %e s, %M KB peak" "$bin" ref train --shards "$out/raw" --config "$cfg" \
  --out "$out/raw-model" -t "$threads" > "$out/raw-model.json"
cat "$out/raw-model.json"
echo "== 2. context extension (validation split of the raw pack)" >&2
for mult in 1 2 4; do
  for opt in "" "--ntk" "--logn" "--ntk --logn"; do
    ctx=$(( mult * $(grep '^context' "$cfg" | head -1 | sed 's/[^0-9]//g') ))
    # shellcheck disable=SC2086
    "$bin" ref eval --shards "$out/raw" --checkpoint "$out/raw-model" --context $ctx $opt \
      --max-windows $(( 256 / mult )) -t "$threads" \
      | python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"context {r['context']:>5} ntk={r['ntk']!s:5} logn={r['logn']!s:5} loss {r['loss']:.4f} ppl {r['perplexity']:.2f} ({r['tokens']} tokens, {r['tokens_per_second']:.0f} tokens/s)\")"
  done
done
if [ "$quality" = 1 ]; then
  echo "== 3. data quality: pipeline output vs its input, same token budget" >&2
  /usr/bin/time -f "pipeline: %e s, %M KB" "$bin" run benches/configs/corpus-clean.toml --overwrite -q -t "$threads"
  pack "$out/clean" target/bench-out/corpus-clean
  rm -rf "$out/clean-model"
  "$bin" ref train --shards "$out/clean" --config "$cfg" --out "$out/clean-model" -t "$threads" -q \
    > "$out/clean-model.json"
  for m in raw clean; do
    "$bin" ref eval --shards "$out/clean" --checkpoint "$out/$m-model" -t "$threads" \
      --json "$out/$m-on-clean.json" > /dev/null
    python3 -c "import json; r=json.load(open('$out/$m-on-clean.json')); print(f\"trained on $m: clean held-out loss {r['loss']:.4f} ppl {r['perplexity']:.2f} ({r['tokens']} tokens)\")"
  done
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("raw", "clean"):
    m = json.load(open(f"{out}/{name}/manifest.json"))
    t = m["splits"]["train"]
    print(f"{name} pack: train {t['docs']} docs, {t['tokens']} tokens")
PY
fi
