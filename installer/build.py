"""Build the one-folder desktop bundle with PyInstaller and report its size.

    python installer/build.py [--cpu-only] [--clean]

Output: installer/dist/cellprop/ with ``cellprop-gui`` (the app) and ``cellprop`` (the command
line) side by side, the shipped models inside. ``--cpu-only`` leaves out onnxruntime's CUDA and
TensorRT providers (about 285 MB) for machines without an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
from source_tree import stage_package  # noqa: E402

DIST = HERE / "dist"
WORK = HERE / "build"


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build(cpu_only: bool = False, clean: bool = False) -> Path:
    """Run PyInstaller on cellprop.spec; return the bundle folder."""
    staged = WORK / "src"
    shutil.rmtree(staged, ignore_errors=True)
    stage_package(staged)
    env = dict(os.environ, CELLPROP_STAGED_SOURCES=str(staged))
    if cpu_only:
        env["CELLPROP_CPU_ONLY"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(HERE / "cellprop.spec"),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK),
    ]
    if clean:
        cmd.append("--clean")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=HERE.parent)  # (main says why it failed)
    bundle = DIST / "cellprop"
    print(
        f"built {bundle} in {time.perf_counter() - start:.0f} s, "
        f"{folder_size(bundle) / 2**20:.0f} MB"
    )
    if sys.platform == "win32":  # the setup program, of the version pyproject.toml says
        print(f"then: iscc /DAppVersion={_version()} installer\\cellprop.iss")
    return bundle


def _version() -> str:
    """The project's version, as pyproject.toml gives it."""
    import tomllib

    with open(HERE.parent / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-only", action="store_true", help="leave out onnxruntime's CUDA/TensorRT providers"
    )
    parser.add_argument("--clean", action="store_true", help="rebuild from scratch")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("PyInstaller") is None:
        print(
            "build.py: PyInstaller is not installed in this Python "
            f'({sys.executable}): pip install "pyinstaller>=6.5" (the installer extra; '
            "`make installer` installs it)",
            file=sys.stderr,
        )
        return 2
    try:
        build(cpu_only=args.cpu_only, clean=args.clean)
    except subprocess.CalledProcessError as exc:
        print(f"build.py: PyInstaller failed (exit {exc.returncode}); see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
