# SPDX-License-Identifier: Apache-2.0 OR MIT
"""One publisher, three subscriber processes, one of them killed mid-stream.

    python examples/python/streams.py [--frames 40] [--side 256]

The publisher renders each frame (a side x side uint8 image) straight into a slot of a
shared-memory pool and publishes it once: every subscriber gets a read-only view of the very
same memory, found by the stream's name alone. The stream's description (JSON here) tells the
subscribers the frames' shape. Subscriber 1 starts before the publisher exists, 2 and 3 after
it (start order does not matter); subscriber 3 is killed with SIGKILL halfway through while it
holds frames: its slots come back to the pool, and with the BLOCK policy the other two still
receive every frame. Frame k: pixel j (in C order) is (k + j) & 0xff.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np

import parallax as px

SLOTS = 16  # 3 subscribers x max_in_flight 4, plus the frame being rendered


def expected_frame(k: int, side: int) -> np.ndarray:
    ramp = np.arange(side * side, dtype=np.uint64).astype(np.uint8)
    return (ramp + np.uint8(k & 0xFF)).reshape(side, side)


def subscriber(name: str, index: int, results: mp.Queue[tuple[int, int, int, int]]) -> None:
    """Receives frames until the publisher is gone and reports what it saw."""
    frames = bad = 0
    with px.Subscriber(name, timeout=30) as sub:
        for buf in sub:  # ends once the publisher closed and everything sent was received
            shape = json.loads(sub.description)["shape"]  # in force for this very frame
            image = np.asarray(buf).reshape(shape)  # zero-copy, read-only
            if not np.array_equal(image, expected_frame(buf.metadata.sequence, shape[0])):
                bad += 1
            frames += 1
            del image
            buf.release()  # hands the slot back to the publisher's pool
        stats = sub.stats()
    results.put((index, frames, bad, stats.missed))


def wait_for_subscribers(pub: px.Publisher, n: int) -> None:
    # No library thread: the publisher admits joiners inside poll() (and publish()).
    deadline = time.monotonic() + 30
    while pub.subscriber_count < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {pub.subscriber_count} of {n} subscribers joined")
        pub.poll(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--side", type=int, default=256)
    args = ap.parse_args()
    name = f"streams-demo-{os.getpid()}"  # lives in the runtime directory
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing inherited from this one
    results = ctx.Queue()
    subs = {i: ctx.Process(target=subscriber, args=(name, i, results)) for i in (1, 2, 3)}
    subs[1].start()  # before the publisher exists: it waits for it

    pool = px.MemoryPool(px.SharedMemorySegment(name, SLOTS * args.side**2), args.side**2)
    with px.Publisher(name, slow_policy="block", max_in_flight=4, block_timeout=10) as pub:
        pub.description = json.dumps({"shape": [args.side, args.side], "dtype": "uint8"})
        subs[2].start()
        subs[3].start()
        wait_for_subscribers(pub, 3)
        killed_after = args.frames // 2
        for k in range(args.frames):
            slot = pool.loan(timeout=10)  # waits while subscribers hold every slot
            np.asarray(slot).reshape(args.side, args.side)[:] = expected_frame(k, args.side)
            buf = slot.into_buffer(metadata=px.Metadata(sequence=k, pts_ns=time.monotonic_ns()))
            pub.publish(buf)
            buf.release()  # the subscribers' references keep the slot out
            if k + 1 == killed_after:
                subs[3].kill()  # SIGKILL, holding whatever it had received
                subs[3].join()
                print(f"subscriber 3: killed with SIGKILL after frame {k}")
            time.sleep(0.005)  # a camera's pace, so the kill lands mid-stream
        stats = pub.stats()
    # Closed: the subscribers drain what was sent, then their loops end.
    for index, frames, bad, missed in sorted(results.get(timeout=60) for _ in (1, 2)):
        status = "every pixel checked" if bad == 0 else f"{bad} damaged"
        print(f"subscriber {index}: {frames}/{args.frames} frames, {missed} missed, {status}")
    for i in (1, 2):
        subs[i].join(30)
    deadline = time.monotonic() + 1
    while pool.available < pool.capacity and time.monotonic() < deadline:
        time.sleep(0.01)
    print(f"publisher: {stats.published} frames published, {stats.joined} joined, "
          f"{stats.departed} departed, {stats.dropped} dropped; "
          f"{pool.available}/{pool.capacity} slots back in the pool")


if __name__ == "__main__":
    main()
