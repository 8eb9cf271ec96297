#!/usr/bin/env bash
# Rebuilds models/assets/corpus152k.tiktoken.gz (and its sidecar corpus152k.json) from
# the developer corpus, byte for byte.
#
#   models/recipes/build_vocab.sh [CORPUS_DIR] [OUTPUT]
#
# CORPUS_DIR defaults to ../shared/data/corpus (relative to the repository root), OUTPUT
# to models/assets/corpus152k.tiktoken.gz. Runs from the repository root whatever the
# current directory. The vocabulary file depends only on the corpus files and the
# settings below (not on the thread count or machine); the sidecar also records the
# command line, so it is byte-identical when the same paths are passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-../shared/data/corpus}"
output="${2:-models/assets/corpus152k.tiktoken.gz}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release --locked --bin corpus
# Qwen's layout: cl100k_base minus its 1,100 multi-digit tokens (99,156), plus 52,487
# tokens learned here = 151,643 ordinary tokens; Qwen's pattern (digits alone); the
# special tokens numbered from 151,643 as in Qwen. 10% of the documents (by text hash)
# are held out for the compression measurements in benches/vocab.sh; new tokens are at
# most 24 bytes (8 CJK characters), which only drops boilerplate runs of this small
# corpus (see models/assets/README.md).
"$target/release/corpus" vocab build \
    --base cl100k \
    --corpus "$corpus" \
    --size 151643 \
    --pattern qwen \
    --min-frequency 2 \
    --max-token-bytes 24 \
    --holdout 0.1 \
    -o "$output"
sha256sum "$output"
