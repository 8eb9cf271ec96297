#!/usr/bin/env bash
# Renders the run report of the default pipeline in headless Chromium and saves a
# screenshot (docs/report.png, shown in the README): checks that `corpus report` writes
# a page a browser draws without network access. Needs Debian's `chromium`
# (apt-get install -y chromium) and ImageMagick's `convert` (apt-get install -y
# imagemagick) to crop and shrink the PNG.
# Usage: benches/report.sh [RUN_DIR]    (default: runs configs/default.toml first)
#        CORPUS=path/to/corpus benches/report.sh   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CORPUS:-}" ]; then
  cargo build --release --quiet --bin corpus
  CORPUS=${CARGO_TARGET_DIR:-target}/release/corpus
fi
RUN=${1:-}
if [ -z "$RUN" ]; then
  RUN=target/report-demo
  "$CORPUS" run configs/default.toml -q --overwrite -o "$RUN"
fi
"$CORPUS" report "$RUN" -o "$RUN/report.html"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The page draws from the file alone (no network needed).
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$WORK/profile" --window-size=1100,3200 \
  --screenshot="$WORK/full.png" "file://$(cd "$RUN" && pwd)/report.html" 2>"$WORK/chromium.log" || {
  cat "$WORK/chromium.log" >&2; exit 1; }
# Crop the empty background below the page and reduce the palette: a small PNG.
CONVERT=${CONVERT:-$( [ -x /usr/bin/convert ] && echo /usr/bin/convert || echo convert )}
"$CONVERT" "$WORK/full.png" -trim +repage -bordercolor '#f4f5f7' -border 12 \
  -colors 128 -strip docs/report.png
echo "wrote docs/report.png ($(wc -c < docs/report.png) bytes) from $RUN/report.html"
