# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The .pyi stubs describe what the module really has (no missing or stale names)."""

from __future__ import annotations

import ast
from pathlib import Path

import parallax as px
import parallax._parallax as ext


def stub_tree():
    return ast.parse((Path(px.__file__).parent / "_parallax.pyi").read_text())


def public(names):
    return {n for n in names if not n.startswith("_")}


def test_stub_classes_and_members_match_the_module():
    tree = stub_tree()
    stub_classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    module_classes = {n for n in public(dir(ext)) if isinstance(getattr(ext, n), type)}
    assert module_classes <= set(stub_classes), module_classes - set(stub_classes)
    for name in module_classes:
        cls = getattr(ext, name)
        stub_members = set()
        for node in ast.walk(stub_classes[name]):
            if isinstance(node, ast.FunctionDef):
                stub_members.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                stub_members.add(node.target.id)
            elif isinstance(node, ast.Assign):
                stub_members.update(t.id for t in node.targets if isinstance(t, ast.Name))
        # Members a base class declares in the stub count for subclasses too.
        for base in cls.__mro__[1:]:
            if base.__name__ in stub_classes:
                for node in ast.walk(stub_classes[base.__name__]):
                    if isinstance(node, ast.FunctionDef):
                        stub_members.add(node.name)
        real = public(vars(cls)) if not issubclass(cls, int) else set(cls.__members__)
        assert real <= stub_members, (name, real - stub_members)


def test_stub_functions_and_constants_match_the_module():
    tree = stub_tree()
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    names |= {n.target.id for n in tree.body
              if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    module_names = {n for n in public(dir(ext)) if not isinstance(getattr(ext, n), type)}
    assert module_names == names - {"__version__"}, module_names ^ names
