"""The one-folder desktop bundle: build it, run the frozen CLI and the frozen GUI (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "installer" / "dist" / "cellprop"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="the bundle is built on Linux here"
    ),
]


@pytest.fixture(scope="module")
def bundle() -> Path:
    subprocess.run([sys.executable, str(ROOT / "installer" / "build.py")], check=True, cwd=ROOT)
    assert (BUNDLE / "cellprop").exists() and (BUNDLE / "cellprop-gui").exists()
    return BUNDLE


def _samples() -> list[Path]:
    samples = sorted(
        p
        for p in (ROOT / "resources" / "samples").iterdir()
        if p.suffix.lower() in {".png", ".tif", ".tiff", ".jpg"}
    )
    assert samples, "no sample images shipped"
    return samples


def _sample() -> Path:
    return _samples()[0]


def _bare_env(**extra: str) -> dict[str, str]:
    # No PATH to the venv, no PYTHONPATH, no HOME settings: the bundle must carry everything.
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_bundle_leaves_out_torch_and_training(bundle):
    names = {p.name for p in bundle.rglob("*")}
    assert not any(n.startswith("libtorch") for n in names)
    assert not (bundle / "_internal" / "torch").exists()
    assert any(p.name == "unet.onnx" for p in bundle.rglob("unet.onnx"))


def test_bundle_carries_the_licences_of_what_it_redistributes(bundle):
    """Qt (LGPL), onnxruntime (MIT, with its third-party notices), OpenCV, PyMaxflow (GPL):
    their licence texts go along with them; no link in it points nowhere."""
    licences = next(bundle.rglob("licenses"))
    for dist in ("opencv-python-headless", "numpy", "scipy", "scikit-image", "tifffile"):
        assert any((licences / dist).rglob("*")), dist
    # the two wheels that ship none: stated, the LGPL's text beside the GPL's
    notice = (licences / "NOTICE.md").read_text(encoding="utf-8")
    assert "PySide6-Essentials" in notice and "PyMaxflow" in notice
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (licences / "LGPL-3.0.txt").read_text()
    assert (bundle / "LICENSE").is_file() or (bundle / "_internal" / "LICENSE").is_file()
    # Python's own, a package no requirement names, and the system libraries' (QA: none)
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in (licences / "python" / "LICENSE.txt").read_text()
    assert any((licences / "typing_extensions").rglob("*"))
    system = [p.parent.name for p in (licences / "system").glob("*/copyright")]
    assert any(name.startswith("libssl") for name in system), system
    assert any(name.startswith("libglib") for name in system), system
    onnxruntime = [p for p in licences.iterdir() if p.name.startswith("onnxruntime")]
    assert any(f.name.startswith("ThirdPartyNotices") for d in onnxruntime for f in d.rglob("*"))
    dangling = [p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()]
    assert not dangling, dangling[:3]


def test_frozen_cli_segments_the_samples_in_worker_processes(bundle, tmp_path):
    # --workers 2 spawns worker processes, which a frozen executable must start as workers
    # (multiprocessing.freeze_support in installer/launch_cli.py), not as a second CLI.
    samples = _samples()
    assert len(samples) >= 2, "two samples are needed for two workers"
    sample = samples[0]
    out = tmp_path / "out"
    result = subprocess.run(
        [str(bundle / "cellprop"), "segment", *map(str, samples), "--out", str(out)]
        + ["--device", "cpu", "--workers", "2"],
        env=_bare_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stem = sample.stem
    for name in (
        f"{stem}_labels.tif",
        f"{stem}_overlay.png",
        f"{stem}_cells.csv",
        "cells.csv",
        "summary.csv",
        "run.json",
    ):
        assert (out / name).exists(), name
    rows = (out / f"{stem}_cells.csv").read_text().strip().splitlines()
    assert len(rows) > 10, "the frozen CLI found almost no cells on a sample full of cells"
    assert "[E:onnxruntime" not in result.stderr, "onnxruntime's CUDA noise reached the user"
    summary = (out / "summary.csv").read_text()
    assert summary.count(",done,") == len(samples), summary


def test_frozen_cli_reads_tiffs_of_every_compression_microscopes_write(bundle, tmp_path):
    """A sample saved as TIFF with each compression microscopes and Fiji write (the LZW of
    the Cell Tracking Challenge's images among them): the bundle segments each, as the pip
    install does (its imagecodecs lacked a module that LZW, PackBits and zstd need, and
    every such file failed: "the TIFF data cannot be decoded")."""
    import tifffile
    from cellprop.engine import read_image

    pixels = read_image(_sample()).pixels[:400, :500]  # (a crop: quicker)
    folder = tmp_path / "in"
    folder.mkdir()
    kinds = ("none", "lzw", "packbits", "zlib", "zstd", "lzma", "jpeg", "jpeg2000")
    for kind in kinds:
        compression = None if kind == "none" else kind
        tifffile.imwrite(folder / f"{kind}.tif", pixels, compression=compression)
    out = tmp_path / "out"
    run = subprocess.run(
        [str(bundle / "cellprop"), "segment", str(folder), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=_bare_env(),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    summary = (out / "summary.csv").read_text()
    assert summary.count(",done,") == len(kinds), summary


def test_frozen_gui_self_test(bundle, tmp_path):
    result = subprocess.run(
        [str(bundle / "cellprop-gui"), "--self-test", str(_sample())],
        env=_bare_env(QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bundle_size_reported(bundle):
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 2**20
    print(f"bundle size: {size:.0f} MB")
    assert size < 1500, f"bundle is {size:.0f} MB"
