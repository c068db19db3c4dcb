"""`make validate` (tools/validate.py) and the scoring and splits it relies on (training/models.py)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "tools"))

from cellprop.engine.evaluate import Scores, centroids  # noqa: E402
from cellprop.training.models import (  # noqa: E402
    MODELS_DIR,
    RECIPES,
    Case,
    add_scores,
    check_splits,
    load_cases,
    objective,
    summary,
)


def _squares() -> np.ndarray:
    labels = np.zeros((60, 80), np.int32)
    labels[5:25, 5:25] = 1
    labels[30:50, 10:30] = 2
    labels[10:40, 45:75] = 3
    return labels


def test_scores_perfect_and_with_one_cell_missed():
    truth = _squares()
    case = Case("x", np.zeros(truth.shape), centroids(truth), truth)
    perfect = Scores()
    add_scores(perfect, case, truth)
    s = summary(perfect)
    assert (s["f1"], s["mdice"], s["ap50"]) == (1.0, 1.0, 1.0)

    missed = truth.copy()
    missed[missed == 3] = 0
    partial = Scores()
    add_scores(partial, case, missed)
    s = summary(partial)
    assert s["tp_fp_fn"] == [2, 0, 1]
    assert s["f1"] == pytest.approx(0.8)
    assert s["mdice"] == pytest.approx(2 / 3)  # the missed cell counts as Dice 0
    assert s["ap50"] == pytest.approx(2 / 3)
    assert objective(perfect) > objective(partial)

    # detection alone, on given centres 12 px off: beyond the 10 px radius
    detection = Scores()
    add_scores(detection, Case("x", truth, centroids(truth), None), centres=centroids(truth) + 12)
    assert summary(detection)["tp_fp_fn"] == [0, 3, 3] and detection.mdice is None
    assert objective(detection) == 0.0


@pytest.mark.data
def test_load_cases_reads_points_and_masks_where_they_exist():
    if not (DATA / "gowt1-fluo" / "images").is_dir():
        pytest.skip("needs ../shared/data/gowt1-fluo (absent)")
    with_mask, without = load_cases(DATA / "gowt1-fluo", ("t021.tif", "t000.tif"))
    assert with_mask.mask is not None and without.mask is None
    assert with_mask.mask.shape == with_mask.image.shape == (1024, 1024)
    assert len(with_mask.points) > 10 and with_mask.points.shape[1] == 2


def test_recipes_keep_test_images_out_of_training_and_tuning():
    for recipe in RECIPES.values():
        check_splits(recipe)
        assert not set(recipe.test) & (set(recipe.train) | set(recipe.tune)), recipe.name
        if recipe.grid:  # defaults are tuned: never on a training image
            assert not set(recipe.tune) & set(recipe.train), recipe.name
    with pytest.raises(ValueError, match="overlap"):
        check_splits(replace(RECIPES["dic"], test=RECIPES["dic"].train[:1]))
    masked = {"t021.tif", "t031.tif", "t033.tif", "t039.tif"}
    nuclei = RECIPES["nuclei"]
    assert masked == set(nuclei.tune) | set(nuclei.test)
    # frames far from the masked ones: nothing within 10 frames of them is trained on
    trained = {int(n[1:4]) for n in nuclei.train}
    assert all(abs(t - m) > 10 for t in trained for m in (21, 31, 33, 39))


def _needs(dataset: str, model: str) -> None:
    if not (DATA / dataset).is_dir():
        pytest.skip(f"needs ../shared/data/{dataset} (absent)")
    if not (MODELS_DIR / model / "model.json").is_file():
        pytest.skip(f"needs the shipped model resources/models/{model}")


@pytest.mark.data
def test_validate_end_to_end_on_one_real_image(tmp_path):
    _needs("hela-dic", "dic")
    import validate

    assert (
        validate.main(
            [str(DATA), "--out", str(tmp_path), "--only", "dic", "--max-images", "1", "--no-record"]
        )
        == 0
    )
    report = (tmp_path / "validation.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| hela-dic (dic)"))
    assert "t070" in row and "classical" in row
    for method in ("seeded watershed", "**cellprop**"):
        assert f"| {method} |" in report
    rows = [
        line for line in report.splitlines() if line.startswith("|") and "| **cellprop** |" in line
    ]
    scores = rows[0].split("|")[5:8]
    mdice, ap50 = float(scores[1]), float(scores[2])
    assert 0.0 <= ap50 <= 1.0 and 0.3 < mdice <= 1.0  # a trained model finds real cells
    # The altered copies: "as recorded" is the same run as the table's; 16-bit at another
    # exposure normalises to the same input, so it scores the same.
    assert "## The test images as another microscope would record them" in report
    assert f"| as recorded | {mdice:.3f} / {ap50:.3f} |" in report
    # one test image cannot say how much the score rests on it: no interval
    assert f"| hela-dic | mdice >= 0.8 | {mdice:.3f} | – |" in report
    assert f"| 16-bit, other exposure | {mdice:.3f} / {ap50:.3f} |" in report
    assert "| magnification x2, --diameter given |" in report
    # --diameter auto: each row says which magnification it estimated; x2 is found as about 2.
    auto = next(
        line
        for line in report.splitlines()
        if line.startswith("| magnification x2, --diameter auto |")
    )
    estimated = float(auto.split("(x")[1].split(")")[0].split("-")[0])
    assert 1.6 < estimated < 2.5
    # Every AP50 error is given a kind: in each method's row the kinds add up to its FP and FN.
    assert "## Where the AP50 errors lie" in report
    table = report.split("## Where the AP50 errors lie")[1].split("\n## ")[0]
    rows = [line.split("|")[2:-1] for line in table.splitlines() if line.startswith("| ")][1:]
    assert [r[0].strip() for r in rows] == ["classical", "seeded watershed", "**cellprop**"]
    for r in rows:
        fp, *fp_kinds, fn, missed, merged, outline, without_edge = r[1:]
        assert int(fp) == sum(int(k) for k in fp_kinds)
        assert int(fn) == int(missed) + int(merged) + int(outline)
        assert 0.0 <= float(without_edge) <= 1.0
    figure = cv2.imread(str(tmp_path / "validation_hela-dic.png"))
    assert figure is not None and figure.shape[1] == 3 * figure.shape[0]
    # Cell Tracking Challenge pixels must never land in the repository: the figure is outlines
    # on black, so most of it is exactly black.
    assert (figure.max(axis=2) == 0).mean() > 0.6


@pytest.mark.data
def test_reference_check_agrees_with_the_authors_code():
    _needs("wsispdr-reference", "phase")
    import validate

    check = validate.reference_check(DATA / "wsispdr-reference")
    assert check["their_cells"] == 31
    # The same kind of cells (C2C12 phase contrast): most official peaks must be found again.
    assert check["centres_f1"] > 0.6
    assert 0.0 < check["foreground_dice"] <= 1.0


def test_report_states_goals_met_and_missed_by_how_much(tmp_path):
    import validate

    def scores(f1, mdice, ap50, counts=(10, 5, 3), edge=2):
        tp, fp, fn = counts
        kinds = dict.fromkeys(validate.AP50_ERRORS, 0)
        kinds.update({"fp unlabelled edge": edge, "fp outline too small": fp - edge})
        kinds.update({"fn missed": 1, "fn outline": fn - 1})
        return {
            "ap50_errors": kinds,
            "f1": f1,
            "mdice": mdice,
            "ap50": ap50,
            "ap75": ap50 / 2,
            "ap50_counts": list(counts),
            "ap50_unlabelled_edge_not_counted": tp / (tp + fp - edge + fn),
            "seconds_per_image": 1.0,
        }

    result = {
        "dataset": "hela-dic",
        "model": "dic",
        "test_images": ["t070.tif", "t071.tif"],
        "tune_images": ["t060.tif"],
        "train_images": ["t000.tif"],
        "cells": 30,
        "masks": 2,
        "baseline_params": {},
        "defaults": {},
        "scores": {
            "classical": scores(0.2, 0.40, 0.10),
            "seeded watershed": scores(0.6, 0.78, 0.70),
            "cellprop": dict(
                scores(0.5, 0.75, 0.80),
                f1_peaks=0.9,
                intervals={"mdice": (0.70, 0.79)},
                differences={"seeded watershed": {"mdice": (-0.06, 0.01), "ap50": None}},
            ),
        },
    }
    text = validate.write_report([result], None, tmp_path, "test")
    assert (tmp_path / "validation.md").read_text() == text
    assert "| hela-dic | mdice >= 0.8 | 0.750 | 0.700–0.790 | missed by 0.050 |" in text
    assert "| hela-dic | ap50 >= 0.75 | 0.800 | – | met |" in text  # no interval given
    assert "behind seeded watershed on mdice" in text
    assert "| hela-dic | seeded watershed | mdice | -0.030 | -0.060 to +0.010 |" in text
    assert "| ap50 |" not in text.split("cellprop minus it")[1]  # no interval, no row
    assert "0.500 (0.900)" in text  # object F1, then the detected peaks' F1
    assert "| 0.800 | 0.400 | 1.00 |" in text  # AP50, AP75, seconds
    # FP 5: 2 at the unlabelled edge, 3 too small; FN 3: 1 missed, 2 outline; AP50 without the
    # unlabelled-edge FPs 10 / (10 + 5 - 2 + 3).
    assert "|  | **cellprop** | 5 | 2 | 0 | 0 | 3 | 0 | 3 | 1 | 0 | 2 | 0.625 |" in text
    result["scores"]["seeded watershed"]["ap50"] = 0.80
    text = validate.write_report([result], None, tmp_path, "test")
    assert "level with seeded watershed on ap50 (same counts [10, 5, 3])" in text


@pytest.mark.data
def test_model_choice_is_checked_on_every_image_and_reported(tmp_path):
    for dataset, model in (("c2c12-phase", "phase"), ("hela-dic", "dic"), ("gowt1-fluo", "nuclei")):
        _needs(dataset, model)
    import validate

    choice = validate.model_choice_check(DATA)
    rows = {r["dataset"]: r for r in choice["rows"]}
    assert rows["hela-dic"]["images"] == 84 and rows["gowt1-fluo"]["images"] == 92
    for row in rows.values():
        assert row["right"] == row["images"], row
        assert row["min_margin"] > 0.05, row
    text = validate.write_report([], None, tmp_path, "test", choice)
    assert "## Model choice (`--model auto`)" in text
    assert "| hela-dic (84) | dic | 84 of 84 |" in text
    # the test frames at half and twice the magnification: still their model (the phase
    # model won HeLa at x0.5 and x3 where each model was asked at its own scale only)
    assert rows["hela-dic test frames x0.5"]["images"] == 14
    assert "| c2c12-phase test frames x2 (1) | phase | 1 of 1 |" in text


def test_baselines_go_through_the_models_edge_rule():
    """validate applies the model's edge rule (model.json edge_fraction) to the baselines' labels
    as `cellprop segment` does to its own, so that the comparison is about the outlines: a small
    piece cut by the image edge goes, a large one at the edge and a small one inside stay."""
    import validate
    from cellprop.engine import load_model

    nuclei = load_model(MODELS_DIR / "nuclei", device="cpu")
    assert nuclei.defaults["edge_fraction"] == 0.5  # 0.5 x pi x 60^2 / 4 = 1414 px at the edge
    labels = np.zeros((200, 200), np.int32)
    labels[0:10, 50:60] = 1  # 100 px, touching the top edge: a fragment
    labels[150:200, 0:40] = 2  # 2000 px, touching two edges: kept
    labels[90:100, 90:100] = 3  # 100 px, inside: the edge rule does not look at it
    labels[20:60, 150:200] = 5  # 2000 px at the right edge; label 4 unused
    kept = validate.edge_rule(nuclei)(labels)
    assert kept.max() == 3 and not kept[0:10, 50:60].any()
    for old in (2, 3, 5):
        assert len(np.unique(kept[labels == old])) == 1 and kept[labels == old][0] > 0
    # A model without an edge fraction (phase) keeps every cell as it is.
    phase = load_model(MODELS_DIR / "phase", device="cpu")
    assert "edge_fraction" not in phase.defaults
    assert validate.edge_rule(phase)(labels) is labels


def test_baselines_cut_cells_are_judged_by_their_centre_where_the_model_does():
    """The dic model judges a cut cell by where its centre lies (model.json edge_estimate):
    a baseline's cut cell is judged by the centre it grew from (the seeded watershed's, given)
    or else by its own centroid."""
    import validate
    from cellprop.engine import Settings, load_model
    from cellprop.engine.pipeline import resolve_settings

    dic = load_model(MODELS_DIR / "dic", device="cpu")
    assert dic.defaults["edge_estimate"] == "centre"
    near = resolve_settings(dic, Settings())["edge_centre_px"]
    assert 10 < near < 30  # a cell of 110 px showing 0.25-0.5 of itself
    labels = np.zeros((300, 300), np.int32)
    labels[0:20, 50:150] = 1  # a sliver at the top edge: its centroid 10 rows in
    labels[0:80, 200:280] = 2  # a cut cell showing much of itself: centroid 40 rows in
    labels[100:150, 100:150] = 3  # inside
    kept = validate.edge_rule(dic)(labels)
    assert not kept[labels == 1].any() and kept[labels == 2].all() and kept[labels == 3].all()
    # Centres given (x, y): the sliver grew from a centre 40 rows in, the big one from one on
    # the edge's first row; the rule follows them, not the outlines.
    given = np.array([[100.0, 40.0], [240.0, 0.0], [125.0, 125.0]])
    kept = validate.edge_rule(dic)(labels, given)
    assert kept[labels == 1].all() and not kept[labels == 2].any() and kept[labels == 3].all()
