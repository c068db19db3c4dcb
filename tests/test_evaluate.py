"""engine.evaluate and `cellprop evaluate`: the published metrics on cases computed by hand."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import tifffile
from cellprop.engine.evaluate import (
    AP50_ERRORS,
    Scores,
    ap50_errors,
    ap_counts,
    centroids,
    dice_per_cell,
    evaluate_folder,
    f1_score,
    match_points,
)
from cellprop.training.metrics import detection_score

from cellprop.cli import main


def test_points_match_one_to_one_within_10_px():
    true = [(0, 0), (20, 0), (40, 0)]
    pred = [(3, 4), (2, 0), (20, 11), (100, 100)]  # two near the first; one 11 px away
    assert match_points(true, pred) == (1, 3, 2)
    assert match_points(true, []) == (0, 0, 3)
    assert match_points([], pred) == (0, 4, 0)
    # The matching is global: the greedy nearest choice would leave (10, 0) unmatched.
    assert match_points([(0, 0), (10, 0)], [(5, 0), (-5, 0)]) == (2, 0, 0)


def test_one_f1_for_evaluate_and_training_even_with_nothing_to_find():
    """`cellprop evaluate` and training's checkpoint scores share one F1: an image without
    cells segmented without cells is perfect, not 0 (they once disagreed there)."""
    assert f1_score(1, 1, 1) == pytest.approx(0.5) and f1_score(0, 2, 3) == 0.0
    assert f1_score(0, 0, 0) == 1.0
    for truth, pred in [([], []), ([(0, 0)], []), ([], [(0, 0)]), ([(0, 0), (50, 0)], [(2, 0)])]:
        tp, fp, fn = match_points(truth, pred)
        assert Scores(tp=tp, fp=fp, fn=fn).f1 == detection_score(np.array(pred), np.array(truth)).f1


def test_dice_takes_the_most_frequent_predicted_cell_and_zero_when_none():
    true = np.zeros((30, 30), np.uint16)
    pred = np.zeros_like(true)
    true[0:10, 0:10] = 1
    pred[0:10, 5:15] = 5  # 50 of 100 pixels, 100 pixels in all: Dice 0.5
    pred[0:10, 0:2] = 6  # a smaller fragment under the same cell: not the most frequent
    true[20:30, 20:30] = 2  # nothing predicted there
    dice = dice_per_cell(true, pred)
    np.testing.assert_allclose(dice, [2 * 50 / (100 + 100), 0.0])


def test_ap50_counts():
    true = np.zeros((40, 40), np.int32)
    pred = np.zeros_like(true)
    true[0:10, 0:10] = 1
    pred[0:10, 0:8] = 1  # IoU 0.8: matched
    true[20:30, 0:10] = 2
    pred[20:30, 5:15] = 2  # IoU 50 / 150: not matched
    pred[35:40, 35:40] = 3  # false positive
    assert ap_counts(true, pred) == (1, 2, 1)
    assert ap_counts(true, pred, iou=0.75) == (1, 2, 1)
    assert ap_counts(true, pred, iou=0.85) == (0, 3, 2)  # IoU 0.8 no longer enough


def test_an_interval_says_how_much_a_pooled_score_rests_on_the_images_chosen():
    """Scores.interval resamples the images: images alike give the score itself; one image
    found whole and one missed give an interval around the pooled score that reaches
    towards both; the same seed gives the same interval."""
    true = np.zeros((40, 40), np.int32)
    true[0:10, 0:10], true[20:30, 20:30] = 1, 2
    alike = Scores()
    for _ in range(3):
        alike.add_instances(true, true)
        alike.add_points(2, 0, 0)
    assert alike.interval("mdice") == alike.interval("ap50") == alike.interval("f1") == (1.0, 1.0)
    mixed = Scores()
    for pred in (true, np.zeros_like(true), true, true):
        mixed.add_instances(true, pred)
    mixed.add_points(4, 1, 2)
    mixed.add_points(0, 0, 3)
    assert mixed.mdice == mixed.ap50 == 0.75
    low, high = mixed.interval("ap50")
    assert 0.0 <= low < 0.75 < high == 1.0  # a draw of only found images scores 1
    assert mixed.interval("mdice") == (low, high)  # Dice 1 or 0 per cell here, as AP50
    assert mixed.interval("ap50", seed=0) == mixed.interval("ap50", seed=0)
    f1 = mixed.interval("f1")
    assert f1[0] < mixed.f1 < f1[1]
    with pytest.raises(ValueError, match="no interval for 'ap75'"):
        mixed.interval("ap75")
    assert Scores().interval("mdice") is None and Scores().interval("f1") is None
    one = Scores()
    one.add_instances(true, true)
    one.add_points(2, 0, 0)
    assert one.interval("ap50") is None and one.interval("f1") is None  # one image says nothing
    # paired: a method that finds everything on the same four images is never behind, level
    # at a draw of only the images both found; against itself the difference is 0; on another
    # number of images there is none
    whole = Scores()
    for _ in range(4):
        whole.add_instances(true, true)
    low, high = whole.difference_interval(mixed, "ap50")
    assert low == 0.0 < 0.25 <= high <= 1.0
    assert mixed.difference_interval(mixed, "mdice") == (0.0, 0.0)
    assert whole.difference_interval(alike, "ap50") is None  # 4 images against 3


def test_an_interval_leaves_out_draws_that_have_no_score():
    """A draw of empty fields alone has no true cell, so no mDice (and, with nothing predicted
    either, no AP50): it is left out of the interval, not scored 0. With one image of cells
    found half, the others empty, every draw that has a score has that image's."""
    true = np.zeros((40, 40), np.int32)
    true[0:10, 0:10], true[20:30, 20:30] = 1, 2
    half = np.where(true == 1, 1, 0).astype(np.int32)
    empty, speck = np.zeros_like(true), np.zeros_like(true)
    speck[35:38, 35:38] = 1
    scores = Scores()
    scores.add_instances(true, half)
    scores.add_instances(empty, speck)  # an empty field, one cell predicted on it
    assert scores.mdice == 0.5
    assert scores.interval("mdice") == (0.5, 0.5)  # was (0.0, 0.5): a quarter of draws are B, B
    assert scores.difference_interval(scores, "mdice") == (0.0, 0.0)
    nothing = Scores()
    nothing.add_instances(empty, empty)
    nothing.add_instances(empty, empty)
    assert nothing.ap50 is None and nothing.interval("ap50") is None
    assert nothing.interval("mdice") is None


def test_unlabelled_border_false_positives_are_counted_apart():
    true = np.zeros((40, 40), np.int32)
    pred = np.zeros_like(true)
    true[10:20, 10:20] = 1
    pred[10:20, 10:20] = 1  # matched
    pred[0:6, 20:30] = 2  # at the top edge, where the truth labels nothing: counted
    pred[30:36, 30:36] = 3  # inside the image on unlabelled pixels: an ordinary false positive
    true[32:40, 0:8] = 2
    pred[30:40, 0:4] = 4  # at the edge but mostly on a labelled cell (a bad match): not counted
    assert ap_counts(true, pred) == (1, 3, 1)
    assert ap50_errors(true, pred)["fp unlabelled edge"] == 1
    assert ap50_errors(true, true)["fp unlabelled edge"] == 0


def test_a_small_cell_grown_onto_unlabelled_edge_pixels_is_an_outline_error():
    # HeLa test frames: a small cell's outline spreads over the background and reaches the
    # image edge. Most of it is unlabelled, but it covers the true cell, which the truth does
    # label: the truth omits nothing there, the outline is too large.
    true = np.zeros((40, 40), np.int32)
    pred = np.zeros_like(true)
    true[4:8, 16:20] = 1  # 16 px
    pred[0:12, 12:24] = 1  # 144 px over all of it, touching the top edge
    pred[0:6, 30:36] = 2  # a cell the truth omits at the edge
    assert ap_counts(true, pred) == (0, 2, 1)
    errors = {k: v for k, v in ap50_errors(true, pred).items() if v}
    assert errors == {"fp unlabelled edge": 1, "fp outline too large": 1, "fn outline": 1}


def test_every_ap50_error_is_named_by_its_kind():
    true = np.zeros((60, 60), np.int32)
    pred = np.zeros_like(true)
    true[10:20, 10:20] = 1
    pred[10:20, 10:19] = 1  # matched (IoU 0.9)
    pred[10:20, 19:21] = 2  # a sliver of cell 1 beside its match: second piece
    pred[0:5, 30:40] = 3  # at the top edge on unlabelled pixels: unlabelled edge
    pred[25:30, 50:55] = 4  # inside the image on unlabelled pixels: background
    true[30:50, 30:50] = 2
    pred[35:45, 35:45] = 5  # a quarter of cell 2: outline too small, and cell 2 fn outline
    true[52:60, 0:8] = 3
    true[52:60, 8:16] = 4
    pred[52:60, 0:16] = 6  # one prediction over cells 3 and 4: too large, both fn merged
    true[0:10, 50:60] = 5  # nothing predicted there: missed
    errors = ap50_errors(true, pred)
    assert set(errors) == set(AP50_ERRORS)
    assert errors == {
        "fp unlabelled edge": 1,
        "fp background": 1,
        "fp second piece": 1,
        "fp outline too small": 1,
        "fp outline too large": 1,
        "fn missed": 1,
        "fn merged": 2,
        "fn outline": 1,
    }
    tp, fp, fn = ap_counts(true, pred)
    assert (tp, fp, fn) == (1, 5, 4)
    assert sum(v for k, v in errors.items() if k.startswith("fp")) == fp
    assert sum(v for k, v in errors.items() if k.startswith("fn")) == fn
    assert set(ap50_errors(true, true).values()) == {0}


def test_centroids_in_xy():
    labels = np.zeros((10, 20), np.uint8)
    labels[2:4, 10:16] = 7
    np.testing.assert_allclose(centroids(labels), [[12.5, 2.5]])


@pytest.fixture()
def tiny_dataset(tmp_path):
    data = tmp_path / "dataset"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    pred = tmp_path / "pred"
    pred.mkdir()
    true = np.zeros((50, 60), np.uint16)
    true[5:15, 5:15] = 1
    true[30:40, 30:45] = 2
    guess = np.zeros_like(true)
    guess[5:15, 5:15] = 4  # perfect
    guess[30:40, 30:38] = 9  # 80 of the 150 pixels
    cv2.imwrite(str(data / "images" / "a.png"), np.zeros((50, 60), np.uint8))
    cv2.imwrite(str(data / "images" / "b.png"), np.zeros((50, 60), np.uint8))
    tifffile.imwrite(data / "masks" / "a.tif", true)
    (data / "points.csv").write_text("image,x,y\na.png,9.5,9.5\na.png,37,34.5\nb.png,5,5\n")
    tifffile.imwrite(pred / "a_labels.tif", guess)
    return data, pred


def test_evaluate_folder_and_command(tiny_dataset, capsys):
    data, pred = tiny_dataset
    scores = evaluate_folder(data, pred)
    # Centroids: (9.5, 9.5) and (33.5, 34.5) -> 3.5 px from (37, 34.5): both matched; b.png has
    # no prediction and is not scored.
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 0)
    assert scores.mdice == pytest.approx((1.0 + 2 * 80 / (150 + 80)) / 2)
    assert scores.ap50 == pytest.approx(2 / 2)  # IoU 80/150 = 0.53 > 0.5
    # ... but not > 0.75: at IoU 0.75 that cell is both a miss and a false positive.
    assert scores.ap75_counts == [1, 1, 1] and scores.ap75 == pytest.approx(1 / 3)
    assert scores.per_image[0]["ap75"] == pytest.approx(1 / 3)
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "detection F1       1.000" in out and "b.png" in out
    assert "AP at IoU 0.75     0.333" in out
    report = json.loads((pred / "evaluation.json").read_text())
    assert report["detection"]["tp"] == 2 and report["mdice"] == pytest.approx(scores.mdice)
    assert report["ap75_counts"] == {"tp": 1, "fp": 1, "fn": 1}
    assert set(report["ap50_errors"].values()) == {0} and "false positives" not in out
    # one image scored: nothing to resample
    assert report["intervals"] == {"f1": None, "mdice": None, "ap50": None}
    assert "resampled" not in out
    # two images: b.png predicted empty (its one cell missed), so the images disagree
    tifffile.imwrite(
        data / "masks" / "b.tif", np.pad(np.ones((10, 10), np.uint16), ((20, 20), (25, 25)))
    )
    tifffile.imwrite(pred / "b_labels.tif", np.zeros((50, 60), np.uint16))
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    report = json.loads((pred / "evaluation.json").read_text())
    low, high = report["intervals"]["ap50"]
    assert report["ap50"] == pytest.approx(2 / 3) and low < report["ap50"] < high
    assert f"AP at IoU 0.5      0.667  95% over the images resampled: {low:.3f}-{high:.3f}" in out
    assert "95% over the images resampled" in out.split("mDice")[0]  # F1's, on its own line


def test_evaluate_names_the_kinds_of_its_ap50_errors(tiny_dataset, tmp_path, capsys):
    data, _ = tiny_dataset
    pred = tmp_path / "errors"
    pred.mkdir()
    guess = np.zeros((50, 60), np.uint16)
    guess[5:15, 5:15] = 1  # cell 1, matched
    guess[30:40, 30:35] = 2  # a third of cell 2: outline too small, and cell 2 not matched
    guess[0:6, 50:60] = 3  # at the image edge, where the mask labels nothing
    tifffile.imwrite(pred / "a_labels.tif", guess)
    scores = evaluate_folder(data, pred)
    assert (scores.ap_tp, scores.ap_fp, scores.ap_fn) == (1, 2, 1)
    assert {k: v for k, v in scores.ap50_errors.items() if v} == {
        "fp unlabelled edge": 1,
        "fp outline too small": 1,
        "fn outline": 1,
    }
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "false positives: 1 unlabelled edge, 1 outline too small" in out
    assert "false negatives: 1 outline" in out
    report = json.loads((pred / "evaluation.json").read_text())
    assert report["ap50_errors"] == scores.ap50_errors


def test_a_prediction_that_cannot_be_scored_is_named_and_the_rest_scored(tiny_dataset, capsys):
    """A prediction of another size than its mask, or one that cannot be read: that image
    is named, not scored, and the others are (one stopped the whole evaluation); without
    points for any image scored, detection says so instead of 'F1 1.000'."""
    data, pred = tiny_dataset
    tifffile.imwrite(data / "masks" / "b.tif", np.zeros((50, 60), np.uint16))
    tifffile.imwrite(pred / "b_labels.tif", np.zeros((40, 60), np.uint16))  # cropped
    scores = evaluate_folder(data, pred)
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 0)  # a.png's, as without b.png
    failed = [e for e in scores.per_image if e.get("error")]
    assert [e["image"] for e in failed] == ["b.png"]
    assert f"{pred / 'b_labels.tif'}: 60 x 40 pixels, not the size of" in failed[0]["error"]
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "images scored      1" in out and "not scored         b.png: " in out
    (pred / "b_labels.tif").write_bytes(b"not a tiff")
    assert main(["evaluate", str(data), str(pred)]) == 0
    assert "not scored         b.png: " in capsys.readouterr().out
    (data / "points.csv").unlink()
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "detection F1       no points of these images" in out and "F1       1.000" not in out


def test_what_is_no_label_image_is_named_not_scored(tiny_dataset, tmp_path):
    """A mask of another size than its image is named as the odd one (the prediction of the
    image's size was); a prediction of fractions (cells 0.5 and 1.5, read as 0 and 1) or in
    colour, and a copy of the dataset's images given as predictions, are named, not scored
    (they scored as cells cut to whole numbers, or grey levels as cells)."""
    data, pred = tiny_dataset
    tifffile.imwrite(data / "masks" / "b.tif", np.zeros((40, 60), np.uint16))
    tifffile.imwrite(pred / "b_labels.tif", np.zeros((50, 60), np.uint16))
    failed = {e["image"]: e["error"] for e in evaluate_folder(data, pred).per_image if "error" in e}
    assert failed["b.png"].startswith(f"{data / 'masks' / 'b.tif'}: 60 x 40 pixels, not the size")
    (data / "masks" / "b.tif").unlink()
    labels = tifffile.imread(pred / "a_labels.tif")
    tifffile.imwrite(
        pred / "a_labels.tif", np.where(labels > 0, labels - 0.5, 0).astype(np.float32)
    )
    failed = {e["image"]: e["error"] for e in evaluate_folder(data, pred).per_image if "error" in e}
    assert "a_labels.tif: not a label image (32-bit float, with fractions)" in failed["a.png"]
    colour = np.zeros((50, 60, 3), np.uint8)
    colour[..., 2] = labels
    (pred / "a_labels.tif").unlink()
    cv2.imwrite(str(pred / "a.png"), colour)  # (a prediction of PNG, in colour)
    failed = {e["image"]: e["error"] for e in evaluate_folder(data, pred).per_image if "error" in e}
    assert failed["a.png"] == f"{pred / 'a.png'}: not a label image (a colour image)"
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):  # images of cells, not blank ones
        cv2.imwrite(str(data / "images" / name), rng.integers(0, 255, (50, 60), np.uint8))
    copy = tmp_path / "copy"
    shutil.copytree(data / "images", copy)
    scores = evaluate_folder(data, copy)
    failed = {e["image"]: e["error"] for e in scores.per_image if "error" in e}
    assert (
        f"{copy / 'a.png'}: the pixels of {data / 'images' / 'a.png'}, not its" in failed["a.png"]
    )
    assert main(["evaluate", str(data), str(copy)]) == 1


def test_predictions_made_from_another_datasets_images_are_not_scored(tiny_dataset, tmp_path):
    """Predictions a cellprop run made from another dataset's images of the same names
    (same size: nothing else tells): its summary.csv records the pixels each was made
    from, and those images are named, not scored; predictions of these images are."""
    data, _ = tiny_dataset
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "a.png"), np.full((50, 60), 7, np.uint8))  # another a.png
    cv2.imwrite(str(other / "b.png"), np.zeros((50, 60), np.uint8))  # b.png's pixels
    out = tmp_path / "out"
    assert main(["segment", str(other), "--out", str(out), "--quiet"]) in (0, 1)
    scores = evaluate_folder(data, out)
    failed = {e["image"]: e["error"] for e in scores.per_image if e.get("error")}
    assert list(failed) == ["a.png"]
    assert (
        "made from other pixels than" in failed["a.png"] and str(other / "a.png") in failed["a.png"]
    )
    assert [e["image"] for e in scores.per_image if "cells" in e] == ["b.png"]


def test_evaluate_without_predictions_is_a_clear_error(tiny_dataset, tmp_path, capsys):
    data, _ = tiny_dataset
    (tmp_path / "nothing").mkdir()
    assert main(["evaluate", str(data), str(tmp_path / "nothing")]) == 2
    assert "no predicted label image" in capsys.readouterr().err


def test_detections_from_the_cells_table_are_used_when_present(tiny_dataset):
    data, pred = tiny_dataset
    # cellprop segment writes where each cell was detected; the published F-measure uses
    # those points. Here one detection is 12 px off its manual position: not matched.
    (pred / "a_cells.csv").write_text(
        "ObjectNumber,Detection_Center_X,Detection_Center_Y\n1,9.5,9.5\n2,37,46.5\n"
    )
    scores = evaluate_folder(data, pred)
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 1)
    assert scores.per_image[0]["points"] == "detections"


def test_evaluate_refuses_what_it_cannot_score_and_says_what_it_scored(
    tiny_dataset, tmp_path, capsys
):
    """A prediction of another size than its image where there is no mask, a cells.csv of
    other labels than the prediction's (edited in Fiji since), the dataset's own images
    given as predictions, and a run where nothing could be scored: each said, not scored
    as if fine; evaluation.json gives the radius used and the images scored; PNG masks count."""
    data, pred = tiny_dataset
    tifffile.imwrite(pred / "b_labels.tif", np.zeros((40, 60), np.uint16))  # b.png: no mask
    (pred / "a_cells.csv").write_text(  # three detections, the labels two cells
        "ObjectNumber,Detection_Center_X,Detection_Center_Y\n1,9.5,9.5\n2,37,34.5\n3,50,5\n"
    )
    scores = evaluate_folder(data, pred, radius=5)
    failed = {e["image"]: e["error"] for e in scores.per_image if e.get("error")}
    assert "60 x 40 pixels, not the size of" in failed["b.png"]
    assert scores.per_image[0]["points"] == "centroids" and (scores.tp, scores.fp) == (2, 0)
    report = scores.report()
    assert report["detection"]["radius_px"] == 5 and report["images"] == 1
    with pytest.raises(ValueError, match="the dataset's own images, not predictions"):
        evaluate_folder(data, data / "images")
    # nothing scored: said, and not exit 0
    (pred / "a_labels.tif").write_bytes(b"not a tiff")
    assert main(["evaluate", str(data), str(pred)]) == 1
    captured = capsys.readouterr()
    assert "images scored      0" in captured.out and "no image scored" in captured.err
    assert "no points of these images" not in captured.out
    # a mask saved as PNG is read as one
    (data / "masks" / "a.tif").rename(data / "masks" / "a.png.tif")
    guess = np.zeros((50, 60), np.uint16)
    guess[5:15, 5:15] = 1
    tifffile.imwrite(pred / "a_labels.tif", guess)
    (pred / "a_cells.csv").unlink()
    cv2.imwrite(
        str(data / "masks" / "a.png"),
        tifffile.imread(data / "masks" / "a.png.tif").astype(np.uint8),
    )
    assert evaluate_folder(data, pred).mdice is not None


def test_points_of_an_image_converted_since_count_and_mixed_measures_are_said(tiny_dataset, capsys):
    """points.csv naming a.tif where the images were converted to PNG since: a.png's points
    by its stem (it said 'no points'); F1 over images scored on detected centres and on
    outline centroids says so (only evaluation.json told)."""
    data, pred = tiny_dataset
    (data / "points.csv").write_text("image,x,y\na.tif,9.5,9.5\na.tif,37,34.5\nb.png,30,25\n")
    guess = np.zeros((50, 60), np.uint16)
    guess[20:30, 25:35] = 1
    tifffile.imwrite(pred / "b_labels.tif", guess)
    (pred / "a_cells.csv").write_text(
        "ObjectNumber,Detection_Center_X,Detection_Center_Y\n1,9.5,9.5\n2,37,34.5\n"
    )
    scores = evaluate_folder(data, pred)
    assert (scores.tp, scores.fp, scores.fn) == (3, 0, 0)
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "on the detected centres of 1 image(s), the outlines' centroids of 1" in out
    # b's table there but of other cells (its labels edited since): not said to be missing
    (pred / "b_cells.csv").write_text("ObjectNumber,Detection_Center_X,Detection_Center_Y\n")
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "(no cells.csv that counts their labels' cells: none there, or the labels" in out


def test_a_damaged_cells_table_falls_back_to_the_outlines_centroids(tiny_dataset, capsys):
    """A cells.csv cut short or with words for numbers (edited in a spreadsheet): that image
    is scored on its outlines' centroids (a traceback, or the whole evaluation stopped with
    a message naming no file)."""
    data, pred = tiny_dataset
    for text in (
        "ObjectNumber,Detection_Center_X,Detection_Center_Y\n1,9.5,9.5\n2,37",  # cut short
        "ObjectNumber,Detection_Center_X,Detection_Center_Y\n1,9.5,9.5\n2,n/a,34.5\n",
        "ObjectNumber,Detection_Center_X\n1,9.5\n2,37\n",  # its Y column taken out
    ):
        (pred / "a_cells.csv").write_text(text)
        scores = evaluate_folder(data, pred)
        assert scores.per_image[0]["points"] == "centroids" and scores.tp == 2
        assert main(["evaluate", str(data), str(pred)]) == 0
        assert "detection F1       1.000" in capsys.readouterr().out


def test_an_empty_mask_still_counts_the_cells_predicted_on_it(tiny_dataset, tmp_path, capsys):
    """A mask with no cells (an empty field) and five cells predicted there: AP50 0 with its
    five false positives, printed (it said "none of the images scored has a mask"), and no
    detection F1 recorded where no points were scored (it recorded 1.0 of nothing)."""
    data, _ = tiny_dataset
    (data / "points.csv").unlink()
    tifffile.imwrite(data / "masks" / "a.tif", np.zeros((50, 60), np.uint16))
    pred = tmp_path / "five"
    pred.mkdir()
    guess = np.zeros((50, 60), np.uint16)
    for k in range(5):
        guess[5:10, 5 + 10 * k : 10 + 10 * k] = k + 1
    tifffile.imwrite(pred / "a_labels.tif", guess)
    assert main(["evaluate", str(data), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "mDice              no cells in the masks of the images scored" in out
    assert "AP at IoU 0.5      0.000" in out and "false positives: 5 background" in out
    report = json.loads((pred / "evaluation.json").read_text())
    assert report["ap50_counts"] == {"tp": 0, "fp": 5, "fn": 0}
    assert report["detection"]["f1"] is None and report["detection"]["tp"] == 0


def test_scores_are_printed_where_evaluation_json_cannot_be_written(tiny_dataset, tmp_path, capsys):
    """--json into a folder that is not there (or a read-only folder of results): the
    scores are printed all the same, then why the file is not written, exit 1 (only the
    error was printed)."""
    data, pred = tiny_dataset
    target = tmp_path / "no such folder" / "e.json"
    assert main(["evaluate", str(data), str(pred), "--json", str(target)]) == 1
    captured = capsys.readouterr()
    assert "detection F1       1.000" in captured.out and "mDice" in captured.out
    assert f"cannot write {target}" in captured.err and "--json FILE" in captured.err


def test_evaluate_refuses_the_masks_and_two_images_of_one_name(tiny_dataset, capsys):
    """The dataset's masks given as predictions (every score 1.000, and evaluation.json
    written among the masks): refused. Two images of one name, a.png and a.tif: neither
    is scored, said why (one prediction was scored twice)."""
    data, pred = tiny_dataset
    with pytest.raises(ValueError, match="the dataset's own masks, not predictions"):
        evaluate_folder(data, data / "masks")
    assert main(["evaluate", str(data), str(data / "masks")]) == 2
    assert not (data / "masks" / "evaluation.json").exists()
    capsys.readouterr()
    tifffile.imwrite(data / "images" / "a.tif", np.zeros((50, 60), np.uint8))
    scores = evaluate_folder(data, pred)
    failed = {e["image"]: e["error"] for e in scores.per_image if e.get("error")}
    assert sorted(failed) == ["a.png", "a.tif"]
    assert "a.png, a.tif have one name" in failed["a.png"] and scores.report()["images"] == 0


def test_predictions_of_a_files_pages_are_checked_against_the_pages_given(tmp_path):
    """A --page all run over a time-lapse, scored against a dataset holding its pages as
    images (movie_p0c0.tif, ...) with two of them swapped: those two are named, made from
    other pixels (the check was skipped for pages), the page in its place is scored."""
    rng = np.random.default_rng(5)
    frames = (rng.random((3, 48, 64)) * 200).astype(np.uint8)
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, frames, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "out"
    assert main(["segment", str(movie), "--page", "all", "--out", str(out), "--quiet"]) in (0, 1)
    data = tmp_path / "dataset"
    (data / "images").mkdir(parents=True)
    for page, frame in zip((2, 1, 0), frames, strict=True):  # pages 0 and 2 swapped
        tifffile.imwrite(data / "images" / f"movie_p{page}c0.tif", frame)
    scores = evaluate_folder(data, out)
    failed = {e["image"]: e["error"] for e in scores.per_image if e.get("error")}
    assert sorted(failed) == ["movie_p0c0.tif", "movie_p2c0.tif"]
    assert "made from other pixels than" in failed["movie_p0c0.tif"]
    assert f"{movie} page 0" in failed["movie_p0c0.tif"]
    assert [e["image"] for e in scores.per_image if "cells" in e] == ["movie_p1c0.tif"]


def test_a_black_and_white_mask_has_a_cell_in_each_spot_and_another_page_is_refused(
    tmp_path, capsys
):
    """A mask of one value (every cell 255, as a thresholded mask saves them) is a cell in
    each separate spot, and evaluate says so: it was one cell an image, scored mDice 0.25 for
    0.87. A prediction the run made from page 1 of the dataset's own multi-page file is
    named, not scored against it (its first page, which is scored; it was)."""
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    labels = np.zeros((40, 60), np.uint16)
    labels[5:15, 5:15], labels[20:30, 30:45] = 1, 2
    image = (labels > 0).astype(np.uint8) * 200 + 20
    cv2.imwrite(str(data / "images" / "a.png"), image)
    cv2.imwrite(str(data / "masks" / "a.png"), np.where(labels > 0, 255, 0).astype(np.uint8))
    pred = tmp_path / "pred"
    pred.mkdir()
    tifffile.imwrite(pred / "a_labels.tif", labels)
    scores = evaluate_folder(data, pred)
    assert scores.mdice == 1.0 and scores.ap50 == 1.0
    (entry,) = scores.per_image
    assert entry["note"] == "a.png: one value (255) in 2 separate spots, each taken as a cell"
    assert main(["evaluate", str(data), str(pred)]) == 0
    assert "note               a.png: a.png: one value (255)" in capsys.readouterr().out

    movie = tmp_path / "movies"
    (movie / "images").mkdir(parents=True)
    (movie / "masks").mkdir()
    frames = np.stack([image, np.roll(image, 9, axis=1)])
    tifffile.imwrite(movie / "images" / "m.tif", frames, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(movie / "masks" / "m.tif", labels)
    out = tmp_path / "out"
    assert main(
        ["segment", str(movie / "images" / "m.tif"), "--page", "1", "--out", str(out), "-q"]
    ) in (0, 1)
    failed = {e["image"]: e.get("error", "") for e in evaluate_folder(movie, out).per_image}
    assert "made from other pixels than" in failed["m.tif"] and "page 1" in failed["m.tif"]


def test_what_of_a_dataset_is_passed_over_is_said(tmp_path, capsys):
    """Masks named otherwise than their images (crop2_mask.tif), a mask's extension in
    capitals (crop1.TIF: read), points.csv naming an image not there, a Fiji x,y table for a
    dataset of one image: each said, or read, where the score left them out unsaid."""
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    labels = np.zeros((40, 60), np.uint16)
    labels[5:15, 5:15], labels[20:30, 30:45] = 1, 2
    pred = tmp_path / "pred"
    pred.mkdir()
    for name in ("crop1", "crop2"):
        cv2.imwrite(str(data / "images" / f"{name}.png"), (labels > 0).astype(np.uint8) * 200)
        tifffile.imwrite(pred / f"{name}_labels.tif", labels)
    tifffile.imwrite(data / "masks" / "crop1.TIF", labels)
    tifffile.imwrite(data / "masks" / "crop2_mask.tif", labels)
    (data / "points.csv").write_text(
        "image,x,y\ncrop1.png,10,10\ncrop1.png,60,40\ncrop3.png,5,5\n"  # 60,40: outside
    )
    scores = evaluate_folder(data, pred)
    (first,) = [e for e in scores.per_image if e["image"] == "crop1.png"]
    assert "1 of its 2 points lie outside its 60 x 40 pixels" in first["note"]
    assert len(scores.dice) == 2  # crop1's two cells, its mask read
    notes = " | ".join(scores.notes)
    assert "masks/ crop2_mask.tif: of no image" in notes
    assert "no mask for crop2.png" in notes
    assert "points.csv names crop3.png, of no image in images/" in notes
    assert main(["evaluate", str(data), str(pred)]) == 0
    assert "note               no mask for crop2.png" in capsys.readouterr().out
    # images in folders of images/ (a plate's wells): said, scored or not (they were left out
    # unsaid, or the predictions blamed)
    (data / "images" / "A01").mkdir()
    cv2.imwrite(str(data / "images" / "A01" / "field1.png"), (labels > 0).astype(np.uint8))
    assert "images/ A01: folders, not looked into" in " | ".join(evaluate_folder(data, pred).notes)
    (tmp_path / "none").mkdir()  # no prediction at all: the folders said with it
    with pytest.raises(FileNotFoundError, match="images/ A01: folders, not looked into"):
        evaluate_folder(data, tmp_path / "none")
    # one image, its centres an x,y table (Fiji's Multi-point): read for it
    one = tmp_path / "one"
    (one / "images").mkdir(parents=True)
    cv2.imwrite(str(one / "images" / "crop1.png"), (labels > 0).astype(np.uint8) * 200)
    (one / "points.csv").write_text("X,Y\n10,10\n37,25\n")
    scores = evaluate_folder(one, pred)
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 0)
    # the same centres one file per image, points/<image>.csv, as training reads them
    (one / "points.csv").unlink()
    (one / "points").mkdir()
    (one / "points" / "crop1.csv").write_text("x,y\n10,10\n37,25\n")
    scores = evaluate_folder(one, pred)
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 0)


def test_an_image_of_too_many_cells_to_score_together_is_named(tmp_path, monkeypatch):
    """An image whose cells are too many for one overlap table (a stitched scan's 90,000
    nuclei asked 60 GB, a traceback): named, not scored, the other images scored."""
    import cellprop.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "_MAX_PAIRS", 100)  # (a small table, as a large one would)
    data, pred = tmp_path / "set", tmp_path / "pred"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    pred.mkdir()
    many = np.zeros((40, 60), np.uint16)
    for k in range(12):
        many[2 + 3 * k, 2 : 2 + k + 1] = k + 1
    few = np.zeros_like(many)
    few[10:20, 10:20] = 1
    for name, labels in (("many", many), ("few", few)):
        cv2.imwrite(str(data / "images" / f"{name}.png"), (labels > 0).astype(np.uint8) * 200)
        tifffile.imwrite(data / "masks" / f"{name}.tif", labels)
        tifffile.imwrite(pred / f"{name}_labels.tif", labels)
    scores = evaluate_folder(data, pred)
    failed = {e["image"]: e["error"] for e in scores.per_image if e.get("error")}
    assert list(failed) == ["many.png"]
    assert "12 true and 12 predicted cells in one image, too many to score" in failed["many.png"]
    assert scores.mdice == 1.0 and len(scores.dice) == 1  # few.png's cell
