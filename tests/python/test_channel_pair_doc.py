# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Channel.pair's documentation: its fork example runs as written, and the .pyi stub carries
the same text."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import parallax as px

INTRO = "Two connected ends, made for ``os.fork()``."


def module_doc() -> str:
    doc = px.Channel.pair.__doc__
    return inspect.cleandoc(doc[doc.index(INTRO):])  # pybind11 puts the signature first


def stub_doc() -> str:
    tree = ast.parse((Path(px.__file__).parent / "_parallax.pyi").read_text())
    channel = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Channel")
    pair = next(n for n in channel.body if isinstance(n, ast.FunctionDef) and n.name == "pair")
    return ast.get_docstring(pair)


def test_the_doc_says_which_end_each_process_keeps():
    doc = module_doc()
    assert "parent keeps one end" in doc and "child keeps the other" in doc
    assert "watches the peer process" in doc


def test_the_fork_example_runs():
    example = textwrap.dedent(module_doc().split("Example::", 1)[1])
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "child got b'hello' 1\n"


def test_the_stub_has_the_same_doc():
    assert stub_doc() == module_doc()
