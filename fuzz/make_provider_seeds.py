#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Hand-made seeds of the targets that read their input with FuzzedDataProvider: op sequences of
# fuzz_channel.cpp's and fuzz_subscriber.cpp's run(), encoded as FuzzedDataProvider reads them
# (integral values from the end of the input, the first byte read the most significant; byte
# strings from the front). Run it again when those ops change:
#   fuzz/make_provider_seeds.py fuzz/corpus
import os
import sys


class Input:
    """The bytes FuzzedDataProvider turns back into the values given, in the order consumed."""

    def __init__(self):
        self.tail = []  # bytes in the order they are consumed (from the end of the input)
        self.front = []  # ConsumeBytes' bytes, in order (from the start)

    def in_range(self, lo, hi, value, bits):
        # ConsumeIntegralInRange<T>(lo, hi): one byte per 8 bits of the range, at most T's.
        span, offset = hi - lo, value - lo
        assert 0 <= offset <= span
        n = 0
        while n * 8 < bits and (span >> (n * 8)) > 0:
            n += 1
        for i in range(n - 1, -1, -1):
            self.tail.append((offset >> (8 * i)) & 0xFF)

    def integral(self, value, bits):  # ConsumeIntegral<uintN_t>
        self.in_range(0, (1 << bits) - 1, value, bits)

    def boolean(self, value):  # ConsumeBool: the low bit of one byte
        self.integral(1 if value else 0, 8)

    def small(self, lo, hi, value):  # ConsumeIntegralInRange<int or uint32_t>
        self.in_range(lo, hi, value, 32)

    def wide(self, lo, hi, value):  # ConsumeIntegralInRange<uint64_t, int64_t or size_t>
        self.in_range(lo, hi, value, 64)

    def byte_string(self, data, max_len):  # ConsumeBytes(ConsumeIntegralInRange(0, max_len))
        self.wide(0, max_len, len(data))
        self.front.extend(data)

    def bytes(self):
        return bytes(self.front) + bytes(reversed(self.tail))


class Peer(Input):
    """fuzz_channel's ops (a forged channel peer), honest unless told otherwise."""

    def op(self, n):
        self.small(0, 9, n)

    def honest_hello(self):
        self.small(0, 7, 0)

    def register(self, segment=1, size=4096):
        self.op(0)
        self.small(0, 7, segment)
        self.wide(0, 16384, size - 1)
        self.boolean(True)  # the real size
        self.boolean(True)  # shared memory
        self.wide(0, 4, 1)  # one fd...
        self.small(0, 6, 0)  # ...a sealed memfd

    def format(self, dtype, shape, strides=None):
        self.op(9)
        self.small(0, 14, dtype)
        self.small(0, 10, len(shape))
        self.boolean(False)  # no fourcc
        self.small(0, 7, 1)  # no flags
        self.boolean(strides is not None)
        for i in range(8):
            if i >= len(shape):
                self.small(0, 15, 1)  # nothing beyond ndim
                continue
            self.boolean(True)
            self.wide(0, 64, shape[i])
            if strides is not None:
                self.boolean(True)
                self.wide(0, 512, strides[i] // 4)

    def data(self, length, typed, segment=1, sequence=7):
        self.op(2)
        self.small(0, 7, segment)
        self.boolean(True)
        self.wide(0, 20000, 0)  # offset
        self.boolean(True)
        self.wide(0, 20000, length)
        self.integral(0, 8)  # no loan token
        self.integral(sequence, 64)
        self.small(0, 70, 0)  # no user bytes
        self.boolean(typed)

    def recv(self):
        self.op(6)


class Publisher(Input):
    """fuzz_subscriber's moves (a forged stream publisher), honest unless told otherwise."""

    WELCOME, DESCRIPTION, REFUSED, FRAME, WAKE = 1, 2, 3, 0, 4

    def move(self, n):
        self.small(0, 7, n)

    def segment(self, segment, size, text=b""):
        self.move(0)
        self.small(1, 3, segment)
        self.boolean(True)  # a small segment
        self.wide(0, 256, size - 1)
        self.byte_string(text, 64)

    def record(self, kind, seq, segment, length, typed=False):
        self.move(1)
        self.small(0, 3, segment)
        self.boolean(True)
        self.wide(0, 300, length)
        self.small(0, 4, kind)  # 0..wire::max_data_kind
        self.boolean(True)
        self.wide(0, 20, seq)
        self.boolean(typed)

    def format(self, dtype, shape):
        self.move(4)
        self.small(0, 13, dtype)
        self.small(0, 9, len(shape))
        for extent in shape:
            self.boolean(True)
            self.wide(0, 64, extent)
        self.boolean(False)  # C-contiguous


def typed_frames(p):
    # A format, frames under it, another format, an untyped frame, then one it does not fit.
    p.register()
    p.format(1, [32, 32])
    p.data(4096, True)
    p.recv()
    p.format(11, [64], [4])
    p.data(4096, True)
    p.data(100, False)
    for _ in range(3):
        p.recv()
    p.data(100, True)
    p.recv()


def typed_before_format(p):
    p.register()
    p.data(16, True)
    p.recv()


def format_beyond_buffer(p):
    p.register()
    p.format(1, [64, 64, 3])
    p.data(4096, True)
    p.recv()


def welcome_and_wake(p, text):
    # What an honest publisher sends first: the welcome, then its wake page (segment 3).
    p.segment(1, len(text), text)
    p.record(p.WELCOME, 1, 1, len(text))
    p.segment(3, 8)
    p.record(p.WAKE, 1, 3, 8)


def stream_of_typed_frames(p):
    # Joins under a description, then typed and untyped frames, a new description, a gap.
    welcome_and_wake(p, b"caps=video")
    p.segment(2, 256)
    p.format(1, [16, 16])
    p.record(p.FRAME, 1, 2, 256, typed=True)
    p.record(p.FRAME, 2, 2, 100)
    p.record(p.DESCRIPTION, 2, 1, 4)
    p.record(p.FRAME, 5, 2, 256, typed=True)


def refused(p):
    p.segment(1, 1)
    p.record(p.REFUSED, 0, 1, 0)


def stream_typed_before_format(p):
    welcome_and_wake(p, b"caps")
    p.record(p.FRAME, 1, 1, 4, typed=True)


def stream_without_wake_page(p):
    # A welcome followed by a frame where the wake page belongs.
    p.segment(1, 4, b"caps")
    p.record(p.WELCOME, 1, 1, 4)
    p.record(p.FRAME, 1, 1, 4)


SEEDS = {
    "channel": (Peer, lambda p: p.honest_hello(), {
        "seed-typed-frames": typed_frames,
        "seed-typed-before-format": typed_before_format,
        "seed-format-beyond-buffer": format_beyond_buffer,
    }),
    "subscriber": (Publisher, lambda p: p.boolean(True), {  # hangs up at the end
        "seed-stream-typed-frames": stream_of_typed_frames,
        "seed-refused": refused,
        "seed-stream-typed-before-format": stream_typed_before_format,
        "seed-stream-without-wake-page": stream_without_wake_page,
    }),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} <corpus-root>")
    for target, (make, start, seeds) in SEEDS.items():
        directory = os.path.join(sys.argv[1], target)
        os.makedirs(directory, exist_ok=True)
        for name, script in seeds.items():
            p = make()
            start(p)
            script(p)
            with open(os.path.join(directory, name), "wb") as f:
                f.write(p.bytes())


if __name__ == "__main__":
    main()
