"""engine.features: closed forms on known shapes, and agreement with scikit-image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cellprop.engine import EXPANDED, measure
from cellprop.engine.features import _expanded, feret_diameters
from skimage.draw import ellipse
from skimage.measure import regionprops


def rectangle_labels(h=8, w=14, top=5, left=7, shape=(30, 40)):
    labels = np.zeros(shape, np.uint16)
    labels[top : top + h, left : left + w] = 1
    return labels


def test_rectangle_closed_forms():
    h, w = 8, 14
    t = measure(rectangle_labels(h, w)).rows()[0]
    assert t["ObjectNumber"] == 1
    assert t["AreaShape_Area"] == h * w
    assert t["AreaShape_Center_X"] == pytest.approx(7 + (w - 1) / 2)
    assert t["AreaShape_Center_Y"] == pytest.approx(5 + (h - 1) / 2)
    assert t["AreaShape_Extent"] == pytest.approx(1.0)
    assert t["AreaShape_Solidity"] == pytest.approx(1.0)
    assert t["AreaShape_ConvexArea"] == h * w
    assert t["AreaShape_MinFeretDiameter"] == pytest.approx(h)
    assert t["AreaShape_MaxFeretDiameter"] == pytest.approx(np.hypot(h, w))
    # Second moments of a w x h block of pixels: variance (n^2 - 1) / 12 per axis.
    assert t["AreaShape_MajorAxisLength"] == pytest.approx(4 * np.sqrt((w * w - 1) / 12))
    assert t["AreaShape_MinorAxisLength"] == pytest.approx(4 * np.sqrt((h * h - 1) / 12))
    assert t["AreaShape_Orientation"] == pytest.approx(0.0)  # wider than tall: along x
    assert t["AreaShape_EquivalentDiameter"] == pytest.approx(2 * np.sqrt(h * w / np.pi))
    assert (t["AreaShape_BoundingBoxMinimum_X"], t["AreaShape_BoundingBoxMinimum_Y"]) == (7, 5)
    assert (t["AreaShape_BoundingBoxMaximum_X"], t["AreaShape_BoundingBoxMaximum_Y"]) == (21, 13)
    assert t["TouchesBorder"] is False
    tall = measure(rectangle_labels(14, 8)).rows()[0]
    assert abs(tall["AreaShape_Orientation"]) == pytest.approx(90.0)


def test_disc_is_round_and_compact():
    r = 20
    yy, xx = np.mgrid[:61, :61]
    labels = ((yy - 30) ** 2 + (xx - 30) ** 2 <= r * r).astype(np.uint8)
    t = measure(labels).rows()[0]
    assert t["AreaShape_Area"] == pytest.approx(np.pi * r * r, rel=0.01)
    # 4 pi A / P^2 is 1 for a true circle; digital perimeters run a few percent long.
    assert t["AreaShape_FormFactor"] == pytest.approx(1.0, abs=0.1)
    # Compactness as CellProfiler 4 has it: P^2 / (4 pi A), the form factor's inverse.
    assert t["AreaShape_Compactness"] == pytest.approx(1 / t["AreaShape_FormFactor"])
    assert t["AreaShape_Eccentricity"] < 0.05
    assert t["AreaShape_MinFeretDiameter"] == pytest.approx(2 * r + 1, abs=1.0)
    assert t["AreaShape_MaxFeretDiameter"] == pytest.approx(2 * r + 1, abs=1.0)


def test_orientation_is_counter_clockwise_from_x_on_screen():
    for angle in (30.0, -45.0, 60.0):
        labels = np.zeros((101, 101), np.uint8)
        # skimage's rotation is counter-clockwise in (row, col) axes with rows downwards;
        # on screen a positive CellProfiler angle rises to the right.
        rr, cc = ellipse(50, 50, 10, 35, rotation=np.radians(angle))
        labels[rr, cc] = 1
        t = measure(labels).rows()[0]
        assert t["AreaShape_Orientation"] == pytest.approx(angle, abs=1.5)


def test_agrees_with_scikit_image_on_irregular_cells():
    rng = np.random.default_rng(3)
    labels = np.zeros((120, 160), np.int32)
    for k in range(1, 9):
        r, c = rng.integers(15, 105), rng.integers(15, 145)
        rr, cc = ellipse(
            r,
            c,
            rng.integers(4, 12),
            rng.integers(4, 12),
            labels.shape,
            rotation=rng.uniform(0, np.pi),
        )
        labels[rr, cc] = k
    image = rng.integers(0, 4000, labels.shape).astype(np.uint16)
    table = measure(labels, image)
    props = {p.label: p for p in regionprops(labels, intensity_image=image)}
    assert table.columns["ObjectNumber"].tolist() == sorted(props)
    for row in table.rows():
        p = props[row["ObjectNumber"]]
        assert row["AreaShape_Area"] == p.area
        assert row["AreaShape_Perimeter"] == pytest.approx(p.perimeter)
        assert row["AreaShape_MajorAxisLength"] == pytest.approx(p.axis_major_length)
        assert row["AreaShape_MinorAxisLength"] == pytest.approx(p.axis_minor_length)
        assert row["AreaShape_Eccentricity"] == pytest.approx(p.eccentricity)
        assert row["AreaShape_Solidity"] == pytest.approx(p.solidity)
        assert row["AreaShape_Extent"] == pytest.approx(p.extent)
        assert row["AreaShape_ConvexArea"] == p.area_convex
        assert row["AreaShape_FormFactor"] == pytest.approx(4 * np.pi * p.area / p.perimeter**2)
        assert row["AreaShape_Compactness"] == pytest.approx(p.perimeter**2 / (4 * np.pi * p.area))
        # Feret diameters against brute force over the pixel squares' corners.
        rr, cc = np.nonzero(labels == p.label)
        corners = np.concatenate(
            [np.stack([rr + dr, cc + dc], 1) for dr in (-0.5, 0.5) for dc in (-0.5, 0.5)]
        )
        dist = np.hypot(*(corners[:, None, :] - corners[None, :, :]).transpose(2, 0, 1))
        assert row["AreaShape_MaxFeretDiameter"] == pytest.approx(dist.max())
        angles = np.radians(np.arange(0, 180, 0.05))
        proj = corners @ np.stack([np.cos(angles), np.sin(angles)])
        widths = proj.max(0) - proj.min(0)
        assert row["AreaShape_MinFeretDiameter"] == pytest.approx(widths.min(), abs=0.01)
        values = image[labels == p.label].astype(float)
        assert row["Intensity_MeanIntensity"] == pytest.approx(values.mean())
        assert row["Intensity_MinIntensity"] == values.min()
        assert row["Intensity_MaxIntensity"] == values.max()
        assert row["Intensity_IntegratedIntensity"] == pytest.approx(values.sum())


def test_a_cell_of_no_perimeter_has_no_form_factor_or_compactness():
    """One- and two-pixel cells have a perimeter of 0 (scikit-image's, as CellProfiler's):
    their form factor and compactness are left empty, not 0 (the least round) or 1."""
    labels = np.zeros((9, 9), np.uint8)
    labels[1, 1] = 1
    labels[5, 5:7] = 2
    labels[2:5, 2] = 3  # a line of three pixels has a perimeter
    rows = measure(labels).rows()
    for row in rows[:2]:
        assert row["AreaShape_Perimeter"] == 0
        assert np.isnan(row["AreaShape_FormFactor"]) and np.isnan(row["AreaShape_Compactness"])
    assert rows[2]["AreaShape_Compactness"] == pytest.approx(1 / rows[2]["AreaShape_FormFactor"])


def test_physical_units_named_and_scaled():
    labels = rectangle_labels(8, 14)
    px = measure(labels).rows()[0]
    um = measure(labels, pixel_size=0.5).rows()[0]
    assert "AreaShape_Area" not in um and "AreaShape_Area_um2" in um
    assert um["AreaShape_Area_um2"] == pytest.approx(px["AreaShape_Area"] * 0.25)
    assert um["AreaShape_Perimeter_um"] == pytest.approx(px["AreaShape_Perimeter"] * 0.5)
    assert um["AreaShape_MaxFeretDiameter_um"] == pytest.approx(
        px["AreaShape_MaxFeretDiameter"] * 0.5
    )
    # Dimensionless and positional columns do not change.
    assert um["AreaShape_FormFactor"] == pytest.approx(px["AreaShape_FormFactor"])
    assert um["AreaShape_Center_X"] == px["AreaShape_Center_X"]


def test_border_flag_and_empty_table():
    labels = rectangle_labels(5, 5, top=0, left=3)
    assert measure(labels).rows()[0]["TouchesBorder"] is True
    empty = measure(np.zeros((10, 10), np.uint16), np.zeros((10, 10), np.uint8))
    assert len(empty) == 0
    assert "AreaShape_Area" in empty.names and "Intensity_MeanIntensity" in empty.names


def test_every_channel_of_a_multi_channel_file_is_measured(tmp_path):
    """A reporter channel's intensity per cell, in cells outlined on another channel: what a
    multi-channel file adds to the table, the values those of each channel's own pixels."""
    import tifffile
    from cellprop.engine import measure_image, read_image

    rng = np.random.default_rng(3)
    stack = rng.integers(0, 4000, (3, 30, 40)).astype(np.uint16)  # C, Y, X
    path = tmp_path / "cyx.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "CYX"})
    labels = np.zeros((30, 40), np.uint16)
    labels[2:10, 3:12], labels[15:28, 20:37] = 1, 2
    data = read_image(path, channel=1)  # segmented on the second channel
    table = measure_image(labels, data)
    for c in range(3):
        for k in (1, 2):
            pixels = stack[c][labels == k].astype(float)
            row = table.rows()[k - 1]
            assert row[f"Intensity_MeanIntensity_C{c}"] == pytest.approx(pixels.mean())
            assert row[f"Intensity_IntegratedIntensity_C{c}"] == pytest.approx(pixels.sum())
            assert row[f"Intensity_MaxIntensity_C{c}"] == pixels.max()
            assert row[f"Intensity_MinIntensity_C{c}"] == pixels.min()
    assert table.columns["Intensity_MeanIntensity"].tolist() == (
        table.columns["Intensity_MeanIntensity_C1"].tolist()
    )
    # One channel: nothing more than the image's own columns; none without cells either way.
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, stack[0])
    assert not [n for n in measure_image(labels, read_image(one)).names if n.endswith("_C0")]
    empty = measure_image(np.zeros_like(labels), data)
    assert len(empty) == 0 and "Intensity_MeanIntensity_C2" in empty.names
    with pytest.raises(ValueError, match="C9 shape"):
        measure(labels, stack[0], channels={"C9": stack[0, :5]})


def test_feret_of_one_pixel_and_a_line():
    assert feret_diameters(np.array([[3, 4]])) == pytest.approx((1.0, np.sqrt(2)))
    line = np.array([[0, c] for c in range(10)])
    assert feret_diameters(line) == pytest.approx((1.0, np.hypot(1, 10)))


def test_feret_from_the_rows_ends_equals_the_hull_of_every_pixels_corners():
    """The hull is taken from each row's first and last pixel only (fast); on blobs, holed
    blobs and one-pixel lines both diameters must be those of every pixel's corners."""
    from scipy.spatial import ConvexHull

    def every_corner(coords):  # the slow reference: every corner of every pixel's square
        square = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
        corners = (coords[:, None, :] + square).reshape(-1, 2)
        hull = corners[ConvexHull(corners).vertices]
        widest = max(np.hypot(*(a - b)) for a in hull for b in hull)
        narrowest = min(
            np.ptp(hull @ np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a)))
            for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True)
        )
        return narrowest, widest

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:40, :40]
    shapes = [np.array([[2, c] for c in range(7)]), np.array([[r, 3] for r in range(9)])]
    for _ in range(60):
        blob = (yy - rng.uniform(10, 30)) ** 2 / rng.uniform(4, 200) + (
            xx - rng.uniform(10, 30)
        ) ** 2 / rng.uniform(4, 200) < 1
        shapes.append(np.argwhere(blob & (rng.random(blob.shape) > rng.uniform(0, 0.6))))
    for coords in shapes:
        if len(coords) == 0:
            continue
        coords = coords.astype(np.float64)
        assert feret_diameters(coords) == pytest.approx(every_corner(coords), abs=1e-9)


def test_a_memo_of_rows_gives_the_same_table_measuring_only_what_changed(monkeypatch):
    """The app measures each corrected image again with the rows of the last measurement
    at hand: the table must be that of a measurement without them, whatever changed."""
    from cellprop.engine import features

    rng = np.random.default_rng(2)
    image = rng.integers(0, 4000, (60, 80)).astype(np.uint16)
    reporter = rng.random((60, 80)).astype(np.float32)
    labels = np.zeros((60, 80), np.uint16)
    for k, (r, c) in enumerate([(10, 10), (10, 40), (30, 25), (45, 60), (50, 10)], start=1):
        labels[r - 6 : r + 6, c - 8 : c + 7] = k
    centres = np.array([[10.0, 10.0], [40.0, 10.0], [25.0, 30.0], [60.0, 45.0], [10.0, 50.0]])
    memo: dict = {}
    kw = dict(centres=centres, channels={"C1": reporter})
    first = measure(labels, image, **kw, memo=memo)
    assert len(memo) == 5
    # A correction: cell 2 removed (the others renumbered), cell 4 grown.
    changed = labels.copy()
    changed[changed == 2] = 0
    changed[changed > 2] -= 1
    changed[40:58, 50:75][changed[40:58, 50:75] == 0] = 3
    kept = np.delete(centres, 1, axis=0)
    slow = features.feret_diameters
    calls = []
    monkeypatch.setattr(features, "feret_diameters", lambda c: calls.append(1) or slow(c))
    again = measure(changed, image, centres=kept, channels={"C1": reporter}, memo=memo)
    assert len(calls) == 1  # only the grown cell measured; the other three from the memo
    monkeypatch.setattr(features, "feret_diameters", slow)
    fresh = measure(changed, image, centres=kept, channels={"C1": reporter})
    assert again.names == fresh.names == first.names and len(memo) == 4
    for name in fresh.names:
        np.testing.assert_array_equal(again.columns[name], fresh.columns[name], err_msg=name)
        assert again.columns[name].dtype == fresh.columns[name].dtype
    # Other pixels under a cell, or another calibration: measured again, not taken over.
    brighter = image.copy()
    brighter[labels == 1] += 7
    for args in [(changed, brighter), (changed, image, 0.5)]:
        with_memo = measure(*args, centres=kept, channels={"C1": reporter}, memo=memo)
        without = measure(*args, centres=kept, channels={"C1": reporter})
        for name in without.names:
            np.testing.assert_array_equal(with_memo.columns[name], without.columns[name])


def _neighbour_columns(table) -> dict:
    """A table's neighbour columns by their short names (``NumberOfNeighbors``, ...)."""
    return {
        name.split("_")[1]: values
        for name, values in table.columns.items()
        if name.startswith("Neighbors_")
    }


def test_neighbours_of_touching_squares_and_a_lone_cell():
    """A 3 x 3 block of touching 10 px squares, a square one pixel apart from it and one far
    away: the middle square touches all eight others (corners included), a corner square
    three; a pixel of background between two cells is not a touch; the nearest cells by
    centroid, their distances and the angle between them follow the layout."""
    labels = np.zeros((60, 80), np.uint16)
    for k in range(9):
        r, c = 5 + 10 * (k // 3), 5 + 10 * (k % 3)
        labels[r : r + 10, c : c + 10] = k + 1
    labels[5:15, 36:46] = 10  # one column of background between it and cell 3
    labels[45:55, 65:75] = 11  # far from every other
    near = _neighbour_columns(measure(labels))
    assert near["NumberOfNeighbors"].tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3, 0, 0]
    # a corner square: of its 36 outline pixels, its right column and bottom row (19) touch
    assert near["PercentTouching"][[0, 4, 9]] == pytest.approx([100 * 19 / 36, 100.0, 0.0])
    assert near["FirstClosestObjectNumber"][0] in (2, 4)
    assert near["FirstClosestDistance"][[0, 4]].tolist() == [10.0, 10.0]
    assert near["SecondClosestDistance"][0] == 10.0
    assert near["AngleBetweenNeighbors"][0] == pytest.approx(90.0)  # right and below
    assert near["FirstClosestObjectNumber"][9] == 3 and near["FirstClosestDistance"][9] == 11.0
    # the far one's nearest: the block's bottom right square, 20 px up and 40 px left
    assert near["FirstClosestObjectNumber"][10] == 9
    assert near["FirstClosestDistance"][10] == pytest.approx(np.hypot(20, 40))
    # in micrometres where the pixel size is known; counts and percentages unchanged
    table = measure(labels, pixel_size=0.5)
    assert table.columns["Neighbors_FirstClosestDistance_Adjacent_um"][0] == 5.0
    assert table.columns["Neighbors_NumberOfNeighbors_Adjacent"][4] == 8


def test_neighbours_of_one_or_two_cells_are_none_written_as_empty(tmp_path):
    """A lone cell has no nearest cell (0, no distance) and no angle; two cells a nearest
    but no second: no number is written empty in the CSV and read back as no number."""
    from cellprop.engine.output import read_table, write_table

    labels = np.zeros((30, 30), np.uint16)
    labels[2:8, 2:8] = 1
    alone = _neighbour_columns(measure(labels))
    assert alone["FirstClosestObjectNumber"].tolist() == [0]
    assert np.isnan(alone["FirstClosestDistance"][0]) and np.isnan(alone["AngleBetweenNeighbors"])
    labels[20:26, 20:26] = 2
    table = measure(labels)
    two = _neighbour_columns(table)
    assert two["FirstClosestObjectNumber"].tolist() == [2, 1]
    assert two["SecondClosestObjectNumber"].tolist() == [0, 0]
    assert np.isnan(two["SecondClosestDistance"]).all()
    path = write_table(tmp_path / "cells.csv", table)
    header, first = path.read_text().splitlines()[:2]
    where = header.split(",").index("Neighbors_SecondClosestDistance_Adjacent")
    assert first.split(",")[where] == ""
    back = read_table(path)
    assert np.isnan(back.columns["Neighbors_SecondClosestDistance_Adjacent"]).all()
    assert back.columns["Neighbors_FirstClosestDistance_Adjacent"] == pytest.approx(
        two["FirstClosestDistance"], rel=1e-9
    )  # to the 10 significant digits written


def test_a_cell_in_anothers_hole_at_its_centre_has_no_angle_and_says_nothing(recwarn):
    """A ring-shaped cell with another in its hole, both centred at one point, and a third
    cell: the angle at either of the two is none, without a warning printed (numpy's
    RuntimeWarning of a division by 0 broke into the progress bar)."""
    labels = np.zeros((40, 60), np.uint16)
    rows, cols = np.indices(labels.shape)
    d = np.hypot(cols - 15, rows - 15)
    labels[(d >= 6) & (d <= 10)] = 1
    labels[d <= 3] = 2
    labels[30:36, 45:51] = 3
    angle = _neighbour_columns(measure(labels))["AngleBetweenNeighbors"]
    assert np.isnan(angle[:2]).all() and np.isfinite(angle[2])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_neighbours_within_a_distance_of_squares_and_a_far_cell():
    """CellProfiler's *Within a specified distance*: at 1 pixel the same neighbours and
    touching shares as cells that touch; at 2 the square one pixel of background apart from
    the block has two neighbours (the square beside it, and the one below that, corner to
    corner 2.2 px away), its column facing them touching; the far cell, 32.9 px from its
    nearest cell's corner, has none within 32 pixels and one within 33. The columns are named
    after the distance; the nearest cells by centroid do not depend on it."""
    labels = np.zeros((60, 80), np.uint16)
    for k in range(9):
        r, c = 5 + 10 * (k // 3), 5 + 10 * (k % 3)
        labels[r : r + 10, c : c + 10] = k + 1
    labels[5:15, 36:46] = 10
    labels[45:55, 65:75] = 11
    touching = measure(labels).columns
    one = measure(labels, neighbour_distance=1).columns
    for name, values in touching.items():
        there = name.replace("_Adjacent", "_1")
        np.testing.assert_allclose(one[there], values, rtol=1e-12, err_msg=name)
    two = _neighbour_columns(measure(labels, neighbour_distance=2))
    assert two["NumberOfNeighbors"].tolist() == [3, 5, 4, 5, 8, 6, 3, 5, 3, 2, 0]
    assert two["PercentTouching"][9] == pytest.approx(100 * 10 / 36)  # its left column
    assert "Neighbors_NumberOfNeighbors_2" in measure(labels, neighbour_distance=2).columns
    assert np.hypot(65 - 34, 45 - 34) == pytest.approx(32.89, abs=0.01)
    assert _neighbour_columns(measure(labels, neighbour_distance=32))["NumberOfNeighbors"][10] == 0
    far = _neighbour_columns(measure(labels, neighbour_distance=33))
    assert far["NumberOfNeighbors"][10] == 1
    for name in ("FirstClosestObjectNumber", "FirstClosestDistance", "AngleBetweenNeighbors"):
        np.testing.assert_array_equal(far[name], _neighbour_columns(measure(labels))[name])
    empty = measure(np.zeros((9, 9), np.uint16), neighbour_distance=5)
    assert "Neighbors_PercentTouching_5" in empty.columns and len(empty) == 0
    with pytest.raises(ValueError, match="whole number"):
        measure(labels, neighbour_distance=2.5)


@pytest.mark.parametrize("distance", [0, 3, 8])
def test_neighbours_of_real_cells_agree_with_each_cell_dilated(phase_model, distance):
    """The cells of the shipped phase-contrast sample: each cell's neighbours are the other
    cells under its mask dilated by one pixel (3 x 3; at a distance, by a disc of that radius
    and a half), its touching outline pixels those of its 4-connected outline under the other
    cells so dilated, its nearest cell the one whose centroid is nearest: each computed here
    cell by cell, the slow way."""
    from cellprop.engine import read_image, segment
    from scipy import ndimage as ndi

    sample = Path(__file__).resolve().parents[1] / "resources/samples/c2c12_0006_crop512.png"
    labels = segment(read_image(sample).pixels, phase_model).labels
    table = measure(labels, neighbour_distance=distance)
    near = _neighbour_columns(table)
    assert len(table) > 40
    xy = np.column_stack([table.columns["AreaShape_Center_X"], table.columns["AreaShape_Center_Y"]])
    reach = distance + 0.5 if distance else 1.5
    r = int(reach)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = dy**2 + dx**2 <= reach**2
    for k, number in enumerate(table.columns["ObjectNumber"]):
        mine = labels == number
        around = labels[ndi.binary_dilation(mine, disc)]
        others = set(np.unique(around[(around != number) & (around > 0)]).tolist())
        assert near["NumberOfNeighbors"][k] == len(others), number
        outline = mine & ~ndi.binary_erosion(mine, border_value=0)
        beside = ndi.binary_dilation((labels > 0) & ~mine, disc)
        touching = 100 * (outline & beside).sum() / outline.sum()
        assert near["PercentTouching"][k] == pytest.approx(touching), number
        distance_to = np.hypot(*(xy - xy[k]).T)
        distance_to[k] = np.inf
        assert near["FirstClosestDistance"][k] == pytest.approx(distance_to.min())
        nearest = distance_to[near["FirstClosestObjectNumber"][k] - 1]
        assert nearest == pytest.approx(distance_to.min())
    counts = near["NumberOfNeighbors"]
    assert 0 < counts.mean() < 6 + distance  # near neighbours, not all cells
    if distance:  # more cells near than touching
        assert counts.mean() > _neighbour_columns(measure(labels))["NumberOfNeighbors"].mean()


def test_neighbours_expanded_until_adjacent_of_cells_apart():
    """CellProfiler's *Expand until adjacent*: four squares far apart, none touching or within
    5 px of another, are each other's neighbours as their Voronoi regions meet: the top two
    and the left two share a side, the top-middle and bottom-left squares the diagonal
    between them, and the top-left and bottom-right squares do not meet. Each grown cell's
    outline lies against others but where it reaches the image edge. The columns end in
    _Expanded; the nearest cells by centroid are those of the other methods."""
    labels = np.zeros((40, 60), np.uint16)
    labels[5:10, 5:10] = 1  # top left
    labels[5:10, 30:35] = 2  # top middle
    labels[30:35, 5:10] = 3  # bottom left
    labels[30:35, 50:55] = 4  # bottom right
    assert _neighbour_columns(measure(labels))["NumberOfNeighbors"].tolist() == [0] * 4
    assert _neighbour_columns(measure(labels, neighbour_distance=5))["NumberOfNeighbors"].sum() == 0
    table = measure(labels, neighbour_distance=EXPANDED)
    grown = _neighbour_columns(table)
    assert grown["NumberOfNeighbors"].tolist() == [2, 3, 3, 2]
    assert "Neighbors_NumberOfNeighbors_Expanded" in table.columns
    assert ((grown["PercentTouching"] > 30) & (grown["PercentTouching"] < 70)).all()
    for name in ("FirstClosestObjectNumber", "FirstClosestDistance", "AngleBetweenNeighbors"):
        np.testing.assert_array_equal(grown[name], _neighbour_columns(measure(labels))[name])
    alone = np.zeros((20, 20), np.uint16)
    alone[5:9, 5:9] = 1  # grown over the whole image, it meets no cell
    lone = _neighbour_columns(measure(alone, neighbour_distance=EXPANDED))
    assert lone["NumberOfNeighbors"].tolist() == [0] and lone["PercentTouching"].tolist() == [0.0]
    empty = measure(np.zeros((9, 9), np.uint16), neighbour_distance=EXPANDED)
    assert "Neighbors_PercentTouching_Expanded" in empty.columns and len(empty) == 0
    with pytest.raises(ValueError, match="expanded until adjacent"):
        measure(labels, neighbour_distance=-2)


def test_neighbours_expanded_of_real_cells_agree_with_nearest_cell_pixels(phase_model):
    """The cells of the shipped phase-contrast sample, grown until they meet, computed here
    the slow way: every background pixel given to the cell of the nearest cell pixel (a k-d
    tree over all cell pixels, not a distance transform; where two cells are as near, either
    will do), then each cell's neighbours the
    other cells under its grown mask dilated by 3 x 3, and its touching share that of its
    4-connected outline (the image edge counts as outline) beside another grown cell. A cell
    has at least the neighbours it touches, and the cells at the colony's edge gain."""
    from cellprop.engine import read_image, segment
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    sample = Path(__file__).resolve().parents[1] / "resources/samples/c2c12_0006_crop512.png"
    labels = segment(read_image(sample).pixels, phase_model).labels
    table = measure(labels, neighbour_distance=EXPANDED)
    near = _neighbour_columns(table)
    touching = _neighbour_columns(measure(labels))["NumberOfNeighbors"]
    cells, background = np.argwhere(labels > 0), np.argwhere(labels == 0)
    _, nearest = cKDTree(cells).query(background)
    slow = labels.copy()
    slow[tuple(background.T)] = labels[tuple(cells[nearest].T)]
    grown = _expanded(labels)
    differ = np.argwhere(grown != slow)  # only pixels as near to two cells (a tie)
    assert len(differ) < 0.001 * labels.size
    for r, c in differ:
        to_theirs = np.hypot(*(cells[labels[tuple(cells.T)] == grown[r, c]] - (r, c)).T).min()
        assert to_theirs == pytest.approx(np.hypot(*(cells - (r, c)).T).min())
    square = np.ones((3, 3), bool)
    for k, number in enumerate(table.columns["ObjectNumber"]):
        mine = grown == number
        around = grown[ndi.binary_dilation(mine, square)]
        assert near["NumberOfNeighbors"][k] == len(np.unique(around[around != number])), number
        outline = mine & ~ndi.binary_erosion(mine, border_value=0)
        beside = ndi.binary_dilation(~mine, square, border_value=0)
        share = 100 * (outline & beside).sum() / outline.sum()
        assert near["PercentTouching"][k] == pytest.approx(share), number
    assert (near["NumberOfNeighbors"] >= touching).all()
    assert near["NumberOfNeighbors"].mean() > touching.mean() + 1


def test_an_image_without_cells_measures_no_ring_and_no_neighbours(tmp_path):
    """An empty well with a ring and neighbours grown until they meet: no cell, no row, and
    no index read from memory the feature transform never set (it failed at random with an
    IndexError); its overlay and ROI set with a ring are written too."""
    from cellprop.engine import EXPANDED, write_overlay, write_roi_zip
    from cellprop.engine.features import feature_transform

    labels = np.zeros((300, 300), np.int32)
    grown, distance = feature_transform(labels)
    assert not grown.any() and np.isinf(distance).all()
    image = np.full((300, 300), 7.0)
    for _ in range(3):
        table = measure(labels, image, ring_width=5, neighbour_distance=EXPANDED)
        assert len(table) == 0
    write_overlay(tmp_path / "o.png", image, labels, ring=5, transform=(grown, distance))
    write_roi_zip(tmp_path / "r.zip", labels, ring=5, transform=(grown, distance))


def test_a_ring_around_each_cell_is_the_background_nearer_to_it_than_to_any_other():
    """Two nuclei 25 px apart in a reporter image: 100 in each nucleus, 40 and 80 in a band
    12 px from each centre, 0 beyond. A ring of 4 px lies in the band: the reporter's mean
    there is the band's, and the cell's mean over it 2.5 and 1.25. A ring of 15 px reaches
    over the midline between them: each takes the pixels nearer to itself, none of a nucleus
    and none twice; its mean is what those pixels hold. No ring, no Ring_ columns."""
    from cellprop.engine.features import rings

    labels = np.zeros((50, 90), np.uint16)
    image = np.zeros((50, 90))
    rows, cols = np.indices(labels.shape)
    centres = [(30, 25), (55, 25)]
    for k, (x, y) in enumerate(centres, start=1):
        d = np.hypot(cols - x, rows - y)
        image[(d > 5) & (d <= 12)] = 40 * k
        labels[d <= 5] = k
    image[labels > 0] = 100
    table = measure(labels, image, ring_width=4)
    ring = table.columns
    np.testing.assert_allclose(ring["Ring_Intensity_MeanIntensity"], [40, 80])
    np.testing.assert_allclose(ring["Ring_Intensity_CellToRingRatio"], [2.5, 1.25])
    from scipy import ndimage as ndi

    within = (ndi.distance_transform_edt(labels != 1) <= 4) & (labels == 0)  # of a pixel of it
    assert ring["Ring_AreaShape_Area"][0] == within.sum() > 100
    np.testing.assert_allclose(
        ring["Ring_Intensity_IntegratedIntensity"], ring["Ring_AreaShape_Area"] * [40, 80]
    )
    wide = rings(labels, 15)
    assert not (wide[labels > 0]).any()
    for k, (x, y) in enumerate(centres, start=1):
        mine = wide == k
        near = np.hypot(cols - x, rows - y)
        other = np.hypot(cols - centres[2 - k][0], rows - centres[2 - k][1])
        assert (near[mine] <= 5 + 15 + 1).all() and (near[mine] <= other[mine] + 1).all()
        assert mine[25, 42 if k == 1 else 43]  # each reaches the midline from its side
    columns = measure(labels, image, ring_width=15).columns
    means = [image[wide == k].mean() for k in (1, 2)]
    np.testing.assert_allclose(columns["Ring_Intensity_MeanIntensity"], means)
    assert not any(name.startswith("Ring_") for name in measure(labels, image).columns)
    with pytest.raises(ValueError, match="ring width"):
        measure(labels, image, ring_width=-1)
    empty = measure(np.zeros((9, 9), np.uint16), np.zeros((9, 9)), ring_width=3)
    assert "Ring_Intensity_CellToRingRatio" in empty.columns and len(empty) == 0
    # calibrated in nm, with a ring: the table keeps its unit (the ring's columns took it,
    # and the label image was then written as 500 µm a pixel instead of 500 nm)
    nm = measure(labels, image, pixel_size=500.0, unit="nm", ring_width=4)
    assert (nm.pixel_size, nm.unit) == (500.0, "nm") and "Ring_AreaShape_Area_nm2" in nm.columns


def test_expanded_neighbours_and_a_ring_asked_together_are_each_as_alone(phase_model):
    """Asked together, the expanded neighbours and the rings share one feature transform of
    the image: the table is the one each gives alone, column for column; and so is it with
    the transform given by the caller (a batch draws the same rings in the overlay)."""
    from cellprop.engine import read_image, segment
    from cellprop.engine.features import feature_transform

    sample = Path(__file__).resolve().parents[1] / "resources/samples/c2c12_0006_crop512.png"
    image = read_image(sample).pixels
    labels = segment(image, phase_model).labels
    both = measure(labels, image, neighbour_distance=EXPANDED, ring_width=4).columns
    grown = measure(labels, image, neighbour_distance=EXPANDED).columns
    ring = measure(labels, image, ring_width=4).columns
    assert list(both) == list(grown) + [n for n in ring if n.startswith("Ring_")]
    for name, values in both.items():
        alone = grown[name] if name in grown else ring[name]
        np.testing.assert_array_equal(values, alone, err_msg=name)
    given = feature_transform(labels)
    for distance in (EXPANDED, 0):
        made = measure(labels, image, neighbour_distance=distance, ring_width=4).columns
        told = measure(labels, image, neighbour_distance=distance, ring_width=4, transform=given)
        assert list(told.columns) == list(made)
        for name, values in told.columns.items():
            np.testing.assert_array_equal(values, made[name], err_msg=name)


def test_centroids_and_areas_are_every_pixels_means_to_the_last_bit():
    """The cells' centroids from their pixels alone (rows from flat indices less columns)
    are those of summing every pixel's row and column, bit for bit, and regionprops'
    within rounding; a label with no pixel has none (nan, area 0)."""
    from cellprop.engine.features import centroids_and_areas

    rng = np.random.default_rng(3)
    labels = np.zeros((300, 517), np.uint16)
    for k in range(1, 60):
        if k == 7:
            continue  # no pixel
        r, c = rng.integers(10, 290), rng.integers(10, 507)
        rr, cc = ellipse(r, c, rng.integers(3, 12), rng.integers(3, 12), labels.shape)
        labels[rr, cc] = k
    n = 60
    centres, areas = centroids_and_areas(labels, n)
    rows, cols = np.indices(labels.shape)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n + 1)[1:].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.bincount(flat, cols.ravel(), minlength=n + 1)[1:] / count
        y = np.bincount(flat, rows.ravel(), minlength=n + 1)[1:] / count
    assert np.array_equal(centres, np.column_stack([x, y]), equal_nan=True)
    assert np.array_equal(areas, count)
    assert np.isnan(centres[6]).all() and areas[6] == 0 and areas[59] == 0
    for region in regionprops(labels):
        k = region.label - 1
        assert centres[k] == pytest.approx(region.centroid[::-1], abs=1e-9)
        assert areas[k] == region.area


def test_pixels_that_are_no_number_are_left_out_of_the_intensities():
    """A ratio image masked with NaN (Fiji's), or an inf from a division by 0: one such
    pixel made a cell's four intensities empty, or its mean and total inf; they are of the
    cell's other pixels now (empty only where none is a number), in its ring too."""
    labels = np.zeros((20, 30), np.uint8)
    labels[2:6, 2:6] = 1
    labels[2:6, 12:16] = 2
    labels[12:16, 2:6] = 3
    image = np.full(labels.shape, 2.0, np.float32)
    image[labels == 1] = 4.0
    image[3, 3], image[3, 13] = np.nan, np.inf
    image[labels == 3] = np.nan
    image[0, :] = np.nan  # in the rings
    one, two, three = measure(labels, image, ring_width=2).rows()
    for row in (one, two):
        assert row["Intensity_MaxIntensity"] == (4.0 if row is one else 2.0)
        assert np.isfinite(row["Intensity_MeanIntensity"])
        assert row["Intensity_IntegratedIntensity"] == pytest.approx(
            15 * row["Intensity_MeanIntensity"]
        )
        assert row["Ring_Intensity_MeanIntensity"] == pytest.approx(2.0)
    assert one["Intensity_MeanIntensity"] == 4.0 and two["Intensity_MinIntensity"] == 2.0
    assert all(
        np.isnan(three[f"Intensity_{k}Intensity"]) for k in ("Mean", "Min", "Max", "Integrated")
    )
    assert one["Ring_AreaShape_Area"] > 0
    # a ring of pixels none of which is a number: none measured (its total was written 0)
    image[10:20, :] = np.nan
    third = measure(labels, image, ring_width=2).rows()[2]
    assert third["Ring_AreaShape_Area"] > 0
    assert all(
        np.isnan(third[f"Ring_Intensity_{k}"])
        for k in ("MeanIntensity", "IntegratedIntensity", "CellToRingRatio")
    )
