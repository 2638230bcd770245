"""Point the ROS wheels' CMake exports at this venv's Python and numpy headers.

The ``ros-*`` wheels are built on a manylinux image, and their exported CMake targets
name include directories that exist only there (``/opt/python/cp3XX-cp3XX/...``).
CMake refuses imported targets whose include directories do not exist, so a colcon
build of any interface package fails until those paths name real ones. This rewrites
them, in place and idempotently, inside the venv only (nothing outside the repository
is touched).
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
_NUMPY_INCLUDE = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_)?core/include"
)


def fix_tree(share_dir: Path) -> list[Path]:
    """Rewrite every ``*.cmake`` file under ``share_dir``; return the files changed."""
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = []
    for cmake_file in sorted(share_dir.rglob("*.cmake")):
        text = cmake_file.read_text(encoding="utf-8")
        if "/opt/python/" not in text:
            continue
        new_text = _NUMPY_INCLUDE.sub(numpy_include, text)
        new_text = _PYTHON_INCLUDE.sub(python_include, new_text)
        if new_text != text:
            cmake_file.write_text(new_text, encoding="utf-8")
            changed.append(cmake_file)
    return changed


def main() -> int:
    share_dir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(sys.prefix) / "share")
    if not share_dir.is_dir():
        print(f"fix_wheel_cmake_paths: {share_dir} is not a directory", file=sys.stderr)
        return 2
    for path in [Path(sysconfig.get_paths()["include"]), Path(numpy.get_include())]:
        if not path.is_dir():
            print(f"fix_wheel_cmake_paths: header directory {path} is missing", file=sys.stderr)
            return 2
    changed = fix_tree(share_dir)
    print(f"fix_wheel_cmake_paths: rewrote {len(changed)} CMake file(s) under {share_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
