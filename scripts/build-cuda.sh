#!/usr/bin/env bash
# Builds `corpus` with candle's CUDA backend (`--features cuda`); see docs/cuda.md.
#
#   scripts/build-cuda.sh                  release binary: target/cuda/release/corpus,
#                                          with libcudart.so.13 beside it
#   scripts/build-cuda.sh clippy --features cuda --all-targets -- -D warnings
#   scripts/build-cuda.sh test --features cuda --test integration reflm::
#                                          any other cargo command in the same setup
#
# No CUDA toolkit needs to be installed: pip fetches the pinned CUDA 13.0 wheels (nvcc,
# headers, libcudart) into a venv under the build directory. Environment:
#   CUDA_COMPUTE_CAP   GPU architecture of the kernels (default 90: H100/H200)
#   CUDA_BUILD_DIR     venv, patched manifest and cargo target (default target/cuda)
#   PYTHON             python used to make the venv (default python3)
#
# Linking mode. candle-core 0.11.1 asks cudarc for `dynamic-linking`, which links libcuda,
# cuBLAS, cuBLASLt, cuRAND and NVRTC into the binary: it would need all of them to build
# and to start, even for `--device cpu`. cudarc's `dynamic-loading` opens them at run time
# instead, and cudarc refuses both modes at once (its build script panics), so a direct
# cudarc dependency cannot override candle's choice. This script therefore copies
# candle-core's published sources under the build directory, changes that one feature
# name in its manifest, and points cargo at the copy with a `[patch]` given on the
# command line (`--config`). Cargo records a patch in Cargo.lock, so the build runs in a
# copy of the working tree (target/cuda/ws, refreshed on every call): the repository's
# files, Cargo.lock included, are never touched, and a default build can run beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CUDA_BUILD_DIR:-$ROOT/target/cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
PYTHON=${PYTHON:-python3}
WHEELS=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-cuda-runtime==13.0.*"
  "nvidia-cuda-crt==13.0.*"
  "nvidia-cuda-cccl==13.0.*"
  # nvvm pinned to 13.0: PTX of a newer NVVM may not load on driver 580.
  "nvidia-nvvm==13.0.*"
)
die() { echo "build-cuda: $*" >&2; exit 1; }
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)

# 1. The CUDA wheels, installed once per pin list.
VENV=$BUILD/venv
stamp=$VENV/.corpus-wheels
if [[ ! -f $stamp || $(cat "$stamp") != "${WHEELS[*]}" ]]; then
  echo "build-cuda: installing ${WHEELS[*]} into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${WHEELS[@]}"
  echo "${WHEELS[*]}" > "$stamp"
fi
CU=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
[[ -x $CU/bin/nvcc ]] || die "no nvcc under $CU (the nvidia-cuda-nvcc wheel)"
[[ -f $CU/lib/libcudart.so.13 ]] || die "no libcudart.so.13 under $CU/lib (nvidia-cuda-runtime)"
# The wheel ships only the versioned runtime; `-lcudart` (candle-kernels) wants the bare name.
ln -sf libcudart.so.13 "$CU/lib/libcudart.so"
export CUDA_ROOT=$CU CUDA_PATH=$CU CUDA_HOME=$CU
export PATH=$CU/bin:$PATH
export LD_LIBRARY_PATH=$CU/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The linker's search path for that -lcudart (with `dynamic-linking` cudarc's build script
# would add it; with `dynamic-loading` nothing does).
export LIBRARY_PATH=$CU/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
nvcc --version | grep -q "release 13.0" || die "expected nvcc 13.0, got: $(nvcc --version | tail -2)"

# 2. candle-core's manifest with cudarc in `dynamic-loading` mode.
read -r CANDLE_VERSION CANDLE_MANIFEST < <(cd "$ROOT" && cargo metadata --format-version 1 --locked |
  "$VENV/bin/python" -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "candle-core" and (p.get("source") or "").startswith("registry+"):
        print(p["version"], p["manifest_path"]); break
')
[[ -n ${CANDLE_MANIFEST:-} ]] || die "candle-core from crates.io not found in cargo metadata"
PATCHED=$BUILD/patched/candle-core-$CANDLE_VERSION
if [[ ! -f $PATCHED/.corpus-patched ]]; then # made once: a new copy would rebuild candle
  rm -rf "$PATCHED"
  mkdir -p "$BUILD/patched"
  cp -r "$(dirname "$CANDLE_MANIFEST")" "$PATCHED"
  chmod -R u+w "$PATCHED"
  n=$(grep -c '^    "dynamic-linking",$' "$PATCHED/Cargo.toml" || true)
  [[ $n == 1 ]] || die "candle-core $CANDLE_VERSION: expected one \"dynamic-linking\" feature in its cudarc dependency, found $n; review this patch step"
  sed -i 's/^    "dynamic-linking",$/    "dynamic-loading",/' "$PATCHED/Cargo.toml"
  touch "$PATCHED/.corpus-patched"
fi

# 3. A copy of the working tree (tracked and untracked, not ignored, files; modification
#    times kept, so cargo rebuilds only what changed).
WS=$BUILD/ws
rm -rf "$WS"
mkdir -p "$WS"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$WS"

# 4. Cargo, with the patch, a target directory of its own, and an rpath of $ORIGIN so the
#    binary finds the libcudart.so.13 copied beside it.
export CARGO_TARGET_DIR=$BUILD
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,\$ORIGIN"
patch=(--config "patch.crates-io.candle-core.path=\"$PATCHED\"")
cd "$WS"
if [[ $# -gt 0 ]]; then
  sub=$1
  shift
  nice -n 10 cargo "$sub" "${patch[@]}" "$@"
  exit
fi
nice -n 10 cargo build --release --features cuda "${patch[@]}"
BIN=$BUILD/release/corpus
cp "$CU/lib/libcudart.so.13" "$BUILD/release/"

# 5. Self-checks: the binary loads only libcudart of the CUDA libraries, finds it beside
#    itself, and still runs without a GPU.
needed=$(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
for lib in libcuda.so libcublas libcublasLt libcurand libnvrtc; do
  if grep -q "^$lib" <<<"$needed"; then die "$BIN links $lib: the dynamic-loading patch did not apply"; fi
done
grep -q '^libcudart.so.13$' <<<"$needed" || die "$BIN does not link libcudart.so.13 (unexpected; check candle-kernels)"
env -u LD_LIBRARY_PATH "$BIN" --version >/dev/null || die "$BIN does not start without LD_LIBRARY_PATH"

# 6. A stripped copy with libcudart, to move to a GPU machine (about 33 MB).
DIST=$BUILD/dist/corpus-cuda13-sm$CUDA_COMPUTE_CAP
rm -rf "$DIST"
mkdir -p "$DIST"
strip -o "$DIST/corpus" "$BIN"
cp "$CU/lib/libcudart.so.13" "$DIST/"
tar -C "$BUILD/dist" -czf "$DIST.tar.gz" "$(basename "$DIST")"
echo "build-cuda: $BIN (sm_$CUDA_COMPUTE_CAP, CUDA 13.0) and $DIST.tar.gz; needs libcudart.so.13 beside it (copied), an NVIDIA driver >= 580, cuBLAS and cuRAND at run time (docs/cuda.md)" >&2
