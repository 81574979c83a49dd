#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Installs the build into a scratch prefix, then builds two consumers against the installed tree
# only: examples/cmake_consumer (find_package(parallax)) and a C99 program through pkg-config.
set -euo pipefail
build=$1
src=$2
prefix=$(mktemp -d /tmp/px-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/parallax/parallax.h"
test -f "$prefix/include/parallax/version.h"
libdir=$(ls -d "$prefix"/lib*/ | head -n1)
test -f "$libdir/cmake/parallax/parallaxConfig.cmake"
test -f "$libdir/pkgconfig/parallax.pc"

cmake -S "$src/examples/cmake_consumer" -B "$prefix/consumer-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
"$prefix/consumer-build/cmake_consumer"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -pedantic -Wall -Wextra -Werror $(pkg-config --cflags parallax) \
  "$src/tests/c/c_smoke.c" -o "$prefix/pc_consumer" $(pkg-config --libs parallax)
LD_LIBRARY_PATH="$libdir" "$prefix/pc_consumer"
echo "install_consumers: find_package and pkg-config consumers built and ran"
