#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Builds and tests the Rust bindings against a CMake build of libparallax:
#   bindings/rust/run_tests.sh <cmake-build-dir>
# - installs libclang-dev (for bindgen) with apt-get if it is missing; crates come from
#   crates.io through cargo, pinned by Cargo.lock;
# - runs `cargo test` for the workspace (parallax-sys, parallax, examples/rust) with
#   PARALLAX_BUILD_DIR pointing at the build, then the parallax crate's with its `tokio` feature;
# - checks the generated bindings for bindgen artefacts and for every function of API.md;
# - runs the Rust producer against the C consumer, and the C producer against the Rust Tokio
#   consumer (when the build has them);
# - runs parallax-bridge end to end (tests/bridge/run.sh: C publisher -> Zenoh -> Python);
# - builds and runs a throwaway crate that depends on `parallax` with nothing installed and no
#   PARALLAX_* variable (the `bundled` feature: libparallax built from the crate's own sources
#   and linked statically), and checks that `cargo package` ships those sources.
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
# The `tokio` feature (AsyncChannel, AsyncSubscriber) is off by default, so the run above has no
# Tokio in it; the crate's tests again with it (tests/tokio.rs, the doctests of the module).
echo "--- cargo test -p parallax --features tokio"
(cd "$here" && cargo test -p parallax --features tokio --locked --no-fail-fast --color never \
  2>&1) >>"$log" || cargo_rc=$?
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
    # Functions the header does not declare yet are listed, with their issue, in
    # parallax-sys/tests/api_pending.txt; any other missing one fails, and so does a pending one
    # that is bound now (its line must go).
    pending=$(grep -v '^#' "$here/parallax-sys/tests/api_pending.txt" | awk 'NF {print $1}')
    missing=$(grep -oE '\bpx_[a-z0-9_]+\(' "$PARALLAX_API_MD" | tr -d '(' | sort -u |
      while read -r fn; do
        grep -q "pub fn $fn(" "$bindings" || grep -qx "$fn" <<<"$pending" || echo "$fn"
      done)
    landed=$(for fn in $pending; do grep -q "pub fn $fn(" "$bindings" && echo "$fn"; done)
    if [ -n "$missing" ] || [ -n "$landed" ]; then
      [ -n "$missing" ] && echo "FAILED: functions of API.md missing from the bindings:" $missing
      [ -n "$landed" ] && echo "FAILED: bound now, delete from api_pending.txt:" $landed
      failed=$((failed + 1))
    else
      echo "ok: every function of $PARALLAX_API_MD is bound, but the $(wc -w <<<"$pending") pending ones (api_pending.txt)"
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

# --- across languages: C producer, Rust consumer on Tokio --------------------------------------
echo "--- px_producer (C) -> px_rust_tokio_consumer"
(cd "$here" && cargo build --locked --quiet -p parallax-examples --features tokio \
  --bin px_rust_tokio_consumer)
producer=$build/examples/c/px_producer
consumer=$here/target/debug/px_rust_tokio_consumer
if [ ! -x "$producer" ]; then
  echo "SKIPPED: $producer not built"
elif [ ! -x "$consumer" ]; then
  echo "FAILED: $consumer was not built"
  failed=$((failed + 1))
else
  dir=$(mktemp -d /tmp/px-rust-tokio-XXXXXX)
  "$producer" "$dir/s" 40 1048577 &
  pid=$!
  if out=$(timeout 60 "$consumer" "$dir/s" 40) && wait $pid &&
    [[ $out == "parallax-rust-tokio frames=40 bytes=1048577 "*"verified=all" ]]; then
    echo "ok: the Tokio consumer verified 40 frames from the C producer"
  else
    echo "FAILED: C producer -> Rust Tokio consumer: ${out:-no output}"
    kill $pid 2>/dev/null
    failed=$((failed + 1))
  fi
  rm -rf "$dir"
fi

# --- parallax-bridge end to end: C publisher -> export -> Zenoh/TCP -> import -> Python ---------
# The binary of the cargo test above (its dependencies are built once); the Python of
# tests/python/run.sh, which installed `parallax` just before (scripts/test.sh), or $PYTHON.
echo "--- parallax-bridge: tests/bridge/run.sh"
if ! (cd "$here" && cargo build --locked --quiet -p parallax-bridge --bin parallax-bridge); then
  echo "FAILED: parallax-bridge did not build"
  failed=$((failed + 1))
elif ! ${PYTHON:-python3} -c 'import parallax, numpy' 2>/dev/null; then
  echo "SKIPPED: ${PYTHON:-python3} cannot import parallax and numpy (run tests/python/run.sh first)"
elif ! "$repo/tests/bridge/run.sh" "$build" "$here/target/debug/parallax-bridge"; then
  failed=$((failed + 1))
fi

# --- the bundled build: a crate that depends on `parallax`, with nothing installed -------------
# A throwaway crate outside the workspace, built and run with no PARALLAX_* variable and no
# pkg-config entry: parallax-sys must build libparallax from the sources it ships and link it
# statically, so the program runs with no library path. The target dir stays under target/, so
# the CMake build of the bundled sources happens once.
echo "--- bundled: a crate depending on parallax, nothing installed, no environment"
bundled_check() {
  local dir
  dir=$(mktemp -d /tmp/px-rust-bundled-XXXXXX)
  mkdir "$dir/src"
  cat >"$dir/Cargo.toml" <<EOT
[package]
name = "px-bundled-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
parallax = { path = "$here/parallax" }

[workspace]
EOT
  cat >"$dir/src/main.rs" <<'EOT'
use parallax::{Metadata, Pool};

fn main() -> Result<(), parallax::Error> {
    let pool = Pool::shm(Some("bundled"), 4, 4096)?;
    let mut slot = pool.loan()?;
    slot[..5].copy_from_slice(b"hello");
    let frame = slot.into_buffer(5, &Metadata::with_sequence(1))?;
    println!(
        "bundled: {} ({} of {} slots free), libparallax {}",
        String::from_utf8_lossy(&frame),
        pool.available(),
        pool.capacity(),
        parallax::version_string()
    );
    Ok(())
}
EOT
  cp "$here/Cargo.lock" "$dir/" # the workspace's pinned versions (cmake among them)
  local env_args=(-u PARALLAX_BUILD_DIR -u PARALLAX_LIB_DIR -u PARALLAX_INCLUDE_DIR
    -u LD_LIBRARY_PATH)
  if pkg-config --exists parallax 2>/dev/null; then
    echo "note: hiding the installed parallax.pc from this check (PKG_CONFIG_LIBDIR)"
    env_args+=(PKG_CONFIG_LIBDIR="$dir/no-pkgconfig" PKG_CONFIG_PATH=)
  fi
  local exe=$here/target/bundled/debug/px-bundled-check ok=1 out
  rm -f "$exe"
  if ! (cd "$dir" && env "${env_args[@]}" cargo build --color never \
    --target-dir "$here/target/bundled") >"$dir/build.log" 2>&1; then
    echo "FAILED: the crate did not build with the bundled library; the end of the build:"
    tail -n 40 "$dir/build.log"
    ok=0
  elif readelf -d "$exe" | grep -q 'NEEDED.*libparallax'; then
    echo "FAILED: $exe needs libparallax.so (the bundled library should be linked statically)"
    ok=0
  elif ! out=$(env "${env_args[@]}" "$exe") ||
    [[ $out != "bundled: hello (3 of 4 slots free)"* ]]; then
    echo "FAILED: $exe printed: $out"
    ok=0
  else
    echo "ok: $out"
  fi
  rm -rf "$dir"
  [ $ok -eq 1 ]
}
bundled_check || failed=$((failed + 1))

# --- the published crate holds what the bundled build needs -------------------------------------
echo "--- cargo package --list -p parallax-sys"
package_check() {
  local list missing extra
  list=$(cd "$here" && cargo package --list -p parallax-sys --allow-dirty --quiet 2>&1) ||
    { echo "FAILED: cargo package --list: $list"; return 1; }
  # Every tracked file of the library's sources, under libparallax/.
  missing=$(cd "$repo" && git ls-files CMakeLists.txt cmake core capi include |
    while read -r f; do grep -qxF "libparallax/$f" <<<"$list" || echo "$f"; done)
  # And nothing else: no tests, benches, build trees or the rest of the repository.
  local allowed='\.cargo_vcs_info\.json|Cargo\.(toml|toml\.orig|lock)|build\.rs|src/.*|tests/.*'
  allowed+='|LICENSE-(APACHE|MIT)'
  allowed+='|libparallax/(CMakeLists\.txt|(cmake|core|capi|include)/.*)'
  extra=$(grep -vE "^($allowed)\$" <<<"$list")
  if [ -n "$missing" ]; then
    echo "FAILED: the package lacks:" $missing
    return 1
  fi
  if [ -n "$extra" ]; then
    echo "FAILED: the package holds files it should not:" $extra
    return 1
  fi
  echo "ok: $(wc -l <<<"$list") files, every library source among them, nothing else"
}
package_check || failed=$((failed + 1))

echo "rust: ${passed_tests:-0} passed, ${failed_tests:-0} failed"
if [ $failed -ne 0 ]; then
  echo "run_tests.sh: $failed check(s) failed"
  exit 1
fi
