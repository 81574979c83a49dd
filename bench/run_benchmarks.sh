#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Builds libparallax and the pool/buffer benchmark in Release and prints the table: each row is
# parallax through the C API against the baseline a user would otherwise pick, from one run.
#
#   bench/run_benchmarks.sh                 # 15 repetitions per side, medians
#   bench/run_benchmarks.sh --quick         # a quick look
#   bench/run_benchmarks.sh --reps 31 --check   # more repetitions; exit 1 if a target is missed
#
# PX_BENCH_BUILD_DIR overrides the build directory (default: <repo>/build/bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${PX_BENCH_BUILD_DIR:-$root/build/bench}"

# Warnings are not errors here: a new compiler's -O3 warning must not stop a measurement.
configure=(cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_BENCH=ON
           -DPX_BUILD_TESTS=OFF -DPX_WERROR=OFF)
# The generator can only be chosen for a new build directory.
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  configure+=(-G Ninja)
fi

echo "== Release build of px_bench_pool in $build" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${configure[@]}" && cmake --build "$build" --target px_bench_pool --parallel; } >"$log" 2>&1
then
  cat "$log" >&2
  echo "run_benchmarks.sh: the build failed (output above)" >&2
  exit 1
fi
"$build/bench/px_bench_pool" "$@"
