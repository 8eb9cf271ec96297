#!/usr/bin/env bash
# Safety blocklists: wall time and peak memory of `corpus run` with FineWeb's URL filter
# lists (../shared/data/safety/blocklist-fineweb-datatrove-url) over the sample WARCs;
# nearly all of it is loading the 4.56M-domain list.
set -euo pipefail
cd "$(dirname "$0")/.."
L=$(realpath "${SHARED:-../shared/data}/safety/blocklist-fineweb-datatrove-url")
cargo build --release --quiet --bin corpus
BIN=${CARGO_TARGET_DIR:-target}/release/corpus
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/safety.toml" <<TOML
[input]
paths = ["$PWD/tests/data/warc"]
[output]
dir = "$WORK/out"
dropped = true
[[stages]]
kind = "safety"
domains = "$L/domains.txt.gz"
urls = "$L/urls.txt.gz"
banned_words = "$L/banned_words.txt"
soft_banned_words = "$L/soft_banned_words.txt"
banned_subwords = "$L/banned_subwords.txt"
TOML
/usr/bin/time -f "wall %e s, peak RSS %M KB" "$BIN" run "$WORK/safety.toml" -q
