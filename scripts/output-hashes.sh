#!/usr/bin/env bash
# sha256 of every document, dropped-document and token file of a run's output directory
# (docs/, dropped/, tokens/, and minhash/pre/ and exact_dedup/pre/ when present), one line
# per file, paths relative to the directory: to check that a change keeps a run's output
# byte for byte (`diff <(scripts/output-hashes.sh A) <(scripts/output-hashes.sh B)`).
# tokens/manifest.json names the input files by full path, so it differs between output
# directories.
# Usage: scripts/output-hashes.sh OUT_DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
cd "$1"
find docs dropped tokens minhash/pre/docs minhash/pre/dropped exact_dedup/pre/docs \
  exact_dedup/pre/dropped -type f 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum
