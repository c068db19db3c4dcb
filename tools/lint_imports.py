"""Run import-linter's contracts (pyproject.toml) on the source tree.

import-linter (grimp) reads packages from the file system and does not understand
setuptools' ``package-dir`` mapping (engine/ -> cellprop.engine), so the code folders are
copied into a temporary ``cellprop`` package of the installed shape and checked there.
Exit status is lint-imports' own: non-zero when a contract is broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from source_tree import stage_package as build_tree  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        build_tree(Path(tmp))
        env = dict(os.environ, PYTHONPATH=tmp)
        exe = Path(sys.executable).with_name("lint-imports")
        cmd = [
            str(exe) if exe.exists() else "lint-imports",
            "--no-cache",
            "--config",
            str(ROOT / "pyproject.toml"),
        ]
        return subprocess.call(cmd, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
