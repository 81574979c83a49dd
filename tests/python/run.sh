#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The Python suite: installs what it needs if missing, builds and installs the package with
# `pip install .` (libparallax and the module, from source), then runs pytest against the
# installed package from a directory where the source python/ folder is not importable.
#
# Usage: tests/python/run.sh [build_dir]
#   build_dir (or $PX_BUILD_DIR): a CMake build of the repo holding examples/c/px_producer,
#   for the cross-language test (skipped, with the reason, when the binary is absent).
# Extra pytest arguments can be given in $PYTEST_ARGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}

if [ $# -ge 1 ]; then
  export PX_BUILD_DIR=$1
fi

# The top-level project adds the module only when asked; without that line the wheel would
# hold no extension and every test would fail on import, so say so plainly instead.
if ! grep -q 'PX_BUILD_PYTHON' "$root/CMakeLists.txt"; then
  echo "run.sh: CMakeLists.txt does not add bindings/python (missing:" >&2
  echo "  if(PX_BUILD_PYTHON) add_subdirectory(bindings/python) endif())" >&2
  exit 1
fi

pip_install() { "$python" -m pip install --quiet --disable-pip-version-check "$@"; }

# Test-time dependencies (the build ones, scikit-build-core and pybind11, are fetched by pip's
# isolated build from pyproject.toml). readelf is only used when present.
"$python" -c 'import numpy, pytest' 2>/dev/null || pip_install numpy pytest
# mypy --strict over the examples (test_mypy.py).
"$python" -c 'import mypy' 2>/dev/null || pip_install mypy

echo "run.sh: pip install . (builds libparallax and the module)"
PIP_ROOT_USER_ACTION=ignore pip_install "$root"

cd "$(mktemp -d /tmp/px-pytest-XXXXXX)"
# -p no:cacheprovider: leave nothing behind in the source tree.
exec "$python" -m pytest -q -p no:cacheprovider --rootdir "$here" ${PYTEST_ARGS:-} "$here"
