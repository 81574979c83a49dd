#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# parallaxsink -> parallaxsrc against shmsink -> shmsrc (gst-plugins-bad), same run, same frames,
# 1080p and 4K RGB, consumer fakesink. Three producers:
#   write   videotestsrc pattern=black: writes every frame (it renders a static pattern once and
#           copies it into each new buffer), into whatever memory the sink offers upstream;
#   copy    the same behind `identity drop-allocation=true`: upstream writes into its own memory
#           and the sink copies each frame into shared memory (what happens with an upstream
#           that ignores the sink's allocator or pool);
#   freeze  videotestsrc num-buffers=1 ! imagefreeze: the same buffer pushed again and again, so
#           the producer writes nothing and what is measured is the transport alone.
# Each pipeline runs in px_gst_meter (built here with cc), which counts frames at the element
# named "meter" and takes wall and CPU time (user + sys, getrusage of the whole process) from
# the first frame to the last: start-up and the wait for the other side are left out.
# Prints medians of REPS interleaved repetitions and the ratios parallax/shm.
# Usage: bench/gstreamer/run.sh [BUILD_DIR] (default build/release); REPS=3,
# PRODUCERS="write copy freeze", SIZES="1080p 4K", TIMEOUT=60 (seconds per pipeline).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
reps=${REPS:-3}
producers=${PRODUCERS:-write copy freeze}
sizes=${SIZES:-1080p 4K}
limit=${TIMEOUT:-60}
export GST_PLUGIN_PATH=$build/bindings/gstreamer/plugin
[ -f "$GST_PLUGIN_PATH/libgstparallax.so" ] || { echo "no plugin in $GST_PLUGIN_PATH" >&2; exit 1; }
tmp=$(mktemp -d /tmp/px-gst-bench.XXXXXX)
export GST_REGISTRY=$tmp/registry.bin PARALLAX_RUNTIME_DIR=$tmp
trap 'rm -rf "$tmp"' EXIT
gst-inspect-1.0 parallaxsink >/dev/null && gst-inspect-1.0 shmsink >/dev/null
gst-inspect-1.0 imagefreeze >/dev/null
# shellcheck disable=SC2046
cc -O2 -o "$tmp/px_gst_meter" "$root/bench/gstreamer/px_gst_meter.c" \
  $(pkg-config --cflags --libs gstreamer-1.0)

# Runs px_gst_meter on a pipeline under `timeout`; its line "frames wall cpu" into file $1.
# A pipeline that outlives the limit is killed and named, and the bench stops: a hang must never
# pass for a slow run.
meter() {
  local out=$1 rc=0; shift
  timeout -k 5 $((limit + 5)) "$tmp/px_gst_meter" "$limit" "$@" >"$out" 2>"$out.err" || rc=$?
  if [ $rc != 0 ]; then
    [ $rc = 124 ] || [ $rc = 137 ] || [ $rc = 2 ] &&
      echo "TIMEOUT after ${limit}s (exit $rc): gst-launch-1.0 $*" >&2
    echo "FAILED (exit $rc): $*" >&2
    cat "$out.err" >&2
    return 1
  fi
}

# Waits up to 5 s for socket $1 to appear.
wait_socket() {
  for ((i = 0; i < 100; i++)); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "no socket $1 after 5 s" >&2; return 1
}

# producer_head KIND CAPS N: the pipeline up to the sink.
producer_head() {
  local kind=$1 caps=$2 n=$3
  case $kind in
  write) echo "videotestsrc pattern=black num-buffers=$n ! $caps" ;;
  copy) echo "videotestsrc pattern=black num-buffers=$n ! $caps ! identity drop-allocation=true" ;;
  freeze) echo "videotestsrc pattern=black num-buffers=1 ! $caps ! imagefreeze num-buffers=$n" ;;
  esac
}

# run TRANSPORT KIND WIDTH HEIGHT FRAMES ->
#   "fps producer_cpu_us_per_frame consumer_cpu_us_per_frame frames_received"
# Both transports alike: the producer starts first and holds its first frame until the consumer
# has joined (wait-for-subscribers=1 / wait-for-connection=true); the consumer starts when the
# socket is there. frames/s is the consumer's, between its first and last frame.
run() {
  local transport=$1 kind=$2 w=$3 h=$4 n=$5 tag=$6
  local caps="video/x-raw,format=RGB,width=$w,height=$h,framerate=30/1"
  local frame=$((w * h * 3)) head producer
  head=$(producer_head "$kind" "$caps" "$n")
  # The consumer's fakesink keeps no last sample: shmsink's EOS waits until every buffer it
  # sent is given back, so a held last buffer hangs it for ever (one of the two hangs seen).
  local tail="fakesink name=meter sync=false enable-last-sample=false"
  if [ "$transport" = parallax ]; then
    # shellcheck disable=SC2086
    meter "$tmp/producer" $head ! parallaxsink name=meter stream="$tag" \
      wait-for-subscribers=1 policy=block &
    producer=$!
    wait_socket "$tmp/$tag" &&
      meter "$tmp/consumer" parallaxsrc stream="$tag" timeout=$((limit * 1000000000)) ! $tail ||
      { wait "$producer"; return 1; }
  else
    # shm-size: room for 10 frames (parallaxsink's default slots) plus the alignment padding of
    # its allocator. buffer-time (write only): at most 4 frames (of 30/1) sent and not yet given
    # back, as parallaxsink's max-in-flight=4. Without it, when upstream allocates from
    # shmsink's allocator, shmsink never waits for the consumer: upstream's buffer pool grows
    # until the area is full, the next buffer falls back to system memory, and shmsink waits
    # for a free block that the pool's idle buffers keep, for ever: the hang seen before (with
    # wait-for-connection, shm-size 40 or 200 MB alike). copy needs no limit (shmsink's own
    # blocks come back when the consumer releases them) and freeze must not have one: the same
    # block sent again and again with a buffer-time hangs shmsink too.
    local buffer_time=-1
    [ "$kind" = write ] && buffer_time=133333333
    # shellcheck disable=SC2086
    meter "$tmp/producer" $head ! shmsink name=meter socket-path="$tmp/$tag" \
      shm-size=$((frame * 10 + 1048576)) buffer-time=$buffer_time wait-for-connection=true \
      sync=false &
    producer=$!
    # shellcheck disable=SC2086
    wait_socket "$tmp/$tag" &&
      meter "$tmp/consumer" shmsrc socket-path="$tmp/$tag" is-live=false ! "$caps" ! $tail ||
      { wait "$producer"; return 1; }
  fi
  wait "$producer" || return 1
  read -r pn pw pc <"$tmp/producer"
  read -r cn cw cc <"$tmp/consumer"
  [ "$cn" = "$n" ] || echo "warning: $transport $kind ${w}x$h: consumer got $cn of $n frames" >&2
  awk -v pn="$pn" -v pc="$pc" -v cn="$cn" -v cw="$cw" -v cc="$cc" \
    'BEGIN { printf "%.1f %.1f %.1f %d\n", (cn - 1) / cw, pc * 1e6 / (pn - 1),
             cc * 1e6 / (cn - 1), cn }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

frames_for() { # KIND SIZE
  if [ "$1" = freeze ]; then echo 3000; elif [ "$2" = 1080p ]; then echo 300; else echo 100; fi
}

declare -A results
for ((r = 1; r <= reps; r++)); do
  for kind in $producers; do
    for size in $sizes; do
      if [ "$size" = 1080p ]; then dims="1920 1080"; else dims="3840 2160"; fi
      n=$(frames_for "$kind" "$size")
      for transport in parallax shm; do
        # A run that fails or hangs (timeout) is counted and made again, up to 3 attempts: shmsink
        # hangs now and then at EOS (seen with freeze, 1 run in ~10).
        for attempt in 1 2 3; do
          line=$(run $transport "$kind" $dims "$n" "b$r-$kind-$size-$transport-$attempt") &&
            break
          echo "$kind $size rep $r attempt $attempt" >>"$tmp/failed.$transport"
          [ $attempt = 3 ] && { echo "giving up: 3 failed attempts" >&2; exit 1; }
        done
        results[$kind.$size.$transport]+="$line"$'\n'
        echo "rep $r $kind $size $transport: $line (fps, producer us/frame, consumer us/frame," \
          "frames)" >&2
      done
    done
  done
done

for transport in parallax shm; do
  echo "$transport: $(cat "$tmp/failed.$transport" 2>/dev/null | wc -l) failed or hung runs" \
    "made again"
done
col() { cut -d' ' -f"$1" <<<"$2" | grep . | median; }
printf '%-7s %-6s %-18s %10s %14s %14s\n' producer size transport frames/s "producer CPU" \
  "consumer CPU"
for kind in $producers; do
  for size in $sizes; do
    for transport in parallax shm; do
      rows=${results[$kind.$size.$transport]}
      name=$([ $transport = parallax ] && echo "parallaxsink->src" || echo "shmsink->shmsrc")
      printf '%-7s %-6s %-18s %10s %11s us %11s us\n' "$kind" "$size" "$name" "$(col 1 "$rows")" \
        "$(col 2 "$rows")" "$(col 3 "$rows")"
    done
    p=${results[$kind.$size.parallax]} s=${results[$kind.$size.shm]}
    awk -v pf="$(col 1 "$p")" -v sf="$(col 1 "$s")" -v pp="$(col 2 "$p")" -v pc="$(col 3 "$p")" \
      -v sp="$(col 2 "$s")" -v sc="$(col 3 "$s")" -v k="$kind" -v z="$size" \
      'BEGIN { printf "%-7s %-6s ratio parallax/shm: frames/s %.2fx, CPU per frame: producer " \
               "%.2fx, consumer %.2fx, both %.2fx\n", k, z, pf / sf, pp / sp, pc / sc,
               (pp + pc) / (sp + sc) }'
  done
done
