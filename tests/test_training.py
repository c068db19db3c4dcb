"""Training from points: targets, dataset reading, crops, metrics, and short real training runs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

torch = pytest.importorskip("torch")

from cellprop.training.augment import Augmentation, random_crop  # noqa: E402
from cellprop.training.cli import build_parser, main  # noqa: E402
from cellprop.training.data import (  # noqa: E402
    DatasetError,
    load_dataset,
    read_points_csv,
    source_channel,
)
from cellprop.training.export import load_onnx_session  # noqa: E402
from cellprop.training.metrics import detection_score, find_peaks  # noqa: E402
from cellprop.training.targets import (  # noqa: E402
    blob_diameter,
    estimate_cell_diameter,
    gaussian_targets,
)
from cellprop.training.train import (  # noqa: E402
    TrainConfig,
    auto_scale,
    split_samples,
    to_network_coordinates,
    to_original_coordinates,
    train,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CELLPROP_SHARED_DATA", REPO.parent / "shared" / "data"))
C2C12 = SHARED_DATA / "c2c12-phase"


# --- targets -------------------------------------------------------------------------------


def test_gaussian_targets_peak_at_each_centre_and_max_not_sum():
    centres = np.array([[10.0, 12.0], [16.0, 12.0], [40.0, 30.0]])
    sigma = 3.0
    m = gaussian_targets((50, 60), centres, sigma)
    assert m.dtype == np.float32 and m.shape == (50, 60)
    for x, y in centres:
        assert m[int(y), int(x)] == pytest.approx(1.0)
    # Midway between the two close centres: the larger single Gaussian, not the sum of two.
    assert m[12, 13] == pytest.approx(np.exp(-(3.0**2) / (2 * sigma**2)), rel=1e-5)
    assert m.max() <= 1.0
    # Far from every centre the map is zero.
    assert m[0, 59] < 1e-6


def test_gaussian_targets_honour_sub_pixel_centres_and_sigma():
    m = gaussian_targets((21, 21), np.array([[10.5, 10.0]]), sigma=2.0)
    assert m[10, 10] == pytest.approx(m[10, 11])
    wide = gaussian_targets((21, 21), np.array([[10.0, 10.0]]), sigma=4.0)
    narrow = gaussian_targets((21, 21), np.array([[10.0, 10.0]]), sigma=2.0)
    assert wide.sum() > 3.5 * narrow.sum()
    with pytest.raises(ValueError, match="sigma"):
        gaussian_targets((5, 5), np.zeros((1, 2)), sigma=0)


def test_cell_diameter_from_points_is_the_median_neighbour_distance():
    grid = np.stack(np.meshgrid(np.arange(5) * 12.0, np.arange(4) * 12.0), -1).reshape(-1, 2)
    assert estimate_cell_diameter([grid]) == pytest.approx(12.0)
    assert estimate_cell_diameter([grid], scale=0.5) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        estimate_cell_diameter([np.zeros((1, 2))])
    assert auto_scale(39.0) == pytest.approx(0.5)
    assert auto_scale(20.0) == pytest.approx(1.0)


def _sparse_nuclei(diameter: float, spacing: int, size: int = 240, seed: int = 0):
    """Bright discs of ``diameter`` on a noisy dark background, ``spacing`` px apart, with
    their centres (x, y): fluorescent nuclei far sparser than they are large."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    image = rng.normal(100, 8, (size, size))
    points = []
    for y in range(spacing // 2, size - diameter, spacing):
        for x in range(spacing // 2, size - diameter, spacing):
            cx, cy = x + rng.uniform(-3, 3), y + rng.uniform(-3, 3)
            image[(cols - cx) ** 2 + (rows - cy) ** 2 <= (diameter / 2) ** 2] += 900
            points.append((cx, cy))
    return np.clip(image, 0, 65535).astype(np.uint16), np.array(points)


def test_the_size_of_bright_nuclei_is_measured_at_their_centres_not_from_their_spacing():
    small, small_points = _sparse_nuclei(16, 60)
    large, large_points = _sparse_nuclei(40, 100, size=400, seed=1)
    assert estimate_cell_diameter([small_points]) == pytest.approx(60, abs=6)  # the spacing
    assert blob_diameter([(small, small_points)]) == pytest.approx(16, rel=0.15)
    assert blob_diameter([(large, large_points)]) == pytest.approx(40, rel=0.15)
    both = blob_diameter([(small, small_points), (large, large_points)])
    assert 16 * 0.85 <= both <= 40 * 1.15  # the median over every centre
    with pytest.raises(ValueError, match="at least one centre"):
        blob_diameter([(small, np.zeros((0, 2)))])


def test_coordinate_conversion_round_trips_and_follows_pixel_centres():
    points = np.array([[0.0, 0.0], [9.0, 3.5]])
    assert np.allclose(to_original_coordinates(to_network_coordinates(points, 0.5), 0.5), points)
    # Pixels 0 and 1 average into network pixel 0, whose centre is original x = 0.5.
    assert to_network_coordinates(np.array([[0.5, 0.5]]), 0.5) == pytest.approx(0.0)


# --- reading datasets ----------------------------------------------------------------------


def _blobs(shape, centres, dtype=np.uint8, peak=200):
    image = np.full(shape, 20, np.float64)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    for x, y in centres:
        image += peak * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 18.0)
    return np.clip(image, 0, np.iinfo(dtype).max).astype(dtype)


def test_reads_points_csv_layout_with_tiff_png_and_jpeg(tmp_path):
    folder = tmp_path / "cells"
    (folder / "images").mkdir(parents=True)
    tifffile.imwrite(
        folder / "images" / "a.tif", _blobs((40, 50), [(10, 10)], np.uint16), compression="zlib"
    )
    tifffile.imwrite(
        folder / "images" / "b.tiff", _blobs((40, 50), [(20, 30)], np.uint16), compression="lzw"
    )
    cv2.imwrite(str(folder / "images" / "c.png"), _blobs((30, 30), [(5, 6)]))
    cv2.imwrite(str(folder / "images" / "d.jpg"), _blobs((30, 30), [(7, 8)]))
    cv2.imwrite(str(folder / "images" / "unannotated.png"), _blobs((30, 30), []))
    (folder / "points.csv").write_text(
        "image,x,y\na.tif,10,10\na.tif,30.5,20\nb.tiff,20,30\nc.png,5,6\nd.jpg,7,8\n"
    )
    samples = load_dataset(folder)
    assert [s.name for s in samples] == [
        "cells/a.tif",
        "cells/b.tiff",
        "cells/c.png",
        "cells/d.jpg",
    ]
    assert samples[0].pixels.dtype == np.uint16
    assert samples[0].points.tolist() == [[10.0, 10.0], [30.5, 20.0]]
    assert samples[2].pixels.shape == (30, 30)


def test_the_channel_the_cells_were_clicked_on_is_read(tmp_path, capsys):
    """Cells in the blue of colour images and in the second channel of a two-channel TIFF:
    load_dataset(channel=...) reads that channel; a file without it is named."""
    folder = tmp_path / "cells"
    (folder / "images").mkdir(parents=True)
    cells = _blobs((40, 50), [(10, 10), (30, 25)])
    other = np.full_like(cells, 90)
    cv2.imwrite(str(folder / "images" / "a.png"), np.dstack([cells, np.zeros_like(cells), other]))
    (folder / "points.csv").write_text("image,x,y\na.png,10,10\na.png,30,25\n")
    (sample,) = load_dataset(folder, channel=3)  # OpenCV writes BGR: the cells are blue
    np.testing.assert_array_equal(sample.pixels, cells)
    (grey,) = load_dataset(folder)  # by default: the grey, the other stain mixed in
    assert not np.array_equal(grey.pixels, cells)
    two = tmp_path / "two"
    (two / "images").mkdir(parents=True)
    tifffile.imwrite(
        two / "images" / "b.tif", np.stack([other, cells]), imagej=True, metadata={"axes": "CYX"}
    )
    (two / "points.csv").write_text("image,x,y\nb.tif,10,10\n")
    (sample,) = load_dataset(two, channel=1)
    np.testing.assert_array_equal(sample.pixels, cells)
    with pytest.raises(DatasetError, match="b.tif: channel 2 does not exist"):
        load_dataset(two, channel=2)
    with pytest.raises(ValueError, match="--channel"):
        TrainConfig(datasets=[str(two)], out=str(tmp_path / "m"), channel=-1).check()
    # the command line passes it on: the missing channel is said by file, nothing is written
    assert main([str(two), "--out", str(tmp_path / "m"), "--channel", "2", "--quiet"]) != 0
    assert "b.tif: channel 2 does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m" / "model.json").exists()


def test_reads_one_csv_per_image_and_marker_label_images(tmp_path):
    per_image = tmp_path / "per_image"
    (per_image / "images").mkdir(parents=True)
    (per_image / "points").mkdir()
    cv2.imwrite(str(per_image / "images" / "f1.png"), _blobs((30, 40), [(5, 5)]))
    (per_image / "points" / "f1.csv").write_text("3,4\n10.5,20\n")  # no header
    cv2.imwrite(str(per_image / "images" / "f2.png"), _blobs((30, 40), [(5, 5)]))
    (per_image / "points" / "f2.csv").write_text("x,y\n1,2\n")
    # the files macOS writes beside each on a shared or exFAT drive are left out, as
    # segmenting leaves them (training failed: "._f1.csv: not a table of points")
    for hidden in ("points/._f1.csv", "images/._f1.png"):
        (per_image / hidden).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    notes: list = []
    samples = load_dataset(per_image, notes=notes)
    assert [s.points.tolist() for s in samples] == [[[3.0, 4.0], [10.5, 20.0]], [[1.0, 2.0]]]
    assert not any("._f1" in note for note in notes), notes
    # a points.csv beside them too: which holds the centres cannot be told (points/ was
    # passed over without a word, its images "without cell centres")
    (per_image / "points.csv").write_text("image,x,y\nf1.png,3,4\n")
    with pytest.raises(DatasetError, match=r"holds cell centres in points\.csv and points/"):
        load_dataset(per_image)
    (per_image / "points.csv").unlink()

    markers = tmp_path / "markers"
    (markers / "images").mkdir(parents=True)
    (markers / "markers").mkdir()
    tifffile.imwrite(markers / "images" / "m.tif", _blobs((30, 40), [(5, 5)], np.uint16))
    labels = np.zeros((30, 40), np.uint16)
    labels[2:5, 3:6] = 7  # centroid (x=4, y=3)
    labels[20:22, 30:34] = 300  # centroid (x=31.5, y=20.5)
    tifffile.imwrite(markers / "markers" / "m.tif", labels)
    (sample,) = load_dataset(markers)
    assert sorted(map(tuple, sample.points.tolist())) == [(4.0, 3.0), (31.5, 20.5)]
    # a marker image of another size than its image, or in colour: said, by name (the
    # first trained on another image's centres, the second on its grey values as labels)
    tifffile.imwrite(markers / "markers" / "m.tif", labels[:20])
    with pytest.raises(DatasetError, match=r"m\.tif: 40x20, not the size of its image m\.tif"):
        load_dataset(markers)
    colour = np.dstack([labels, labels * 0, labels * 0]).astype(np.uint8)
    tifffile.imwrite(markers / "markers" / "m.tif", colour, photometric="rgb")
    with pytest.raises(DatasetError, match="must be one channel of labels, not colour"):
        load_dataset(markers)
    # a black-and-white mask (every spot 255, as Fiji makes from a point selection): a cell
    # at each spot, said; it was one centre at their mean, where no cell lies, unsaid
    mask = np.where(labels > 0, 255, 0).astype(np.uint8)
    mask[10, 10] = 255  # a spot of one pixel
    cv2.imwrite(str(markers / "markers" / "m.png"), mask)
    (markers / "markers" / "m.tif").unlink()
    notes = []
    (sample,) = load_dataset(markers, notes=notes)
    assert sorted(map(tuple, sample.points.tolist())) == [(4.0, 3.0), (10.0, 10.0), (31.5, 20.5)]
    assert any("one value (255) in 3 separate spots" in note for note in notes), notes
    # one cell marked with one value: one spot, nothing said
    cv2.imwrite(str(markers / "markers" / "m.png"), np.where(labels == 7, 255, 0).astype(np.uint8))
    notes = []
    (sample,) = load_dataset(markers, notes=notes)
    assert sample.points.tolist() == [[4.0, 3.0]] and not any("spots" in n for n in notes)


def test_points_saved_in_micrometres_of_a_calibrated_image_are_said(tmp_path):
    """A Fiji table of a calibrated image saved in micrometres (0.65 um pixels): every point
    in the image's top left 65 % is said, as segmenting at them says it (it trained at
    the wrong places without a word); the same points in pixels of an image without a
    calibration are not."""
    folder = tmp_path / "um"
    (folder / "images").mkdir(parents=True)
    tifffile.imwrite(
        folder / "images" / "a.tif",
        _blobs((200, 200), []),
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),
        metadata={"unit": "um"},
    )
    rows = [f"a.tif,{10 + 12 * k},{15 + 11 * k}" for k in range(10)]  # all under 130
    (folder / "points.csv").write_text("image,x,y\n" + "\n".join(rows) + "\n")
    notes: list = []
    load_dataset(folder, notes=notes)
    assert any("a.tif: all 10 points lie in its top left 130 x 130 pixels" in n for n in notes)
    tifffile.imwrite(folder / "images" / "a.tif", _blobs((200, 200), []))
    notes = []
    load_dataset(folder, notes=notes)
    assert not any("top left" in n for n in notes), notes


def test_dataset_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="no images/ folder"):
        load_dataset(tmp_path)
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "a.png"), _blobs((20, 20), []))
    with pytest.raises(DatasetError, match="no cell centres"):
        load_dataset(folder)
    (folder / "points.csv").write_text("image,x,y\na.png,3,oops\n")
    with pytest.raises(DatasetError, match=r"points\.csv: line 2: y is not a number"):
        load_dataset(folder)
    (folder / "points.csv").write_text("image,x,y\nmissing.png,3,4\n")
    with pytest.raises(DatasetError, match="missing.png"):
        load_dataset(folder)
    (folder / "points.csv").write_text("image,x,y\na.png,3,40\n")
    with pytest.raises(DatasetError, match=r"a\.png: 1 centre\(s\) outside"):
        load_dataset(folder)
    (folder / "images" / "b.png").write_bytes(b"not an image at all")
    (folder / "points.csv").write_text("image,x,y\na.png,3,4\nb.png,1,1\n")
    with pytest.raises(DatasetError, match=r"b\.png"):
        load_dataset(folder)


def test_a_cell_clicked_twice_counts_once_and_images_left_out_are_named(tmp_path):
    """Two exports of the same clicks pasted together, or a double click: each cell once
    (the spacing of the points was 0, which crashed the automatic scale, or 1 px, which
    trained a useless model of cells 1 px across), said; images without centres, named."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(folder / "images" / name), _blobs((40, 40), []))
    rows = ["a.png,5,5", "a.png,20,20", "a.png,30,8"]
    twice = [*rows, *rows, "a.png,21,20.5", "b.png,10,10"]
    (folder / "points.csv").write_text("image,x,y\n" + "\n".join(twice) + "\n")
    notes: list = []
    a, b = load_dataset(folder, notes=notes)
    assert a.points.tolist() == [[5, 5], [20, 20], [30, 8]] and b.points.tolist() == [[10, 10]]
    assert notes == [
        f"{folder / 'images' / 'a.png'}: 4 centre(s) within 2 px of another (the same cell "
        "clicked twice) counted once",
        f"{folder}: 1 image(s) without cell centres left out: c.png",
    ]


def test_a_multi_page_image_is_trained_on_its_first_page_and_says_so(tmp_path):
    """A stack of three pages whose Fiji table puts its points on slice 2: trained on the
    first page (as ever), said by name (it was silent, the centres of another frame taught
    against the first); a file of one page says nothing."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    page = _blobs((40, 40), [(10, 10)], np.uint16)
    stack = np.stack([page] * 3)
    tifffile.imwrite(folder / "images" / "stack.tif", stack, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(folder / "images" / "one.tif", page)
    (folder / "points.csv").write_text("image,x,y,slice\nstack.tif,10,10,2\none.tif,10,10,1\n")
    notes: list = []
    assert len(load_dataset(folder, notes=notes)) == 2
    assert notes == [
        f"{folder / 'images' / 'stack.tif'}: 3 pages: trained on its first, its centres "
        "taken to lie there (the window's Save as training set writes each page as an "
        "image of its own)"
    ]


def test_an_images_rows_by_its_name_and_its_stem_are_all_its_centres(tmp_path):
    """points.csv naming one image t000.tif in some rows and t000 in others (two sources
    pasted together): all its rows are its centres (the stem's were dropped, those cells
    taught as background without a word)."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "t000.png"), _blobs((40, 40), []))
    (folder / "points.csv").write_text("image,x,y\nt000.png,5,5\nt000,20,20\nt000.png,30,8\n")
    (sample,) = load_dataset(folder)
    assert sorted(sample.points.tolist()) == [[5, 5], [20, 20], [30, 8]]


def test_nan_pixels_of_a_float_image_are_filled_for_training_as_for_segmenting(tmp_path):
    """A float image with a few NaN pixels (a masked ratio image): trained on as segmenting
    reads it, NaN filled with the median (the whole image read as flat, all zeros, while its
    cells were still taught on it)."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    pixels = _blobs((40, 50), [(10, 10), (30, 20)]).astype(np.float32)
    pixels[:3, :3] = np.nan
    tifffile.imwrite(folder / "images" / "ratio.tif", pixels)
    (folder / "points.csv").write_text("image,x,y\nratio.tif,10,10\nratio.tif,30,20\n")
    (sample,) = load_dataset(folder)
    assert np.isfinite(sample.pixels).all()
    assert sample.pixels[0, 0] == np.median(pixels[np.isfinite(pixels)])
    assert np.array_equal(sample.pixels[5:], pixels[5:])


def test_what_keeps_a_training_set_from_loading_is_said_with_what_to_do(tmp_path):
    """Fiji's XY Coordinates saved as .txt in points/ are read (they were passed over, the set
    said to have no centres); a points.csv naming images by a path (Windows' or this
    system's) says to give the file name alone; images in a folder of images/ are said to be
    not looked into; a centre a pixel past the last, counted from 1, is said to be."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    (folder / "points").mkdir()
    cv2.imwrite(str(folder / "images" / "0000.png"), _blobs((32, 32), []))
    (folder / "points" / "0000.txt").write_text("X\tY\n3\t4\n20\t21\n")
    (sample,) = load_dataset(folder)
    assert sample.points.tolist() == [[3, 4], [20, 21]]
    # a file of no centres (a header alone): its image left out, said, as anywhere (it was
    # "its rows name other images ()", the whole set refused)
    cv2.imwrite(str(folder / "images" / "0001.png"), _blobs((32, 32), []))
    (folder / "points" / "0001.csv").write_text("x,y\n")
    notes: list = []
    (sample,) = load_dataset(folder, notes=notes)
    assert sample.path.name == "0000.png" and any("0001.png" in n for n in notes), notes
    (folder / "points" / "0001.csv").unlink()
    (folder / "images" / "0001.png").unlink()
    (folder / "points" / "0000.csv").write_text("x,y\n3,4\n")
    with pytest.raises(DatasetError, match=r"0000\.csv and 0000\.txt are the centres of one"):
        load_dataset(folder)
    shutil.rmtree(folder / "points")
    for name in (r"C:\data\exp1\0000.png", "images/0000.png"):
        (folder / "points.csv").write_text(f"image,x,y\n{name},3,4\n")
        with pytest.raises(DatasetError, match="by its file name alone: 0000.png, not"):
            load_dataset(folder)
    (folder / "points.csv").write_text("image,x,y\n0000.png,32,32\n")  # counted from 1
    with pytest.raises(DatasetError, match=r"x=32, y=32 \(pixels are counted from 0, the last"):
        load_dataset(folder)
    (folder / "points.csv").write_text("image,x,y\n0000.png,60,32\n")  # just outside
    with pytest.raises(DatasetError, match=r"x=60, y=32$"):
        load_dataset(folder)
    day = folder / "images" / "day1"
    day.mkdir()
    (folder / "images" / "0000.png").rename(day / "0000.png")
    with pytest.raises(DatasetError, match=r"its folders \(day1\) are not looked into"):
        load_dataset(folder)
    (day / "0000.png").rename(folder / "images" / "0000.png")
    (folder / "points.csv").write_text("image,x,y\n0000.png,10,10\n0000.png,20,20\n")
    config = TrainConfig(datasets=[str(folder)], out=str(tmp_path / "m"), scale=0.1, epochs=1)
    with pytest.raises(DatasetError, match=r"too small at scale 0\.1 .*a larger --scale"):
        train(config, progress=False, log=None)


def test_centres_that_name_no_image_or_two_are_refused_by_name(tmp_path):
    """points/ and markers/ files that match no image (a case typo, a marker image named
    t000_markers.tif) were passed over without a word, their images left out; a stem that
    names two images (t000.tif and t000.png) gave both the same centres. A points/ file
    written as image,x,y gave none."""
    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    (folder / "points").mkdir()
    for name in ("t000.png", "t001.png"):
        cv2.imwrite(str(folder / "images" / name), _blobs((40, 40), []))
    (folder / "points" / "t000.csv").write_text("image,x,y\nt000.png,3,4\nt000.png,9,9\n")
    (folder / "points" / "T001.csv").write_text("x,y\n5,6\n")
    with pytest.raises(
        DatasetError,
        match=r"points: images not found in .*: T001 \(each file.*differ in case: T001 is not t001",
    ):
        load_dataset(folder)
    (folder / "points" / "T001.csv").rename(folder / "points" / "t001.csv")
    first, second = load_dataset(folder)
    assert first.points.tolist() == [[3, 4], [9, 9]] and second.points.tolist() == [[5, 6]]
    (folder / "points" / "t001.csv").write_text("image,x,y\nother.png,5,6\n")
    with pytest.raises(DatasetError, match=r"t001\.csv: its rows name other images \(other"):
        load_dataset(folder)

    cv2.imwrite(str(folder / "images" / "t001.tif"), _blobs((40, 40), []))
    (folder / "points").rename(tmp_path / "points-aside")  # (one layout a set: points.csv)
    (folder / "points.csv").write_text("image,x,y\nt001,5,6\n")
    with pytest.raises(DatasetError, match=r"t001 names t001\.png and t001\.tif"):
        load_dataset(folder)

    marked = tmp_path / "m"
    (marked / "images").mkdir(parents=True)
    (marked / "markers").mkdir()
    cv2.imwrite(str(marked / "images" / "t000.png"), _blobs((40, 40), []))
    labels = np.zeros((40, 40), np.uint16)
    labels[5:8, 5:8] = 1
    tifffile.imwrite(marked / "markers" / "t000_markers.tif", labels)
    with pytest.raises(DatasetError, match=r"markers: images not found .*: t000_markers"):
        load_dataset(marked)


def test_a_cellprop_cell_table_is_a_points_csv(tmp_path):
    """README: cells found by a shipped model and corrected in the app, exported with *Export
    all*, are a training set: its cells.csv (Image, ..., Detection_Center_X/Y) reads as
    points.csv, each cell at the centre it was detected or clicked at (not its centroid)."""
    from cellprop.engine import measure, write_tables

    folder = tmp_path / "corrected"
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "a.png"), _blobs((40, 50), [(10, 10), (30, 20)]))
    cv2.imwrite(str(folder / "images" / "b.png"), _blobs((30, 30), [(12, 15)]))
    labels_a = np.zeros((40, 50), np.int32)
    labels_a[5:16, 5:16] = 1
    labels_a[25:36, 14:27] = 2
    labels_b = np.zeros((30, 30), np.int32)
    labels_b[8:20, 8:20] = 1
    tables = [
        ("a.png", measure(labels_a, centres=np.array([[9.0, 11.0], [20.5, 30.0]]))),
        ("b.png", measure(labels_b, centres=np.array([[15.0, 12.0]]))),
    ]
    write_tables(folder / "points.csv", tables)
    samples = load_dataset(folder)
    assert [s.name for s in samples] == ["corrected/a.png", "corrected/b.png"]
    assert samples[0].points.tolist() == [[9.0, 11.0], [20.5, 30.0]]
    assert samples[1].points.tolist() == [[15.0, 12.0]]


def test_read_points_csv_keys_by_image(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("image,x,y,comment\nA.png,1,2,first\nB.png,3,4,\nA.png,5,6,x\n")
    points = read_points_csv(path)
    assert points["A.png"].tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert points["B.png"].tolist() == [[3.0, 4.0]]


def test_two_training_sets_of_one_name_keep_their_images_apart(tmp_path):
    """a/cells and b/cells: their images were both named cells/t000.tif, and the two sets
    shared one validation split; they are named by their parent folders too now."""
    from cellprop.training.data import load_datasets

    for parent in ("a", "b"):
        folder = tmp_path / parent / "cells"
        (folder / "images").mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(folder / "images" / f"t{k}.png"), _blobs((30, 30), []))
        (folder / "points.csv").write_text("image,x,y\nt0.png,5,5\nt1.png,9,9\n")
    samples = load_datasets([tmp_path / "a" / "cells", tmp_path / "b" / "cells"])
    assert [s.name for s in samples] == [
        "a_cells/t0.png",
        "a_cells/t1.png",
        "b_cells/t0.png",
        "b_cells/t1.png",
    ]
    train_set, val_set = split_samples(samples, [], 0.5)
    assert [s.name for s in val_set] == ["a_cells/t1.png", "b_cells/t1.png"]  # one of each


def test_split_holds_out_whole_images(tmp_path):
    from cellprop.training.data import Sample

    def sample(dataset, name):
        return Sample(f"{dataset}/{name}", Path(name), np.zeros((4, 4)), np.zeros((1, 2)))

    samples = [sample("a", f"{i}.png") for i in range(7)] + [sample("b", "x.png")]
    train_set, val_set = split_samples(samples, [], 0.15)
    assert [s.name for s in val_set] == ["a/6.png"]  # b has a single image: kept for training
    assert len(train_set) == 7
    train_set, val_set = split_samples(samples, ["2", "a/3.png"], 0.15)
    assert [s.name for s in val_set] == ["a/2.png", "a/3.png"]
    with pytest.raises(DatasetError, match="no such image: nope.png .give an image .* its path"):
        split_samples(samples, ["nope.png"], 0.15)
    # the image's path, as the shell completes it, names it too
    on_disk = tmp_path / "cells" / "images" / "0002.png"
    on_disk.parent.mkdir(parents=True)
    on_disk.write_bytes(b"")
    kept = Sample("cells/0002.png", on_disk, np.zeros((4, 4)), np.zeros((1, 2)))
    for given in (str(on_disk), os.path.relpath(on_disk)):
        train_set, val_set = split_samples([*samples, kept], [given], 0.15)
        assert val_set == [kept] and len(train_set) == len(samples)


# --- crops and metrics ---------------------------------------------------------------------


def test_random_crops_are_seeded_and_keep_image_and_target_aligned():
    rng = np.random.default_rng(0)
    image = rng.random((100, 120)).astype(np.float32)
    target = np.zeros_like(image)
    image[30, 70] = target[30, 70] = 50.0  # one marked pixel, far brighter than the rest
    geometric = Augmentation(
        zoom=(1.0, 1.0),
        contrast=(1.0, 1.0),
        offset=(0.0, 0.0),
        gamma=(1.0, 1.0),
        noise_probability=0.0,
        blur_probability=0.0,
    )
    seen = 0
    for seed in range(40):
        img, tgt = random_crop(image, target, 64, np.random.default_rng(seed), geometric)
        assert img.shape == tgt.shape == (64, 64)
        if tgt.max() == 50.0:
            seen += 1
            assert np.unravel_index(img.argmax(), img.shape) == np.unravel_index(
                tgt.argmax(), tgt.shape
            )
    assert seen > 3
    a = random_crop(image, target, 32, np.random.default_rng(5))
    b = random_crop(image, target, 32, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # Crops larger than the image are padded, not refused.
    img, tgt = random_crop(image[:20, :20], target[:20, :20], 48, np.random.default_rng(1))
    assert img.shape == (48, 48)


def test_detection_score_counts_one_to_one_matches():
    likelihood = gaussian_targets((60, 80), np.array([[10.0, 10.0], [50.0, 40.0]]), 3.0)
    peaks = find_peaks(likelihood, 0.5)
    assert np.allclose(sorted(peaks.tolist()), [[10.0, 10.0], [50.0, 40.0]])
    truth = np.array([[12.0, 10.0], [70.0, 10.0]])
    score = detection_score(peaks, truth, 10.0)
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)
    assert score.f1 == pytest.approx(0.5)
    # Two predictions near one true point: only one may match it.
    score = detection_score(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.5, 0.0]]))
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)


# --- command line --------------------------------------------------------------------------


def test_help_explains_the_dataset_layout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("points.csv", "images/", "--out", "--scale", "--resume", "markers/"):
        assert phrase in text


def test_cli_reports_a_bad_dataset_with_its_name(tmp_path, capsys):
    status = main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "m"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "images/" in err
    assert not (tmp_path / "m").exists()  # a refused training leaves no model folder behind
    for option, said in (  # 0 epochs ran 40; the steps were named --steps-per-epoch
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--lr", "0"], "--lr must be positive"),
        (["--crop", "0"], "--crop must be an even number of pixels"),
        # a traceback (inf), a message without the option's name (-1)
        (["--sigma", "inf"], "--sigma must be a positive number of pixels"),
        (["--cell-diameter", "inf"], "--cell-diameter must be a positive number of pixels"),
        (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295"),
    ):
        assert main([str(tmp_path), "--out", str(tmp_path / "m"), "--quiet", *option]) == 2
        assert said in capsys.readouterr().err


def test_a_folder_that_holds_anything_is_not_trained_into_unless_told(tmp_path, capsys):
    """A model folder, or any folder of other files (the training set's own), given as
    --out: refused before anything is read or written, unless --overwrite (or --resume, the
    same training going on, where its checkpoint is); the window asks, then passes
    --overwrite."""
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.json").write_text('{"mine": 1}')
    dataset = tmp_path / "set"
    (dataset / "images").mkdir(parents=True)
    for out, held in ((model, "holds a model already"), (dataset, "holds files already")):
        assert main([str(dataset), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert held in err and "--overwrite" in err and "--resume" not in err  # none to go on
    (model / "checkpoints").mkdir()
    (model / "checkpoints" / "checkpoint.pt").write_bytes(b"a training's")
    assert main([str(dataset), "--out", str(model), "--quiet"]) == 2
    assert "--resume to go on with the training there" in capsys.readouterr().err
    assert (model / "model.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in dataset.iterdir()) == ["images"]
    # told: past that check (to the dataset's own problem here: no points)
    assert main([str(dataset), "--out", str(model), "--quiet", "--overwrite"]) == 2
    assert "holds a model" not in capsys.readouterr().err


# --- short real training runs --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_c2c12(tmp_path_factory):
    """Two 256 x 320 crops of real frames (one to train, one to validate) with their points."""
    if not (C2C12 / "points.csv").is_file():
        pytest.skip(f"shared data not found at {C2C12} (set CELLPROP_SHARED_DATA)")
    folder = tmp_path_factory.mktemp("small") / "c2c12-small"
    (folder / "images").mkdir(parents=True)
    with open(C2C12 / "points.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["image,x,y"]
    r0, c0, h, w = 300, 400, 256, 320
    for name in ("0000.png", "0006.png"):
        image = cv2.imread(str(C2C12 / "images" / name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(folder / "images" / name), image[r0 : r0 + h, c0 : c0 + w])
        for row in rows:
            x, y = float(row["x"]) - c0, float(row["y"]) - r0
            if row["image"] == name and 0 <= x < w and 0 <= y < h:
                lines.append(f"{name},{x},{y}")
    (folder / "points.csv").write_text("\n".join(lines) + "\n")
    return folder


def _tiny_config(dataset: Path, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        datasets=[str(dataset)],
        out=str(out),
        name="tiny",
        modality="phase",
        scale=0.5,
        base_channels=4,
        depth=2,
        epochs=epochs,
        steps_per_epoch=6,
        crop=64,
        batch=4,
        learning_rate=3e-3,
        val=["0006.png"],
        seed=3,
        command="test",
    )


@pytest.fixture(scope="module")
def tiny_run(small_c2c12, tmp_path_factory):
    """One short uninterrupted run, shared by the tests below (training is the slow part)."""
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return folder, train(_tiny_config(small_c2c12, folder, 4), progress=False, log=None)


@pytest.mark.data
def test_short_training_lowers_the_loss_and_exports_a_working_pair(tiny_run):
    folder, result = tiny_run
    history = result.history
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert min(h["val_loss"] for h in history[1:]) < history[0]["val_loss"]

    info = json.loads((folder / "model.json").read_text())
    assert info["training"]["val_images"] == ["c2c12-small/0006.png"]
    assert info["training"]["channel"] == 0  # the channel its images were read at
    assert info["training"]["best_val_loss"] == pytest.approx(
        min(h["val_loss"] for h in history), abs=1e-6
    )
    assert info["input"]["stride"] == 4 and info["input"]["scale"] == 0.5
    assert result.check.ok()
    unet = load_onnx_session(folder / "unet.onnx")
    guided = load_onnx_session(folder / "guided.onnx")
    x = np.random.default_rng(0).random((2, 1, 64, 96), dtype=np.float32)
    y = unet.run(None, {"image": x})[0]
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    g = guided.run(None, {"image": x, "grad_output": (y > 0.3).astype(np.float32)})[0]
    assert g.shape == x.shape and np.isfinite(g).all()


def _stopped_in_second_epoch(config: TrainConfig) -> None:
    """The run stopped during its second epoch (before that epoch's checkpoint is written,
    so resuming redoes it): its first epoch kept."""

    class Interrupt(Exception):
        pass

    def stop_during_second_epoch(line):
        if line.startswith("epoch 2/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, progress=False, log=stop_during_second_epoch)


def _interrupted_and_resumed(config: TrainConfig):
    """The run stopped during its second epoch, then resumed to the end: the resumed run's
    result."""
    _stopped_in_second_epoch(config)
    return train(dataclasses.replace(config, resume=True), progress=False, log=None)


@pytest.mark.data
def test_training_is_reproducible_and_resumes_where_it_stopped(small_c2c12, tiny_run, tmp_path):
    _, full = tiny_run
    resumed = _interrupted_and_resumed(_tiny_config(small_c2c12, tmp_path / "resumed", 4))
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


@pytest.mark.data
def test_resume_refuses_a_checkpoint_of_a_different_training(small_c2c12, tiny_run):
    folder, _ = tiny_run
    config = _tiny_config(small_c2c12, folder, 6)
    config.resume = True
    config.base_channels = 5
    with pytest.raises(
        ValueError, match=r"cannot resume, --base-channels was 4 \(now 5\); .* --overwrite"
    ):
        train(config, progress=False, log=None)
    # the kind of microscopy and the cell size too: resumed without them, a fluorescence
    # training went on as phase contrast (model.json said phase), and another diameter was
    # blamed on the training set
    config.base_channels = 4
    for option, value, said in [
        ("modality", "fluorescence", "--modality was phase (now fluorescence)"),
        ("cell_diameter", 30.0, "--cell-diameter was not given (now 30.0)"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"cannot resume, {said}; ")):
            train(dataclasses.replace(config, **{option: value}), progress=False, log=None)


@pytest.mark.data
def test_resume_refuses_a_training_set_changed_since_it_began(small_c2c12, tmp_path):
    """The same command continued after centres were taken out of points.csv: refused,
    saying what changed (it went on quietly at another working scale,
    epochs of two sets in one model, the best chosen across them). Left as it was, the set
    continues as ever."""
    import shutil

    dataset = tmp_path / "c2c12-small"
    shutil.copytree(small_c2c12, dataset)
    config = dataclasses.replace(_tiny_config(dataset, tmp_path / "model", 3), scale=None)
    _stopped_in_second_epoch(config)
    points = (dataset / "points.csv").read_text()
    rows = points.splitlines()
    (dataset / "points.csv").write_text("\n".join(rows[:1] + rows[1::3]) + "\n")
    resume = dataclasses.replace(config, resume=True)
    with pytest.raises(ValueError, match="the training set changed since the training began") as e:
        train(resume, progress=False, log=None)
    assert "cell centres added, removed or moved" in str(e.value)
    assert "working scale" in str(e.value)  # (automatic: from the centres' spacing)
    (dataset / "points.csv").write_text(points)
    assert len(train(resume, progress=False, log=None).history) == 3


def test_what_changed_in_a_training_set_is_said_by_image():
    from cellprop.training.train import _set_changed

    then = {
        "train_images": ["a", "b", "c"],
        "val_images": ["v"],
        "centres": "1",
        "pixels": "p",
        "scale": 0.5,
        "sigma_px": 4.0,
    }
    now = {**then, "train_images": ["a", "c", "d"]}
    assert _set_changed(then, now) == "training images: 3 then, 3 now; b no longer; d new"
    assert _set_changed(then, {**then, "centres": "2"}) == "cell centres added, removed or moved"
    assert _set_changed(then, {**then, "pixels": "q", "sigma_px": 5.0}) == (
        "images of the same names replaced by others (their pixels differ); target width "
        "4 px then, 5 now"
    )
    assert _set_changed(then, dict(then)) == "" and _set_changed(None, then) == ""


@pytest.mark.data
def test_a_stated_cell_diameter_sets_scale_and_sigma_and_is_recorded(
    small_c2c12, tiny_run, tmp_path
):
    """Without --cell-diameter the spacing of the points is the cells' size; with it (sparse
    cells, whose spacing overstates them) the automatic scale and sigma follow the diameter."""
    folder, _ = tiny_run
    info = json.loads((folder / "model.json").read_text())
    neighbour = info["training"]["median_neighbour_distance_px"]
    assert info["cell_diameter_px"] == pytest.approx(neighbour * 0.5, abs=0.01)
    assert info["sigma_px"] == pytest.approx(0.3 * neighbour * 0.5, abs=0.01)

    config = dataclasses.replace(
        _tiny_config(small_c2c12, tmp_path / "m", 1), cell_diameter=30.0, scale=None
    )
    train(config, progress=False, log=None)
    stated = json.loads((tmp_path / "m" / "model.json").read_text())
    assert auto_scale(neighbour) <= 0.5  # what the spacing gives: cells smaller
    assert stated["input"]["scale"] == pytest.approx(0.65)  # 30 px cells about 20 px across
    assert stated["cell_diameter_px"] == pytest.approx(30 * 0.65)
    assert stated["sigma_px"] == pytest.approx(0.3 * 30 * 0.65, abs=0.01)
    with pytest.raises(ValueError, match="cell-diameter"):
        dataclasses.replace(config, cell_diameter=0.0).check()


def _quick_model(dataset: Path, out: Path, modality: str, val: str, log=None) -> dict:
    """A model trained for two steps of a tiny network (its model.json): what training
    records, not what it learns."""
    config = TrainConfig(
        datasets=[str(dataset)],
        out=str(out),
        modality=modality,
        base_channels=4,
        depth=2,
        epochs=1,
        steps_per_epoch=2,
        crop=64,
        batch=2,
        val=[val],
        command="test",
    )
    train(config, progress=False, log=log)
    return json.loads((out / "model.json").read_text())


def test_fluorescence_training_follows_the_nuclei_size_where_they_lie_apart(tmp_path):
    """Sparse nuclei, no --cell-diameter: a fluorescence model takes their own size for its
    scale (the spacing would make them 6 px across); phase contrast keeps the spacing. A
    fluorescence model's outlines follow the image's intensity."""
    folder = tmp_path / "nuclei"
    (folder / "images").mkdir(parents=True)
    lines = ["image,x,y"]
    for k in range(3):
        image, points = _sparse_nuclei(16, 60, seed=k)
        tifffile.imwrite(folder / "images" / f"n{k}.tif", image)
        lines += [f"n{k}.tif,{x},{y}" for x, y in points]
    (folder / "points.csv").write_text("\n".join(lines) + "\n")

    def quick(modality):
        return _quick_model(folder, tmp_path / modality, modality, "n2.tif")

    fluorescence = quick("fluorescence")
    assert fluorescence["training"]["blob_diameter_px"] == pytest.approx(16, rel=0.15)
    size = fluorescence["training"]["blob_diameter_px"]
    assert fluorescence["input"]["scale"] == pytest.approx(auto_scale(size))  # about 1.25
    assert fluorescence["cell_diameter_px"] == pytest.approx(size * auto_scale(size), rel=0.01)
    phase = quick("phase")
    spacing = phase["training"]["median_neighbour_distance_px"]
    assert "blob_diameter_px" not in phase["training"]
    assert phase["input"]["scale"] == pytest.approx(auto_scale(spacing))
    assert phase["input"]["scale"] < 0.5 < fluorescence["input"]["scale"]
    # a fluorescence model cuts where the image says a cell ends, as the shipped nuclei
    # model does (with the authors' neutral data term its outlines grew past the nuclei:
    # mDice 0.830 against 0.886 on gowt1 frames t021, t031 for a model trained on t000-t003)
    assert fluorescence["defaults"]["data_term"] == "intensity"
    assert "data_term" not in phase["defaults"]


def test_planes_saved_from_one_channel_train_a_model_that_segments_that_channel(tmp_path):
    """A training set the window saved from the third channel of its files (each plane a
    TIFF of its own, sources.csv saying where it came from): the model records that channel
    (training.source_channel; training.channel stays the one read, 0), and the engine then
    segments that channel of a file unless told otherwise. Planes of two channels: none."""
    from cellprop.engine import load_model, read_training_sources, write_training_set

    folder = tmp_path / "set"
    planes, sources = [], []
    for k in range(3):
        image, points = _sparse_nuclei(16, 60, seed=k)
        planes.append((f"movie_p{k}c2.tif", image, points))
        sources.append((tmp_path / "movie.tif", k, 2))
    write_training_set(folder, planes[:2], sources=sources[:2])
    write_training_set(folder, planes[2:], sources=sources[2:])  # a later session adds one
    assert read_training_sources(folder)["movie_p2c2.tif"] == {
        "file": str(tmp_path / "movie.tif"),
        "page": 2,
        "channel": 2,
    }
    samples = load_dataset(folder)
    assert source_channel(samples) == 2
    out = tmp_path / "model"
    logged: list = []
    training = _quick_model(folder, out, "fluorescence", "movie_p2c2.tif", logged.append)
    training = training["training"]
    assert any("taken from channel 2 of their files" in line for line in logged)
    assert (training["channel"], training["source_channel"]) == (0, 2)
    assert load_model(out, device="cpu").channel == 2
    # the same image saved again from another channel: the set's planes no longer agree
    write_training_set(folder, planes[:1], overwrite=True, sources=[(tmp_path / "m.tif", 0, 1)])
    assert source_channel(load_dataset(folder)) is None
    # a set without the record (made by hand): none either
    write_training_set(folder, planes[:1], overwrite=True)
    assert "movie_p0c2.tif" not in read_training_sources(folder)
    assert source_channel(load_dataset(folder)) is None


@pytest.mark.data
@pytest.mark.parametrize(
    ("option", "wider", "bad"),
    [
        ("gamma", (0.5, 2.0), ((1.2, 2.0), (0.5, 0.9), (0.0, 2.0))),
        ("zoom", (0.67, 1.5), ((1.2, 2.0), (0.5, 0.9), (0.1, 2.0), (0.8, 5.0))),
    ],
)
def test_an_augmentation_range_is_checked_recorded_and_must_match_on_resume(
    small_c2c12, tiny_run, option, wider, bad
):
    from cellprop.training.cli import build_parser

    folder, _ = tiny_run
    info = json.loads((folder / "model.json").read_text())
    assert info["training"][option] == [0.8, 1.25]
    args = build_parser().parse_args(["d", "--out", "m", f"--{option}", *map(str, wider)])
    assert getattr(args, option) == list(wider)
    config = _tiny_config(small_c2c12, folder, 6)
    for values in bad:
        with pytest.raises(ValueError, match=f"--{option}"):
            dataclasses.replace(config, **{option: values}).check()
    resumed = dataclasses.replace(config, resume=True, **{option: wider})
    with pytest.raises(ValueError, match=rf"cannot resume, --{option} was \(0.8, 1.25\)"):
        train(resumed, progress=False, log=None)


@pytest.mark.data
def test_the_zoom_range_reaches_the_crops_and_an_older_checkpoint_resumes(
    small_c2c12, tiny_run, tmp_path, monkeypatch
):
    import shutil

    import cellprop.training.train as train_module
    import torch

    folder, _ = tiny_run
    config = _tiny_config(small_c2c12, folder, 6)
    # A checkpoint from before --zoom existed was trained with the default: it resumes.
    out = tmp_path / "model"
    shutil.copytree(folder / "checkpoints", out / "checkpoints")
    state = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=False)
    del state["config"]["zoom"]
    torch.save(state, out / "checkpoints" / "checkpoint.pt")
    seen = []
    real_crop = train_module.random_crop

    def crop(*a, **k):
        seen.append(k.get("augmentation", a[4] if len(a) > 4 else None).zoom)
        return real_crop(*a, **k)

    monkeypatch.setattr(train_module, "random_crop", crop)
    later = dataclasses.replace(config, out=str(out), epochs=5, resume=True)
    result = train(later, progress=False, log=None)
    assert len(result.history) == 5
    assert seen and set(seen) == {(0.8, 1.25)}


# --- tuning the shipped models' defaults ----------------------------------------------------------


def test_tuning_chooses_the_filters_the_engine_then_applies(tiny_model_dir, tmp_path):
    """tune_defaults scores candidate minimum sizes and edge fractions on one segmentation per
    grid point; the defaults it writes, run through the engine, must score exactly as recorded.
    (The tiny model's cells mean nothing; the edge fraction is held at 0.5 so that its filter
    has cut cells to drop.)"""
    import shutil

    from cellprop.engine import Settings, load_model, segment
    from cellprop.engine.evaluate import Scores
    from cellprop.training.models import (
        Recipe,
        add_scores,
        load_cases,
        summary,
        tune_defaults,
    )

    rng = np.random.default_rng(3)
    data = tmp_path / "data" / "blobs"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    yy, xx = np.mgrid[:96, :128]
    rows = ["image,x,y"]
    for name in ("a.png", "b.png"):
        mask = np.zeros((96, 128), np.uint16)
        centres = [(0, 20), (40, 60), (70, 100), (50, 127), (20, 90)]  # two cut by the edge
        for i, (r, c) in enumerate(centres, 1):
            mask[(yy - r) ** 2 + (xx - c) ** 2 < 100] = i
            rows.append(f"{name},{c},{r}")
        image = np.where(mask > 0, 180, 60) + rng.normal(0, 10, mask.shape)
        cv2.imwrite(str(data / "images" / name), np.clip(image, 0, 255).astype(np.uint8))
        tifffile.imwrite(data / "masks" / f"{Path(name).stem}.tif", mask)
    (data / "points.csv").write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    info = json.loads((model_dir / "model.json").read_text())
    diameter = info["cell_diameter_px"] / info["input"]["scale"]
    recipe = Recipe(
        name="tiny",
        dataset="blobs",
        modality="phase",
        description="",
        scale=info["input"]["scale"],
        diameter=diameter,
        sigma=None,
        train=("x.png",),
        val=("y.png",),
        tune=("a.png", "b.png"),
        test=("z.png",),
        grid={"threshold": [0.01, 0.05]},
        edge_fractions=(0.5,),
    )
    assert 0.0 in Recipe.edge_fractions  # by default the search may keep every edge cell
    tuned = tune_defaults(tmp_path / "data", recipe, model_dir, log=lambda s: None)
    record = tuned["tuning"]
    assert record["grid"]["edge_fraction"] == [0.5] and tuned["defaults"]["edge_fraction"] == 0.5
    assert json.loads((model_dir / "model.json").read_text()) == tuned
    model = load_model(model_dir, device="cpu")
    scores = Scores()
    dropped = 0
    for case in load_cases(data, recipe.tune):
        labels = segment(case.image, model, Settings()).labels
        dropped += segment(case.image, model, Settings(edge_fraction=0.0)).n_cells - labels.max()
        add_scores(scores, case, labels)
    assert dropped > 0  # the edge filter bit
    again = {k: round(v, 4) if isinstance(v, float) else v for k, v in summary(scores).items()}
    assert again == record["scores"]


# --- starting from a model's network (cellprop-train --from) ----------------------------------


SAMPLE = REPO / "resources" / "samples" / "c2c12_0006_crop512.png"


@pytest.mark.parametrize("name", ["phase", "dic", "nuclei"])
def test_a_shipped_models_network_is_read_back_from_its_onnx_file(name):
    """The torch U-Net rebuilt from a shipped model's unet.onnx (BatchNorm folded into its
    convolutions) computes what onnxruntime computes; its BatchNorms given the statistics of
    a batch stay the identity in evaluation, and in training mode on that batch too."""
    from cellprop.training.start import calibrate_batchnorm, network_from, starting_model

    start = starting_model(name)
    model = network_from(start)
    image = cv2.imread(str(SAMPLE), cv2.IMREAD_UNCHANGED).astype(np.float32)
    low, high = np.percentile(image, start.normalisation)
    x = np.clip((image - low) / (high - low), 0, 1)[None, None, :192, :256].astype(np.float32)
    unet = load_onnx_session(start.path / "unet.onnx")
    expected = unet.run(None, {"image": x})[0]
    assert expected.max() > 0.5  # it sees cells here: the comparison is not of zeros
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - expected).max() < 1e-4
    batch = torch.from_numpy(np.stack([x[0, :, :96, :96], x[0, :, 96:, 160:]]))
    calibrate_batchnorm(model, [batch])
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - expected).max() < 1e-4
        evaluated = model(batch)
        model.train()
        assert torch.allclose(model(batch), evaluated, atol=1e-4)


def test_a_start_that_is_no_model_or_another_shape_is_refused(tmp_path, capsys):
    from cellprop.training.start import starting_model

    with pytest.raises(ValueError, match="--from: nowhere: no such model folder or model name"):
        starting_model("nowhere")
    dataset = _tiny_dataset(tmp_path)
    config = TrainConfig(datasets=[str(dataset)], out=str(tmp_path / "m"), start_from="phase")
    with pytest.raises(ValueError, match="--depth 2: the network of phase has 3"):
        train(dataclasses.replace(config, depth=2), progress=False, log=None)
    status = main([str(dataset), "--out", str(tmp_path / "m"), "--from", "nowhere", "--quiet"])
    assert status == 2 and "--from: nowhere" in capsys.readouterr().err
    assert not (tmp_path / "m" / "model.json").exists()


def test_a_model_whose_network_cannot_be_read_back_exactly_is_refused(tiny_model_dir, tmp_path):
    """A model folder whose unet.onnx keeps its BatchNorm as layers of their own (not folded
    into the convolutions, as cellprop-train exports them): the network read back would
    compute something else, so starting from it is refused, by name."""
    import shutil
    import warnings

    from cellprop.training.start import network_from, starting_model
    from cellprop.training.unet import UNet

    folder = tmp_path / "unfolded"
    shutil.copytree(tiny_model_dir, folder)
    assert network_from(starting_model(tiny_model_dir)) is not None  # the exported one reads
    torch.manual_seed(1)
    net = UNet(base_channels=4, depth=3).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracing notes
        torch.onnx.export(  # without constant folding, BatchNormalization stays a layer
            net,
            torch.zeros(1, 1, 32, 32),
            str(folder / "unet.onnx"),
            input_names=["image"],
            output_names=["likelihood"],
            do_constant_folding=False,
            dynamo=False,
        )
    with pytest.raises(ValueError, match="does not compute what it does"):
        network_from(starting_model(folder))


def _tiny_dataset(folder: Path) -> Path:
    """One small image with two points: enough to reach the checks made before training."""
    (folder / "set" / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "set" / "images" / "a.png"), np.zeros((64, 64), np.uint8))
    (folder / "set" / "points.csv").write_text("image,x,y\na.png,10,10\na.png,40,40\n")
    return folder / "set"


def test_a_held_out_image_smaller_than_the_stride_trains_and_exports(tmp_path):
    """A held-out crop of 6 x 6 px (3 x 3 at the working scale, under the stride of 4): the
    export is checked on the largest image (it was checked on the held-out one, and the
    training failed at its end, its epochs spent)."""
    data = _tiny_dataset(tmp_path)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(data / "images" / "a.png"), rng.integers(0, 255, (64, 64), np.uint8))
    cv2.imwrite(str(data / "images" / "b.png"), rng.integers(0, 255, (6, 6), np.uint8))
    with open(data / "points.csv", "a") as fh:
        fh.write("b.png,3,3\n")
    config = dataclasses.replace(
        _tiny_config(data, tmp_path / "model", 1), val=["b.png"], steps_per_epoch=1
    )
    result = train(config, progress=False, log=None)
    assert result.check.ok() and (tmp_path / "model" / "model.json").is_file()


def test_resumed_with_fewer_epochs_than_done_it_says_so_and_records_those_trained(tmp_path):
    """Stopped after two epochs, resumed with --epochs 1 (taken for 'one more'): it says
    that none is trained and why, and model.json records the 2 epochs trained (it
    recorded 1)."""
    data = _tiny_dataset(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(data / "images" / name), rng.integers(0, 255, (64, 64), np.uint8))
    with open(data / "points.csv", "a") as fh:
        fh.write("b.png,30,30\n")
    config = dataclasses.replace(
        _tiny_config(data, tmp_path / "model", 3), val=["b.png"], steps_per_epoch=1
    )

    class Interrupt(Exception):
        pass

    def stop_after_second(line):  # (its checkpoint written)
        if line.startswith("epoch 2/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, progress=False, log=stop_after_second)
    said: list = []
    result = train(
        dataclasses.replace(config, epochs=1, resume=True), progress=False, log=said.append
    )
    assert any("2 epochs trained already, --epochs 1 asks for no more" in line for line in said)
    info = json.loads((tmp_path / "model" / "model.json").read_text())
    assert info["training"]["epochs"] == len(result.history) == 2


def _started_config(dataset: Path, out: Path, epochs: int) -> TrainConfig:
    """The tiny run, started from the phase model: what it leaves open is the model's."""
    return dataclasses.replace(
        _tiny_config(dataset, out, epochs),
        scale=None,
        base_channels=None,
        depth=None,
        modality=None,
        steps_per_epoch=2,
        start_from="phase",
    )


@pytest.mark.data
def test_training_from_a_model_starts_where_it_was_and_keeps_its_shape(small_c2c12, tmp_path):
    """Started from the phase model, a run of two steps already finds the cells of a held-out
    C2C12 frame (a new network does not); the model keeps phase's architecture, input
    normalisation and cell size at the network's scale, records where it started, and takes
    phase's segmentation defaults, sizes in original pixels rescaled to these cells."""
    from cellprop.training.start import starting_model

    config = _started_config(small_c2c12, tmp_path / "started", 1)
    started = train(config, progress=False, log=None)
    new = train(
        dataclasses.replace(config, start_from=None, out=str(tmp_path / "new")),
        progress=False,
        log=None,
    )
    f1 = [run.history[-1]["val_f1"] for run in (started, new)]
    assert f1[0] >= 0.7 and f1[0] > f1[1] + 0.4, f1  # 2026-12-03: 0.786 against 0.028
    phase = starting_model("phase")
    info = json.loads((tmp_path / "started" / "model.json").read_text())
    assert info["architecture"] == phase.info["architecture"]
    assert info["modality"] == "phase"
    assert info["input"]["normalisation"] == phase.info["input"]["normalisation"]
    size = info["training"]["median_neighbour_distance_px"]
    assert info["input"]["scale"] == pytest.approx(16.0 / size, abs=1e-3)
    assert info["cell_diameter_px"] == pytest.approx(16.0, abs=0.05)
    assert info["training"]["started_from"]["name"] == "phase"
    from cellprop.engine import model_info

    assert "; adapted from phase" in model_info(tmp_path / "started").facts()
    assert "adapted" not in model_info(tmp_path / "new").facts()
    from cellprop.app.messages import training_summary  # what the window's log says

    said = f"; held-out images: detection F1 {f1[0]:.3f}"
    assert training_summary(tmp_path / "started") == "; adapted from phase" + said
    assert training_summary(tmp_path / "new") == f"; held-out images: detection F1 {f1[1]:.3f}"
    ratio = size / phase.diameter
    defaults, theirs = info["defaults"], phase.info["defaults"]
    assert defaults["polarity"] == theirs["polarity"] == "bright_boundary"
    assert defaults["propagation_margin_px"] == theirs["propagation_margin_px"]
    assert defaults["region_radius_px"] == pytest.approx(
        theirs["region_radius_px"] * ratio, abs=0.01
    )
    assert defaults["min_size_px"] == round(theirs["min_size_px"] * ratio**2)


def test_started_from_a_model_the_command_runs_ten_epochs_unless_told(tmp_path):
    """cellprop-train --from: 10 epochs by default (the network adapts), 40 without it."""
    assert build_parser().parse_args(["d", "--out", "m"]).epochs is None
    dataset = _tiny_dataset(tmp_path)
    out = tmp_path / "m"
    args = [str(dataset), "--out", str(out), "--from", "phase", "--steps", "1", "--quiet"]
    assert main([*args, "--batch", "2", "--crop", "64"]) == 0
    info = json.loads((out / "model.json").read_text())
    assert info["training"]["epochs"] == 10
    last = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=False)
    assert last["epoch"] == 9 and len(last["history"]) == 10
    assert info["training"]["started_from"]["name"] == "phase"


def test_folders_that_cannot_be_written_a_broken_checkpoint_and_a_stop_are_said(
    tmp_path, capsys, monkeypatch
):
    """No traceback where --out or --work cannot be made (a file in the way), nor for a
    checkpoint cut short; --resume with no checkpoint does not write into a folder of other
    files; a Ctrl-C before the first epoch ended leaves no folder that refuses the run."""
    import cellprop.training.train as training

    dataset = _tiny_dataset(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    base = [str(dataset), "--epochs", "1", "--steps", "1", "--batch", "2", "--crop", "64"]
    base += ["--base-channels", "4", "--depth", "2", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "m"), "--work", str(afile)]) == 2
    assert f"--work {afile} is a file" in capsys.readouterr().err
    assert main([*base, "--out", str(afile / "model")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {afile / 'model'}" in err and "Traceback" not in err
    assert afile.read_text() == "mine"
    # with --work elsewhere, said before training (it was said after the last epoch)
    work = tmp_path / "w"
    assert main([*base, "--out", str(afile / "model"), "--work", str(work)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {afile / 'model'}" in err and not work.exists()

    # an --out there already that cannot be written (a read-only share): said before
    # training, naming it (QA: the whole training ran, then a temporary file was named)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    real = training.tempfile.TemporaryFile

    def refused(*args, dir=None, **kwargs):
        if Path(dir) == readonly:
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(training.tempfile, "TemporaryFile", refused)
    assert main([*base, "--out", str(readonly), "--work", str(work)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {readonly}: Read-only file system (--out: nothing trained)" in err
    assert not work.exists()  # not one epoch, and the folder it made for them gone
    # with --overwrite of an earlier training whose checkpoint is in --work: those epochs are
    # not said to be this training's, kept for --resume (review)
    old = tmp_path / "old-work"
    old.mkdir()
    (old / "checkpoint.pt").write_bytes(b"an earlier training's")
    os.utime(old / "checkpoint.pt", (time.time() - 3600, time.time() - 3600))
    assert main([*base, "--out", str(readonly), "--work", str(old), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "nothing trained" in err and "epochs done are kept" not in err
    assert (old / "checkpoint.pt").read_bytes() == b"an earlier training's"
    monkeypatch.undo()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main([*base, "--out", str(mine), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds files already and no checkpoint to resume from" in err
    assert main([*base, "--out", str(mine)]) == 2  # no --resume offered: nothing to go on with
    err = capsys.readouterr().err
    assert "holds files already" in err and "--resume" not in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    out = tmp_path / "m"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint.pt").write_bytes(b"")  # cut short
    assert main([*base, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'checkpoints' / 'checkpoint.pt'}: not a checkpoint that can be read" in err
    assert "Traceback" not in err

    def stopped(config, progress, log):
        Path(config.out, "checkpoints").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_train", stopped)
    fresh = tmp_path / "fresh"
    assert main([*base, "--out", str(fresh)]) == 130
    assert "before the first epoch ended: nothing kept" in capsys.readouterr().err
    assert not fresh.exists()
    # the folders above it that it made go too (QA: newa/newb/ were left)
    assert main([*base, "--out", str(tmp_path / "newa" / "newb" / "model")]) == 130
    assert "nothing kept" in capsys.readouterr().err and not (tmp_path / "newa").exists()

    def terminated(config, progress, log):  # the window's Stop, a scheduler's end of time
        Path(config.out, "checkpoints").mkdir(parents=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # (the signal arrives first)

    monkeypatch.setattr(training, "_train", terminated)
    assert main([*base, "--out", str(fresh)]) == 130
    assert "before the first epoch ended: nothing kept" in capsys.readouterr().err
    assert not fresh.exists()
    monkeypatch.undo()

    # stopped once the model is written, while its size reference is measured: said so
    # (it said "continue with --resume", as if the model, already replaced, were not there)
    def measuring(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_measure_size_reference", measuring)
    assert main([*base, "--out", str(fresh)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted after the model was written to {fresh}, before its size" in err
    assert (fresh / "model.json").is_file() and (fresh / "guided.onnx").is_file()


def test_one_cell_an_image_trains_with_its_size_given_and_a_shipped_name_is_said(tmp_path, capsys):
    """Single-cell crops: the spacing of the points cannot be measured, so the size must
    be given, and is enough (it was refused whatever was given); a model named as an
    installed one (trained into phase/) is said to be hidden by it."""
    dataset = tmp_path / "set"
    (dataset / "images").mkdir(parents=True)
    for k in range(2):
        cv2.imwrite(str(dataset / "images" / f"c{k}.png"), _blobs((64, 64), [(32, 32)]))
    (dataset / "points.csv").write_text("image,x,y\nc0.png,32,32\nc1.png,32,32\n")
    base = [str(dataset), "--epochs", "1", "--steps", "1", "--batch", "2", "--crop", "64"]
    base += ["--base-channels", "4", "--depth", "2"]
    assert main([*base, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "give it (--cell-diameter PIXELS)" in capsys.readouterr().err
    out = tmp_path / "phase"
    assert main([*base, "--out", str(out), "--cell-diameter", "20"]) == 0
    err = capsys.readouterr().err
    assert "note: a model named 'phase' is installed already" in err
    assert f"--model {out.resolve()} with this one" in err  # (a bare phase is the shipped)
    with pytest.raises(SystemExit):  # an unset variable: not the folder it runs in
        main([*base, "--out", ""])
    assert "--out: must name a folder, got an empty name" in capsys.readouterr().err
    info = json.loads((out / "model.json").read_text())
    assert info["training"]["median_neighbour_distance_px"] is None
    assert info["cell_diameter_px"] == pytest.approx(20 * info["input"]["scale"])


def test_resume_without_a_checkpoint_and_no_validation_images_are_said(tmp_path, capsys):
    """--resume where no checkpoint is: the training starts anew, and says so (it did so
    without a word); a training without validation images names the loss it ends with as
    the training images' (it called it the validation loss)."""
    dataset = _tiny_dataset(tmp_path)
    out = tmp_path / "m"
    args = [str(dataset), "--out", str(out), "--epochs", "1", "--steps", "1", "--batch", "2"]
    assert main([*args, "--crop", "64", "--resume", "--base-channels", "4", "--depth", "2"]) == 0
    captured = capsys.readouterr()
    assert "--resume: no checkpoint at " in captured.err and "starts anew" in captured.err
    assert "training loss (no validation)" in captured.out


@pytest.mark.data
def test_a_training_from_a_model_resumes_where_it_stopped(small_c2c12, tmp_path):
    """Interrupted and resumed, a training started from a model ends as an uninterrupted one
    (the BatchNorm statistics are taken once, at the start, and then kept in the checkpoint);
    resuming it from another model is refused."""
    config = _started_config(small_c2c12, tmp_path / "whole", 3)
    whole = train(config, progress=False, log=None)
    config = dataclasses.replace(config, out=str(tmp_path / "resumed"))
    resumed = _interrupted_and_resumed(config)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in whole.history]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    other = dataclasses.replace(config, resume=True, start_from="nuclei")
    with pytest.raises(ValueError, match="cannot resume, --from was phase"):
        train(other, progress=False, log=None)


def test_what_a_training_is_given_is_read_as_meant(tmp_path, capsys, monkeypatch):
    """One set given twice is refused (it was trained on twice); `.` is the set's own name
    (the model recorded an empty one); --resume takes the set spelled otherwise (set/ for
    set: it was refused); a --work holding another training's checkpoint is not replaced
    unasked; --quiet leaves out the epochs' lines, not the notes."""
    dataset = _tiny_dataset(tmp_path)
    cv2.imwrite(str(dataset / "images" / "b.png"), np.zeros((64, 64), np.uint8))  # no points
    short = ["--epochs", "1", "--steps", "1", "--batch", "2", "--crop", "64"]
    short += ["--base-channels", "4", "--depth", "2"]
    assert main([str(dataset), str(tmp_path / "set/"), "--out", str(tmp_path / "x"), *short]) == 2
    assert "the same training set given twice" in capsys.readouterr().err
    monkeypatch.chdir(dataset)
    assert main([".", "--out", str(tmp_path / "m"), *short, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 image(s) without cell centres left out: b.png" in err  # a note, said
    assert "epoch 1/1" not in err
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["training"]["datasets"] == ["set"]
    assert info["description"].endswith("trained on set")
    monkeypatch.chdir(tmp_path)
    assert main(["set/", "--out", "m", *short, "--epochs", "2", "--resume", "--quiet"]) == 0
    assert "resuming from" in capsys.readouterr().err
    (tmp_path / "linked").symlink_to(dataset)  # a set given by a link: by the link's name
    from cellprop.training.data import load_datasets

    assert [s.name for s in load_datasets(["linked"])] == ["linked/a.png"]
    work = tmp_path / "work"
    assert main(["set", "--out", "a", "--work", str(work), *short, "--quiet"]) == 0
    before = (work / "checkpoint.pt").read_bytes()
    assert main(["set", "--out", "b", "--work", str(work), *short, "--seed", "3"]) == 2
    assert "holds a training's checkpoint already" in capsys.readouterr().err
    assert (work / "checkpoint.pt").read_bytes() == before
