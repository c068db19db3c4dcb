"""Copy the code folders into a plain ``cellprop`` package of the installed shape.

pyproject maps engine/ -> cellprop.engine (and app/, training/, resources/ likewise) with
setuptools' ``package-dir``. Tools that read packages straight from the file system (grimp for
the import contracts, PyInstaller's module graph) do not understand that mapping, so they are
pointed at such a copy instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = {
    "cellprop": "cellprop",
    "cellprop/engine": "engine",
    "cellprop/app": "app",
    "cellprop/training": "training",
    "cellprop/resources": "resources",
}


def stage_package(dest: Path, root: Path = ROOT) -> Path:
    """Copy the Python sources into ``dest/cellprop/...``; return ``dest``.

    Only ``.py`` files are copied: models and samples travel as data where they are needed.
    """
    for target, source in LAYOUT.items():
        src = root / source
        for f in src.rglob("*.py"):
            if "__pycache__" in f.parts:
                continue
            out = dest / target / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
    return dest
