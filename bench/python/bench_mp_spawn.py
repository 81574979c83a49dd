# SPDX-License-Identifier: Apache-2.0 OR MIT
"""A multiprocessing child that receives a Channel.pair() end and 8 MiB frames: its frame rate
under ``spawn`` and ``forkserver`` (the end crosses by pickling, parallax._reduction) against
``fork`` (the end is inherited), in the same run.

    python bench/python/bench_mp_spawn.py [--frames 2000] [--runs 5]

The parent loans 8 MiB slots of a 4-slot shared-memory pool, writes the first and last 4 KiB
of each (the frame number), and sends it; the child checks those bytes and releases the frame
(its slot goes back to the parent's pool). The child times from its first frame to its last
(the steady rate); the parent also times from Process.start() to the child's first frame
(start-up: interpreter, imports, handshake). Each start method runs --runs times, interleaved;
the summary is the median of each figure and spawn's rate as a share of fork's (issue 15's
target: >= 50%).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection

import numpy as np

import parallax as px

FRAME = 8 << 20
SLOTS = 4
METHODS = ("fork", "spawn", "forkserver")


def consumer(ch: px.Channel, report: Connection, other: px.Channel | None) -> None:
    if other is not None:  # fork: the child inherited the parent's end too; it must not
        other.close()      # keep it open, or it would never see the parent close it
    first = last = 0.0
    frames = bad = 0
    for buf in ch:  # until the parent closes its end
        now = time.monotonic()
        if frames == 0:
            first = now
            report.send(now)  # the parent measures start-up with it
        arr = np.asarray(buf)
        k = buf.metadata.sequence & 0xFF
        bad += int(arr[0] != k or arr[-1] != k)
        del arr
        buf.release()
        frames += 1
        last = now
    report.send((frames, bad, last - first))


def run_once(method: str, frames: int) -> tuple[float, float]:
    ctx = mp.get_context(method)
    pool = px.MemoryPool(px.SharedMemorySegment("bench-mp", SLOTS * FRAME), FRAME)
    mine, theirs = px.Channel.pair()
    report_r, report_w = ctx.Pipe(duplex=False)
    t_start = time.monotonic()
    other = mine if method == "fork" else None  # only fork copies it into the child
    child = ctx.Process(target=consumer, args=(theirs, report_w, other))
    child.start()
    report_w.close()
    if not theirs.closed:  # fork: inherited, not moved; this process closes its copy
        theirs.close()
    for k in range(frames):
        slot = pool.loan(timeout=30)
        arr = np.asarray(slot)
        arr[:4096] = k & 0xFF
        arr[-4096:] = k & 0xFF
        del arr
        with slot.into_buffer(metadata=px.Metadata(sequence=k)) as buf:
            mine.send(buf, timeout=30)
    mine.close()
    first_at = report_r.recv()
    got, bad, span = report_r.recv()
    child.join(30)
    assert child.exitcode == 0 and got == frames and bad == 0, (method, got, bad)
    pool.close()
    return (frames - 1) / span, first_at - t_start


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    startups: dict[str, list[float]] = {m: [] for m in METHODS}
    print(f"{args.frames} frames of {FRAME >> 20} MiB through a {SLOTS}-slot pool to a "
          "multiprocessing child")
    for r in range(args.runs):
        row = []
        for method in METHODS:
            rate, startup = run_once(method, args.frames)
            rates[method].append(rate)
            startups[method].append(startup)
            row.append(f"{method} {rate:8.0f} frames/s (start-up {startup * 1e3:5.0f} ms)")
        print(f"  run {r + 1}: " + "  ".join(row), flush=True)
    med = {m: statistics.median(v) for m, v in rates.items()}
    up = {m: statistics.median(v) for m, v in startups.items()}
    for m in METHODS:
        print(f"median {m:10s}: {med[m]:8.0f} frames/s ({med[m] * FRAME / 2**30:6.1f} GiB/s "
              f"zero-copy), start-up {up[m] * 1e3:.0f} ms")
    for m in ("spawn", "forkserver"):
        print(f"{m} reaches {100 * med[m] / med['fork']:.0f}% of fork's frame rate "
              "(target >= 50%)")


if __name__ == "__main__":
    main()
