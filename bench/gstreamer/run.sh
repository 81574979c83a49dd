#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# parallaxsink -> parallaxsrc against shmsink -> shmsrc (gst-plugins-bad), same run, same frames,
# 1080p and 4K RGB, consumer fakesink. Producers (lib.sh says what each does): write (the normal
# case: upstream writes each frame into the memory the sink offers), freeze (transport only: the
# same buffer pushed again and again) and, when asked, copy (upstream ignores the sink's pool).
# Each pipeline runs in px_gst_meter (built here with cc), which counts frames at the element
# named "meter" and takes wall and CPU time (user + sys, getrusage of the whole process) from
# the first frame to the last: start-up and the wait for the other side are left out.
#
# Every pipeline runs under a time limit. A run that hits it is a hang: it is killed (both
# processes at once), counted in the table's "hung" column and left out of the medians, and the
# bench goes on; a run that fails otherwise is counted as failed. Nothing is run again.
#
# Usage: bench/gstreamer/run.sh [[LABEL=]BUILD_DIR ...] (default build/release). With several
# build directories (e.g. before=/tmp/old after=build/gst) each plugin runs as its own variant in
# the same repetitions, interleaved with shm, so before/after figures come from the same minutes.
# Env: REPS=3, PRODUCERS="write freeze", SIZES="1080p 4K", TIMEOUT=20 (seconds per pipeline).
# Prints medians of the repetitions that finished, ratios parallax/shm, and the 1-minute load
# average at the start of the runs behind each row (min-max).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
reps=${REPS:-3}
producers=${PRODUCERS:-write freeze}
sizes=${SIZES:-1080p 4K}
limit=${TIMEOUT:-20}
tmp=$(mktemp -d /tmp/px-gst-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=lib.sh
. "$root/bench/gstreamer/lib.sh"
bench_setup

variants=()
[ $# -gt 0 ] || set -- "$root/build/release"
for arg in "$@"; do
  if [[ $arg == *=* ]]; then label=${arg%%=*} dir=${arg#*=}; else label=parallax dir=$arg; fi
  [ $# = 1 ] || [[ $arg == *=* ]] || label=$(basename "$dir")
  plugin_setup "$label" "$dir"
  variants+=("$label")
done
variants+=(shm)

# start_meter OUT PIPELINE...: px_gst_meter under `timeout` in the background ($! is timeout's
# pid: killing it stops the pipeline). Its line "frames wall cpu" goes to OUT.
start_meter() {
  local out=$1; shift
  timeout -k 3 $((limit + 3)) "$tmp/px_gst_meter" "$limit" "$@" >"$out" 2>"$out.err" &
}

# finish PID OUT: 0 done, 2 hung (its own timer or timeout's), 1 failed.
finish() {
  local rc=0
  wait "$1" || rc=$?
  case $rc in
  0) return 0 ;;
  2 | 124 | 137) return 2 ;;
  *) echo "FAILED (exit $rc): $(cat "$2.err")" >&2; return 1 ;;
  esac
}

# Frames a meter saw: from its line when it finished, from its TIMEOUT message when it hung,
# "?" when it was killed before it could say.
seen() {
  { cut -d' ' -f1 "$1"; sed -n 's/.*TIMEOUT after \([0-9]*\) frames.*/\1/p' "$1.err"; } |
    grep . || echo "?"
}

# run VARIANT KIND SIZE FRAMES TAG: prints "fps producer_us consumer_us frames" and returns 0,
# or returns 2 (hung: prints where each side was, "producer N/M consumer N/M" frames) or 1.
# The producer starts first and holds its first frame until the consumer has joined (wait-for-subscribers=1 / wait-for-connection=true); the consumer
# starts when the socket is there. frames/s is the consumer's, between its first and last frame.
run() {
  local variant=$1 kind=$2 size=$3 n=$4 tag=$5 prod cons pid_p pid_c rp=0 rc=0
  pipelines "$variant" "$kind" "$size" "$n" "$tag" "$limit"
  # shellcheck disable=SC2086
  start_meter "$tmp/producer" $prod
  pid_p=$!
  if ! wait_socket "$tmp/$tag"; then
    kill "$pid_p" 2>/dev/null || true
    finish "$pid_p" "$tmp/producer" || true
    return 1
  fi
  # shellcheck disable=SC2086
  start_meter "$tmp/consumer" $cons
  pid_c=$!
  finish "$pid_c" "$tmp/consumer" || rc=$?
  # A consumer that hung or failed leaves a producer that may wait for ever: stop it now.
  if [ $rc != 0 ]; then
    kill "$pid_p" 2>/dev/null || true
    finish "$pid_p" "$tmp/producer" >/dev/null 2>&1 || true
    [ $rc = 2 ] && echo "producer $(seen "$tmp/producer")/$n consumer $(seen "$tmp/consumer")/$n"
    return $rc
  fi
  finish "$pid_p" "$tmp/producer" || rp=$?
  [ $rp = 0 ] || return $rp
  local pn pw pc cn cw cc
  read -r pn pw pc <"$tmp/producer"
  read -r cn cw cc <"$tmp/consumer"
  [ "$cn" = "$n" ] || echo "warning: $variant $kind $size: consumer got $cn of $n frames" >&2
  awk -v pn="$pn" -v pc="$pc" -v cn="$cn" -v cw="$cw" -v cc="$cc" \
    'BEGIN { printf "%.1f %.1f %.1f %d\n", (cn - 1) / cw, pc * 1e6 / (pn - 1),
             cc * 1e6 / (cn - 1), cn }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# Frames per run: enough for a second or so of each (3000 when nothing is written, 300
# otherwise: 100 4K frames, as before, were over in 0.3 s and their figures swung by 1.5x).
frames_for() { # KIND
  if [ "$1" = freeze ]; then echo 3000; else echo 300; fi
}

declare -A results hung failed loads
echo "load average at start: $(cat /proc/loadavg)" >&2
for ((r = 1; r <= reps; r++)); do
  # Alternate the order within a repetition, so that neither side always runs first.
  order=("${variants[@]}")
  if ((r % 2 == 0)); then
    order=(); for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[$i]}"); done
  fi
  for kind in $producers; do
    for size in $sizes; do
      n=$(frames_for "$kind")
      for variant in "${order[@]}"; do
        key=$kind.$size.$variant
        loads[$key]+="$(load1) "
        status=0
        line=$(run "$variant" "$kind" "$size" "$n" "b$r-$kind-$size-$variant") || status=$?
        case $status in
        0) results[$key]+="$line"$'\n'
          echo "rep $r $kind $size $variant: $line (fps, producer us/frame, consumer" \
            "us/frame, frames)" >&2 ;;
        2) hung[$key]=$((${hung[$key]:-0} + 1))
          echo "rep $r $kind $size $variant: HUNG (no end within ${limit}s; frames seen:" \
            "$line), killed" >&2 ;;
        *) failed[$key]=$((${failed[$key]:-0} + 1))
          echo "rep $r $kind $size $variant: FAILED" >&2 ;;
        esac
      done
    done
  done
done
echo "load average at end: $(cat /proc/loadavg)" >&2

col() { cut -d' ' -f"$1" <<<"$2" | grep . | median; }
printf '%-7s %-6s %-10s %10s %14s %14s %5s %5s %9s\n' producer size variant frames/s \
  "producer CPU" "consumer CPU" hung fail load
for kind in $producers; do
  for size in $sizes; do
    for variant in "${variants[@]}"; do
      key=$kind.$size.$variant rows=${results[$kind.$size.$variant]:-}
      range=$(tr ' ' '\n' <<<"${loads[$key]}" | grep . | sort -g | sed -n '1p;$p' | paste -sd-)
      printf '%-7s %-6s %-10s %10s %11s us %11s us %5s %5s %9s\n' "$kind" "$size" "$variant" \
        "$(col 1 "$rows")" "$(col 2 "$rows")" "$(col 3 "$rows")" "${hung[$key]:-0}" \
        "${failed[$key]:-0}" "$range"
    done
    s=${results[$kind.$size.shm]:-}
    for variant in "${variants[@]}"; do
      [ "$variant" = shm ] && continue
      p=${results[$kind.$size.$variant]:-}
      awk -v pf="$(col 1 "$p")" -v sf="$(col 1 "$s")" -v pp="$(col 2 "$p")" \
        -v pc="$(col 3 "$p")" -v sp="$(col 2 "$s")" -v sc="$(col 3 "$s")" -v k="$kind" \
        -v z="$size" -v v="$variant" \
        'BEGIN { if (pf == "-" || sf == "-") { printf "%-7s %-6s %s/shm: no ratio (a side never finished)\n", k, z, v; exit }
                 printf "%-7s %-6s %s/shm: frames/s %.2fx, CPU per frame: producer %.2fx, " \
                 "consumer %.2fx, both %.2fx\n", k, z, v, pf / sf, pp / sp, pc / sc,
                 (pp + pc) / (sp + sc) }'
    done
  done
done
