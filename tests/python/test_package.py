# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The installed package: layout, typing files, version, and that it is not the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import parallax as px
import parallax._parallax as ext

from conftest import REPO_ROOT


def test_the_installed_package_is_tested_not_the_source_folder():
    pkg = Path(px.__file__).resolve().parent
    assert pkg != (REPO_ROOT / "python" / "parallax").resolve()
    assert Path(ext.__file__).parent.resolve() == pkg


def test_library_ships_beside_the_module_and_is_found_through_origin_rpath():
    pkg = Path(px.__file__).parent
    libs = sorted(p.name for p in pkg.glob("libparallax.so*"))
    assert libs == ["libparallax.so.0"], libs  # one copy, the SONAME the module links
    readelf = subprocess.run(
        ["readelf", "-d", ext.__file__], capture_output=True, text=True, check=False
    )
    if readelf.returncode == 0:
        assert "$ORIGIN" in readelf.stdout
        assert "libparallax.so.0" in readelf.stdout
    # The library actually loaded is the packaged one.
    with open(f"/proc/{os.getpid()}/maps") as maps:
        loaded = {line.split()[-1] for line in maps if "libparallax.so" in line}
    assert loaded == {str((pkg / "libparallax.so.0").resolve())}


def test_typing_files_are_installed():
    pkg = Path(px.__file__).parent
    assert (pkg / "py.typed").is_file()
    stub = (pkg / "_parallax.pyi").read_text()
    for name in ("class MemoryPool", "def loan", "class Channel", "class Metadata"):
        assert name in stub


def test_wheel_holds_no_headers_or_cmake_files():
    pkg = Path(px.__file__).parent
    names = {p.name for p in pkg.rglob("*")}
    assert not any(n.endswith((".h", ".cmake", ".pc")) for n in names), names


def test_import_works_from_any_directory(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import parallax, sys; print(parallax.HeapSegment(64).__len__())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "64"


def test_version_matches_the_loaded_library():
    major, minor, patch = px.version()
    assert px.__version__ == f"{major}.{minor}.{patch}"
    assert px.HEADER_VERSION == px.version()


def test_public_names_are_exported():
    for name in px.__all__:
        assert hasattr(px, name), name
