# SPDX-License-Identifier: Apache-2.0 OR MIT
"""One asyncio event loop reading three streams, each published by its own process.

    python examples/python/asyncio_streams.py [--frames 60]

Three publisher processes ("cameras") publish frames at different paces. The consumer is one
thread running one event loop: ``async for buf in sub`` waits on each subscriber's fd through
the loop (no thread per stream), gets each frame zero-copy and read-only, and ends when that
publisher is gone. A frame of camera c, number k: every byte is (k + c) & 0xff.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from multiprocessing.synchronize import Event

import numpy as np

import parallax as px

FRAME = 64 * 1024
SLOTS = 8


def camera(name: str, index: int, frames: int, ready: Event) -> None:
    """Publishes `frames` frames at one frame per (index + 1) ms, once the consumer joined."""
    pool = px.MemoryPool(px.SharedMemorySegment(name, SLOTS * FRAME), FRAME)
    with px.Publisher(name, slow_policy="block", max_in_flight=4, block_timeout=10) as pub:
        ready.set()
        deadline = time.monotonic() + 30
        while pub.subscriber_count < 1:  # the publisher admits joiners inside poll()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: nobody subscribed")
            pub.poll(0.01)
        for k in range(frames):
            slot = pool.loan(timeout=10)
            np.asarray(slot)[:] = (k + index) & 0xFF
            with slot.into_buffer(metadata=px.Metadata(sequence=k)) as buf:
                pub.publish(buf)
            time.sleep(0.001 * (index + 1))
    # Closing the publisher ends the consumer's `async for` once it has drained the frames.


async def consume(sub: px.Subscriber, index: int) -> tuple[int, int]:
    frames = bad = 0
    async for buf in sub:  # the event loop waits on sub.fileno(); no thread
        frame = np.asarray(buf)  # the publisher's memory, read-only
        if not np.all(frame == ((buf.metadata.sequence + index) & 0xFF)):
            bad += 1
        frames += 1
        del frame
        buf.release()  # hands the slot back to the publisher's pool
    return frames, bad


async def consume_all(subs: list[px.Subscriber]) -> list[tuple[int, int]]:
    return list(await asyncio.gather(*(consume(s, i) for i, s in enumerate(subs))))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    names = [f"aio-cam{i}-{os.getpid()}" for i in range(3)]
    ctx = mp.get_context("spawn")
    cameras = []
    for i, name in enumerate(names):
        ready = ctx.Event()
        p = ctx.Process(target=camera, args=(name, i, args.frames, ready))
        p.start()
        ready.wait(30)
        cameras.append(p)
    subs = [px.Subscriber(name, timeout=30) for name in names]
    results = asyncio.run(consume_all(subs))
    for p in cameras:
        p.join(30)
    for i, (frames, bad) in enumerate(results):
        status = "every byte checked" if bad == 0 else f"{bad} damaged"
        print(f"camera {i}: {frames}/{args.frames} frames, {status}")
    print(f"one event loop, {len(subs)} streams")


if __name__ == "__main__":
    main()
