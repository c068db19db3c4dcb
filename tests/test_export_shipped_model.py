"""The shipped phase-contrast model: a complete, documented model folder that detects cells.

Needs no torch: only onnxruntime and the model files, as the engine uses them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from cellprop.engine.io import read_image  # noqa: E402
from cellprop.engine.normalise import pad_to_multiple, prepare  # noqa: E402
from cellprop.training.data import load_dataset  # noqa: E402
from cellprop.training.metrics import detection_score, find_peaks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "resources" / "models" / "phase"
SHARED_DATA = Path(os.environ.get("CELLPROP_SHARED_DATA", REPO.parent / "shared" / "data"))
C2C12 = SHARED_DATA / "c2c12-phase"


@pytest.fixture(scope="module")
def info():
    return json.loads((MODEL / "model.json").read_text(encoding="utf-8"))


def _session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_model_json_has_what_the_engine_needs(info):
    assert info["format"] == "cellprop-model" and info["format_version"] == 1
    assert info["name"] == "phase" and info["modality"] == "phase"
    for role in ("unet", "guided"):
        assert (MODEL / info["files"][role]).is_file()
    inp = info["input"]
    assert inp["channels"] == 1
    assert inp["stride"] == 2 ** info["architecture"]["depth"]
    assert inp["normalisation"]["method"] == "percentile"
    assert 0 < inp["scale"] <= 1
    assert info["cell_diameter_px"] > 0 and info["sigma_px"] > 0
    assert info["receptive_field_radius_px"] > info["cell_diameter_px"]
    defaults = info["defaults"]
    assert 0 < defaults["threshold"] < 1
    assert defaults["polarity"] == "bright_boundary"
    for key in ("region_radius_px", "graphcut_weight", "edge_beta", "min_size_px"):
        assert defaults[key] > 0
    training = info["training"]
    assert training["val_images"] and not set(training["val_images"]) & set(
        training["train_images"]
    )
    # How to make it again: a cellprop-train command line, or `make models`' recipe for it.
    assert training["command"].startswith("cellprop-train ") or training["command"].endswith(
        "-m cellprop.training.models DATA --only phase"
    )
    assert info["export_check"]["unet_max_abs_diff"] <= 1e-4
    assert info["export_check"]["guided_rel_error"] <= 1e-4


def test_the_pair_is_small_and_has_the_documented_interface(info):
    size = sum((MODEL / name).stat().st_size for name in info["files"].values())
    assert size < 8_000_000
    unet = _session(MODEL / info["files"]["unet"])
    guided = _session(MODEL / info["files"]["guided"])
    assert [i.name for i in unet.get_inputs()] == ["image"]
    assert [o.name for o in unet.get_outputs()] == ["likelihood"]
    assert [i.name for i in guided.get_inputs()] == ["image", "grad_output"]
    assert [o.name for o in guided.get_outputs()] == ["grad_input"]
    stride = info["input"]["stride"]
    x = np.random.default_rng(0).random((3, 1, 6 * stride, 9 * stride), dtype=np.float32)
    y = unet.run(None, {"image": x})[0]
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    g = guided.run(None, {"image": x, "grad_output": (y > 0.5).astype(np.float32)})[0]
    assert g.shape == x.shape and np.isfinite(g).all()


@pytest.mark.data
def test_the_shipped_model_finds_the_clicked_cells_of_its_validation_frame(info):
    if not (C2C12 / "points.csv").is_file():
        pytest.skip(f"shared data not found at {C2C12} (set CELLPROP_SHARED_DATA)")
    held_out = {Path(name).name for name in info["training"]["val_images"]}
    samples = [s for s in load_dataset(C2C12) if s.path.name in held_out]
    assert samples, f"validation images {held_out} not found in {C2C12}"
    inp = info["input"]
    norm = inp["normalisation"]
    unet = _session(MODEL / "unet.onnx")
    score = None
    for sample in samples:
        image = prepare(read_image(sample.path).pixels, inp["scale"], norm["low"], norm["high"])
        padded = pad_to_multiple(image, inp["stride"])[None, None].astype(np.float32)
        likelihood = unet.run(None, {"image": padded})[0][0, 0]
        likelihood = likelihood[: image.shape[0], : image.shape[1]]
        # The threshold the training summary was scored at (the engine default may be retuned).
        peaks = find_peaks(likelihood, info["training"]["val_detection"]["threshold"])
        peaks = (peaks + 0.5) / inp["scale"] - 0.5  # back to original pixels
        found = detection_score(peaks, sample.points, 10.0)
        score = found if score is None else score + found
    # The paper reports F 0.948 on C2C12; the shipped model must stay at least that good.
    assert score.f1 >= 0.95, score.as_dict()
    assert score.f1 == pytest.approx(info["training"]["val_detection"]["f1"], abs=0.02)
