#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Builds and runs every test of libparallax: C++ core, C API, C header and programs, IPC with
# real processes, the fault suite (kill -9, hostile peers), install consumers, C++ wrapper,
# sanitizer builds (ASan+UBSan and TSan) of the core, C API and IPC suites, libFuzzer targets
# for a bounded time, Python (pip install . + pytest) and Rust (bindgen + cargo test).
# Installs what it needs if missing. Usage: scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
passed=0
failed=0
failures=()

step() { # name command...: runs one suite, counts it
  local name=$1
  shift
  echo
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

bash scripts/deps.sh test || { echo "could not install dependencies"; exit 1; }

build_and_ctest() { # preset [ctest args...]
  local preset=$1
  shift
  cmake --preset "$preset" -DPX_BUILD_TESTS=ON -DPX_BUILD_BENCH=ON >/dev/null &&
    cmake --build "build/$preset" -j "$jobs" &&
    ctest --test-dir "build/$preset" --output-on-failure --no-tests=error -j 1 "$@"
}

# Sanitizer builds: only the suites that exercise the core (not the bindings or benches).
sanitized() { # preset
  local preset=$1
  cmake --preset "$preset" -DPX_BUILD_TESTS=ON >/dev/null &&
    cmake --build "build/$preset" -j "$jobs" --target px_core_tests px_capi_tests px_ipc_tests \
      px_ipc_peer px_fault_tests px_stream_tests &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      TSAN_OPTIONS=halt_on_error=1 \
      ctest --test-dir "build/$preset" --output-on-failure --no-tests=error \
      -R '^(core|capi|ipc|faults|stream)$'
}

step "C++ core, C API, C header/programs, IPC, install, C++ wrapper (release build)" \
  build_and_ctest release
step "ASan + UBSan: core, C API, IPC, faults, streams" sanitized asan-ubsan
step "TSan: core, C API, IPC, faults, streams" sanitized tsan
step "Fuzz: wire decoder, received-fd validation, channel, subscriber (90 s in all)" bash fuzz/run_fuzzers.sh 30
step "Python: pip install . and pytest" bash tests/python/run.sh "$root/build/release"
step "Rust: bindgen, parallax-sys, parallax" bash bindings/rust/run_tests.sh "$root/build/release"

echo
if [ ${#failures[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
