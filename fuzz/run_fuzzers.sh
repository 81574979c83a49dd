#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) in build/fuzz, then
# for each target: replays its regression inputs (fuzz/regressions/<target>/, crashes found
# before and fixed), and fuzzes it for the given time on a copy of its seed corpus
# (fuzz/corpus/<target>/; the copy lives in a temp dir, so the repo is never written to).
# Crash inputs are kept in build/fuzz/crashes/<target>/. Exits non-zero if any target failed.
#
# Usage: fuzz/run_fuzzers.sh [seconds-per-target]     (default 60)
#   The default targets share the time of the three there were before fuzz_subscriber came
#   (3 x seconds in all, so a caller's budget holds): each gets 3/4 of `seconds`.
#   PX_FUZZ_TARGETS="wire_decode channel"  runs only those, `seconds` each.
#   PX_FUZZ_JOBS=N                         fuzzes with N processes per target (default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;; esac
build=$root/build/fuzz
default_targets="wire_decode received_fd channel subscriber"
targets=${PX_FUZZ_TARGETS:-$default_targets}
if [ "$targets" = "$default_targets" ]; then
  share=$((seconds * 3 / 4))
  [ "$share" -gt 0 ] || share=1
else
  share=$seconds
fi
jobs=${PX_FUZZ_JOBS:-1}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}
probe_dir=$(mktemp -d /tmp/px-fuzz-probe.XXXXXX)
trap 'rm -rf "$probe_dir"' EXIT
# clang++ that can link a libFuzzer target with ASan + UBSan (the runtime is a separate package
# on Debian, libclang-rt-<N>-dev, only recommended by clang).
have_libfuzzer() {
  command -v clang++ >/dev/null &&
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }\n' |
    clang++ -x c++ -fsanitize=fuzzer,address,undefined - -o "$probe_dir/probe" >/dev/null 2>&1
}
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
have_libfuzzer || need+=(clang)
if [ ${#need[@]} -gt 0 ]; then
  echo "fuzz: installing ${need[*]}"
  as_root apt-get update -q && apt_install "${need[@]}" || {
    echo "fuzz: could not install ${need[*]}" >&2
    exit 1
  }
  if ! have_libfuzzer; then
    major=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    apt_install "libclang-rt-$major-dev" >/dev/null 2>&1 || true
  fi
  if ! have_libfuzzer; then
    echo "fuzz: clang++ cannot link -fsanitize=fuzzer,address,undefined (libFuzzer missing)" >&2
    exit 1
  fi
fi
rm -rf "$probe_dir"

echo "fuzz: building in $build"
if ! { cmake -S fuzz -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ >/dev/null && cmake --build "$build" -j "$(nproc)"; }; then
  echo "fuzz: build failed"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d /tmp/px-fuzz.XXXXXX)
trap 'rm -rf "$work" "$probe_dir"' EXIT

passed=0
failed=0
summary=()
for t in $targets; do
  bin=$build/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "fuzz: no target $t"
    failed=$((failed + 1))
    continue
  fi
  echo
  echo "=== fuzz_$t"
  ok=1

  # 1. Regression inputs: each is run once and must not crash.
  regressions=()
  if [ -d "fuzz/regressions/$t" ]; then
    while IFS= read -r -d '' f; do regressions+=("$f"); done \
      < <(find "fuzz/regressions/$t" -type f ! -name '*.md' -print0 | sort -z)
  fi
  if [ ${#regressions[@]} -gt 0 ]; then
    if "$bin" "${regressions[@]}" >"$work/$t.replay.log" 2>&1; then
      echo "fuzz_$t: ${#regressions[@]} regression inputs replayed, all pass"
    else
      echo "fuzz_$t: a regression input crashes again:"
      tail -n 40 "$work/$t.replay.log"
      ok=0
    fi
  fi

  # 2. Fuzzing for the time given, from a private copy of the seeds.
  corpus=$work/$t.corpus
  mkdir -p "$corpus" "$work/$t.artifacts"
  [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$corpus/"
  seeds=$(find "$corpus" -type f | wc -l)
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-fork="$jobs" -ignore_crashes=0)
  log=$work/$t.log
  "$bin" "$corpus" -max_total_time="$share" -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/$t.artifacts/" "${extra[@]}" >"$log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(echo "$stats" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$stats" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  units=$(find "$corpus" -type f | wc -l)
  if [ $rc -ne 0 ]; then
    ok=0
    mkdir -p "$build/crashes/$t"
    cp "$work/$t.artifacts/"* "$build/crashes/$t/" 2>/dev/null
    echo "fuzz_$t: FAILED (exit $rc); crash inputs kept in $build/crashes/$t:"
    ls "$build/crashes/$t" 2>/dev/null | sed 's/^/  /'
    grep -E 'ERROR|SUMMARY|fuzz_[a-z_]+: |==[0-9]+==' "$log" | head -n 20
    tail -n 30 "$log"
  fi
  line="fuzz_$t: ${execs:-?} runs in ${share} s (${rate:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus $seeds -> $units"
  echo "$line"
  summary+=("$line $([ $ok -eq 1 ] && echo ok || echo FAILED)")
  if [ $ok -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

echo
printf '%s\n' "${summary[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
