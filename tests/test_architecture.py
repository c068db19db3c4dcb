"""Layering and lint rules: a broken import contract or a lint error fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402


def _lint_imports_in(tree: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": ""},
        capture_output=True,
        text=True,
    )


def test_import_contracts_hold():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lint_imports.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("folder", "line", "forbidden"),
    [
        ("engine", "import torch", "torch"),
        ("engine", "from PySide6 import QtCore", "PySide6"),
        ("app", "import torch", "torch"),
        ("engine", "import cellprop.app", "cellprop.app"),
    ],
)
def test_import_contracts_catch_a_violation(tmp_path, folder, line, forbidden):
    tree = lint_imports.build_tree(tmp_path)
    (tree / "cellprop" / folder / "_violation.py").write_text(line + "\n")
    result = _lint_imports_in(tree)
    assert result.returncode != 0
    assert f"cellprop.{folder}._violation -> {forbidden}" in result.stdout


def test_the_engine_type_checks():
    """mypy over engine/ ([tool.mypy] in pyproject.toml): the engine's annotations hold."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
