#!/usr/bin/env bash
# Builds and tests the Rust bindings against a CMake build of libparallax:
#   bindings/rust/run_tests.sh <cmake-build-dir>
# - installs libclang-dev (for bindgen) with apt-get if it is missing; crates come from
#   crates.io through cargo, pinned by Cargo.lock;
# - runs `cargo test` for the workspace (parallax-sys, parallax, examples/rust) with
#   PARALLAX_BUILD_DIR pointing at the build;
# - checks the generated bindings for bindgen artefacts and for every function of API.md;
# - runs the Rust producer against the C consumer (when the build has it).
# Exits non-zero if anything failed; ends with "rust: N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ $# -ne 1 ]; then
  echo "usage: $0 <cmake-build-dir>   (a configured and built libparallax build directory)" >&2
  exit 2
fi
build=$(cd "$1" 2>/dev/null && pwd) || { echo "run_tests.sh: no such directory: $1" >&2; exit 2; }
if [ ! -e "$build/libparallax.so" ]; then
  echo "run_tests.sh: $build has no libparallax.so: build it first (cmake --build $build)" >&2
  exit 2
fi

# --- what bindgen and cargo need ------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null && ! have_pkg libclang-dev; then
  echo "run_tests.sh: installing libclang-dev (bindgen needs libclang)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null ||
    { echo "run_tests.sh: could not install libclang-dev" >&2; exit 1; }
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "run_tests.sh: cargo not found: install a Rust toolchain >= 1.87 (rustup)" >&2
  exit 1
fi

export PARALLAX_BUILD_DIR=$build
# API.md lives in the shared folder beside the repository; the bindings test reads it if found.
if [ -z "${PARALLAX_API_MD:-}" ] && [ -f "$repo/../shared/API.md" ]; then
  export PARALLAX_API_MD=$(cd "$repo/../shared" && pwd)/API.md
fi

failed=0
log=$(mktemp /tmp/px-rust-tests-XXXXXX.log)
trap 'rm -f "$log"' EXIT

# --- cargo test -------------------------------------------------------------------------------
echo "--- cargo test (PARALLAX_BUILD_DIR=$build)"
(cd "$here" && cargo test --workspace --locked --no-fail-fast --color never 2>&1) >"$log"
cargo_rc=$?
# The summary: which binary ran, its result line, skips and failures.
grep -E '^\s+Running |^\s+Doc-tests |^test result:|^SKIPPED|^---- |panicked at|^error(\[|:)' "$log"
if [ $cargo_rc -ne 0 ]; then
  echo "--- cargo test failed (exit $cargo_rc); the end of its output:"
  tail -n 120 "$log"
  failed=$((failed + 1))
fi
read -r passed_tests failed_tests < <(awk '/^test result:/ {
  for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i - 1); if ($i ~ /^failed/) f += $(i - 1) }
} END { print p + 0, f + 0 }' "$log")

# --- the generated bindings, checked from outside as well --------------------------------------
echo "--- bindgen output"
bindings=$(ls -t "$here"/target/debug/build/parallax-sys-*/out/bindings.rs 2>/dev/null | head -n 1)
if [ -z "$bindings" ]; then
  echo "no generated bindings found under $here/target (did the build run?)"
  failed=$((failed + 1))
else
  bad=$(grep -oE '__bindgen_anon|_bindgen_ty_|__BindgenBitfieldUnit|__IncompleteArrayField' "$bindings" | sort -u)
  if [ -n "$bad" ]; then
    echo "FAILED: $bindings contains: $bad"
    failed=$((failed + 1))
  else
    echo "ok: no bindgen artefacts in $(wc -l <"$bindings") lines of bindings"
  fi
  if [ -n "${PARALLAX_API_MD:-}" ]; then
    missing=$(grep -oE '\bpx_[a-z0-9_]+\(' "$PARALLAX_API_MD" | tr -d '(' | sort -u |
      while read -r fn; do grep -q "pub fn $fn(" "$bindings" || echo "$fn"; done)
    if [ -n "$missing" ]; then
      echo "FAILED: functions of API.md missing from the bindings:" $missing
      failed=$((failed + 1))
    else
      echo "ok: all $(grep -oE '\bpx_[a-z0-9_]+\(' "$PARALLAX_API_MD" | sort -u | wc -l) functions of $PARALLAX_API_MD are bound"
    fi
  else
    echo "note: API.md not found (set PARALLAX_API_MD); the function list in parallax-sys/tests is checked"
  fi
fi

# --- across languages: Rust producer, C consumer ------------------------------------------------
echo "--- px_rust_producer -> px_consumer (C)"
(cd "$here" && cargo build --locked --quiet -p parallax-examples --bins)
consumer=$build/examples/c/px_consumer
producer=$here/target/debug/px_rust_producer
if [ ! -x "$consumer" ]; then
  echo "SKIPPED: $consumer not built"
elif [ ! -x "$producer" ]; then
  echo "FAILED: $producer was not built"
  failed=$((failed + 1))
else
  dir=$(mktemp -d /tmp/px-rust-xlang-XXXXXX)
  "$producer" "$dir/s" 40 1048577 &
  pid=$!
  if timeout 60 "$consumer" "$dir/s" 40 --verify && wait $pid; then
    echo "ok: the C consumer verified 40 frames from the Rust producer"
  else
    echo "FAILED: Rust producer -> C consumer"
    kill $pid 2>/dev/null
    failed=$((failed + 1))
  fi
  rm -rf "$dir"
fi

echo "rust: ${passed_tests:-0} passed, ${failed_tests:-0} failed"
if [ $failed -ne 0 ]; then
  echo "run_tests.sh: $failed check(s) failed"
  exit 1
fi
