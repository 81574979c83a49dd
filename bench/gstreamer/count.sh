#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Syscalls and heap allocations per frame in each process of parallaxsink -> parallaxsrc (and,
# with VARIANTS including shm, of shmsink -> shmsrc). Each pipeline pair runs twice, with N1 and
# N2 frames; a count per frame is (count at N2 - count at N1) / (N2 - N1), so start-up, plugin
# loading, negotiation and teardown cancel out. Syscalls: strace -c -f (every thread); heap
# allocations: px_alloc_count.c preloaded with G_SLICE=always-malloc (GLib's slices count too).
# strace slows the processes down, which changes how often a side finds nothing to do and waits:
# its wait calls (poll, futex) per frame are an upper bound, the others are exact. So the total
# is also taken with `perf stat -e raw_syscalls:sys_enter` (all threads, far less slowdown) when
# perf can read that tracepoint. getrusage (1 per frame) is px_gst_meter's own, left out.
# Usage: bench/gstreamer/count.sh [[LABEL=]BUILD_DIR ...] (default build/release); env
# PRODUCERS="freeze write", SIZE=1080p, N1=300, N2=1300, VARIANTS (default: the builds given),
# TIMEOUT=60, SHOW=0.05 (a syscall is listed when its count per frame is at least this).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
producers=${PRODUCERS:-freeze write}
size=${SIZE:-1080p}
n1=${N1:-300} n2=${N2:-1300}
limit=${TIMEOUT:-60}
show=${SHOW:-0.05}
tmp=$(mktemp -d /tmp/px-gst-count.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=lib.sh
. "$root/bench/gstreamer/lib.sh"
bench_setup
cc -O2 -shared -fPIC -o "$tmp/px_alloc_count.so" "$root/bench/gstreamer/px_alloc_count.c"
command -v strace >/dev/null || { echo "count.sh needs strace" >&2; exit 1; }

variants=()
[ $# -gt 0 ] || set -- "$root/build/release"
for arg in "$@"; do
  if [[ $arg == *=* ]]; then label=${arg%%=*} dir=${arg#*=}; else label=parallax dir=$arg; fi
  plugin_setup "$label" "$dir"
  variants+=("$label")
done
read -r -a variants <<<"${VARIANTS:-${variants[*]}}"

tools="strace alloc"
perf stat -e raw_syscalls:sys_enter -o /dev/null true 2>/dev/null && tools+=" perf"

# wrap TOOL OUT: the command prefix that measures a process.
wrap() {
  case $1 in
  strace) echo "strace -f -c -o $2" ;;
  perf) echo "perf stat -e raw_syscalls:sys_enter -x, -o $2" ;;
  alloc) echo "env LD_PRELOAD=$tmp/px_alloc_count.so G_SLICE=always-malloc PX_ALLOC_COUNT_OUT=$2" ;;
  esac
}

# pair TOOL VARIANT KIND FRAMES TAG: runs producer and consumer under TOOL into $tmp/TAG.{p,c}.
pair() {
  local tool=$1 variant=$2 kind=$3 n=$4 tag=$5 prod cons pid
  pipelines "$variant" "$kind" "$size" "$n" "$tag" "$limit"
  rm -f "$tmp/$tag.p" "$tmp/$tag.c"
  # shellcheck disable=SC2046,SC2086
  timeout -k 3 "$limit" $(wrap "$tool" "$tmp/$tag.p") "$tmp/px_gst_meter" "$limit" $prod \
    >/dev/null 2>"$tmp/$tag.p.err" &
  pid=$!
  wait_socket "$tmp/$tag" || { kill "$pid"; return 1; }
  # shellcheck disable=SC2046,SC2086
  timeout -k 3 "$limit" $(wrap "$tool" "$tmp/$tag.c") "$tmp/px_gst_meter" "$limit" $cons \
    >/dev/null 2>"$tmp/$tag.c.err" || { kill "$pid" 2>/dev/null; wait "$pid"; return 1; }
  wait "$pid"
}

# syscalls FILE: "name calls" lines from strace -c's table (the meter's getrusage left out).
syscalls() {
  awk '$NF != "syscall" && $NF != "total" && $NF != "getrusage" && NF >= 5 && $4 ~ /^[0-9]+$/ {
    print $NF, $4 }' "$1"
}

# per_frame A B: per syscall, (calls in B - calls in A) / (N2 - N1), largest first.
per_frame() {
  local rows
  rows=$(join -a1 -a2 -e0 -o0,1.2,2.2 <(syscalls "$1" | sort) <(syscalls "$2" | sort) |
    awk -v d=$((n2 - n1)) '{ printf "%s %.2f\n", $1, ($3 - $2) / d }')
  # The total first, then the calls of at least $show per frame, most first.
  awk '{ t += $2 } END { printf "total=%.2f", t }' <<<"$rows"
  sort -k2 -g -r <<<"$rows" | awk -v show="$show" '$2 >= show { printf " %s=%s", $1, $2 }'
  echo
}

allocs_of() { awk '{ print $2 }' "$1"; }
perf_syscalls_of() { awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$1"; }

# per_frame_of A B: (B - A) / (N2 - N1).
per_frame_of() { awk -v x="$1" -v y="$2" -v d=$((n2 - n1)) 'BEGIN { printf "%.2f", (y - x) / d }'; }

echo "load average at start: $(cat /proc/loadavg)"
for kind in $producers; do
  for variant in "${variants[@]}"; do
    for tool in $tools; do
      for n in $n1 $n2; do
        pair $tool "$variant" "$kind" "$n" "$tool-$variant-$kind-$n" ||
          { echo "$variant $kind: a $tool run with $n frames failed or hung" >&2; continue 3; }
      done
    done
    for side in p c; do
      name=$([ $side = p ] && echo producer || echo consumer)
      a=$tmp/strace-$variant-$kind-$n1.$side b=$tmp/strace-$variant-$kind-$n2.$side
      echo "$kind $size $variant $name syscalls/frame: $(per_frame "$a" "$b")"
      if [[ $tools == *perf* ]]; then
        a=$tmp/perf-$variant-$kind-$n1.$side b=$tmp/perf-$variant-$kind-$n2.$side
        # minus the meter's getrusage
        echo "$kind $size $variant $name syscalls/frame (perf stat, all threads):" \
          "$(per_frame_of "$(perf_syscalls_of "$a")" "$(($(perf_syscalls_of "$b") - n2 + n1))")"
      fi
      a=$tmp/alloc-$variant-$kind-$n1.$side b=$tmp/alloc-$variant-$kind-$n2.$side
      echo "$kind $size $variant $name heap allocations/frame:" \
        "$(per_frame_of "$(allocs_of "$a")" "$(allocs_of "$b")")"
    done
  done
done
echo "load average at end: $(cat /proc/loadavg)"
