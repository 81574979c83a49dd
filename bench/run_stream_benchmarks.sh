#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Issue 13's fan-out benchmark in one command: installs iceoryx if missing (apt-get), builds
# px_bench_stream in Release in its own build directory, runs it (libparallax streams against
# iceoryx publish-subscribe with 1, 2, 4 and 8 subscriber processes, and a lagging subscriber;
# it starts and stops iceoryx's daemon itself) and prints the tables with ratios.
#
# Usage: bench/run_stream_benchmarks.sh [px_bench_stream options]   e.g. --quick, --reps 9
# Output: bench/results/stream_output.txt (what is printed). bench/results/ is gitignored.
# Environment: PX_STREAM_BUILD_DIR (default build/streambench).
# --quick takes about 50 s on a 2-core VM, the default run (7 x 0.3 s) about 5 minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${PX_STREAM_BUILD_DIR:-build/streambench}
results=bench/results

say() { echo "run_stream_benchmarks: $*"; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ "$(id -u)" -ne 0 ] && have_cmd sudo; then SUDO=sudo; else SUDO=; fi

# iceoryx is optional: without it the iceoryx rows say why and the libparallax rows still run.
if ! have_pkg libiceoryx-posh-dev || ! have_cmd iox-roudi; then
  if have_cmd apt-get; then
    say "installing iceoryx (iceoryx libiceoryx-posh-dev)"
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        iceoryx libiceoryx-posh-dev >/dev/null; } ||
      say "WARNING: could not install iceoryx; its rows will say so"
  else
    say "WARNING: no apt-get to install iceoryx with; its rows will say so"
  fi
fi

say "building px_bench_stream (Release) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF \
  -DPX_BUILD_BENCH=ON >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
grep 'px_bench_stream:' "$build.configure.log" | sed 's/^-- /run_stream_benchmarks: /' || true
cmake --build "$build" --target px_bench_stream >"$build.build.log" 2>&1 ||
  { tail -50 "$build.build.log"; exit 1; }

mkdir -p "$results"
"$build/bench/stream/px_bench_stream" "$@" | tee "$results/stream_output.txt"
