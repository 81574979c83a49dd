# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Every public name of the package is documented: classes and functions with an example,
every public method and property with a docstring, and signatures that show real types
(help() never shows a bare ``object`` where the binding converts the argument itself)."""

from __future__ import annotations

import enum
import inspect
import re

import pytest

import parallax as px
import parallax._parallax as ext

PUBLIC = [n for n in px.__all__ if not n.startswith("_") and n != "errors"]
CLASSES = [n for n in PUBLIC if isinstance(getattr(px, n), type)]
FUNCTIONS = [n for n in PUBLIC if callable(getattr(px, n)) and n not in CLASSES]
# Classes that are plain records or enums: their fields are documented in the class doc.
RECORDS = {"ChannelStats", "PublisherStats", "SubscriberStats", "SubscriberInfo", "Metadata"}
SIGNATURE = re.compile(r"^\s*(?:\d+\. )?[\w.]+\(.*\)(?: -> .*)?$")


def text_of(doc: str | None) -> str:
    """The docstring without the signature lines pybind11 puts first."""
    lines = [ln for ln in (doc or "").splitlines() if not SIGNATURE.match(ln)]
    lines = [ln for ln in lines if ln.strip() not in ("--", "Overloaded function.")]
    return "\n".join(lines).strip()


def members(cls: type):
    for name, value in vars(cls).items():
        if name.startswith("_") or isinstance(value, enum.Enum):
            continue
        yield name, value


@pytest.mark.parametrize("name", CLASSES + FUNCTIONS)
def test_every_public_class_and_function_has_a_docstring(name):
    assert text_of(getattr(px, name).__doc__), f"{name} has no docstring"


def is_exception(name: str) -> bool:
    obj = getattr(px, name)
    return isinstance(obj, type) and issubclass(obj, BaseException)


@pytest.mark.parametrize("name", [n for n in CLASSES + FUNCTIONS
                                  if not is_exception(n) and n not in RECORDS | {"MemoryType"}])
def test_every_public_class_and_function_shows_an_example(name):
    obj = getattr(px, name)
    doc = text_of(obj.__doc__)
    if isinstance(obj, type) and issubclass(obj, px.Segment) and obj is not px.Segment:
        doc += text_of(px.Segment.__doc__)
    assert "Example" in doc or ">>>" in doc, f"{name}'s docstring has no example"


@pytest.mark.parametrize("cls", [n for n in CLASSES
                                 if not issubclass(getattr(px, n), (BaseException, enum.Enum))])
def test_every_public_method_and_property_has_a_docstring(cls):
    missing = [name for name, value in members(getattr(px, cls)) if not text_of(value.__doc__)]
    assert not missing, f"{cls}: undocumented {missing}"


OWN = ["Channel", "Listener", "Publisher", "Subscriber", "Segment", "HeapSegment",
       "SharedMemorySegment", "HugePageSegment", "MappedFileSegment"]


@pytest.mark.parametrize("cls", OWN)
def test_signatures_show_real_types(cls):
    bad = []
    for name, value in list(members(getattr(px, cls))) + [("__init__", getattr(px, cls).__init__)]:
        doc = getattr(value, "__doc__", None) or ""
        for line in doc.splitlines():
            if SIGNATURE.match(line) and re.search(r": object\b|-> object\b", line):
                bad.append(line.strip())
    assert not bad, bad


def test_module_functions_show_real_types():
    for name in ("stream_stats", "stream_subscribers", "list_streams", "version",
                 "status_string"):
        first = getattr(ext, name).__doc__.splitlines()[0]
        assert "object" not in first, first


def test_async_methods_are_coroutine_functions_with_docs():
    for cls in (px.Channel, px.Subscriber):
        assert inspect.iscoroutinefunction(cls.recv_async)
        assert "Example" in cls.recv_async.__doc__
        assert "Raises" in cls.recv_async.__doc__


def test_channel_pair_says_which_end_each_process_keeps():
    doc = px.Channel.pair.__doc__
    assert "parent keeps one end" in doc and "child keeps the other" in doc
    assert "multiprocessing" in doc and "this process keeps the other" in doc
