"""`make validate`: accuracy of the shipped models on held-out images, beside two baselines.

For every dataset of ../shared/data that a shipped model was trained for, on that model's
``test`` images (training/models.py; never used for training or for tuning), three methods are
scored side by side:

1. ``classical``: smoothing, threshold, distance-transform watershed (tools/baselines.py);
2. ``seeded watershed``: a gradient watershed seeded from the model's own detected centres;
3. ``cellprop``: the engine with the model's defaults (model.json), as `cellprop segment` runs.

The baselines' two free choices (threshold method and correction factor) are picked on the same
``tune`` images that chose cellprop's defaults, so no method sees the test images before. The
model's edge rule (model.json ``edge_fraction``: cells cut by the image edge that show less than
that share of a typical cell are dropped, judged as its ``edge_estimate`` says) is applied to
every method's labels alike, so the comparison is about the outlines, not about that filter.

Scores (cellprop.engine.evaluate): detection F1 at 10 px on the centroids of the objects
(cellprop also on its detected peaks), and where masks exist mDice and AP at IoU 0.5. Writes
docs/validation.md, docs/validation_<dataset>.png and each model.json's "validation".

The sanity check against the authors' own outputs (../shared/data/wsispdr-reference) compares
the phase model's centres and labels with the official code's on the same image.

Usage::

    python tools/validate.py ../shared/data --out docs [--only dic] [--max-images 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import classical_segment, seeded_watershed  # noqa: E402
from cellprop.engine import Settings, load_model, read_image, segment, suggest_model  # noqa: E402
from cellprop.engine.evaluate import (  # noqa: E402
    AP50_ERRORS,
    Scores,
    ap_counts,
    centroids,
    dice_per_cell,
    f1_score,
    link_scores,
    match_points,
)
from cellprop.engine.normalise import rescale  # noqa: E402
from cellprop.engine.pipeline import filter_cells, resolve_settings  # noqa: E402
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

METHODS = ("classical", "seeded watershed", "cellprop")
COLOURS = {"classical": (0, 165, 255), "seeded watershed": (255, 128, 0), "cellprop": (0, 220, 0)}
#: Issue 5's goals on the test images; "f1_peaks" is detection as the paper scores it.
GOALS = {
    "c2c12-phase": {"f1_peaks": 0.95},
    "hela-dic": {"mdice": 0.80, "ap50": 0.75},
    "gowt1-fluo": {"mdice": 0.85, "ap50": 0.85},
}
BASELINE_GRID = {"method": ("otsu", "local"), "correction": (0.7, 0.85, 1.0, 1.2)}


def edge_rule(model):
    """The model's edge rule as a function on a baseline's labels (cellprop's own labels have
    it already): cells touching the image edge below its ``edge_min_size`` pixels go, or with
    the model's ``edge_estimate`` "centre", those whose centre lies nearer the edge than its
    ``edge_centre_px``. A baseline's centre of label k is ``centres[k - 1]`` ((x, y)) where it
    grew from given centres (the seeded watershed, from cellprop's), else the centroid of its
    own outline (the classical pipeline detects no centres)."""
    cfg = resolve_settings(model, Settings())
    edge_min, edge_centre = cfg["edge_min_size"], cfg["edge_centre_px"]

    def apply(labels: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
        if edge_min <= 0 and edge_centre <= 0:
            return labels
        n = int(labels.max())
        if centres is None:
            centres = np.zeros((n, 2))
            present = np.unique(labels[labels > 0])
            centres[present - 1] = centroids(labels)
        centres_rc = np.asarray(centres, float).reshape(-1, 2)[:n, ::-1]
        return filter_cells(labels, centres_rc, 1, False, edge_min, edge_centre)[0]

    return apply


def run_methods(case: Case, model, baseline_params: dict, diameter: float, modality: str):
    """Labels (and timings) of the three methods on one image; also cellprop's peaks."""
    out, seconds = {}, {}
    rule = edge_rule(model)
    t0 = time.perf_counter()
    out["classical"] = rule(
        classical_segment(case.image, modality, diameter, **baseline_params["classical"])
    )
    seconds["classical"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = segment(case.image, model, Settings())
    seconds["cellprop"] = time.perf_counter() - t0
    out["cellprop"] = result.labels
    t0 = time.perf_counter()
    out["seeded watershed"] = rule(
        seeded_watershed(
            case.image, result.centres, modality, diameter, **baseline_params["seeded watershed"]
        ),
        result.centres,
    )
    detection = sum(result.timings.get(k, 0.0) for k in ("normalise", "unet", "detect"))
    seconds["seeded watershed"] = time.perf_counter() - t0 + detection
    return out, seconds, result.centres


def tune_baselines(cases: list[Case], model, diameter: float, modality: str) -> dict:
    """Each baseline's threshold method and correction factor, best on the tune images."""
    centres = [segment(c.image, model, Settings()).centres for c in cases]
    rule = edge_rule(model)
    best = {}
    for method, run in (
        ("classical", lambda c, i, **p: rule(classical_segment(c.image, modality, diameter, **p))),
        (
            "seeded watershed",
            lambda c, i, **p: rule(
                seeded_watershed(c.image, centres[i], modality, diameter, **p), centres[i]
            ),
        ),
    ):
        ranked = []
        for values in itertools.product(*BASELINE_GRID.values()):
            params = dict(zip(BASELINE_GRID, values, strict=True))
            scores = Scores()
            for i, case in enumerate(cases):
                add_scores(scores, case, run(case, i, **params))
            ranked.append((objective(scores), params))
        best[method] = max(ranked, key=lambda r: r[0])[1]
    return best


def validate_dataset(
    root: Path, recipe, max_images: int | None = None, models: Path = MODELS_DIR
) -> dict:
    """Score the three methods on a recipe's test images; returns a JSON-ready dict."""
    model = load_model(models / recipe.name, device="cpu")
    recorded = {Path(n).name for n in model.info.get("training", {}).get("train_images", [])}
    check_splits(recipe)
    if recorded & set(recipe.test):
        raise RuntimeError(
            f"{recipe.name}: test images were trained on: {recorded & set(recipe.test)}"
        )
    folder = root / recipe.dataset
    tune = load_cases(folder, recipe.tune[:max_images])
    params = tune_baselines(tune, model, recipe.diameter, recipe.modality)
    test = load_cases(folder, recipe.test[:max_images])
    scores = {m: Scores() for m in METHODS}
    peaks, seconds = Scores(), dict.fromkeys(METHODS, 0.0)
    # Beside the goals' scores: AP at IoU 0.75 (Scores.ap75: how well outlines fit, where AP50
    # saturates) and every AP50 error by kind (Scores.ap50_errors), among them the false
    # positives at the image edge on unlabelled mask pixels (cells the truth omits).
    example = None
    outlined = []  # cellprop's labels of each test image, in order (cells followed over time)
    for case in test:
        labels, timing, centres = run_methods(case, model, params, recipe.diameter, recipe.modality)
        outlined.append(labels["cellprop"])
        for m in METHODS:
            add_scores(scores[m], case, labels[m])
            seconds[m] += timing[m] / len(test)
        add_scores(peaks, case, centres=centres)
        if example is None:
            example = (case, labels, centres)
    results = {m: dict(summary(s), seconds_per_image=seconds[m]) for m, s in scores.items()}
    for m, s in scores.items():
        if s.ap50 is None:
            continue
        edge_fp = s.ap50_errors["fp unlabelled edge"]
        results[m]["ap75"] = s.ap75
        results[m]["ap50_errors"] = dict(s.ap50_errors)
        results[m]["ap50_counts"] = [s.ap_tp, s.ap_fp, s.ap_fn]
        results[m]["ap50_unlabelled_edge_not_counted"] = s.ap_tp / max(
            1, s.ap_tp + s.ap_fp - edge_fp + s.ap_fn
        )
    results["cellprop"]["f1_peaks"] = peaks.f1
    # How much the goals' scores rest on which test images were chosen (Scores.interval)
    results["cellprop"]["intervals"] = {
        "f1_peaks": peaks.interval("f1"),
        "mdice": scores["cellprop"].interval("mdice"),
        "ap50": scores["cellprop"].interval("ap50"),
    }
    # ... and how far ahead of each comparison pipeline, both drawn alike (paired)
    results["cellprop"]["differences"] = {
        b: {
            m: scores["cellprop"].difference_interval(scores[b], m)
            for m in (("mdice", "ap50") if scores[b].mdice is not None else ("f1",))
        }
        for b in METHODS[:2]
    }
    used = resolve_settings(model, Settings())
    return {
        "dataset": recipe.dataset,
        "model": recipe.name,
        "test_images": list(recipe.test[:max_images]),
        "tune_images": list(recipe.tune[:max_images]),
        "train_images": sorted(recorded) or list(recipe.train),
        "cells": int(sum(len(c.points) for c in test)),
        "masks": sum(c.mask is not None for c in test),
        "baseline_params": params,
        "tuned": bool(recipe.grid),
        # The values `cellprop segment --model NAME` runs with (defaults the model.json leaves
        # out filled in as the engine fills them), under model.json's names.
        "defaults": {
            name: used[key]
            for name, key in (
                ("threshold", "threshold"),
                ("graphcut_weight", "smoothness"),
                ("min_size_px", "min_size"),
                ("edge_fraction", "edge_fraction"),
                ("edge_estimate", "edge_estimate"),
                ("scale", "scale"),
            )
        },
        "scores": results,
        "tracking": tracking_check(folder, test, outlined),
        "_example": example,
    }


def tracking_check(folder: Path, test: list, outlined: list) -> dict | None:
    """Cells followed over time (engine/track.py), scored by engine.evaluate.link_scores
    where the test images are consecutive frames with masks that number each cell alike in
    every frame (the Cell Tracking Challenge's): on cellprop's outlines of the test frames,
    and on all the dataset's masks themselves (the linking alone); None elsewhere."""
    numbers = [int("".join(filter(str.isdigit, Path(c.name).stem)) or -1) for c in test]
    consecutive = len(test) > 1 and numbers == list(range(numbers[0], numbers[0] + len(test)))
    if not consecutive or any(c.mask is None for c in test):
        return None
    masks = [read_image(p).pixels for p in sorted((folder / "masks").glob("*.tif"))]
    return {
        "test": link_scores([c.mask for c in test], outlined),
        "masks": link_scores(masks, masks),
        "mask_frames": len(masks),
    }


# --- sanity check against the authors' code -------------------------------------------------


def reference_check(folder: Path, models: Path = MODELS_DIR) -> dict:
    """Agreement of the phase model with the official WSISPDR outputs on their demo image.

    Centres: one-to-one matching of our detected centres with output/guided/00000/peaks.txt
    (ID 0 is the official code's background entry, not a cell) within 10 px. Layout: their
    label image (output/seg/labelresults) taken as reference for mDice, AP50 and the Dice of the
    union of all cells; and the share of the official guided maps' energy (instance.png) that
    falls inside our cells.
    """
    model = load_model(models / "phase", device="cpu")
    image = read_image(folder / "image/test/ori/00000.png").pixels
    peaks = np.genfromtxt(folder / "output/guided/00000/peaks.txt", delimiter=",", names=True)
    theirs = np.stack([peaks["x"], peaks["y"]], 1)[peaks["ID"] > 0]
    their_labels = read_image(folder / "output/seg/labelresults/00000label.png").pixels
    energy = cv2.imread(str(folder / "output/guided/00000/instance.png")).astype(float).sum(2)
    result = segment(image, model, Settings())
    tp, fp, fn = match_points(theirs, result.centres)
    distance = np.hypot(*(theirs[:, None] - result.centres[None]).transpose(2, 0, 1))
    nearest = distance.min(1) if distance.size else np.zeros(0)
    a_tp, a_fp, a_fn = ap_counts(their_labels, result.labels)
    ours, ref = result.labels > 0, their_labels > 0
    return {
        "their_cells": len(theirs),
        "our_cells": int(len(result.centres)),
        "centres_matched": tp,
        "centres_f1": f1_score(tp, fp, fn),
        "median_nearest_distance_px": float(np.median(nearest)) if len(nearest) else None,
        "labels_mdice": float(np.mean(dice_per_cell(their_labels, result.labels))),
        "labels_ap50": a_tp / (a_tp + a_fp + a_fn),
        "foreground_dice": 2 * (ours & ref).sum() / (ours.sum() + ref.sum()),
        "guided_energy_inside_our_cells": float(energy[ours].sum() / energy.sum()),
        "_example": (image, theirs, their_labels, result),
    }


# --- figures and report ------------------------------------------------------------------------


# --- the test images as other microscopes would record them ----------------------------------


def _light(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The same field recorded differently: exposure, bit depth, noise, focus, illumination."""
    x = image.astype(np.float32)
    lo, hi = np.percentile(x, [1.0, 99.8])
    if kind == "16-bit, other exposure":
        return (x * 180.0 + 2000.0).clip(0, 65535).astype(np.uint16)
    if kind == "gamma 1.5 (darker mid-tones)":
        x = 255.0 * (x / 255.0) ** 1.5
    elif kind == "noise (4% of the range)":
        x = x + rng.normal(0.0, 0.04 * (hi - lo), x.shape)
    elif kind == "defocus (blur 1.5 px)":
        x = cv2.GaussianBlur(x, (0, 0), 1.5)
    elif kind == "uneven light (±25%)":
        x = x * np.linspace(0.75, 1.25, x.shape[1], dtype=np.float32)[None, :]
    return np.clip(np.round(x), 0, 255).astype(image.dtype)


#: (condition, pixel size factor, --diameter: None = the model's scale, "given" = the true
#: diameter as a user who knows their magnification would give it, "auto" = estimated)
CONDITIONS = [
    ("as recorded", 1.0, None),
    ("16-bit, other exposure", 1.0, None),
    ("gamma 1.5 (darker mid-tones)", 1.0, None),
    ("noise (4% of the range)", 1.0, None),
    ("defocus (blur 1.5 px)", 1.0, None),
    ("uneven light (±25%)", 1.0, None),
    ("magnification x0.8", 0.8, None),
    ("magnification x1.25", 1.25, None),
    ("magnification x0.5, --diameter given", 0.5, "given"),
    ("magnification x2, --diameter given", 2.0, "given"),
    ("as recorded, --diameter auto", 1.0, "auto"),
    ("magnification x0.5, --diameter auto", 0.5, "auto"),
    ("magnification x0.8, --diameter auto", 0.8, "auto"),
    ("magnification x1.25, --diameter auto", 1.25, "auto"),
    ("magnification x2, --diameter auto", 2.0, "auto"),
]


def robustness_check(
    root: Path, recipe, max_images: int | None = None, models: Path = MODELS_DIR
) -> list[dict]:
    """cellprop with the model's defaults on the test images recorded otherwise (CONDITIONS).

    A changed magnification is simulated by resizing; the result is brought back to the
    recorded size (nearest label) and scored against the recorded masks and points. Each
    magnification runs with the model's scale, with the true diameter given, or with the
    diameter estimated per image (``--diameter auto``); for the last, each row also holds the
    estimated magnifications (``estimated``, one per image).
    """
    model = load_model(models / recipe.name, device="cpu")
    own = model.cell_diameter_px / model.scale  # the model's cells, original pixels
    test = load_cases(root / recipe.dataset, recipe.test[:max_images])
    rows = []
    for condition, factor, diameter in CONDITIONS:
        rng = np.random.default_rng(0)
        scores, peaks, estimated = Scores(), Scores(), []
        for case in test:
            image = _light(case.image, condition, rng)
            image = rescale(image, factor, order=1 if factor < 1 else 3)
            given = {"given": own * factor, "auto": "auto"}.get(diameter)
            result = segment(image, model, Settings(diameter=given))
            if diameter == "auto":
                estimated.append(result.settings["diameter_px"] / own)
            labels = rescale(result.labels, shape=case.image.shape, order=0)
            add_scores(scores, case, labels)
            add_scores(peaks, case, centres=(result.centres + 0.5) / factor - 0.5)
        rows.append(
            dict(summary(scores), condition=condition, f1_peaks=peaks.f1, estimated=estimated)
        )
    return rows


def model_choice_check(data: Path, models: Path = MODELS_DIR) -> dict | None:
    """``--model auto`` on every image of every dataset: how often it picks the dataset's model.

    The margin of an image is the right model's centre confidence minus the best other
    competitor's (where the lighting rule leaves it alone in the pool, its confidence).
    """
    loaded = [load_model(models / r, device="cpu") for r in RECIPES if (models / r).is_dir()]
    if len(loaded) < 2:
        return None
    sources = [
        (r.name, r.dataset, sorted((data / r.dataset / "images").iterdir()))
        for r in RECIPES.values()
        if (data / r.dataset / "images").is_dir()
    ]
    reference = data / "wsispdr-reference" / "image" / "test" / "ori" / "00000.png"
    if reference.is_file():
        sources.append(("phase", "wsispdr-reference", [reference]))
    # the test frames as another objective or camera binning gives them: half and twice the
    # magnification (each model is asked at its cells' size halved to doubled)
    for r in RECIPES.values():
        if r.dataset in ("c2c12-phase", "hela-dic") and (data / r.dataset / "images").is_dir():
            for zoom in (0.5, 2.0):
                frames = [data / r.dataset / "images" / name for name in r.test]
                sources.append((r.name, f"{r.dataset} test frames x{zoom:g}", frames, zoom))
    rows = []
    for expected, dataset, files, *zoom in sources:
        right, margins, t0 = 0, [], time.perf_counter()
        for f in files:
            pixels = read_image(f).pixels
            if zoom:
                size = (round(pixels.shape[1] * zoom[0]), round(pixels.shape[0] * zoom[0]))
                shrink = zoom[0] < 1
                pixels = cv2.resize(
                    pixels, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
                )
            s = suggest_model(pixels, loaded)
            right += s.model.name == expected
            others = [v for k, v in s.confidence.items() if k != expected]
            margins.append(s.confidence.get(expected, 0.0) - max(others, default=0.0))
        rows.append(
            dict(
                dataset=dataset,
                expected=expected,
                images=len(files),
                right=right,
                min_margin=float(min(margins)),
                seconds=(time.perf_counter() - t0) / len(files),
            )
        )
    return {"rows": rows}


def _outlines(canvas: np.ndarray, labels: np.ndarray, colour, thickness: int = 1) -> None:
    for k in np.unique(labels[labels > 0]):
        contours, _ = cv2.findContours(
            (labels == k).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(canvas, contours, -1, colour, thickness)


def _points(canvas: np.ndarray, points: np.ndarray, colour, size: int = 3) -> None:
    for x, y in np.round(points).astype(int):
        cv2.drawMarker(canvas, (int(x), int(y)), colour, cv2.MARKER_CROSS, 2 * size + 1, 1)


def example_figure(result: dict, shippable: bool, side: int = 256) -> np.ndarray:
    """Three panels (classical, seeded watershed, cellprop) over one test image.

    Outlines in colour, ground-truth outlines (masks) in grey, annotated centres as white
    crosses. Only images that may be shipped are drawn under the outlines; for the Cell
    Tracking Challenge data the panels show outlines on a black canvas (their images must never
    be committed into the project).
    """
    case, labels, _ = result["_example"]
    rows, cols = case.image.shape
    crop = min(rows, cols, 2 * side)  # at most half-size, so outlines stay readable
    r0, c0 = (rows - crop) // 2, (cols - crop) // 2
    window = (slice(r0, r0 + crop), slice(c0, c0 + crop))
    if shippable:
        grey = cv2.normalize(case.image[window].astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
        base = cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
    else:
        base = np.zeros((crop, crop, 3), np.uint8)
    panels = []
    for method in METHODS:
        canvas = base.copy()
        if case.mask is not None:
            _outlines(canvas, case.mask[window], (110, 110, 110))
        _outlines(canvas, labels[method][window], COLOURS[method], 2 if crop > side else 1)
        pts = case.points - [c0, r0]
        _points(canvas, pts[(pts >= 0).all(1) & (pts < crop).all(1)], (255, 255, 255))
        canvas = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_AREA)
        cv2.putText(
            canvas, method, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLOURS[method], 1, cv2.LINE_AA
        )
        panels.append(canvas)
    return np.hstack(panels)


def reference_figure(check: dict) -> np.ndarray:
    """The demo image: official labels (grey outlines) and peaks (red) beside ours (green)."""
    image, theirs, their_labels, result = check["_example"]
    grey = cv2.normalize(image.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
    canvas = cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
    _outlines(canvas, their_labels, (40, 40, 230))
    _outlines(canvas, result.labels, (0, 220, 0))
    _points(canvas, theirs, (40, 40, 230), 4)
    _points(canvas, result.centres, (0, 220, 0), 3)
    return canvas


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def write_report(
    results: list[dict],
    check: dict | None,
    out: Path,
    command: str,
    choice: dict | None = None,
    robustness: dict | None = None,
) -> str:
    """docs/validation.md: what was run on which images, the table, and the reference check."""
    lines = [
        "# Validation",
        "",
        f"Written by `make validate` (`{command}`), {time.strftime('%Y-%m-%d %H:%M %Z')}. "
        "Everything here is measured; nothing is copied from elsewhere.",
        "",
        "Methods: **classical** = smoothing, Otsu or local threshold, distance-transform "
        "watershed (what a CellProfiler user would build; foreground by modality: intensity "
        "for fluorescence, deviation from background for phase contrast, local texture for "
        "DIC); **seeded watershed** = gradient watershed from the cellprop model's own detected "
        "centres inside the classical foreground, which is widened by a disk of half the "
        "typical cell diameter around each centre (like CellProfiler's Distance-N; on round "
        "nuclei of even size this is a strong shape prior) and limited to one diameter from "
        "it: what detection alone gives; **cellprop** = "
        "guided propagation + graph cut with the model's defaults (`cellprop segment --model "
        "NAME`, no flags). The baselines' threshold method and correction factor were chosen "
        "on the same tuning images as cellprop's defaults (tools/baselines.py, tools/validate.py).",
        "",
        "Scores: **F1** = detection F1 of object centroids against the annotated points, "
        "one-to-one matching within 10 px, counts summed over images (in brackets: cellprop's "
        "detected peaks); **mDice** = for each ground-truth cell, Dice with the predicted cell "
        "most frequent under it (0 if none), averaged over all ground-truth cells; **AP50** = "
        "TP / (TP + FP + FN) at IoU 0.5, counts summed over images; **AP75** the same at IoU "
        "0.75 (how closely outlines fit; not a goal).",
        "",
        "| dataset (model) | test images | cells | method | F1 | mDice | AP50 | AP75 | s/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        names = ", ".join(Path(n).stem for n in r["test_images"])
        if len(r["test_images"]) > 4:
            names = f"{Path(r['test_images'][0]).stem}–{Path(r['test_images'][-1]).stem}"
        for i, method in enumerate(METHODS):
            s = r["scores"][method]
            f1 = _fmt(s["f1"]) + (f" ({_fmt(s['f1_peaks'])})" if "f1_peaks" in s else "")
            head = (
                (f"{r['dataset']} ({r['model']})", names, str(r["cells"]))
                if i == 0
                else ("", "", "")
            )
            bold = "**" if method == "cellprop" else ""
            lines.append(
                f"| {' | '.join(head)} | {bold}{method}{bold} | {f1} | {_fmt(s.get('mdice'))} | "
                f"{_fmt(s.get('ap50'))} | {_fmt(s.get('ap75'))} | "
                f"{_fmt(s['seconds_per_image'], 2)} |"
            )
    edge = [r for r in results if r["scores"]["cellprop"].get("ap50_counts")]
    if edge:
        lines += [
            "",
            "## Where the AP50 errors lie",
            "",
            "Every AP50 false positive (FP, a predicted cell matched to no true cell at IoU "
            "> 0.5) and false negative (FN, a true cell matched by none), by kind "
            "(engine/evaluate.py `ap50_errors`). FP that cover no true cell by half or more "
            "and lie mostly on pixels the masks leave unlabelled: *unlabelled edge*, it touches "
            "the image edge (the masks omit some cells cut by the edge, "
            "../shared/data/README.md, so a cell found there counts against a method); "
            "*background*, elsewhere. Every other FP, by the true cell it covers most: *second "
            "piece*, that cell is matched by another prediction; *too small* / *too large*, "
            "matched by none, and this outline is smaller / larger than the cell (a small "
            "cell's outline grown over the background to the edge is *too large*). FN: "
            "*missed*, no predicted cell covers a fifth of it; *merged*, the predicted cell most "
            "frequent under it is matched to another cell or has a quarter or more of its pixels "
            "on other cells; *outline*, else (found, but IoU at most 0.5). The last column is "
            "AP50 with the unlabelled-edge FPs not counted; the goals are judged on the AP50 above, with them counted. Every method's labels "
            "have been through the model's edge rule first (`edge_fraction` in the defaults "
            "below: cells cut by the edge that show less than that share of a typical cell are "
            "dropped, as `cellprop segment` does; that share is judged by the outline's area, "
            "or where `edge_estimate` is centre by how near the edge the cell's centre lies, a "
            "baseline's being the centre it grew from, else its outline's centroid).",
            "",
            "| dataset | method | FP | unlabelled edge | background | second piece | too small "
            "| too large | FN | missed | merged | outline | AP50 without unlabelled edge |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in edge:
            for i, m in enumerate(METHODS):
                s = r["scores"][m]
                _tp, fp, fn = s["ap50_counts"]
                kinds = s.get("ap50_errors") or {}
                fps, fns = (
                    [str(kinds.get(k, "–")) for k in AP50_ERRORS if k.startswith(side)]
                    for side in ("fp", "fn")
                )
                bold = "**" if m == "cellprop" else ""
                lines.append(
                    f"| {r['dataset'] if i == 0 else ''} | {bold}{m}{bold} | {fp} | "
                    f"{' | '.join(fps)} | {fn} | {' | '.join(fns)} | "
                    f"{_fmt(s['ap50_unlabelled_edge_not_counted'])} |"
                )
    lines += [
        "",
        "## Goals",
        "",
        "*95% interval*: the test images drawn again with replacement 2,000 times and the "
        "score pooled over each draw (engine/evaluate.py `Scores.interval`): how much the "
        "measured score rests on which images were chosen (none for one image). The frames "
        "of one time-lapse are alike, so the spread over other sequences and microscopes is "
        "wider than this.",
        "",
        "| dataset | goal | measured | 95% interval | |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cellprop = r["scores"]["cellprop"]
        for metric, goal in GOALS.get(r["dataset"], {}).items():
            value = cellprop.get(metric)
            verdict = (
                "met"
                if value is not None and value >= goal
                else (f"missed by {goal - value:.3f}" if value is not None else "not measured")
            )
            span = (cellprop.get("intervals") or {}).get(metric)
            spread = f"{_fmt(span[0])}–{_fmt(span[1])}" if span else "–"
            lines.append(
                f"| {r['dataset']} | {metric} >= {goal} | {_fmt(value)} | {spread} | {verdict} |"
            )
        metrics = ("mdice", "ap50") if cellprop.get("mdice") is not None else ("f1",)
        behind = []
        for b in METHODS[:2]:
            for m in metrics:
                theirs, ours = r["scores"][b].get(m) or 0.0, cellprop.get(m) or 0.0
                if theirs > ours:
                    behind.append(f"behind {b} on {m}")
                elif theirs == ours:
                    counts = r["scores"][b].get(f"{m}_counts")
                    same = f" (same counts {counts})" if counts else ""
                    behind.append(f"level with {b} on {m}{same}")
        lines.append(
            f"| {r['dataset']} | ahead of both baselines ({', '.join(metrics)}) | | | "
            + ("met |" if not behind else f"missed: {'; '.join(behind)} |")
        )
    paired = [
        (r, b, m, span)
        for r in results
        for b, spans in (r["scores"]["cellprop"].get("differences") or {}).items()
        for m, span in spans.items()
        if span
    ]
    if paired:
        lines += [
            "",
            "cellprop's lead over each comparison pipeline, both scored on the same test images "
            "and resampled alike (engine/evaluate.py `Scores.difference_interval`): an interval "
            "above 0 is a lead these images would show whichever of them were drawn.",
            "",
            "| dataset | over | score | cellprop minus it | 95% interval |",
            "|---|---|---|---|---|",
        ]
        for r, b, m, span in paired:
            lead = (r["scores"]["cellprop"].get(m) or 0.0) - (r["scores"][b].get(m) or 0.0)
            lines.append(
                f"| {r['dataset']} | {b} | {m} | {lead:+.3f} | {span[0]:+.3f} to {span[1]:+.3f} |"
            )
    tracked = [r for r in results if r.get("tracking")]
    if tracked:
        lines += [
            "",
            "## Following cells over time",
            "",
            "`--track` (engine/track.py) links each frame's cells to the frame before. These "
            "masks number each cell alike in every frame, so links can be checked "
            "(engine/evaluate.py `link_scores`): a link between two cells matched to true "
            "cells (IoU > 0.5) at both frames is right if they are one true cell; a called "
            "daughter is right if it matches a true daughter (a cell numbered anew on one whose "
            "number ends) of the cell its mother matches. *Masks* links the masks themselves "
            "(the linking alone, every frame); *cellprop* the model's outlines of the test "
            "frames. *Gaps closed*: links to a cell two frames back (a track missed for a "
            "frame), and how many of those join one true cell; *missed cells followed*: of the "
            "true cells matched at a frame and two before it but not at the one between, how "
            "many keep their track across.",
            "",
            "| dataset | linked | frames | links right | wrong | true links made | "
            "daughters called | right | true daughters | gaps closed | right | "
            "missed cells followed |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in tracked:
            t = r["tracking"]
            for what, s, frames in (
                ("masks", t["masks"], f"all {t['mask_frames']}"),
                ("cellprop", t["test"], _span(r["test_images"])),
            ):
                lines.append(
                    f"| {r['dataset']} | {what} | {frames} | {s['right']} | {s['wrong']} | "
                    f"{s['found']} of {s['true_links']} | {s['daughters']} | "
                    f"{s['daughters_right']} | {s['true_daughters']} | {s['gaps']} | "
                    f"{s['gaps_right']} | {s['gaps_found']} of {s['true_gaps']} |"
                )
    lines += ["", "## Images used for what", ""]
    for r in results:
        lines.append(
            f"* **{r['dataset']}**: trained on {_span(r['train_images'])}; "
            + (
                f"defaults and baselines tuned on {_span(r['tune_images'])}"
                if r.get("tuned", True)
                else f"cellprop's defaults not tuned (the exported ones); baselines tuned on "
                f"{_span(r['tune_images'])}"
            )
            + f"; tested on {_span(r['test_images'])} ({r['masks']} with masks). cellprop "
            f"defaults: {r['defaults']}; baselines: {r['baseline_params']}."
        )
    lines += [
        "",
        "Example overlays (one test image each; coloured = method, grey = mask, white "
        "crosses = annotated centres; hela-dic and gowt1-fluo drawn without their pixels, "
        "which may not be shipped):",
        "",
    ]
    for r in results:
        lines.append(f"![{r['dataset']}](validation_{r['dataset']}.png)")
    if check is not None:
        lines += [
            "",
            "## Sanity check against the authors' code (wsispdr-reference)",
            "",
            "On the official demo image (image/test/ori/00000.png, 320x320 phase contrast), the "
            "`phase` model against the outputs of the official code (a check of the "
            "re-implementation, not ground truth):",
            "",
            f"* centres: {check['centres_matched']} of their {check['their_cells']} peaks "
            f"matched one-to-one within 10 px by our {check['our_cells']} centres "
            f"(F1 {_fmt(check['centres_f1'])}"
            + (
                f"; median distance from each of their peaks to our nearest centre "
                f"{_fmt(check['median_nearest_distance_px'], 1)} px"
                if check["median_nearest_distance_px"] is not None
                else ""
            )
            + ");",
            f"* instance layout against their label image (output/seg/labelresults): mDice "
            f"{_fmt(check['labels_mdice'])}, AP50 {_fmt(check['labels_ap50'])}, Dice of the "
            f"union of all cells {_fmt(check['foreground_dice'])};",
            f"* {100 * check['guided_energy_inside_our_cells']:.0f}% of the official "
            "guided-backprop maps' intensity (output/guided/00000/instance.png) lies inside our "
            "cells.",
            "",
            "![wsispdr reference](validation_wsispdr-reference.png)",
            "",
            "Red: official peaks and labels; green: ours.",
        ]
    if robustness:
        datasets = list(robustness)
        lines += [
            "",
            "## The test images as another microscope would record them",
            "",
            "No other lab's images are at hand, so the same test images are altered the way "
            "another microscope or camera would record them, and cellprop is run with the "
            "model's defaults (tools/validate.py `CONDITIONS`). Training augmented contrast, "
            "gamma (0.8-1.25; the nuclei model 0.5-2.0), noise and zoom (0.8-1.25); the "
            "conditions go beyond that. "
            "A changed magnification is simulated by resizing, and the result is scored at the "
            "recorded size; it is run with the model's scale (no flag), with the true cell "
            "diameter given (`--diameter PX`, as a user who knows their magnification would), "
            "and with the diameter estimated on each image (`--diameter auto`, engine/size.py; "
            "in brackets the range of the magnifications it estimated). F1 is on the "
            "detected peaks; mDice / AP50 where masks exist.",
            "",
            "| condition | " + " | ".join(datasets) + " |",
            "|---|" + "---|" * len(datasets),
        ]
        for i, (condition, *_rest) in enumerate(CONDITIONS):
            cells = []
            for d in datasets:
                row = robustness[d][i] if i < len(robustness[d]) else None
                if row is None:
                    cells.append("–")
                elif row["mdice"] is None:
                    cells.append(f"F1 {_fmt(row['f1_peaks'])}")
                else:
                    cells.append(f"{_fmt(row['mdice'])} / {_fmt(row['ap50'])}")
                if row is not None and row.get("estimated"):
                    low, high = min(row["estimated"]), max(row["estimated"])
                    span = f"x{low:.2f}" if abs(high - low) < 0.005 else f"x{low:.2f}-{high:.2f}"
                    cells[-1] += f" ({span})"
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    if choice is not None:
        lines += [
            "",
            "## Model choice (`--model auto`)",
            "",
            "`suggest_model` (engine/choose.py) on every image of each dataset, training frames "
            "included (it judges the networks' confidence, not the segmentation), and on the "
            "test frames resized to half and twice their magnification: how often it "
            "picks the dataset's model, and the smallest margin of the right model's centre "
            "confidence over the best other competitor's.",
            "",
            "| images | model expected | chosen right | smallest margin | s/image |",
            "|---|---|---|---|---|",
        ]
        for row in choice["rows"]:
            lines.append(
                f"| {row['dataset']} ({row['images']}) | {row['expected']} | "
                f"{row['right']} of {row['images']} | {_fmt(row['min_margin'], 2)} | "
                f"{_fmt(row['seconds'], 2)} |"
            )
    text = "\n".join(lines) + "\n"
    (out / "validation.md").write_text(text, encoding="utf-8")
    return text


def _span(names) -> str:
    names = [Path(n).stem for n in names]
    if len(names) <= 4:
        return ", ".join(names)
    return f"{len(names)} images ({names[0]} … {names[-1]})"


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    return value


def record_in_model(result: dict, models: Path = MODELS_DIR) -> None:
    """Store the scores in the model's model.json under "validation"."""
    path = models / result["model"] / "model.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info["validation"] = _jsonable(
        {
            k: result[k]
            for k in ("dataset", "test_images", "tune_images", "cells", "scores", "baseline_params")
        }
    )
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


SHIPPABLE = {"c2c12-phase", "wsispdr-reference"}  # see ../shared/data/README.md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="folder of datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="report folder")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(RECIPES),
        help="validate only this model (repeatable)",
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=None,
        help="at most this many tune and test images per dataset (quick runs)",
    )
    parser.add_argument(
        "--models", type=Path, default=MODELS_DIR, help="folder of model folders (default: shipped)"
    )
    parser.add_argument(
        "--no-robustness",
        action="store_true",
        help="skip the altered copies of the test images (quicker)",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not write the scores into the models' model.json",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results, robustness = [], {}
    for name in args.only or RECIPES:
        recipe = RECIPES[name]
        if not (args.data / recipe.dataset).is_dir():
            print(f"{recipe.dataset}: not in {args.data}, skipped")
            continue
        t0 = time.perf_counter()
        result = validate_dataset(args.data, recipe, args.max_images, args.models)
        results.append(result)
        cv2.imwrite(
            str(args.out / f"validation_{recipe.dataset}.png"),
            example_figure(result, recipe.dataset in SHIPPABLE),
        )
        if not args.no_record:
            record_in_model(result, args.models)
        print(
            f"{recipe.dataset}: {json.dumps(_jsonable(result['scores']))} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        if not args.no_robustness:
            t0 = time.perf_counter()
            rows = robustness_check(args.data, recipe, args.max_images, args.models)
            robustness[recipe.dataset] = rows
            print(f"{recipe.dataset} altered: {json.dumps(_jsonable(rows))} ", end="")
            print(f"({time.perf_counter() - t0:.0f} s)")
    check = None
    reference = args.data / "wsispdr-reference"
    if reference.is_dir() and (args.models / "phase" / "model.json").is_file():
        check = reference_check(reference, args.models)
        cv2.imwrite(str(args.out / "validation_wsispdr-reference.png"), reference_figure(check))
        print(f"wsispdr-reference: {json.dumps(_jsonable(check))}")
    choice = model_choice_check(args.data, args.models) if not args.only else None
    if choice is not None:
        print(f"model choice: {json.dumps(_jsonable(choice))}")
    command = "python tools/validate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(results, check, args.out, command.strip(), choice, robustness)
    print(f"wrote {args.out / 'validation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
