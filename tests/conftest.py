"""Shared fixtures: the real datasets (../shared/data), the shipped model, a tiny random model.

Other parts of the project may add fixtures here; keep each one documented and cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """<repo>/../shared/data, or the folder named by CELLPROP_SHARED_DATA."""
    env = os.environ.get("CELLPROP_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets; tests using it skip (with the reason) when the folder is absent."""
    folder = shared_data_dir()
    if not (folder / "c2c12-phase" / "images").is_dir():
        pytest.skip(f"real data not found at {folder} (set CELLPROP_SHARED_DATA)")
    return folder


@pytest.fixture(scope="session")
def shared_data_if_any() -> Path | None:
    """The real datasets where they are at hand, else None: for tests that use them if they can."""
    folder = shared_data_dir()
    return folder if (folder / "c2c12-phase" / "images").is_dir() else None


def _shipped_model_dir(name: str) -> Path:
    """A shipped model folder; skips the test until it is committed."""
    folder = ROOT / "resources" / "models" / name
    if not (folder / "model.json").is_file():
        pytest.skip(f"the shipped model resources/models/{name} is not there yet")
    return folder


@pytest.fixture(scope="session")
def phase_model_dir() -> Path:
    """The shipped phase-contrast model folder."""
    return _shipped_model_dir("phase")


@pytest.fixture(scope="session")
def phase_model(phase_model_dir):
    """The shipped phase model loaded on the CPU (loaded once per test session)."""
    from cellprop.engine import load_model

    return load_model(phase_model_dir, device="cpu")


@pytest.fixture(scope="session")
def dic_model_dir() -> Path:
    """The shipped DIC model folder."""
    return _shipped_model_dir("dic")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised, narrow U-Net exported with the training code's exporter.

    Exercises the engine's plumbing (shapes, batching, tiling, outputs) in seconds; its
    segmentations mean nothing. Needs torch (the 'train' extra); skipped without it.
    """
    pytest.importorskip("torch")
    import torch
    from cellprop.training.export import export_model
    from cellprop.training.unet import UNet

    torch.manual_seed(0)
    net = UNet(base_channels=4, depth=3).eval()
    folder = tmp_path_factory.mktemp("tiny-model")
    export_model(
        net,
        folder,
        name="tiny",
        description="random weights, for plumbing tests",
        modality="phase",
        scale=0.5,
        normalisation={"method": "percentile", "low": 1.0, "high": 99.8},
        cell_diameter_px=12.0,
        sigma_px=4.0,
        training={},
    )
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from cellprop.engine import load_model

    return load_model(tiny_model_dir, device="cpu")
