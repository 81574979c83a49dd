# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The Python subscriber of tests/bridge/run.sh, on the import side of two bridges.

    python py_subscriber.py NAME --frames N --bytes B [--every E] [--timeout S] [--rejoin]

Joins stream NAME (waiting for its publisher, the import bridge), prints {"event": "joined"},
then receives until it has N frames (or nothing came for S seconds, or, without --rejoin, the
stream ended). With --rejoin a stream that ends (the import bridge died) is joined again: the
process goes on. Each frame k (k = metadata.sequence) is checked against bridge_publisher.c:
payload pattern (byte j is (k + j) & 0xff, through a zero-copy numpy view), length B, every
metadata field, the description in force ("bridge-test;generation=<k // E>") and, when the
binding exposes formats, the format (which must be there). Prints one JSON line:
  {"event": "done", "seqs": [...], "bad": [[k, why], ...], "rejoins": n, "missed": n,
   "format_checked": bool}
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import parallax as px


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def check(buf, description: str, k: int, nbytes: int, every: int, base) -> str | None:
    """Why frame k is wrong, or None."""
    m = buf.metadata
    if len(buf) != nbytes:
        return f"length {len(buf)} != {nbytes}"
    arr = np.asarray(buf)
    ok = np.array_equal(arr, base + np.uint8(k & 0xFF))
    del arr
    if not ok:
        return "payload pattern"
    want = (k * 1000, k * 1000 - 1, 1000, k, k + 1, 0xA5000000 | (k & 0xFFFF), f"frame-{k}".encode())
    got = (m.pts_ns, m.dts_ns, m.duration_ns, m.offset, m.offset_end, m.flags, bytes(m.user))
    if got != want:
        return f"metadata {got} != {want}"
    if description != f"bridge-test;generation={k // every}":
        return f"description {description!r}"
    if hasattr(buf, "format"):  # the binding has formats: the publisher's must be here
        if buf.format is None:
            return "format lost (the publisher set one)"
        if not _format_ok(buf.format, nbytes):
            return f"format {buf.format!r}"
    return None


def _format_ok(fmt, nbytes: int) -> bool:
    """u8, one dimension of nbytes, fourcc 'PXBR' (as the binding's Format gives them)."""
    shape = tuple(getattr(fmt, "shape", ()))
    fourcc = getattr(fmt, "fourcc", None)
    return shape == (nbytes,) and fourcc == 0x52425850 and fmt.dtype == np.uint8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--rejoin", action="store_true")
    args = ap.parse_args()
    base = np.resize(np.arange(256, dtype=np.uint8), args.bytes)
    seqs, bad, rejoins, missed = [], [], 0, 0
    format_checked = False
    deadline = time.monotonic() + args.timeout
    sub = px.Subscriber(args.name, timeout=args.timeout)
    say(event="joined")
    while len(seqs) < args.frames and time.monotonic() < deadline:
        try:
            buf = sub.recv(timeout=max(0.0, deadline - time.monotonic()))
        except px.ChannelClosed:
            missed += sub.stats().missed
            sub.close()
            if not args.rejoin:
                break
            rejoins += 1
            sub = px.Subscriber(args.name, timeout=max(0.1, deadline - time.monotonic()))
            continue
        except px.Timeout:
            break
        deadline = time.monotonic() + args.timeout  # nothing for S seconds ends it
        k = buf.metadata.sequence
        format_checked |= getattr(buf, "format", None) is not None
        why = check(buf, sub.description, k, args.bytes, args.every, base)
        if why:
            bad.append([k, why])
        seqs.append(k)
        buf.release()
    missed += sub.stats().missed
    sub.close()
    say(event="done", seqs=seqs, bad=bad, rejoins=rejoins, missed=missed,
        format_checked=format_checked)


if __name__ == "__main__":
    main()
