#!/usr/bin/env bash
# End to end (benches/README.md, "End to end"): the whole default pipeline
# (configs/default.toml: extraction, language ID, normalization + exact dedup, MinHash
# dedup, quality rules, safety lists, quality and safety classifiers, upsampling,
# decontamination, tokenization into packed shards) with `corpus run`, side by side with
# datatrove (benches/peers/datatrove_e2e.py: WARC reader, trafilatura, Gopher/C4/FineWeb
# filters, MinHash dedup in its four steps, tokenization with the same vocabulary) on the
# same WARC input: a file from the bench generator (real pages of the trafilatura
# evaluation set as Common Crawl records) plus the real samples of tests/data/warc.
# Prints wall and CPU seconds, peak RSS, documents read per CPU second and MB (gzipped
# input) per CPU second; corpus with 1 and 2 threads, and at 1x and 2x the input for
# memory growth.
# Usage: benches/e2e.sh [--shard-mb N] [--python PY] [--no-peer] [--config FILE]
#                       [--baseline BIN]
#   PY: a Python with the peer's packages; without it a venv is made under target/.
#   --no-peer: corpus only. --config: the pipeline config (default configs/default.toml;
#   its relative paths are taken from the repository root's configs/).
#   --baseline BIN: also run another corpus binary (an earlier build) on the same input
#   and config, row for row, for a before/after comparison in one session.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARD_MB=25
PY=
PEER=1
CONFIG=configs/default.toml
BASELINE=
while [ $# -gt 0 ]; do
  case "$1" in
    --shard-mb) SHARD_MB=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --no-peer) PEER=; shift ;;
    --config) CONFIG=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) echo "usage: $0 [--shard-mb N] [--python PY] [--no-peer] [--config FILE] [--baseline BIN]" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet --bin corpus --bin gen-warc
BIN=${CARGO_TARGET_DIR:-target}/release
if [ -z "$PEER" ]; then
  PY=python3
elif [ -z "$PY" ]; then
  PY=target/bench-venv/e2e/bin/python
  if [ ! -x "$PY" ]; then
    python3 -m venv target/bench-venv/e2e
    # Pinned: the versions measured in benches/README.md.
    "$PY" -m pip install --quiet "datatrove[processing]==0.10.1" trafilatura==2.3.1 \
      lxml_html_clean==0.4.7 tokenizers==0.23.3 faust-cchardet python-magic orjson spacy
  fi
fi
OUT=target/bench-out/e2e
DATA=target/bench-data/e2e
rm -rf "$OUT"
mkdir -p "$OUT" "$DATA"
# Input sets: 1x = one generated file + the samples; 2x = two generated files + samples.
for i in 0 1; do
  f=$DATA/gen-$SHARD_MB-$i.warc.gz
  [ -f "$f" ] || "$BIN/gen-warc" --out "$f" --size-mb "$SHARD_MB" >/dev/null
done
for set in 1x 2x; do
  mkdir -p "$OUT/in-$set"
  for s in tests/data/warc/*.warc.gz; do
    case "$s" in *.wet.gz) continue ;; esac
    ln -sf "$PWD/$s" "$OUT/in-$set/"
  done
  ln -sf "$PWD/$DATA/gen-$SHARD_MB-0.warc.gz" "$OUT/in-$set/"
done
ln -sf "$PWD/$DATA/gen-$SHARD_MB-1.warc.gz" "$OUT/in-2x/"
# The default config with absolute paths, reading one input set.
config() { # set -> config path
  local c=$OUT/default-$1.toml
  sed -e "s|\"\.\./|\"$PWD/|g" -e "s|\"safety/|\"$PWD/configs/safety/|g" "$CONFIG" \
    | sed -e "s|^paths = .*|paths = [\"$PWD/$OUT/in-$1\"]|" \
          -e "s|^dir = .*|dir = \"$PWD/$OUT/corpus-$1\"|" > "$c"
  echo "$c"
}
[ -z "$PEER" ] || "$PY" benches/peers/tiktoken_to_hf.py models/assets/corpus152k.tiktoken.gz "$OUT/tokenizer.json"

row() { # name time-file docs bytes
  read -r wall user sys rss < "$2"
  python3 - "$1" "$wall" "$user" "$sys" "$rss" "$3" "$4" <<'PY'
import sys
name, wall, user, sys_, rss, docs, size = sys.argv[1:]
wall, cpu = float(wall), float(user) + float(sys_)
print(f"{name:<34} {wall:>8.2f} {cpu:>8.2f} {int(rss)/1024:>8.1f} {int(docs)/cpu:>10.1f} {int(size)/1e6/cpu:>10.2f}")
PY
}
printf '%-34s %8s %8s %8s %10s %10s\n' run wall_s cpu_s rss_mb docs/cpu_s mb_gz/cpu_s
for spec in "1x 1" "1x 2" "2x 1"; do
  set -- $spec
  cfg=$(config "$1")
  bytes=$(cat "$OUT/in-$1"/*.warc.gz | wc -c)
  for which in baseline corpus; do
    exe="$BIN/corpus"
    if [ "$which" = baseline ]; then
      [ -n "$BASELINE" ] || continue
      exe=$BASELINE
    fi
    rm -rf "$OUT/corpus-$1"
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" \
      "$exe" run "$cfg" -q --threads "$2" > /dev/null 2> "$OUT/$which.log"
    docs=$(python3 -c "import json;print(json.load(open('$OUT/corpus-$1/stats.json'))['input']['docs'])")
    row "$which, $1 input, $2 thread(s)" "$OUT/time" "$docs" "$bytes"
    cp "$OUT/corpus-$1/stats.json" "$OUT/$which-$1-t$2.stats.json"
  done
done
# Where the CPU goes (1x input, 1 thread): each stage's share of the stage time.
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
for which in ("baseline", "corpus"):
    path = f"{out}/{which}-1x-t1.stats.json"
    if not os.path.exists(path):
        continue
    s = json.load(open(path))
    key = "cpu_seconds" if any(st.get("cpu_seconds") for st in s["stages"]) else "seconds"
    total = sum(st.get(key, 0) for st in s["stages"])
    shares = {}
    for st in s["stages"]:
        shares[st["kind"]] = shares.get(st["kind"], 0) + st.get(key, 0)
    print(f"{which} stage {key} (1x, 1 thread): total {total:.2f};",
          ", ".join(f"{k} {v:.2f} ({100 * v / total:.0f}%)" for k, v in shares.items()))
PY
[ -n "$PEER" ] || exit 0
bytes=$(cat "$OUT/in-1x"/*.warc.gz | wc -c)
/usr/bin/time -f "%e %U %S %M" -o "$OUT/time" \
  env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
  "$PY" benches/peers/datatrove_e2e.py --warc-dir "$OUT/in-1x" --tokenizer "$OUT/tokenizer.json" \
  --work "$OUT/datatrove" > "$OUT/datatrove.json" 2> "$OUT/datatrove.log"
docs=$(python3 -c "import json;print(json.load(open('$OUT/datatrove.json'))['read'])")
row "datatrove, 1x input, 1 worker" "$OUT/time" "$docs" "$bytes"
echo
echo "datatrove: $(cat "$OUT/datatrove.json")"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/corpus-1x-t1.stats.json"))
print("corpus funnel (1x, 1 thread): read", s["input"]["docs"], "documents;",
      ", ".join(f"{st['kind']} {st['docs_out']}" for st in s["stages"]),
      "; written", s["docs_out"])
PY
