#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The library configures, builds and installs with only a compiler and CMake: doctest (and the
# optional packages: pybind11, iceoryx) hidden from every find_* call. Registered as the ctest
# `minimal_build` by the top-level CMakeLists.txt.
#   check_minimal_build.sh <source-dir> <scratch-dir> [<doctest include dir to hide>]
set -euo pipefail
src=$1
work=$2
doctest_dir=${3:-}
rm -rf "$work"
mkdir -p "$work"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
hide=(-DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON -DCMAKE_DISABLE_FIND_PACKAGE_iceoryx_posh=ON)
if [ -n "$doctest_dir" ] && [ "${doctest_dir%NOTFOUND}" = "$doctest_dir" ]; then
  hide+=("-DCMAKE_IGNORE_PATH=$doctest_dir")
fi
advice="doctest not found: apt-get install doctest-dev"
fail() {
  echo "minimal_build: FAILED: $*" >&2
  exit 1
}

# 1. The defaults: tests off with one line of advice; the library, examples and benches build,
#    and the install holds what a consumer needs. Debug: this checks the build, not the code.
log=$work/configure.log
cmake -S "$src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug "${hide[@]}" \
  >"$log" 2>&1 || { cat "$log"; fail "default configure"; }
grep -q "^-- parallax: tests off ($advice" "$log" || { cat "$log"; fail "no 'tests off' line"; }
found=$(grep '^DOCTEST_INCLUDE_DIR:PATH=/' "$work/build/CMakeCache.txt" || true)
[ -z "$found" ] || fail "doctest was found despite the hiding: $found"
cmake --build "$work/build" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail build; }
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null || fail "install"
for f in include/parallax/parallax.h include/parallax/version.h; do
  [ -f "$work/prefix/$f" ] || fail "the install has no $f"
done
libdir=$(ls -d "$work/prefix"/lib*/ | head -n1)
for f in libparallax.so cmake/parallax/parallaxConfig.cmake pkgconfig/parallax.pc; do
  [ -e "$libdir/$f" ] || fail "the install has no $libdir$f"
done

# 2. Tests asked for explicitly without doctest: the configure stops, with the same advice.
if cmake -S "$src" -B "$work/asked" "${generator[@]}" -DPX_BUILD_TESTS=ON "${hide[@]}" \
  >"$work/asked.log" 2>&1; then
  fail "-DPX_BUILD_TESTS=ON configured without doctest"
fi
# CMake wraps an error's text: compare it as one line.
tr -s ' \n' '  ' <"$work/asked.log" |
  grep -q "tests asked for (-DPX_BUILD_TESTS=ON) but $advice" ||
  { cat "$work/asked.log"; fail "-DPX_BUILD_TESTS=ON failed without the advice"; }

# 3. Likewise the Python module without pybind11 (pip install . fetches it; plain CMake may not).
if cmake -S "$src" -B "$work/python" "${generator[@]}" -DPX_BUILD_PYTHON=ON "${hide[@]}" \
  >"$work/python.log" 2>&1; then
  fail "-DPX_BUILD_PYTHON=ON configured without pybind11"
fi
tr -s ' \n' '  ' <"$work/python.log" | grep -q "the Python module needs pybind11 >= 3.0" ||
  { cat "$work/python.log"; fail "-DPX_BUILD_PYTHON=ON failed without the advice"; }

rm -rf "$work"
echo "minimal_build: configured, built and installed without doctest; tests=ON without doctest" \
  "and python=ON without pybind11 refused with advice"
