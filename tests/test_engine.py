"""The engine end to end with a tiny random model: shapes, tiling, batching, modes, models,
cancellation, and no torch at run time. Accuracy is tested on real images in test_engine_real.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cellprop.engine import (
    Cancelled,
    ModelError,
    Settings,
    available_devices,
    list_models,
    load_model,
    segment,
)
from cellprop.engine.normalise import prepare
from cellprop.engine.propagate import likelihood_map, propagate_cells

RNG = np.random.default_rng(11)


def textured(shape) -> np.ndarray:
    """Blobs on noise: something for a random network to respond to."""
    from scipy import ndimage as ndi

    return (ndi.gaussian_filter(RNG.random(shape), 3) * 4000).astype(np.uint16)


def test_any_image_size_gives_results_of_the_same_size(tiny_model):
    for shape in [(101, 77), (16, 16), (9, 300)]:
        image = textured(shape)
        seg = segment(image, tiny_model, Settings(threshold=0.01))
        assert seg.labels.shape == shape and seg.labels.dtype == np.uint16
        assert seg.likelihood.shape == shape and seg.likelihood.dtype == np.float32
        assert seg.contribution.shape == shape
        assert seg.centres.shape == (seg.n_cells, 2)
        assert int(seg.labels.max()) == seg.n_cells
        assert set(seg.timings) >= {"normalise", "unet", "detect", "propagate", "graphcut"}
        assert seg.settings["threshold"] == 0.01 and seg.settings["provider"] == "CPU"


def test_flat_and_empty_images_give_zero_cells_not_an_error(tiny_model):
    for image in (np.zeros((64, 80), np.uint8), np.full((50, 50), 7, np.uint16)):
        seg = segment(image, tiny_model)
        assert seg.n_cells == 0 and seg.labels.max() == 0 and seg.labels.shape == image.shape


def test_tiled_unet_stitches_the_tiles_into_the_one_pass_map(tiny_model, monkeypatch):
    """Plumbing: tiles cover the image, each core where it belongs. (The tiny random net's
    output barely varies; with a trained one tiles are near, not equal: test_engine_real.)"""
    image = prepare(textured((300, 420)), 1.0)
    whole = likelihood_map(tiny_model, image, memory_mb=4096)
    calls = []
    run = tiny_model.likelihood
    monkeypatch.setattr(tiny_model, "likelihood", lambda x: calls.append(x.shape) or run(x))
    tiled = likelihood_map(tiny_model, image, memory_mb=16)  # too small for one pass
    assert len(calls) > 1 and all(s[2] * s[3] < image.size for s in calls)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def _maps(model, image, mode, memory_mb):
    from cellprop.engine.detect import centre_regions, find_centres

    lik = likelihood_map(model, image)
    centres = find_centres(lik, float(np.percentile(lik, 99)), 2)
    regions = centre_regions(lik.shape, centres, 5)
    return {
        m.label: m
        for m in propagate_cells(model, image, lik, regions, len(centres), mode, 16, memory_mb)
    }


def test_batching_does_not_change_the_maps(tiny_model):
    image = prepare(textured((96, 128)), 1.0)
    one_by_one = _maps(tiny_model, image, "crop", memory_mb=0)  # batch of 1
    batched = _maps(tiny_model, image, "crop", memory_mb=1024)
    assert one_by_one.keys() == batched.keys() and len(batched) > 3
    for label, cell in batched.items():
        np.testing.assert_allclose(cell.values, one_by_one[label].values, atol=1e-5)


def test_on_the_cpu_a_propagation_call_holds_no_more_than_its_cap(tiny_model, monkeypatch):
    """Batches far beyond the caches ran at half the speed on the CPU (README, Performance):
    whatever the memory budget, one call's working memory stays within CPU_CALL_MB there."""
    from cellprop.engine import propagate

    image = prepare(textured((96, 128)), 1.0)
    calls = []
    run = tiny_model.guided
    monkeypatch.setattr(tiny_model, "guided", lambda x, g: calls.append(x.shape) or run(x, g))
    budget = _maps(tiny_model, image, "crop", memory_mb=1024)
    uncapped = max(c[0] for c in calls)
    per_item = calls[0][2] * calls[0][3] * tiny_model.bytes_per_pixel()
    calls.clear()
    monkeypatch.setattr(propagate, "CPU_CALL_MB", max(1, 3 * per_item // 2**20))
    capped = _maps(tiny_model, image, "crop", memory_mb=1024)
    assert tiny_model.device == "cpu" and uncapped > 3
    assert max(c[0] for c in calls) * per_item <= propagate.CPU_CALL_MB * 2**20
    assert max(c[0] for c in calls) < uncapped and capped.keys() == budget.keys()
    for label, cell in capped.items():
        np.testing.assert_array_equal(cell.values, budget[label].values)


def test_full_mode_covers_the_whole_image(tiny_model):
    image = prepare(textured((64, 96)), 1.0)
    full = _maps(tiny_model, image, "full", memory_mb=256)
    assert full and all(m.values.shape == image.shape for m in full.values())
    assert all(m.values.max() == pytest.approx(1.0) for m in full.values())


def test_diameter_rescales_and_results_come_back_to_the_original_size(tiny_model):
    image = textured((120, 90))
    seg = segment(image, tiny_model, Settings(threshold=0.01, diameter=40.0))
    assert seg.labels.shape == seg.contribution.shape == seg.likelihood.shape == image.shape
    assert seg.settings["scale"] == pytest.approx(tiny_model.cell_diameter_px / 40.0)
    # a model folder whose model.json gives no cell size: refused, not ignored (the diameter
    # was recorded as used and the image segmented at the model's own scale)
    saved = tiny_model.cell_diameter_px
    tiny_model.cell_diameter_px = None
    try:
        with pytest.raises(ValueError, match="gives no cell_diameter_px"):
            segment(image, tiny_model, Settings(diameter=40.0))
    finally:
        tiny_model.cell_diameter_px = saved


def test_a_given_diameter_scales_the_models_size_defaults(tiny_model):
    from cellprop.engine.pipeline import resolve_settings

    own = tiny_model.cell_diameter_px / tiny_model.scale  # the model's cells, original pixels
    base = resolve_settings(tiny_model, Settings())
    twice = resolve_settings(tiny_model, Settings(diameter=2 * own))
    assert twice["scale"] == pytest.approx(tiny_model.scale / 2)
    assert base["cut_scale"] == 1.0 and twice["cut_scale"] == pytest.approx(0.5)
    # Minimum area and centre region follow the cells; in network pixels nothing changes.
    assert twice["min_size"] == round(4 * tiny_model.defaults["min_size_px"])
    assert twice["region_radius_px"] == pytest.approx(2 * base["region_radius_px"])
    assert twice["region_radius_px"] * twice["scale"] == pytest.approx(
        base["region_radius_px"] * base["scale"]
    )
    # A minimum size given by the user is kept as given.
    assert resolve_settings(tiny_model, Settings(diameter=2 * own, min_size=7))["min_size"] == 7


def _four_cells() -> tuple[np.ndarray, np.ndarray]:
    """Four cells, two inside and two cut by the image edge, and their centres (row, col)."""
    labels = np.zeros((40, 60), np.uint16)
    labels[10:15, 10:16] = 1  # inside, 30 px
    labels[0:5, 20:26] = 2  # cut by the top edge, 30 px
    labels[20:40, 0:10] = 3  # cut by the left and bottom edges, 200 px
    labels[15:30, 30:45] = 4  # inside, 225 px
    return labels, np.array([[12.0, 13.0], [2.0, 23.0], [30.0, 5.0], [22.0, 37.0]])


def test_cells_cut_by_the_border_go_below_the_edge_size_or_all_with_exclude_border():
    from cellprop.engine.pipeline import filter_cells

    labels, centres = _four_cells()

    def kept(**kwargs):
        out, rows = filter_cells(labels, centres, min_size=10, **kwargs)
        assert int(out.max()) == len(rows)  # renumbered 1..N, the centres follow
        return [tuple(r) for r in rows]

    every = [tuple(r) for r in centres]
    assert kept() == every
    assert kept(edge_min=100) == [every[0], every[2], every[3]]  # the edge fragment goes
    assert kept(edge_min=201) == [every[0], every[3]]
    assert kept(exclude_border=True, edge_min=100) == [every[0], every[3]]
    # The general minimum size still applies inside the image.
    out, rows = filter_cells(labels, centres, min_size=31, edge_min=100)
    assert [tuple(r) for r in rows] == [every[2], every[3]]


def test_a_cut_cells_centre_near_the_edge_says_how_little_of_it_shows():
    """edge_centre_distance against drawn discs: a disc of 101 px cut by the image edge at
    several depths; the centroid of the part left is where the rule puts a cell that shows
    that share of itself."""
    from cellprop.engine.pipeline import edge_centre_distance

    yy, xx = np.mgrid[0:200, 0:200]
    for inside in (5, 15, 30, 50, 75, 100):  # rows of the disc left in the image
        disc = np.hypot(yy - (inside - 50.5), xx - 100) <= 50.5
        share = disc.sum() / (np.pi * 50.5**2)
        depth = yy[disc].mean() + 0.5  # from the image's top edge
        assert edge_centre_distance(share, 101) == pytest.approx(depth, abs=0.6)
    assert edge_centre_distance(0.5, 100) == pytest.approx(4 * 50 / (3 * np.pi))
    assert edge_centre_distance(0.0, 100) == 0.0 and edge_centre_distance(1.0, 100) == 50.0


def test_cut_cells_whose_centre_lies_at_the_edge_go():
    from cellprop.engine.pipeline import filter_cells

    labels = np.zeros((40, 60), np.uint16)
    labels[0:12, 20:30] = 1  # cut by the top edge, its centre on the edge's first row
    labels[0:12, 40:50] = 2  # cut by the top edge, its centre 8 rows in
    labels[25:40, 50:60] = 3  # cut by the bottom and right edges, centre 3 columns from the right
    labels[10:20, 5:15] = 4  # inside, its centre 2 rows from nothing: not a cut cell
    centres = np.array([[0.0, 25.0], [8.0, 45.0], [33.0, 56.0], [15.0, 1.0]])

    def kept(**kwargs):
        out, rows = filter_cells(labels, centres, min_size=10, **kwargs)
        assert int(out.max()) == len(rows)
        return [int(labels[out == k][0]) for k in range(1, len(rows) + 1)]

    assert kept() == [1, 2, 3, 4]
    assert kept(edge_centre=1.0) == [2, 3, 4]
    assert kept(edge_centre=5.0) == [2, 4]  # the cell at the corner: 3 columns from an edge
    assert kept(edge_centre=9.0) == [4]
    # With both limits a cut cell goes where either says so.
    assert kept(edge_centre=1.0, edge_min=130) == [3, 4]  # 120 px and 150 px
    # How many cut cells the rule left out (a cut cell too small for min_size is not counted).
    report: dict = {}
    filter_cells(labels, centres, min_size=10, edge_centre=5.0, report=report)
    assert report == {"edge": 2, "large": 0, "small": 0}
    filter_cells(labels, centres, min_size=121, exclude_border=True, report=report)
    assert report == {"edge": 1, "large": 0, "small": 3}  # cell 3; the 120 px ones too small


def test_cells_over_the_largest_size_go_and_are_counted_apart_from_the_edge_rule(
    tiny_model, monkeypatch
):
    from cellprop.engine.pipeline import filter_cells, left_out_note, resolve_settings

    labels, centres = _four_cells()
    report: dict = {}
    out, rows = filter_cells(labels, centres, min_size=10, max_size=200, report=report)
    assert rows.tolist() == centres[:3].tolist() and report == {"edge": 0, "large": 1, "small": 0}
    np.testing.assert_array_equal(out, np.where(labels == 4, 0, labels))
    # a cut cell too large counts as too large, not as left out by the edge rule
    filter_cells(labels, centres, min_size=10, max_size=199, edge_min=100, report=report)
    assert report == {"edge": 1, "large": 2, "small": 0}
    _, rows = filter_cells(labels, centres, min_size=10, max_size=0)  # no limit
    assert len(rows) == 4
    said = left_out_note(
        {"edge_left_out": 1, "edge_fraction": 0.5, "large_left_out": 2, "max_size": 199}
    )
    assert said == (
        "; 1 cell cut by the image edge left out (showing under 50% of a cell)"
        "; 2 cells larger than the largest cell (199 px) left out"
    )
    assert left_out_note({"max_size": 199, "large_left_out": 0}) == ""
    # A smallest cell that leaves none of the cells found says so; one that leaves some, not.
    out, rows = filter_cells(labels, centres, min_size=10_000, report=report)
    assert len(rows) == 0 and report["small"] == 4
    gone = {"small_left_out": 4, "n_detected": 4, "min_size": 10_000}
    assert left_out_note(gone) == (
        "; all 4 cells found were smaller than the smallest cell (10000 px) and left out"
    )
    assert left_out_note({**gone, "small_left_out": 1, "n_detected": 1}) == (
        "; the 1 cell found was smaller than the smallest cell (10000 px) and left out"
    )
    assert left_out_note({**gone, "n_detected": 5}) == ""
    # None: the model's, which has none unless its model.json says so; scaled as the minimum
    assert resolve_settings(tiny_model, Settings())["max_size"] == 0
    assert resolve_settings(tiny_model, Settings(max_size=500))["max_size"] == 500
    monkeypatch.setitem(tiny_model.defaults, "max_size_px", 1000)  # the fixture is shared
    own = tiny_model.cell_diameter_px / tiny_model.scale
    assert resolve_settings(tiny_model, Settings(diameter=2 * own))["max_size"] == 4000
    with pytest.raises(ValueError, match="max size"):
        Settings(max_size=-1)
    with pytest.raises(ValueError, match=r"smallest cell \(500 px\) is larger than the largest"):
        Settings(min_size=500, max_size=100)


@pytest.mark.parametrize(
    "given",
    [
        {"smoothness": float("nan")},  # hung the graph cut
        {"smoothness": float("inf")},
        {"diameter": float("inf")},  # ZeroDivisionError
        {"diameter": 0.5},  # the image enlarged 88 times for the phase model
        {"diameter": float("nan")},
        {"pixel_size": 1e-300},  # its TIFF resolution could not be written
        {"pixel_size": float("inf")},
        {"pixel_size": float("nan")},
    ],
)
def test_settings_refuse_numbers_no_image_could_be_segmented_or_measured_with(given):
    with pytest.raises(ValueError, match="must be"):
        Settings(**given)


def test_a_pixel_size_out_of_range_is_said_as_the_range_not_as_not_positive():
    """1e-9 µm (a pixel size typed in metres, say): the message gives the range and the
    number as typed (it said "must be a positive number, got 1e-09")."""
    with pytest.raises(ValueError) as refused:
        Settings(pixel_size=1e-9)
    assert "between 0.000001 and 1000000 micrometres" in str(refused.value)
    assert "positive" not in str(refused.value) and "got 1e-09" in str(refused.value)


def test_the_edge_fraction_is_a_share_of_the_cell_size_in_use(tiny_model, monkeypatch):
    from cellprop.engine.pipeline import edge_min_size, resolve_settings

    own = tiny_model.cell_diameter_px / tiny_model.scale
    assert resolve_settings(tiny_model, Settings())["edge_min_size"] == 0  # none by default
    monkeypatch.setitem(tiny_model.defaults, "edge_fraction", 0.4)
    base = resolve_settings(tiny_model, Settings())
    assert base["edge_fraction"] == 0.4
    assert base["edge_min_size"] == edge_min_size(0.4, own) == round(0.4 * np.pi * own**2 / 4)
    # Cells twice as wide: fragments four times larger; a user's value wins, 0 keeps all.
    twice = resolve_settings(tiny_model, Settings(diameter=2 * own))
    assert twice["edge_min_size"] == pytest.approx(4 * base["edge_min_size"], abs=2)
    assert resolve_settings(tiny_model, Settings(edge_fraction=0.0))["edge_min_size"] == 0
    with pytest.raises(ValueError, match="edge fraction"):
        Settings(edge_fraction=1.5)
    assert base["edge_estimate"] == "area" and base["edge_centre_px"] == 0.0


def test_a_model_may_judge_cut_cells_by_their_centre(tiny_model, monkeypatch):
    from cellprop.engine.pipeline import edge_centre_distance, resolve_settings

    own = tiny_model.cell_diameter_px / tiny_model.scale
    monkeypatch.setitem(tiny_model.defaults, "edge_fraction", 0.35)
    monkeypatch.setitem(tiny_model.defaults, "edge_estimate", "centre")
    base = resolve_settings(tiny_model, Settings())
    assert base["edge_min_size"] == 0
    assert base["edge_centre_px"] == pytest.approx(edge_centre_distance(0.35, own))
    assert 0.3 * own / 2 < base["edge_centre_px"] < 0.4 * own / 2
    twice = resolve_settings(tiny_model, Settings(diameter=2 * own))
    assert twice["edge_centre_px"] == pytest.approx(2 * base["edge_centre_px"])
    assert resolve_settings(tiny_model, Settings(edge_fraction=0.0))["edge_centre_px"] == 0.0
    monkeypatch.setitem(tiny_model.defaults, "edge_estimate", "outline")
    with pytest.raises(ValueError, match="edge_estimate must be one of area, centre"):
        resolve_settings(tiny_model, Settings())


def test_the_models_edge_sigma_reaches_the_boundary_image(tiny_model, monkeypatch):
    import cellprop.engine.pipeline as pipeline
    from cellprop.engine.graphcut import GRADIENT_SIGMA

    assert "edge_sigma" not in tiny_model.defaults
    assert pipeline.resolve_settings(tiny_model, Settings())["edge_sigma"] == GRADIENT_SIGMA
    seen = []
    original = pipeline.boundary_image

    def spy(image, polarity, sigma):
        seen.append((polarity, sigma))
        return original(image, polarity, sigma)

    monkeypatch.setattr(pipeline, "boundary_image", spy)
    monkeypatch.setitem(tiny_model.defaults, "edge_sigma", 3.5)
    monkeypatch.setitem(tiny_model.defaults, "polarity", "gradient")
    seg = segment(textured((120, 90)), tiny_model, Settings(threshold=0.01))
    assert seen == [("gradient", 3.5)] and seg.settings["edge_sigma"] == 3.5


def test_progress_and_cancel(tiny_model):
    seen = []
    segment(
        textured((64, 64)),
        tiny_model,
        Settings(threshold=0.01),
        progress=lambda stage, f: seen.append(f),
    )
    assert seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(Cancelled):
        segment(textured((64, 64)), tiny_model, cancel=lambda: True)


def test_a_model_travels_to_another_process_as_it_is(tiny_model_dir):
    import pickle

    model = load_model(tiny_model_dir, device="cpu")
    model.defaults["graphcut_weight"] = 7.0  # changed after loading: the copy keeps it
    copy = pickle.loads(pickle.dumps(model))
    assert copy is not model and copy.defaults["graphcut_weight"] == 7.0
    assert copy.provider == "CPU" and copy.path == model.path
    image = textured((64, 64))
    a = segment(image, model, Settings(threshold=0.01))
    b = segment(image, copy, Settings(threshold=0.01))
    np.testing.assert_array_equal(a.labels, b.labels)


def test_a_batch_in_worker_processes_stops_when_cancelled(tiny_model, tmp_path):
    import cv2
    from cellprop.engine import process_batch

    paths = []
    for k in range(3):
        paths.append(tmp_path / f"img{k}.png")
        cv2.imwrite(str(paths[-1]), textured((64, 64)))
    out = tmp_path / "out"
    # Cancelled from the start: the workers are still starting when the flag is raised.
    result = process_batch(paths, out, tiny_model, workers=2, cancel=lambda: True)
    assert [r.status for r in result.results] == ["cancelled"] * 3
    assert sorted(p.name for p in out.iterdir()) == [
        "cells.csv",
        "images.csv",
        "run.json",
        "summary.csv",
    ]


def test_a_worker_that_dies_fails_its_image_and_the_batch_goes_on(
    tiny_model, tmp_path, monkeypatch
):
    import copy

    import cv2
    from cellprop.engine import process_batch

    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the workers import it too
    from worker_crash import CrashingModel

    model = copy.copy(tiny_model)
    model.__class__ = CrashingModel
    paths = []
    for k in range(6):
        paths.append(tmp_path / f"img{k}.png")
        wide = k == 2  # this one kills its worker
        cv2.imwrite(str(paths[-1]), textured((64, 320 if wide else 64)))
    out = tmp_path / "out"
    result = process_batch(paths, out, model, workers=2)
    statuses = [r.status for r in result.results]
    assert statuses == ["done", "done", "failed", "done", "done", "done"]
    assert "img2.png" in result.results[2].error and "stopped" in result.results[2].error
    written = sorted(p.name for p in out.glob("*_labels.tif"))
    assert written == [f"img{k}_labels.tif" for k in (0, 1, 3, 4, 5)]


def test_an_image_lost_with_its_pool_after_writing_files_is_done_on_its_second_try(
    tiny_model, tmp_path, monkeypatch
):
    """img0 has written its files when its pool goes (another image's worker died) before
    img0's result came back: its second try replaces its own files (it was "skipped", as if
    a user's files were in the way); files there before the run are still never replaced."""
    import cv2
    from cellprop.engine import parallel, process_batch, read_labels, read_table

    real, calls = parallel._pool_run, []

    def losing(todo, size, **kwargs):  # the first pool loses img0's and img2's results
        first = not calls
        calls.append(size)
        for i, res in real(todo, size, **kwargs):
            lost = first and res is not None and res.path.name in ("img0.png", "img2.png")
            yield i, None if lost else res

    monkeypatch.setattr(parallel, "_pool_run", losing)
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"img{k}.png")
        cv2.imwrite(str(paths[-1]), textured((64, 64)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "img2_overlay.png").write_bytes(b"a user's file")
    result = process_batch(paths, out, tiny_model, workers=2)
    assert [r.status for r in result.results] == ["done", "done", "skipped"]
    assert calls == [2, 1, 1]  # img0 and img2 tried again, each alone
    labels = read_labels(out / "img0_labels.tif")
    assert len(read_table(out / "img0_cells.csv")) == labels.max() == result.results[0].n_cells
    assert (out / "img2_overlay.png").read_bytes() == b"a user's file"


def test_auto_workers_follow_the_cores_and_the_memory(monkeypatch):
    from cellprop.engine import parallel

    def machine(cores, gigabytes, images=None):
        monkeypatch.setattr(parallel, "usable_cores", lambda: cores)
        pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": gigabytes * (1 << 30) // 4096}
        monkeypatch.setattr(parallel.os, "sysconf", pages.__getitem__, raising=False)
        return parallel.auto_workers(images)

    assert machine(2, 24) == 2  # this project's CI machine
    assert machine(16, 128) == 4  # at most four
    assert machine(16, 5) == 2  # one per 2 GB
    assert machine(1, 64) == 1
    assert machine(8, 1) == 1  # never none
    # A batch: at least two images per worker (a worker's start costs about one image).
    assert [machine(8, 64, images) for images in (0, 1, 3, 4, 7, 100)] == [1, 1, 1, 2, 3, 4]

    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(parallel.os, "sysconf", unknown, raising=False)
    assert parallel.auto_workers() == 4  # memory unknown: the cores decide (8 above)


def test_workers_must_be_a_count_or_auto(tiny_model, tmp_path):
    from cellprop.engine import process_batch

    for bad in ("many", 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            process_batch([], tmp_path / "out", tiny_model, workers=bad)
    assert not (tmp_path / "out").exists()


def test_settings_are_checked():
    for bad in ({"threshold": 1.5}, {"diameter": 0}, {"propagation": "fast"}, {"pixel_size": -1}):
        with pytest.raises(ValueError):
            Settings(**bad)


def test_model_folders_and_errors(tiny_model_dir, tmp_path, monkeypatch):
    model = load_model(tiny_model_dir, device="cpu")
    assert model.provider == "CPU" and model.device == "cpu" and model.stride == 8
    assert load_model(tiny_model_dir / "model.json").name == "tiny"
    with pytest.raises(ModelError, match="no such model"):
        load_model("no-such-model")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "guided.onnx").unlink()
    with pytest.raises(ModelError, match="guided.onnx is missing") as err:
        load_model(broken)
    assert str(broken) in str(err.value)
    odd = tmp_path / "odd"
    shutil.copytree(tiny_model_dir, odd)
    info = json.loads((odd / "model.json").read_text())
    info["defaults"]["edge_estimate"] = "outline"
    (odd / "model.json").write_text(json.dumps(info))
    with pytest.raises(
        ModelError, match="edge_estimate must be one of area, centre, got 'outline'"
    ):
        load_model(odd)
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot be read"):
        load_model(broken)
    with pytest.raises(ModelError, match="unknown device"):
        load_model(tiny_model_dir, device="tpu")
    # a training stopped before its export: said, with how to finish it (it said only
    # "not a model folder")
    stopped = tmp_path / "stopped"
    (stopped / "checkpoints").mkdir(parents=True)
    (stopped / "checkpoints" / "checkpoint.pt").write_bytes(b"PK")
    with pytest.raises(ModelError, match="a training that has not finished .* with --resume"):
        load_model(stopped)
    if "cuda" not in available_devices():
        with pytest.raises(ModelError, match="CUDA"):
            load_model(tiny_model_dir, device="cuda")
    # Extra model folders are found by name through CELLPROP_MODEL_PATH.
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(tiny_model_dir.parent))
    assert "tiny" in [m.name for m in list_models()]
    assert load_model("tiny").path == tiny_model_dir
    # A folder of that name where the command runs (the user's images: 'tiny/') does not
    # hide the model of that name ('not a model folder'); './tiny' names the folder.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    assert load_model("tiny").path == tiny_model_dir
    with pytest.raises(ModelError, match="model.json"):
        load_model("./tiny")


def test_devices_and_no_onnxruntime_noise(tiny_model_dir):
    assert available_devices()[0] == "cpu"
    code = (
        "from cellprop.engine import load_model, available_devices;"
        f"m = load_model({str(tiny_model_dir)!r}); print(m.provider, available_devices())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] in ("CPU", "CUDA")
    assert run.stderr == ""  # onnxruntime's CUDA-missing errors never reach the user


def test_the_cuda_probe_is_silent_when_threads_ask_at_once(monkeypatch):
    """The app asks for the devices on two threads at start (a model loads while the settings
    panel lists the devices). onnxruntime's logger is one setting for the process: a second
    probe turning it back up while the first still loads the CUDA libraries let their screen of
    errors through (seen 3 times in 12 starts). One probe, silenced throughout."""
    import threading
    import time

    from cellprop.engine import model as engine_model

    ort = engine_model._ort()
    levels = [engine_model._ORT_SEVERITY]
    seen = []  # the logger's level whenever the CUDA libraries fail to load

    class SlowCudaSession:
        def __init__(self, *args, **kwargs):
            time.sleep(0.2)  # loading the CUDA libraries
            seen.append(levels[-1])
            raise RuntimeError("libcublasLt.so.13: cannot open shared object file")

    monkeypatch.setattr(ort, "set_default_logger_severity", levels.append)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", SlowCudaSession)
    monkeypatch.setattr(engine_model, "_CUDA", [])
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(available_devices())) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [["cpu"]] * 3
    assert seen == [engine_model._ORT_SILENT]  # probed once, with the logger silenced
    assert levels[-1] == engine_model._ORT_SEVERITY  # and turned back to errors only


def test_the_cuda_probe_loads_pips_cuda_libraries_first_and_silently(monkeypatch, capfd):
    """`pip install cellprop[cuda]` puts CUDA and cuDNN in nvidia/ beside onnxruntime, off the
    system's library path: the CUDA provider finds them only once onnxruntime's preload_dlls
    has loaded them (seen on an H200 with the system's CUDA hidden from the loader: the CPU
    without it, CUDA with it). It prints each library it cannot find; the user sees none."""
    from cellprop.engine import model as engine_model

    ort = engine_model._ort()
    order = []

    def preload():
        order.append("preload")
        print("Failed to load libcublasLt.so.13: cannot open shared object file")
        print("Please follow https://onnxruntime.ai/docs/install/#cuda-and-cudnn", file=sys.stderr)

    class CudaSession:
        def __init__(self, *args, **kwargs):
            order.append("session")

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def run(self, outputs, feeds):
            return [engine_model._PROBE_ANSWER.reshape(feeds["x"].shape)]

    monkeypatch.setattr(ort, "preload_dlls", preload, raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", CudaSession)
    monkeypatch.setattr(engine_model, "_CUDA", [])
    assert available_devices() == ["cpu", "cuda"]
    assert order == ["preload", "session"]
    assert capfd.readouterr() == ("", "")
    # An onnxruntime without preload_dlls (before 1.21), or one whose preload fails, probes as
    # before.
    monkeypatch.delattr(ort, "preload_dlls")
    monkeypatch.setattr(engine_model, "_CUDA", [])
    assert available_devices() == ["cpu", "cuda"]

    def broken():
        raise RuntimeError("Invalid parameter of directory")

    monkeypatch.setattr(ort, "preload_dlls", broken, raising=False)
    monkeypatch.setattr(engine_model, "_CUDA", [])
    assert available_devices() == ["cpu", "cuda"]
    assert capfd.readouterr() == ("", "")


def test_the_cuda_probe_runs_a_convolution(monkeypatch):
    """CUDA without cuDNN initialises a session and runs an Identity, then fails at the first
    convolution, i.e. at the first image. The probe runs a convolution (its graph checked on
    the CPU here) and takes such a machine for a CPU one."""
    from cellprop.engine import model as engine_model

    ort = engine_model._ort()
    on_cpu = ort.InferenceSession(engine_model._PROBE_ONNX, providers=["CPUExecutionProvider"])
    out = on_cpu.run(None, {"x": np.ones((1, 1, 3, 3), np.float32)})[0]
    assert np.array_equal(out[0, 0], engine_model._PROBE_ANSWER)

    class NoCudnnSession:
        def __init__(self, *args, **kwargs):
            pass

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def run(self, outputs, feeds):
            raise RuntimeError("CUDNN failure 4: libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(ort, "preload_dlls", lambda: None, raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", NoCudnnSession)
    monkeypatch.setattr(engine_model, "_CUDA", [])
    assert available_devices() == ["cpu"]


def test_engine_runs_with_torch_unavailable(tiny_model_dir, tmp_path):
    """A segment run in a process where importing torch (or Qt) fails."""
    from cellprop.engine import write_labels

    image = tmp_path / "img.tif"
    write_labels(image, textured((80, 100)))  # any 16-bit TIFF will do as an input
    code = f"""
import sys
sys.modules['torch'] = None
sys.modules['PySide6'] = None
from cellprop.cli import main
rc = main(['segment', {str(image)!r}, '--out', {str(tmp_path / "out")!r},
           '--model', {str(tiny_model_dir)!r}, '--threshold', '0.01', '--quiet'])
assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]
sys.exit(rc)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "img_labels.tif").is_file()
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["done"] == 1 and summary["provider"] == "CPU"


def test_non_finite_pixels_do_not_break_segmentation(tiny_model):
    image = textured((64, 64)).astype(np.float32)
    image[10:20, 10:20] = np.nan
    image[30, 30] = np.inf
    seg = segment(image, tiny_model, Settings(threshold=0.01))
    assert np.isfinite(seg.likelihood).all() and seg.labels.shape == image.shape


def _cells(shape, boxes) -> np.ndarray:
    """Label image of boxes (row0, row1, col0, col1), numbered 1.. in order."""
    labels = np.zeros(shape, np.uint16)
    for k, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        labels[r0:r1, c0:c1] = k
    return labels


def _run(labels, centres):
    from cellprop.engine import Segmentation

    blank = np.zeros(labels.shape, np.float32)
    return Segmentation(labels, blank, blank, np.reshape(np.asarray(centres, float), (-1, 2)))


def test_a_correction_keeps_the_cells_it_does_not_reach_as_they_are():
    """Cell 2 removed (cell 1 takes back its pixels) and a cell clicked in at the right:
    where the labels are the method's own the outcome is the run from the new centres, to
    the pixel; where cells were edited since (a hole punched in cell 3, cell 4 drawn by hand
    where the method's own run gives nothing) those the edit does not reach keep their
    pixels and centres (a correction gave every cell the method's outline again)."""
    from cellprop.engine import keep_unreached

    shape = (40, 60)
    c1, c2, c3, c4, click = (5.0, 5.0), (15.0, 5.0), (5.0, 30.0), (47.0, 32.0), (55.0, 5.0)
    own = _cells(shape, [(0, 10, 0, 10), (0, 10, 10, 20), (25, 35, 0, 10)])
    corrected = _cells(shape, [(0, 10, 0, 18), (25, 35, 0, 10), (0, 10, 50, 60)])
    before, after = _run(own, [c1, c2, c3]), _run(corrected, [c1, c3, click])
    same = keep_unreached(own, [c1, c2, c3], [2], [c1, c3, click], before, after)
    np.testing.assert_array_equal(same.labels, corrected)
    np.testing.assert_array_equal(same.centres, after.centres)

    edited = own.copy()
    edited[28:30, 3:5] = 0  # a hole in cell 3
    edited[30:35, 45:50] = 4  # a cell drawn by hand, whose outline the method leaves empty
    got = keep_unreached(edited, [c1, c2, c3, c4], [2], [c1, c3, c4, click], before, after)
    expected = _cells(shape, [(0, 10, 0, 18), (25, 35, 0, 10), (30, 35, 45, 50), (0, 10, 50, 60)])
    expected[28:30, 3:5] = 0
    np.testing.assert_array_equal(got.labels, expected)
    np.testing.assert_array_equal(got.centres, [c1, c3, c4, click])
    assert got.labels.dtype == np.uint16

    # Cell 1's neighbour on the left (columns 0-4) was left out by an edge rule: a run from
    # the kept centres grows cell 1 into its place, before the edit and after it alike. The
    # edit (cell 2 removed) gives cell 1 cell 2's pixels, not the left-out cell's too.
    kept = _cells(shape, [(0, 10, 5, 10), (0, 10, 10, 20), (25, 35, 0, 10)])
    grown = _cells(shape, [(0, 10, 0, 10), (0, 10, 10, 20), (25, 35, 0, 10)])
    before = _run(grown, [c1, c2, c3])
    after = _run(_cells(shape, [(0, 10, 0, 20), (25, 35, 0, 10)]), [c1, c3])
    got = keep_unreached(kept, [c1, c2, c3], [2], [c1, c3], before, after)
    np.testing.assert_array_equal(got.labels, _cells(shape, [(0, 10, 5, 20), (25, 35, 0, 10)]))
