#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# End-to-end tests of parallax-bridge (issue 17): a C publisher -> export bridge -> Zenoh over
# TCP -> import bridge -> a Python subscriber, all on 127.0.0.1 (and one case across two network
# namespaces joined by a veth pair, where they can be made).
#   tests/bridge/run.sh <cmake-build-dir> <parallax-bridge binary>
# Python: $PYTHON (default python3) with `parallax` and numpy importable. Ends with
# "bridge: N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ $# -ne 2 ]; then
  echo "usage: $0 <cmake-build-dir> <parallax-bridge>" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
bridge=$2
python=${PYTHON:-python3}
[ -x "$bridge" ] || { echo "run.sh: $bridge is not executable" >&2; exit 2; }

work=$(mktemp -d /tmp/px-bridge-tests-XXXXXX)
export PARALLAX_RUNTIME_DIR=$work/run
mkdir -m 700 "$PARALLAX_RUNTIME_DIR"
started=() # pids of what this script started, ended by id on exit
netns=()
cleanup() {
  for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null; done
  for n in "${netns[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

cc -O1 -Wall -Werror -I"$build/include" -I"$repo/include" "$here/bridge_publisher.c" -L"$build" -lparallax \
  -Wl,-rpath,"$build" -o "$work/bridge_publisher" || { echo "run.sh: cannot build the C publisher"; exit 1; }
"$python" -c 'import parallax, numpy' || { echo "run.sh: $python lacks parallax or numpy"; exit 1; }

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# bg CMD...: starts CMD in the background (stderr+stdout to $log), pid in $pid.
bg() { "$@" >"$log" 2>&1 & pid=$!; started+=("$pid"); }
# wait_for FILE PATTERN SECONDS
wait_for() {
  local end=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.1
  done
}
# stop PID: SIGTERM, and it must exit 0 within 10 s.
stop() {
  kill -TERM "$1" 2>/dev/null
  local end=$((SECONDS + 10))
  while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; return 1; fi
  wait "$1"
}
# verdict OUT N MODE: checks the subscriber's JSON (MODE all: frames 0..N-1 exactly;
# MODE gap: increasing, first < 80, last >= N-10 and at least one jump; MODE rejoin: as gap
# plus rejoins >= 1). Prints why not.
verdict() {
  "$python" - "$@" <<'EOF'
import json, sys
out, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [json.loads(l) for l in open(out) if l.startswith("{")]
done = [l for l in lines if l.get("event") == "done"]
if not done:
    sys.exit(f"no result from the subscriber: {open(out).read()[-2000:]}")
d = done[0]
s = d["seqs"]
if d["bad"]:
    sys.exit(f"bad frames: {d['bad'][:5]}")
if mode == "all" and s != list(range(n)):
    sys.exit(f"frames {s[:10]}...{s[-5:]} ({len(s)}), not 0..{n - 1}")
if mode in ("gap", "rejoin"):
    if any(b <= a for a, b in zip(s, s[1:])):
        sys.exit("frames out of order")
    if not s or s[0] >= 80 or s[-1] < n - 10 or all(b == a + 1 for a, b in zip(s, s[1:])):
        sys.exit(f"expected frames before and after the restart with a gap: {s}")
    if mode == "rejoin" and d["rejoins"] < 1:
        sys.exit("the subscriber never saw the import stream end")
print(f"{len(s)} frames intact (format {'checked' if d['format_checked'] else 'not exposed by the Python binding'}, rejoins {d['rejoins']})")
EOF
}

# One chain: importer, subscriber, exporter, then the publisher (the subscriber on the import
# side is up before the exporter). Sets imp, exp, sub, pub pids and the logs in $work/$tag.*.
# The importer gets the options in the array imp_opts (none unless set).
imp_opts=()
chain() { # tag frames bytes interval-ms port [subscriber options]
  local tag=$1 n=$2 bytes=$3 interval=$4 port=$5
  shift 5
  local ep=tcp/127.0.0.1:$port
  log=$work/$tag.import bg "$bridge" import --key "px/test/$tag" "$tag-b" --connect "$ep" "${imp_opts[@]}"
  imp=$pid
  sleep 0.3
  log=$work/$tag.sub bg "$python" -u "$here/py_subscriber.py" "$tag-b" --frames "$n" --bytes "$bytes" --timeout 8 "$@"
  sub=$pid
  wait_for "$work/$tag.sub" joined 20 || fail "$tag: the subscriber did not join the import stream"
  log=$work/$tag.export bg "$bridge" export "$tag-a" --key "px/test/$tag" --listen "$ep"
  exp=$pid
  wait_for "$work/$tag.export" "an importer subscribes" 20 || fail "$tag: the importer never matched"
  log=$work/$tag.pub bg "$work/bridge_publisher" "$tag-a" "$n" "$bytes" "$interval"
  pub=$pid
}

# Every socket of these pids is TCP on 127.0.0.1 (no UDP: no scouting), or AF_UNIX.
loopback_only() {
  local p bad=""
  for p in "$@"; do
    bad+=$(ss -tuanpH 2>/dev/null | grep "pid=$p," | awk '$1 != "tcp" || $5 !~ /^127\.0\.0\.1:/ || ($6 !~ /^(\*|0\.0\.0\.0):\*$/ && $6 !~ /^127\.0\.0\.1:/)')
  done
  [ -z "$bad" ] || { echo "$bad"; return 1; }
}

echo "--- 4 KiB frames, subscriber before the exporter"
chain small 40 4096 10 "$(free_port)"
sleep 0.5
if ! command -v ss >/dev/null; then
  echo "SKIPPED: the loopback-only check needs ss (iproute2)"
elif ! ss -tanpH 2>/dev/null | grep -q "pid=$exp,"; then
  fail "ss shows no socket of the exporter (pid $exp): the check would prove nothing"
elif out=$(loopback_only "$imp" "$exp"); then
  ok "the bridges' sockets are all TCP on 127.0.0.1"
else
  fail "sockets off loopback: $out"
fi
# Every thread of a bridge, Zenoh's included, runs under SCHED_BATCH unless --sched normal.
policies() { # pid: the scheduling policies of its threads (0 normal, 3 batch), each once
  local t
  for t in /proc/"$1"/task/*/stat; do sed 's/.*) //' "$t" | awk '{print $39}'; done | sort -u | tr '\n' ' '
}
threads() { ls /proc/"$1"/task | wc -l; }
if [ "$(policies "$exp")" = "3 " ] && [ "$(policies "$imp")" = "3 " ] && [ "$(threads "$exp")" -gt 1 ]; then
  ok "every thread of both bridges ($(threads "$exp") and $(threads "$imp")) is SCHED_BATCH"
else
  fail "bridge thread policies: exporter $(policies "$exp"), importer $(policies "$imp")"
fi
wait "$sub"
if why=$(verdict "$work/small.sub" 40 all 2>&1); then ok "4 KiB: $why"; else fail "4 KiB: $why"; fi
wait "$pub"
if stop "$exp" && stop "$imp"; then ok "both bridges exit 0 on SIGTERM"; else fail "a bridge did not stop cleanly on SIGTERM"; fi
grep -q "import stopped: .*frames: 40," "$work/small.import" && ok "the importer counted 40 frames" || fail "importer counts: $(tail -1 "$work/small.import")"

echo "--- --sched normal"
log=$work/normal.export bg "$bridge" export normal-a --key px/test/normal --listen "tcp/127.0.0.1:$(free_port)" --sched normal
if wait_for "$work/normal.export" "zenoh key" 20 && [ "$(policies "$pid")" = "0 " ]; then
  ok "--sched normal: every thread of the exporter has the default policy"
else
  fail "--sched normal: policies $(policies "$pid")"
fi
stop "$pid" || fail "--sched normal: the exporter did not stop cleanly"

echo "--- 4 KiB frames in a burst: several to a Zenoh message, every one delivered"
# Policy block on the import side too: nothing may be dropped anywhere, so frames pile up at
# the exporter while the Python subscriber checks them, and it must put them several at a time.
imp_opts=(--policy block)
chain burst 2000 4096 0 "$(free_port)"
imp_opts=()
wait "$sub"
if why=$(verdict "$work/burst.sub" 2000 all 2>&1); then ok "burst: $why"; else fail "burst: $why"; fi
wait "$pub"; stop "$exp"; stop "$imp"
msgs=$(grep -o 'export stopped: Counts { frames: 2000, messages: [0-9]*' "$work/burst.export" | grep -o '[0-9]*$')
if [ -n "$msgs" ] && [ "$msgs" -lt 2000 ]; then
  ok "the exporter put the 2000 frames in $msgs messages"
else
  fail "exporter counts: $(grep 'export stopped' "$work/burst.export")"
fi

echo "--- 32 MiB frames"
chain big 6 $((32 << 20)) 0 "$(free_port)"
wait "$sub"
if why=$(verdict "$work/big.sub" 6 all 2>&1); then ok "32 MiB: $why"; else fail "32 MiB: $why"; fi
wait "$pub"; stop "$exp"; stop "$imp"

echo "--- kill -9 of the exporter, restarted"
port=$(free_port)
chain kexp 300 4096 20 "$port"
sleep 2
kill -9 "$exp"
sleep 1
log=$work/kexp.export2 bg "$bridge" export kexp-a --key px/test/kexp --listen "tcp/127.0.0.1:$port"
exp=$pid
wait "$sub"
if why=$(verdict "$work/kexp.sub" 300 gap 2>&1); then ok "exporter restart: $why"; else fail "exporter restart: $why"; fi
wait "$pub" && ok "the C publisher ran through the exporter's death" || fail "the C publisher failed"
[ "$(grep -c 'exporter run' "$work/kexp.import")" -eq 2 ] && ok "the importer saw two exporter runs" || fail "importer log: $(grep 'exporter run' "$work/kexp.import")"
stop "$exp"; stop "$imp"

echo "--- kill -9 of the importer, restarted (the subscriber rejoins, the exporter stays)"
port=$(free_port)
chain kimp 300 4096 20 "$port" --rejoin
sleep 2
kill -9 "$imp"
sleep 1
log=$work/kimp.import2 bg "$bridge" import --key px/test/kimp kimp-b --connect "tcp/127.0.0.1:$port"
imp=$pid
wait "$sub"
if why=$(verdict "$work/kimp.sub" 300 rejoin 2>&1); then ok "importer restart: $why"; else fail "importer restart: $why"; fi
wait "$pub"
if kill -0 "$exp" && stop "$exp"; then ok "the exporter lived through the importer's death"; else fail "the exporter died"; fi
stop "$imp"

echo "--- two network namespaces joined by a veth pair"
ns_a=pxbr-a-$$ ns_b=pxbr-b-$$
if ! ip netns add "$ns_a" 2>"$work/netns.err"; then
  echo "SKIPPED: network namespaces cannot be made here: $(cat "$work/netns.err")"
else
  netns+=("$ns_a")
  ip netns add "$ns_b" && netns+=("$ns_b")
  # Addresses chosen here, inside namespaces this script made: nothing leaves them.
  ip link add "pxa$$" netns "$ns_a" type veth peer name "pxb$$" netns "$ns_b" &&
    ip -n "$ns_a" addr add 10.213.17.1/30 dev "pxa$$" && ip -n "$ns_b" addr add 10.213.17.2/30 dev "pxb$$" &&
    ip -n "$ns_a" link set "pxa$$" up && ip -n "$ns_b" link set "pxb$$" up &&
    ip -n "$ns_a" link set lo up && ip -n "$ns_b" link set lo up
  ep=tcp/10.213.17.1:7447
  log=$work/ns.import bg ip netns exec "$ns_b" "$bridge" import --key px/test/ns ns-b --connect "$ep"
  imp=$pid
  log=$work/ns.sub bg ip netns exec "$ns_b" "$python" -u "$here/py_subscriber.py" ns-b --frames 20 --bytes 65536 --timeout 8
  sub=$pid
  wait_for "$work/ns.sub" joined 20
  log=$work/ns.export bg ip netns exec "$ns_a" "$bridge" export ns-a --key px/test/ns --listen "$ep"
  exp=$pid
  wait_for "$work/ns.export" "an importer subscribes" 20 || fail "netns: the importer never matched"
  log=$work/ns.pub bg ip netns exec "$ns_a" "$work/bridge_publisher" ns-a 20 65536 10
  pub=$pid
  wait "$sub"
  if why=$(verdict "$work/ns.sub" 20 all 2>&1); then ok "across namespaces: $why"; else fail "across namespaces: $why"; fi
  wait "$pub"; stop "$exp"; stop "$imp"
fi

for f in "$work"/*.import* "$work"/*.export*; do
  grep -q "panicked" "$f" && fail "a bridge panicked: $f: $(grep -m1 panicked "$f")"
done
if [ $failed -ne 0 ]; then
  for f in "$work"/*.import* "$work"/*.export* "$work"/*.pub "$work"/*.sub; do echo "== $f"; tail -n 8 "$f"; done
fi
echo "bridge: $passed passed, $failed failed"
[ $failed -eq 0 ]
