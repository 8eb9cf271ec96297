#!/usr/bin/env bash
# WARC read throughput: corpus (raw reader and WarcSource) vs FastWARC and warcio over
# the same gzip-per-record file. Builds the input under target/bench-data/ if missing.
# Usage: benches/warc_read.sh [--size-mb N] [--runs N]
# Installs warcio and fastwarc from PyPI if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=100
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--size-mb N] [--runs N]" >&2; exit 2 ;;
  esac
done
python3 -c "import warcio, fastwarc" 2>/dev/null || python3 -m pip install --quiet warcio fastwarc
INPUT=target/bench-data/bench-${SIZE_MB}mb.warc.gz
if [ ! -f "$INPUT" ]; then
  cargo run --release --quiet --bin gen-warc -- --out "$INPUT" --size-mb "$SIZE_MB"
fi
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
cargo bench --quiet --bench warc_read -- "$INPUT" --runs "$RUNS" | tee -a "$OUT"
python3 benches/peers/warc_read.py "$INPUT" --runs "$RUNS" | tee -a "$OUT"
echo
python3 - "$OUT" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts or "=" not in line:
        continue
    kv = dict(p.split("=", 1) for p in parts[1:])
    rows[parts[0]] = {k: float(v) for k, v in kv.items()}
def get(name, key):
    return rows[name][key] if name in rows else float("nan")
print(f"{'reader':<15} {'records':>9} {'seconds':>8} {'records/s':>10} {'MB/s (gz)':>10} {'vs fastwarc':>12} {'vs warcio':>10}")
for name, r in rows.items():
    fw = get("fastwarc", "seconds") / r["seconds"]
    wi = get("warcio", "seconds") / r["seconds"]
    print(f"{name:<15} {int(r['records']):>9} {r['seconds']:>8.3f} {r['records_per_s']:>10.0f} {r['mb_per_s']:>10.1f} {fw:>11.2f}x {wi:>9.2f}x")
PY
