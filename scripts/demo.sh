#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The demo: two processes pass 8 MiB frames zero-copy through libparallax, then the same frames
# go through a Unix socket as bytes (what you would otherwise do), in the same run.
# Usage: scripts/demo.sh [frames] [frame_bytes]
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-200000}
bytes=${2:-8388608}
runs=3

bash scripts/deps.sh build
# A build dir of its own: the test command's build/release keeps its tests.
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF \
  -DPX_BUILD_BENCH=OFF -DPX_BUILD_EXAMPLES=ON >/dev/null
cmake --build build/demo --target px_producer px_consumer >/dev/null
bin=build/demo/examples/c
dir=$(mktemp -d /tmp/px-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT

run() { # mode frames -> the consumer's report line
  local mode=$1 n=$2
  "$bin/px_producer" "$dir/s" "$n" "$bytes" --touch $mode &
  local producer=$!
  "$bin/px_consumer" "$dir/s" "$n" $mode
  wait $producer
}

copy_frames=300 # a copy takes milliseconds per frame: fewer frames, about the same time
echo "libparallax demo: $frames frames of $bytes bytes, producer -> consumer (two processes)"
echo "(each mode runs $runs times; medians below)"
: > "$dir/results"
for i in $(seq $runs); do
  run "" "$frames" | tee -a "$dir/results"
  run "--socket-copy" "$copy_frames" | tee -a "$dir/results"
done
awk '
  function field(name,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] } }
  function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return arr[int((n + 1) / 2)]
  }
  { m = $1; n[m]++; fps[m, n[m]] = field("frames_per_s"); gbs[m, n[m]] = field("GB_per_s");
    p50[m, n[m]] = field("p50_latency_us"); p99[m, n[m]] = field("p99_latency_us") }
  END {
    for (m in n) { k = n[m];
      for (i = 1; i <= k; i++) { a[i] = fps[m, i] } F[m] = median(a, k)
      for (i = 1; i <= k; i++) { a[i] = gbs[m, i] } G[m] = median(a, k)
      for (i = 1; i <= k; i++) { a[i] = p50[m, i] } L[m] = median(a, k)
      for (i = 1; i <= k; i++) { a[i] = p99[m, i] } P[m] = median(a, k) }
    printf "\n%-14s %14s %16s %16s %16s\n", "transport", "frames/s", "effective GB/s", "p50 latency us", "p99 latency us"
    printf "%-14s %14.0f %16.2f %16.1f %16.1f\n", "libparallax", F["parallax"], G["parallax"], L["parallax"], P["parallax"]
    printf "%-14s %14.0f %16.2f %16.1f %16.1f\n", "socket copy", F["socket-copy"], G["socket-copy"], L["socket-copy"], P["socket-copy"]
    printf "\nlibparallax moves %.0fx the frames per second of a socket copy, at %.1fx lower median latency.\n", F["parallax"] / F["socket-copy"], L["socket-copy"] / L["parallax"]
    printf "(effective GB/s = frame bytes made available to the consumer per second; with libparallax\n the consumer reads them in place, so no byte is copied.)\n"
  }' "$dir/results"
