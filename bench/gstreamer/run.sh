#!/usr/bin/env bash
# parallaxsink -> parallaxsrc against shmsink -> shmsrc (gst-plugins-bad), same run, same frames:
# 1080p and 4K RGB from videotestsrc (a static pattern, so the producer's own work is small)
# into fakesink. Prints frames/s and CPU time per frame (user + sys of each gst-launch process,
# from bash's `time`, i.e. getrusage of the child) as medians of REPS interleaved repetitions,
# and the ratios. Usage: bench/gstreamer/run.sh [BUILD_DIR] (default build/release); REPS=3.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
reps=${REPS:-3}
export GST_PLUGIN_PATH=$build/bindings/gstreamer/plugin
[ -f "$GST_PLUGIN_PATH/libgstparallax.so" ] || { echo "no plugin in $GST_PLUGIN_PATH" >&2; exit 1; }
tmp=$(mktemp -d /tmp/px-gst-bench.XXXXXX)
export GST_REGISTRY=$tmp/registry.bin PARALLAX_RUNTIME_DIR=$tmp
trap 'rm -rf "$tmp"' EXIT
gst-inspect-1.0 parallaxsink >/dev/null && gst-inspect-1.0 shmsink >/dev/null
PATTERN=${PATTERN:-black}

# Runs one gst-launch pipeline under bash's `time`; "wall user sys" (seconds) into file $1.
timed() {
  local out=$1; shift
  bash -c 'TIMEFORMAT="%R %U %S"; time gst-launch-1.0 -q "$@" >/dev/null 2>&1' _ "$@" 2>"$out"
}

# Waits up to 5 s for socket $1 to appear.
wait_socket() {
  for ((i = 0; i < 100; i++)); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "no socket $1" >&2; return 1
}

# run TRANSPORT WIDTH HEIGHT FRAMES -> "fps producer_cpu_us_per_frame consumer_cpu_us_per_frame"
# Both transports alike: the producer starts first and holds its first frame until the consumer
# has joined (wait-for-subscribers=1 / wait-for-connection=true); the consumer starts when the
# socket is there; frames/s = frames / the consumer's wall time (its start-up included, the same
# gst-launch start-up for both).
run() {
  local transport=$1 w=$2 h=$3 n=$4
  local caps="video/x-raw,format=RGB,width=$w,height=$h,framerate=30/1"
  local frame=$((w * h * 3))
  if [ "$transport" = parallax ]; then
    timed "$tmp/producer" videotestsrc pattern="$PATTERN" num-buffers="$n" ! "$caps" ! \
      parallaxsink stream=bench wait-for-subscribers=1 policy=block &
    local producer=$!
    wait_socket "$tmp/bench"
    timed "$tmp/consumer" parallaxsrc stream=bench ! fakesink sync=false
  else
    timed "$tmp/producer" videotestsrc pattern="$PATTERN" num-buffers="$n" ! "$caps" ! \
      shmsink socket-path="$tmp/shm" shm-size=$((frame * 6)) wait-for-connection=true \
      sync=false &
    local producer=$!
    wait_socket "$tmp/shm"
    timed "$tmp/consumer" shmsrc socket-path="$tmp/shm" ! "$caps" ! fakesink sync=false
  fi
  wait "$producer"
  read -r pw pu ps <"$tmp/producer"
  read -r cw cu cs <"$tmp/consumer"
  awk -v n="$n" -v cw="$cw" -v pu="$pu" -v ps="$ps" -v cu="$cu" -v cs="$cs" \
    'BEGIN { printf "%.1f %.0f %.0f\n", n / cw, (pu + ps) * 1e6 / n, (cu + cs) * 1e6 / n }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A results
for ((r = 1; r <= reps; r++)); do
  for size in 1080p 4K; do
    if [ $size = 1080p ]; then dims="1920 1080 600"; else dims="3840 2160 200"; fi
    for transport in parallax shm; do
      line=$(run $transport $dims)
      results[$size.$transport]+="$line"$'\n'
      echo "rep $r $size $transport: $line fps, producer us/frame, consumer us/frame" >&2
    done
  done
done

printf '%-6s %-22s %10s %18s %18s\n' size transport frames/s "producer CPU/frame" \
  "consumer CPU/frame"
for size in 1080p 4K; do
  for transport in parallax shm; do
    rows=${results[$size.$transport]}
    fps=$(cut -d' ' -f1 <<<"$rows" | grep . | median)
    pc=$(cut -d' ' -f2 <<<"$rows" | grep . | median)
    cc=$(cut -d' ' -f3 <<<"$rows" | grep . | median)
    declare "m_${size}_${transport}=$fps $pc $cc"
    name=$([ $transport = parallax ] && echo "parallaxsink->src" || echo "shmsink->shmsrc")
    printf '%-6s %-22s %10s %15s us %15s us\n' $size "$name" "$fps" "$pc" "$cc"
  done
  read -r pf pp pcc <<<"$(eval echo \$m_${size}_parallax)"
  read -r sf sp scc <<<"$(eval echo \$m_${size}_shm)"
  awk -v pf="$pf" -v sf="$sf" -v pp="$pp" -v pcc="$pcc" -v sp="$sp" -v scc="$scc" -v s=$size \
    'BEGIN { printf "%-6s ratio parallax/shm: frames/s %.2fx, CPU per frame (both processes) %.2fx\n",
             s, pf / sf, (pp + pcc) / (sp + scc) }'
done
