# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Publisher.skip: stream numbers left out without a frame sent (a relay's upstream losses),
which a subscriber in another process counts as missed, and which move no publisher counter.

The subscriber is stream_peer.py, driven through test_streams' helpers (its fixtures give each
test a private runtime directory and a pool).
"""

from __future__ import annotations

import pytest

import parallax as px

from test_streams import (  # noqa: F401 (fixtures: pytest finds them by name here)
    Peer,
    peers,
    pool,
    publish_frame,
    runtime_dir,
    seqs,
    wait_for_subscribers,
)


def test_skip_shows_as_missed_at_a_subscriber_in_another_process(pool, peers):
    with px.Publisher("cam", slow_policy="block") as pub:
        peer: Peer = peers("cam")
        wait_for_subscribers(pub, 1)
        peer.expect("joined")
        publish_frame(pub, pool, 1)
        publish_frame(pub, pool, 2)
        pub.skip(5)  # five frames lost upstream, between 2 and 3
        publish_frame(pub, pool, 3)
        pub.skip(0)  # nothing
        with pytest.raises(px.InvalidArgument, match="overflows"):
            pub.skip(2**64 - 1)
        publish_frame(pub, pool, 4)  # the refused skip left the numbering as it was
        st = pub.stats()
        assert (st.published, st.dropped, st.subscribers) == (4, 0, 1)
    done = peer.finish()
    assert seqs(done) == [1, 2, 3, 4]
    assert (done["received"], done["missed"]) == (4, 5)


def test_skip_refuses_bad_counts_and_a_closed_publisher(pool):
    pub = px.Publisher("cam")
    with pytest.raises(px.InvalidArgument, match="count must not be negative"):
        pub.skip(-1)
    with pytest.raises(px.InvalidArgument, match="count .* is too large"):
        pub.skip(2**64)
    with pytest.raises(TypeError):
        pub.skip(1.5)
    pub.skip(2**64 - 1)  # to the last number: taken, and no frame can follow it
    with pytest.raises(px.InvalidArgument, match="overflows"):
        pub.skip(1)
    with pytest.raises(px.InvalidArgument, match="numbering is used up"):
        publish_frame(pub, pool, 1)
    pub.close()
    with pytest.raises(px.InvalidArgument):
        pub.skip(1)
