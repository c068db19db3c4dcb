"""engine.output: result files that open elsewhere (Fiji ROIs, TIFF labels) and never clobber."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest
import roifile
import tifffile
from cellprop.engine import (
    OutputExists,
    PointsError,
    measure,
    read_image,
    read_labels,
    read_points,
    read_table,
    write_image_table,
    write_labels,
    write_overlay,
    write_points,
    write_roi_zip,
    write_table,
    write_tables,
    write_training_set,
)
from cellprop.engine.features import feature_transform, rings
from cellprop.engine.output import boundary_loops, masks_from_rois
from skimage.draw import ellipse


def awkward_labels() -> np.ndarray:
    """Concave, touching, diagonal-pinched and one-pixel cells, and one at the border."""
    rng = np.random.default_rng(5)
    labels = np.zeros((90, 120), np.uint16)
    k = 0
    for _ in range(12):
        k += 1
        rr, cc = ellipse(
            rng.integers(5, 85),
            rng.integers(5, 115),
            rng.integers(3, 10),
            rng.integers(3, 10),
            labels.shape,
            rotation=rng.uniform(0, 3),
        )
        labels[rr, cc] = k
    k += 1
    labels[40:50, 0:3] = k  # on the border
    k += 1
    labels[5, 60] = k  # one pixel
    k += 1
    # An L with a diagonal pinch: (70,100)-(71,101) touch only at a corner.
    labels[60:70, 100:102] = k
    labels[68:70, 102:110] = k
    labels[70, 110] = k  # corner-touching pixel: a cell in two 4-connected pieces
    return labels


def test_outline_of_a_square_is_its_four_corners():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 2:4] = True
    # Rows 1-2, columns 2-3: corners x 2..4, y 1..3, clockwise on screen.
    (outline,) = boundary_loops(mask)
    np.testing.assert_array_equal(outline, [[2, 1], [4, 1], [4, 3], [2, 3]])


def test_roi_zip_round_trips_to_the_same_masks(tmp_path):
    """Each cell's ROI fills to exactly its pixels in ImageJ's way: a traced polygon for a
    cell of one piece without holes, a composite shape (filled even-odd) for a cell with a
    hole (one holding a piece of the cell too) or in two pieces that touch at a corner."""
    labels = np.zeros((100, 140), np.uint16)
    labels[:90, :120] = awkward_labels()
    pinched = int(labels.max())
    labels[80:95, 122:138] = pinched + 1  # a cell with a hole
    labels[85:88, 127:131] = 0
    labels[75:78, 122:125] = pinched + 2  # a hole of one pixel
    labels[76, 123] = 0
    labels[40:50, 125:135] = pinched + 3  # a hole that holds a piece of the cell
    labels[42:48, 127:133] = 0
    labels[44:46, 129:131] = pinched + 3
    path = write_roi_zip(tmp_path / "rois.zip", labels)
    rois = roifile.roiread(path)
    assert len(rois) == len(np.unique(labels)) - 1
    composite = {r.name for r in rois if r.composite}
    assert composite == {f"cell-{pinched + k}" for k in range(4)}
    assert all(r.roitype == roifile.ROI_TYPE.TRACED for r in rois if not r.composite)
    np.testing.assert_array_equal(masks_from_rois(path, labels.shape), labels)
    assert not masks_from_rois(path, labels.shape, "ring").any()  # no ring asked


def test_roi_zip_places_cells_of_a_stitched_strip_beyond_60535_px(tmp_path):
    """A traced polygon's corner is 16 bits that ImageJ reads as negative from 60,536 up
    (``RoiDecoder.getShort``): a cell there is a composite shape, whose path is floats, and
    fills to its own pixels; one at 40,000 px stays a polygon (ImageJ reads that one right)."""
    labels = np.zeros((20, 70_010), np.uint16)
    labels[5:10, 40_000:40_005] = 1
    labels[5:10, 62_000:62_005] = 2
    labels[12:15, 69_000:69_010] = 3
    labels[3:6, 100:104] = 4
    path = write_roi_zip(tmp_path / "rois.zip", labels)
    rois = {r.name: r for r in roifile.roiread(path)}
    assert {name for name, r in rois.items() if r.composite} == {"cell-2", "cell-3"}
    assert rois["cell-1"].roitype == roifile.ROI_TYPE.TRACED
    np.testing.assert_array_equal(masks_from_rois(path, labels.shape), labels)


def test_boundary_loops_are_outer_clockwise_and_holes_counter_clockwise():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False
    outer, hole = boundary_loops(mask)
    np.testing.assert_array_equal(outer, [[1, 1], [6, 1], [6, 6], [1, 6]])
    np.testing.assert_array_equal(hole, [[4, 3], [3, 3], [3, 4], [4, 4]])
    assert boundary_loops(np.zeros((3, 3), bool)) == []


def test_roi_zip_with_rings_holds_each_cells_ring_after_the_cells(tmp_path):
    """With ``ring``, the zip holds ``ring-<label>`` ROIs after the cells' that fill to
    exactly the pixels the Ring_ columns measure (a ring round a cell: its hole), from the
    transform given or made."""
    labels = awkward_labels()
    transform = feature_transform(labels)
    path = write_roi_zip(tmp_path / "rois.zip", labels, ring=3, transform=transform)
    names = [r.name for r in roifile.roiread(path)]
    n = int(labels.max())
    assert names == [f"cell-{k}" for k in range(1, n + 1)] + [f"ring-{k}" for k in range(1, n + 1)]
    np.testing.assert_array_equal(masks_from_rois(path, labels.shape, "ring"), rings(labels, 3))
    np.testing.assert_array_equal(masks_from_rois(path, labels.shape), labels)
    again = write_roi_zip(tmp_path / "again.zip", labels, ring=3)
    assert again.read_bytes() == path.read_bytes()  # the same rings without a transform


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's")
def test_results_are_readable_as_any_file_made_here_and_a_replaced_one_keeps_its_mode(tmp_path):
    """Result files get the mode the umask gives a new file (colleagues on a shared disk
    read them; they were the owner's alone, 0600, as the temporary file they were written
    to); a file replaced (overwrite) keeps the mode it had."""
    umask = os.umask(0o022)
    os.umask(umask)
    labels = awkward_labels()
    made = write_labels(tmp_path / "l.tif", labels)
    assert made.stat().st_mode & 0o777 == 0o666 & ~umask
    made.chmod(0o640)
    write_labels(made, labels, overwrite=True)
    assert made.stat().st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_labels_tiff_keeps_values_and_pixel_size(tmp_path):
    labels = awkward_labels()
    write_labels(tmp_path / "l.tif", labels, pixel_size=0.65)
    got = read_image(tmp_path / "l.tif")
    np.testing.assert_array_equal(got.pixels, labels)
    assert got.pixel_size == pytest.approx(0.65) and got.unit == "um"
    many = np.arange(70000, dtype=np.uint32).reshape(280, 250)
    write_labels(tmp_path / "many.tif", many)
    assert tifffile.imread(tmp_path / "many.tif").dtype == np.uint32
    # past 65535 cells the pixel size keeps its unit, as pixels a centimetre (it was written
    # with no unit, and read back as none)
    for size, unit, um in ((0.65, "um", 0.65), (650.0, "nm", 0.65)):
        write_labels(tmp_path / "many.tif", many, pixel_size=size, unit=unit, overwrite=True)
        got = read_image(tmp_path / "many.tif")
        assert got.pixel_size == pytest.approx(um) and got.unit == "um", (size, unit)


def test_cell_tables_and_labels_read_back_as_written(tmp_path):
    # What a continued batch takes over from its earlier part must write out the same again.
    labels = awkward_labels()
    image = np.random.default_rng(2).integers(0, 4000, labels.shape).astype(np.uint16)
    table = measure(labels, image, pixel_size=0.5, unit="um")
    write_table(tmp_path / "a.csv", table)
    back = read_table(tmp_path / "a.csv")
    assert back.names == table.names and len(back) == len(table)
    write_tables(tmp_path / "both.csv", [("x.tif", table)])
    write_tables(tmp_path / "both_back.csv", [("x.tif", back)])
    assert (tmp_path / "both.csv").read_bytes() == (tmp_path / "both_back.csv").read_bytes()
    write_labels(tmp_path / "l.tif", labels, pixel_size=0.5)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.tif"), labels)
    (tmp_path / "short.csv").write_text("ObjectNumber,AreaShape_Area\n1,20\n2\n")
    with pytest.raises(ValueError, match="short.csv: not a cell table"):
        read_table(tmp_path / "short.csv")
    with pytest.raises(ValueError, match="a.csv: not a label image"):
        read_labels(tmp_path / "a.csv")


def test_table_values_are_written_as_a_spreadsheet_reads_them():
    """Ten significant digits, 1/0 for yes/no, nothing for no number, and no negative zero
    (the orientation of a symmetric cell comes out as -0.0)."""
    from cellprop.engine.output import format_value

    assert format_value(-0.0) == format_value(np.float64(-0.0)) == "0"
    assert format_value(np.float32(-0.0)) == "0"
    assert format_value(-1e-12) == "-1e-12" and format_value(2 / 3) == "0.6666666667"
    assert format_value(np.nan) == "" and format_value(True) == "1" and format_value(7) == "7"


def test_a_cell_table_saved_again_by_a_spreadsheet_reads_back_the_same(tmp_path):
    """A cell table opened in Excel and saved again: with its byte-order mark (CSV UTF-8),
    or as a European Excel saves it (semicolons, decimal commas, cp1252): the same numbers
    (it was "not a cell table", and a continued run segmented the image again)."""
    import csv

    table = measure(awkward_labels(), pixel_size=0.5, unit="um")
    write_table(tmp_path / "a.csv", table)
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(tmp_path / "bom.csv", "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)
    with open(tmp_path / "de.csv", "w", newline="", encoding="cp1252") as fh:
        csv.writer(fh, delimiter=";").writerows(
            [rows[0]] + [[v.replace(".", ",") for v in row] for row in rows[1:]]
        )
    made = read_table(tmp_path / "a.csv")
    for name in ("bom.csv", "de.csv"):
        back = read_table(tmp_path / name)
        assert back.names == made.names, name
        for column in made.names:
            np.testing.assert_array_equal(back.columns[column], made.columns[column])


def test_the_image_table_counts_and_averages_each_images_cells(tmp_path):
    """images.csv: one row per image, its cell count and the mean and median of each
    measurement over its cells (CellProfiler's per-image names), not of positions, numbers
    or orientations; an image without cells counts 0 with empty means."""
    import csv

    labels = awkward_labels()
    image = np.random.default_rng(2).integers(0, 4000, labels.shape).astype(np.uint16)
    table = measure(labels, image)
    none = measure(np.zeros((20, 20), np.uint16), np.zeros((20, 20), np.uint16))
    calibrated = measure(labels, image, pixel_size=0.5, unit="um")
    write_image_table(
        tmp_path / "images.csv", [("a.tif", table, None), ("m.tif", none, 3), ("c.tif", calibrated)]
    )
    with open(tmp_path / "images.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["Image"], r["Page"], r["Count_Cells"]) for r in rows] == [
        ("a.tif", "", str(len(table))),
        ("m.tif", "3", "0"),
        ("c.tif", "", str(len(table))),
    ]
    area = np.asarray(table.columns["AreaShape_Area"], float)
    assert float(rows[0]["Mean_Cells_AreaShape_Area"]) == pytest.approx(area.mean())
    assert float(rows[0]["Median_Cells_AreaShape_Area"]) == pytest.approx(np.median(area))
    mean = np.asarray(table.columns["Intensity_MeanIntensity"], float)
    assert float(rows[0]["Mean_Cells_Intensity_MeanIntensity"]) == pytest.approx(mean.mean())
    assert float(rows[2]["Mean_Cells_AreaShape_Area_um2"]) == pytest.approx(area.mean() * 0.25)
    touching = np.asarray(table.columns["Neighbors_NumberOfNeighbors_Adjacent"], float)
    assert float(rows[0]["Mean_Cells_Neighbors_NumberOfNeighbors_Adjacent"]) == pytest.approx(
        touching.mean()
    )
    assert rows[0]["Mean_Cells_AreaShape_Area_um2"] == rows[2]["Mean_Cells_AreaShape_Area"] == ""
    assert rows[1]["Mean_Cells_AreaShape_Area"] == rows[1]["Median_Cells_AreaShape_Area"] == ""
    assert not [
        name
        for name in rows[0]
        if any(part in name for part in ("Center", "BoundingBox", "ObjectNumber", "Orientation"))
    ]


def test_overlay_numbers_each_cell_as_the_table_does(tmp_path):
    """Beside each centre the overlay writes its cell's number (ObjectNumber in the table):
    light text, found just above right of the centre, and nowhere without centres."""
    import cv2

    labels = np.zeros((80, 120), np.uint16)
    labels[10:50, 10:50], labels[20:70, 60:110] = 1, 2
    image = np.full(labels.shape, 100, np.uint16)
    centres = np.array([[30.0, 30.0], [85.0, 45.0]])
    write_overlay(tmp_path / "n.png", image, labels, centres=centres)
    write_overlay(tmp_path / "plain.png", image, labels)
    rgb = cv2.imread(str(tmp_path / "n.png"))[..., ::-1]
    plain = cv2.imread(str(tmp_path / "plain.png"))[..., ::-1]
    white = (rgb >= 200).all(axis=2)  # the text's strokes (anti-aliased)
    assert not (plain >= 200).all(axis=2).any()
    for x, y in centres.astype(int):
        assert white[y - 12 : y, x + 2 : x + 16].sum() >= 5  # the digit's strokes
    assert white.sum() == sum(
        white[y - 14 : y + 2, x : x + 18].sum() for x, y in centres.astype(int)
    )


def test_overlay_writes_the_numbers_given_beside_the_cells(tmp_path):
    """numbers= (a followed time-lapse's tracks) replace the ObjectNumbers beside the
    centres: a two-digit number reaches further right than "1", the cell with number 2
    looks as cell 2 does by default; a count that does not fit the cells is refused."""
    import cv2

    labels = np.zeros((80, 120), np.uint16)
    labels[10:50, 10:50], labels[20:70, 60:110] = 1, 2
    image = np.full(labels.shape, 100, np.uint16)
    centres = np.array([[30.0, 30.0], [85.0, 45.0]])
    write_overlay(tmp_path / "plain.png", image, labels, centres=centres)
    write_overlay(tmp_path / "given.png", image, labels, centres=centres, numbers=[12, 2])

    def strokes(name):
        return (cv2.imread(str(tmp_path / name))[..., ::-1] >= 200).all(axis=2)

    plain, given = strokes("plain.png"), strokes("given.png")
    x, y = centres[0].astype(int)
    right = [np.nonzero(d[y - 14 : y + 2, x : x + 30].any(axis=0))[0].max() for d in (plain, given)]
    assert right[1] >= right[0] + 5  # "12" is wider than "1"
    x, y = centres[1].astype(int)
    assert np.array_equal(plain[y - 14 : y + 2, x : x + 18], given[y - 14 : y + 2, x : x + 18])
    with pytest.raises(ValueError, match="1 numbers for 2 cells"):
        write_overlay(tmp_path / "bad.png", image, labels, centres=centres, numbers=[3])
    assert not (tmp_path / "bad.png").exists()


def test_overlay_draws_outlines(tmp_path):
    labels = awkward_labels()
    image = np.full(labels.shape, 100, np.uint16)
    write_overlay(tmp_path / "o.png", image, labels, centres=np.array([[60.0, 40.0]]))
    rgb = read_image(tmp_path / "o.png").pixels  # grey reading is enough to see drawing
    assert rgb.shape == labels.shape and len(np.unique(rgb)) > 1


def test_overlay_of_a_float_image_with_nan_pixels_shows_the_image(tmp_path):
    """A masked ratio image (NaN where masked): its other pixels are stretched as they would
    be without the NaN (the stretch was NaN, and the whole overlay black), the NaN drawn
    black, and no warning printed."""
    rng = np.random.default_rng(3)
    image = rng.random((60, 80)).astype(np.float32)
    labels = np.zeros(image.shape, np.int32)
    masked = image.copy()
    masked[:5, :5] = np.nan
    masked[10, 10] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_overlay(tmp_path / "clean.png", image, labels)
        write_overlay(tmp_path / "masked.png", masked, labels)
    clean = read_image(tmp_path / "clean.png").pixels
    shown = read_image(tmp_path / "masked.png").pixels
    assert shown.mean() > 100 and (shown[:5, :5] == 0).all()
    away = np.ones(image.shape, bool)
    away[:11, :11] = False
    assert np.abs(shown[away].astype(int) - clean[away]).max() <= 1


def test_overlay_of_a_32_bit_image_far_from_0_shows_its_contrast(tmp_path):
    """A uint32 image of 2**31 + 0..255 (a camera's offset): drawn as the same pixels without
    the offset, not rounded to a few grey levels by float32 (the overlay was nearly flat)."""
    rng = np.random.default_rng(4)
    image8 = rng.integers(0, 256, (60, 80)).astype(np.uint8)
    labels = np.zeros(image8.shape, np.int32)
    write_overlay(tmp_path / "own.png", image8, labels)
    write_overlay(tmp_path / "far.png", image8.astype(np.uint32) + np.uint32(2**31), labels)
    own, far = (read_image(tmp_path / f"{n}.png").pixels for n in ("own", "far"))
    assert len(np.unique(far)) > 200
    np.testing.assert_array_equal(far, own)


def test_overlay_draws_the_outer_edge_of_each_cells_ring_when_one_was_measured(tmp_path):
    """ring=5: a cyan line where each cell's ring of 5 px ends (the background 5 px out from
    a lone cell; between two cells 6 px apart, where their rings meet), the cells' own
    outlines yellow as ever; no cyan without a ring."""
    import cv2

    labels = np.zeros((80, 140), np.uint16)
    labels[20:60, 20:60], labels[20:60, 66:106] = 1, 2  # 6 px apart
    image = np.full(labels.shape, 100, np.uint16)
    write_overlay(tmp_path / "ring.png", image, labels, ring=5)
    write_overlay(tmp_path / "none.png", image, labels)

    def cyan(name):
        rgb = cv2.imread(str(tmp_path / name))[..., ::-1].astype(int)
        return (rgb == (0, 200, 255)).all(axis=2), (rgb == (255, 220, 0)).all(axis=2)

    ring, yellow = cyan("ring.png")
    none, plain_yellow = cyan("none.png")
    assert not none.any() and np.array_equal(yellow, plain_yellow)
    assert ring[40, 14:16].any() and not ring[40, :13].any()  # 5 px left of cell 1's edge
    assert ring[14:16, 40].any() and not ring[:13, 40].any()  # and above it
    assert ring[40, 60:66].any()  # where the two rings meet
    assert not ring[labels > 0].any()  # never over a cell


def test_nothing_is_overwritten_without_asking(tmp_path):
    target = tmp_path / "x_labels.tif"
    target.write_bytes(b"the user's file")
    with pytest.raises(OutputExists, match="x_labels.tif"):
        write_labels(target, np.ones((4, 4), np.uint16))
    assert target.read_bytes() == b"the user's file"
    write_labels(target, np.ones((4, 4), np.uint16), overwrite=True)
    assert tifffile.imread(target).sum() == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_labels.tif"]  # no temp files left


def test_points_written_read_back_exactly(tmp_path):
    rows = [("a.tif", np.array([[1.5, 2.0], [1e-3, 1234.5678]])), ("b c.png", np.zeros((0, 2)))]
    write_points(tmp_path / "p.csv", rows)
    back = read_points(tmp_path / "p.csv")
    assert list(back) == ["a.tif"]  # an image without centres has no rows
    assert back["a.tif"].tolist() == [[1.5, 2.0], [1e-3, 1234.5678]]
    with pytest.raises(OutputExists):
        write_points(tmp_path / "p.csv", rows)


def test_a_training_set_grows_and_refuses_what_it_would_lose(tmp_path):
    folder = tmp_path / "set"
    plane = np.arange(200, dtype=np.uint16).reshape(10, 20)
    write_training_set(folder, [("one.tif", plane, [(3, 4)])])
    assert np.array_equal(read_image(folder / "images" / "one.tif").pixels, plane)
    write_training_set(folder, [("two.tif", plane.astype(np.float32), [(5, 6), (7, 8)])])
    assert {k: v.tolist() for k, v in read_points(folder / "points.csv").items()} == {
        "one.tif": [[3.0, 4.0]],
        "two.tif": [[5.0, 6.0], [7.0, 8.0]],
    }
    before = (folder / "points.csv").read_text()
    with pytest.raises(OutputExists):  # one.tif is there: replaced only when asked
        write_training_set(folder, [("one.tif", plane, [(1, 1)])])
    with pytest.raises(ValueError, match="two images would be saved as x.tif"):
        write_training_set(folder, [("x.tif", plane, [(1, 1)]), ("x.tif", plane, [(2, 2)])])
    assert (folder / "points.csv").read_text() == before
    write_training_set(folder, [("one.tif", plane, [(1, 1)])], overwrite=True)
    assert read_points(folder / "points.csv")["one.tif"].tolist() == [[1.0, 1.0]]
    assert read_points(folder / "points.csv")["two.tif"].shape == (2, 2)
    other = tmp_path / "other"
    other.mkdir()
    (other / "points.csv").write_text("x,y\n1,2\n")  # not a dataset's points file
    with pytest.raises(PointsError, match="has no image column"):
        write_training_set(other, [("one.tif", plane, [(1, 1)])])
    assert not (other / "images").exists()
    # a sources.csv of the user's own there (samples and conditions): refused, kept as it is
    # (QA: replaced by the set's record without a word)
    mine = tmp_path / "plate1"
    mine.mkdir()
    (mine / "sources.csv").write_text("sample,condition,date\nA1,control,2026-11-30\n")
    with pytest.raises(PointsError, match=r"sources\.csv: its columns are sample,condition"):
        write_training_set(mine, [("one.tif", plane, [(1, 1)])], sources=[("/a.tif", 0, 0)])
    assert (mine / "sources.csv").read_text() == "sample,condition,date\nA1,control,2026-11-30\n"
    assert sorted(p.name for p in mine.iterdir()) == ["sources.csv"]


def test_the_sets_own_image_corrected_keeps_where_it_was_taken_from(tmp_path):
    """Channel 1 of a file saved into a set, then its image opened from the set's images/
    and its centres corrected: sources.csv still says the file and channel 1 (QA: it said
    the set's own image, channel 0, and a model trained on it segmented channel 0)."""
    from cellprop.engine import read_training_sources

    folder = tmp_path / "set"
    plane = np.arange(200, dtype=np.uint16).reshape(10, 20)
    write_training_set(folder, [("two_p0c1.tif", plane, [(3, 4)])], sources=[("/d/two.tif", 0, 1)])
    own = folder / "images" / "two_p0c1.tif"
    write_training_set(folder, [("two_p0c1.tif", None, [(3, 4), (9, 5)])], sources=[(own, 0, 0)])
    assert read_training_sources(folder) == {
        "two_p0c1.tif": {"file": "/d/two.tif", "page": 0, "channel": 1}
    }
    assert read_points(folder / "points.csv")["two_p0c1.tif"].tolist() == [[3, 4], [9, 5]]


def test_an_image_saved_with_no_centres_leaves_the_training_set_s_points(tmp_path):
    """An image of the set given with no pixels and no centres (every mark on it cleared):
    its rows go, with those of a stem naming it and in a points.csv with columns of its own;
    its file and its source stay. One not in the set is passed over (no source row, no
    error), and the sources of the others stay aligned with their planes."""
    from cellprop.engine import read_training_sources

    folder = tmp_path / "set"
    plane = np.arange(200, dtype=np.uint16).reshape(10, 20)
    write_training_set(
        folder,
        [("one.tif", plane, [(3, 4)]), ("two.tif", plane, [(5, 6)])],
        sources=[("a.png", 0, 0), ("b.png", 0, 0)],
    )
    with open(folder / "points.csv", "a") as fh:
        fh.write("one,7,8\n")  # the same image named by its stem
    write_training_set(
        folder,
        [("gone.tif", None, []), ("one.tif", None, np.zeros((0, 2))), ("two.tif", plane, [(1, 1)])],
        overwrite=True,
        sources=[("g.png", 0, 0), ("a.png", 0, 0), ("b2.png", 2, 0)],
    )
    assert {k: v.tolist() for k, v in read_points(folder / "points.csv").items()} == {
        "two.tif": [[1.0, 1.0]]
    }
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["one.tif", "two.tif"]
    sources = read_training_sources(folder)
    assert sorted(sources) == ["one.tif", "two.tif"]
    assert (sources["one.tif"]["file"], sources["two.tif"]["file"]) == ("a.png", "b2.png")
    assert sources["two.tif"]["page"] == 2
    (folder / "points.csv").write_text("image,x,y,kind\ntwo.tif,1,1,a\none.tif,3,4,b\n")
    write_training_set(folder, [("two.tif", None, [])])
    assert (folder / "points.csv").read_text().splitlines() == ["image,x,y,kind", "one.tif,3,4,b"]


def test_a_training_sets_own_columns_stay_when_centres_are_saved_into_it(tmp_path):
    """A points.csv with columns of its own (a cell type, a comment; saved from a European
    Excel, semicolons and decimal commas) and centres saved into it again: the other
    images' rows keep them (they were dropped, unasked, the file rewritten as image,x,y),
    the image saved anew has its rows with those columns blank."""
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    plane = np.zeros((300, 400), np.uint8)
    (folder / "points.csv").write_text(
        "image;x;y;cell_type;comment\n"
        "t000.tif;164,9;200,8;mitotic;check\n"
        "t001.tif;12;13;interphase;\n"
    )
    write_training_set(folder, [("t001.tif", plane, [(100, 100), (200, 200)])])
    lines = (folder / "points.csv").read_text().splitlines()
    assert lines == [
        "image,x,y,cell_type,comment",
        "t000.tif,164.9,200.8,mitotic,check",
        "t001.tif,100,100,,",
        "t001.tif,200,200,,",
    ]
    assert read_points(folder / "points.csv")["t000.tif"].tolist() == [[164.9, 200.8]]
    # saved again with the centres it had and one more (the window opened them and a cell
    # was clicked): those that stay keep their columns (all the image's were blanked)
    (folder / "points.csv").write_text(
        "image,x,y,cell_type\nt000.tif,164.9,200.8,mitotic\nt001.tif,12.25,13,interphase\n"
    )
    write_training_set(
        folder,
        [
            ("t000.tif", plane, [(164.9, 200.8)]),
            ("t001.tif", None, [(12.25, 13.0), (50, 60)]),  # (the set's own image)
        ],
        overwrite=True,
    )
    assert (folder / "points.csv").read_text().splitlines() == [
        "image,x,y,cell_type",
        "t000.tif,164.9,200.8,mitotic",
        "t001.tif,12.25,13,interphase",
        "t001.tif,50,60,",
    ]
    # tabs and decimal commas (Fiji's text, a European spreadsheet's), a comment typed over
    # two lines, and rows naming an image by its stem: read as read_points reads them, the
    # stem's rows replaced with the image's (they stayed, and were trained on beside them)
    (folder / "points.csv").write_text(
        'image\tx\ty\tcomment\nt000.tif\t1,5\t2,5\t"two\nlines"\nt002\t3\t4\t\n'
    )
    write_training_set(folder, [("t002.tif", plane, [(7, 8)])])
    back = read_points(folder / "points.csv")
    assert {k: v.tolist() for k, v in back.items()} == {
        "t000.tif": [[1.5, 2.5]],
        "t002.tif": [[7.0, 8.0]],
    }
    assert '"two\nlines"' in (folder / "points.csv").read_text()


@pytest.mark.parametrize("columns", ["", ",comment"])
def test_centres_saved_beside_an_image_of_their_stem_keep_that_images_rows(tmp_path, columns):
    """A set whose points.csv names images/t000.png by its stem ("t000", as the README
    allows), and t000.tif (another file: marked in the window) saved into it: t000.png's rows
    were dropped, unasked, and t000.png left out of the next training. They stay, named by
    the image's whole name, since "t000" now names two images."""
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "t000.png"), np.zeros((60, 80), np.uint8))
    extra = ",x" if columns else ""
    (folder / "points.csv").write_text(
        f"image,x,y{columns}\nt000,10,11{extra}\nt000,20,21{extra}\nt000,30,31{extra}\n"
    )
    write_training_set(folder, [("t000.tif", np.zeros((60, 80), np.uint8), [(5, 6)])])
    back = read_points(folder / "points.csv")
    assert {k: v.tolist() for k, v in back.items()} == {
        "t000.png": [[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]],
        "t000.tif": [[5.0, 6.0]],
    }
    # Saved again: t000.tif's rows replaced, t000.png's kept.
    write_training_set(
        folder, [("t000.tif", np.zeros((60, 80), np.uint8), [(7, 8)])], overwrite=True
    )
    back = read_points(folder / "points.csv")
    assert back["t000.tif"].tolist() == [[7.0, 8.0]] and len(back["t000.png"]) == 3


def test_a_table_as_written_holds_the_numbers_its_file_gives_back(tmp_path):
    """What a run computes from a table measured now (images.csv's means, the distances of
    cells followed) is what it computes from the table read back from its file (a continued
    run's kept images): the same numbers, to the last bit."""
    from cellprop.engine.features import CellTable
    from cellprop.engine.output import as_written, read_table, write_image_table, write_table

    rng = np.random.default_rng(1)
    table = CellTable(
        {
            "ObjectNumber": np.arange(1, 201),
            "AreaShape_Area": rng.uniform(100, 5000, 200),
            "Intensity_MeanIntensity": rng.uniform(0, 1, 200).astype(np.float32),
            "Neighbors_FirstClosestDistance": np.r_[np.nan, -0.0, rng.uniform(1, 9, 198)],
        }
    )
    written = as_written(table)
    back = read_table(write_table(tmp_path / "a_cells.csv", table))
    for name in table.columns:
        np.testing.assert_array_equal(written.columns[name], back.columns[name])
    assert written.columns["AreaShape_Area"].tolist() != table.columns["AreaShape_Area"].tolist()
    write_image_table(tmp_path / "now.csv", [("a.tif", written, None)])
    write_image_table(tmp_path / "back.csv", [("a.tif", back, None)])
    assert (tmp_path / "now.csv").read_bytes() == (tmp_path / "back.csv").read_bytes()
