#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Issue 14: libparallax against iceoryx2 0.10 in one command, from Rust and from Python, both
# libraries in the same run. Installs what is missing (build tools and libclang with apt-get,
# iceoryx2 and pybind11 from PyPI into a virtualenv of its own, the Rust crates with cargo),
# builds libparallax in Release in its own build directory (the library, and its Python module
# against the same libparallax.so), builds bench/iceoryx2 (cargo build --release --locked), runs
# both benchmarks and prints their tables.
#
# Usage: bench/run_iceoryx2_benchmarks.sh [--quick] [--rust-only | --python-only] [options]
#   --quick            3 repetitions of 0.08 s per case: ~1 minute once everything is built
#   other options go to both benchmarks: --reps N, --seconds S, --measures latency,frames-4k,
#   frames-8m, --modes busy,waitset, --placements unpinned,same,cross, --slots N
# Output: bench/results/iceoryx2_{rust,python}_{output.txt,summary.md,summary.csv,runs.csv}
# (bench/results/ is gitignored).
# Environment: PX_IOX2_BUILD_DIR (default build/iox2bench), PYTHON (default python3; the
# virtualenv is made from it), CARGO (default cargo).
# Takes ~4 minutes in full on the 2-core VM (+4-5 minutes for a first build, mostly iceoryx2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${PX_IOX2_BUILD_DIR:-build/iox2bench}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
results=bench/results
python=${PYTHON:-python3}
cargo=${CARGO:-cargo}
iceoryx2_version=0.10.0 # the same as bench/iceoryx2/Cargo.lock pins

say() { echo "run_iceoryx2_benchmarks: $*"; }
die() { say "$*" >&2; exit 1; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" -ne 0 ] && have_cmd sudo; then SUDO=sudo; else SUDO=; fi
apt_install() { # packages...; other jobs may hold the dpkg lock for a while
  have_cmd apt-get || die "no apt-get to install $* with; install them by hand"
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}

run_rust=1
run_python=1
args=()
for a in "$@"; do
  case "$a" in
    --rust-only) run_python=0 ;;
    --python-only) run_rust=0 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
[ "$run_rust" = 1 ] || [ "$run_python" = 1 ] || die "--rust-only and --python-only exclude each other"

# 1. Build tools; bindgen (parallax-sys) needs libclang.
need=()
have_cmd cmake || need+=(cmake)
have_cmd ninja || need+=(ninja-build)
have_cmd g++ || need+=(g++)
if [ "$run_rust" = 1 ] && ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
  need+=(libclang-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt_install "${need[@]}"
fi
if [ "$run_rust" = 1 ] && ! have_cmd "$cargo"; then
  die "cargo not found: install Rust >= 1.89 (rustup), or use --python-only"
fi

# 2. Python: a virtualenv of our own, so that the package under test is the one built below and
# not whatever `pip install .` last put in site-packages.
venv="$build/venv"
if [ "$run_python" = 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    say "making a virtualenv in $venv"
    "$python" -m venv "$venv" || die "$python -m venv failed (Debian: apt-get install python3-venv)"
  fi
  vpy="$venv/bin/python"
  pip_install() {
    PIP_ROOT_USER_ACTION=ignore "$vpy" -m pip install --quiet --disable-pip-version-check "$@"
  }
  if ! "$vpy" -c "import importlib.metadata as m, sys; \
      sys.exit(m.version('iceoryx2') != '$iceoryx2_version')" 2>/dev/null; then
    say "installing iceoryx2==$iceoryx2_version with pip"
    pip_install "iceoryx2==$iceoryx2_version"
  fi
  if ! "$vpy" -c "import pybind11, sys; sys.exit(int(pybind11.__version__.split('.')[0]) < 3)" \
      2>/dev/null; then
    say "installing pybind11>=3.0 with pip (to build the parallax module)"
    pip_install "pybind11>=3.0"
  fi
fi

# 3. libparallax in Release (and its Python module, linked against the same libparallax.so).
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF -DPX_BUILD_BENCH=OFF
  -DPX_BUILD_EXAMPLES=OFF)
if [ "$run_python" = 1 ]; then
  cmake_args+=(-DPX_BUILD_PYTHON=ON "-DPython_EXECUTABLE=$vpy"
    "-Dpybind11_DIR=$("$vpy" -m pybind11 --cmakedir)")
fi
say "building libparallax (Release) in $build"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja "${cmake_args[@]}" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
cmake --build "$build" >"$build/build.log" 2>&1 || { tail -50 "$build/build.log"; exit 1; }

# The package as pip would lay it out: the sources of python/parallax and the module just built.
stage="$build/python"
if [ "$run_python" = 1 ]; then
  rm -rf "$stage"
  mkdir -p "$stage/parallax"
  # Copies, not links: the package stays as it was built while others edit the tree.
  find "$root/python/parallax" -maxdepth 1 -type f -exec cp -p {} "$stage/parallax/" \;
  module=$(find "$build/bindings/python" -maxdepth 1 -name '_parallax*.so' | head -1)
  [ -n "$module" ] || die "the parallax Python module was not built (see $build/build.log)"
  cp -p "$module" "$stage/parallax/"
fi

# 4. The Rust benchmark, against the library just built (linked dynamically, rpath set).
bench_bin="$build/cargo/release/px-bench-iceoryx2"
if [ "$run_rust" = 1 ]; then
  say "building bench/iceoryx2 (cargo build --release --locked)"
  (cd bench/iceoryx2 && PARALLAX_BUILD_DIR="$build" CARGO_TARGET_DIR="$build/cargo" \
    "$cargo" build --release --locked --quiet) >"$build/cargo.log" 2>&1 ||
    { tail -50 "$build/cargo.log"; exit 1; }
fi

# 5. Run. The label names the commit measured ("+ local changes" when the library's sources
# differ from it).
label=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown commit")
if [ -n "$(git status --porcelain -- core capi include bindings CMakeLists.txt 2>/dev/null)" ]; then
  label="$label + local changes"
fi
mkdir -p "$results"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (the figures move with the load)"
if [ "$run_rust" = 1 ]; then
  "$bench_bin" --out "$results" --label "$label" ${args[@]+"${args[@]}"} |
    tee "$results/iceoryx2_rust_output.txt"
fi
if [ "$run_python" = 1 ]; then
  PYTHONPATH="$stage" "$vpy" bench/python/bench_iceoryx2.py --out "$results" \
    --label "$label" ${args[@]+"${args[@]}"} | tee "$results/iceoryx2_python_output.txt"
fi
