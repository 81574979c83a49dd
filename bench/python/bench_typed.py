# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Per-call cost of seeing a received typed frame as an array (issue 15's targets:
np.asarray(buf) <= 2 us, np.from_dlpack(buf) <= 3 us), with the baselines from the same run:
np.asarray of an untyped buffer and of a bytes object.

The frame is a 1080x1920x3 uint8 frame received over a channel (read-only, typed by the
sender). Each figure is the median over --rounds rounds of the mean of --calls calls.

Usage: python bench/python/bench_typed.py [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np

import parallax as px

FRAME = (1080, 1920, 3)


def per_call_ns(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()

    nbytes = int(np.prod(FRAME))
    pool = px.MemoryPool(px.SharedMemorySegment("bench-typed", 4 * nbytes), nbytes)
    sender, receiver = px.Channel.pair()
    frame = pool.loan_array(FRAME, np.uint8, timeout=1)
    frame.array[...] = 1
    sender.send(frame.into_buffer(), timeout=1)
    typed = receiver.recv(timeout=1)
    untyped = typed.slice(0)  # the same received memory, no format
    raw = bytes(64)
    assert np.asarray(typed).shape == FRAME and not np.asarray(typed).flags.writeable
    assert np.from_dlpack(typed).shape == FRAME

    cases = [
        ("np.asarray(received typed frame)", lambda: np.asarray(typed), 2000),
        ("np.from_dlpack(received typed frame)", lambda: np.from_dlpack(typed), 3000),
        ("baseline: np.asarray(received untyped buffer)", lambda: np.asarray(untyped), None),
        ("baseline: np.asarray(bytes)", lambda: np.asarray(raw), None),
        ("baseline: np.frombuffer(received untyped buffer)",
         lambda: np.frombuffer(untyped, np.uint8), None),
    ]
    print(f"median per call over {args.rounds} rounds of {args.calls} calls "
          f"(numpy {np.__version__}, parallax {px.__version__})")
    for name, fn, target in cases:
        ns = per_call_ns(fn, args.calls, args.rounds)
        verdict = "" if target is None else (" (target <= %d ns: %s)" %
                                             (target, "met" if ns <= target else "MISSED"))
        print(f"  {name:<50} {ns:8.0f} ns{verdict}")
    untyped.release()
    typed.release()
    sender.close()
    receiver.close()


if __name__ == "__main__":
    main()
