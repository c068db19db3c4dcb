"""`pip install .` carries the models: the wheel holds them and works outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: What a build never takes from the checkout: setuptools' own build/ and egg-info (a
#: build in place keeps in build/lib every file removed since, and ships it), the venv, outputs.
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*-output", ".*cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a clean copy of the source tree, as a release is built."""
    import shutil

    source = tmp_path_factory.mktemp("source") / "cellprop"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        cwd=out,
        capture_output=True,
        text=True,
    )
    # A resources/ folder missing from pyproject's packages (a model added) builds all the same,
    # with a page of setuptools warnings at every install: list it there.
    assert "would be ignored" not in built.stdout + built.stderr, built.stdout + built.stderr
    (found,) = out.glob("cellprop-*.whl")
    return found


def test_wheel_carries_code_models_and_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.name for p in (ROOT / "resources" / "models").iterdir() if p.is_dir())
    assert shipped, "no models in resources/models"
    for model in shipped:
        for f in ("unet.onnx", "guided.onnx", "model.json"):
            assert f"cellprop/resources/models/{model}/{f}" in names
    samples = ROOT / "resources" / "samples"
    for sample in (p for p in samples.rglob("*") if p.is_file()):  # the time-lapse's frames too
        assert f"cellprop/resources/samples/{sample.relative_to(samples).as_posix()}" in names
    for module in (
        "cellprop/__init__.py",
        "cellprop/cli.py",
        "cellprop/engine/__init__.py",
        "cellprop/app/__init__.py",
        "cellprop/training/__init__.py",
    ):
        assert module in names
    # Nothing called app/ or engine/ at the top of site-packages, and no test/installer code.
    assert not any(
        n.split("/")[0] in {"app", "engine", "training", "resources", "tests"} for n in names
    )
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    # Every module in it is one of the source tree's now (none removed since), and the
    # attribution of the shipped samples and the models' training data goes with them.
    folders = {"engine": "engine", "app": "app", "training": "training", "": "cellprop"}
    for name in (n for n in names if n.startswith("cellprop/") and n.endswith(".py")):
        part = name.split("/")
        folder = folders.get(part[1] if len(part) > 2 else "", part[1])
        assert (ROOT / folder / part[-1]).is_file(), name
    assert "cellprop/resources/ATTRIBUTION.md" in names


def test_installed_wheel_finds_its_models_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import cellprop.engine as e, cellprop.resources as r;"
        "print(e.__file__); print(r.ROOT);"
        "m = e.load_model(e.list_models()[0].name, device='cpu'); print(m.path)"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for line in out[:3]:
        assert line.startswith(str(target)), out
    # `python -m cellprop` is the cellprop command (where its script is not on the PATH)
    shown = subprocess.run(
        [sys.executable, "-m", "cellprop", "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0 and "cellprop" in shown.stdout + shown.stderr, shown


def test_the_source_distribution_carries_the_installers_build(tmp_path):
    """The sdist holds tests/test_installer.py and the Makefile's `installer` target: it
    carries installer/ too (build.py, the spec, the bundle's licence texts), not its outputs
    (tests/test_installer.py failed from it: "can't open file .../installer/build.py")."""
    import shutil
    import tarfile

    source = tmp_path / "cellprop"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    for left in ("build", "dist"):  # a bundle built in the checkout: never shipped
        (source / "installer" / left / "x").mkdir(parents=True)
    out = tmp_path / "sdist"
    out.mkdir()
    code = (
        "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=source, check=True, capture_output=True
    )
    (sdist,) = out.glob("cellprop-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in (
        "installer/build.py",
        "installer/cellprop.spec",
        "installer/licenses/NOTICE.md",
        "tests/test_installer.py",
        "Makefile",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("installer/build/", "installer/dist/")) for n in names)


def test_the_installers_build_without_pyinstaller_says_so(monkeypatch, capsys):
    """installer/build.py in a Python without PyInstaller: one line saying what to install
    (it ended in a CalledProcessError traceback)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_py", ROOT / "installer" / "build.py")
    build_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_py)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        build_py.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "PyInstaller" else real(name, *a),
    )
    assert build_py.main([]) == 2
    err = capsys.readouterr().err
    assert "PyInstaller is not installed" in err and "pyinstaller>=6.5" in err
