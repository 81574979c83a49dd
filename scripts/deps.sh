#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Installs what building and testing libparallax needs, if it is missing (Debian packages via
# apt-get). Sourced by test.sh and demo.sh; safe to run again. Usage: deps.sh [build|test]
set -euo pipefail
what=${1:-test}

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have_cmd cmake || need+=(cmake)
have_cmd ninja || need+=(ninja-build)
have_cmd g++ || need+=(g++)
have_cmd pkg-config || need+=(pkg-config)
if [ "$what" = test ]; then
  have_pkg doctest-dev || need+=(doctest-dev) # the test suites' only library
  # (the benchmarks use their own harness, bench/harness.hpp: no Google benchmark)
  have_pkg libclang-dev || need+=(libclang-dev) # bindgen, for the Rust crate
  have_cmd clang || need+=(clang)
  # The GStreamer elements (bindings/gstreamer) and their tests: headers, gst-check (in the -dev
  # package), gst-launch/gst-inspect, videotestsrc and filesink; shmsink/shmsrc for the bench.
  for p in libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools \
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad; do
    have_pkg "$p" || need+=("$p")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
