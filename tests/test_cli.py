"""`cellprop segment|models|gui|train`: outputs, bad files, no partial results, no clobbering."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from cellprop.engine import (
    TRACKS_CSV_COLUMNS,
    TrackSettings,
    auto_workers,
    read_labels,
    write_labels,
)
from cellprop.engine.features import MEASURES, rings
from cellprop.engine.output import masks_from_rois
from scipy import ndimage as ndi

from cellprop.cli import main

ROOT = Path(__file__).resolve().parents[1]


def textured(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (ndi.gaussian_filter(rng.random(shape), 3) * 255).astype(np.uint8)


@pytest.fixture()
def inputs(tmp_path):
    """Two good images and every kind of bad file, in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "good1.png"), textured((96, 128), 1))
    tifffile.imwrite(
        folder / "good2.tif",
        textured((80, 90), 2).astype(np.uint16) * 200,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"unit": "micron"},
    )
    tifffile.imwrite(folder / "trunc.tif", textured((200, 200), 3), compression="zlib")
    data = (folder / "trunc.tif").read_bytes()
    (folder / "trunc.tif").write_bytes(data[: len(data) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "wrong.tif").write_bytes((folder / "good1.png").read_bytes())
    tifffile.imwrite(
        folder / "stack.tif",
        np.stack([textured((40, 40), s) for s in range(3)]),
        imagej=True,
        metadata={"axes": "ZYX"},
    )
    tifffile.imwrite(folder / "huge.tif", shape=(20000, 20000), dtype=np.uint8)
    return folder


def segment(args, model_dir):
    return main(
        ["segment", *map(str, args), "--model", str(model_dir), "--threshold", "0.01", "--quiet"]
    )


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


BAD = ["trunc", "empty", "wrong", "stack", "huge"]


@pytest.mark.parametrize("workers", ["1", "3"])  # in this process; in three worker processes
def test_segment_folder_reports_bad_files_and_goes_on(
    inputs, tmp_path, tiny_model_dir, capsys, workers
):
    out = tmp_path / "out"
    args = [inputs, "--out", out, "--roi", "--workers", workers]
    assert segment(args, tiny_model_dir) == 1  # some failed
    err = capsys.readouterr().err
    for name, reason in [
        ("trunc.tif", "truncated"),
        ("empty.png", "empty"),
        ("wrong.tif", "PNG"),
        ("stack.tif", "3-D stack"),
        ("huge.tif", "Mpixel limit"),
    ]:
        assert any(name in ln and reason in ln for ln in err.splitlines()), (name, err)
    names = sorted(p.name for p in out.iterdir())
    for stem in ("good1", "good2"):
        for suffix in ("_labels.tif", "_overlay.png", "_cells.csv", "_rois.zip"):
            assert f"{stem}{suffix}" in names
    assert not [n for n in names if any(n.startswith(b) for b in BAD)]  # no partial outputs
    assert not [n for n in names if n.startswith(".")]  # no temporary files either
    summary = {row["Image"]: row for row in read_csv(out / "summary.csv")}
    assert summary["good1.png"]["Status"] == "done"
    assert all(summary[f]["Status"] == "failed" for f in summary if f.split(".")[0] in BAD)
    run = json.loads((out / "run.json").read_text())
    assert run["provider"] == "CPU" and run["done"] == 2 and run["failed"] == 5
    assert run["settings"]["threshold"] == 0.01 and run["model"]["name"] == "tiny"
    assert "versions" in run and run["resolved"]["scale"] == 0.5


def test_outputs_match_the_segmentation(inputs, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    assert segment([inputs / "good1.png", inputs / "good2.tif", "--out", out], tiny_model_dir) == 0
    labels = tifffile.imread(out / "good1_labels.tif")
    assert labels.shape == (96, 128)
    per_image = read_csv(out / "good1_cells.csv")
    assert len(per_image) == len(np.unique(labels)) - 1
    everything = read_csv(out / "cells.csv")
    assert next(csv.reader(open(out / "cells.csv")))[0] == "Image"
    assert len(everything) == len(per_image) + len(read_csv(out / "good2_cells.csv"))
    # one row per image: its count (summary.csv's), and means of its cells' measurements
    images = read_csv(out / "images.csv")
    summary = read_csv(out / "summary.csv")
    assert [(r["Image"], r["Count_Cells"]) for r in images] == [
        (r["Image"], r["Cells"]) for r in summary
    ]
    assert per_image  # the tiny model at threshold 0.01 finds some
    areas = [float(r["AreaShape_Area"]) for r in per_image]
    assert float(images[0]["Mean_Cells_AreaShape_Area"]) == pytest.approx(sum(areas) / len(areas))
    # good2.tif carries 0.5 um pixels in its metadata: sizes come in micrometres.
    header = next(csv.reader(open(out / "good2_cells.csv")))
    assert "AreaShape_Area_um2" in header and "AreaShape_Area" not in header
    assert header.index("Detection_Center_X") == header.index("AreaShape_Center_Y") + 1


def test_existing_results_are_never_overwritten_without_the_flag(
    inputs, tmp_path, tiny_model_dir, capsys
):
    out = tmp_path / "out"
    good = inputs / "good1.png"
    assert segment([good, "--out", out], tiny_model_dir) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "good1_cells.csv").write_text("edited by the user\n")
    assert segment([good, "--out", out], tiny_model_dir) == 2
    assert "more exist already; nothing was written" in capsys.readouterr().err
    assert (out / "good1_cells.csv").read_text() == "edited by the user\n"
    assert segment([good, "--out", out / "good1_cells.csv"], tiny_model_dir) == 2
    assert "is a file, not a folder for the results" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == set(before)
    assert segment([good, "--out", out, "--overwrite"], tiny_model_dir) == 0
    assert (out / "good1_cells.csv").read_text() != "edited by the user\n"


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_an_out_folder_that_links_to_nowhere_is_said_so(inputs, tmp_path, tiny_model_dir, capsys):
    """--out a link whose folder is not there (a disk not mounted): said so, before any
    work ("cannot write the results to ...: File exists", after loading the model)."""
    out = tmp_path / "results"
    out.symlink_to(tmp_path / "unmounted" / "results")
    assert segment([inputs / "good1.png", "--out", out], tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert (
        f"--out {out} is a link to {tmp_path / 'unmounted' / 'results'}, which does not exist"
        in err
    )
    assert not (tmp_path / "unmounted").exists()


def test_a_folder_without_images_given_among_others_is_said_so(
    inputs, tmp_path, tiny_model_dir, capsys
):
    """An empty folder, and one whose images are only in its sub-folders, given beside an
    image: each is named (passed over without a word), with -r for the second; the image
    is segmented."""
    empty, wells = tmp_path / "empty", tmp_path / "plate"
    empty.mkdir()
    (wells / "A01").mkdir(parents=True)
    shutil.copy(inputs / "good1.png", wells / "A01" / "img.png")
    out = tmp_path / "out"
    assert segment([inputs / "good1.png", empty, wells, "--out", out], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert f"no images found in {empty}, {wells} ({wells}: only in its sub-folders, add -r)" in err
    assert (out / "good1_labels.tif").is_file()


def test_a_folder_of_other_kinds_of_file_says_what_it_holds(tmp_path, tiny_model_dir, capsys):
    """A folder of GIFs and WebPs (kinds not read): "no images found" says what it holds and
    which kinds are read, where it only named the folder."""
    from PIL import Image

    folder = tmp_path / "movies"
    folder.mkdir()
    for name in ("a.gif", "b.gif", "c.webp"):
        Image.new("L", (40, 40)).save(folder / name)
    assert segment([folder, "--out", tmp_path / "out"], tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert (
        f"no images found in {folder} (it holds 2 .gif, 1 .webp files; the kinds read are .tif"
        in err
    )
    assert not (tmp_path / "out").exists()


def test_a_mask_of_ones_own_named_as_cellprops_labels_is_said_to_be_so(
    tmp_path, tiny_model_dir, capsys
):
    """A mask drawn by hand, img_labels.tif beside img.png, and results to be written into
    that folder: refused (as any existing file), saying that it is not one cellprop wrote
    (no table beside it, no run recorded there), so that --overwrite is not taken lightly;
    an image named my_overlay.png given by name is segmented (it was dropped: "no images")."""
    folder = tmp_path / "exp"
    folder.mkdir()
    cv2.imwrite(str(folder / "img.png"), textured((96, 128), 1))
    mask = np.zeros((96, 128), np.uint16)
    mask[10:40, 10:40] = 1
    tifffile.imwrite(folder / "img_labels.tif", mask)
    assert segment([folder, "--out", folder], tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert "img_labels.tif is not beside the table cellprop writes" in err
    assert "a file of your own" in err
    assert np.array_equal(tifffile.imread(folder / "img_labels.tif"), mask)
    # labels cellprop wrote (its table beside them, its run.json there): no such warning
    out = tmp_path / "out"
    assert segment([folder / "img.png", "--out", out], tiny_model_dir) == 0
    assert segment([folder / "img.png", "--out", out], tiny_model_dir) == 2
    assert "a file of your own" not in capsys.readouterr().err
    cv2.imwrite(str(folder / "my_overlay.png"), textured((96, 128), 2))
    assert segment([folder / "my_overlay.png", "--out", folder], tiny_model_dir) == 0
    assert (folder / "my_overlay_labels.tif").is_file()


def test_images_of_ones_own_named_as_results_are_segmented_with_out_their_own_folder(
    tmp_path, tiny_model_dir, capsys
):
    """--out the images' own folder, where no run is recorded: exp1_labels.tif and
    exp2_overlay.png, images of the user's own with no table beside them, are inputs (they
    were left out without a word: "1 image(s)"). Run again into it, its results are not."""
    folder = tmp_path / "exp"
    folder.mkdir()
    for k, name in enumerate(("a.png", "exp1_labels.tif", "exp2_overlay.png")):
        cv2.imwrite(str(folder / name), textured((96, 128), k))
    assert segment([folder, "--out", folder], tiny_model_dir) == 0
    assert "3/3 image(s) done" in capsys.readouterr().err
    assert (folder / "exp1_labels_labels.tif").is_file()
    assert (folder / "exp2_overlay_cells.csv").is_file()
    assert segment([folder, "--out", folder, "--resume"], tiny_model_dir) == 0
    assert "3/3 image(s) done" in capsys.readouterr().err


def test_points_in_micrometres_on_a_calibrated_image_are_said_to_be_so(tmp_path, capsys):
    """A Fiji table measured on a calibrated image (0.5 um pixels) gives micrometres: all on
    the image, so nothing refused them, and cells were outlined at the wrong places without
    a word; the image's line now asks whether they were saved in micrometres."""
    image = ROOT / "resources/samples/c2c12_0006_crop512.png"
    pixels = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    calibrated = tmp_path / "calibrated.tif"
    tifffile.imwrite(
        calibrated, pixels, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "micron"}
    )
    clicked = [(206.5, 34.5), (130.5, 50.5), (92.5, 68.5), (42.5, 150.5), (154.5, 226.5)]
    table = tmp_path / "um.csv"
    table.write_text(" ,X,Y\n" + "".join(f"{k},{x},{y}\n" for k, (x, y) in enumerate(clicked)))
    argv = ["segment", str(calibrated), "--points", str(table), "--out", str(tmp_path / "o")]
    assert main([*argv, "-q"]) == 0
    err = capsys.readouterr().err
    assert "all 5 points lie in its top left 256 x 256 pixels, as many pixels as the" in err
    pixel_table = tmp_path / "px.csv"  # the same points spread over the image: no such note
    pixel_table.write_text(table.read_text().replace("206.5,34.5", "480.5,500.5"))
    argv = ["segment", str(calibrated), "--points", str(pixel_table), "--out", str(tmp_path / "p")]
    assert main([*argv, "-q"]) == 0
    assert "as many pixels as the image is um" not in capsys.readouterr().err


def _three_images(tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"frame{k}.png"), textured((96, 128), 10 + k))
    return folder


def _stopped_run(folder, out, tiny_model_dir, after: int):
    """A run that the computer stopped after ``after`` images: Ctrl-C, as a kill would leave
    it (no end of run written)."""
    from cellprop.engine import Settings, load_model, process_batch

    seen = []

    def stop_after(result):
        seen.append(result)
        if len(seen) == after:
            raise KeyboardInterrupt

    paths = sorted(folder.iterdir())
    with pytest.raises(KeyboardInterrupt):
        process_batch(
            paths, out, load_model(tiny_model_dir), Settings(threshold=0.01), on_result=stop_after
        )


def test_a_stopped_run_goes_on_with_resume_and_ends_as_one_run(tmp_path, tiny_model_dir, capsys):
    folder = _three_images(tmp_path)
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert segment([folder, "--out", whole], tiny_model_dir) == 0
    _stopped_run(folder, out, tiny_model_dir, after=1)
    assert json.loads((out / "run.json").read_text())["state"] == "running"
    assert [r["Image"] for r in read_csv(out / "summary.csv")] == ["frame0.png"]
    assert not (out / "cells.csv").exists()
    first = (out / "frame0_labels.tif").stat().st_mtime_ns
    # Killed while writing frame1: one of its files and a temporary file are there.
    (out / "frame1_labels.tif").write_bytes(b"half written")
    (out / ".frame1_overlay.x1y2z3.png").write_bytes(b"")
    capsys.readouterr()

    assert segment([folder, "--out", out], tiny_model_dir) == 2  # not without --resume
    assert "--resume" in capsys.readouterr().err
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "kept    frame0.png" in err and "done    frame1.png" in err
    assert "(1 by the earlier run)" in err
    assert (out / "frame0_labels.tif").stat().st_mtime_ns == first  # not segmented again
    assert not (out / ".frame1_overlay.x1y2z3.png").exists()
    # The continued run's files are those of one run that never stopped.
    # (images.csv's means too: of the kept image's table as its file holds it, as the run's)
    for name in ["cells.csv", "images.csv", *(f"frame{k}_cells.csv" for k in range(3))]:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    np.testing.assert_array_equal(
        tifffile.imread(out / "frame1_labels.tif"), tifffile.imread(whole / "frame1_labels.tif")
    )
    rows = read_csv(out / "summary.csv")
    assert [(r["Image"], r["Status"]) for r in rows] == [
        (f"frame{k}.png", "done") for k in range(3)
    ]
    run = json.loads((out / "run.json").read_text())
    assert (run["state"], run["done"], run["kept"]) == ("finished", 3, 1)


def test_overwrite_leaves_no_files_of_the_replaced_run_that_are_not_this_runs(
    tmp_path, tiny_model_dir
):
    """A run replaced (--overwrite): an image that fails now keeps none of the earlier run's
    files (they looked like this run's results), and one segmented now without --roi keeps
    no ROI set of the earlier cells (Fiji measured cells that were no longer there); the
    images of the run not given again, and a user's own files, stay."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--roi"], tiny_model_dir) == 0
    assert (out / "frame0_rois.zip").is_file() and (out / "frame1_rois.zip").is_file()
    (out / "notes.txt").write_text("mine")
    (folder / "frame1.png").write_bytes((folder / "frame1.png").read_bytes()[:200])  # cut
    (folder / "frame2.png").unlink()  # not given again: its files stay (left over)
    assert segment([folder, "--out", out, "--overwrite"], tiny_model_dir) == 1
    assert {p.name for p in out.iterdir()} == {
        "frame0_labels.tif",
        "frame0_overlay.png",
        "frame0_cells.csv",
        "frame2_labels.tif",
        "frame2_overlay.png",
        "frame2_cells.csv",
        "frame2_rois.zip",
        "notes.txt",
        "cells.csv",
        "images.csv",
        "summary.csv",
        "run.json",
    }


def test_track_follows_each_slice_of_a_hyperstack_over_time_and_no_cell_through_slices(
    tmp_path, tiny_model_dir
):
    """--track --page all on a hyperstack of 2 time points of 2 slices follows each slice
    over the 2 time points (it followed 4 "time points" through the slices: distances and
    speeds from one slice to the next); a 3-D stack's slices are not followed at all."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    frames = [textured((64, 80), seed) for seed in range(4)]
    tifffile.imwrite(
        folder / "t2z2.tif",
        np.stack(frames).reshape(2, 2, 64, 80),
        imagej=True,
        metadata={"axes": "TZYX"},
    )
    tifffile.imwrite(
        folder / "zstack.tif", np.stack(frames[:3]), imagej=True, metadata={"axes": "ZYX"}
    )
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--page", "all", "--track"], tiny_model_dir) == 0
    rows = read_csv(out / "tracks.csv")
    assert {r["Sequence"] for r in rows} == {
        "t2z2.tif z0",
        "t2z2.tif z1",
        "zstack.tif z0",
        "zstack.tif z1",
        "zstack.tif z2",
    }
    assert all(int(r["Last_Frame"]) <= 1 for r in rows if r["Sequence"].startswith("t2z2"))
    assert any(int(r["Frames"]) == 2 for r in rows if r["Sequence"].startswith("t2z2"))
    assert all(int(r["Frames"]) == 1 for r in rows if r["Sequence"].startswith("zstack"))
    # page 2 of the hyperstack (t1 z0) follows page 0 (t0 z0), not page 1 (t0 z1)
    later = read_csv(out / "t2z2_p2c0_cells.csv")
    assert any(float(r["TrackObjects_Lifetime"]) == 2 for r in later)


def test_a_plate_run_continued_over_one_well_or_more_keeps_each_images_name(
    tmp_path, tiny_model_dir
):
    """Wells of one file name (A01/f.png, A02/f.png) are named after their wells; continued
    (--resume) over one well alone, or over more wells than at first, each image keeps the
    name the run gave it (named anew, it was segmented again and in the tables twice)."""
    plate = tmp_path / "plate"
    for k, well in enumerate(("A01", "A02")):
        (plate / well).mkdir(parents=True)
        cv2.imwrite(str(plate / well / "f.png"), textured((64, 80), k))
    out = tmp_path / "out"
    assert segment([plate, "--recursive", "--out", out], tiny_model_dir) == 0
    first = read_csv(out / "summary.csv")
    assert [r["Image"] for r in first] == ["A01_f.png", "A02_f.png"]
    cells = read_csv(out / "cells.csv")
    assert segment([plate / "A02", "--out", out, "--resume"], tiny_model_dir) == 0
    assert sorted(r["Image"] for r in read_csv(out / "summary.csv")) == ["A01_f.png", "A02_f.png"]
    assert len(read_csv(out / "cells.csv")) == len(cells)
    assert not (out / "f_labels.tif").exists()
    # the other way round: one well first, the plate continued
    again = tmp_path / "again"
    assert segment([plate / "A01", "--out", again], tiny_model_dir) == 0
    assert segment([plate, "--recursive", "--out", again, "--resume"], tiny_model_dir) == 0
    rows = read_csv(again / "summary.csv")
    assert sorted((r["Image"], Path(r["Path"]).parent.name) for r in rows) == [
        ("A02_f.png", "A02"),
        ("f.png", "A01"),
    ]


def test_names_made_apart_clash_no_more_and_a_finished_run_continues_as_it_was(
    tmp_path, tiny_model_dir
):
    """A01/f.png named A01_f.png beside a flat/A01_f.png: both named after their folders
    again, once and for all (named once more by the run, they were not the names said, and
    --resume of the finished run failed both as clashing with themselves)."""
    from cellprop.engine import batch_planes

    folder = tmp_path / "in"
    for k, where in enumerate(("A01/f.png", "A02/f.png", "flat/A01_f.png")):
        (folder / where).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / where), textured((64, 80), k))
    planes = batch_planes(sorted(folder.rglob("*.png")))
    names = sorted(p.name for p in planes)
    assert names == ["A01_A01_f.png", "A02_f.png", "flat_A01_f.png"]
    assert batch_planes(planes) == planes  # named again: the same names
    out = tmp_path / "out"
    assert segment([folder, "--recursive", "--out", out], tiny_model_dir) == 0
    assert sorted(r["Image"] for r in read_csv(out / "summary.csv")) == names
    assert (out / "A01_A01_f_labels.tif").is_file()
    assert segment([folder, "--recursive", "--out", out, "--resume"], tiny_model_dir) == 0
    rows = read_csv(out / "summary.csv")
    assert sorted((r["Image"], r["Status"]) for r in rows) == [(n, "done") for n in names]


def test_what_made_an_image_exported_into_a_run_is_kept_by_the_run_and_its_continuation(
    tmp_path, tiny_model_dir
):
    """An image of a run made again otherwise (another model, pixel size) and exported into
    its folder: run.json records what made it (``recount``'s ``made``), its results open so
    (``saved_results``), and a continued run keeps that record for the images it keeps."""
    from cellprop.engine import recount, saved_results

    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    _stopped_run(folder, out, tiny_model_dir, after=2)
    other = tmp_path / "other-model"
    other.mkdir()
    own = {"model": str(other), "settings": {"pixel_size": 0.5, "threshold": 0.3}}
    recount(out, {"frame1.png": (7, 30.0), "absent.png": (1, 1.0)}, {"frame1.png": own})
    assert json.loads((out / "run.json").read_text())["made"] == {"frame1.png": own}
    _, results, _ = saved_results(out)
    by_name = {r.name: r for r in results}
    assert by_name["frame1.png"].model == own["model"]
    assert by_name["frame1.png"].settings == own["settings"]
    assert by_name["frame0.png"].model is None  # the run's
    assert by_name["frame0.png"].settings["threshold"] == 0.01
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["state"] == "finished" and run["made"] == {"frame1.png": own}
    _, results, _ = saved_results(out)
    assert {r.name: r.model for r in results} == {
        "frame0.png": None,
        "frame1.png": own["model"],
        "frame2.png": None,
    }
    # continued with another pixel size, its cells measured again: recorded so
    assert segment([folder, "--out", out, "--resume", "--pixel-size", "0.25"], tiny_model_dir) == 0
    made = json.loads((out / "run.json").read_text())["made"]
    measured = {"pixel_size": 0.25, "neighbour_distance": 0, "ring_width": 0}
    assert made == {"frame1.png": {**own, "settings": {**own["settings"], **measured}}}
    # the model's folder moved since: the model of its name
    other.rmdir()
    _, results, _ = saved_results(out)
    assert {r.name: r.model for r in results}["frame1.png"] == "other-model"
    # made again as the run made it and exported there: no entry of its own
    run = json.loads((out / "run.json").read_text())
    as_run = {"model": run["model"]["name"], "settings": dict(run["settings"])}
    recount(out, {"frame1.png": (7, 30.0), "frame2.png": (3, 9.0)}, {"frame1.png": as_run})
    assert "made" not in json.loads((out / "run.json").read_text())
    recount(out, {"frame2.png": (3, 9.0)}, {"frame2.png": as_run})  # nothing to record
    assert "made" not in json.loads((out / "run.json").read_text())
    # replaced (--overwrite), the run's record is its own again
    recount(out, {"frame1.png": (7, 30.0)}, {"frame1.png": own})
    assert segment([folder, "--out", out, "--overwrite"], tiny_model_dir) == 0
    assert "made" not in json.loads((out / "run.json").read_text())


def test_resume_keeps_what_a_cancelled_run_did_and_refuses_other_settings(
    tmp_path, tiny_model_dir, capsys
):
    from cellprop.engine import Settings, load_model, process_batch

    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    asked = []
    result = process_batch(  # cancelled by the user after the first image: a finished run
        sorted(folder.iterdir()),
        out,
        load_model(tiny_model_dir),
        Settings(threshold=0.01),
        cancel=lambda: len(asked) > 0,
        on_result=asked.append,
    )
    assert [r.status for r in result.results] == ["done", "cancelled", "cancelled"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # Another threshold would mix two kinds of result in one folder: refused, nothing written.
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.02", "--resume", "-q"]) == 2
    err = capsys.readouterr().err
    assert "detection threshold: 0.01 there, 0.02 now" in err and str(out) in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # A folder without a run, and --resume with --overwrite, are refused too.
    assert main([*argv[:3], str(tmp_path / "none"), *argv[4:], "--resume", "-q"]) == 2
    assert "no earlier run to continue" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--resume", "--overwrite"])
    assert stop.value.code == 2

    # The kept image's table cut short (a disk that filled): segmented again, not taken over.
    table = (out / "frame0_cells.csv").read_bytes()
    (out / "frame0_cells.csv").write_bytes(table[: len(table) // 2])
    assert main([*argv, "--threshold", "0.01", "--resume", "--workers", "2", "-q"]) == 0
    assert "kept" not in capsys.readouterr().err
    assert all(r["Status"] == "done" for r in read_csv(out / "summary.csv"))
    assert (out / "frame0_cells.csv").read_bytes() == table

    # A model's default given by name continues a run made without it, and the other way
    # round (it was refused as other settings); another value still is.
    smooth = load_model(tiny_model_dir).defaults.get("graphcut_weight", 20.0)
    given = [*argv, "--threshold", "0.01", "--resume", "-q"]
    assert main([*given, "--smoothness", str(smooth)]) == 0
    assert main([*given, "--smoothness", str(smooth + 1)]) == 2
    assert f"smoothness: {smooth} there, {smooth + 1} now" in capsys.readouterr().err


def test_an_image_replaced_by_one_of_another_size_is_segmented_again_on_resume(
    tmp_path, tiny_model_dir, capsys
):
    """An input image replaced since the run by another of another size (a bad frame taken
    again): continuing the run segments it again, its results the new image's size (they
    were kept, 96 x 128 labels for an image of 80 x 90)."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    cv2.imwrite(str(folder / "frame1.png"), textured((80, 90), 7))
    capsys.readouterr()
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    assert tifffile.imread(out / "frame1_labels.tif").shape == (80, 90)
    assert tifffile.imread(out / "frame0_labels.tif").shape == (96, 128)  # kept as it was


def _edited_run(tmp_path, tiny_model_dir):
    """A finished run of three images, frame0's labels edited since (one cell taken out)."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    labels = tifffile.imread(out / "frame0_labels.tif")
    assert labels.max() >= 2
    labels[labels == 1] = 0
    return folder, out, labels


def test_resume_segments_again_an_image_whose_labels_data_is_damaged(
    tmp_path, tiny_model_dir, capsys
):
    """A finished image's label TIFF whose header reads but whose compressed data is damaged
    (a disk error, a copy cut short): segmented again like a labels file cut to nothing. It
    was a DeflateError traceback, and every later --resume ended so."""
    folder, out = _three_images(tmp_path), tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    labels = out / "frame1_labels.tif"
    with tifffile.TiffFile(labels) as tif:
        assert tif.pages[0].compression != 1  # (compressed: its data can be damaged)
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data = bytearray(labels.read_bytes())
    data[offset : offset + count] = bytes(range(256)) * (count // 256) + bytes(count % 256)
    labels.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="frame1_labels.tif: not a label image that can be"):
        read_labels(labels)
    capsys.readouterr()
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "kept    frame0.png" in err and "done    frame1.png" in err
    assert read_labels(labels).max() > 0


def test_resume_keeps_labels_edited_when_excel_saved_the_summary_again(
    tmp_path, tiny_model_dir, capsys
):
    """summary.csv saved again by Excel (its UTF-8 byte-order mark, a European Excel's
    semicolons and decimal commas): the run is continued as before, the labels edited since
    kept (it read no row, and segmented every image again, over them); one with no Image
    column is refused, nothing touched."""
    folder, out, edited = _edited_run(tmp_path, tiny_model_dir)
    tifffile.imwrite(out / "frame0_labels.tif", edited)
    rows = list(csv.reader(open(out / "summary.csv", newline="", encoding="utf-8")))
    numbers = [rows[0].index(c) for c in ("MeanArea_px", "Diameter_px", "Seconds")]
    for row in rows[1:]:
        for k in numbers:
            row[k] = row[k].replace(".", ",")
    with open(out / "summary.csv", "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\r\n").writerows(rows)
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("frame[12]_labels.tif")}
    capsys.readouterr()
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "kept    frame0.png" in err and "done    frame" not in err
    np.testing.assert_array_equal(tifffile.imread(out / "frame0_labels.tif") > 0, edited > 0)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("frame[12]_labels.tif")} == kept
    (out / "summary.csv").write_text("Bild;Status\nframe0.png;done\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*argv, "--threshold", "0.01", "--resume", "-q"]) == 2
    assert "no Image and Status columns" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_mended_time_point_followed_otherwise_is_settled_but_for_its_mends(tmp_path, capsys):
    """Nucleus A outlined as two at t2 only (a piece split off for one time point, which the
    run settles as no division), nucleus B at t2 said by hand to have come in: continued
    with another --max-move, the mend stays and A's piece is still no division (the time
    point's other cells, linked anew, were never settled: A's track ended in a division)."""
    nuclei = ROOT / "resources" / "models" / "nuclei"
    if not (nuclei / "model.json").is_file():
        pytest.skip("the shipped nuclei model is not there")
    folder = tmp_path / "P"
    folder.mkdir()
    yy, xx = np.mgrid[:240, :280]
    points = ["image,x,y"]
    for t in range(5):
        a, b = (70 + 2 * t, 120, 30), (200, 120 - 2 * t, 26)
        plane = np.full((240, 280), 10.0)
        for x, y, r in (a, b):
            plane += 180 / (1 + np.exp((np.hypot(xx - x, yy - y) - r) / 1.5))
        plane += np.random.default_rng(t).normal(0, 3, plane.shape)
        tifffile.imwrite(folder / f"t{t}.tif", np.clip(plane, 0, 255).astype(np.uint8))
        halves = [a[0] - 14, a[0] + 14] if t == 2 else [a[0]]
        points += [f"t{t}.tif,{x},120" for x in halves] + [f"t{t}.tif,{b[0]},{b[1]}"]
    (tmp_path / "points.csv").write_text("\n".join(points) + "\n")
    argv = [
        "segment",
        str(folder),
        "--model",
        str(nuclei),
        "--points",
        str(tmp_path / "points.csv"),
    ]
    runs = {}
    for name, more in (("same", []), ("otherwise", ["--max-move", "0.6"])):
        out = tmp_path / name
        assert main([*argv, "--track", "--out", str(out), "-q"]) == 0
        table = out / "t2_cells.csv"
        rows = list(csv.reader(open(table, newline="")))
        parent = rows[0].index("TrackObjects_ParentObjectNumber")
        gap = rows[0].index("TrackObjects_GapLength")
        rows[3][parent], rows[3][gap] = "0", "-1"  # B (cell 3) came in, says the user
        with open(table, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        assert main([*argv, "--track", "--resume", "--out", str(out), "-q", *more]) == 0
        runs[name] = read_csv(out / "tracks.csv")
    assert [r["Parent"] for r in runs["otherwise"]] == ["0"] * len(runs["otherwise"])
    assert len(runs["otherwise"]) == len(runs["same"])
    row = read_csv(tmp_path / "otherwise" / "t2_cells.csv")[2]
    assert (row["TrackObjects_ParentObjectNumber"], row["TrackObjects_GapLength"]) == ("0", "-1")


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_folders_of_links_are_the_folders_given(tmp_path, tiny_model_dir, capsys):
    """Time points given as links into a store of files each in a folder of its own (git-
    annex, DataLad), and two positions' folders of links into one store: grouped and named
    by the folders given (each link was its own time-lapse, named after the store's folders,
    and the two positions' images clashed)."""
    store = tmp_path / "annex"
    lapse, positions = tmp_path / "lapse", [tmp_path / "pos1", tmp_path / "pos2"]
    for folder in (lapse, *positions):
        folder.mkdir()
    for t in range(3):
        kept = store / f"obj{t}" / f"SHA{t}.png"
        kept.parent.mkdir(parents=True)
        cv2.imwrite(str(kept), textured((96, 128), 60 + t))
        (lapse / f"t{t}.png").symlink_to(kept)
        for p, position in enumerate(positions):  # each position's own files, in one store
            own = store / "positions" / f"SHA{p}{t}.png"
            own.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(own), textured((96, 128), 70 + 3 * p + t))
            (position / f"t{t}.png").symlink_to(own)
    out = tmp_path / "out"
    argv = ["segment", str(lapse), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--track", "-q"]) == 0
    assert {r["Sequence"] for r in read_csv(out / "tracks.csv")} == {"lapse"}
    argv = ["segment", *map(str, positions), "--out", str(tmp_path / "out2")]
    assert main([*argv, "--model", str(tiny_model_dir), "--threshold", "0.01", "-q"]) == 0
    assert sorted(r["Image"] for r in read_csv(tmp_path / "out2" / "summary.csv")) == [
        f"pos{p}_t{t}.png" for p in (1, 2) for t in range(3)
    ]


def test_a_blank_image_is_said_to_be_blank(tmp_path, tiny_model_dir, capsys):
    """An image of one value everywhere (a shutter closed, an empty export) or of no number
    at all: "0 cells" says why (it said nothing)."""
    folder = tmp_path / "blank"
    folder.mkdir()
    tifffile.imwrite(folder / "grey.tif", np.full((64, 64), 7, np.uint16))
    tifffile.imwrite(folder / "nan.tif", np.full((64, 64), np.nan, np.float32))
    cv2.imwrite(str(folder / "cells.png"), textured((96, 128), 3))
    argv = ["segment", str(folder), "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "grey.tif (64 x 64, uint16): 0 cells" in err and "a blank image (every pixel 7)" in err
    assert "a blank image (no pixel a number)" in err
    assert err.count("a blank image") == 2


def test_a_run_continued_with_other_points_says_so_in_words(tmp_path, tiny_model_dir, capsys):
    """A run made at the cell centres of a points file, continued with that file changed:
    refused, saying the centres differ (it showed two fingerprints, 25d4ee44... there,
    5d8dc2ab... now)."""
    folder = _three_images(tmp_path)
    points = tmp_path / "points.csv"
    points.write_text("image,x,y\n" + "".join(f"frame{k}.png,40,40\n" for k in range(3)))
    out = tmp_path / "out"
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--points", str(points), "-q"]) in (0, 1)
    points.write_text("image,x,y\n" + "".join(f"frame{k}.png,50,40\n" for k in range(3)))
    capsys.readouterr()
    assert main([*argv, "--points", str(points), "--resume", "-q"]) == 2
    err = capsys.readouterr().err
    assert "points file (its contents): other cell centres than the run's" in err
    assert not re.search(r"[0-9a-f]{16}", err)


def test_rows_taken_out_of_a_cell_table_are_said_to_come_back(tmp_path, tiny_model_dir, capsys):
    """Debris rows deleted from IMG_cells.csv in a spreadsheet (the labels as the run wrote
    them): the continued run makes the table again from the labels, every cell in them, and
    says so and how to take cells out (it said the labels had changed)."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    lines = (out / "frame0_cells.csv").read_text().splitlines()
    (out / "frame0_cells.csv").write_text("\n".join(lines[:-2]) + "\n")
    capsys.readouterr()
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "its table has other rows than its labels' cells since the earlier run" in err
    assert "set them to 0 in frame0_labels.tif" in err
    assert len((out / "frame0_cells.csv").read_text().splitlines()) == len(lines)


@pytest.mark.parametrize("saved", ["float32", "int32", "stacked"])
def test_resume_keeps_labels_saved_again_as_float_or_signed(
    tmp_path, tiny_model_dir, capsys, saved
):
    """Labels edited and saved as Fiji's 32-bit (float), another program's signed integers,
    or with an axis of one: kept and measured again (they were taken for damage and
    segmented over); labels with fractions fail that image by name, the file untouched."""
    folder, out, edited = _edited_run(tmp_path, tiny_model_dir)
    as_saved = {
        "float32": edited.astype(np.float32),
        "int32": edited.astype(np.int32),
        "stacked": edited[None],
    }[saved]
    tifffile.imwrite(out / "frame0_labels.tif", as_saved)
    capsys.readouterr()
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "kept    frame0.png" in err and "its files changed since the earlier run" in err
    table = read_csv(out / "frame0_cells.csv")
    assert len(table) == len(np.unique(edited)) - 1
    if saved != "float32":
        return
    fractions = edited.astype(np.float32) * 0.5
    tifffile.imwrite(out / "frame0_labels.tif", fractions)
    before = (out / "frame0_labels.tif").read_bytes()
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "32-bit float, with fractions): not segmented over" in err
    assert "delete it to segment the image again" in err
    assert (out / "frame0_labels.tif").read_bytes() == before
    assert [r["Status"] for r in read_csv(out / "summary.csv")] == ["failed", "done", "done"]


def test_resume_keeps_an_image_moved_away_since_in_its_tables(tmp_path, tiny_model_dir, capsys):
    """An image the run finished, moved away since and not given again: its cells stay in
    the run's tables, as its files stay in the folder (it failed, "no such file", its cells
    gone from cells.csv)."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    cells = read_csv(out / "cells.csv")
    (folder / "frame0.png").rename(tmp_path / "frame0.png")
    capsys.readouterr()
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    assert [r["Status"] for r in read_csv(out / "summary.csv")] == ["done"] * 3
    by_image = lambda rows: sorted(rows, key=lambda r: r["Image"])  # noqa: E731 (after the others)
    assert by_image(read_csv(out / "cells.csv")) == by_image(cells)


def test_resume_with_another_folders_images_of_the_same_names_is_refused(
    tmp_path, tiny_model_dir, capsys
):
    """--resume given day 2's images into the folder of day 1's run (the same file names):
    refused before anything is written, naming both files (day 1's outlines, corrected by
    hand, were kept and measured on day 2's pixels, and the others replaced as "changed
    since", exit 0). The run's images moved to another folder since continue it."""
    day1 = _three_images(tmp_path)
    day2 = tmp_path / "day2"
    day2.mkdir()
    for k in range(3):
        cv2.imwrite(str(day2 / f"frame{k}.png"), textured((96, 128), 50 + k))
    out = tmp_path / "out"
    assert segment([day1, "--out", out], tiny_model_dir) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert segment([day2, "--out", out, "--resume"], tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert "its results are of other images of these names" in err
    assert str(day1 / "frame0.png") in err and str(day2 / "frame0.png") in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    moved = tmp_path / "archive"
    day1.rename(moved)
    assert segment([moved, "--out", out, "--resume"], tiny_model_dir) == 0
    assert "other images" not in capsys.readouterr().err
    assert all(r["Status"] == "done" for r in read_csv(out / "summary.csv"))


def test_a_batch_never_writes_its_results_over_one_of_its_images(tmp_path, tiny_model_dir):
    """Results saved into the images' own folder, which holds the user's mask
    ``frame0_labels.tif`` opened as an image beside ``frame0.png`` (the window opens every
    image of a folder dropped on it), the earlier results replaced: frame0 fails, naming that
    image, which keeps its pixels (it was segmented, then written over with frame0's
    labels); the other images are segmented."""
    from cellprop.engine import Settings, load_model, process_batch

    folder = _three_images(tmp_path)
    mask = folder / "frame0_labels.tif"
    write_labels(mask, (textured((96, 128), 7) > 128).astype(np.uint16))
    before = mask.read_bytes()
    model = load_model(tiny_model_dir)

    def into(out):
        inputs = sorted(folder.iterdir())
        return process_batch(inputs, out, model, Settings(threshold=0.01), overwrite=True)

    result = into(folder)
    status = {r.name: (r.status, r.error or "") for r in result.results}
    assert status["frame0.png"][0] == "failed"
    assert f"written over {mask}, an image of this batch" in status["frame0.png"][1]
    assert [status[n][0] for n in ("frame0_labels.tif", "frame1.png", "frame2.png")] == ["done"] * 3
    assert mask.read_bytes() == before
    # nor through a link to the images' folder (its paths compared as spelled: replaced)
    link = tmp_path / "results"
    link.symlink_to(folder)
    assert {r.name: r.status for r in into(link).results}["frame0.png"] == "failed"
    assert mask.read_bytes() == before


def test_a_result_folder_removed_while_the_run_writes_is_not_said_to_keep_results(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    """The result folder deleted while the run wrote to it (after the first image): the run
    stops saying so, and does not say that the images done keep their results and that
    --resume goes on (they were gone, and --resume found no run)."""
    import cellprop.engine.batch as batch

    folder, out = _three_images(tmp_path), tmp_path / "out"
    real, written = batch.write_table, []

    def removed_after_the_first(path, *args, **kwargs):
        if written:
            shutil.rmtree(out)
        written.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "write_table", removed_after_the_first)
    assert segment([folder, "--out", out, "--workers", "1"], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "the result folder was removed or emptied while the run wrote to it" in err
    assert "keep their results" not in err and "--resume goes on" not in err


def _many_images(tmp_path, n=24):
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(n):
        cv2.imwrite(str(folder / f"f{k:02d}.png"), textured((192, 256), 40 + k))
    return folder


def _wait_for(condition, seconds=60.0):
    import time

    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "waited too long"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path, tiny_model_dir):
    """kill (a cluster's scheduler at the end of a job's time) stops a batch as Ctrl-C does:
    no half-written files, the finished images' results kept, and a line saying how to go
    on (exit 130); it died without a word."""
    import signal

    folder, out = _many_images(tmp_path), tmp_path / "out"
    code = "import sys; from cellprop.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    run = subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--threshold", "0.01", "--workers", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    summary = out / "summary.csv"
    _wait_for(lambda: summary.is_file() and len(summary.read_text().splitlines()) >= 3)
    run.send_signal(signal.SIGTERM)
    err = run.communicate(timeout=120)[1]
    assert run.returncode == 130, err
    assert "interrupted; finished images keep their results" in err and "--resume" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert main([*argv, "--threshold", "0.01", "--resume", "-q"]) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_worker_processes_end_with_a_batch_killed_outright(tmp_path, tiny_model_dir):
    """The process running a batch killed outright (kill -9, the out-of-memory killer): its
    worker processes end too (they finished their image, then waited for ever, holding their
    memory)."""
    import os
    import signal

    folder, out = _many_images(tmp_path), tmp_path / "out"
    code = "import sys; from cellprop.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    run = subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--threshold", "0.01", "--workers", "2", "-q"],
        stderr=subprocess.DEVNULL,
    )

    def workers() -> list[int]:
        found = []
        for pid in Path(f"/proc/{run.pid}/task").glob("*/children"):
            found += [int(p) for p in pid.read_text().split()]
        return [
            p
            for p in found
            if "resource_tracker"
            not in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        ]

    summary = out / "summary.csv"
    _wait_for(lambda: summary.is_file() and len(summary.read_text().splitlines()) >= 3)
    started = workers()
    assert len(started) == 2
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    def gone(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    _wait_for(lambda: all(gone(p) for p in started), seconds=30)


@pytest.mark.skipif(sys.platform == "win32", reason="no folder lock on Windows")
def test_a_second_run_into_a_folder_another_run_writes_is_refused(tmp_path, tiny_model_dir, capsys):
    """Two runs writing into one folder at once (a continued run started twice, the window
    and a terminal): the second is refused while the first runs, saying so, nothing written
    (both segmented the same images, and two settings mixed their tables); once it ends,
    the folder is free."""
    folder, out = _many_images(tmp_path), tmp_path / "out"
    code = "import sys; from cellprop.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    run = subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--threshold", "0.01", "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    summary = out / "summary.csv"
    try:
        _wait_for(lambda: summary.is_file() and len(summary.read_text().splitlines()) >= 2)
        capsys.readouterr()
        assert main([*argv, "--threshold", "0.01", "--resume", "-q"]) == 2
        err = capsys.readouterr().err
        assert "another cellprop run is writing its results into this folder now" in err
        assert run.poll() is None  # (the first still running: the refusal was the lock's)
    finally:
        err = run.communicate(timeout=300)[1]
    assert run.returncode == 0, err
    assert main([*argv, "--threshold", "0.01", "--resume", "-q"]) == 0


def test_a_calibrated_run_followed_afterwards_is_followed_as_from_the_start(
    tmp_path, phase_model_dir
):
    """A run given a pixel size, its cells followed afterwards (--resume --track): tracks.csv
    and the tables come out as from a run that followed them from the start, distances in
    um (they came out in pixels: the kept tables' calibration was not read back)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        shutil.copy(ROOT / f"resources/samples/c2c12-timelapse/t00{t}.png", folder)
    base = ["segment", str(folder), "--model", str(phase_model_dir), "--pixel-size", "0.65", "-q"]
    assert main([*base, "--out", str(tmp_path / "whole"), "--track"]) == 0
    assert main([*base, "--out", str(tmp_path / "later")]) == 0
    assert main([*base, "--out", str(tmp_path / "later"), "--resume", "--track"]) == 0
    for name in ("tracks.csv", "t002_cells.csv"):  # (to the digits of the tables read back)
        made, later = read_csv(tmp_path / "whole" / name), read_csv(tmp_path / "later" / name)
        assert list(later[0]) == list(made[0]), name
        for a, b in zip(later, made, strict=True):
            for key, value in b.items():
                try:
                    assert float(a[key]) == pytest.approx(float(value), rel=1e-7, abs=1e-6), key
                except ValueError:
                    assert a[key] == value, key
    assert "_um" in (tmp_path / "whole" / "tracks.csv").read_text().splitlines()[0]


def test_a_run_stopped_while_measuring_anew_is_continued_in_one_unit(
    tmp_path, tiny_model_dir, monkeypatch
):
    """A run continued with a pixel size (its kept images measured anew in um) stopped
    half-way, then continued as it was made (no pixel size): every table in pixels again (the
    images measured in um before the stop kept their um tables: cells.csv mixed units)."""
    from cellprop.engine import Settings, load_model, process_batch

    folder, out = _three_images(tmp_path), tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    from cellprop.engine import batch

    written = []
    real = batch.write_table

    def stop_at_the_second(path, *args, **kwargs):  # Ctrl-C while tables are measured anew
        if written:
            raise KeyboardInterrupt
        written.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "write_table", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        process_batch(
            sorted(folder.iterdir()),
            out,
            load_model(tiny_model_dir),
            Settings(threshold=0.01, pixel_size=0.65),
            resume=True,
        )
    monkeypatch.setattr(batch, "write_table", real)
    assert "AreaShape_Area_um2" in read_csv(out / "frame0_cells.csv")[0]
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    for name in ("frame0_cells.csv", "frame1_cells.csv", "cells.csv"):
        header = read_csv(out / name)[0]
        assert "AreaShape_Area" in header and "AreaShape_Area_um2" not in header, name


def test_a_run_replacing_another_over_fewer_images_says_whose_files_stay(
    tmp_path, tiny_model_dir, capsys
):
    """--overwrite of a run of three images by a run of one: the other two images' files
    stay in the folder (never deleted unasked), and the run says so, by name (it said
    nothing, and they lay beside the new results, in none of its tables)."""
    folder, out = _three_images(tmp_path), tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    capsys.readouterr()
    assert segment([folder / "frame0.png", "--out", out, "--overwrite"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "the files of 2 image(s) the replaced run finished stay in" in err
    assert "frame1.png, frame2.png" in err
    assert (out / "frame1_labels.tif").is_file()
    assert [r["Image"] for r in read_csv(out / "cells.csv")][-1] == "frame0.png"


def test_a_result_folder_removed_while_the_run_writes_stops_it(tmp_path, tiny_model_dir):
    """The result folder deleted while a run writes to it: the run stops, saying so (it was
    silently made again and the run ended "done", its tables listing files that were gone)."""
    import shutil

    from cellprop.engine import Settings, load_model, process_batch

    folder, out = _three_images(tmp_path), tmp_path / "out"
    with pytest.raises(OSError, match="removed or emptied while the run wrote to it"):
        process_batch(
            sorted(folder.iterdir()),
            out,
            load_model(tiny_model_dir),
            Settings(threshold=0.01),
            on_result=lambda r: shutil.rmtree(out),
        )


def test_long_file_names_are_segmented_or_refused_before_segmenting(
    tmp_path, tiny_model_dir, capsys
):
    """A 244-byte file name: its results' names fit, and so do the temporary files they are
    written through (they did not: "File name too long"); one whose results' names would
    not fit is refused by name before it is segmented, and the batch goes on."""
    folder = tmp_path / "in"
    folder.mkdir()
    fits, too_long = "x" * 240 + ".png", "y" * 246 + ".png"
    for name in (fits, too_long):
        cv2.imwrite(str(folder / name), textured((96, 128), 3))
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--roi"], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "its results' names would be too long for a file name" in err and "y" * 40 in err
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("x")) == [
        "x" * 240 + suffix for suffix in ("_cells.csv", "_labels.tif", "_overlay.png", "_rois.zip")
    ]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_image_replaced_by_another_of_its_size_is_segmented_again_on_resume(
    tmp_path, tiny_model_dir, capsys
):
    """An input image replaced since the run by another of the same size (the wrong
    field saved under its name, then the right one): summary.csv keeps a fingerprint of the
    pixels each image was segmented from, and continuing the run segments that image again,
    saying why; the others are kept. A run recorded before fingerprints keeps its images."""
    from cellprop.engine.io import pixels_digest

    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    rows = {r["Image"]: r for r in read_csv(out / "summary.csv")}
    assert rows["frame1.png"]["Digest"] == pixels_digest(cv2.imread(str(folder / "frame1.png"), 0))
    kept = (out / "frame0_labels.tif").stat().st_mtime_ns
    other = textured((96, 128), 99)
    cv2.imwrite(str(folder / "frame1.png"), other)
    assert segment([folder, "--out", out], tiny_model_dir) == 2  # (not continued: refused)
    capsys.readouterr()
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "frame1.png" in err and "its image changed since the earlier run (other pixels" in err
    assert "frame0.png" not in err.split("its image changed")[0].splitlines()[-1]
    rows = {r["Image"]: r for r in read_csv(out / "summary.csv")}
    assert rows["frame1.png"]["Digest"] == pixels_digest(other)
    assert (out / "frame0_labels.tif").stat().st_mtime_ns == kept  # not written again
    assert rows["frame0.png"]["Digest"] == pixels_digest(cv2.imread(str(folder / "frame0.png"), 0))

    # summary.csv of a run before fingerprints (no Digest column, nor Note): its images are kept.
    with open(out / "summary.csv", newline="") as fh:
        old = [row[:-2] for row in csv.reader(fh)]
    assert old[0][-1] == "Error"
    with open(out / "summary.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(old)
    cv2.imwrite(str(folder / "frame2.png"), textured((96, 128), 98))
    again = (out / "frame2_labels.tif").stat().st_mtime_ns
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 0
    assert "changed since" not in capsys.readouterr().err
    assert (out / "frame2_labels.tif").stat().st_mtime_ns == again


def test_labels_edited_since_the_run_are_kept_and_measured_again_on_resume(
    tmp_path, phase_model_dir, capsys
):
    """Cells taken out of a run's label image in Fiji (saved over it): continuing the run
    keeps those labels (numbered 1..n again) and measures the cells again from them, never
    segmenting over them; an image whose labels are the run's own but whose overlay is gone
    is segmented again, as before."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in (0, 1):
        shutil.copy(ROOT / f"resources/samples/c2c12-timelapse/t00{t}.png", folder)
    out = tmp_path / "out"
    args = ["segment", str(folder), "--model", str(phase_model_dir), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    made = tifffile.imread(out / "t001_labels.tif")
    n = int(made.max())
    edited = made.copy()
    edited[edited == 3] = 0  # cell 3 was no cell, and cell 7 is two
    split = np.argwhere(edited == 7)
    edited[tuple(split[split[:, 1] > np.median(split[:, 1])].T)] = 65000
    tifffile.imwrite(out / "t001_labels.tif", edited)  # as Fiji saves a 16-bit label image
    (out / "t000_overlay.png").unlink()
    from cellprop.engine import saved_results

    _, results, problems = saved_results(out)  # Open results: left out, saying what to do
    assert [r.name for r in results] == [] and len(problems) == 2
    assert "t001.png: its results cannot be read" in problems[1]
    assert "continuing the run (--resume, or Continue in the window)" in problems[1]
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "done    t000.png" in err and (out / "t000_overlay.png").is_file()
    assert f"kept    t001.png: {n} cells (its files changed since the earlier run" in err
    now = tifffile.imread(out / "t001_labels.tif")
    assert now.max() == n and len(np.unique(now)) == n + 1  # one out, one more: 1..n again
    np.testing.assert_array_equal(now > 0, edited > 0)  # every pixel as the user left it
    for old in np.unique(edited)[1:]:
        assert len(np.unique(now[edited == old])) == 1  # each cell one cell
    cells = read_csv(out / "t001_cells.csv")
    assert len(cells) == n and [int(c["ObjectNumber"]) for c in cells] == list(range(1, n + 1))
    area = {int(c["ObjectNumber"]): float(c["AreaShape_Area"]) for c in cells}
    assert all(area[k] == (now == k).sum() for k in (1, n))
    summary = {r["Image"]: r for r in read_csv(out / "summary.csv")}
    assert summary["t001.png"]["Cells"] == str(n)
    assert sum(r["Image"] == "t001.png" for r in read_csv(out / "cells.csv")) == n


def test_cells_taken_out_or_redrawn_in_the_labels_are_measured_again_on_resume(
    tmp_path, phase_model_dir, capsys
):
    """Cells set to 0 in a run's label image (Fiji's way of taking them out: the largest
    number stays) and a boundary moved between two cells (as many cells, as large on
    average): continuing the run measures them again from those labels, where it kept
    the run's table of the cells no longer there (and of their old areas); a run whose
    summary.csv was taken away is not continued over its labels, it says why."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in (0, 1):
        shutil.copy(ROOT / f"resources/samples/c2c12-timelapse/t00{t}.png", folder)
    out = tmp_path / "out"
    args = ["segment", str(folder), "--model", str(phase_model_dir), "--out", str(out), "-q"]
    assert main(args) == 0
    first, second = (tifffile.imread(out / f"t00{t}_labels.tif") for t in (0, 1))
    n = int(first.max())
    taken = np.where(np.isin(first, [2, 5]), 0, first).astype(first.dtype)
    tifffile.imwrite(out / "t000_labels.tif", taken)
    moved = second.copy()  # the pixels of a cell that touch its neighbour given to that one
    grown = ndi.grey_dilation(second, size=3)
    a = int(second[(second > 0) & (grown != second) & (grown > 0)][0])
    b = int(np.max(np.where(ndi.binary_dilation(second == a) & (second != a), second, 0)))
    near = ndi.binary_dilation(second == b) & (second == a)
    assert b and near.any()
    moved[near] = b
    tifffile.imwrite(out / "t001_labels.tif", moved)
    capsys.readouterr()
    assert main([*args[:-1], "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"kept    t000.png: {n - 2} cells (its files changed since the earlier run" in err
    assert "kept    t001.png" in err and "changed since" in err.split("kept    t001.png")[1]
    assert len(read_csv(out / "t000_cells.csv")) == n - 2
    areas = [float(c["AreaShape_Area"]) for c in read_csv(out / "t001_cells.csv")]
    assert areas == np.bincount(moved.ravel())[1:].astype(float).tolist()
    np.testing.assert_array_equal(tifffile.imread(out / "t001_labels.tif"), moved)
    (out / "summary.csv").rename(tmp_path / "summary.csv")
    assert main([*args, "--resume"]) == 2
    assert "summary.csv" in capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(out / "t001_labels.tif"), moved)


def test_a_run_continued_over_fewer_images_keeps_the_others_in_its_tables(
    tmp_path, tiny_model_dir, capsys
):
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    whole = {n: (out / n).read_bytes() for n in ("cells.csv", "summary.csv")}
    (out / "frame1_cells.csv").unlink()  # frame1 must be done again
    capsys.readouterr()
    # Continued with frame1 alone (the other two picked out of the folder no more): their
    # rows and cells stay, as their files do; frame1 is done again.
    assert segment([folder / "frame1.png", "--out", out, "--resume"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "1 image(s), and 2 more the earlier run finished (kept in its tables)" in err
    assert "done    frame1.png" in err and "kept    frame0.png" in err
    assert "3/3 image(s) done (2 by the earlier run)" in err
    rows = read_csv(out / "summary.csv")
    assert [(r["Image"], r["Status"]) for r in rows] == [
        ("frame1.png", "done"),
        ("frame0.png", "done"),
        ("frame2.png", "done"),
    ]
    by_image = lambda text: sorted(text.decode().splitlines()[1:])  # noqa: E731
    assert by_image((out / "cells.csv").read_bytes()) == by_image(whole["cells.csv"])
    # An image of the earlier run whose files are gone and whose file is gone too fails by
    # its name; the rest of the run goes on.
    (out / "frame2_labels.tif").unlink()
    (folder / "frame2.png").unlink()
    assert segment([folder / "frame1.png", "--out", out, "--resume"], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "frame2.png" in err and "kept    frame0.png" in err and "kept    frame1.png" in err


def test_a_long_run_continued_names_its_first_kept_images_and_counts_the_rest(
    tmp_path, tiny_model_dir, capsys
):
    from cellprop.cli import KEPT_LINES

    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(KEPT_LINES + 3):
        cv2.imwrite(str(folder / f"f{k:02d}.png"), textured((64, 80), 40 + k))
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    (out / f"f{KEPT_LINES + 2:02d}_cells.csv").unlink()
    capsys.readouterr()
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    kept = [line for line in err.splitlines() if line.strip().startswith("kept")]
    assert len(kept) == KEPT_LINES + 1 and "f00.png" in kept[0]
    rows = read_csv(out / "summary.csv")
    cells = sum(int(r["Cells"]) for r in rows[KEPT_LINES : KEPT_LINES + 2])
    assert kept[-1].strip() == f"kept    2 more image(s), {cells} cells (done by the earlier run)"
    assert f"done    f{KEPT_LINES + 2:02d}.png" in err
    assert f"({KEPT_LINES + 2} by the earlier run)" in err
    # Continued with a pixel size: every image measured again, said as shortly.
    assert segment([folder, "--out", out, "--resume", "--pixel-size", "0.5"], tiny_model_dir) == 0
    kept = [line.strip() for line in capsys.readouterr().err.splitlines() if "kept" in line]
    assert len(kept) == KEPT_LINES + 1
    assert kept[0].endswith("(its cells measured again, pixel size: the file's there, 0.5 now)")
    assert kept[-1] == (
        f"kept    3 more image(s), {cells + int(rows[-1]['Cells'])} cells "
        "(done by the earlier run; measured again)"
    )


def test_a_run_made_before_the_measurements_changed_is_measured_again_when_continued(
    tmp_path, tiny_model_dir, capsys
):
    """A run.json without the edition of the measurements (made before Compactness became
    CellProfiler 4's): continuing it measures the cells it keeps again, and says so, instead
    of putting two definitions of a column into one cells.csv; once, not on every continue."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["measures"] == MEASURES == 3
    del record["measures"]
    (out / "run.json").write_text(json.dumps(record))
    for table in [out / "cells.csv", *out.glob("*_cells.csv")]:  # as the first edition wrote
        rows = read_csv(table)
        for row in rows:
            row["AreaShape_Compactness"] = "0.5"
        with open(table, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    capsys.readouterr()
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    kept = [line.strip() for line in capsys.readouterr().err.splitlines() if "kept" in line]
    assert len(kept) == 3 and all(
        line.endswith(
            "(its cells measured again, the cell tables' measurements: cellprop's first "
            "(Compactness of the pixels' spread) there, CellProfiler 4's Compactness; no ring "
            "total where no ring pixel is a number now)"
        )
        for line in kept
    ), kept
    rows = read_csv(out / "cells.csv")
    assert rows and all(
        float(r["AreaShape_Compactness"])
        == pytest.approx(
            float(r["AreaShape_Perimeter"]) ** 2 / (4 * np.pi * float(r["AreaShape_Area"]))
        )
        for r in rows
    )
    assert json.loads((out / "run.json").read_text())["measures"] == 3
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    assert "measured again" not in capsys.readouterr().err


def test_a_diameter_that_would_enlarge_an_image_past_the_size_limit_fails_it_by_name(
    tmp_path, phase_model_dir, capsys
):
    """--diameter 4 with a model of 32 px cells segments the image 8 times as large: a
    1040 x 1392 frame then took 2.5 GB, a 4096 x 4096 one some 25 GB (the size limit was
    checked on the image as read only); it fails by name, saying why, before any work."""
    frame = ROOT / "resources/samples/c2c12_0000.png"
    out = tmp_path / "out"
    args = ["segment", str(frame), "--out", str(out), "--model", str(phase_model_dir)]
    assert main([*args, "--diameter", "4"]) == 1
    err = capsys.readouterr().err
    assert (
        f"{frame}: at a cell diameter of 4 px it is segmented 8 times as large, 11136 x 8320 "
        "pixels, over the 64 Mpixel limit"
    ) in err
    assert not (out / "c2c12_0000_labels.tif").exists()


def test_a_result_folder_that_cannot_be_written_is_said_not_a_traceback(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    folder = _three_images(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert segment([folder, "--out", blocker / "results"], tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert f"cannot write the results to {blocker / 'results'}" in err
    assert "Traceback" not in err

    # The disk fills after the first image: the run stops, saying what is kept.
    from cellprop.engine import journal

    add = journal.Journal.add

    def fill_up(self, result):
        if (self.folder / "summary.csv").read_text().count("\n") >= 2:
            raise OSError(28, "No space left on device", str(self.folder / "summary.csv"))
        add(self, result)

    monkeypatch.setattr(journal.Journal, "add", fill_up)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "--resume goes on" in err
    assert (out / "frame0_labels.tif").is_file()
    monkeypatch.setattr(journal.Journal, "add", add)
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    assert "kept    frame0.png" in capsys.readouterr().err

    # ... or while an image's own files are written: the run stops there too, saying so
    # once (each image after it failed by name, as if its image were at fault)
    from cellprop.engine import batch

    write_table = batch.write_table

    def full(path, *args, **kwargs):
        if "frame1" in str(path):
            raise OSError(28, "No space left on device", str(path))
        return write_table(path, *args, **kwargs)

    monkeypatch.setattr(batch, "write_table", full)
    again = tmp_path / "again"
    assert segment([folder, "--out", again], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert f"cannot write the results to {again / 'frame1_cells.csv'}: No space left" in err
    assert "failed" not in err and "--resume goes on" in err
    assert (again / "frame0_labels.tif").is_file() and not list(again.glob("frame1*"))
    assert not list(again.glob("frame2*"))


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need rights on Windows")
def test_a_link_that_loops_among_the_inputs_fails_by_name(tmp_path, tiny_model_dir, capsys):
    """A symbolic link that points at itself: that input fails by name, the others run (it
    stopped the run with a traceback: 'Symlink loop')."""
    folder = _three_images(tmp_path)
    (folder / "loop.png").symlink_to("loop.png")
    assert (
        segment(
            [folder / "loop.png", folder / "frame0.png", "--out", tmp_path / "o"], tiny_model_dir
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "loop.png" in err and "Traceback" not in err
    assert (tmp_path / "o" / "frame0_labels.tif").is_file()


def test_what_differs_from_an_earlier_run_is_said_in_a_users_words(tmp_path):
    from cellprop.engine import Settings
    from cellprop.engine.journal import EarlierRun, run_record

    class Model:
        name, path = "phase", "/models/phase"

    then = run_record(Model, Settings(pixel_size=0.65), False, 2, None, None)
    now = run_record(Model, Settings(threshold=0.4), False, None, None, None)
    earlier = EarlierRun(tmp_path, then, {})
    roomier = run_record(Model, Settings(pixel_size=0.65, memory_mb=4096), False, 2, None, None)
    assert earlier.differences(roomier) == []  # the memory budget changes no result
    assert earlier.differences(now) == [
        "detection threshold: the model's default there, 0.4 now",
        "page: 2 there, the first now",
    ]  # the pixel size changes only the measurements: the cells kept are measured again
    assert earlier.measured_otherwise(now) == ["pixel size: 0.65 there, the file's now"]
    assert earlier.difference(now).startswith(f"{tmp_path}: its results were made with other")
    # A run recorded before neighbours could be found at a distance found touching ones.
    older = run_record(Model, Settings(pixel_size=0.65), False, 2, None, None)
    del older["settings"]["neighbour_distance"], older["settings"]["max_size"]
    assert EarlierRun(tmp_path, older, {}).differences(then) == []
    assert EarlierRun(tmp_path, older, {}).measured_otherwise(then) == []
    farther = run_record(
        Model, Settings(pixel_size=0.65, neighbour_distance=5), False, 2, None, None
    )
    assert EarlierRun(tmp_path, older, {}).differences(farther) == []
    assert EarlierRun(tmp_path, older, {}).measured_otherwise(farther) == [
        "neighbours: touching there, within 5 px now"
    ]
    capped = run_record(Model, Settings(pixel_size=0.65, max_size=900), False, 2, None, None)
    assert EarlierRun(tmp_path, older, {}).differences(capped) == [
        "largest cell: the model's default there, 900 now"
    ]


def test_neighbours_within_a_distance_from_the_command_line(tmp_path, phase_model_dir, capsys):
    """``--neighbour-distance 6``: every table names its neighbour columns after the distance
    and counts more neighbours than the cells touching; the run records it, and continued
    with touching neighbours its cells are measured again so, its labels as they were; and
    again with ``expand``, the cells grown until they meet."""
    sample = Path(__file__).resolve().parents[1] / "resources/samples/c2c12_0006_crop512.png"
    near, touching = tmp_path / "near", tmp_path / "touching"
    argv = ["segment", str(sample), "--model", str(phase_model_dir), "-q"]
    assert main([*argv, "--out", str(near), "--neighbour-distance", "6"]) == 0
    assert main([*argv, "--out", str(touching)]) == 0
    far = read_csv(near / "c2c12_0006_crop512_cells.csv")
    close = read_csv(touching / "c2c12_0006_crop512_cells.csv")
    assert "Neighbors_NumberOfNeighbors_6" in far[0] and "Neighbors_PercentTouching_6" in far[0]
    assert not any(name.endswith("_Adjacent") for name in far[0])
    assert len(far) == len(close) > 40
    counts = [
        (int(a["Neighbors_NumberOfNeighbors_6"]), int(b["Neighbors_NumberOfNeighbors_Adjacent"]))
        for a, b in zip(far, close, strict=True)
    ]
    assert all(a >= b for a, b in counts) and sum(a for a, _ in counts) > sum(b for _, b in counts)
    assert "Mean_Cells_Neighbors_NumberOfNeighbors_6" in read_csv(near / "images.csv")[0]
    assert json.loads((near / "run.json").read_text())["settings"]["neighbour_distance"] == 6
    capsys.readouterr()
    labels = tifffile.imread(near / "c2c12_0006_crop512_labels.tif")
    assert main([*argv[:-1], "--out", str(near), "--resume"]) == 0
    assert "measured again, neighbours: within 6 px there, touching now" in capsys.readouterr().err
    again = (near / "c2c12_0006_crop512_cells.csv").read_bytes()
    assert again == (touching / "c2c12_0006_crop512_cells.csv").read_bytes()
    np.testing.assert_array_equal(tifffile.imread(near / "c2c12_0006_crop512_labels.tif"), labels)
    # Grown until they meet (CellProfiler's Expand until adjacent): the run goes on so too.
    assert main([*argv[:-1], "--out", str(near), "--resume", "--neighbour-distance", "expand"]) == 0
    said = capsys.readouterr().err
    assert "measured again, neighbours: touching there, expanded until adjacent now" in said
    grown = read_csv(near / "c2c12_0006_crop512_cells.csv")
    assert not any(name.endswith(("_Adjacent", "_6")) for name in grown[0])
    assert sum(int(a["Neighbors_NumberOfNeighbors_Expanded"]) for a in grown) > sum(
        b for _, b in counts
    )
    assert json.loads((near / "run.json").read_text())["settings"]["neighbour_distance"] == -1
    np.testing.assert_array_equal(tifffile.imread(near / "c2c12_0006_crop512_labels.tif"), labels)
    for wrong in ("-1", "near"):
        with pytest.raises(SystemExit):
            main([*argv, "--out", str(near), "--neighbour-distance", wrong])
    assert "must be a number of pixels or 'expand', got near" in capsys.readouterr().err
    for option, wrong, said in (
        ("--ring", "1.5", "must be a whole number, got 1.5"),  # "invalid _count value"
        ("--smoothness", "nan", "must be a number, 0 or more, got nan"),
        ("--diameter", "inf", "must be a positive number, got inf"),
        ("--pixel-size", "inf", "must be a positive number, got inf"),
    ):
        with pytest.raises(SystemExit):
            main([*argv, "--out", str(tmp_path / "never"), option, wrong])
        assert said in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_the_largest_cell_from_the_command_line(tmp_path, phase_model_dir, capsys):
    """``--max-size``: no cell over it in the table, the image's line says how many went, and
    the cells kept are those of a run without it that are no larger."""
    sample = Path(__file__).resolve().parents[1] / "resources/samples/c2c12_0006_crop512.png"
    argv = ["segment", str(sample), "--model", str(phase_model_dir)]
    assert main([*argv, "--out", str(tmp_path / "all")]) == 0
    every = read_csv(tmp_path / "all" / "c2c12_0006_crop512_cells.csv")
    areas = sorted(float(r["AreaShape_Area"]) for r in every)
    limit = int(areas[-4])  # the three largest go
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "capped"), "--max-size", str(limit)]) == 0
    said = capsys.readouterr().err
    assert f"3 cells larger than the largest cell ({limit} px) left out" in said
    capped = read_csv(tmp_path / "capped" / "c2c12_0006_crop512_cells.csv")
    assert len(capped) == len(every) - 3
    assert sorted(float(r["AreaShape_Area"]) for r in capped) == areas[:-3]
    assert (
        json.loads((tmp_path / "capped" / "run.json").read_text())["settings"]["max_size"] == limit
    )


def test_a_runs_results_read_back_are_what_it_wrote(tmp_path, tiny_model_dir):
    from cellprop.engine import ResumeError, read_labels, saved_results

    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--pixel-size", "0.5"], tiny_model_dir) == 0
    run, results, problems = saved_results(out)
    assert problems == [] and run.record["settings"]["pixel_size"] == 0.5
    assert [r.path for r in results] == sorted(folder.iterdir())
    for r, row in zip(results, read_csv(out / "summary.csv"), strict=True):
        assert r.kept and r.n_cells == int(row["Cells"]) == len(r.table)
        assert r.settings["threshold"] == 0.01 and r.settings["pixel_size"] == 0.5
        labels = read_labels(r.outputs["labels"])
        assert labels.max() == r.n_cells and labels.shape == (96, 128)
    # Settings as given (a correction resolves them as the run did); a diameter measured on
    # each image is that image's.
    assert results[0].settings["min_size"] is None
    auto = tmp_path / "auto"
    assert (
        segment([folder / "frame0.png", "--out", auto, "--diameter", "auto"], tiny_model_dir) == 0
    )
    _, (measured,), _ = saved_results(auto)
    row = read_csv(auto / "summary.csv")[0]
    assert measured.settings["diameter"] == pytest.approx(float(row["Diameter_px"]))

    # The images moved beside the result folder, one result file lost: the others still open.
    moved = tmp_path / "moved"
    folder.rename(moved)
    out.rename(moved / "results")
    (moved / "results" / "frame1_cells.csv").unlink()
    _, results, problems = saved_results(moved / "results")
    assert [r.path for r in results] == [moved / "frame0.png", moved / "frame2.png"]
    assert len(problems) == 1 and problems[0].startswith("frame1.png: its results cannot")
    (moved / "frame2.png").unlink()
    _, results, problems = saved_results(moved / "results")
    assert "frame2.png: the image is no longer at" in problems[1]
    with pytest.raises(ResumeError, match="no run.json here"):
        saved_results(moved)


def test_results_inside_the_input_folder_are_not_inputs(inputs, tmp_path, tiny_model_dir):
    folder = tmp_path / "only"
    folder.mkdir()
    (folder / "a.png").write_bytes((inputs / "good1.png").read_bytes())
    assert segment([folder, "--out", folder / "results"], tiny_model_dir) == 0
    assert segment([folder, "--out", folder / "results", "--overwrite"], tiny_model_dir) == 0
    rows = read_csv(folder / "results" / "summary.csv")
    assert [r["Image"] for r in rows] == ["a.png"]
    # results beside the images, and the images in a folder inside --out: the images are
    # inputs (they were all left out: "no images found"), the results written there are not
    for out in (folder, tmp_path):
        assert segment([folder, "--out", out, "--overwrite"], tiny_model_dir) == 0
        assert segment([folder / "a.png", "--out", out, "--overwrite"], tiny_model_dir) == 0
        assert [r["Image"] for r in read_csv(out / "summary.csv")] == ["a.png"]
    assert (folder / "a_labels.tif").is_file() and (folder / "a_overlay.png").is_file()


def test_a_failure_while_writing_leaves_nothing_of_that_image(
    inputs, tmp_path, tiny_model, monkeypatch
):
    from cellprop.engine import Settings, batch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(batch, "write_table", broken)
    out = tmp_path / "out"
    result = batch.process_image(inputs / "good1.png", out, tiny_model, Settings(threshold=0.01))
    assert result.status == "failed" and "disk full" in result.error
    assert "good1.png" in result.error
    assert list(out.iterdir()) == []  # the labels and overlay written before were removed


def test_ctrl_c_while_writing_leaves_nothing_of_that_image(
    inputs, tmp_path, tiny_model, monkeypatch
):
    from cellprop.engine import Settings, batch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "write_table", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # the run stops ...
        batch.process_image(inputs / "good1.png", out, tiny_model, Settings(threshold=0.01))
    assert list(out.iterdir()) == []  # ... and the labels and overlay written before are gone


def test_no_images_and_unknown_model_are_usage_errors(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert segment([tmp_path / "empty", "--out", tmp_path / "o"], tiny_model_dir) == 2
    assert "no images found" in capsys.readouterr().err
    # A path mistyped: said, and no result folder made (it was, and then refused the command
    # put right: "cells.csv exists already"); nor an empty --out (an unset $OUT) taken for "."
    nowhere = tmp_path / "nosuchdir"
    assert segment([nowhere, "--out", tmp_path / "o"], tiny_model_dir) == 2
    assert f"no such file or folder: {nowhere}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as ended:
        main(["segment", str(tmp_path / "empty"), "--out", ""])
    assert ended.value.code == 2
    assert "--out/-o: must name a folder, got an empty name" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "a.png"), textured((32, 32)))
    assert (
        main(
            [
                "segment",
                str(tmp_path / "a.png"),
                "--out",
                str(tmp_path / "o"),
                "--model",
                "nonexistent-model",
            ]
        )
        == 2
    )
    assert "nonexistent-model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", ["parent", "itself"])
def test_models_command_lists_models(tiny_model_dir, monkeypatch, capsys, where):
    """CELLPROP_MODEL_PATH naming a folder of models, or a model's own folder (which was
    left out without a word)."""
    path = tiny_model_dir.parent if where == "parent" else tiny_model_dir
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "random weights" in out and "devices: cpu" in out
    tiny = out[re.search(r"^tiny ", out, re.MULTILINE).start() :].splitlines()
    assert tiny[1].strip() == "cells about 24 px across; detection threshold 0.5"  # never validated


def test_train_in_the_desktop_bundle_says_where_to_train(monkeypatch, capsys):
    """`cellprop train` in the desktop bundle (frozen, training left out): where training
    is done instead (it said to pip install into a Python the bundle does not have)."""
    monkeypatch.setitem(sys.modules, "cellprop.training.cli", None)  # (import: ImportError)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert main(["train", "data"]) == 2
    err = capsys.readouterr().err
    assert "this installed app does not include training" in err and "pip install" not in err


def test_a_model_that_cannot_be_used_is_said_not_hidden(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """A model folder on CELLPROP_MODEL_PATH that cannot be used (its model.json damaged):
    `cellprop models` says so and why, and --model by its name says why, not 'no such
    model' (it was left out of the list without a word)."""
    broken = tmp_path / "mine"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    (tmp_path / "notes").mkdir()  # a folder of something else: no model, nothing said
    monkeypatch.setenv(
        "CELLPROP_MODEL_PATH", os.pathsep.join([str(tiny_model_dir.parent), str(tmp_path)])
    )
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"not usable: {broken}: " in out and "cannot be read" in out and "notes" not in out
    image = ROOT / "resources/samples/c2c12_0006_crop512.png"
    assert main(["segment", str(image), "--model", "mine", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "model.json cannot be read" in err and "no such model" not in err


def test_a_model_named_as_a_shipped_one_is_said_to_be_hidden(tmp_path, monkeypatch, capsys):
    """A model of your own on CELLPROP_MODEL_PATH named as a shipped one (phase): --model
    phase finds the shipped one, and `cellprop models` says yours is hidden and how to use it
    (it was left out without a word)."""
    mine = tmp_path / "my-phase"
    shutil.copytree(ROOT / "resources" / "models" / "phase", mine)
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"not usable: {mine}: named 'phase', as the model in" in out
    assert "give this one's folder" in out


def test_a_model_in_a_folder_named_as_a_shipped_model_does_not_take_its_name(
    tmp_path, monkeypatch, capsys
):
    """A model of one's own named "mynuc" kept in a folder called nuclei: --model nuclei is
    the shipped nuclei model, as `cellprop models` lists it (it loaded "mynuc", unsaid);
    --model mynuc is that one."""
    mine = tmp_path / "nuclei"
    shutil.copytree(ROOT / "resources" / "models" / "phase", mine)
    info = json.loads((mine / "model.json").read_text())
    (mine / "model.json").write_text(json.dumps({**info, "name": "mynuc"}))
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(tmp_path))
    image = ROOT / "resources/samples/c2c12_0006_crop512.png"
    for name, folder in (("nuclei", ROOT / "resources" / "models" / "nuclei"), ("mynuc", mine)):
        out = tmp_path / f"out-{name}"
        assert main(["segment", str(image), "--model", name, "--out", str(out), "-q"]) == 0
        run = json.loads((out / "run.json").read_text())
        assert run["model"]["name"] == name and Path(run["model"]["path"]) == folder


def test_model_auto_leaves_out_a_model_that_does_not_load(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """A model of one's own copied without its networks is listed as not usable, and one
    whose network is damaged is left out of --model auto, saying so; the shipped models
    still choose (every image was refused: "unet.onnx is missing")."""
    bare = tmp_path / "bare"
    bare.mkdir()
    info = json.loads((tiny_model_dir / "model.json").read_text())
    (bare / "model.json").write_text(json.dumps({**info, "name": "bare"}))
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    (damaged / "model.json").write_text(json.dumps({**info, "name": "damaged"}))
    (damaged / "unet.onnx").write_bytes(b"not a network")
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"not usable: {bare}: unet.onnx is missing" in out  # the folder said once
    image = ROOT / "resources/samples/c2c12_0006_crop512.png"
    argv = ["segment", str(image), "--model", "auto", "--out", str(tmp_path / "o"), "-q"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"--model auto leaves out {damaged}: unet.onnx cannot be loaded" in err
    assert "model phase chosen for this image" in err


def test_models_command_says_what_each_shipped_model_was_measured_at(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("phase", "dic", "nuclei"):
        folder = ROOT / "resources" / "models" / name
        if not (folder / "model.json").is_file():
            continue
        info = json.loads((folder / "model.json").read_text())
        ours = info["validation"]["scores"]["cellprop"]
        start = re.search(rf"^{name} ", out, re.MULTILINE)
        assert start, out
        facts = out[start.start() :].splitlines()[1]
        own = info["cell_diameter_px"] / info["input"]["scale"]
        assert f"cells about {own:.0f} px across" in facts
        if ours["mdice"] is not None:  # to three decimals, halves up (0.7975: 0.798)
            half_up = lambda v: f"{float(v) + 1e-9:.3f}"  # noqa: E731
            assert f"mDice {half_up(ours['mdice'])}, AP50 {half_up(ours['ap50'])}" in facts
        else:
            assert re.search(r"detection F1 0\.\d{3}", facts)
        assert f"on held-out {info['validation']['dataset']} images" in facts
        assert f"detection threshold {info['defaults']['threshold']:g}" in facts
    assert "mDice 0.798, AP50 0.742" in out  # the dic model's, as the README gives them
    # a model.json of a figure without the other (edited by hand): the one there is shown
    # (it was a TypeError traceback, the models after it not listed)
    from cellprop.engine.model import ModelInfo

    info = {"validation": {"dataset": "x", "scores": {"cellprop": {"mdice": 0.5, "ap50": None}}}}
    assert "mDice 0.500 on held-out x images" in ModelInfo("m", ROOT, "", "phase", info).facts()
    # a model trained by a user has no validation run: its training's own check is shown
    # (a model that found nothing, F1 0, was listed as a good one was)
    for f1, said in [(0.0, "detection F1 0.000"), (0.9801, "detection F1 0.980")]:
        info = {"training": {"val_images": ["a/1.png", "a/2.png"], "val_detection": {"f1": f1}}}
        assert (
            f"{said} on its 2 validation images" in ModelInfo("m", ROOT, "", "phase", info).facts()
        )


def test_training_without_torch_says_what_to_install(tmp_path, monkeypatch, capsys):
    """cellprop-train and `cellprop train` where torch and onnx are not installed (the app's
    own install): one line saying what to install, exit 2 (it was a traceback)."""
    import importlib.util

    from cellprop.training import cli as training_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        training_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("torch", "onnx") else real(name, *a),
    )
    args = [str(tmp_path / "data"), "--out", str(tmp_path / "model")]
    assert training_cli.main(args) == 2
    err = capsys.readouterr().err
    assert "training needs torch and onnx, not installed in this Python" in err
    # as the train extra pins them (a bare `pip install torch onnx` took the newest torch)
    assert 'pip install "torch>=2.2,<=2.13.0" "onnx>=1.15"' in err and "Traceback" not in err
    assert main(["train", *args]) == 2
    assert 'pip install "torch>=2.2,<=2.13.0"' in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_a_run_leaves_no_telemetry_and_sends_none(tmp_path):
    """onnxruntime's official builds keep a device id and an event queue under
    ~/.cache/Microsoft for Microsoft's telemetry servers, on by default: cellprop switches
    it off (no network at run time), whatever the user's environment says otherwise."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path / "home")
    sample = ROOT / "resources" / "samples" / "c2c12_0006_crop512.png"
    code = "import sys; from cellprop.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run(
        [sys.executable, "-c", code, "segment", str(sample), "--out", str(tmp_path / "o"), "-q"],
        env=env,
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "o" / "c2c12_0006_crop512_labels.tif").is_file()
    assert not (tmp_path / "home" / ".cache" / "Microsoft").exists()


def test_segment_does_not_load_qt_or_torch():
    code = (
        "import sys; from cellprop import cli; cli.build_parser();"
        "import cellprop.engine;"
        "print(any(m.split('.')[0] in ('torch', 'PySide6') for m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and "cellprop" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--device",
        "--propagation",
        "--threshold",
        "--diameter",
        "--pixel-size",
        "--min-size",
        "--exclude-border",
        "--edge-fraction",
        "--overwrite",
        "--roi",
        "--workers",
        "--recursive",
    ):
        assert option in text


def test_workers_give_the_same_results(inputs, tmp_path, tiny_model_dir):
    goods = [inputs / "good1.png", inputs / "good2.tif"]
    assert segment([*goods, "--out", tmp_path / "one"], tiny_model_dir) == 0
    assert segment([*goods, "--out", tmp_path / "two", "--workers", "2"], tiny_model_dir) == 0
    for stem in ("good1", "good2"):
        a = tifffile.imread(tmp_path / "one" / f"{stem}_labels.tif")
        b = tifffile.imread(tmp_path / "two" / f"{stem}_labels.tif")
        np.testing.assert_array_equal(a, b)
    rows = read_csv(tmp_path / "two" / "summary.csv")
    assert [r["Image"] for r in rows] == ["good1.png", "good2.tif"]  # input order kept
    assert json.loads((tmp_path / "two" / "run.json").read_text())["workers"] == 2
    assert json.loads((tmp_path / "one" / "run.json").read_text())["workers"] == 1
    # "auto" is the engine's choice for this machine and two images (one worker: two images
    # are too few for a second process to pay for its start).
    assert segment([*goods, "--out", tmp_path / "auto", "--workers", "auto"], tiny_model_dir) == 0
    used = json.loads((tmp_path / "auto" / "run.json").read_text())["workers"]
    assert used == auto_workers(2) == 1
    a = tifffile.imread(tmp_path / "one" / "good1_labels.tif")
    np.testing.assert_array_equal(a, tifffile.imread(tmp_path / "auto" / "good1_labels.tif"))


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_workers_must_be_a_count_or_auto(inputs, tmp_path, tiny_model_dir, capsys, value):
    with pytest.raises(SystemExit) as done:
        segment(
            [inputs / "good1.png", "--out", tmp_path / "out", "--workers", value], tiny_model_dir
        )
    assert done.value.code == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_3d_stack_runs_with_a_page_choice(inputs, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    assert segment([inputs / "stack.tif", "--out", out, "--page", "2"], tiny_model_dir) == 0
    assert tifffile.imread(out / "stack_labels.tif").shape == (40, 40)
    assert "page 2 of 0-2" in read_csv(out / "summary.csv")[0]["Read"]  # the plane used is reported


def _time_lapse(tmp_path):
    """A folder with a 3-frame time-lapse, a 2-slice 3-D stack and a single image."""
    folder = tmp_path / "lapse"
    folder.mkdir()
    frames = np.stack([textured((96, 128), 20 + k) for k in range(3)])
    tifffile.imwrite(folder / "movie.tif", frames, imagej=True, metadata={"axes": "TYX"})
    slices = np.stack([textured((64, 80), 30 + k) for k in range(2)])
    tifffile.imwrite(folder / "stack.tif", slices, imagej=True, metadata={"axes": "ZYX"})
    cv2.imwrite(str(folder / "single.png"), textured((96, 128), 40))
    return folder


@pytest.mark.parametrize("workers", ["1", "2"])  # here; in worker processes
def test_every_page_of_a_time_lapse_is_an_image_of_its_own(
    tmp_path, tiny_model_dir, capsys, workers
):
    from cellprop.engine import saved_results

    folder = _time_lapse(tmp_path)
    out = tmp_path / "out"
    # Without --page: the first page of each, and a word on the pages left.
    assert segment([folder / "movie.tif", "--out", tmp_path / "first"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "movie.tif (3 pages): only the first page was segmented (--page all:" in err
    assert (
        segment([folder, "--out", out, "--page", "all", "--workers", workers], tiny_model_dir) == 0
    )
    err = capsys.readouterr().err
    assert "6 image(s) (every page of 3 file(s))" in err and "only the first page" not in err
    names = [f"movie_p{k}c0" for k in range(3)] + ["single"] + [f"stack_p{k}c0" for k in range(2)]
    rows = read_csv(out / "summary.csv")
    assert [r["Image"] for r in rows] == [n + (".png" if n == "single" else ".tif") for n in names]
    assert [r["Page"] for r in rows] == ["0", "1", "2", "", "0", "1"]
    assert rows[1]["Read"].startswith("128 x 96, uint8, page 1 of 0-2")
    # Each page is segmented as that page alone would be (--page k), under its own name.
    for k in range(3):
        alone = tmp_path / f"page{k}"
        assert segment([folder / "movie.tif", "--out", alone, "--page", k], tiny_model_dir) == 0
        for kind in ("labels.tif", "cells.csv"):
            got = (out / f"movie_p{k}c0_{kind}").read_bytes()
            assert got == (alone / f"movie_{kind}").read_bytes(), (k, kind)
    cells = read_csv(out / "cells.csv")
    per_image = {r["Image"]: int(r["Cells"]) for r in rows}
    for name, n in per_image.items():
        assert sum(c["Image"] == name for c in cells) == n > 0
    # Each cell carries its page, as its image's summary row does (the time point).
    page_of = {r["Image"]: r["Page"] for r in rows}
    assert list(cells[0])[:2] == ["Image", "Page"]
    assert all(c["Page"] == page_of[c["Image"]] for c in cells)
    # Read back page by page; continued with the same pages only.
    run, results, problems = saved_results(out)
    assert problems == [] and run.record["page"] == "all"
    assert [(r.name, r.page) for r in results] == [
        (r["Image"], int(r["Page"]) if r["Page"] else None) for r in rows
    ]
    (out / "movie_p1c0_cells.csv").unlink()
    assert segment([folder, "--out", out, "--resume", "--page", "0"], tiny_model_dir) == 2
    assert "page: all there, 0 now" in capsys.readouterr().err
    assert segment([folder, "--out", out, "--resume", "--page", "all"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "done    movie_p1c0.tif" in err and "(5 by the earlier run)" in err
    assert (out / "movie_p1c0_cells.csv").read_bytes() == (
        tmp_path / "page1/movie_cells.csv"
    ).read_bytes()


def test_a_frame_of_another_size_in_a_followed_folder_is_said(tmp_path, tiny_model_dir, capsys):
    """A stray frame of another size in a folder followed over time: every track starts
    anew at it (it is not the same field), and the run says where (it did so silently)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, shape in enumerate([(96, 128), (80, 90), (80, 90)]):
        cv2.imwrite(str(folder / f"t{t}.png"), textured(shape, 10 + t))
    assert segment([folder, "--track", "--out", tmp_path / "out"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "tracks started anew at t1.png: a field of another size than the image before" in err


def test_following_one_time_point_says_there_is_nothing_to_follow(tmp_path, tiny_model_dir, capsys):
    """--track on one image (a multi-page file given without --page all): no cell can be
    followed, and the run says so instead of 'N tracks followed ... N from the first time
    point to the last'."""
    image = _three_images(tmp_path) / "frame0.png"
    assert segment([image, "--track", "--out", tmp_path / "out"], tiny_model_dir) == 0
    assert "no cell followed: each time-lapse given has one time point" in capsys.readouterr().err


def test_a_time_lapse_without_cells_writes_tracks_csv_with_its_columns(tmp_path, tiny_model_dir):
    """Frames where no cell is found (empty wells): tracks.csv holds its header, as the
    cell tables do, not two bytes a spreadsheet or script cannot read columns from."""
    folder = tmp_path / "empty"
    folder.mkdir()
    for t in range(2):
        cv2.imwrite(str(folder / f"t{t}.png"), np.zeros((64, 64), np.uint8))
    assert segment([folder, "--track", "--out", tmp_path / "out"], tiny_model_dir) == 0
    lines = (tmp_path / "out" / "tracks.csv").read_text().splitlines()
    assert lines == [
        "Sequence,Track,Parent,First_Image,Last_Image,First_Frame,Last_Frame,Frames,"
        "Start_X,Start_Y,End_X,End_Y,Displacement,PathLength,Speed"
    ]


def test_the_cells_of_a_time_lapse_are_followed_from_frame_to_frame(
    tmp_path, phase_model_dir, capsys
):
    """--track: a multi-page time-lapse (--page all) and a folder of frames of real C2C12
    cells drifting 3 px a frame; each cell keeps its track, and tracks.csv says where each
    went."""
    base = cv2.imread(str(ROOT / "resources/samples/c2c12_0006_crop512.png"), 0)
    movie = np.stack([np.roll(base, 3 * t, axis=1) for t in range(4)])
    tifffile.imwrite(tmp_path / "movie.tif", movie, imagej=True, metadata={"axes": "TYX"})
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        cv2.imwrite(str(folder / f"t{t:03d}.png"), movie[t])
    out = tmp_path / "out"
    args = [tmp_path / "movie.tif", folder, "--page", "all", "--track", "--out", out]

    def segment(args, model_dir):  # the shipped model at its own defaults
        return main(["segment", *map(str, args), "--model", str(model_dir), "--quiet"])

    assert segment(args, phase_model_dir) == 0
    tracks = read_csv(out / "tracks.csv")
    whole = sum(
        (t["First_Frame"], t["Last_Frame"]) == ("0", "3" if t["Sequence"] == "movie.tif" else "2")
        for t in tracks
    )
    assert f"{len(tracks)} tracks followed (0 division(s); {whole} from the first time " in (
        capsys.readouterr().err
    )
    assert whole >= 0.8 * len(tracks)
    assert {t["Sequence"] for t in tracks} == {"movie.tif", "frames"}
    assert list(tracks[0]) == list(TRACKS_CSV_COLUMNS)  # the columns an empty one names
    for first, second in (("movie_p0c0", "movie_p1c0"), ("t000", "t001")):
        before = {int(c["TrackObjects_Label"]): c for c in read_csv(out / f"{first}_cells.csv")}
        after = read_csv(out / f"{second}_cells.csv")
        kept = [c for c in after if int(c["TrackObjects_Label"]) in before]
        assert len(kept) >= 0.8 * len(after) > 0  # most cells followed, ...
        moved = [
            float(c["AreaShape_Center_X"])
            - float(before[int(c["TrackObjects_Label"])]["AreaShape_Center_X"])
            for c in kept
        ]
        assert np.median(moved) == pytest.approx(3, abs=0.5)  # ... to where they drifted
        for c in kept:  # its ObjectNumber before, and how far it went
            parent = before[int(c["TrackObjects_Label"])]
            assert c["TrackObjects_ParentObjectNumber"] == parent["ObjectNumber"]
            assert int(c["TrackObjects_Lifetime"]) == int(parent["TrackObjects_Lifetime"]) + 1
    whole = [t for t in tracks if t["Sequence"] == "movie.tif" and t["Frames"] == "4"]
    assert len(whole) >= 0.5 * len(read_csv(out / "movie_p0c0_cells.csv"))
    assert all(t["First_Image"] == "movie_p0c0.tif" for t in whole)
    speeds = np.array([float(t["Speed"]) for t in whole])  # px a frame, rolled round the edge
    assert np.median(speeds) == pytest.approx(3, abs=0.5) and np.mean(abs(speeds - 3) < 1) > 0.8
    cells = read_csv(out / "cells.csv")
    assert all(c["TrackObjects_Label"] for c in cells)
    # each overlay numbers a cell by its track, one number at every time point: t001's is the
    # picture drawn so, not the one by ObjectNumber (most cells' track differs from it here)
    from cellprop.engine import read_image, read_labels, write_overlay

    rows = read_csv(out / "t001_cells.csv")
    followed = [int(c["TrackObjects_Label"]) for c in rows]
    assert sum(t != int(c["ObjectNumber"]) for t, c in zip(followed, rows, strict=True)) > 1
    centres = [[float(c[f"Detection_Center_{a}"]) for a in "XY"] for c in rows]
    pixels, labels = (
        read_image(folder / "t001.png").display_pixels,
        read_labels(out / "t001_labels.tif"),
    )
    for kind, numbers in {"track": followed, "number": None}.items():
        write_overlay(tmp_path / f"{kind}.png", pixels, labels, np.array(centres), numbers=numbers)
    drawn = (out / "t001_overlay.png").read_bytes()
    assert (tmp_path / "track.png").read_bytes() == drawn != (tmp_path / "number.png").read_bytes()
    from cellprop.engine import saved_results  # read back: each image's place in its time-lapse

    _, back, _ = saved_results(out)
    assert sorted(r.sequence for r in back) == [
        *[("frames", t) for t in range(3)],
        *[("movie.tif", t) for t in range(4)],
    ]
    header = read_csv(out / "images.csv")[0]
    assert "Mean_Cells_TrackObjects_DistanceTraveled" in header
    assert "Mean_Cells_TrackObjects_Label" not in header  # a number, not a measurement
    # a run that followed cells is continued only by one that does
    (out / "t002_cells.csv").unlink()
    resume = [tmp_path / "movie.tif", folder, "--page", "all", "--out", out, "--resume"]
    assert segment(resume, phase_model_dir) == 2
    assert "cells followed over time: yes there, no now" in capsys.readouterr().err
    assert segment([*resume, "--track"], phase_model_dir) == 0
    again = read_csv(out / "tracks.csv")
    # a run made without --track is followed afterwards by continuing it with it: nothing
    # is segmented again
    plain = tmp_path / "plain"
    assert segment([*args[:-1], plain], phase_model_dir) == 0  # --out plain, with --track
    assert (plain / "tracks.csv").is_file()
    untracked = [tmp_path / "movie.tif", folder, "--page", "all", "--out", plain, "--overwrite"]
    assert segment(untracked, phase_model_dir) == 0
    assert not (plain / "tracks.csv").exists()  # the replaced run's tracks went with it
    assert "TrackObjects_Label" not in read_csv(plain / "cells.csv")[0]
    assert (plain / "t001_overlay.png").read_bytes() == (tmp_path / "number.png").read_bytes()
    capsys.readouterr()
    assert segment([*untracked[:-1], "--resume", "--track"], phase_model_dir) == 0
    assert "(7 by the earlier run)" in capsys.readouterr().err
    assert len(read_csv(plain / "tracks.csv")) == len(tracks)
    assert (plain / "t001_overlay.png").read_bytes() == drawn  # numbered by track now too
    assert read_csv(plain / "cells.csv")[0][
        "TrackObjects_Label"
    ]  # the kept images' tables read back: to 10 digits
    assert [list(t.values())[:8] for t in again] == [list(t.values())[:8] for t in tracks]
    for new, old in zip(again, tracks, strict=True):
        assert [float(v) for v in list(new.values())[8:]] == pytest.approx(
            [float(v) for v in list(old.values())[8:]], rel=1e-6, abs=1e-6
        )


def test_the_shipped_time_lapse_of_real_cells_is_followed_through_its_seven_frames(
    tmp_path, phase_model_dir, capsys
):
    """resources/samples/c2c12-timelapse: seven consecutive real frames of C2C12 cells,
    which move a few pixels a frame and do not divide there; nearly every cell keeps one
    track through all seven (2026-12-02: 47 of 48 tracks, one cell coming in at frame 3)."""
    out = tmp_path / "out"
    folder = ROOT / "resources/samples/c2c12-timelapse"
    args = ["segment", str(folder), "--track", "--model", str(phase_model_dir), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    tracks = read_csv(out / "tracks.csv")
    first = read_csv(out / "t000_cells.csv")
    whole = [t for t in tracks if t["Frames"] == "7"]
    assert len(whole) >= 0.9 * len(first) > 30 and len(tracks) <= 1.1 * len(first)
    assert all(t["First_Image"] == "t000.png" and t["Last_Image"] == "t006.png" for t in whole)
    assert not any(t["Parent"] != "0" for t in tracks)  # no division in these frames
    speeds = [float(t["Speed"]) for t in whole]  # px a frame: slow, as the cells are
    assert 0.3 < np.median(speeds) < 3 and max(speeds) < 8
    # how they were followed is the run's: recorded, read back, and kept when continued
    assert json.loads((out / "run.json").read_text())["tracking"] == {"max_move": 0.5, "max_gap": 1}
    from cellprop.engine import saved_results

    assert {str(r.tracking) for r in saved_results(out)[1]} == {str(TrackSettings().record())}
    # continued with another reach and no gaps closed: followed again, nothing segmented
    # again, a link mended by hand kept (a cell of t003 said in its table to come from none)
    labels = {p.name: p.stat().st_mtime_ns for p in out.glob("*_labels.tif")}
    path = out / "t003_cells.csv"
    rows = read_csv(path)
    mended = next(r for r in rows if r["TrackObjects_ParentObjectNumber"] != "0")
    mended["TrackObjects_ParentObjectNumber"], mended["TrackObjects_GapLength"] = "0", "-1"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main([*args, "--resume", "--max-move", "2", "--max-gap", "0"]) == 0
    said = capsys.readouterr().err
    assert "the cells of the images kept followed again, how far a cell may move (cell " in said
    assert (
        "diameters a time point): 0.5 there, 2.0 now; gaps closed (time points): 1 there, 0 now"
        in said
    )
    assert "0/7 image(s) done" not in said and "7/7 image(s) done" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_labels.tif")} == labels
    assert json.loads((out / "run.json").read_text())["tracking"] == {"max_move": 2.0, "max_gap": 0}
    again = read_csv(path)
    row = again[int(mended["ObjectNumber"]) - 1]
    assert row["TrackObjects_ParentObjectNumber"] == "0" and row["TrackObjects_GapLength"] == "-1"
    assert not any(
        r["TrackObjects_GapLength"] == "2" for f in out.glob("t*_cells.csv") for r in read_csv(f)
    )
    assert len(read_csv(out / "tracks.csv")) == len(tracks) + 1  # the mended cell's own
    assert main([args[0], args[1], "--max-gap", "2", "--out", str(tmp_path / "no")]) == 2
    assert "--max-move and --max-gap follow cells: add --track" in capsys.readouterr().err


def test_three_files_of_one_stem_each_name_both_others(tmp_path, tiny_model_dir, capsys):
    """img.png, img.tif and img.bmp would write the same files: each fails naming the two
    others (each named only one of them), and the folder's other image runs."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    same = [folder / f"img.{ext}" for ext in ("png", "tif", "bmp")]
    for k, path in enumerate(same):
        cv2.imwrite(str(path), textured((64, 64), k))
    cv2.imwrite(str(folder / "other.png"), textured((64, 64), 9))
    assert segment([folder, "--out", tmp_path / "x"], tiny_model_dir) == 1
    rows = {r["Image"]: r for r in read_csv(tmp_path / "x" / "summary.csv")}
    for path in same:
        why = rows[path.name]["Error"]
        assert "would write the same result files (img_*)" in why, why
        assert all(str(p) in why for p in same), why
    assert rows["other.png"]["Status"] == "done"


def test_pages_as_images_keep_their_names_apart_and_their_points(tmp_path, tiny_model_dir, capsys):
    folder = _time_lapse(tmp_path)
    clash = folder / "movie_p1c0.png"
    cv2.imwrite(str(clash), textured((96, 128), 50))
    # the two that would write the same files fail, by name; the other pages run
    assert segment([folder, "--out", tmp_path / "x", "--page", "all"], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert f"{clash} and {folder / 'movie.tif'} page 1 would write the same" in err
    assert f"{folder / 'movie.tif'} page 1 and {clash} would write the same" in err
    assert "rename one, or segment them into different result folders" in err
    assert (tmp_path / "x" / "movie_p0c0_labels.tif").is_file()
    assert not (tmp_path / "x" / "movie_p1c0_labels.tif").exists()
    clash.unlink()
    with pytest.raises(SystemExit) as done:
        main(["segment", str(folder), "--out", str(tmp_path / "y"), "--page", "al"])
    assert done.value.code == 2
    assert "must be a page number or 'all'" in capsys.readouterr().err
    # Centres by page: a page's own name, the file's name for its first page (as the app
    # names the first page in a training set); a page with neither fails by name.
    points = tmp_path / "points.csv"
    points.write_text(
        "image,x,y\nmovie.tif,20,30\nmovie_p1c0.tif,50,40\nmovie_p1c0.tif,90,60\n"
        "single.png,64,48\nstack_p0c0.tif,10,10\nstack_p1c0.tif,30,30\n"
    )
    out = tmp_path / "out"
    args = [folder, "--out", out, "--page", "all", "--points", points]
    assert segment(args, tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "movie.tif: the points file gives no cell centres for movie_p2c0.tif" in err
    rows = {r["Image"]: r for r in read_csv(out / "summary.csv")}
    assert [r["Status"] for r in rows.values()] == ["done", "done", "failed"] + ["done"] * 3
    centres = read_csv(out / "movie_p1c0_cells.csv")
    assert {(float(c["Detection_Center_X"]), float(c["Detection_Center_Y"])) for c in centres} <= {
        (50.0, 40.0),
        (90.0, 60.0),
    }
    first = read_csv(out / "movie_p0c0_cells.csv")
    assert [(c["Detection_Center_X"], c["Detection_Center_Y"]) for c in first] in (
        [],
        [("20", "30")],
    )
    # --page 0 alone takes its page's own rows too, as --page 1 does (page 0 was taken for
    # no page: "the points file gives no cell centres for movie.tif")
    points.write_text("image,x,y\nmovie_p0c0.tif,20,30\nmovie_p1c0.tif,50,40\n")
    for page in ("0", "1"):
        args = [folder / "movie.tif", "--out", tmp_path / f"page{page}", "--page", page]
        assert segment([*args, "--points", points], tiny_model_dir) == 0, capsys.readouterr().err


def test_every_page_of_a_one_channel_file_with_a_channel_asked_is_named_c0_unsaid(
    tmp_path, tiny_model_dir, capsys
):
    """--page all --channel 1 on a time-lapse of one channel: its pages are named after the
    channel read (movie_p0c0, read whole), and nothing says they share a name with an image
    in another folder (the names were taken for names made apart, QA)."""
    folder = tmp_path / "one"
    folder.mkdir()
    frames = np.stack([textured((96, 128), 5 + k) for k in range(2)])
    tifffile.imwrite(folder / "movie.tif", frames, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--page", "all", "--channel", "1"], tiny_model_dir) == 0
    assert "another folder" not in capsys.readouterr().err
    assert (out / "movie_p0c0_labels.tif").is_file() and (out / "movie_p1c0_labels.tif").is_file()


def test_an_experiment_saved_folder_by_folder_keeps_each_wells_results(
    tmp_path, tiny_model_dir, capsys
):
    """Wells or positions in folders of their own, the same file names in each: each image's
    results are named after its folder too, and earlier results inside are not inputs."""
    exp = tmp_path / "exp"
    for k, well in enumerate(["A01", "A02"]):
        (exp / well).mkdir(parents=True)
        cv2.imwrite(str(exp / well / "img1.png"), textured((64, 80), 60 + k))
    cv2.imwrite(str(exp / "A02" / "img2.png"), textured((64, 80), 70))
    for plate in ("p1", "p2"):  # the same well name on two plates
        (exp / plate / "B03").mkdir(parents=True)
        cv2.imwrite(str(exp / plate / "B03" / "img1.png"), textured((64, 80), 80))
    assert segment([exp / "A01", "--out", exp / "A01" / "results"], tiny_model_dir) == 0
    assert (exp / "A01" / "results" / "run.json").is_file()
    capsys.readouterr()
    out = tmp_path / "out"
    assert segment([exp, "--recursive", "--out", out], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "4 image(s) share a file name with one in another folder" in err
    assert "A01/img1.png -> A01_img1_labels.tif" in err
    names = [r["Image"] for r in read_csv(out / "summary.csv")]
    assert names == [
        "A01_img1.png",
        "A02_img1.png",
        "img2.png",
        "p1_B03_img1.png",
        "p2_B03_img1.png",
    ]
    for name in names:
        assert (out / f"{Path(name).stem}_labels.tif").is_file()
    rows = read_csv(out / "summary.csv")
    assert rows[0]["Path"] == str((exp / "A01" / "img1.png").resolve())
    # Run again the same way, it is recognised and continued; the names are the same.
    (out / "A02_img1_cells.csv").unlink()
    assert segment([exp, "--recursive", "--out", out, "--resume"], tiny_model_dir) == 0
    assert "done    A02_img1.png" in capsys.readouterr().err


def test_a_multi_channel_file_gets_every_channels_intensity_per_cell(tmp_path, tiny_model_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    two = np.stack([textured((96, 128), 60), textured((96, 128), 61)]).astype(np.uint16) * 100
    tifffile.imwrite(folder / "two.tif", two, imagej=True, metadata={"axes": "CYX"})
    cv2.imwrite(str(folder / "one.png"), textured((96, 128), 62))
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    labels = tifffile.imread(out / "two_labels.tif")
    cells = read_csv(out / "two_cells.csv")
    assert len(cells) == labels.max() > 0
    for c in range(2):
        expected = [two[c][labels == k].mean() for k in range(1, len(cells) + 1)]
        got = [float(r[f"Intensity_MeanIntensity_C{c}"]) for r in cells]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    # cells.csv holds both images' cells; the single-channel image has no channel columns.
    rows = read_csv(out / "cells.csv")
    assert {r["Image"] for r in rows} == {"one.png", "two.tif"}
    assert all(r["Intensity_MeanIntensity_C1"] == "" for r in rows if r["Image"] == "one.png")
    assert all(r["Intensity_MeanIntensity_C1"] != "" for r in rows if r["Image"] == "two.tif")


def test_the_blue_of_a_colour_composite_is_segmented_with_channel_3(tmp_path, tiny_model_dir):
    """Nuclei in blue, another stain in green: --channel 3 segments the blue alone, as if it
    were a file of its own, and measures all four of the file's channels in each cell; a grey
    file beside it (one channel) is segmented on its one channel."""
    blue = textured((96, 128), 63)
    green = textured((96, 128), 64)
    composite = np.dstack([np.zeros_like(blue), green, blue])
    cv2.imwrite(str(tmp_path / "composite.png"), composite[..., ::-1])
    cv2.imwrite(str(tmp_path / "blue.png"), blue)
    out = tmp_path / "out"
    assert (
        segment(
            [tmp_path / "composite.png", tmp_path / "blue.png", "--out", out, "--channel", "3"],
            tiny_model_dir,
        )
        == 0
    )
    alone = tmp_path / "alone"
    assert segment([tmp_path / "blue.png", "--out", alone], tiny_model_dir) == 0
    labels = tifffile.imread(out / "composite_labels.tif")
    np.testing.assert_array_equal(labels, tifffile.imread(alone / "blue_labels.tif"))
    np.testing.assert_array_equal(labels, tifffile.imread(out / "blue_labels.tif"))
    cells = read_csv(out / "composite_cells.csv")
    assert len(cells) == labels.max() > 0
    grey = np.rint(composite @ [0.299, 0.587, 0.114])
    for c, plane in enumerate((grey, composite[..., 0], green, blue)):
        expected = [plane[labels == k].mean() for k in range(1, len(cells) + 1)]
        got = [float(r[f"Intensity_MeanIntensity_C{c}"]) for r in cells]
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_edge_fraction_reaches_the_run_record_and_bad_values_are_refused(
    inputs, tmp_path, tiny_model_dir, capsys
):
    out = tmp_path / "out"
    args = [inputs / "good1.png", "--out", out, "--edge-fraction", "0.5"]
    assert segment(args, tiny_model_dir) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["edge_fraction"] == 0.5
    diameter = run["resolved"]["diameter_px"]
    assert run["resolved"]["edge_min_size"] == round(0.5 * np.pi * diameter**2 / 4)
    with pytest.raises(SystemExit):
        segment(
            [inputs / "good1.png", "--out", tmp_path / "x", "--edge-fraction", "1.5"],
            tiny_model_dir,
        )
    assert "--edge-fraction: must lie between 0 and 1, got 1.5" in capsys.readouterr().err


def test_a_threshold_of_one_and_a_diameter_no_cell_fits_are_said(
    inputs, tmp_path, tiny_model_dir, capsys
):
    """--threshold 1 is refused saying 0 and 1 themselves are not thresholds (it said "must
    lie between 0 and 1, got 1"); a diameter wider than the image (5000 for 50 px cells: an
    area?) fails the image, saying so, where it was a run of 0 cells and exit 0; one as wide
    as the image's longer side is segmented."""
    with pytest.raises(SystemExit):
        segment([inputs / "good1.png", "--out", tmp_path / "x", "--threshold", "1"], tiny_model_dir)
    assert "--threshold: must lie between 0 and 1, not either, got 1" in capsys.readouterr().err
    h, w = cv2.imread(str(inputs / "good1.png")).shape[:2]
    args = [inputs / "good1.png", "--out", tmp_path / "big", "--diameter", "5000"]
    assert segment(args, tiny_model_dir) == 1
    assert f"good1.png: at a cell diameter of 5000 px no cell fits in its {w} x {h} pixels" in (
        capsys.readouterr().err
    )
    args = [inputs / "good1.png", "--out", tmp_path / "wide", "--diameter", str(max(h, w))]
    assert segment(args, tiny_model_dir) == 0


SAMPLE = ROOT / "resources" / "samples" / "c2c12_0006_crop512.png"


def test_points_outline_the_cells_a_user_clicked(tmp_path, phase_model_dir, capsys):
    """--points: a Fiji Multi-point table of the detected centres, one left out, gives back
    the same cells less that one; the rest of the pipeline is the one detection uses."""
    found = tmp_path / "found"
    assert main(["segment", str(SAMPLE), "--out", str(found), "--quiet"]) == 0
    rows = read_csv(found / "c2c12_0006_crop512_cells.csv")
    xy = [(float(r["Detection_Center_X"]), float(r["Detection_Center_Y"])) for r in rows]
    left_out = len(xy) // 2
    table = tmp_path / "Results.csv"  # Analyze > Measure on a multi-point selection
    table.write_text(
        " ,Area,Mean,X,Y\n"
        + "".join(
            f"{k + 1},0,128,{x:.4f},{y:.4f}\n" for k, (x, y) in enumerate(xy) if k != left_out
        )
    )
    given = tmp_path / "given"
    code = main(["segment", str(SAMPLE), "--out", str(given), "--points", str(table), "--quiet"])
    assert code == 0
    a = tifffile.imread(found / "c2c12_0006_crop512_labels.tif")
    b = tifffile.imread(given / "c2c12_0006_crop512_labels.tif")
    assert b.max() == a.max() - 1
    kept = (a > 0) & (a != left_out + 1)
    renumbered = np.where(a > left_out + 1, a - 1, a)
    assert (b[kept] == renumbered[kept]).mean() > 0.99
    assert json.loads((given / "run.json").read_text())["centres"] == "points file"
    assert json.loads((found / "run.json").read_text())["centres"] == "network"
    # points that give no cell (here every cell smaller than the smallest allowed) are said
    none = tmp_path / "none"
    argv = ["segment", str(SAMPLE), "--out", str(none), "--points", str(table)]
    assert main([*argv, "--min-size", "1000000"]) == 0
    n = len(xy) - 1
    x, y = next(p for k, p in enumerate(xy) if k != left_out)
    said = capsys.readouterr().err
    assert f"{n} of its {n} points gave no cell (x {x:.0f}, y {y:.0f}; " in said
    assert f"and {n - 3} more: nothing there to outline, or left out by the size" in said
    # a cell clicked twice (0.7 px apart): said so, not "nothing there to outline"
    x, y = xy[0]
    twice = tmp_path / "twice.csv"
    twice.write_text(f"x,y\n{x},{y}\n{x + 0.5},{y + 0.5}\n")
    argv = ["segment", str(SAMPLE), "--out", str(tmp_path / "twice"), "--points", str(twice)]
    assert main(argv) == 0
    said = capsys.readouterr().err
    assert "1 of its 2 points lie within 2 px of another (the same cell clicked twice)" in said
    assert "gave no cell" not in said


@pytest.mark.parametrize("workers", ["1", "2"])  # here; in worker processes
def test_points_for_a_batch_name_their_images(tmp_path, phase_model_dir, capsys, workers):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = cv2.imread(str(SAMPLE), cv2.IMREAD_UNCHANGED)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), pixels[:256, :256])
    points = tmp_path / "points.csv"
    points.write_text("image,x,y\na.png,100,120\na.png,30,40\n")  # nothing for b.png
    out = tmp_path / "out"
    args = ["segment", str(folder), "--out", str(out), "--points", str(points)]
    assert main([*args, "--workers", workers]) == 1
    err = capsys.readouterr().err
    assert "b.png: the points file gives no cell centres for b.png" in err
    assert (out / "a_labels.tif").exists() and not (out / "b_labels.tif").exists()
    assert tifffile.imread(out / "a_labels.tif").max() <= 2


def test_points_for_wells_of_one_file_name_go_by_folder(tmp_path, phase_model_dir, capsys):
    """An experiment saved well by well (A01/a.png, A02/a.png, A03/a.png): a points file
    names each image by its path or by its results' name, and a bare ``a.png`` - which
    of the three it meant cannot be known - fails with a message saying how to name it."""
    pixels = cv2.imread(str(SAMPLE), cv2.IMREAD_UNCHANGED)
    for well in ("A01", "A02", "A03"):
        (tmp_path / "in" / well).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "in" / well / "a.png"), pixels[:256, :256])
    found = tmp_path / "found"
    assert main(["segment", str(tmp_path / "in" / "A01" / "a.png"), "--out", str(found)]) == 0
    xy = [
        (row["Detection_Center_X"], row["Detection_Center_Y"])
        for row in read_csv(found / "a_cells.csv")[:3]
    ]
    assert len(xy) == 3
    points = tmp_path / "points.csv"
    points.write_text(
        "image,x,y\n"
        + "".join(f"A01/a.png,{x},{y}\n" for x, y in xy[:1])  # by its path
        + "".join(f"in\\A02\\a.png,{x},{y}\n" for x, y in xy[:2])  # Windows', two folders
        + "".join(f"A03_a.png,{x},{y}\n" for x, y in xy)  # as its results are named
    )
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "in"), "--recursive", "--out", str(out), "--quiet"]
    assert main([*args, "--points", str(points)]) == 0
    cells = {w: tifffile.imread(out / f"{w}_a_labels.tif").max() for w in ("A01", "A02", "A03")}
    assert cells == {"A01": 1, "A02": 2, "A03": 3}
    capsys.readouterr()

    points.write_text("image,x,y\na.png,100,120\n")
    assert main([*args, "--points", str(points), "--out", str(tmp_path / "bare")]) == 1
    err = capsys.readouterr().err
    for well in ("A01", "A02", "A03"):
        assert (
            f"the points file names a.png, the name of images in 3 folders; name this one by "
            f"its folder ({well}/a.png) or as its results are named ({well}_a.png)"
        ) in err
    assert not list((tmp_path / "bare").glob("*_labels.tif"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,y\n10,abc\n", "line 2: y is not a number: 'abc'"),
        ("x,y\n10\n", "line 2: expected 2 columns, got 1"),
        ("x,y\n10,20\n", "x,y without an image column fits one image, not 2"),
    ],
)
def test_a_points_file_that_cannot_be_used_stops_before_anything_runs(
    inputs, tmp_path, tiny_model_dir, capsys, text, message
):
    points = tmp_path / "points.csv"
    points.write_text(text)
    goods = [inputs / "good1.png", inputs / "good2.tif"]
    code = segment([*goods, "--out", tmp_path / "out", "--points", points], tiny_model_dir)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{points}: " in err and message in err
    assert not (tmp_path / "out").exists()


def test_a_cell_table_given_back_as_points_gives_the_same_cells(tmp_path, phase_model_dir):
    """cellprop's own cells.csv (Image, Detection_Center_X/Y) reads as a points file: an
    exported (e.g. corrected) result can be outlined again, with other settings."""
    first = tmp_path / "first"
    assert main(["segment", str(SAMPLE), "--out", str(first), "--quiet"]) == 0
    again = tmp_path / "again"
    args = ["segment", str(SAMPLE), "--out", str(again), "--quiet"]
    assert main([*args, "--points", str(first / "cells.csv")]) == 0
    np.testing.assert_array_equal(
        tifffile.imread(first / "c2c12_0006_crop512_labels.tif"),
        tifffile.imread(again / "c2c12_0006_crop512_labels.tif"),
    )


def test_points_outside_the_image_fail_it_by_name(tmp_path, phase_model_dir, capsys):
    points = tmp_path / "points.csv"
    points.write_text("x,y\n100,120\n600,40\n")  # the sample is 512 x 512
    out = tmp_path / "out"
    code = main(["segment", str(SAMPLE), "--out", str(out), "--points", str(points)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{SAMPLE}: 1 of its 2 points lie outside the image (512 x 512 pixels)" in err
    assert not (out / "c2c12_0006_crop512_labels.tif").exists()


@pytest.fixture()
def green_model_dir(tmp_path, phase_model_dir):
    """The shipped phase model as if trained with `cellprop-train --channel 1` (the cells in
    the second channel of their files, a reporter in the first)."""
    folder = tmp_path / "models" / "phase-c1"
    shutil.copytree(phase_model_dir, folder)
    info = json.loads((folder / "model.json").read_text())
    info["name"] = "phase-c1"
    info["training"]["channel"] = 1
    (folder / "model.json").write_text(json.dumps(info))
    return folder


def test_a_model_trained_on_a_channel_segments_that_channel_unless_told(
    tmp_path, green_model_dir, capsys, monkeypatch
):
    """A model records the channel it was trained on; `cellprop segment` reads that channel
    of each file without --channel (and says so), as `--channel 1` with the same network;
    --channel still chooses; `cellprop models` tells it."""
    cells = cv2.imread(str(ROOT / "resources/samples/c2c12_0006_crop512.png"), 0)[:256, :256]
    folder = tmp_path / "in"
    folder.mkdir()
    two = np.stack([np.full_like(cells, 9), cells])  # a flat reporter, the cells
    tifffile.imwrite(folder / "two.tif", two, imagej=True, metadata={"axes": "CYX"})
    common = ["--device", "cpu", "--quiet", "--workers", "1"]

    def run(*args):
        return main(["segment", *map(str, args), *common])

    own, told = tmp_path / "own", tmp_path / "told"
    capsys.readouterr()
    assert run(folder, "--model", green_model_dir, "--out", own) == 0
    assert "1 image(s), channel 1 (the model's; --channel to choose another)" in (
        capsys.readouterr().err
    )
    phase = green_model_dir.parent.parent / "phase"  # the same network, told the channel
    shutil.copytree(ROOT / "resources/models/phase", phase)
    assert run(folder, "--model", phase, "--out", told, "--channel", 1) == 0
    # a folder of the user's named as a shipped model: its line says which folder it is
    assert f"cellprop: model phase ({phase}) on CPU" in capsys.readouterr().err
    labels = tifffile.imread(own / "two_labels.tif")
    assert labels.max() >= 5
    np.testing.assert_array_equal(labels, tifffile.imread(told / "two_labels.tif"))
    assert json.loads((own / "run.json").read_text())["channel"] == 1
    # --channel 0 segments the flat reporter: no cells in it
    flat = tmp_path / "flat"
    assert run(folder, "--model", green_model_dir, "--out", flat, "--channel", 0) == 0
    assert tifffile.imread(flat / "two_labels.tif").max() == 0
    # A file of one channel has nothing else to give: it is segmented, saying so (as the
    # window shows it); a channel a file of several lacks fails it by name, the rest goes on.
    cv2.imwrite(str(folder / "grey.png"), cells)
    again = tmp_path / "again"
    assert run(folder, "--model", green_model_dir, "--out", again) == 0
    err = capsys.readouterr().err
    assert "grey.png" in err and "a file of one channel: segmented it, not channel 1" in err
    np.testing.assert_array_equal(tifffile.imread(again / "grey_labels.tif"), labels)
    assert (again / "two_labels.tif").is_file()
    beyond = tmp_path / "beyond"
    assert run(folder, "--model", green_model_dir, "--out", beyond, "--channel", 2) == 1
    err = capsys.readouterr().err
    assert "two.tif: channel 2 does not exist (the file has 2)" in err
    assert (beyond / "grey_labels.tif").is_file() and not (beyond / "two_labels.tif").exists()
    monkeypatch.setenv("CELLPROP_MODEL_PATH", str(green_model_dir.parent))
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    facts = listed[re.search(r"^phase-c1 ", listed, re.MULTILINE).start() :].splitlines()[1]
    assert facts.endswith("segments channel 1 of a file unless told otherwise")


def test_links_mended_by_hand_are_kept_when_a_followed_run_is_continued(tmp_path, phase_model_dir):
    """A time-lapse followed by a run, one link mended by hand and exported into the run's
    folder (what the window's *Cell Before* and *Export all* write), then a time point added
    and the run continued: the kept images' links are the mended ones, not linked over."""
    from cellprop.engine import links_from_tables, measure_tracks, number_tracks, relink
    from cellprop.engine.output import read_table, write_table

    folder, out = tmp_path / "movie", tmp_path / "out"
    folder.mkdir()
    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))
    for path in shipped[:3]:
        shutil.copy(path, folder / path.name)
    common = ["--model", phase_model_dir, "--device", "cpu", "--quiet", "--track", "--out", out]

    def run(*more):
        return main(["segment", str(folder), *map(str, common), *more])

    assert run() == 0
    names = [p.name for p in shipped[:3]]
    tables = [read_table(out / f"{Path(n).stem}_cells.csv") for n in names]
    links = links_from_tables(tables)
    source = links[1].source.tolist()
    a = 1 + next(k for k, s in enumerate(source) if s)
    b = 1 + next(k for k, s in enumerate(source) if s and s != source[a - 1])
    links[1] = relink(links[1], a, source[b - 1], len(tables[0]))  # a said to be b's sister
    measure_tracks(number_tracks(links), tables)
    for name, table in zip(names, tables, strict=True):
        write_table(out / f"{Path(name).stem}_cells.csv", table, overwrite=True)
    mended = tables[1].columns["TrackObjects_ParentObjectNumber"].tolist()
    assert mended != source and mended[a - 1] == source[b - 1]
    shutil.copy(shipped[3], folder / shipped[3].name)  # a time point more
    assert run("--resume") == 0
    now = [read_table(out / f"t00{t}_cells.csv") for t in range(4)]
    assert now[1].columns["TrackObjects_ParentObjectNumber"].tolist() == mended
    tracks = now[1].columns["TrackObjects_Label"]
    daughters = {int(tracks[a - 1]), int(tracks[b - 1])}
    rows = list(csv.DictReader(open(out / "tracks.csv", encoding="utf-8")))
    mother = int(now[0].columns["TrackObjects_Label"][source[b - 1] - 1])
    assert {int(r["Parent"]) for r in rows if int(r["Track"]) in daughters} == {mother}
    assert now[3].columns["TrackObjects_ParentObjectNumber"].astype(bool).sum() >= 40
    # a run replaced (--overwrite) follows the cells anew: the link as the labels say
    assert run("--overwrite") == 0
    again = read_table(out / "t001_cells.csv").columns["TrackObjects_ParentObjectNumber"]
    assert again.tolist() == source


def test_a_cell_said_to_have_come_in_after_an_empty_time_point_stays_so_when_continued(
    tmp_path, phase_model_dir
):
    """A time point with no cells (a blank frame), and after it a cell said by hand to have
    come in (ParentObjectNumber 0, GapLength -1): continued with --track, it stays new (the
    gap closed to the cells before the blank frame made every link of the time point read as
    a typing error, and the mend was lost)."""
    folder = tmp_path / "lapse"
    folder.mkdir()
    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))[:4]
    for k, path in enumerate(shipped):
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:256, :256]
        if k == 1:
            frame = np.full_like(frame, int(np.median(frame)))
        cv2.imwrite(str(folder / f"t00{k}.png"), frame)
    base = [str(folder), "--model", str(phase_model_dir), "--track", "--quiet"]
    out = tmp_path / "out"
    assert main(["segment", *base, "--out", str(out)]) == 0
    assert not read_csv(out / "t001_cells.csv")
    path = out / "t002_cells.csv"
    rows = read_csv(path)
    gap = [r for r in rows if r["TrackObjects_GapLength"] == "2"]
    assert gap, "no gap closed across the blank frame"
    gap[0]["TrackObjects_ParentObjectNumber"], gap[0]["TrackObjects_GapLength"] = "0", "-1"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["segment", *base, "--out", str(out), "--resume"]) == 0
    again = {r["ObjectNumber"]: r for r in read_csv(path)}[gap[0]["ObjectNumber"]]
    assert (again["TrackObjects_ParentObjectNumber"], again["TrackObjects_GapLength"]) == (
        "0",
        "-1",
    )
    others = [r for r in read_csv(path) if r["ObjectNumber"] != gap[0]["ObjectNumber"]]
    assert any(r["TrackObjects_GapLength"] == "2" for r in others)  # the other gaps closed


def test_a_mend_typed_wrong_in_a_table_leaves_the_others_of_its_time_point_mended(
    tmp_path, phase_model_dir
):
    """Two links typed into a time point's table, one of them wrong (a cell number the time
    point before has not): continued with --track, the right one stays mended, the wrong
    cell is linked as the labels say, and summary.csv's note names it (both were dropped,
    nothing said)."""
    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))[:4]
    base = [*map(str, shipped), "--model", str(phase_model_dir), "--track", "--quiet"]
    out = tmp_path / "out"
    assert main(["segment", *base, "--out", str(out)]) == 0
    path = out / "t002_cells.csv"
    rows = read_csv(path)
    as_run = rows[5]["TrackObjects_ParentObjectNumber"]
    was = rows[0]["TrackObjects_ParentObjectNumber"]
    mended = next(r for r in read_csv(out / "t001_cells.csv") if r["ObjectNumber"] != was)
    rows[0]["TrackObjects_ParentObjectNumber"] = mended["ObjectNumber"]  # another cell before
    rows[0]["TrackObjects_GapLength"] = "1"
    rows[5]["TrackObjects_ParentObjectNumber"] = "4700"  # typed wrong
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["segment", *base, "--out", str(out), "--resume"]) == 0
    again = read_csv(path)
    assert again[0]["TrackObjects_ParentObjectNumber"] == mended["ObjectNumber"]
    assert again[5]["TrackObjects_ParentObjectNumber"] == as_run
    note = {r["Image"]: r["Note"] for r in read_csv(out / "summary.csv")}["t002.png"]
    assert "cell(s) 6 a cell before that t001.png has not" in note


def test_a_followed_run_continued_with_a_pixel_size_is_measured_again_not_segmented(
    tmp_path, phase_model_dir, capsys
):
    """A pixel size forgotten: the run continued with it measures the cells it kept again
    in micrometres, their labels as they are and nothing segmented again, and its tables and
    tracks are those a run given the pixel size from the start writes; a link mended by hand
    in a table stays mended. A threshold changed is still refused."""
    from cellprop.engine import read_image

    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))[:4]
    base = [*map(str, shipped), "--model", str(phase_model_dir), "--track", "--quiet"]
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert main(["segment", *base, "--out", str(out)]) == 0
    assert main(["segment", *base, "--out", str(fresh), "--pixel-size", "0.5"]) == 0
    overlay = (out / "t002_overlay.png").read_bytes()
    labels = tifffile.imread(out / "t002_labels.tif")
    capsys.readouterr()
    assert main(["segment", *base, "--out", str(out), "--resume", "--pixel-size", "0.5"]) == 0
    said = capsys.readouterr().err
    assert "4/4 image(s) done (4 by the earlier run)" in said
    assert "measured again, pixel size: the file's there, 0.5 now" in said
    for name in ["cells.csv", "images.csv", "tracks.csv", *(f"t00{k}_cells.csv" for k in range(4))]:
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    assert "AreaShape_Area_um2" in read_csv(out / "cells.csv")[0]
    np.testing.assert_array_equal(tifffile.imread(out / "t002_labels.tif"), labels)
    assert read_image(out / "t002_labels.tif").pixel_size == pytest.approx(0.5)
    assert (out / "t002_overlay.png").read_bytes() == overlay
    record = json.loads((out / "run.json").read_text())
    assert record["settings"]["pixel_size"] == record["resolved"]["pixel_size"] == 0.5

    # A link mended in a table (two cells from one: a division) holds through another one.
    path = out / "t001_cells.csv"
    rows = read_csv(path)
    rows[4]["TrackObjects_ParentObjectNumber"] = rows[6]["TrackObjects_ParentObjectNumber"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["segment", *base, "--out", str(out), "--resume", "--pixel-size", "0.25"]) == 0
    assert "tracks followed (1 division(s);" in capsys.readouterr().err
    after = read_csv(path)
    assert after[4]["TrackObjects_ParentObjectNumber"] == rows[6]["TrackObjects_ParentObjectNumber"]
    area = [float(r["AreaShape_Area_um2"]) for r in after]
    assert area == pytest.approx([float(r["AreaShape_Area_um2"]) / 4 for r in rows])
    assert main(["segment", *base, "--out", str(out), "--resume", "--threshold", "0.4"]) == 2
    assert "detection threshold" in capsys.readouterr().err


def test_roi_sets_asked_when_a_run_is_continued_are_written_for_the_images_it_kept(
    tmp_path, phase_model_dir, capsys
):
    """--roi forgotten: the run continued with it writes each kept image's ROI set from its
    labels, the same files as a run with --roi from the start, and records it; the other way
    round (ROI sets there, none asked) is refused, as the folder would mix both."""
    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))[:2]
    base = [*map(str, shipped), "--model", str(phase_model_dir), "--quiet"]
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert main(["segment", *base, "--out", str(out)]) == 0
    assert not list(out.glob("*_rois.zip"))
    assert main(["segment", *base, "--out", str(fresh), "--roi"]) == 0
    labels = (out / "t001_labels.tif").read_bytes()
    assert main(["segment", *base, "--out", str(out), "--resume", "--roi"]) == 0
    for name in ("t000_rois.zip", "t001_rois.zip"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    assert (out / "t001_labels.tif").read_bytes() == labels  # kept, not written again
    assert json.loads((out / "run.json").read_text())["roi"] is True
    capsys.readouterr()
    assert main(["segment", *base, "--out", str(fresh), "--resume"]) == 2
    assert "ImageJ ROI sets: yes there, no now" in capsys.readouterr().err


def test_a_link_typed_into_a_cells_csv_is_followed_when_the_run_is_continued(
    tmp_path, phase_model_dir, capsys
):
    """The command line's way to mend a link: the cell before typed into an image's
    _cells.csv (a spreadsheet), the run continued: that cell and the one already following
    the same cell are its daughters, and tracks.csv says so."""
    shipped = sorted((ROOT / "resources/samples/c2c12-timelapse").glob("t*.png"))[:3]
    out = tmp_path / "out"
    args = [*shipped, "--model", phase_model_dir, "--device", "cpu", "--track", "--out", out]
    assert main(["segment", *map(str, args), "--quiet"]) == 0
    path = out / "t001_cells.csv"

    def save(rows: list) -> None:  # as a spreadsheet saves it
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    rows = read_csv(path)
    a, b = rows[4], rows[6]
    a["TrackObjects_ParentObjectNumber"] = b["TrackObjects_ParentObjectNumber"]
    save(rows)
    capsys.readouterr()
    assert main(["segment", *map(str, args), "--quiet", "--resume"]) == 0
    assert "tracks followed (1 division(s);" in capsys.readouterr().err
    after = read_csv(path)
    mother = int(b["TrackObjects_ParentObjectNumber"])
    assert [int(after[k]["TrackObjects_ParentObjectNumber"]) for k in (4, 6)] == [mother] * 2
    mother_track = read_csv(out / "t000_cells.csv")[mother - 1]["TrackObjects_Label"]
    daughters = {after[k]["TrackObjects_Label"] for k in (4, 6)}
    parents = {r["Parent"] for r in read_csv(out / "tracks.csv") if r["Track"] in daughters}
    assert len(daughters) == 2 and parents == {mother_track}
    # a cell before that is none (a typing error): that cell linked as its labels say, not
    # cut off from its track, and the division mended beside it kept (it was dropped too)
    after[0]["TrackObjects_ParentObjectNumber"] = "999"
    save(after)
    assert main(["segment", *map(str, args), "--quiet", "--resume"]) == 0
    assert "tracks followed (1 division(s);" in capsys.readouterr().err
    linked = [int(r["TrackObjects_ParentObjectNumber"]) for r in read_csv(path)]
    assert [linked[k] for k in (4, 6)] == [mother] * 2
    assert 0 < linked[0] <= len(read_csv(out / "t000_cells.csv"))
    assert sum(s > 0 for s in linked) >= 0.9 * len(linked)


def test_a_ring_around_each_cell_from_the_command_line(tmp_path, phase_model_dir, capsys):
    """``--ring 4``: each cell's ring of 4 px measured (its area, the image's intensity there
    and the cell's over it), in the run's images.csv too, and with ``--roi`` written as
    ROIs after the cells'; continued without it, the cells are measured again without a
    ring (the ROIs without rings), their labels as they were."""
    sample = ROOT / "resources/samples/c2c12_0006_crop512.png"
    out = tmp_path / "ring"
    argv = ["segment", str(sample), "--model", str(phase_model_dir), "-q", "--out", str(out)]
    argv.append("--roi")
    assert main([*argv, "--ring", "4"]) == 0
    cells = read_csv(out / "c2c12_0006_crop512_cells.csv")
    assert len(cells) > 40
    area = [float(c["Ring_AreaShape_Area"]) for c in cells]
    assert all(a >= 0 for a in area) and np.median(area) > 10  # cells in a colony: small rings
    # phase contrast: the halo around a cell is brighter than the cell
    ratios = [
        float(c["Ring_Intensity_CellToRingRatio"])
        for c in cells
        if float(c["Ring_AreaShape_Area"]) > 0
    ]
    assert len(ratios) > 30 and np.median(ratios) < 1
    for c in cells:
        if float(c["Ring_AreaShape_Area"]):
            mean = float(c["Ring_Intensity_MeanIntensity"])
            assert float(c["Ring_Intensity_IntegratedIntensity"]) == pytest.approx(
                mean * float(c["Ring_AreaShape_Area"])
            )
    assert "Mean_Cells_Ring_Intensity_MeanIntensity" in read_csv(out / "images.csv")[0]
    assert json.loads((out / "run.json").read_text())["settings"]["ring_width"] == 4
    labels = tifffile.imread(out / "c2c12_0006_crop512_labels.tif")

    def ring_pixels():  # the overlay's cyan: the rings' outer edges
        bgr = cv2.imread(str(out / "c2c12_0006_crop512_overlay.png"))
        return int((bgr == (255, 200, 0)).all(axis=2).sum())

    assert ring_pixels() > 20 * len(cells)
    rois = out / "c2c12_0006_crop512_rois.zip"
    around = masks_from_rois(rois, labels.shape, "ring")
    np.testing.assert_array_equal(around, rings(labels, 4))
    np.testing.assert_array_equal(masks_from_rois(rois, labels.shape), labels)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "measured again, ring around each cell: 4 px there, none now" in capsys.readouterr().err
    assert not any(n.startswith("Ring_") for n in read_csv(out / "c2c12_0006_crop512_cells.csv")[0])
    assert ring_pixels() == 0  # the overlay drawn again as the cells are measured now
    assert not masks_from_rois(rois, labels.shape, "ring").any()  # and the ROIs written again
    # the ring again, and the cells followed: the overlay numbered by track keeps the rings
    assert main([*argv, "--ring", "4", "--track", "--resume"]) == 0
    assert "TrackObjects_Label" in read_csv(out / "c2c12_0006_crop512_cells.csv")[0]
    assert ring_pixels() > 20 * len(cells)
    np.testing.assert_array_equal(masks_from_rois(rois, labels.shape, "ring"), around)
    np.testing.assert_array_equal(tifffile.imread(out / "c2c12_0006_crop512_labels.tif"), labels)
    with pytest.raises(SystemExit):
        main([*argv, "--ring", "-2"])


def test_an_image_named_otherwise_than_utf8_is_segmented_and_kept_on_resume(
    tmp_path, tiny_model_dir, monkeypatch
):
    """A file name of Latin-1 bytes (copied from an old disk or share: ``caf\\xe9.png``) is
    written in the tables as ``caf?.png``, as ``ls`` shows it, every table UTF-8; writing it
    stopped the batch with a UnicodeEncodeError, no cells.csv written and the images after
    it left, and --resume stopped alike. Continuing the run keeps it as done."""
    folder = _three_images(tmp_path)
    odd = os.fsdecode(b"caf\xe9.png")
    try:
        shutil.copy(folder / "frame1.png", folder / odd)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    # Python's own stderr writes such a name escaped (backslashreplace); pytest's capture is strict
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    monkeypatch.setattr(sys, "stderr", err)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    rows = read_csv(out / "summary.csv")
    assert sorted(r["Image"] for r in rows) == ["caf?.png", *(f"frame{k}.png" for k in range(3))]
    assert all(r["Status"] == "done" for r in rows)
    cells = read_csv(out / "cells.csv")
    assert {r["Image"] for r in cells} >= {"caf?.png", "frame2.png"}
    assert json.loads((out / "run.json").read_text())["state"] == "finished"
    labels = out / os.fsdecode(b"caf\xe9_labels.tif")
    made = labels.stat().st_mtime_ns
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    err.flush()
    said = err.buffer.getvalue().decode()
    assert "kept    caf\\udce9.png" in said and "(4 by the earlier run)" in said
    assert labels.stat().st_mtime_ns == made  # kept, not segmented again
    assert [r["Image"] for r in read_csv(out / "summary.csv")] == [r["Image"] for r in rows]
    # continued over the other images alone, or opened again: its image found by its own name
    assert segment([folder / "frame0.png", "--out", out, "--resume"], tiny_model_dir) == 0
    assert labels.stat().st_mtime_ns == made
    assert [r["Status"] for r in read_csv(out / "summary.csv")] == ["done"] * 4
    from cellprop.engine import saved_results

    _, results, problems = saved_results(out)
    assert not problems and odd in [r.name for r in results if r.status == "done"]
    # its cells.csv rows (caf?.png) fed back as points outline it again (it had none)
    again = tmp_path / "again"
    assert segment([folder, "--out", again, "--points", out / "cells.csv"], tiny_model_dir) == 0
    assert [r["Status"] for r in read_csv(again / "summary.csv")] == ["done"] * 4


@pytest.mark.parametrize(
    ("names", "several"),
    [
        (["t8", "t9", "t10"], False),
        (["img_001_ch1", "img_002_ch1", "img_003_ch1"], False),  # one number changes
        (["2026-12-04_frame1", "2026-12-04_frame2"], False),
        (["posA_t0", "posA_t1", "posB_t0", "posB_t1"], True),  # other letters
        (["XY01_T001", "XY01_T002", "XY02_T001", "XY02_T002"], True),  # two numbers change
        (["t001_z01", "t001_z02", "t002_z01"], True),
        (["t000"], False),
    ],
)
def test_names_of_several_series_in_one_folder_are_told(names, several):
    from cellprop.engine.batch import several_series

    assert several_series(names) is several


def test_a_folder_of_several_positions_followed_as_one_says_so(tmp_path, tiny_model_dir, capsys):
    """Two positions' time points saved side by side in one folder (XY01_T1, XY02_T1, as
    microscopes export them): followed as one time-lapse, as the README says, with a word
    that the tracks run from one position into the next (nothing was said); one position's
    folder is followed without it."""
    folder = tmp_path / "export"
    folder.mkdir()
    for xy in (1, 2):
        for t in range(2):
            cv2.imwrite(str(folder / f"XY0{xy}_T{t}.png"), textured((96, 128), 10 * xy + t))
    assert segment([folder, "--out", tmp_path / "both", "--track"], tiny_model_dir) == 0
    err = capsys.readouterr().err
    assert "export (XY01_T0.png ... XY02_T1.png) were followed as one time-lapse" in err
    for f in folder.glob("XY02_*"):
        f.unlink()
    assert segment([folder, "--out", tmp_path / "one", "--track"], tiny_model_dir) == 0
    assert "followed as one time-lapse" not in capsys.readouterr().err


def test_a_table_whose_object_number_column_was_renamed_is_kept_on_resume(tmp_path, tiny_model_dir):
    """An image's cell table edited in a spreadsheet, its ObjectNumber column renamed: a
    continued run keeps the image as it was (its labels not segmented over)."""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    table = out / "frame1_cells.csv"
    table.write_text(table.read_text().replace("ObjectNumber", "Cell", 1))
    made = (out / "frame1_labels.tif").stat().st_mtime_ns
    assert segment([folder, "--out", out, "--resume"], tiny_model_dir) == 0
    assert (out / "frame1_labels.tif").stat().st_mtime_ns == made


def test_images_written_into_a_run_are_named_as_the_run_named_them(tmp_path, tiny_model_dir):
    """engine.named_as_run: a well's image opened alone in the window and exported into the
    run of the plate goes by the run's name (A01_img.png, not img.png beside it), each
    channel only as the run read it, and an image the run does not hold keeps its own."""
    from cellprop.engine import Plane, named_as_run

    plate = tmp_path / "plate"
    for well in ("A01", "A02"):
        (plate / well).mkdir(parents=True)
        cv2.imwrite(str(plate / well / "img.png"), textured((96, 128), len(well)))
    cv2.imwrite(str(tmp_path / "other.png"), textured((96, 128), 5))
    out = tmp_path / "out"
    assert segment([plate, "-r", "--out", out], tiny_model_dir) == 0
    given = [
        Plane(plate / "A02" / "img.png", 0, "img.png"),
        Plane(tmp_path / "other.png", 0, "other.png"),
    ]
    assert [p.name for p in named_as_run(given, out, [0, 0])] == ["A02_img.png", "other.png"]
    assert [p.name for p in named_as_run(given, out, [1, 0])] == ["img.png", "other.png"]
    assert [p.name for p in named_as_run(given, tmp_path / "none")] == ["img.png", "other.png"]


def test_an_earlier_run_tells_images_of_its_names_read_from_other_files(
    tmp_path, tiny_model_dir, capsys
):
    """day1/ and day2/ hold images of the same names: a run of day1's is not a run of day2's
    images (engine EarlierRun.of_other_files, which the window asks before it offers to
    continue a run), while the same files named otherwise (../day1/a.png) are."""
    from cellprop.engine import earlier_run

    days = [tmp_path / "day1", tmp_path / "day2"]
    for day in days:
        day.mkdir()
        for name in ("a", "b"):
            cv2.imwrite(str(day / f"{name}.png"), textured((60, 80), seed=ord(name)))
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(days[0]),
                "--out",
                str(out),
                "--model",
                str(tiny_model_dir),
                "--threshold",
                "0.01",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    earlier = earlier_run(out)
    assert earlier.of_other_files({"a.png": days[1] / "a.png", "c.png": days[1] / "c.png"}) == [
        "a.png"
    ]
    roundabout = days[1] / ".." / "day1" / "b.png"
    assert earlier.of_other_files({"a.png": days[0] / "a.png", "b.png": roundabout}) == []
    # A summary written by hand with relative paths tells nothing either way.
    summary = (out / "summary.csv").read_text(encoding="utf-8")
    (out / "summary.csv").write_text(summary.replace(str(days[0]) + os.sep, ""), "utf-8")
    assert earlier_run(out).of_other_files({"a.png": days[1] / "a.png"}) == []


def test_an_image_that_cannot_be_read_on_resume_keeps_its_labels_edited_by_hand(
    tmp_path, tiny_model_dir, capsys
):
    """Continuing a run where an image it finished cannot be read any more (a copy cut
    short), after its labels were corrected by hand in Fiji: it fails, and its files stay,
    the user's labels among them. (A version of this session removed a failing image's
    earlier files on --resume, as replacing a run does; that deleted labels the user had
    edited, which the run could not tell from its own once the image was unreadable.)"""
    folder = _three_images(tmp_path)
    out = tmp_path / "out"
    assert segment([folder, "--out", out], tiny_model_dir) == 0
    labels = read_labels(out / "frame1_labels.tif")
    labels[labels == labels.max()] = 0  # one cell taken out by hand
    write_labels(out / "frame1_labels.tif", labels, overwrite=True)
    edited = (out / "frame1_labels.tif").read_bytes()
    kept = (out / "frame0_labels.tif").stat().st_mtime_ns
    (folder / "frame1.png").write_bytes(b"not a PNG any more")
    capsys.readouterr()
    argv = ["segment", str(folder), "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*argv, "--threshold", "0.01", "--resume"]) == 1  # (as segment() runs it)
    # said: the summary's "failed", its files still there, were read as a stale leftover
    said = "the earlier run finished it, and its files from then are left as they were, out of "
    said += "the tables: frame1_labels.tif, frame1_overlay.png, frame1_cells.csv"
    assert said in capsys.readouterr().err
    rows = {r["Image"]: r for r in read_csv(out / "summary.csv")}
    assert rows["frame1.png"]["Status"] == "failed" and said in rows["frame1.png"]["Error"]
    assert (out / "frame1_labels.tif").read_bytes() == edited
    assert (out / "frame0_labels.tif").stat().st_mtime_ns == kept


def test_a_diameter_with_a_model_that_gives_no_cell_size_is_refused(
    tmp_path, tiny_model_dir, capsys
):
    """A hand-made model folder whose model.json has no cell_diameter_px: --diameter is
    refused before any work (it was recorded as used, the image segmented at the model's
    own scale; then a traceback)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    info = json.loads((folder / "model.json").read_text())
    info.pop("cell_diameter_px", None)
    (folder / "model.json").write_text(json.dumps(info))
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), textured((64, 64)))
    assert segment([image, "--out", tmp_path / "out", "--diameter", "40"], folder) == 2
    assert "gives no cell_diameter_px" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert segment([image, "--out", tmp_path / "out"], folder) == 0  # without it: as ever


def test_a_page_that_fails_is_named_by_its_page(tmp_path, tiny_model_dir, capsys):
    """--page all with page 2's points off the image: its line names the page (it named
    only the file, 'movie.tif: 2 of its 2 points lie outside the image')."""
    folder = _time_lapse(tmp_path)
    points = tmp_path / "points.csv"
    points.write_text(
        "image,x,y\nmovie_p0c0.tif,20,30\nmovie_p1c0.tif,20,30\n"
        "movie_p2c0.tif,500,30\nmovie_p2c0.tif,600,30\n"
    )
    args = [folder / "movie.tif", "--out", tmp_path / "out", "--page", "all", "--points", points]
    assert segment(args, tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'movie.tif'} page 2: 2 of its 2 points lie outside the image" in err
    (row,) = [r for r in read_csv(tmp_path / "out" / "summary.csv") if r["Status"] == "failed"]
    assert row["Image"] == "movie_p2c0.tif" and "movie.tif page 2: " in row["Error"]


def test_a_time_point_missing_from_a_folder_counts_as_missed(tmp_path, tiny_model_dir, capsys):
    """t000, t001, t003 followed: t003 is time point 3, its cells' gaps 2 across the missing
    one, and the run says the names skip it (t003 was taken for the time point just after
    t001: GapLength 1, Last_Frame 2, speeds over the wrong span, nothing said)."""
    folder = tmp_path / "lapse"
    folder.mkdir()
    frame = textured((96, 128), 7)
    for t in ("000", "001", "003"):
        cv2.imwrite(str(folder / f"t{t}.png"), frame)  # the same cells at each time point
    out = tmp_path / "out"
    assert segment([folder, "--out", out, "--track"], tiny_model_dir) == 0
    assert "the names of lapse (t001.png to t003.png) skip time points" in capsys.readouterr().err
    later = read_csv(out / "t003_cells.csv")
    assert later and {r["TrackObjects_GapLength"] for r in later} == {"2"}
    assert {r["Last_Frame"] for r in read_csv(out / "tracks.csv")} == {"3"}
    # --max-gap 0 closes no gap, across a name skipped as across a time point that failed
    # (the cells were linked across the skipped name whatever --max-gap)
    assert (
        segment([folder, "--out", out, "--resume", "--track", "--max-gap", "0"], tiny_model_dir)
        == 0
    )
    later = read_csv(out / "t003_cells.csv")
    assert {r["TrackObjects_GapLength"] for r in later} == {"0"}
    assert {r["TrackObjects_ParentObjectNumber"] for r in later} == {"0"}
    # a time point whose image fails is no name skipped: the run says only that it failed
    cv2.imwrite(str(folder / "t002.png"), frame)
    (folder / "t001.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    capsys.readouterr()
    assert segment([folder, "--out", tmp_path / "o2", "--track"], tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "t001.png" in err and "skip time points" not in err


def test_a_cell_said_to_have_come_in_after_a_failed_time_point_stays_so(tmp_path, tiny_model_dir):
    """t002 damaged, so t003's cells were followed across it (a gap closed, GapLength 2);
    one said by hand to have come in (Cell Before 0, GapLength -1) stays so through
    --resume --track (its gap was closed again, the edit lost without a word)."""
    folder = tmp_path / "lapse"
    folder.mkdir()
    frame = textured((96, 128), 7)
    for t in ("000", "001", "003"):
        cv2.imwrite(str(folder / f"t{t}.png"), frame)
    (folder / "t002.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    points = tmp_path / "points.csv"
    points.write_text(
        "image,x,y\n" + "".join(f"t{t}.png,30,40\nt{t}.png,90,50\n" for t in ("000", "001", "003"))
    )
    out = tmp_path / "out"
    argv = [folder, "--out", out, "--track", "--points", points]
    assert segment(argv, tiny_model_dir) == 1  # (t002 failed)
    table = out / "t003_cells.csv"
    rows = read_csv(table)
    assert [r["TrackObjects_GapLength"] for r in rows] == ["2", "2"]
    rows[0]["TrackObjects_ParentObjectNumber"], rows[0]["TrackObjects_GapLength"] = "0", "-1"
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert segment([*argv, "--resume"], tiny_model_dir) == 1
    again = read_csv(table)
    assert (again[0]["TrackObjects_ParentObjectNumber"], again[0]["TrackObjects_GapLength"]) == (
        "0",
        "-1",
    )
    assert again[1]["TrackObjects_GapLength"] == "2"  # the other still followed across
