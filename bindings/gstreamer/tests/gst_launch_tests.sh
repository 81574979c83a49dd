#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Two-process runs of parallaxsink and parallaxsrc with real gst-launch-1.0 processes.
# Usage: gst_launch_tests.sh CASE PARALLAX_CLI, CASE one of: byte_equal late_join kill_src
# kill_sink reconnect inspect. ctest sets GST_PLUGIN_PATH and GST_REGISTRY; the streams live in
# a fresh 0700 PARALLAX_RUNTIME_DIR removed at the end, with every process this script started.
set -euo pipefail
case_name=$1
cli=$2
PARALLAX_RUNTIME_DIR=$(mktemp -d /tmp/px-gst-launch.XXXXXX)
export PARALLAX_RUNTIME_DIR
work=$PARALLAX_RUNTIME_DIR/work
mkdir "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$PARALLAX_RUNTIME_DIR"
}
trap cleanup EXIT
fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }
# For pipelines started with &: exec, so that $! is gst-launch itself (kill -9 reaches it).
launch() { exec gst-launch-1.0 -q "$@"; }
# Builds the registry once, before processes start side by side (they would race to write it).
gst-inspect-1.0 parallaxsink >/dev/null

SMALL="video/x-raw,format=RGB,width=320,height=240"
FRAME=$((320 * 240 * 3))
LIVE="videotestsrc is-live=true ! $SMALL,framerate=100/1"

# Waits up to $2 seconds for process $1 to exit; its status in $status.
wait_exit() {
  local pid=$1 limit=$2 i
  for ((i = 0; i < limit * 20; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0; wait "$pid" || status=$?; return 0
    fi
    sleep 0.05
  done
  fail "process $pid still running after ${limit}s"
}

# A field of the publisher's counters (parallax --json info).
info_field() {
  "$cli" --json info "$1" 2>/dev/null | head -1 | sed -n 's/.*"stats":{\([^}]*\)}.*/\1/p' |
    tr ',' '\n' | sed -n "s/^\"$2\": *//p"
}

# Waits up to 15 s for stream $1 to have a subscriber: a fixed sleep before killing the sink
# was not enough on a loaded machine (both gst-launch processes still starting, the src not yet
# joined: killing the sink then leaves it waiting for a publisher, as it should).
wait_joined() {
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(info_field "$1" subscribers)" = 1 ] && return 0
    sleep 0.05
  done
  fail "no subscriber joined $1 within 15 s"
}

case $case_name in
byte_equal)
  # The issue's run: 300 1080p RGB frames through the stream, byte-equal to the same
  # videotestsrc written straight to a file (compared through two fifos: no 1.9 GB on disk).
  caps="video/x-raw,format=RGB,width=1920,height=1080"
  mkfifo "$work/direct" "$work/through"
  launch videotestsrc num-buffers=300 ! "$caps" ! filesink location="$work/direct" &
  pids+=($!)
  launch parallaxsrc stream=eq timeout=20000000000 ! filesink location="$work/through" &
  pids+=($!)
  launch videotestsrc num-buffers=300 ! "$caps" ! \
    parallaxsink stream=eq wait-for-subscribers=1 policy=block &
  pids+=($!)
  cmp "$work/direct" "$work/through" || fail "output differs from the direct pipeline"
  for p in "${pids[@]}"; do wait "$p" || fail "a pipeline failed"; done
  ;;
late_join)
  # A second src joins a running stream: it gets the frames from its joining on, exactly the
  # tail of what the first src got (policy=block: nobody misses a frame).
  launch parallaxsrc stream=late timeout=10000000000 ! filesink location="$work/first" &
  first=$!; pids+=($first)
  launch videotestsrc is-live=true num-buffers=200 ! "$SMALL,framerate=100/1" ! \
    parallaxsink stream=late wait-for-subscribers=1 policy=block &
  sink=$!; pids+=($sink)
  sleep 0.8
  launch parallaxsrc stream=late timeout=10000000000 ! filesink location="$work/second" &
  second=$!; pids+=($second)
  wait_exit "$sink" 20; [ "$status" = 0 ] || fail "sink exit $status"
  wait_exit "$first" 10; [ "$status" = 0 ] || fail "first src exit $status"
  wait_exit "$second" 10; [ "$status" = 0 ] || fail "second src exit $status"
  size1=$(stat -c %s "$work/first"); size2=$(stat -c %s "$work/second")
  [ "$size1" = $((200 * FRAME)) ] || fail "first src got $size1 bytes, want $((200 * FRAME))"
  [ "$size2" -gt 0 ] && [ "$size2" -lt "$size1" ] || fail "second src got $size2 bytes"
  [ $((size2 % FRAME)) = 0 ] || fail "second src got a partial frame"
  tail -c "$size2" "$work/first" | cmp - "$work/second" || fail "late joiner's frames differ"
  ;;
kill_src)
  # A src stopped while holding frames, then killed -9: the sink keeps publishing, the slots
  # it held come home (slots_lent back to 0) and the sink ends normally.
  launch videotestsrc is-live=true num-buffers=400 ! "$SMALL,framerate=100/1" ! \
    parallaxsink stream=ks wait-for-subscribers=1 slots=6 max-in-flight=4 &
  sink=$!; pids+=($sink)
  launch parallaxsrc stream=ks ! fakesink &
  src=$!; pids+=($src)
  sleep 1
  kill -STOP "$src"
  sleep 0.3
  held=$(info_field ks slots_lent)
  [ -n "$held" ] && [ "$held" -ge 1 ] || fail "the stopped src holds no slot ($held)"
  kill -9 "$src"
  for ((i = 0; i < 40; i++)); do
    [ "$(info_field ks slots_lent)" = 0 ] && [ "$(info_field ks subscribers)" = 0 ] && break
    sleep 0.05
  done
  [ "$(info_field ks slots_lent)" = 0 ] || fail "slots still lent to the killed src"
  before=$(info_field ks published); sleep 0.3; after=$(info_field ks published)
  [ "$after" -gt "$before" ] || fail "the sink stopped publishing ($before -> $after)"
  wait_exit "$sink" 10; [ "$status" = 0 ] || fail "sink exit $status"
  ;;
kill_sink)
  # The sink killed -9: the src ends with EOS by default, with an error when asked.
  for mode in eos error; do
    launch $LIVE ! parallaxsink stream="ksink-$mode" &
    sink=$!; pids+=($sink)
    launch parallaxsrc stream="ksink-$mode" on-publisher-lost=$mode ! fakesink &
    src=$!; pids+=($src)
    wait_joined "ksink-$mode"
    sleep 0.2
    kill -0 "$src" || fail "src ended early"
    kill -9 "$sink"
    wait_exit "$src" 5
    if [ $mode = eos ]; then
      [ "$status" = 0 ] || fail "src exit $status, want 0 (EOS)"
    else
      [ "$status" != 0 ] || fail "src exit 0, want an error"
    fi
  done
  ;;
reconnect)
  # on-publisher-lost=reconnect: a sink killed -9 and restarted is picked up; the frames of the
  # second sink (white) end the output, and its EOS ends the src.
  launch parallaxsrc stream=rc on-publisher-lost=reconnect timeout=10000000000 ! \
    filesink location="$work/out" &
  src=$!; pids+=($src)
  launch videotestsrc is-live=true pattern=black ! "$SMALL,framerate=100/1" ! \
    parallaxsink stream=rc &
  sink=$!; pids+=($sink)
  wait_joined rc
  sleep 0.2
  kill -9 "$sink"
  sleep 0.3
  kill -0 "$src" || fail "src ended when the sink was killed"
  gst-launch-1.0 -q videotestsrc pattern=white num-buffers=50 ! "$SMALL" ! \
    filesink location="$work/white"
  launch videotestsrc pattern=white num-buffers=50 ! "$SMALL" ! \
    parallaxsink stream=rc wait-for-subscribers=1 policy=block &
  sink2=$!; pids+=($sink2)
  wait_exit "$sink2" 10; [ "$status" = 0 ] || fail "second sink exit $status"
  wait_exit "$src" 10; [ "$status" = 0 ] || fail "src exit $status"
  tail -c $((50 * FRAME)) "$work/out" | cmp - "$work/white" || fail "second sink's frames missing"
  ;;
inspect)
  for e in parallaxsink parallaxsrc parallax; do
    gst-inspect-1.0 "$e" >"$work/out" 2>"$work/err" || fail "gst-inspect-1.0 $e failed"
    [ ! -s "$work/err" ] || fail "gst-inspect-1.0 $e wrote to stderr: $(cat "$work/err")"
  done
  grep -q "wait-for-subscribers" <(gst-inspect-1.0 parallaxsink) || fail "property missing"
  grep -q "on-publisher-lost" <(gst-inspect-1.0 parallaxsrc) || fail "property missing"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "ok ($case_name)"
