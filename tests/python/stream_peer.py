# SPDX-License-Identifier: Apache-2.0 OR MIT
"""A subscriber process for test_streams.py (run as a script, never imported by pytest).

    python stream_peer.py NAME [--wait-stdin] [--hold N] [--timeout SECONDS]

Joins stream NAME and prints JSON lines on stdout:
  {"event": "joined", "description": ...}  once admitted (the description current at join);
then, after a line on stdin if --wait-stdin was given, either
  --hold N: receives N frames, keeps every one of them, prints
  {"event": "holding", "seqs": [...]} and sleeps until it is killed;
or receives frames until the publisher is gone (``for buf in sub``), checking each against
the pattern of test_streams.fill (byte j of frame k is (k + j) & 0xff, k = metadata.sequence)
through a zero-copy numpy view, and prints
  {"event": "done", "frames": [[seq, description], ...], "bad": [...], "readonly": bool,
   "received": n, "missed": n}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import parallax as px


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def receive_all(sub: px.Subscriber) -> None:
    frames, bad, readonly = [], [], True
    for buf in sub:  # until the publisher is gone (or dropped this subscriber)
        seq = buf.metadata.sequence
        arr = np.asarray(buf)  # the publisher's memory itself, read-only
        readonly &= buf.readonly and not arr.flags.writeable
        expected = np.arange(len(arr), dtype=np.uint64).astype(np.uint8) + np.uint8(seq & 0xFF)
        if not np.array_equal(arr, expected):
            bad.append(seq)
        frames.append([seq, sub.description])
        del arr
        buf.release()  # hands the slot back to the publisher's pool
    st = sub.stats()
    say(event="done", frames=frames, bad=bad, readonly=readonly, received=st.received,
        missed=st.missed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--wait-stdin", action="store_true")
    ap.add_argument("--hold", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    with px.Subscriber(args.name, timeout=args.timeout) as sub:
        say(event="joined", description=sub.description)
        if args.wait_stdin:
            sys.stdin.readline()
        if args.hold:
            held = [sub.recv(timeout=args.timeout) for _ in range(args.hold)]
            say(event="holding", seqs=[b.metadata.sequence for b in held])
            time.sleep(3600)  # until the test kills this process
        receive_all(sub)


if __name__ == "__main__":
    main()
