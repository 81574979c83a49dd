# SPDX-License-Identifier: Apache-2.0 OR MIT
"""A producer of typed numpy frames: each frame is written in place into a pool slot as a
numpy array (MemoryPool.loan_array) and published with its format, so every subscriber sees
it as an array of the right shape and dtype, zero-copy (np.asarray or np.from_dlpack).

    python examples/python/typed_producer.py                  # demo: producer + a reader
    python examples/python/typed_producer.py produce --name cam0 --index 0 --frames 100
    python examples/python/typed_producer.py read --name cam0

Frame k of the producer with --index c holds (k + c) & 0xff in every element (the pattern
examples/python/asyncio_streams.py checks), with metadata sequence k. Stream names are
configurable (--name): a name without '/' lives in the runtime dir ($PARALLAX_RUNTIME_DIR...).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np

import parallax as px

SLOTS = 8


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def produce(name: str, index: int, frames: int, shape: tuple[int, ...], dtype: str,
            subscribers: int) -> None:
    """Publishes `frames` typed frames once `subscribers` subscribers joined (BLOCK policy, so
    none is dropped); then closes the stream, which ends the readers."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    pool = px.MemoryPool(px.SharedMemorySegment(name.replace("/", "_"), SLOTS * nbytes), nbytes)
    with px.Publisher(name, slow_policy="block", max_in_flight=4, block_timeout=10) as pub:
        pub.description = f"typed frames {dtype} {shape}"
        deadline = time.monotonic() + 30
        while pub.subscriber_count < subscribers:  # joins are admitted inside poll()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {subscribers} subscriber(s) never came")
            pub.poll(0.01)
        for k in range(frames):
            frame = pool.loan_array(shape, dtype, timeout=10)
            frame.array[...] = (k + index) & 0xFF  # written once, in place
            with frame.into_buffer(px.Metadata(sequence=k, pts_ns=time.monotonic_ns())) as buf:
                pub.publish(buf)
    print(f"producer {name}: published {frames} frames of {dtype} {shape}", flush=True)


def read(name: str, index: int) -> int:
    """Reads the stream until its producer closes it; returns how many frames were checked."""
    checked = 0
    with px.Subscriber(name, timeout=30) as sub:
        print(f"reader {name}: {sub.description}", flush=True)
        for buf in sub:  # ends when the producer is gone and every frame was read
            arr = np.asarray(buf)  # the producer's memory, typed, read-only
            assert buf.format is not None and arr.shape == buf.format.shape
            assert not arr.flags.writeable
            if np.all(arr == (buf.metadata.sequence + index) & 0xFF):
                checked += 1
            del arr
            buf.release()
    print(f"reader {name}: {checked} frames checked", flush=True)
    return checked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", choices=("demo", "produce", "read"), default="demo")
    ap.add_argument("--name", default=f"typed-frames-{os.getpid()}")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--shape", type=parse_shape, default=(480, 640, 3))
    ap.add_argument("--dtype", default="uint8")
    ap.add_argument("--subscribers", type=int, default=1)
    args = ap.parse_args()
    if args.mode == "produce":
        produce(args.name, args.index, args.frames, args.shape, args.dtype, args.subscribers)
        return
    if args.mode == "read":
        read(args.name, args.index)
        return
    ctx = mp.get_context("spawn")
    producer = ctx.Process(target=produce, args=(args.name, args.index, args.frames, args.shape,
                                                 args.dtype, 1))
    producer.start()
    checked = read(args.name, args.index)
    producer.join(60)
    sys.exit(0 if checked == args.frames and producer.exitcode == 0 else 1)


if __name__ == "__main__":
    main()
