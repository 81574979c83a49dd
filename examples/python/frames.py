# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Numpy frames across processes, zero-copy, with parallax.

    python examples/python/frames.py                      # demo: producer + forked consumer
    python examples/python/frames.py produce /tmp/px.sock # two terminals; the consumer also
    python examples/python/frames.py consume /tmp/px.sock #   takes frames from the C producer:
    build/release/examples/c/px_producer /tmp/px.sock 100 8388608

The producer renders each frame straight into a slot of a shared-memory pool (no staging
copy), turns it into a Buffer with metadata and sends it: only a small descriptor crosses the
socket. The consumer gets a read-only Buffer over the very same memory, looks at it through
numpy, and releases it, which hands the slot back to the producer's pool. When every slot is
out, the producer waits (backpressure) instead of allocating.

Frame k (as in examples/c/frames.h): byte j is (k + j) & 0xff; metadata.sequence == k.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

import parallax as px

SLOTS = 4


def render(slot: px.Slot, k: int) -> None:
    frame = np.asarray(slot)  # the slot's memory itself
    frame[:] = np.arange(len(frame), dtype=np.uint64).astype(np.uint8) + np.uint8(k & 0xFF)
    # `frame` goes out of scope here: a slot cannot become a buffer while views of it exist.


def produce(channel: px.Channel, frames: int, frame_bytes: int) -> None:
    segment = px.SharedMemorySegment("frames", SLOTS * frame_bytes)
    pool = px.MemoryPool(segment, frame_bytes)
    for k in range(frames):
        slot = pool.loan(timeout=10)  # waits while the consumer holds every slot
        render(slot, k)
        buf = slot.into_buffer(metadata=px.Metadata(sequence=k, pts_ns=time.monotonic_ns()))
        channel.send(buf)
        buf.release()  # the consumer's reference keeps the slot out until it is done
    print(f"producer: sent {frames} frames of {frame_bytes} bytes through {pool.capacity} slots")
    # Closing the channel now is fine: frames already sent are still delivered, and the
    # consumer's mappings keep their memory alive even if this process exits.


def consume(channel: px.Channel, frames: int) -> None:
    latencies = []
    for _ in range(frames):
        try:
            buf = channel.recv(timeout=30)
        except px.ChannelClosed:  # the producer stopped early
            break
        frame = np.asarray(buf)  # read-only, zero-copy (1-D bytes: the buffer is untyped)
        k = buf.metadata.sequence
        sent_at = buf.metadata.pts_ns  # None only if the producer set no time
        latencies.append(time.monotonic_ns() - (sent_at if sent_at is not None else 0))
        assert frame[0] == k & 0xFF and frame[-1] == (k + len(frame) - 1) & 0xFF, k
        del frame
        buf.release()  # the slot goes back to the producer's pool
    print(f"consumer: {len(latencies)}/{frames} frames checked, median latency "
          f"{np.median(latencies) / 1e3:.0f} us (send to receive)")


def demo(frames: int, frame_bytes: int) -> None:
    ours, theirs = px.Channel.pair()
    child = mp.get_context("fork").Process(target=_consumer_child, args=(theirs, ours, frames))
    child.start()
    theirs.close()  # each process closes the end it does not use
    with ours:
        produce(ours, frames, frame_bytes)
    child.join()


def _consumer_child(mine: px.Channel, other: px.Channel, frames: int) -> None:
    other.close()
    with mine:
        consume(mine, frames)


def main() -> None:
    ap = argparse.ArgumentParser(description="numpy frames across processes with parallax")
    ap.add_argument("mode", nargs="?", default="demo", choices=["demo", "produce", "consume"])
    ap.add_argument("path", nargs="?", help="socket path (produce/consume)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--frame-bytes", type=int, default=8 << 20)
    args = ap.parse_args()
    if args.mode == "demo":
        demo(args.frames, args.frame_bytes)
    elif args.path is None:
        ap.error(f"{args.mode} needs a socket path")
    elif args.mode == "produce":
        with px.Listener(args.path) as listener:
            print(f"producer: waiting for a consumer on {args.path}")
            with listener.accept() as channel:
                produce(channel, args.frames, args.frame_bytes)
    else:
        with px.Channel.connect(args.path, timeout=30) as channel:
            consume(channel, args.frames)


if __name__ == "__main__":
    main()
