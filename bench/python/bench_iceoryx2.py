# SPDX-License-Identifier: Apache-2.0 OR MIT
"""libparallax against iceoryx2 from Python, the same cases in the same run (issue 14).

    python bench/python/bench_iceoryx2.py [--quick] [--reps 5] [--seconds 0.3] [--out DIR]

Both libraries through their Python packages (`parallax`, PyPI `iceoryx2`), driven by the same
loops: the producer loans a frame, writes its sequence number in the first 8 bytes and the
number's low byte in the last byte, and sends it; the consumer reads those two places, checks
they agree and releases the frame. Measures (the same as bench/iceoryx2, the Rust benchmark):

  latency     4 KiB ping-pong, one-way = median round trip / 2
  frames-4k   frames per second of a 4 KiB stream, 8 frames in flight
  frames-8m   the same with 8 MiB frames

each in two modes (busy: iceoryx2 polls `Subscriber.receive()`, libparallax `recv` spins with
spin -1 and with its default; waitset: iceoryx2 sleeps in a WaitSet woken by an event notifier,
libparallax `recv` with spin 0) and three placements (unpinned, both on CPU 0, CPUs 0 and 1).
Every run is a fresh pair of forked processes; repetitions interleave the libraries (A B, B A,
...) and each libparallax run is paired with the iceoryx2 run next to it: the table gives the
medians and the median of those paired ratios. CSV and markdown go to --out.

The orchestrating process imports both packages but creates nothing: the leader (forked) makes
the resources and forks the follower, so no iceoryx2 node or channel crosses a fork half-made.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import platform
import select
import shutil
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import iceoryx2 as iox2

import parallax as px

MARK = (1 << 64) - 2  # "answer when you get here": the stream's drain
STOP = (1 << 64) - 1  # "exit"
PATIENCE_S = 10.0  # a step that takes longer is a failure, not a slow figure
MIN_PAYLOAD = 16
# Prefix of every file this benchmark's iceoryx2 nodes create, the same as the Rust benchmark's:
# the cleanup removes exactly these, before and after, and never another program's.
FILE_PREFIX = "iox2pxb_"
LOCK_PATH = "/tmp/px-bench-iceoryx2.lock"

MEASURES = {
    "latency": ("latency", 4096, "One-way latency, 4 KiB frames (ping-pong between two "
                "processes: median round trip / 2; lower is better, so a ratio above 1 means "
                "libparallax is slower)"),
    "frames-4k": ("stream", 4096, "Frames per second, 4 KiB frames (consumer reads the first "
                  "and the last byte of each frame; higher is better, so a ratio above 1 means "
                  "libparallax is faster)"),
    "frames-8m": ("stream", 8 << 20, "Frames per second, 8 MiB frames (consumer reads the first "
                  "and the last byte of each frame; higher is better, so a ratio above 1 means "
                  "libparallax is faster)"),
}
# The libraries compared in each mode, libparallax settings first (their spin for recv).
LIBS = {
    "busy": ["parallax-spin", "parallax-default", "iceoryx2"],
    "waitset": ["parallax-blocking", "iceoryx2"],
}
SPIN = {"parallax-spin": None, "parallax-blocking": 0}  # absent: the library's default
LABEL = {
    "parallax-spin": "parallax (spin -1)",
    "parallax-default": "parallax (default spin)",
    "parallax-blocking": "parallax (spin 0)",
    "iceoryx2": "iceoryx2",
}
PLACEMENTS = {"unpinned": (-1, -1), "same": (0, 0), "cross": (0, 1)}
PLACEMENT_LABEL = {"unpinned": "unpinned", "same": "same core (0)", "cross": "cross-core (0, 1)"}
MODE_LABEL = {"busy": "busy-poll", "waitset": "WaitSet / spin 0"}


@dataclass
class Case:
    kind: str  # latency | stream
    mode: str  # busy | waitset
    lib: str
    payload: int
    cpus: tuple[int, int]  # leader, follower; -1 = unpinned
    seconds: float
    slots: int
    name: str  # unique per run: iceoryx2's service names derive from it


class Failure(Exception):
    """A run that could not measure (says why)."""


# ---- frames, placement ---------------------------------------------------------------------------
def seq_bytes(seq: int) -> bytes:
    return seq.to_bytes(8, "little")


def check_frame(seq: int, last: int) -> int:
    if last != seq & 0xFF:
        raise Failure(f"frame {seq}: its last byte is {last}, not {seq & 0xFF}")
    return seq


def pin_to(cpu: int) -> None:
    os.sched_setaffinity(0, range(os.cpu_count() or 1) if cpu < 0 else {cpu})


_libc = ctypes.CDLL(None, use_errno=True)


class CpuTally:
    """Where a process ran: every 16th message it notes its CPU, so that an unpinned result can
    say whether the scheduler kept both processes on one core or spread them over two."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.calls = 0

    def note(self) -> None:
        self.calls += 1
        if self.calls % 16 == 1:
            cpu = _libc.sched_getcpu()  # os has no sched_getcpu
            self.counts[cpu] = self.counts.get(cpu, 0) + 1

    def overlap(self, other: dict[int, int]) -> float:
        a, b = sum(self.counts.values()), sum(other.values())
        if not a or not b:
            return -1.0
        cpus = set(self.counts) | set(other)
        return sum(min(self.counts.get(c, 0) / a, other.get(c, 0) / b) for c in cpus)


# ---- libparallax ---------------------------------------------------------------------------------
class PxLink:
    """A channel end and this side's pool: loan -> write in place -> into_buffer -> send; recv
    gives a read-only view of the peer's memory, released at once (its slot goes back)."""

    def __init__(self, case: Case, channel: px.Channel, slots: int, out_len: int) -> None:
        if case.lib in SPIN:
            channel.set_spin(SPIN[case.lib])
        self.channel = channel
        self.pool = px.MemoryPool(px.SharedMemorySegment("bench_iceoryx2", slots * out_len),
                                  out_len)
        self.out_len = out_len

    def send(self, seq: int) -> None:
        slot = self.pool.loan(timeout=PATIENCE_S)
        with memoryview(slot) as view:  # the view must be gone before into_buffer
            view[:8] = seq_bytes(seq)
            view[self.out_len - 1] = seq & 0xFF
        buf = slot.into_buffer(self.out_len)
        self.channel.send(buf)
        buf.release()  # the peer's reference keeps the slot out

    def recv(self) -> int | None:
        try:
            buf = self.channel.recv(timeout=PATIENCE_S)
        except px.ChannelClosed:
            return None
        with memoryview(buf) as view:
            seq = int.from_bytes(view[:8], "little")
            last = view[-1]
        buf.release()
        return check_frame(seq, last)

    def close(self) -> None:
        self.channel.close()
        self.pool.close()


# ---- iceoryx2 ------------------------------------------------------------------------------------
def iox_node() -> iox2.Node:
    config = iox2.config.default()
    config.global_cfg.prefix = iox2.FileName.new(FILE_PREFIX)
    return iox2.NodeBuilder.new().config(config).create(iox2.ServiceType.Ipc)


class IoxLink:
    """One publish-subscribe service of byte slices per direction ("a2b": leader to follower),
    plus in WaitSet mode an event service per direction: the producer notifies after each send,
    the consumer sleeps in a WaitSet on its listener. Streams never drop a frame (no safe
    overflow; a full subscriber buffer makes the publisher retry until there is room)."""

    def __init__(self, case: Case, leader: bool) -> None:
        self.node = iox_node()
        self.out_len = case.payload if leader or case.kind == "latency" else MIN_PAYLOAD
        out_dir, in_dir = ("a2b", "b2a") if leader else ("b2a", "a2b")
        deadline = time.monotonic() + PATIENCE_S
        self.services = {d: self._pubsub(case, d, leader, deadline) for d in (out_dir, in_dir)}
        self.events = {}
        if case.mode == "waitset":
            self.events = {d: self._event(case, d, leader, deadline) for d in (out_dir, in_dir)}
        self.publisher = (
            self.services[out_dir].publisher_builder()
            .initial_max_slice_len(self.out_len)
            .max_loaned_samples(1)
            .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        self.subscriber = self.services[in_dir].subscriber_builder().buffer_size(case.slots).create()
        self.notifier = self.listener = self.waitset = self.guard = None
        if self.events:
            self.notifier = self.events[out_dir].notifier_builder().create()
            self.listener = self.events[in_dir].listener_builder().create()
            self.waitset = iox2.WaitSetBuilder.new().create(iox2.ServiceType.Ipc)
            self.guard = self.waitset.attach_notification(self.listener)
        self.patience = iox2.Duration.from_secs_f64(PATIENCE_S)
        self.dirs = (out_dir, in_dir)
        # The peer's frames: the case's size, or the follower's small acknowledgements.
        self.in_len = case.payload if not leader or case.kind == "latency" else MIN_PAYLOAD
        # Frame access the cheapest way we found from Python (a memoryview over a ctypes array
        # of the frame's size to write, two ctypes loads to read: ~1 us less per frame than
        # memmove, and than Slice.as_memory_view()), so that iceoryx2 is not measured slower
        # than it can be; libparallax's frames are memoryviews through the buffer protocol.
        self.out_frame = ctypes.c_uint8 * self.out_len

    def _pubsub(self, case: Case, d: str, leader: bool, deadline: float):
        builder = (self.node.service_builder(iox2.ServiceName.new(f"px-bench/{case.name}/{d}"))
                   .publish_subscribe(iox2.Slice[ctypes.c_uint8]))
        if leader:
            return (builder.max_publishers(1).max_subscribers(1).max_nodes(2).history_size(0)
                    .subscriber_max_buffer_size(case.slots).subscriber_max_borrowed_samples(1)
                    .enable_safe_overflow(False).create())
        return _retry_open(builder.open, deadline)

    def _event(self, case: Case, d: str, leader: bool, deadline: float):
        builder = self.node.service_builder(
            iox2.ServiceName.new(f"px-bench/{case.name}/{d}")).event()
        if leader:
            return builder.max_notifiers(1).max_listeners(1).max_nodes(2).create()
        return _retry_open(builder.open, deadline)

    def wait_for_peer(self) -> None:
        """A sample sent before its subscriber exists is not delivered (no history)."""
        out_dir, in_dir = self.dirs
        deadline = time.monotonic() + PATIENCE_S
        while not (self.services[out_dir].dynamic_config.number_of_subscribers >= 1
                   and self.services[in_dir].dynamic_config.number_of_publishers >= 1
                   and (not self.events
                        or (self.events[out_dir].dynamic_config.number_of_listeners >= 1
                            and self.events[in_dir].dynamic_config.number_of_notifiers >= 1))):
            if time.monotonic() > deadline:
                raise Failure("the follower's ports did not appear")
            time.sleep(0.0002)

    def send(self, seq: int) -> None:
        sample = self.publisher.loan_slice_uninit(self.out_len)
        with memoryview(self.out_frame.from_address(sample.payload_ptr)).cast("B") as view:
            view[:8] = seq_bytes(seq)
            view[self.out_len - 1] = seq & 0xFF
        sample.assume_init().send()
        if self.notifier is not None:
            self.notifier.notify()

    def recv(self) -> int | None:
        deadline = time.monotonic() + PATIENCE_S
        polls = 0
        while True:
            sample = self.subscriber.receive()
            if sample is not None:
                ptr = sample.payload_ptr
                seq = ctypes.c_uint64.from_address(ptr).value
                last = ctypes.c_uint8.from_address(ptr + self.in_len - 1).value
                sample.delete()  # returns it now, as parallax's buf.release()
                return check_frame(seq, last)
            if self.waitset is not None:
                # Wakes when the listener has notifications; drain them (else the WaitSet wakes
                # again at once), then receive.
                _, result = self.waitset.wait_and_process_with_timeout(self.patience)
                if result in (iox2.WaitSetRunResult.Interrupt,
                              iox2.WaitSetRunResult.TerminationRequest):
                    raise Failure("interrupted")
                self.listener.try_wait()
                polls += 1024
            else:
                polls += 1
            if polls % 1024 == 0 and time.monotonic() > deadline:
                raise Failure(f"no frame within {PATIENCE_S} s")

    def close(self) -> None:
        # Ports first, then the services and the node that own them (which have no delete()
        # and go with their last reference): the process ends with os._exit, which runs no
        # destructor, so nothing may be left to the garbage collector.
        for obj in (self.guard, self.waitset, self.listener, self.notifier, self.subscriber,
                    self.publisher):
            if obj is not None:
                obj.delete()
        self.events.clear()
        self.services.clear()
        self.node = None


def _retry_open(open_fn, deadline: float):
    """The follower starts before its leader has created the services (the fork comes first,
    so that no iceoryx2 object is copied into the child)."""
    while True:
        try:
            return open_fn()
        except Exception as e:  # noqa: BLE001 - iceoryx2 raises a type per failure
            if time.monotonic() > deadline:
                raise Failure(f"opening the service: {e!r}") from e
            time.sleep(0.001)


# ---- the loops (the same for both libraries) -----------------------------------------------------
def expect(link, seq: int) -> None:
    got = link.recv()
    if got != seq:
        raise Failure(f"expected frame {seq} back, got {got}")


def time_round_trips(case: Case, link, tally: CpuTally) -> dict:
    seq = 0
    warm_end = time.perf_counter() + 0.05  # page faults, first mappings, caches
    while time.perf_counter() < warm_end and seq < 2000:
        link.send(seq)
        expect(link, seq)
        tally.note()
        seq += 1
    rtts = []
    clock = time.perf_counter_ns
    start = t0 = clock()
    deadline = start + int(case.seconds * 1e9)
    while t0 < deadline:
        link.send(seq)
        expect(link, seq)
        tally.note()
        t1 = clock()
        rtts.append(t1 - t0)
        t0 = t1
        seq += 1
    rtts.sort()
    at = lambda q: rtts[int(q * (len(rtts) - 1))] / 2  # noqa: E731
    return {"value": at(0.5), "p99": at(0.99), "count": len(rtts), "elapsed": (t0 - start) / 1e9}


def stream(case: Case, link, tally: CpuTally) -> dict:
    seq = 0
    warm_end = time.perf_counter() + case.seconds * 0.1
    while time.perf_counter() < warm_end or seq < 2 * case.slots:
        link.send(seq)
        tally.note()
        seq += 1
    link.send(MARK)
    expect(link, MARK)
    start = time.perf_counter()
    deadline = start + case.seconds
    frames = 0
    while True:
        link.send(seq)
        tally.note()
        seq += 1
        frames += 1
        if frames % 8 == 0 and time.perf_counter() >= deadline:
            break
    link.send(MARK)
    expect(link, MARK)
    elapsed = time.perf_counter() - start
    return {"value": frames / elapsed, "p99": 0.0, "count": frames, "elapsed": elapsed}


def follow(case: Case, link, tally: CpuTally) -> None:
    while True:
        seq = link.recv()
        if seq is None or seq == STOP:
            return
        tally.note()
        if case.kind == "latency" or seq == MARK:
            link.send(seq)


# ---- the two processes of a run ------------------------------------------------------------------
def run_follower(case: Case, make_link, report_fd: int) -> None:
    """In the forked follower: never returns."""
    code = 1
    try:
        pin_to(case.cpus[1])
        tally = CpuTally()
        link = make_link()
        try:
            follow(case, link, tally)
        finally:
            link.close()
        os.write(report_fd, json.dumps(tally.counts).encode())
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported, then the process ends
        print(f"bench_iceoryx2 follower ({case.lib}): {e!r}", file=sys.stderr)
    finally:
        os._exit(code)


def lead(case: Case) -> dict:
    """In the forked leader: makes the resources, forks the follower, measures."""
    pin_to(case.cpus[0])
    r, w = os.pipe()
    slots_out = case.slots if case.kind == "stream" else 4
    reply_len = case.payload if case.kind == "latency" else MIN_PAYLOAD
    if case.lib == "iceoryx2":
        pid = os.fork()
        if pid == 0:
            os.close(r)
            run_follower(case, lambda: IoxLink(case, leader=False), w)
        link = IoxLink(case, leader=True)
        link.wait_for_peer()
    else:
        ours, theirs = px.Channel.pair()  # made for fork: each side closes the other end
        pid = os.fork()
        if pid == 0:
            os.close(r)
            ours.close()
            run_follower(case, lambda: PxLink(case, theirs, 4, reply_len), w)
        theirs.close()
        link = PxLink(case, ours, slots_out, case.payload)
    os.close(w)
    tally = CpuTally()
    try:
        result = (time_round_trips if case.kind == "latency" else stream)(case, link, tally)
        link.send(STOP)
    finally:
        follower_counts = _reap(pid, r)
        link.close()
    result["overlap"] = tally.overlap({int(k): v for k, v in follower_counts.items()})
    return result


def _reap(pid: int, report_fd: int) -> dict:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise Failure("the follower did not exit; killed")
        time.sleep(0.001)
    data = os.read(report_fd, 1 << 16)
    os.close(report_fd)
    if os.waitstatus_to_exitcode(status) != 0:
        raise Failure("the follower failed; see its stderr")
    return json.loads(data or b"{}")


def run_case(case: Case) -> dict:
    """Forks the leader (in its own process group, so that a stuck case is killed with its
    follower) and returns its result or raises Failure."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setpgid(0, 0)
        code = 0
        try:
            out = {"ok": lead(case)}
        except BaseException as e:  # noqa: BLE001 - the orchestrator reports it
            out = {"error": str(e) or repr(e)}
        try:
            os.write(w, json.dumps(out).encode())
        except OSError:
            code = 1
        os._exit(code)
    os.close(w)
    deadline = time.monotonic() + 30 + 4 * case.seconds
    chunks = []
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            stuck = describe_group(pid)
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            raise Failure(f"timed out; killed ({stuck})")
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    if not chunks:
        raise Failure("the leader died without a result")
    out = json.loads(b"".join(chunks))
    if "error" in out:
        raise Failure(out["error"])
    return out["ok"]


def describe_group(pgid: int) -> str:
    """Where the processes of a stuck case were ("pid state wchan" of each member of the group
    whose id is the leader's pid), so that a hang says which side waited on what."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            wchan = (proc / "wchan").read_text().strip()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        role = "leader" if int(proc.name) == pgid else "follower"
        found.append(f"{role} {proc.name} {fields[0]} {wchan}")
    return "; ".join(found) or "no process of the case was left"


# ---- cleanup -------------------------------------------------------------------------------------
def remove_leftovers() -> int:
    """Removes what this benchmark's iceoryx2 nodes left in /dev/shm and /tmp/iceoryx2."""
    removed = 0
    for p in Path("/dev/shm").glob(FILE_PREFIX + "*"):
        p.unlink(missing_ok=True)
        removed += 1
    root = Path("/tmp/iceoryx2")
    if root.is_dir():
        for p in sorted(root.rglob(FILE_PREFIX + "*"), key=lambda q: -len(q.parts)):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
    return removed


# ---- report --------------------------------------------------------------------------------------
def fmt_ns(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.0f} ns"
    return f"{ns / 1e3:.2f} us" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def fmt_rate(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    return f"{v / 1e3:.1f} k/s" if v >= 1e3 else f"{v:.0f} /s"


def fmt_ratio(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}x"
    return f"{x:.2f}x" if x >= 0.1 else f"1/{1 / x:.0f}x"


def placed(overlaps: list[float]) -> str:
    o = [x for x in overlaps if x >= 0]
    if not o:
        return "?"
    m = statistics.median(o)
    return "1 core" if m >= 0.8 else "2 cores" if m <= 0.2 else "mixed"


@dataclass
class Record:
    measure: str
    mode: str
    placement: str
    rep: int
    lib: str
    result: dict | None = None
    error: str = ""


@dataclass
class Row:
    mode: str
    placement: str
    lib: str
    ours: list[dict] = field(default_factory=list)
    theirs: list[dict] = field(default_factory=list)
    paired: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def med(rs: list[dict], key: str) -> float | None:
        return statistics.median(r[key] for r in rs) if rs else None


def rows_of(records: list[Record], measure: str, modes, places) -> list[Row]:
    rows = []
    for mode in modes:
        for place in places:
            cell = [r for r in records
                    if r.measure == measure and r.mode == mode and r.placement == place]
            theirs = [r for r in cell if r.lib == "iceoryx2"]
            for lib in LIBS[mode][:-1]:
                ours = [r for r in cell if r.lib == lib]
                row = Row(mode, place, lib, [r.result for r in ours if r.result],
                          [r.result for r in theirs if r.result])
                by_rep = {t.rep: t.result for t in theirs if t.result}
                row.paired = [o.result["value"] / by_rep[o.rep]["value"]
                              for o in ours if o.result and o.rep in by_rep]
                for r in ours + theirs:
                    if r.error and f"{LABEL[r.lib]}: {r.error}" not in row.errors:
                        row.errors.append(f"{LABEL[r.lib]}: {r.error}")
                rows.append(row)
    return rows


def table(measure: str, rows: list[Row], reps: int) -> str:
    kind, _, title = MEASURES[measure]
    latency = kind == "latency"
    fmt = fmt_ns if latency else fmt_rate
    p = " (p99)" if latency else ""
    out = [f"#### {title}\n",
           f"Medians of {reps} interleaved repetitions; *paired* = median over repetitions of "
           "(libparallax / iceoryx2 of the same repetition), with its range.\n",
           f"| mode | placement | libparallax setting | libparallax{p} | iceoryx2{p} | "
           "ratio of medians | paired ratio [min - max] |",
           "|---|---|---|---:|---:|---:|---:|"]
    notes: list[str] = []

    def cell(rs: list[dict]) -> str:
        v = Row.med(rs, "value")
        if v is None:
            return "n/a"
        s = fmt(v)
        if latency:
            s += f" ({fmt_ns(Row.med(rs, 'p99'))})"
        return s

    for r in rows:
        where = lambda rs: f" [{placed([x['overlap'] for x in rs])}]" if (  # noqa: E731
            r.placement == "unpinned" and rs) else ""
        ours, theirs = Row.med(r.ours, "value"), Row.med(r.theirs, "value")
        ratio = fmt_ratio(ours / theirs) if ours and theirs else "-"
        paired = "-"
        if r.paired:
            paired = (f"**{fmt_ratio(statistics.median(r.paired))}** "
                      f"[{fmt_ratio(min(r.paired))} - {fmt_ratio(max(r.paired))}]")
        marks = ""
        for e in r.errors:
            if e not in notes:
                notes.append(e)
            marks += f"[{notes.index(e) + 1}]"
        out.append(f"| {MODE_LABEL[r.mode]} | {PLACEMENT_LABEL[r.placement]} | {LABEL[r.lib]} | "
                   f"{cell(r.ours)}{where(r.ours)} | {cell(r.theirs)}{where(r.theirs)} | "
                   f"{ratio} | {paired}{marks} |")
    out += [f"\n[{i + 1}] {n}" for i, n in enumerate(notes)]
    return "\n".join(out) + "\n\n"


def csv_outputs(records: list[Record], all_rows: dict[str, list[Row]]) -> tuple[str, str]:
    runs = ["language,measure,kind,payload,mode,placement,rep,library,value,unit,p99_ns,count,"
            "elapsed_s,overlap,error"]
    for r in records:
        kind, payload, _ = MEASURES[r.measure]
        unit = "one_way_ns" if kind == "latency" else "frames_per_s"
        f = r.result or {}
        vals = [f.get(k, "") for k in ("value",)] + [unit] + [
            f.get(k, "") for k in ("p99", "count", "elapsed", "overlap")]
        err = r.error.replace(",", ";").replace("\n", " ")
        runs.append(",".join(map(str, ["python", r.measure, kind, payload, r.mode, r.placement,
                                       r.rep, r.lib, *vals, err])))
    summary = ["language,measure,mode,placement,library,median,iceoryx2_median,ratio_of_medians,"
               "paired_ratio_median,paired_ratio_min,paired_ratio_max,pairs"]
    for measure, rows in all_rows.items():
        for r in rows:
            ours, theirs = Row.med(r.ours, "value"), Row.med(r.theirs, "value")
            cols = [ours, theirs, ours / theirs if ours and theirs else None,
                    statistics.median(r.paired) if r.paired else None,
                    min(r.paired, default=None), max(r.paired, default=None)]
            summary.append(",".join(
                ["python", measure, r.mode, r.placement, r.lib]
                + ["" if c is None else repr(c) for c in cols] + [str(len(r.paired))]))
    return "\n".join(runs) + "\n", "\n".join(summary) + "\n"


def context(label: str) -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    iox_version = "unknown"
    try:
        from importlib.metadata import version
        iox_version = version("iceoryx2")
    except Exception:  # noqa: BLE001 - only a label
        pass
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}; libparallax "
            f"{px.__version__}{f' ({label})' if label else ''}; iceoryx2 {iox_version} (Python "
            f"{platform.python_version()}); load average {load}")


# ---- main ----------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions of 0.08 s")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.3, help="measuring budget of one run")
    ap.add_argument("--measures", default="latency,frames-4k,frames-8m")
    ap.add_argument("--modes", default="busy,waitset")
    ap.add_argument("--placements", default="unpinned,same,cross")
    ap.add_argument("--slots", type=int, default=8, help="frames in flight when streaming")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--label", default="", help="names what was measured (e.g. the commit)")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.seconds = 3, 0.08
    measures, modes, places = (a.measures.split(","), a.modes.split(","),
                               a.placements.split(","))
    for value, known, what in ((measures, MEASURES, "measure"), (modes, LIBS, "mode"),
                               (places, PLACEMENTS, "placement")):
        unknown = [v for v in value if v not in known]
        if unknown:
            ap.error(f"unknown {what} {unknown[0]!r} (one of {', '.join(known)})")
    if a.reps < 1 or not a.seconds > 0 or a.slots < 1:
        ap.error("--reps, --seconds and --slots must be positive")
    if "cross" in places and (os.cpu_count() or 1) < 2:
        ap.error("the cross-core placement needs 2 CPUs")

    lock = open(LOCK_PATH, "a")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"bench_iceoryx2: another iceoryx2 benchmark is running (it holds {LOCK_PATH})",
              file=sys.stderr)
        return 2
    if (n := remove_leftovers()):
        print(f"removed {n} file(s) an earlier run of this benchmark left behind")
    iox2.set_log_level(iox2.LogLevel.Error)
    ctx = context(a.label)
    print(f"bench_iceoryx2.py: {ctx}", flush=True)
    cells = [(m, md, p) for m in measures for md in modes for p in places]
    print(f"{sum(len(LIBS[c[1]]) for c in cells)} runs per repetition, {a.reps} repetitions of "
          f"{a.seconds:.2f} s (+ warm-up and process start)\n", flush=True)
    started = time.monotonic()
    records: list[Record] = []
    counter = 0
    for rep in range(a.reps):
        t = time.monotonic()
        for measure, mode, place in cells:
            libs = LIBS[mode]
            for i in range(len(libs)):
                lib = libs[(i + rep) % len(libs)]  # rotates the order with the repetition
                counter += 1
                kind, payload, _ = MEASURES[measure]
                case = Case(kind, mode, lib, payload, PLACEMENTS[place], a.seconds, a.slots,
                            f"py{os.getpid()}-{counter}")
                rec = Record(measure, mode, place, rep, lib)
                try:
                    rec.result = run_case(case)
                except Failure as e:
                    rec.error = str(e)
                    print(f"  {lib} {mode} {measure} {place}: {e}", file=sys.stderr)
                records.append(rec)
        print(f"repetition {rep + 1}/{a.reps} done in {time.monotonic() - t:.1f} s", flush=True)
    if (n := remove_leftovers()):
        print(f"removed {n} file(s) iceoryx2 left in /dev/shm and /tmp/iceoryx2")

    md = ("<!-- generated by bench/run_iceoryx2_benchmarks.sh (bench_iceoryx2.py) -->\n"
          f"### libparallax against iceoryx2 from Python\n\nMeasured on: {ctx}\n\n")
    all_rows = {m: rows_of(records, m, modes, places) for m in measures}
    for m in measures:
        md += table(m, all_rows[m], a.reps)
    md += (f"{len(records)} runs in {time.monotonic() - started:.0f} s; load average at the end "
           f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("\n" + md)
    runs_csv, summary_csv = csv_outputs(records, all_rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "iceoryx2_python_runs.csv").write_text(runs_csv)
    (out / "iceoryx2_python_summary.csv").write_text(summary_csv)
    (out / "iceoryx2_python_summary.md").write_text(md)
    print(f"results: {out}/iceoryx2_python_{{runs,summary}}.csv, {out}/iceoryx2_python_summary.md")
    failed = sum(1 for r in records if r.error)
    if failed:
        print(f"{failed} run(s) failed; their reasons are under the tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
