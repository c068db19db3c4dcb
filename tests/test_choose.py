"""`--model auto`: the shipped models are told apart on real images of each modality."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cellprop.engine import ModelError, load_model, read_image, suggest_model
from scipy import ndimage as ndi

from cellprop.cli import main

ROOT = Path(__file__).resolve().parents[1]

SAMPLES = sorted((ROOT / "resources" / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def shipped():
    return [load_model(name, device="cpu") for name in ("phase", "dic", "nuclei")]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_shipped_phase_samples_choose_phase(shipped, sample):
    s = suggest_model(read_image(sample).pixels, shipped)
    assert s.model.name == "phase"
    assert not s.fluorescence and s.median > 0.2
    # Phase contrast and DIC compete; the phase model is the more confident by a clear margin.
    assert set(s.confidence) == {"phase", "dic"}
    assert s.confidence["phase"] > s.confidence["dic"] + 0.1
    assert "model phase chosen" in s.describe()


@pytest.mark.parametrize(
    ("dataset", "frames", "expected"),
    [
        ("c2c12-phase", ["0000.png", "0006.png"], "phase"),
        ("hela-dic", ["t000.tif", "t041.tif", "t083.tif"], "dic"),
        ("gowt1-fluo", ["t000.tif", "t045.tif", "t091.tif"], "nuclei"),
    ],
)
def test_real_images_of_each_modality_choose_their_model(
    shipped, shared_data, dataset, frames, expected
):
    for name in frames:
        s = suggest_model(read_image(shared_data / dataset / "images" / name).pixels, shipped)
        assert s.model.name == expected, (name, s.describe())
        assert s.fluorescence == (expected == "nuclei")


@pytest.mark.parametrize(
    ("dataset", "frame", "zoom", "expected"),
    [
        ("hela-dic", "t075.tif", 0.5, "dic"),  # another objective: half the magnification
        ("hela-dic", "t066.tif", 2.5, "dic"),
        ("c2c12-phase", "0006.png", 0.4, "phase"),
    ],
)
def test_a_model_is_chosen_for_images_taken_at_another_magnification(
    shipped, shared_data, dataset, frame, zoom, expected
):
    """Each model is asked at its cells' size halved to doubled and its best answer counts:
    asked at its own scale only, the phase model won these HeLa frames (0.85 against 0.82 at
    x0.5) and the dic model C2C12 at x0.4, and segmented them into a cell or two."""
    pixels = read_image(shared_data / dataset / "images" / frame).pixels
    size = (round(pixels.shape[1] * zoom), round(pixels.shape[0] * zoom))
    zoomed = cv2.resize(
        pixels, size, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
    )
    s = suggest_model(zoomed, shipped)
    assert s.model.name == expected, s.describe()
    other = max(v for k, v in s.confidence.items() if k != expected)
    assert s.confidence[expected] > other + 0.05, s.describe()


def test_the_official_wsispdr_crop_chooses_phase(shipped, shared_data):
    image = shared_data / "wsispdr-reference" / "image" / "test" / "ori" / "00000.png"
    assert suggest_model(read_image(image).pixels, shipped).model.name == "phase"


def test_a_dark_background_lets_only_fluorescence_models_compete(shipped):
    rng = np.random.default_rng(0)
    spots = np.zeros((400, 400), np.float32)
    spots[tuple(rng.integers(20, 380, (2, 30)))] = 1.0
    image = (ndi.gaussian_filter(spots, 9) * 3e4 + rng.normal(5, 1, spots.shape)).clip(0, 255)
    s = suggest_model(image.astype(np.uint8), shipped)
    assert s.fluorescence and s.median < 0.1
    assert list(s.confidence) == ["nuclei"] and s.model.name == "nuclei"
    # With no fluorescence model installed, the others compete rather than nothing.
    s = suggest_model(image.astype(np.uint8), shipped[:2])
    assert set(s.confidence) == {"phase", "dic"}


@pytest.mark.parametrize("sample", SAMPLES[-1:], ids=lambda p: p.name)
def test_a_32_bit_image_far_from_0_and_a_flat_image_are_judged_by_what_they_show(shipped, sample):
    """A phase image offset by 2**31 as 32-bit integers is lit, as its 8-bit self (float32
    rounded its contrast away: 'dark background: fluorescence', nuclei chosen); an image of
    one value has no light to judge (it was 'a dark background'), and all models compete."""
    from cellprop.engine import background_level

    pixels = read_image(sample).pixels
    offset = pixels.astype(np.int64) + 2**31
    assert background_level(offset) == pytest.approx(background_level(pixels), abs=1e-6)
    s = suggest_model(offset.astype(np.uint32), shipped)
    assert s.model.name == "phase" and not s.fluorescence
    flat = np.full((64, 64), 255, np.uint8)
    assert np.isnan(background_level(flat))
    s = suggest_model(flat, shipped)
    assert set(s.confidence) == {"phase", "dic", "nuclei"} and not s.found
    assert "no model finds a cell in this image" in s.describe()


def test_no_candidates_is_an_error():
    with pytest.raises(ModelError, match="no model"):
        suggest_model(np.zeros((32, 32)), [])


def test_cli_auto_uses_one_model_for_the_batch_and_says_why(tmp_path, shared_data, capsys):
    images = [
        shared_data / "gowt1-fluo" / "images" / "t000.tif",
        ROOT / "resources" / "samples" / "c2c12_0006_crop512.png",
    ]
    out = tmp_path / "out"
    assert (
        main(["segment", *map(str, images), "--out", str(out), "--model", "auto", "--quiet"]) == 0
    )
    err = capsys.readouterr().err
    assert "model nuclei chosen for this image (dark background" in err and "t000.tif" in err
    # the phase-contrast image among them is named: segmented for nuclei, its cells are wrong
    assert (
        "note: c2c12_0006_crop512.png looks like images for phase, not nuclei: --model auto "
        "segments the whole batch with nuclei"
    ) in err
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["name"] == "nuclei"
    assert (out / "c2c12_0006_crop512_labels.tif").is_file()


def test_cli_auto_on_the_shipped_sample_chooses_phase(tmp_path, capsys):
    """... also where a blank frame (an empty well) comes first: it says nothing of the
    cells (it chose nuclei from one, for the whole batch)."""
    sample = ROOT / "resources" / "samples" / "c2c12_0006_crop512.png"
    blank = tmp_path / "a_blank.png"
    cv2.imwrite(str(blank), np.zeros((64, 64), np.uint8))
    out = tmp_path / "out"
    argv = ["segment", str(blank), str(sample), "--out", str(out), "--model", "auto", "-q"]
    assert main(argv) == 0
    said = capsys.readouterr().err
    assert "model phase chosen for this image (lit background" in said
    assert "(c2c12_0006_crop512.png)" in said and "note:" not in said
    assert json.loads((out / "run.json").read_text())["model"]["name"] == "phase"
    # An empty well of camera noise first, where no model finds a cell: the next image
    # chooses (dic was chosen from nothing, all scores 0, for the whole batch)
    noise = tmp_path / "a_noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).poisson(3, (256, 256)).astype(np.uint8))
    argv = ["segment", str(noise), str(sample), "--out", str(tmp_path / "o2"), "--model", "auto"]
    assert main([*argv, "-q"]) == 0
    said = capsys.readouterr().err
    assert "no model finds a cell in this image" in said and "(a_noise.png)" in said
    assert "model phase chosen for this image (lit background" in said
    assert json.loads((tmp_path / "o2" / "run.json").read_text())["model"]["name"] == "phase"
