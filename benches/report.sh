#!/usr/bin/env bash
# Renders the run report of the default pipeline and its sample page in headless
# Chromium and saves screenshots (docs/report.png and docs/sample.png, shown in the
# README): checks that `corpus report` and `corpus sample` write pages a browser draws
# without network access. Needs Debian's `chromium`
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
# The sample page first: the report links to it when it is beside it. One document per
# stratum and short texts keep the screenshot small.
"$CORPUS" sample "$RUN" -q --n 1 --chars 240 -o "$RUN/review.html"
"$CORPUS" report "$RUN" -o "$RUN/report.html"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CONVERT=${CONVERT:-$( [ -x /usr/bin/convert ] && echo /usr/bin/convert || echo convert )}
# shot PAGE HEIGHT PNG: draws $RUN/PAGE from the file alone (no network needed), crops
# the empty background below it and reduces the palette: a small PNG.
shot() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$WORK/profile" --window-size="1100,$2" \
    --screenshot="$WORK/full.png" "file://$(cd "$RUN" && pwd)/$1" 2>"$WORK/chromium.log" || {
    cat "$WORK/chromium.log" >&2; exit 1; }
  "$CONVERT" "$WORK/full.png" -trim +repage -bordercolor '#f4f5f7' -border 12 \
    -colors 128 -strip "$3"
  echo "wrote $3 ($(wc -c < "$3") bytes) from $RUN/$1"
}
shot report.html 3200 docs/report.png
# The top of the sample page: the strata and the first documents.
shot review.html 1800 docs/sample.png
