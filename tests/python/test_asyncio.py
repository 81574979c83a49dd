# SPDX-License-Identifier: Apache-2.0 OR MIT
"""asyncio: recv_async and async for on channels and subscribers, through the event loop's
reader on the object's fd (no thread); cancellation loses no buffer; the end of a stream ends
``async for``."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import parallax as px

FORK = mp.get_context("fork")
FRAME = 4096


@pytest.fixture
def pool():
    p = px.MemoryPool(px.SharedMemorySegment("aio", 16 * FRAME), FRAME)
    yield p
    p.close()


@pytest.fixture
def runtime_dir(monkeypatch):
    path = tempfile.mkdtemp(prefix="pxaio")
    os.chmod(path, 0o700)
    monkeypatch.setenv("PARALLAX_RUNTIME_DIR", path)
    yield Path(path)
    for f in Path(path).iterdir():
        f.unlink()
    os.rmdir(path)


def send(ch: px.Channel, pool: px.MemoryPool, k: int) -> None:
    slot = pool.loan(timeout=5)
    np.asarray(slot)[:] = k & 0xFF
    with slot.into_buffer(metadata=px.Metadata(sequence=k)) as buf:
        ch.send(buf, timeout=5)


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def reader_count(loop: asyncio.AbstractEventLoop) -> int:
    return len(loop._selector.get_map())  # type: ignore[attr-defined]


def test_a_ready_buffer_is_returned_without_waiting_on_the_loop(pool):
    a, b = px.Channel.pair()
    send(a, pool, 7)

    async def main():
        loop = asyncio.get_running_loop()
        before = reader_count(loop)
        buf = await b.recv_async()
        assert reader_count(loop) == before  # never registered a reader
        return buf.metadata.sequence

    assert run(main()) == 7


def test_a_wait_is_woken_by_the_fd_and_the_reader_is_removed_after(pool):
    a, b = px.Channel.pair()

    async def main():
        loop = asyncio.get_running_loop()
        before = reader_count(loop)
        loop.call_later(0.05, send, a, pool, 3)
        t0 = time.monotonic()
        buf = await b.recv_async()
        waited = time.monotonic() - t0
        assert reader_count(loop) == before + 1  # kept for a consumer that waits again...
        await asyncio.sleep(0)
        assert reader_count(loop) == before  # ...but this one did not: the idle fd is let go
        assert not buf.readonly or len(buf) == FRAME
        return buf.metadata.sequence, waited

    seq, waited = run(main())
    assert seq == 3 and waited >= 0.04


def _producer(ch: px.Channel, other: px.Channel, frames: int, pace: float) -> None:
    other.close()
    pool = px.MemoryPool(px.SharedMemorySegment("aio-producer", 8 * FRAME), FRAME)
    for k in range(frames):
        send(ch, pool, k)
        time.sleep(pace)
    ch.close()  # the consumer's async for ends after the last frame


def test_three_channels_from_three_processes_served_by_one_event_loop_without_threads():
    frames = 50
    ends, children = [], []
    for i in range(3):
        mine, theirs = px.Channel.pair()
        p = FORK.Process(target=_producer, args=(theirs, mine, frames, 0.001 * (i + 1)))
        p.start()
        theirs.close()
        ends.append(mine)
        children.append(p)

    async def consume(ch: px.Channel) -> list[int]:
        seqs = []
        async for buf in ch:
            assert bool(np.all(np.asarray(buf) == (buf.metadata.sequence & 0xFF)))
            seqs.append(buf.metadata.sequence)
            buf.release()
        return seqs

    async def main():
        threads = threading.active_count()
        results = await asyncio.gather(*(consume(ch) for ch in ends))
        assert threading.active_count() == threads  # the loop did it all
        return results

    results = run(main())
    for p in children:
        p.join(10)
        assert p.exitcode == 0
    assert results == [list(range(frames))] * 3


def test_cancelling_a_wait_loses_no_buffer(pool):
    a, b = px.Channel.pair()

    async def main():
        loop = asyncio.get_running_loop()
        waiter = asyncio.ensure_future(b.recv_async())
        await asyncio.sleep(0.01)  # it is waiting on the fd now
        send(a, pool, 1)  # the fd turns readable...
        # ...and in the loop's next iteration the cancel runs first, then the reader callback
        # (the selector queues it after the callbacks already due): the reader meets a
        # cancelled waiter at the head of the queue and must take nothing for it.
        loop.call_soon(waiter.cancel)
        await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        buf = await asyncio.wait_for(b.recv_async(), 5)
        return buf.metadata.sequence

    assert run(main()) == 1


def _pacer(ch: px.Channel, other: px.Channel, frames: int) -> None:
    other.close()
    pool = px.MemoryPool(px.SharedMemorySegment("aio-pacer", 8 * FRAME), FRAME)
    for k in range(frames):
        send(ch, pool, k)
        time.sleep(0.004 if k % 10 == 0 else 0.0003 * (k % 3))  # some gaps outlast a wait
    ch.close()


def test_waits_cancelled_by_timeouts_at_random_points_lose_no_buffer():
    frames = 300
    mine, theirs = px.Channel.pair()
    p = FORK.Process(target=_pacer, args=(theirs, mine, frames))
    p.start()
    theirs.close()

    async def main():
        seqs, timeouts = [], 0
        while True:
            try:
                buf = await asyncio.wait_for(mine.recv_async(), 0.001)
            except asyncio.TimeoutError:
                timeouts += 1
                continue
            except px.ChannelClosed:
                return seqs, timeouts
            seqs.append(buf.metadata.sequence)
            buf.release()

    seqs, timeouts = run(main(), timeout=60)
    p.join(10)
    assert seqs == list(range(frames))
    assert timeouts > 0  # the test did cancel waits


def test_several_tasks_on_one_channel_get_buffers_in_the_order_they_waited(pool):
    a, b = px.Channel.pair()

    async def main():
        tasks = [asyncio.ensure_future(b.recv_async()) for _ in range(3)]
        await asyncio.sleep(0.01)
        for k in range(3):
            send(a, pool, k)
        return [t.metadata.sequence for t in await asyncio.gather(*tasks)]

    assert run(main()) == [0, 1, 2]


def test_the_end_of_the_stream_raises_channel_closed_and_ends_async_for(pool):
    a, b = px.Channel.pair()
    send(a, pool, 0)
    send(a, pool, 1)
    a.close()

    async def main():
        got = [buf.metadata.sequence async for buf in b]
        with pytest.raises(px.ChannelClosed):
            await b.recv_async()
        return got

    assert run(main()) == [0, 1]


def test_the_peer_closing_while_waiting_wakes_the_waiter_with_channel_closed():
    a, b = px.Channel.pair()

    async def main():
        asyncio.get_running_loop().call_later(0.05, a.close)
        with pytest.raises(px.ChannelClosed):
            await b.recv_async()

    run(main())


def test_closing_the_channel_itself_fails_its_waiters_with_channel_closed():
    a, b = px.Channel.pair()

    async def main():
        loop = asyncio.get_running_loop()
        before = reader_count(loop)
        waiter = asyncio.ensure_future(b.recv_async())
        await asyncio.sleep(0.01)
        b.close()
        with pytest.raises(px.ChannelClosed, match="closed while recv_async waited"):
            await waiter
        assert reader_count(loop) == before
        with pytest.raises(px.InvalidArgument, match="closed"):
            await b.recv_async()

    run(main())


def test_a_channel_is_reusable_from_a_second_event_loop(pool):
    a, b = px.Channel.pair()
    for k in range(2):
        send(a, pool, k)
        assert run(b.recv_async()).metadata.sequence == k


def test_recv_async_needs_a_running_loop():
    a, b = px.Channel.pair()
    coro = b.recv_async()
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def _publisher(name: str, frames: int, ready) -> None:
    pool = px.MemoryPool(px.SharedMemorySegment(name, 8 * FRAME), FRAME)
    with px.Publisher(name, slow_policy="block", block_timeout=10) as pub:
        ready.set()
        deadline = time.monotonic() + 20
        while pub.subscriber_count < 1 and time.monotonic() < deadline:
            pub.poll(0.01)
        for k in range(frames):
            slot = pool.loan(timeout=5)
            np.asarray(slot)[:] = k & 0xFF
            with slot.into_buffer(metadata=px.Metadata(sequence=k)) as buf:
                pub.publish(buf)
            time.sleep(0.001)


def test_three_streams_from_three_publisher_processes_one_event_loop(runtime_dir):
    frames = 40
    names = ["cam0", "cam1", "cam2"]
    children = []
    for name in names:
        ready = FORK.Event()
        p = FORK.Process(target=_publisher, args=(name, frames, ready))
        p.start()
        children.append(p)
        assert ready.wait(10)
    subs = [px.Subscriber(name, timeout=10) for name in names]

    async def consume(sub: px.Subscriber) -> list[int]:
        seqs = []
        async for buf in sub:  # until the publisher is gone
            assert bool(np.all(np.asarray(buf) == (buf.metadata.sequence & 0xFF)))
            seqs.append(buf.metadata.sequence)
            buf.release()
        return seqs

    async def main():
        return await asyncio.gather(*(consume(s) for s in subs))

    results = run(main())
    for p in children:
        p.join(10)
        assert p.exitcode == 0
    assert results == [list(range(frames))] * 3


def test_the_asyncio_example_reads_three_streams_in_one_loop(runtime_dir):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    example = REPO_ROOT / "examples" / "python" / "asyncio_streams.py"
    out = subprocess.run([sys.executable, str(example), "--frames", "30"], capture_output=True,
                         text=True, timeout=120, env={**os.environ})
    assert out.returncode == 0, out.stderr
    for i in range(3):
        assert f"camera {i}: 30/30 frames, every byte checked" in out.stdout, out.stdout
    assert "one event loop, 3 streams" in out.stdout
