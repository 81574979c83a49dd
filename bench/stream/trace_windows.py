#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""What the CPU did during the publish calls of px_bench_stream's join/leave rounds.

px_bench_stream --churn-only with PX_CHURN_WINDOWS=<file> writes, for each never-polling
round, the CLOCK_MONOTONIC window of every publish call that admitted or removed a subscriber
or took over 40 us of CPU (bench/stream/churn.cpp). This script matches those windows against
an ftrace record of the same run, taken with trace_clock "mono", and prints:

  - per kind of call, the mean time each system call and interrupt took inside the windows;
  - the publisher's stream wakes (its one FUTEX_WAKE per publish): their duration, split by
    whether the call was one that admitted or removed a subscriber, whether the wake sent an
    IPI, and whether an interrupt came in during it.

Record (as root; the buffer is per CPU, and keeps the oldest events when full):

  cd /sys/kernel/tracing
  echo 0 > tracing_on; echo > trace; echo mono > trace_clock; echo 0 > options/overwrite
  echo 400000 > buffer_size_kb
  for e in sched:sched_switch sched:sched_waking 'irq_vectors:*' 'irq:*' 'ipi:*' \\
           'raw_syscalls:*'; do echo "$e" >> set_event; done
  echo 1 > tracing_on
  PX_CHURN_WINDOWS=/tmp/windows.txt build/release/bench/stream/px_bench_stream --churn-only --reps 1
  echo 0 > tracing_on; cat trace > /tmp/trace.txt; echo > set_event

then: bench/stream/trace_windows.py /tmp/windows.txt /tmp/trace.txt
"""
import bisect
import collections
import re
import sys

EVENT = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\S+):\s*(.*)$")
FUTEX = "202"  # x86-64
SYSCALLS = {"0": "read", "1": "write", "3": "close", "7": "poll", "9": "mmap", "11": "munmap",
            "24": "sched_yield", "28": "madvise", "46": "sendmsg", "47": "recvmsg",
            "48": "shutdown", "202": "futex", "228": "clock_gettime", "232": "epoll_wait",
            "233": "epoll_ctl", "271": "ppoll"}
KINDS = {"1": "admitted or removed one", "2": "a join/leave waited", "0": "nothing waited"}


def load(windows_path, trace_path):
    windows = []
    for line in open(windows_path):
        pid, start, end, cpu_ns, kind, _cpu = line.split()
        windows.append((int(pid), int(start) / 1e9, int(end) / 1e9, int(cpu_ns), kind))
    events = []
    for line in open(trace_path):
        m = EVENT.match(line)
        if m:
            _comm, pid, cpu, ts, name, rest = m.groups()
            events.append((float(ts), int(cpu), int(pid), name, rest))
    events.sort(key=lambda e: e[0])
    return windows, events


def breakdown(windows, events):
    stamps = [e[0] for e in events]
    rows = collections.defaultdict(list)
    for pid, start, end, cpu_ns, kind in windows:
        spent = collections.Counter()
        opened = {}
        call = None
        for t, _cpu, p, name, rest in events[bisect.bisect_left(stamps, start):
                                             bisect.bisect_right(stamps, end)]:
            if p != pid:
                continue
            if name == "sys_enter":
                call, opened["sys"] = rest.split()[1], t
            elif name == "sys_exit" and "sys" in opened:
                spent["syscall %s" % SYSCALLS.get(call, call)] += t - opened.pop("sys")
            elif name.endswith("_entry") and name != "hrtimer_expire_entry":
                opened[name[:-6]] = t
            elif name.endswith("_exit") and name[:-5] in opened:
                spent["interrupt %s" % name[:-5]] += t - opened.pop(name[:-5])
        slow = cpu_ns > 40_000
        rows[(kind, slow)].append(spent)
    print("Mean time per call inside the windows (us; interrupts nest in system calls)")
    for (kind, slow), spents in sorted(rows.items()):
        total = collections.Counter()
        for s in spents:
            total.update(s)
        print("  %s, %s 40 us of CPU: %d calls" % (KINDS[kind], "over" if slow else "within",
                                                  len(spents)))
        for what, secs in total.most_common(8):
            print("    %-28s %6.1f" % (what, secs / len(spents) * 1e6))


def wakes(windows, events):
    removal = sorted((start, end) for pid, start, end, _c, kind in windows if kind == "1")
    starts = [w[0] for w in removal]
    pids = {w[0] for w in windows}
    rows = collections.defaultdict(list)
    current = {}
    for t, _cpu, pid, name, rest in events:
        if pid not in pids:
            continue
        if name == "sys_enter" and rest.startswith("NR %s " % FUTEX) and "7fffffff" in rest:
            current[pid] = {"t": t, "ipi": False, "irq": False}
        elif pid in current:
            c = current[pid]
            if name == "ipi_send_cpu":
                c["ipi"] = True
            elif name in ("local_timer_entry", "softirq_entry", "irq_handler_entry",
                          "call_function_single_entry", "reschedule_entry"):
                c["irq"] = True
            elif name == "sys_exit" and rest.startswith("NR %s " % FUTEX):
                i = bisect.bisect_right(starts, c["t"]) - 1
                in_removal = i >= 0 and removal[i][0] <= c["t"] <= removal[i][1]
                rows[(in_removal, c["ipi"], c["irq"])].append(t - c["t"])
                del current[pid]

    def q(v, p):
        return sorted(v)[int(p * (len(v) - 1))] * 1e6

    print("The stream's wakes (FUTEX_WAKE of every sleeper), us")
    for (in_removal, ipi, irq), v in sorted(rows.items(), reverse=True):
        print("  %-28s %-8s %-18s n=%6d p50=%6.1f p90=%6.1f p99=%6.1f" % (
            "in a call that admitted/removed" if in_removal else "in any other call",
            "IPI" if ipi else "no IPI", "interrupt during" if irq else "no interrupt",
            len(v), q(v, .5), q(v, .9), q(v, .99)))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    windows, events = load(sys.argv[1], sys.argv[2])
    breakdown(windows, events)
    wakes(windows, events)


if __name__ == "__main__":
    main()
