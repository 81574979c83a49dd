# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Metadata: fields, None times, user bytes, range checks, copies."""

from __future__ import annotations

import copy
import pickle

import pytest

import parallax as px


def test_defaults_match_px_metadata_init():
    m = px.Metadata()
    assert m.sequence == 0 and m.offset == 0 and m.offset_end == 0 and m.flags == 0
    assert m.pts_ns is None and m.dts_ns is None and m.duration_ns is None
    assert m.user == b""


def test_fields_round_trip_through_a_buffer():
    m = px.Metadata(sequence=2**64 - 1, pts_ns=-5, dts_ns=2**63 - 1, duration_ns=0,
                    offset=7, offset_end=2**64 - 1, flags=2**32 - 1, user=b"\x00hello\xff")
    buf = px.Buffer(px.HeapSegment(16), metadata=m)
    got = buf.metadata
    assert got == m
    assert got.sequence == 2**64 - 1 and got.pts_ns == -5 and got.dts_ns == 2**63 - 1
    assert got.duration_ns == 0 and got.flags == 2**32 - 1 and got.user == b"\x00hello\xff"
    assert got is not buf.metadata  # a copy each time


def test_time_none_is_none():
    m = px.Metadata(pts_ns=px.TIME_NONE)
    assert m.pts_ns is None
    m.pts_ns = 10
    assert m.pts_ns == 10
    m.pts_ns = None
    assert m.pts_ns is None


def test_user_bytes_limit():
    m = px.Metadata(user=b"x" * 64)
    assert len(m.user) == px.METADATA_USER_MAX == 64
    with pytest.raises(px.InvalidArgument, match="65 bytes"):
        px.Metadata(user=b"x" * 65)
    m.user = bytearray(b"ab")
    assert m.user == b"ab"
    m.user = memoryview(b"xyz")
    assert m.user == b"xyz"
    with pytest.raises(TypeError, match="bytes-like"):
        m.user = "text"
    m.user = None
    assert m.user == b""


@pytest.mark.parametrize(
    "field, value",
    [("sequence", -1), ("sequence", 2**64), ("offset", -1), ("offset_end", 2**64),
     ("flags", 2**32), ("flags", -1), ("pts_ns", 2**63), ("dts_ns", -(2**63) - 1),
     ("duration_ns", 2**100)],
)
def test_out_of_range_fields_are_invalid_argument(field, value):
    with pytest.raises(px.InvalidArgument, match=field):
        px.Metadata(**{field: value})
    m = px.Metadata()
    with pytest.raises(px.InvalidArgument, match=field):
        setattr(m, field, value)


def test_non_integers_are_type_errors():
    with pytest.raises(TypeError):
        px.Metadata(sequence=1.5)
    with pytest.raises(TypeError):
        px.Metadata(pts_ns="now")


def test_equality_copy_pickle_repr():
    m = px.Metadata(sequence=4, pts_ns=100, user=b"u")
    assert m == px.Metadata(sequence=4, pts_ns=100, user=b"u")
    assert m != px.Metadata(sequence=4, pts_ns=101, user=b"u")
    assert m != "not metadata"
    c = copy.copy(m)
    c.sequence = 5
    assert m.sequence == 4
    assert copy.deepcopy(m) == m
    assert pickle.loads(pickle.dumps(m)) == m
    assert "sequence=4" in repr(m) and "pts_ns=100" in repr(m) and "dts_ns=None" in repr(m)
    with pytest.raises(TypeError):
        hash(m)


def test_constructor_arguments_positional_and_keyword():
    m = px.Metadata(1, 2, 3, 4, 5, 6, 7, b"8")
    assert (m.sequence, m.pts_ns, m.dts_ns, m.duration_ns) == (1, 2, 3, 4)
    assert (m.offset, m.offset_end, m.flags, m.user) == (5, 6, 7, b"8")
    assert px.Metadata(9, flags=1) == px.Metadata(sequence=9, flags=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'seq'"):
        px.Metadata(seq=1)
    with pytest.raises(TypeError, match="multiple values for argument 'sequence'"):
        px.Metadata(1, sequence=2)
    with pytest.raises(TypeError, match="at most 8 arguments"):
        px.Metadata(1, 2, 3, 4, 5, 6, 7, b"", 9)
