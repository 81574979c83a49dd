#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Issue 7's benchmarks in one command: installs what is missing (build tools and iceoryx with
# apt-get, matplotlib with pip), builds px_bench_ipc in Release in its own build directory, runs
# it (libparallax against Unix sockets, pipes, eventfd, futex, a busy-polled atomic and iceoryx,
# all in the same run; it starts and stops iceoryx's daemon itself), prints the tables with
# ratios and targets, and draws the chart.
#
# Usage: bench/run_ipc_benchmarks.sh [px_bench_ipc options]   e.g. --quick, --reps 9
# Output: bench/results/ipc_output.txt (what is printed), ipc_summary.md (the tables in
# markdown), ipc_*.csv (every repetition), ipc.png (the chart). bench/results/ is gitignored.
# Environment: PX_IPC_BUILD_DIR (default build/ipcbench), PYTHON (default python3).
# Takes about 3 minutes on a 2-core VM (the benchmark itself about 100 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${PX_IPC_BUILD_DIR:-build/ipcbench}
results=bench/results
python=${PYTHON:-python3}

say() { echo "run_ipc_benchmarks: $*"; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ "$(id -u)" -ne 0 ] && have_cmd sudo; then SUDO=sudo; else SUDO=; fi
apt_install() { # packages...; other jobs may hold the dpkg lock for a while
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}

# 1. Build tools (required).
need=()
have_cmd cmake || need+=(cmake)
have_cmd ninja || need+=(ninja-build)
have_cmd g++ || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt_install "${need[@]}"
fi

# 2. iceoryx (optional: without it the iceoryx rows say why and everything else runs).
if ! have_pkg libiceoryx-posh-dev || ! have_cmd iox-roudi; then
  if have_cmd apt-get; then
    say "installing iceoryx (iceoryx libiceoryx-posh-dev libiceoryx-binding-c-dev)"
    apt_install iceoryx libiceoryx-posh-dev libiceoryx-binding-c-dev ||
      say "WARNING: could not install iceoryx; its rows will say so"
  else
    say "WARNING: no apt-get to install iceoryx with; its rows will say so"
  fi
fi

# 3. matplotlib for the chart (optional: the tables do not need it).
if ! "$python" -c 'import matplotlib' 2>/dev/null; then
  say "installing matplotlib with pip"
  PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check \
    matplotlib || say "WARNING: could not install matplotlib; no chart this time"
fi

# 4. Release build of the library and the benchmark only, in its own directory.
say "building px_bench_ipc (Release) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF \
  -DPX_BUILD_BENCH=ON >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
grep 'px_bench_ipc:' "$build.configure.log" | sed 's/^-- /run_ipc_benchmarks: /' || true
cmake --build "$build" --target px_bench_ipc >"$build.build.log" 2>&1 ||
  { tail -50 "$build.build.log"; exit 1; }

# 5. Run: every row beside its baselines, medians, ratios, targets. The label names the commit
# measured ("+local changes" when the library's sources differ from it).
label=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown commit")
if [ -n "$(git status --porcelain -- core capi include CMakeLists.txt 2>/dev/null)" ]; then
  label="$label + local changes"
fi
mkdir -p "$results"
"$build/bench/ipc/px_bench_ipc" --out "$results" --label "$label" "$@" |
  tee "$results/ipc_output.txt"

# 6. The chart.
if "$python" -c 'import matplotlib' 2>/dev/null; then
  "$python" bench/ipc/plot_ipc.py "$results" "$results/ipc.png"
fi
