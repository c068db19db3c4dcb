"""`--diameter auto`: the cell size of an image is estimated from the model's own confidence."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cellprop.engine import Settings, read_image, segment
from cellprop.engine.normalise import normalise, rescale
from cellprop.engine.pipeline import resolve_settings
from cellprop.engine.size import STEPS, busiest_point, estimate_diameter
from cellprop.training.models import RECIPES, calibrate_size

from cellprop.cli import main

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "resources" / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def sample():
    return read_image(SAMPLES[0]).pixels


@pytest.mark.parametrize("magnification", [0.5, 1.0, 1.6, 2.0])
def test_the_magnification_of_a_resized_phase_image_is_found(phase_model, sample, magnification):
    image = rescale(sample.astype(np.float32), magnification, order=1)
    est = estimate_diameter(image, phase_model)
    own = phase_model.cell_diameter_px / phase_model.scale
    assert est.model_diameter == pytest.approx(own)
    # Within one trial step (2 ** 0.25 = 1.19) of the truth.
    assert abs(np.log2(est.magnification / magnification)) <= 0.25 + 1e-9, est.describe()
    assert est.diameter == pytest.approx(own * est.magnification)
    assert len(est.confidence) == len(STEPS)
    # The confidence curve has its top near the truth and falls away from it.
    tried = np.array(list(est.confidence))
    scores = np.array(list(est.confidence.values()))
    near = scores[np.abs(np.log2(tried / magnification)) <= 0.25].max()
    far = scores[np.abs(np.log2(tried / magnification)) >= 0.75]
    assert far.size and near > far.max() + 0.02
    assert f"{est.diameter:.0f} px" in est.describe()


def test_a_32_bit_image_far_from_0_is_measured_as_its_8_bit_self(phase_model, sample):
    """The sample offset by 2**31 as 32-bit integers (a camera offset, a sum image): the same
    diameter as the 8-bit image (float32 rounded its contrast away: 38 px for 32)."""
    crop = sample[:256, :320]
    offset = crop.astype(np.uint32) + np.uint32(2**31)
    assert estimate_diameter(offset, phase_model).diameter == pytest.approx(
        estimate_diameter(crop, phase_model).diameter
    )


def test_cells_smaller_than_the_smallest_trial_are_said_to_be_at_most_that(phase_model, sample):
    """The sample at a quarter of its size (8 px cells): the model is most confident at the
    smallest size tried, so the estimate says 'or less' and to give --diameter (it said
    'estimated at 13 px' as if measured)."""
    small = rescale(sample.astype(np.float32), 0.25, order=1)
    est = estimate_diameter(small, phase_model)
    assert est.beyond == "smaller" and est.magnification == pytest.approx(2 ** STEPS[0])
    assert "px or less" in est.describe() and "give --diameter" in est.describe()
    assert estimate_diameter(sample, phase_model).beyond == ""


def test_a_flat_image_gives_no_estimate_and_segments_at_the_model_scale(phase_model):
    flat = np.full((200, 240), 90, np.uint8)
    est = estimate_diameter(flat, phase_model)
    assert est.diameter is None and est.magnification is None
    assert "could not be estimated" in est.describe()
    result = segment(flat, phase_model, Settings(diameter="auto"))
    assert result.n_cells == 0
    assert result.settings["diameter_estimated"] is True
    assert result.settings["scale"] == pytest.approx(phase_model.scale)


def test_auto_diameter_segments_a_twice_magnified_image_like_the_original(phase_model, sample):
    crop = sample[:256, :320]
    base = segment(crop, phase_model)
    big = rescale(crop.astype(np.float32), 2.0, order=1)
    plain = segment(big, phase_model)
    auto = segment(big, phase_model, Settings(diameter="auto"))
    assert auto.settings["diameter_estimated"] is True
    assert "estimated at" in auto.settings["diameter_estimate"]
    # The estimate brings the cells back to the model's size: about the original count,
    # where the model's fixed scale sees cells twice too wide.
    assert abs(auto.n_cells - base.n_cells) <= 0.15 * base.n_cells
    assert abs(plain.n_cells - base.n_cells) > abs(auto.n_cells - base.n_cells)
    assert auto.settings["diameter_px"] == pytest.approx(auto.settings["diameter"]) and isinstance(
        auto.settings["diameter"], float
    )


def test_cells_around_an_empty_middle_are_measured_where_they_are(phase_model, shared_data):
    """A scratch assay: the frame's middle, 500 px across, holds no cells (camera noise on
    the background level), 185 of its 230 cells around it. The trials' windows are centred
    where the cells are, not on the empty middle, where the trials of small cells looked at
    background alone and found nothing (38 px estimated, 32 for the whole frame). A frame
    whose middle holds cells is measured in its middle, as ever."""
    frame = read_image(shared_data / "c2c12-phase" / "images" / "0006.png").pixels
    whole = estimate_diameter(frame, phase_model)
    assert busiest_point(normalise(frame, phase_model.low, phase_model.high), 305) is None
    rows, cols = frame.shape
    scratch = frame.astype(np.float64)
    middle = (slice(rows // 2 - 250, rows // 2 + 250), slice(cols // 2 - 250, cols // 2 + 250))
    level = np.median(frame)
    scratch[middle] = np.random.default_rng(0).normal(level, 2.0, (500, 500))
    est = estimate_diameter(np.clip(scratch, 0, 255).astype(np.uint8), phase_model)
    assert abs(np.log2(est.diameter / whole.diameter)) < np.log2(1.1), (est, whole)


def test_settings_accept_auto_and_reject_other_words(phase_model):
    assert Settings(diameter="auto").diameter == "auto"
    with pytest.raises(ValueError, match="number or 'auto'"):
        Settings(diameter="large")
    with pytest.raises(ValueError, match="estimated per image"):
        resolve_settings(phase_model, Settings(diameter="auto"))


def test_cli_estimates_per_image_and_records_it(tmp_path, sample, capsys):
    import cv2

    folder = tmp_path / "in"
    folder.mkdir()
    crop = sample[:256, :320]
    cv2.imwrite(str(folder / "a_native.png"), crop)
    cv2.imwrite(str(folder / "b_double.png"), cv2.resize(crop, None, fx=2, fy=2))
    out = tmp_path / "out"
    code = main(
        ["segment", str(folder), "--out", str(out), "--model", "phase", "--diameter", "auto"]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "diameter ~" in err
    rows = {r["Image"]: r for r in csv.DictReader(open(out / "summary.csv", encoding="utf-8"))}
    native, double = (
        float(rows["a_native.png"]["Diameter_px"]),
        float(rows["b_double.png"]["Diameter_px"]),
    )
    assert 1.6 < double / native < 2.5
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["diameter"] == "auto"
    # A smooth ramp, no cell at any scale: its line and summary.csv say the model's size was
    # used (it printed "diameter ~32 px" as if measured)
    cv2.imwrite(str(tmp_path / "ramp.png"), np.tile(np.arange(256, dtype=np.uint8), (256, 1)))
    argv = ["segment", str(tmp_path / "ramp.png"), "--out", str(tmp_path / "o2")]
    assert main([*argv, "--model", "phase", "--diameter", "auto"]) == 0
    err = capsys.readouterr().err
    assert "diameter ~" not in err and "could not be estimated" in err
    (row,) = csv.DictReader(open(tmp_path / "o2" / "summary.csv", encoding="utf-8"))
    assert "could not be estimated" in row["Note"]


def test_cli_rejects_a_diameter_that_is_neither(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(tmp_path), "--out", str(tmp_path / "o"), "--diameter", "big"])
    assert exc.value.code == 2
    assert "a number of pixels or 'auto', got 'big'" in capsys.readouterr().err


@pytest.mark.data
def test_calibration_on_the_tune_images_is_what_ships(shared_data, dic_model_dir, tmp_path):
    """`make models` measures the size reference on the tune frames; the shipped one matches."""
    recipe = RECIPES["dic"]
    if not (shared_data / recipe.dataset / "images").is_dir():
        pytest.skip(f"{recipe.dataset} not in {shared_data}")
    folder = tmp_path / "dic"
    shutil.copytree(dic_model_dir, folder)
    shipped = json.loads((folder / "model.json").read_text())["diameter_estimate"]
    info = calibrate_size(shared_data, recipe, folder, log=lambda s: None)
    measured = info["diameter_estimate"]
    assert measured["images"] == list(recipe.tune)
    assert len(measured["magnifications"]) == len(recipe.tune)
    assert measured["reference"] == pytest.approx(shipped["reference"], abs=1e-3)
    assert 0.7 < measured["reference"] < 1.5
    assert json.loads((folder / "model.json").read_text())["diameter_estimate"] == measured


def test_the_reference_is_measured_on_a_models_own_images_and_left_as_it_was(phase_model, sample):
    from cellprop.engine.size import measure_reference

    shipped = phase_model.size_reference
    reference, found = measure_reference(phase_model, [sample, sample[:512, :512]])
    assert phase_model.size_reference == shipped  # measured without it, then put back
    assert len(found) == 2
    # The shipped sample is a frame of the same C2C12 sequence as the tune frame it was
    # measured on: the same offset within one trial step.
    assert abs(np.log2(reference / shipped)) <= 0.25
    with pytest.raises(ValueError, match="no cells found"):
        measure_reference(phase_model, [np.full((128, 128), 7, np.uint8)])


def test_training_records_the_reference_of_the_model_it_exported(phase_model_dir, sample, tmp_path):
    pytest.importorskip("torch")
    from cellprop.training.data import Sample
    from cellprop.training.train import _measure_size_reference

    folder = tmp_path / "model"
    shutil.copytree(phase_model_dir, folder)
    info = json.loads((folder / "model.json").read_text())
    info.pop("diameter_estimate")
    samples = [Sample("own/c2c12.png", SAMPLES[0], sample, np.zeros((0, 2)))]
    logged = []
    info = _measure_size_reference(folder, info, samples, logged.append)
    written = json.loads((folder / "model.json").read_text())["diameter_estimate"]
    assert written == info["diameter_estimate"]
    assert written["images"] == ["own/c2c12.png"] and len(written["magnifications"]) == 1
    assert 1.0 < written["reference"] < 2.0
    assert "size reference for --diameter auto" in logged[-1]


@pytest.mark.data
def test_make_models_without_training_measures_the_reference(
    shared_data, phase_model_dir, tmp_path, capsys
):
    """`python -m cellprop.training.models DATA --no-train --only phase --out DIR`."""
    from cellprop.training.models import main as models_main

    out = tmp_path / "models"
    shutil.copytree(phase_model_dir, out / "phase")
    shipped = json.loads((out / "phase" / "model.json").read_text())
    info = dict(shipped)
    del info["diameter_estimate"]
    (out / "phase" / "model.json").write_text(json.dumps(info))
    assert models_main([str(shared_data), "--no-train", "--only", "phase", "--out", str(out)]) == 0
    assert "phase: size reference 1.414" in capsys.readouterr().out
    written = json.loads((out / "phase" / "model.json").read_text())
    assert written["diameter_estimate"] == shipped["diameter_estimate"]
    assert written["defaults"] == shipped["defaults"]  # phase has no grid: nothing re-tuned
