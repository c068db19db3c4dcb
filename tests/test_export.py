"""ONNX export: unet.onnx and guided.onnx against torch, with onnxruntime, and model.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cellprop.engine.io import read_image  # noqa: E402
from cellprop.engine.normalise import prepare  # noqa: E402
from cellprop.training.export import (  # noqa: E402
    ExportCheck,
    export_model,
    export_onnx,
    load_onnx_session,
    verify_export,
)
from cellprop.training.guided import guided_gradient, plain_gradient  # noqa: E402
from cellprop.training.unet import UNet  # noqa: E402

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CELLPROP_SHARED_DATA", REPO.parent / "shared" / "data"))
C2C12 = SHARED_DATA / "c2c12-phase"


def _needs_c2c12():
    if not (C2C12 / "images" / "0000.png").is_file():
        pytest.skip(f"shared data not found at {C2C12} (set CELLPROP_SHARED_DATA)")


def _model(base: int = 8, depth: int = 3, seed: int = 0) -> UNet:
    """A small U-Net whose weights give a non-trivial likelihood and guided gradient.

    Fresh weights are fine for agreement tests, but BatchNorm's running statistics are set from
    real activations (a few forward passes in training mode) so that activations are not all
    saturated or all zero.
    """
    torch.manual_seed(seed)
    model = UNet(base, depth)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 64, 64))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _model()
    folder = tmp_path_factory.mktemp("export")
    unet_path, guided_path = export_onnx(model, folder)
    return model, unet_path, guided_path


@pytest.fixture(scope="module")
def real_crop():
    """A normalised 128 x 192 crop of a real phase-contrast frame at scale 0.5."""
    _needs_c2c12()
    image = prepare(read_image(C2C12 / "images" / "0000.png").pixels, 0.5)
    return np.ascontiguousarray(image[96:224, 160:352], dtype=np.float32)


def test_unet_onnx_equals_torch_on_random_input_of_several_sizes(exported):
    model, unet_path, _ = exported
    session = load_onnx_session(unet_path)
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 64, 64), (3, 1, 40, 96), (2, 1, 8, 24)]:
        x = rng.normal(0.5, 0.3, shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(["likelihood"], {"image": x})[0]
        assert got.shape == shape
        assert np.max(np.abs(got - expected)) <= 1e-4


@pytest.mark.data
def test_unet_onnx_equals_torch_on_a_real_image(exported, real_crop):
    model, unet_path, _ = exported
    x = real_crop[None, None]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = load_onnx_session(unet_path).run(["likelihood"], {"image": x})[0]
    assert np.max(np.abs(got - expected)) <= 1e-4


def _cell_seeds(shape, centres, radius):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    seeds = np.zeros((len(centres), 1, *shape), np.float32)
    for k, (r, c) in enumerate(centres):
        seeds[k, 0] = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
    return seeds


@pytest.mark.data
def test_guided_onnx_equals_torch_autograd_for_a_batch_of_cells(exported, real_crop):
    model, _, guided_path = exported
    shape = real_crop.shape
    seeds = _cell_seeds(shape, [(30, 40), (64, 96), (100, 150), (20, 170), (110, 20)], 6)
    images = np.repeat(real_crop[None, None], len(seeds), axis=0)
    expected = guided_gradient(model, torch.from_numpy(images), torch.from_numpy(seeds)).numpy()
    got = load_onnx_session(guided_path).run(
        ["grad_input"], {"image": images, "grad_output": seeds}
    )[0]
    assert got.shape == images.shape
    norms = np.linalg.norm(expected.reshape(len(seeds), -1), axis=1)
    assert np.all(norms > 0), "every cell must receive a gradient for the test to mean anything"
    errors = np.linalg.norm((got - expected).reshape(len(seeds), -1), axis=1)
    assert np.max(errors / norms) <= 1e-4
    # Each cell's map is its own: the batch items differ from one another.
    assert np.linalg.norm(got[0] - got[1]) > 0.1 * norms[0]
    # And the guided rule is really applied: the plain gradient is clearly different.
    plain = plain_gradient(model, torch.from_numpy(images), torch.from_numpy(seeds)).numpy()
    assert np.linalg.norm(plain - expected) / np.linalg.norm(expected) > 0.1


def test_guided_onnx_accepts_dynamic_batch_and_size(exported):
    model, _, guided_path = exported
    session = load_onnx_session(guided_path)
    rng = np.random.default_rng(2)
    for shape in [(1, 1, 16, 16), (6, 1, 48, 80)]:
        x = rng.random(shape, dtype=np.float32)
        g = (rng.random(shape) > 0.7).astype(np.float32)
        got = session.run(["grad_input"], {"image": x, "grad_output": g})[0]
        expected = guided_gradient(model, torch.from_numpy(x), torch.from_numpy(g)).numpy()
        assert got.shape == shape
        scale = max(np.abs(expected).max(), 1e-12)
        assert np.max(np.abs(got - expected)) <= 1e-4 * scale


def test_verify_export_reports_a_mismatch(exported, tmp_path):
    model, unet_path, guided_path = exported
    other = _model(seed=1)
    check = verify_export(other, unet_path, guided_path)
    assert not check.ok() and check.guided_outliers > 0.1  # another network: off everywhere
    assert verify_export(model, unet_path, guided_path).ok()


def test_verify_export_checks_on_an_image_smaller_than_the_stride(exported):
    """A crop of one small cell, smaller than the network's stride, as the image to check
    the export on: padded to the stride, as the engine pads it (a training of such crops
    ran every epoch, then failed at its export: 'image (14, 14) is smaller than the stride
    16')."""
    model, unet_path, guided_path = exported
    small = np.random.default_rng(0).random((model.stride - 2, model.stride - 1), np.float32)
    assert verify_export(model, unet_path, guided_path, small).ok()


def test_a_gradient_off_at_a_few_pixels_of_tied_maxima_passes_the_check():
    """Off at 46 of 196,608 pixels, 2% of its norm (a real training's check: torch and
    onnxruntime passed a max-pooling gradient to different ones of equal values): the
    export is right. Off at many pixels, or by much, it is not."""
    tied = ExportCheck(6e-8, 0.0202, 6.3e-5, 46 / 196_608)
    assert tied.ok()
    assert not ExportCheck(6e-8, 0.0202, 6.3e-5, 0.02).ok()  # off at 2% of the pixels
    assert not ExportCheck(6e-8, 0.2, 6.3e-5, 46 / 196_608).ok()  # off by a fifth
    assert not ExportCheck(2e-4, 1e-7, 1e-9, 0.0).ok()  # the likelihood off


def test_export_model_writes_the_documented_model_json(tmp_path):
    model = _model()
    info, check = export_model(
        model,
        tmp_path,
        name="test",
        description="a test model",
        modality="phase",
        scale=0.5,
        normalisation={"method": "percentile", "low": 1.0, "high": 99.8},
        cell_diameter_px=16.0,
        sigma_px=5.0,
        training={"datasets": ["none"], "epochs": 0},
    )
    assert check.ok()
    on_disk = json.loads((tmp_path / "model.json").read_text())
    assert on_disk == info
    assert on_disk["format"] == "cellprop-model" and on_disk["format_version"] == 1
    assert on_disk["input"]["stride"] == 8
    assert on_disk["input"]["scale"] == 0.5
    assert on_disk["files"] == {"unet": "unet.onnx", "guided": "guided.onnx"}
    assert on_disk["defaults"]["polarity"] == "bright_boundary"
    for key in ("threshold", "region_radius_px", "graphcut_weight", "edge_beta", "min_size_px"):
        assert key in on_disk["defaults"]
    assert set(on_disk["versions"]) >= {"cellprop", "torch", "onnx", "opset"}
    session = load_onnx_session(tmp_path / on_disk["files"]["unet"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["likelihood"]
    guided = load_onnx_session(tmp_path / on_disk["files"]["guided"])
    assert [i.name for i in guided.get_inputs()] == ["image", "grad_output"]
    assert [o.name for o in guided.get_outputs()] == ["grad_input"]
    # Small enough to ship: a few hundred kB for this width.
    assert (tmp_path / "unet.onnx").stat().st_size < 2_000_000
    assert not list(tmp_path.glob("tmp*")), "temporary export folder left behind"


def test_export_model_refuses_an_unknown_modality(tmp_path):
    with pytest.raises(ValueError, match="modality"):
        export_model(
            _model(),
            tmp_path,
            name="x",
            description="",
            modality="xray",
            scale=1.0,
            normalisation={},
            cell_diameter_px=10.0,
            sigma_px=3.0,
            training={},
        )
