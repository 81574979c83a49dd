# SPDX-License-Identifier: Apache-2.0 OR MIT
"""A consumer process for the multi-process tests (run as a script, never imported by pytest).

    python peer.py consume <socket_path> <frames> <frame_bytes> [connect|listen]

Connects to (or listens on) the path, receives the frames, checks each one against the
pattern of examples/c/frames.h (frame k: byte j is (k + j) & 0xff, metadata.sequence == k)
without copying it, and prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import parallax as px


def consume(path: str, frames: int, frame_bytes: int, mode: str) -> dict:
    if mode == "listen":
        with px.Listener(path) as listener:
            print("listening", flush=True)
            ch = listener.accept(timeout=30)
    else:
        ch = px.Channel.connect(path, timeout=30)  # waits for the listener to appear
    ramp = np.arange(frame_bytes, dtype=np.uint64).astype(np.uint8)  # j & 0xff
    seen, bad, readonly, meta_ok = [], [], True, True
    with ch:
        for k in range(frames):
            buf = ch.recv(timeout=30)
            md = buf.metadata
            arr = np.frombuffer(buf, np.uint8)  # no copy: the sender's memory
            readonly &= buf.readonly and not arr.flags.writeable
            if len(buf) != frame_bytes or not np.array_equal(arr, ramp + np.uint8(md.sequence & 0xFF)):
                bad.append(md.sequence)
            meta_ok &= md.sequence == k
            seen.append(md.sequence)
            del arr
            buf.release()
    return {"frames": len(seen), "first": seen[:3], "bad": bad, "readonly": readonly,
            "sequence_ok": meta_ok}


if __name__ == "__main__":
    cmd, path, frames, frame_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "connect"
    assert cmd == "consume", cmd
    print(json.dumps(consume(path, frames, frame_bytes, mode)), flush=True)
