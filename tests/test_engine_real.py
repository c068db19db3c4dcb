"""The engine on real microscopy images with the shipped phase-contrast model.

Needs the shipped model (resources/models/phase); tests marked `data` also need ../shared/data.
Frames 0005 and 0006 of c2c12-phase are the model's held-out frames.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from cellprop.engine import Settings, read_image, segment, write_roi_zip
from cellprop.engine.evaluate import compare_modes, match_points
from cellprop.engine.output import masks_from_rois
from cellprop.resources import path as resource_path

SAMPLE = resource_path("samples", "c2c12_0006_crop512.png")
CROP = (264, 440)  # where the sample lies in frame 0006 (rows, cols); see resources/ATTRIBUTION.md


@pytest.fixture(scope="module")
def sample_segmentation(phase_model):
    image = read_image(SAMPLE).pixels
    return image, segment(image, phase_model, Settings())


def test_sample_gives_plausible_cells(sample_segmentation):
    image, seg = sample_segmentation
    assert seg.labels.shape == image.shape and seg.labels.dtype == np.uint16
    assert 30 <= seg.n_cells <= 80  # about 50 cells in this crop, by eye
    areas = np.bincount(seg.labels.ravel())[1:]
    assert (areas > 0).all()  # labels are 1..N with no gaps
    # C2C12 myoblasts at 10x: about 25-60 px across, i.e. hundreds to a few thousand pixels.
    assert 400 < np.median(areas) < 4000
    # Each centre lies in (or right next to) its own cell.
    for k, (x, y) in enumerate(seg.centres, start=1):
        r, c = int(round(y)), int(round(x))
        window = seg.labels[max(0, r - 3) : r + 4, max(0, c - 3) : c + 4]
        assert (window == k).any()


@pytest.mark.data
def test_detection_matches_manual_positions(sample_segmentation, shared_data):
    _, seg = sample_segmentation
    points = []
    with open(shared_data / "c2c12-phase" / "points.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["image"] == "0006.png":
                x, y = float(row["x"]) - CROP[1], float(row["y"]) - CROP[0]
                if 0 <= x < 512 and 0 <= y < 512:
                    points.append((x, y))
    tp, fp, fn = match_points(points, seg.centres, radius=10)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert len(points) > 30 and f1 >= 0.85, (tp, fp, fn)


def test_roi_zip_round_trips_on_a_real_segmentation(sample_segmentation, tmp_path):
    _, seg = sample_segmentation
    path = write_roi_zip(tmp_path / "rois.zip", seg.labels)
    np.testing.assert_array_equal(masks_from_rois(path, seg.labels.shape), seg.labels)


def test_bit_depth_does_not_change_the_result(sample_segmentation, phase_model):
    image, seg = sample_segmentation
    as16 = image.astype(np.uint16) * 257 + 100  # same picture, 16-bit range and an offset
    seg16 = segment(as16, phase_model, Settings())
    assert seg16.n_cells == seg.n_cells
    assert (seg16.labels == seg.labels).mean() > 0.995


def test_crop_mode_agrees_with_full_mode(phase_model):
    """The paper's whole-image propagation per cell against crop windows, same cells."""
    image = read_image(SAMPLE).pixels[128:384, 128:384]  # 256 x 256: full mode stays quick
    result = compare_modes(image, phase_model)
    assert result["cells"] >= 5
    assert result["min"] >= 0.99, result["correlations"]
    assert result["labels_mdice"] >= 0.98
    assert result["seconds_full"] > result["seconds_crop"]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_the_detected_centres_given_back_give_the_same_cells(sample_segmentation, phase_model):
    """Corrections re-run the pipeline from a list of centres; unchanged, it changes nothing."""
    image, seg = sample_segmentation
    again = segment(image, phase_model, Settings(), centres=seg.centres)
    np.testing.assert_array_equal(again.labels, seg.labels)
    np.testing.assert_allclose(again.centres, seg.centres, atol=1e-6)


def test_a_point_on_the_images_outermost_pixels_stays_where_it_was_clicked(
    sample_segmentation, phase_model
):
    """Clicks on the first and last row and column of the image (cells the edge cuts) come
    back as the cells' centres where they were clicked, not moved inwards onto the network's
    coarser grid (which then also called them points that gave no cell)."""
    from cellprop.engine import points_not_kept

    image, seg = sample_segmentation
    h, w = image.shape[:2]
    edge = seg.labels.copy()
    edge[1:-1, 1:-1] = 0
    touching = [k for k in np.unique(edge) if k][:4]
    clicked = []
    for k in touching:  # a pixel of each edge cell on the image's outermost row or column
        rows, cols = np.nonzero(edge == k)
        clicked.append((float(cols[0]), float(rows[0])))
    assert len(clicked) >= 3 and all(x in (0, w - 1) or y in (0, h - 1) for x, y in clicked)
    again = segment(image, phase_model, Settings(exclude_border=False), centres=clicked)
    assert again.n_cells >= 3  # (a click on a cell's far rim may give none: then it is named)
    for x, y in again.centres:
        assert min(np.hypot(x - cx, y - cy) for cx, cy in clicked) < 1e-6, (x, y)
    assert len(points_not_kept(clicked, again.centres)) == len(clicked) - again.n_cells


def test_the_largest_cell_rule_leaves_out_only_the_cells_over_it(sample_segmentation, phase_model):
    """Cells over --max-size go, each other cell stays as it was (the cut is the same; only
    the cells over the limit are taken away and the rest numbered again), and the image's
    log line says how many went."""
    from cellprop.engine.pipeline import left_out_note

    image, seg = sample_segmentation
    areas = np.bincount(seg.labels.ravel())[1:]
    limit = int(np.percentile(areas, 80))
    capped = segment(image, phase_model, Settings(max_size=limit))
    small = np.flatnonzero(areas <= limit) + 1
    assert capped.n_cells == len(small) < seg.n_cells
    for new, old in enumerate(small, start=1):
        np.testing.assert_array_equal(capped.labels == new, seg.labels == old)
    np.testing.assert_allclose(capped.centres, seg.centres[small - 1])
    gone = seg.n_cells - len(small)
    assert capped.settings["large_left_out"] == gone
    assert f"; {gone} cells larger than the largest cell ({limit} px) left out" in left_out_note(
        capped.settings
    )


def test_a_centre_left_out_takes_only_its_own_cell_away(sample_segmentation, phase_model):
    image, seg = sample_segmentation
    k = seg.n_cells // 2  # a cell in the middle of the list, label k + 1
    fewer = segment(image, phase_model, Settings(), centres=np.delete(seg.centres, k, axis=0))
    assert fewer.n_cells == seg.n_cells - 1
    gone = seg.labels == k + 1
    # its pixels are background now, or (a little) its neighbours'
    assert (fewer.labels[gone] == 0).mean() > 0.5
    # every other cell keeps its outline; labels after k shift down by one
    ious = [
        _iou(seg.labels == old, fewer.labels == (old if old <= k else old - 1))
        for old in range(1, seg.n_cells + 1)
        if old != k + 1
    ]
    assert np.median(ious) > 0.99 and min(ious) > 0.7


def test_a_clicked_centre_the_network_missed_gets_its_outline(sample_segmentation, phase_model):
    """At a strict threshold the network misses cells that the default finds; clicked at
    those cells' centres, they get the outlines the default gives them."""
    image, seg = sample_segmentation
    strict = Settings(threshold=0.9)
    few = segment(image, phase_model, strict)
    found = np.array([np.hypot(*(few.centres - c).T).min() < 2 for c in seg.centres])
    missed = np.nonzero(~found)[0]
    assert len(missed) >= 3, "the strict threshold should miss some of the sample's cells"
    clicked = np.vstack([few.centres, seg.centres[missed]])
    fixed = segment(image, phase_model, strict, centres=clicked)
    assert fixed.n_cells == len(clicked)
    ious = [
        _iou(fixed.labels == few.n_cells + 1 + i, seg.labels == k + 1) for i, k in enumerate(missed)
    ]
    assert np.median(ious) > 0.8, ious


def test_corrections_with_a_memo_give_what_a_fresh_run_gives_and_reuse_the_rest(
    sample_segmentation, phase_model
):
    """The app keeps a Memo of the image shown: each correction (a cell added at a click, one
    removed, undone) must give the labels of a run without it, byte for byte, computing only
    the few maps and cuts the edit changes."""
    from cellprop.engine import Memo

    image, seg = sample_segmentation
    memo = Memo()
    first = segment(image, phase_model, Settings(), memo=memo)
    np.testing.assert_array_equal(first.labels, seg.labels)
    assert memo.reused == {"maps": 0, "cuts": 0}
    k = seg.n_cells // 2
    inside = seg.centres[k] + [6.0, 4.0]  # a click inside a cell: it is split in two
    edits = [
        np.vstack([seg.centres, [[20.0, 30.0]]]),
        np.vstack([seg.centres, [inside]]),
        np.delete(seg.centres, k, axis=0),
        seg.centres,
    ]
    for centres in edits:
        with_memo = segment(image, phase_model, Settings(), centres=centres, memo=memo)
        fresh = segment(image, phase_model, Settings(), centres=centres)
        np.testing.assert_array_equal(with_memo.labels, fresh.labels)
        np.testing.assert_array_equal(with_memo.contribution, fresh.contribution)
        assert with_memo.timings["unet"] < 0.01  # the network's pass is not run again
        # most cells untouched by the edit: their maps and cuts are reused
        assert memo.reused["maps"] >= seg.n_cells - 3 and memo.reused["cuts"] >= seg.n_cells - 12
    # Another setting, or another image: nothing is reused.
    segment(image, phase_model, Settings(smoothness=5.0), centres=seg.centres, memo=memo)
    assert memo.reused == {"maps": 0, "cuts": 0}
    segment(image[:, ::-1], phase_model, Settings(), memo=memo)
    assert memo.reused == {"maps": 0, "cuts": 0}


def test_a_frame_run_on_tiles_gives_nearly_the_cells_of_one_pass(phase_model):
    """The U-Net's align_corners=True upsampling makes a tiled pass differ a little from one
    pass (README, Performance); the cells must stay the same ones, nearly pixel for pixel."""
    from cellprop.engine.evaluate import dice_per_cell

    image = read_image(resource_path("samples", "c2c12_0000.png")).pixels
    one = segment(image, phase_model, Settings())
    tiled = segment(image, phase_model, Settings(memory_mb=64))
    assert 0.01 < np.abs(one.likelihood - tiled.likelihood).max() < 0.3  # tiled, and near
    tp, fp, fn = match_points(one.centres, tiled.centres, radius=10)
    assert fp + fn <= 2 and tp > 200
    assert dice_per_cell(one.labels, tiled.labels).mean() > 0.99


def test_blank_image_gives_zero_cells(phase_model):
    assert segment(np.zeros((200, 300), np.uint8), phase_model).n_cells == 0


def test_a_mask_is_segmented_as_0_and_1_and_an_image_without_pixels_is_refused(phase_model):
    """segment() of a bool image (a mask) as the 0/1 image it is (numpy's "boolean
    subtract" TypeError), and of a 0 x 0 array a message saying so (an IndexError)."""
    mask = np.zeros((200, 300), bool)
    mask[60:90, 100:130] = True
    assert segment(mask, phase_model).labels.shape == mask.shape
    np.testing.assert_array_equal(
        segment(mask, phase_model).labels, segment(mask.astype(np.uint8), phase_model).labels
    )
    with pytest.raises(ValueError, match=r"an image with pixels, got shape \(0, 0\)"):
        segment(np.zeros((0, 0), np.uint8), phase_model)


@pytest.mark.data
def test_dic_segment_and_evaluate_from_the_command_line(dic_model_dir, shared_data, tmp_path):
    """Dense, touching HeLa cells in DIC against the silver-truth masks: held-out frames."""
    import json

    from cellprop.cli import main

    dataset = shared_data / "hela-dic"
    frames = [dataset / "images" / f"t{i:03d}.tif" for i in (70, 75, 80)]
    out = tmp_path / "pred"
    assert (
        main(
            [
                "segment",
                *map(str, frames),
                "--out",
                str(out),
                "--model",
                str(dic_model_dir),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["evaluate", str(dataset), str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    scored = [e for e in report["per_image"] if not e.get("missing")]
    assert [e["image"] for e in scored] == [f.name for f in frames]
    assert all(e["points"] == "detections" for e in scored)
    # Measured on t070-t083 with the first dic model: mDice 0.72, AP50 0.63 (paper, C2C12
    # phase: mDice 0.64). Bounds leave room for retrained models, not for a broken pipeline.
    assert report["mdice"] >= 0.55 and report["ap50"] >= 0.4
    # The tuned dic model (working scale 0.35, chosen on t060-t067 for mDice + AP50) detects
    # more of the border cells that masks and points leave unlabelled: F1 0.55 on these frames.
    assert report["detection"]["f1"] >= 0.5


def test_dic_leaves_out_cut_cells_whose_centre_lies_at_the_edge_and_says_so(
    dic_model_dir, shared_data, tmp_path, capsys
):
    """The dic model judges a cut cell by where the network put its centre (model.json
    edge_estimate "centre", 0.35 of a cell: 17.5 px from the edge for its 110 px cells): the
    cells it leaves out are the ones `--edge-fraction 0` adds, every cut cell kept has its
    centre farther in, and the run says how many went."""
    from cellprop.engine import load_model
    from cellprop.engine.pipeline import resolve_settings

    from cellprop.cli import main

    near = resolve_settings(load_model(dic_model_dir, device="cpu"), Settings())["edge_centre_px"]
    assert near == pytest.approx(17.5, abs=0.1)
    frame = shared_data / "hela-dic" / "images" / "t070.tif"

    def run(out, *extra):
        args = ["segment", str(frame), "--out", str(tmp_path / out), "--model"]
        assert main([*args, str(dic_model_dir), *extra]) == 0
        with open(tmp_path / out / "t070_cells.csv", newline="") as f:
            return list(csv.DictReader(f)), capsys.readouterr().err

    rule, said = run("rule")
    every, said_all = run("all", "--edge-fraction", "0")
    left_out = len(every) - len(rule)
    assert left_out > 0
    assert (
        f"; {left_out} cells cut by the image edge left out (showing under 35% of a cell)" in said
    )
    assert "left out" not in said_all

    def depth(row):
        x, y = float(row["Detection_Center_X"]), float(row["Detection_Center_Y"])
        return min(x, y, 511 - x, 511 - y)

    cut = [r for r in rule if r["TouchesBorder"] == "1"]
    assert cut and all(depth(r) >= near for r in cut)
    gone = [r for r in every if r["TouchesBorder"] == "1" and depth(r) < near]
    assert len(gone) == left_out


def test_expected_diameter_undoes_a_change_of_magnification(sample_segmentation, phase_model):
    """The same field imaged 1.5x larger, segmented with --diameter 1.5x the model's."""
    import cv2

    image, seg = sample_segmentation
    bigger = cv2.resize(image, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    diameter = 1.5 * phase_model.cell_diameter_px / phase_model.scale
    seg_big = segment(bigger, phase_model, Settings(diameter=diameter))
    assert seg_big.labels.shape == bigger.shape
    assert seg_big.settings["scale"] == pytest.approx(phase_model.scale / 1.5)
    assert abs(seg_big.n_cells - seg.n_cells) <= max(3, 0.1 * seg.n_cells)
    area = np.median(np.bincount(seg.labels.ravel())[1:])
    area_big = np.median(np.bincount(seg_big.labels.ravel())[1:])
    assert area_big / area == pytest.approx(1.5**2, rel=0.2)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_a_dic_frame_at_another_magnification_with_its_diameter(dic_model_dir, shared_data, factor):
    """With --diameter, a HeLa frame imaged at half or twice the magnification is segmented as
    the recorded one: size defaults follow the diameter (at half size no cell falls under the
    model's own minimum area) and the graph cut runs where cells have the model's size."""
    import cv2
    from cellprop.engine import load_model
    from cellprop.engine.evaluate import ap_counts, dice_per_cell

    model = load_model(dic_model_dir, device="cpu")
    folder = shared_data / "hela-dic"
    image = read_image(folder / "images" / "t075.tif").pixels
    mask = read_image(folder / "masks" / "t075.tif").pixels
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    other = cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)
    other_mask = cv2.resize(mask, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    full = segment(image, model, Settings())
    diameter = factor * model.cell_diameter_px / model.scale
    seg = segment(other, model, Settings(diameter=diameter))
    assert seg.labels.shape == other.shape
    assert seg.settings["min_size"] == round(model.defaults["min_size_px"] * factor**2)
    assert abs(seg.n_cells - full.n_cells) <= 2
    dice_full = dice_per_cell(mask, full.labels).mean()
    assert dice_per_cell(other_mask, seg.labels).mean() > dice_full - 0.03
    tp, fp, fn = ap_counts(other_mask, seg.labels)
    assert tp >= 0.7 * (tp + fn)
