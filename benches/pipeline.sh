#!/usr/bin/env bash
# End-to-end executor throughput and memory: `corpus run` over generated WARC shards
# (real HTML pages wrapped as Common Crawl-style records, see gen_warc.rs), with 1 and
# 2 worker threads, and over 1x and 4x the input to show that peak memory does not grow
# with input size. Prints wall time, CPU time, peak RSS, documents/s and MB/s.
# Usage: benches/pipeline.sh [--shard-mb N]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARD_MB=25
while [ $# -gt 0 ]; do
  case "$1" in
    --shard-mb) SHARD_MB=$2; shift 2 ;;
    *) echo "usage: $0 [--shard-mb N]" >&2; exit 2 ;;
  esac
done
DATA=target/bench-data/pipeline-${SHARD_MB}mb
cargo build --release --quiet --bin corpus --bin gen-warc
BIN=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$DATA"
for i in 0 1 2 3; do
  f=$DATA/shard-$i.warc.gz
  [ -f "$f" ] || "$BIN/gen-warc" --out "$f" --size-mb "$SHARD_MB" >/dev/null
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/one.toml" <<TOML
[input]
paths = ["$PWD/$DATA/shard-0.warc.gz"]
[output]
dir = "$WORK/out"
dropped = true
[[stages]]
kind = "length"
min_chars = 200
TOML
sed "s|shard-0.warc.gz\"|shard-*.warc.gz\"|" "$WORK/one.toml" > "$WORK/four.toml"

printf '%-28s %8s %8s %9s %10s %10s\n' run wall_s cpu_s rss_mb docs/s mb_gz/s
for spec in "one 1" "four 1" "four 2"; do
  set -- $spec
  cfg=$1; threads=$2
  bytes=$(cat $( [ "$cfg" = one ] && echo "$DATA/shard-0.warc.gz" || echo "$DATA"/shard-*.warc.gz) | wc -c)
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" \
    "$BIN/corpus" run "$WORK/$cfg.toml" --overwrite -q --threads "$threads"
  read -r wall user sys rss < "$WORK/time"
  docs=$(python3 -c "import json;print(json.load(open('$WORK/out/stats.json'))['input']['docs'])")
  python3 - "$cfg" "$threads" "$wall" "$user" "$sys" "$rss" "$docs" "$bytes" <<'PY'
import sys
cfg, threads, wall, user, sys_, rss, docs, size = sys.argv[1:]
wall, cpu = float(wall), float(user) + float(sys_)
name = f"{cfg} shard(s), {threads} thread(s)"
print(f"{name:<28} {wall:>8.2f} {cpu:>8.2f} {int(rss)/1024:>9.1f} {int(docs)/wall:>10.0f} {int(size)/1e6/wall:>10.1f}")
PY
done
