# SPDX-License-Identifier: Apache-2.0 OR MIT
"""8 MiB numpy frames from one Python process to another: parallax against what a Python
programmer would otherwise use, all measured in the same run.

    python bench/python/bench_frames.py [--runs 5] [--frame-mib 8] [--quick] [--calls]

Methods (producer = this process, consumer = a forked child; per-frame time = wall time from
the first send to the consumer's "done", divided by the frame count; medians over --runs):
  parallax        loan a slot of a shared pool, write the frame in it, into_buffer, send; the
                  consumer maps it read-only, reads it as numpy, releases it (slot comes back)
  mp.Pipe         multiprocessing.Pipe().send(ndarray): pickled, copied through the pipe
  mp.Queue        multiprocessing.Queue.put(ndarray): the same through a feeder thread
  shared_memory   a new multiprocessing.shared_memory block per frame (create, write, send its
                  name; the consumer attaches, reads, closes and unlinks it)

Two workloads:
  transport  the producer writes a frame header (sequence number) in place, the consumer
             reads it and the frame's last byte: what it costs to move a frame
  full       the producer writes every byte of the frame, the consumer sums a 1/64 stride of
             it: frame production included (the same for every method)

Also: MemoryPool.loan() + Slot.release() from Python, next to a bare method call.
--calls: only the per-call cost of the per-frame calls (loan, into_buffer, send, recv,
release) in one process, over Channel.pair() (issue 14).
Targets (issue 5): parallax >= 20x mp.Pipe and >= 2x shared_memory per frame, loan+release
<= 1.5 us.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing import resource_tracker, shared_memory

import numpy as np

import parallax as px

CTX = mp.get_context("fork")
SLOTS = 4


def produce(frame: np.ndarray, k: int, full: bool) -> None:
    if full:
        frame.fill(k & 0xFF)
    frame[:8] = np.frombuffer(np.uint64(k).tobytes(), np.uint8)


def consume(frame: np.ndarray, k: int, full: bool) -> None:
    seq = int(frame[:8].view(np.uint64)[0])
    if seq != k:
        raise SystemExit(f"frame {k}: header says {seq}")
    if full:
        frame[8::64].sum()
    else:
        frame[-1]


# --- parallax ---------------------------------------------------------------------------------
def _px_consumer(ch, other, frames, full, done):
    other.close()
    for k in range(frames):
        buf = ch.recv(timeout=30)
        consume(np.frombuffer(buf, np.uint8), k, full)
        buf.release()
    done.send(True)
    try:
        ch.recv(timeout=30)  # until the producer hangs up
    except px.ChannelClosed:
        pass


def run_parallax(frames: int, size: int, full: bool) -> float:
    pool = px.MemoryPool(px.SharedMemorySegment("bench", SLOTS * size), size)
    warm = [pool.loan() for _ in range(SLOTS)]  # fault the pool in once, as a running
    # producer would have
    for s in warm:
        np.asarray(s).fill(0)
        s.release()
    a, b = px.Channel.pair()
    done_r, done_w = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_px_consumer, args=(b, a, frames, full, done_w))
    child.start()
    b.close()
    t0 = time.perf_counter()
    for k in range(frames):
        slot = pool.loan(timeout=None)
        produce(np.asarray(slot), k, full)  # the view dies here: into_buffer may proceed
        buf = slot.into_buffer(metadata=px.Metadata(sequence=k))
        a.send(buf)
        buf.release()
    done_r.recv()
    elapsed = time.perf_counter() - t0
    a.close()
    child.join()
    return elapsed / frames


# --- multiprocessing.Pipe / Queue -------------------------------------------------------------
def _pipe_consumer(conn, frames, full, done):
    for k in range(frames):
        consume(conn.recv(), k, full)
    done.send(True)


def run_pipe(frames: int, size: int, full: bool) -> float:
    r, w = CTX.Pipe(duplex=False)
    done_r, done_w = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_pipe_consumer, args=(r, frames, full, done_w))
    child.start()
    frame = np.zeros(size, np.uint8)
    t0 = time.perf_counter()
    for k in range(frames):
        produce(frame, k, full)
        w.send(frame)
    done_r.recv()
    elapsed = time.perf_counter() - t0
    child.join()
    return elapsed / frames


def _queue_consumer(q, frames, full, done):
    for k in range(frames):
        consume(q.get(), k, full)
    done.send(True)


def run_queue(frames: int, size: int, full: bool) -> float:
    q = CTX.Queue(maxsize=SLOTS)
    done_r, done_w = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_queue_consumer, args=(q, frames, full, done_w))
    child.start()
    t0 = time.perf_counter()
    for k in range(frames):
        # A new array per frame: the queue pickles it later, in its feeder thread, so a
        # reused array could change under it.
        frame = np.empty(size, np.uint8)
        produce(frame, k, full)
        q.put(frame)
    done_r.recv()
    elapsed = time.perf_counter() - t0
    child.join()
    return elapsed / frames


# --- multiprocessing.shared_memory, one block per frame ---------------------------------------
def _shm_consumer(conn, frames, full, done):
    # The producer does the resource-tracker bookkeeping (register, unregister); this process
    # stays out of it, as track=False does on Python >= 3.13 (3.11 registers on attach, and
    # messages from two processes can reach the tracker out of order: false "leaked" warnings).
    resource_tracker.register = resource_tracker.unregister = lambda *args: None
    for k in range(frames):
        shm = shared_memory.SharedMemory(name=conn.recv())
        frame = np.ndarray((shm.size,), np.uint8, shm.buf)
        consume(frame, k, full)
        del frame
        shm.close()
        shm.unlink()
    done.send(True)


def run_shared_memory(frames: int, size: int, full: bool) -> float:
    r, w = CTX.Pipe(duplex=False)
    done_r, done_w = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_shm_consumer, args=(r, frames, full, done_w))
    child.start()
    t0 = time.perf_counter()
    for k in range(frames):
        shm = shared_memory.SharedMemory(create=True, size=size)
        resource_tracker.unregister(shm._name, "shared_memory")  # the consumer unlinks it
        frame = np.ndarray((size,), np.uint8, shm.buf)
        produce(frame, k, full)
        del frame
        w.send(shm.name)
        shm.close()  # the consumer unlinks it
    done_r.recv()
    elapsed = time.perf_counter() - t0
    child.join()
    return elapsed / frames


# --- loan + release ---------------------------------------------------------------------------
def loan_release_ns(n: int) -> tuple[float, float]:
    pool = px.MemoryPool(px.HeapSegment(16 << 20), 1 << 20)
    loan = pool.loan
    t0 = time.perf_counter_ns()
    for _ in range(n):
        loan().release()
    per_op = (time.perf_counter_ns() - t0) / n
    slot = pool.loan()
    index = type(slot).index.fget  # a bare call through the same binding, for scale
    t0 = time.perf_counter_ns()
    for _ in range(n):
        index(slot)
    floor = (time.perf_counter_ns() - t0) / n
    slot.release()
    return per_op, floor


# --- per-call costs (--calls) -----------------------------------------------------------------
def per_call_ns(n: int) -> dict[str, float]:
    """The binding's per-frame calls in one process, over a channel pair (issue 14): the time
    of each, in ns. Timed in batches so that setup (filling the ring) stays out of a figure."""
    pool = px.MemoryPool(px.SharedMemorySegment("bench-calls", 64 * 4096), 4096)
    a, b = px.Channel.pair()
    loan, send, recv = pool.loan, a.send, b.recv
    out = {}
    t0 = time.perf_counter_ns()
    for _ in range(n):
        buf = loan().into_buffer(64)
        send(buf)
        buf.release()
        recv(0).release()
    out["frame: loan, into_buffer, send, release, recv(0), release"] = (
        time.perf_counter_ns() - t0) / n
    batch, sent = 32, pool.loan().into_buffer(64)
    times = {"send(buffer)": 0, "recv(0), a buffer ready": 0, "Buffer.release()": 0}
    for _ in range(n // batch):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            send(sent)
        t1 = time.perf_counter_ns()
        got = [recv(0) for _ in range(batch)]
        t2 = time.perf_counter_ns()
        for g in got:
            g.release()
        t3 = time.perf_counter_ns()
        times["send(buffer)"] += t1 - t0
        times["recv(0), a buffer ready"] += t2 - t1
        times["Buffer.release()"] += t3 - t2
        del got
    sent.release()
    out.update({k: v / (n // batch * batch) for k, v in times.items()})
    m = max(1, n // 20)
    t0 = time.perf_counter_ns()
    for _ in range(m):
        try:
            recv(0)
        except px.WouldBlock:
            pass
    out["recv(0), nothing ready: WouldBlock"] = (time.perf_counter_ns() - t0) / m
    a.close()
    b.close()
    pool.close()
    return out


def print_per_call(runs: int, n: int) -> None:
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        for k, v in per_call_ns(n).items():
            samples.setdefault(k, []).append(v)
    print(f"parallax {px.__version__}, Python {sys.version.split()[0]}: per call, median of "
          f"{runs} runs of {n}")
    for k, v in samples.items():
        print(f"  {k:<58} {statistics.median(v):8.0f} ns")


def median_of(runs: int, fn, *args) -> float:
    fn(max(2, args[0] // 10), *args[1:])  # warm-up (imports, page cache, child start paths)
    return statistics.median(fn(*args) for _ in range(runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frame-mib", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="fewer frames (a smoke run)")
    ap.add_argument("--calls", action="store_true",
                    help="only the per-call cost of the binding's per-frame calls, one process")
    args = ap.parse_args()
    size = args.frame_mib << 20
    scale = 0.2 if args.quick else 1.0
    n = lambda count: max(3, int(count * scale))  # noqa: E731
    if args.calls:
        print_per_call(args.runs, n(200_000))
        return 0

    print(f"parallax {px.__version__}, Python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"{args.frame_mib} MiB frames, producer -> forked consumer; per-frame wall time, "
          f"median of {args.runs} runs")
    ok = True
    for workload, full in (("transport", False), ("full", True)):
        res = {
            "parallax": median_of(args.runs, run_parallax, n(400 if not full else 60), size, full),
            "mp.Pipe": median_of(args.runs, run_pipe, n(30), size, full),
            "mp.Queue": median_of(args.runs, run_queue, n(30), size, full),
            "shared_memory": median_of(args.runs, run_shared_memory, n(200 if not full else 40),
                                       size, full),
        }
        print(f"\n[{workload}]")
        for name, sec in res.items():
            ratio = "" if name == "parallax" else f"   parallax is {sec / res['parallax']:7.1f}x faster"
            rate = f"{1 / sec:9.0f} frames/s" if not full else f"{size / sec / 1e9:6.2f} GB/s written"
            print(f"  {name:<14} {sec * 1e6:10.1f} us/frame {rate}{ratio}")
        if workload == "transport":
            pipe_x = res["mp.Pipe"] / res["parallax"]
            shm_x = res["shared_memory"] / res["parallax"]
            met = pipe_x >= 20 and shm_x >= 2
            ok &= met
            print(f"  targets: >= 20x mp.Pipe ({pipe_x:.1f}x), >= 2x shared_memory ({shm_x:.1f}x): "
                  f"{'met' if met else 'NOT met'}")

    lr = []
    floors = []
    for _ in range(args.runs):
        a, b = loan_release_ns(n(200_000))
        lr.append(a)
        floors.append(b)
    per_op, floor = statistics.median(lr), statistics.median(floors)
    met = per_op <= 1500
    ok &= met
    print(f"\n[loan + release from Python]\n  pool.loan().release() {per_op:8.0f} ns"
          f"   (a bare binding call: {floor:.0f} ns)   target <= 1500 ns: {'met' if met else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
