#!/usr/bin/env bash
# Language identification accuracy/speed and normalize throughput (see benches/README.md).
# Usage: benches/langid.sh [--data DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench langid -- "$@"
