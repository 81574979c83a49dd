# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Streams (issue 13): one Publisher, Subscribers in other processes found by name.

Subscriber processes run stream_peer.py (a fresh interpreter: no state inherited from pytest
through fork); each test has its own runtime directory.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import parallax as px

from conftest import wait_until

PEER = str(Path(__file__).with_name("stream_peer.py"))
FRAME = 4096


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch):
    """A private runtime directory (mode 0700), inherited by every subscriber process."""
    path = tempfile.mkdtemp(prefix="pxrt")  # short: socket paths must fit 107 bytes
    os.chmod(path, 0o700)
    monkeypatch.setenv("PARALLAX_RUNTIME_DIR", path)
    yield Path(path)
    for f in Path(path).iterdir():
        f.unlink()
    os.rmdir(path)


@pytest.fixture
def pool():
    p = px.MemoryPool(px.SharedMemorySegment("streams", 32 * FRAME), FRAME)
    yield p
    p.close()


def fill(slot, k: int) -> None:
    """Frame k: byte j is (k + j) & 0xff (stream_peer.py checks it)."""
    arr = np.asarray(slot)
    arr[:] = np.arange(len(arr), dtype=np.uint64).astype(np.uint8) + np.uint8(k & 0xFF)


def publish_frame(pub: px.Publisher, pool: px.MemoryPool, k: int) -> None:
    slot = pool.loan(timeout=5)
    fill(slot, k)
    buf = slot.into_buffer(metadata=px.Metadata(sequence=k))
    try:
        pub.publish(buf)
    finally:
        buf.release()  # the subscribers' references keep the slot out


def wait_for_subscribers(pub: px.Publisher, n: int, timeout: float = 20.0) -> None:
    """Admits joiners (a publisher does it only inside publish and poll) until n are in."""
    deadline = time.monotonic() + timeout
    while pub.subscriber_count < n:
        assert time.monotonic() < deadline, f"{pub.subscriber_count} of {n} subscribers joined"
        pub.poll(0.01)


class Peer:
    """A stream_peer.py process; its JSON lines are read by a thread so a wait can time out."""

    def __init__(self, name: str, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, PEER, name, *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, event: str, timeout: float = 30.0) -> dict:
        """The next line, which must be `event` ("joined" lines are skipped unless asked for)."""
        while True:
            msg = self.lines.get(timeout=timeout)
            assert msg is not None, f"peer exited: {self.proc.wait()} {self.proc.stderr.read()}"
            if msg["event"] != "joined" or event == "joined":
                break
        assert msg["event"] == event, msg
        return msg

    def go(self) -> None:
        """Releases a peer started with --wait-stdin."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> dict:
        done = self.expect("done", timeout)
        assert self.proc.wait(timeout) == 0, self.proc.stderr.read()
        return done

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def peers():
    started: list[Peer] = []

    def start(name: str, *args: str) -> Peer:
        started.append(Peer(name, *args))
        return started[-1]

    yield start
    for p in started:  # a failed test leaves none behind
        p.kill()


def seqs(done: dict) -> list[int]:
    return [seq for seq, _ in done["frames"]]


# --- Several processes -------------------------------------------------------------------


def test_three_subscribers_any_order_one_killed_mid_stream_the_others_miss_nothing(pool, peers):
    early = peers("cam")  # before the publisher exists: it waits for it
    time.sleep(0.2)
    pub = px.Publisher("cam", slow_policy="block", max_in_flight=4, block_timeout=10)
    late = peers("cam")
    doomed = peers("cam", "--hold", "4")  # keeps 4 frames, then is killed holding them
    wait_for_subscribers(pub, 3)
    for k in range(1, 5):
        publish_frame(pub, pool, k)
    assert doomed.expect("holding")["seqs"] == [1, 2, 3, 4]
    # The survivors have released theirs: only the doomed subscriber's 4 are out.
    assert wait_until(lambda: pub.stats().slots_lent == 4, timeout=10)
    assert pool.available == pool.capacity - 4
    os.kill(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait()
    # Its slots come back within 1 s, with nobody publishing or polling meanwhile.
    assert wait_until(lambda: pool.available == pool.capacity, timeout=1.0)
    # BLOCK: the publisher never waits for the dead one, and nobody else misses a frame.
    for k in range(5, 31):
        publish_frame(pub, pool, k)
    stats = pub.stats()
    assert stats.subscribers == 2 and stats.joined == 3 and stats.departed == 1
    assert stats.dropped == 0 and stats.published == 30
    pub.close()
    for peer in (early, late):
        done = peer.finish()
        assert seqs(done) == list(range(1, 31))
        assert done["bad"] == [] and done["readonly"]
        assert done["received"] == 30 and done["missed"] == 0
    assert wait_until(lambda: pool.available == pool.capacity, timeout=5)


def test_a_late_subscriber_gets_the_history_first_each_frame_under_its_description(pool, peers):
    pub = px.Publisher("cam", history=3)
    pub.description = "A"
    for k in range(1, 4):
        publish_frame(pub, pool, k)
    pub.description = "B"
    for k in range(4, 6):
        publish_frame(pub, pool, k)
    assert pool.available == pool.capacity - 3  # the history stays held, nobody listening
    peer = peers("cam")
    wait_for_subscribers(pub, 1)
    assert peer.expect("joined")["description"] == "B"  # current at join
    pub.description = "C"
    publish_frame(pub, pool, 6)
    pub.close()
    done = peer.finish()
    # The 3 latest, then live; each under the description set before it was published.
    assert done["frames"] == [[3, "A"], [4, "B"], [5, "B"], [6, "C"]]
    assert done["missed"] == 0 and done["bad"] == []


def test_description_changes_arrive_in_order_with_the_frames(pool, peers):
    pub = px.Publisher("cam", slow_policy=px.SlowPolicy.BLOCK)
    assert pub.description == ""
    peer = peers("cam", "--wait-stdin")
    wait_for_subscribers(pub, 1)
    assert peer.expect("joined")["description"] == ""
    changes = {1: "caps=A", 2: '{"shape": [64, 64]}', 4: "", 5: "größe=ü ✓"}
    for k in range(1, 7):
        if k in changes:
            pub.description = changes[k]
        if k == 3:  # two changes between frames: only the last is in force for frame 3
            pub.description = "skipped"
            pub.description = "caps=C"
        publish_frame(pub, pool, k)
    assert pub.description == "größe=ü ✓"
    peer.go()
    pub.close()
    done = peer.finish()
    assert done["frames"] == [[1, "caps=A"], [2, '{"shape": [64, 64]}'], [3, "caps=C"],
                              [4, ""], [5, "größe=ü ✓"], [6, "größe=ü ✓"]]


def test_drop_a_subscriber_with_no_room_misses_frames_publish_never_waits(pool, peers):
    pub = px.Publisher("cam", slow_policy="drop", max_in_flight=2)
    peer = peers("cam", "--wait-stdin")  # joined but not reading
    wait_for_subscribers(pub, 1)
    peer.expect("joined")
    start = time.monotonic()
    for k in range(1, 11):
        publish_frame(pub, pool, k)
    assert time.monotonic() - start < 1.0
    assert pub.stats().dropped == 8  # 2 fit its credit
    peer.go()
    assert wait_until(lambda: pub.stats().slots_lent == 0, timeout=10)  # it drained 1, 2
    publish_frame(pub, pool, 11)
    pub.close()
    done = peer.finish()
    assert seqs(done) == [1, 2, 11]
    assert done["missed"] == 8  # counted on its side from the gap 3..10


def test_block_publish_waits_for_room_then_times_out_having_delivered_to_the_others(pool, peers):
    pub = px.Publisher("cam", slow_policy="block", max_in_flight=2, block_timeout=2.0)
    stalled = peers("cam", "--wait-stdin")
    reader = peers("cam")
    wait_for_subscribers(pub, 2)
    for k in (1, 2):
        publish_frame(pub, pool, k)
    start = time.monotonic()
    with pytest.raises(px.Timeout) as exc:
        publish_frame(pub, pool, 3)
    assert time.monotonic() - start >= 1.9  # it waited block_timeout
    assert isinstance(exc.value, TimeoutError) and exc.value.status == px.errors.PX_E_TIMEOUT
    assert pub.stats().dropped == 1
    stalled.go()
    publish_frame(pub, pool, 4)  # waits (up to 2 s) while the stalled one drains 1, 2
    pub.close()
    assert seqs(reader.finish()) == [1, 2, 3, 4]  # had room: got frame 3
    done = stalled.finish()
    assert seqs(done) == [1, 2, 4] and done["missed"] == 1


def test_disconnect_drops_a_subscriber_with_no_room_it_drains_then_sees_the_end(pool, peers):
    pub = px.Publisher("cam", slow_policy=px.SlowPolicy.DISCONNECT, max_in_flight=2)
    stalled = peers("cam", "--wait-stdin")
    wait_for_subscribers(pub, 1)
    for k in (1, 2, 3):
        publish_frame(pub, pool, k)
    stats = pub.stats()
    assert pub.subscriber_count == 0
    assert stats.disconnected_slow == 1 and stats.departed == 1
    stalled.go()
    done = stalled.finish()  # its iteration ended although the publisher is still open
    assert seqs(done) == [1, 2]
    pub.close()


def test_stream_stats_and_list_streams_from_another_process_while_the_publisher_is_idle(pool):
    with px.Publisher("cam") as pub, px.Publisher("mic"):
        for k in range(3):
            publish_frame(pub, pool, k)
        code = ("import json, parallax as px; s = px.stream_stats('cam', timeout=5); "
                "print(json.dumps([px.list_streams(), s.published, s.subscribers]))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [["cam", "mic"], 3, 0]
    assert px.list_streams() == []
    with pytest.raises(px.ChannelClosed, match="cam"):
        px.stream_stats("cam")


def doc_example(obj) -> str:
    return textwrap.dedent(obj.__doc__.split("Example::", 1)[1])


def test_the_publisher_and_subscriber_doc_examples_run_together():
    # The subscriber's example in another process (it waits for the publisher), the
    # publisher's here (100 frames, admitting joiners between them) once that one is ready.
    ready = "import numpy, parallax; print('ready', flush=True)\n"
    proc = subprocess.Popen([sys.executable, "-c", ready + doc_example(px.Subscriber)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    exec(doc_example(px.Publisher), {})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(out.splitlines()) >= 2, out  # at least the history, then live frames
    assert '"shape": [64, 64]' in out


def test_a_forked_child_closing_its_copy_of_a_publisher_leaves_the_stream_listed():
    with px.Publisher("cam") as pub:
        pid = os.fork()
        if pid == 0:  # the child releases its copy, as its interpreter would at exit
            pub.close()
            os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert px.list_streams() == ["cam"]
        assert px.stream_stats("cam").published == 0


# --- One process: subscribers in threads -------------------------------------------------


def subscribe_while_polling(pub: px.Publisher, name: str = "cam", **kwargs) -> px.Subscriber:
    """A Subscriber made in a thread while this one admits it (Subscriber() waits for that)."""
    got: list = []
    t = threading.Thread(target=lambda: got.append(px.Subscriber(name, timeout=10, **kwargs)))
    t.start()
    while t.is_alive():
        pub.poll(0.01)
    t.join()
    assert got, "Subscriber() failed (see the thread's traceback)"
    return got[0]


def test_numpy_views_alias_the_publishers_memory_read_only(pool):
    with px.Publisher("cam") as pub, subscribe_while_polling(pub) as sub:
        slot = pool.loan()
        fill(slot, 7)
        mine = slot.into_buffer(metadata=px.Metadata(sequence=7))
        pub.publish(mine)
        got = sub.recv(timeout=5)
        arr = np.asarray(got)
        assert got.readonly and not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
        view = memoryview(got)
        assert view.readonly
        with pytest.raises(TypeError, match="read-only"):
            view[0:1] = b"x"
        view.release()
        assert np.array_equal(arr, np.arange(FRAME, dtype=np.uint64).astype(np.uint8) + 7)
        # Zero-copy: the publisher writing its (writable) buffer shows in the subscriber's view.
        np.asarray(mine)[:4] = [9, 8, 7, 6]
        assert list(arr[:4]) == [9, 8, 7, 6]
        with pytest.raises(BufferError):
            got.release()  # the view pins the memory
        del arr
        got.release()
        mine.release()
    assert wait_until(lambda: pool.available == pool.capacity)


def test_iteration_ends_when_the_publisher_closes_and_buffers_stay_valid(pool):
    pub = px.Publisher("cam")
    sub = subscribe_while_polling(pub)
    for k in range(5):
        publish_frame(pub, pool, k)
    pub.close()
    frames = list(sub)  # no timeout needed: it ends once everything sent was received
    assert [b.metadata.sequence for b in frames] == [0, 1, 2, 3, 4]
    with pytest.raises(px.ChannelClosed):
        sub.recv(timeout=0)
    sub.close()
    assert bytes(frames[3])[:2] == bytes([3, 4])  # still mapped after both ends are gone
    for b in frames:
        b.release()
    assert pool.available == pool.capacity


def departed(pub: px.Publisher) -> bool:
    pub.poll(0.01)  # a departure is noticed inside poll (or publish)
    return pub.subscriber_count == 0


def test_context_managers_close_and_the_name_is_free_again_at_once(pool):
    with px.Publisher("cam") as pub:
        with subscribe_while_polling(pub) as sub:
            assert repr(sub) == "<Subscriber name=cam>" and sub.stats().publisher_pid == os.getpid()
        assert sub.closed
        with pytest.raises(px.InvalidArgument, match="subscriber is closed"):
            sub.recv(timeout=0)
        assert wait_until(lambda: departed(pub))
        with pytest.raises(px.Busy):
            px.Publisher("cam")  # a live publisher owns the name
    assert pub.closed and repr(pub) == "<Publisher name=cam closed>"
    frame = pool.loan().into_buffer()
    for call in (lambda: pub.publish(frame), lambda: pub.poll(), lambda: pub.stats(),
                 lambda: pub.fileno(), lambda: pub.description, lambda: pub.subscriber_count):
        with pytest.raises(px.InvalidArgument, match="publisher is closed"):
            call()
    pub.close()  # idempotent
    with px.Publisher("cam") as again:
        assert again.name == "cam"


def test_fileno_is_pollable(pool):
    import select

    with px.Publisher("cam") as pub:
        assert pub.fileno() == pub.fd >= 0
        assert pub.poll(0) is False  # nothing to do
        got: list = []
        t = threading.Thread(target=lambda: got.append(px.Subscriber("cam", timeout=10)))
        t.start()
        assert select.select([pub], [], [], 10)[0] == [pub]  # a joiner is waiting
        while t.is_alive():
            pub.poll(0.01)
        t.join()
        sub = got[0]
        assert select.select([sub], [], [], 0)[0] == []
        publish_frame(pub, pool, 1)
        assert select.select([sub], [], [], 5)[0] == [sub]
        sub.recv(timeout=0).release()
        sub.close()


def test_spin_settings_a_spinning_subscriber_receives_and_still_times_out(pool):
    with px.Publisher("cam") as pub:
        sub = subscribe_while_polling(pub)
        sub.set_spin(None)  # never sleep
        t0 = time.monotonic()
        with pytest.raises(px.Timeout):
            sub.recv(timeout=0.05)
        assert time.monotonic() - t0 >= 0.04
        publish_frame(pub, pool, 7)
        assert sub.recv(timeout=5).metadata.sequence == 7
        sub.set_spin(0)  # sleep at once
        publish_frame(pub, pool, 8)
        assert sub.recv(timeout=5).metadata.sequence == 8
        sub.set_spin(px.SPIN_DEFAULT)
        with pytest.raises(px.InvalidArgument, match="NaN"):
            sub.set_spin(float("nan"))
        sub.close()
        with pytest.raises(px.InvalidArgument, match="subscriber is closed"):
            sub.set_spin(0)


def test_a_full_publisher_refuses_one_more_subscriber_with_busy():
    with px.Publisher("cam", max_subscribers=1) as pub:
        first = subscribe_while_polling(pub)
        errors: list = []

        def second():
            try:
                px.Subscriber("cam", timeout=10)
            except px.ParallaxError as e:
                errors.append(e)

        t = threading.Thread(target=second)
        t.start()
        while t.is_alive():
            pub.poll(0.01)
        t.join()
        assert len(errors) == 1 and isinstance(errors[0], px.Busy), errors
        assert "full" in str(errors[0])
        first.close()


def test_subscriber_fileno_out_of_fds_is_an_io_failure_not_a_crash():
    import resource

    with px.Publisher("cam") as pub, subscribe_while_polling(pub) as sub:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        held = []
        try:
            # The pollable fd is made on first use; leave none for it.
            in_use = len(os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 64, hard))
            with pytest.raises(OSError):
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            with pytest.raises(px.IOFailure, match="too many open files"):
                sub.fileno()
        finally:
            for fd in held:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert sub.fileno() >= 0  # fds free again: it works


# --- The GIL is released while waiting -----------------------------------------------------


def progress_while(blocking_call):
    """Runs blocking_call in a thread; counts the loop turns this thread makes meanwhile.

    Returns (turns, what the call returned or raised)."""
    outcome: list = []

    def run():
        try:
            outcome.append(blocking_call())
        except px.ParallaxError as e:
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.02)  # let it get into the C call
    ticks = 0
    while t.is_alive():
        ticks += 1
    t.join()
    return ticks, outcome[0]


def test_gil_is_released_while_recv_poll_and_subscribe_wait():
    with px.Publisher("cam") as pub, subscribe_while_polling(pub) as sub:
        ticks, result = progress_while(lambda: sub.recv(timeout=0.3))
        assert isinstance(result, px.Timeout) and ticks > 10_000
        ticks, result = progress_while(lambda: pub.poll(0.3))
        assert result is False and ticks > 10_000  # nobody joined or left
    ticks, result = progress_while(lambda: px.Subscriber("nobody", timeout=0.3))
    assert isinstance(result, px.Timeout) and ticks > 10_000


def test_gil_is_released_while_a_block_publish_waits_for_room(pool):
    with px.Publisher("cam", slow_policy="block", max_in_flight=1, block_timeout=0.3) as pub:
        sub = subscribe_while_polling(pub)  # never reads
        publish_frame(pub, pool, 1)
        frame = pool.loan().into_buffer()  # made first: the thread does nothing but wait
        ticks, result = progress_while(lambda: pub.publish(frame))
        assert isinstance(result, px.Timeout) and ticks > 10_000
        sub.close()


# --- Bad input -------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors(pool):
    with pytest.raises(px.InvalidArgument, match="name"):
        px.Publisher("bad name")
    with pytest.raises(px.InvalidArgument, match="NUL"):
        px.Publisher("a\0b")
    with pytest.raises(px.InvalidArgument, match="slow_policy 'sometimes'"):
        px.Publisher("cam", slow_policy="sometimes")
    with pytest.raises(px.InvalidArgument, match="slow_policy 7"):
        px.Publisher("cam", slow_policy=7)
    with pytest.raises(px.InvalidArgument, match="max_in_flight 0"):
        px.Publisher("cam", max_in_flight=0)
    with pytest.raises(px.InvalidArgument, match="history must not be negative"):
        px.Publisher("cam", history=-1)
    with pytest.raises(px.InvalidArgument, match="max_subscribers"):
        px.Publisher("cam", max_subscribers=2**32)
    with pytest.raises(TypeError, match="max_in_flight must be an integer"):
        px.Publisher("cam", max_in_flight="8")
    with pytest.raises(TypeError):
        px.Publisher("cam", "block")  # the options are keyword-only
    with px.Publisher("cam") as pub:
        with pytest.raises(px.Unsupported, match="shared-memory"):
            pub.publish(px.Buffer(px.HeapSegment(64)))
        with pytest.raises(TypeError):
            pub.publish(b"bytes")
        with pytest.raises(TypeError, match="description must be str"):
            pub.description = b"caps"
        with pytest.raises(px.InvalidArgument, match="NUL"):
            pub.description = "a\0b"
        with pytest.raises(px.InvalidArgument, match="longer than"):
            pub.description = "x" * (64 * 1024 + 1)
        pub.description = "x" * (64 * 1024)  # the limit itself is fine
        assert len(pub.description) == 64 * 1024
    with pytest.raises(px.WouldBlock):
        px.Subscriber("cam", timeout=0)  # no publisher now
    with pytest.raises(px.InvalidArgument, match="NaN"):
        px.Subscriber("cam", timeout=float("nan"))


def test_a_runtime_directory_others_can_write_is_refused(runtime_dir):
    os.chmod(runtime_dir, 0o777)
    try:
        with pytest.raises(px.PermissionDenied):
            px.Publisher("cam")
        with pytest.raises(px.PermissionDenied):
            px.list_streams()
    finally:
        os.chmod(runtime_dir, 0o700)
    assert stat.S_IMODE(os.stat(runtime_dir).st_mode) == 0o700


def test_stream_subscribers_lists_each_subscriber_as_the_publisher_knows_it(pool):
    with px.Publisher("cam", max_in_flight=2) as pub, subscribe_while_polling(pub) as sub:
        for k in range(1, 4):  # the third has no room: the subscriber holds two
            publish_frame(pub, pool, k)
        rows = px.stream_subscribers("cam")
        assert len(rows) == 1
        row = rows[0]
        assert row.pid == os.getpid()  # the subscriber lives in this process (a thread)
        assert (row.in_flight, row.delivered, row.dropped) == (2, 2, 1)
        assert "SubscriberInfo(pid=" in repr(row)
        held = [sub.recv(timeout=5), sub.recv(timeout=5)]
        del held
    with pytest.raises(px.ChannelClosed):
        px.stream_subscribers("cam")
    with pytest.raises(px.InvalidArgument):
        px.stream_subscribers("bad/../")
