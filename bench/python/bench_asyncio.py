# SPDX-License-Identifier: Apache-2.0 OR MIT
"""What asyncio costs per frame: ``await ch.recv_async()`` against a blocking ``ch.recv()`` in
a thread (the baseline), from the same producer process, in the same run.

    python bench/python/bench_asyncio.py [--frames 2000] [--runs 5] [--pace-us 200]

A forked producer sends 4 KiB frames, one every --pace-us microseconds, each stamped with
CLOCK_MONOTONIC just before send (metadata.pts_ns; the clock is system-wide). The consumer
measures, per frame, receive time minus that stamp (the latency the consumer sees):

  thread     a thread blocked in ch.recv() (the library's default: 20 us spin, then sleep)
  asyncio    one event loop, ``async for buf in ch`` (recv_async: recv(0), else add_reader)
  thread+cs  a thread in ch.recv() handing each buffer to the loop by call_soon_threadsafe
             (what a user writes without recv_async), measured where the loop gets it

Modes alternate run by run; each run prints its median; the summary is the median over runs
of each mode, and asyncio minus thread (issue 15's target: <= 15 us). A second, unpaced part
sends as fast as the consumer takes frames and reports the consumer's cost per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from typing import Callable, List

import parallax as px

FRAME = 4096


def producer(ch: px.Channel, frames: int, pace_ns: int) -> None:
    pool = px.MemoryPool(px.SharedMemorySegment("bench-aio", 16 * FRAME), FRAME)
    next_at = time.monotonic_ns()
    for k in range(frames):
        if pace_ns:
            next_at += pace_ns
            while time.monotonic_ns() < next_at:  # spin: sleep() is too coarse for 200 us
                pass
        slot = pool.loan(timeout=10)
        buf = slot.into_buffer(64, px.Metadata(sequence=k, pts_ns=time.monotonic_ns()))
        ch.send(buf, timeout=10)
        buf.release()
    ch.close()


def with_producer(frames: int, pace_ns: int, consume: Callable[[px.Channel], List[int]]) -> List[int]:
    mine, theirs = px.Channel.pair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mine.close()
            producer(theirs, frames, pace_ns)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    try:
        return consume(mine)
    finally:
        os.waitpid(pid, 0)
        mine.close()


def thread_mode(ch: px.Channel) -> List[int]:
    lat: List[int] = []

    def run() -> None:
        for buf in ch:
            lat.append(time.monotonic_ns() - (buf.metadata.pts_ns or 0))
            buf.release()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return lat


def asyncio_mode(ch: px.Channel) -> List[int]:
    async def run() -> List[int]:
        lat: List[int] = []
        async for buf in ch:
            lat.append(time.monotonic_ns() - (buf.metadata.pts_ns or 0))
            buf.release()
        return lat

    return asyncio.run(run())


def thread_call_soon_mode(ch: px.Channel) -> List[int]:
    async def run() -> List[int]:
        loop = asyncio.get_running_loop()
        lat: List[int] = []
        done = loop.create_future()

        def got(buf: px.Buffer) -> None:
            lat.append(time.monotonic_ns() - (buf.metadata.pts_ns or 0))
            buf.release()

        def reader() -> None:
            for buf in ch:
                loop.call_soon_threadsafe(got, buf)
            loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=reader).start()
        await done
        return lat

    return asyncio.run(run())


MODES = {"thread": thread_mode, "asyncio": asyncio_mode, "thread+cs": thread_call_soon_mode}


def per_frame_cost(frames: int, consume: Callable[[px.Channel], List[int]]) -> float:
    t0 = time.perf_counter()
    n = len(with_producer(frames, 0, consume))
    return (time.perf_counter() - t0) / max(n, 1) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pace-us", type=float, default=200.0)
    args = ap.parse_args()
    pace_ns = int(args.pace_us * 1000)
    medians: dict[str, list[float]] = {m: [] for m in MODES}
    print(f"latency per frame, {args.frames} frames of {FRAME} B every {args.pace_us:g} us "
          f"(median of each run, us)")
    for r in range(args.runs):
        row = []
        for name, consume in MODES.items():
            lat = with_producer(args.frames, pace_ns, consume)
            assert len(lat) == args.frames, (name, len(lat))
            med = statistics.median(lat) / 1000
            medians[name].append(med)
            row.append(f"{name} {med:7.1f}")
        print(f"  run {r + 1}: " + "   ".join(row))
    summary = {m: statistics.median(v) for m, v in medians.items()}
    print("median over runs: " + ", ".join(f"{m} {v:.1f} us" for m, v in summary.items()))
    print(f"asyncio adds {summary['asyncio'] - summary['thread']:.1f} us per frame over a "
          f"blocking recv in a thread (target <= 15 us); "
          f"{summary['asyncio'] - summary['thread+cs']:.1f} us against thread+call_soon")

    costs: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(args.runs):
        for name, consume in MODES.items():
            costs[name].append(per_frame_cost(args.frames * 5, consume))
    print("unpaced (as fast as the consumer takes them), wall time per frame: " +
          ", ".join(f"{m} {statistics.median(v):.2f} us" for m, v in costs.items()))


if __name__ == "__main__":
    main()
