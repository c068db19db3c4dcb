"""Display arithmetic of the app (cellprop.app.render): pure numpy, no screen needed."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from cellprop.app import render  # noqa: E402


def test_auto_contrast_clips_the_extremes_of_a_16_bit_image():
    rng = np.random.default_rng(0)
    image = rng.normal(2000, 100, (200, 200)).astype(np.uint16)
    image[0, 0] = 65535  # one hot pixel must not decide the display
    low, high = render.auto_contrast(image)
    assert 1600 < low < 2000 < high < 2400
    shown = render.to_display(image, low, high)
    assert shown.dtype == np.uint8
    assert shown[0, 0] == 255 and 100 < np.median(shown) < 160


def test_auto_contrast_of_a_flat_image_shows_it_as_its_value_looks():
    """A saturated frame is white, 128 of 8 bits mid-grey, a float image of 5.0 white and of
    0.25 a quarter grey (each was drawn black, between its value and value + 1)."""
    for value, dtype, grey in (
        (255, np.uint8, 255),
        (128, np.uint8, 128),
        (0, np.uint8, 0),
        (65535, np.uint16, 255),
        (5.0, np.float32, 255),
        (0.25, np.float64, 63),
        (-3.0, np.float32, 0),
    ):
        image = np.full((10, 10), value, dtype)
        low, high = render.auto_contrast(image)
        assert high > low
        assert render.to_display(image, low, high)[0, 0] == grey, (value, dtype, low, high)


def test_to_display_maps_low_to_black_and_high_to_white():
    image = np.array([[10, 20, 30]], np.uint16)
    assert render.to_display(image, 10, 30).tolist() == [[0, 127, 255]]


def test_to_display_of_a_64_bit_image_far_from_0_keeps_its_grey_levels():
    """An int64 image of 2**40 + 0..255 between the levels 2**40 and 2**40 + 255: shown as
    those 256 grey levels, not the few float32 rounds them to."""
    image = np.arange(256, dtype=np.int64).reshape(16, 16)
    shown = render.to_display(image + 2**40, 2**40, 2**40 + 255)
    np.testing.assert_array_equal(shown, image.astype(np.uint8))


def test_value_range_leaves_out_far_outliers_and_nan_pixels_show_black_quietly():
    """One hot pixel (or a ratio's division by almost nothing) leaves the image's own values
    the slider's range (they were a sliver of it: no white level below 50 could be set)."""
    rng = np.random.default_rng(0)
    ratio = rng.uniform(0.1, 1.9, (1000, 1000)).astype(np.float32)
    ratio[5, 5] = 5e4
    lo, hi = render.value_range(ratio)
    assert lo == pytest.approx(0.1, abs=0.01) and 1.9 < hi < 4.0
    camera = rng.integers(100, 4000, (1000, 1000)).astype(np.uint16)
    camera[7, 7] = 65535
    assert render.value_range(camera)[1] < 8000
    camera[:10, :20] = 20000  # beads: 200 pixels in a million, reachable
    assert render.value_range(camera)[1] >= 20000
    camera[:10, :20] = 3000
    camera[7, 7] = 4000  # values as they are: all of them
    assert render.value_range(camera) == (0.0, float(camera.max()))
    ratio[5, 5] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shown = render.to_display(ratio, 0.1, 1.9)
    assert shown[5, 5] == 0


def test_value_range_follows_the_bit_depth():
    assert render.value_range(np.zeros((2, 2), np.uint8)) == (0.0, 255.0)
    assert render.value_range(np.full((2, 2), 4095, np.uint16)) == (0.0, 4095.0)
    assert render.value_range(np.array([[0.5, 2.5]], np.float32)) == (0.5, 2.5)
    # nan and inf pixels set no level (all nan raised in the window; inf made the sliders inf)
    assert render.value_range(np.array([[0.5, np.inf, np.nan, 2.5]])) == (0.5, 2.5)
    assert render.value_range(np.full((2, 2), np.nan, np.float32)) == (0.0, 1.0)


def test_label_colours_differ_between_neighbouring_ids_and_background_is_black():
    table = render.label_colours(50).astype(int)
    assert table[0].tolist() == [0, 0, 0]
    steps = np.abs(np.diff(table[1:], axis=0)).sum(axis=1)
    assert steps.min() > 60


def test_outlines_are_the_boundary_pixels_of_each_cell_and_keep_neighbours_apart():
    labels = np.zeros((8, 10), np.uint16)
    labels[1:7, 1:5] = 1
    labels[1:7, 5:9] = 2  # touching cell 1
    edge = render.outline_mask(labels)
    assert edge[1, 1] and edge[3, 4] and edge[3, 5]  # outer and shared boundaries
    assert not edge[3, 2]  # inside
    assert not edge[0, 0]  # background
    rgba = render.outlines_rgba(labels)
    assert (rgba[..., 3] > 0).sum() == edge.sum()


def test_fills_are_transparent_on_background():
    labels = np.array([[0, 1], [2, 0]], np.uint16)
    rgba = render.fills_rgba(labels)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 255
    assert rgba[0, 1, :3].tolist() != rgba[1, 0, :3].tolist()


def test_heatmap_is_transparent_at_zero_and_bright_at_the_top():
    values = np.array([[0.0, 0.5, 1.0]], np.float32)
    rgba = render.heatmap_rgba(values, vmax=1.0)
    assert rgba[0, 0, 3] == 0
    assert rgba[0, 2].tolist() == [255, 255, 255, 255]
    assert rgba[0, 1, 0] == 255 and rgba[0, 1, 2] == 0  # red-yellow half way


def test_selection_outline_marks_only_that_cell():
    labels = np.zeros((10, 10), np.uint16)
    labels[2:5, 2:5] = 1
    labels[6:9, 6:9] = 2
    rgba = render.cell_outline_rgba(labels, 2)
    marked = np.argwhere(rgba[..., 3] > 0)
    assert marked.min() >= 5 and marked.size
    assert not render.cell_outline_rgba(labels, 3)[..., 3].any()


def test_a_selection_of_several_cells_outlines_each_one():
    labels = np.zeros((20, 24), np.uint16)
    labels[2:10, 2:10] = 1
    labels[2:10, 10:18] = 2  # touches cell 1
    labels[12:18, 18:23] = 3
    both = render.cell_outline_rgba(labels, [1, 2])[..., 3] > 0
    assert both[5, 9] and both[5, 10]  # the line between the two cells is kept
    assert both[2, 5] and both[2, 14] and not both[15, 20]  # cell 3 is not chosen
    assert not both[5, 5] and not both[5, 14]  # their insides stay clear
    one = render.cell_outline_rgba(labels, 1)[..., 3] > 0
    assert (one & ~both).sum() == 0 and not one[2, 14]


@pytest.mark.parametrize("with_maps", [True, False])
def test_result_layers_skip_maps_a_batch_did_not_keep(with_maps):
    labels = np.ones((4, 4), np.uint16)
    maps = np.zeros((4, 4), np.float32) if with_maps else None
    layers = render.result_layers(labels, maps, maps)
    assert set(layers) == (
        {"fills", "outlines", "likelihood", "contribution"} if with_maps else {"fills", "outlines"}
    )


def test_histogram_bins_run_from_the_smallest_value_to_the_largest():
    from cellprop.app.histogram import histogram_bins, whole_bins

    edges, which = histogram_bins([1.0, 2.0, 3.0, 10.0, np.nan], n_bins=3)
    np.testing.assert_allclose(edges, [1, 4, 7, 10])
    assert which.tolist() == [0, 0, 0, 2, -1]  # the largest value in the last bin, NaN in none
    edges, which = histogram_bins([5, 5, 5])
    assert len(edges) == 2 and which.tolist() == [0, 0, 0]  # all equal: one bar
    edges, which = histogram_bins([np.nan])
    assert len(edges) == 0 and which.tolist() == [-1]
    # whole numbers over fewer than the bins (neighbours touched): one bar each
    edges, which = histogram_bins([0, 1, 1, 2, 5, np.nan])
    np.testing.assert_allclose(edges, [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    assert which.tolist() == [0, 1, 1, 2, 5, -1] and whole_bins(edges)
    edges, _ = histogram_bins(np.arange(40.0))  # more whole numbers than bins: equal bins
    assert len(edges) == 21 and not whole_bins(edges)
    assert not whole_bins(histogram_bins([0.5, 1.5])[0])


def test_the_distributions_summary_counts_cells_in_words_and_gives_no_median_of_none():
    """One cell is "1 cell"; images of no cells, or of cells none of which has the
    measurement (a nearest neighbour's distance, one cell alone), give no "median nan"."""
    from cellprop.app.histogram import HistogramView

    describe, none = HistogramView._describe, np.zeros(0, bool)
    assert describe(np.zeros(0), np.zeros(0), 1, 0, none) == "0 cells in 1 image"
    assert describe(np.array([np.nan]), np.array([np.nan]), 1, 0, none) == "0 cells in 1 image"
    assert describe(np.array([4.0]), np.array([4.0]), 0, 0, none) == "1 cell; median 4"
    assert describe(np.array([np.nan]), np.array([np.nan]), 0, 0, none) == ""
    assert describe(np.array([1.0, 3.0]), np.array([3.0]), 2, 1, none) == (
        "2 cells in 2 images; median 2; 1 without this measurement left out; "
        "the image shown (orange outline): 1, median 3"
    )


def test_histograms_are_offered_for_measurements_not_positions():
    from cellprop.app.histogram import plotted_columns
    from cellprop.engine.features import measure

    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15], labels[20:35, 20:30] = 1, 2
    table = measure(labels, np.full(labels.shape, 50, np.uint8))
    names = plotted_columns(table.columns)
    assert "AreaShape_Area" in names and "AreaShape_Eccentricity" in names
    assert not [n for n in names if "Center" in n or "BoundingBox" in n or "Orientation" in n]
    assert "ObjectNumber" not in names and "TouchesBorder" not in names
    assert "AreaShape_Solidity" in names  # once left out for the "id" in it, as if a number
    # neighbours: how many and how near, not which cell is nearest
    assert "Neighbors_NumberOfNeighbors_Adjacent" in names
    assert "Neighbors_FirstClosestDistance_Adjacent" in names
    assert not [n for n in names if "ClosestObjectNumber" in n]
    from cellprop.engine.track import measure_tracks, track_frames

    measure_tracks(track_frames([labels, labels]), [table, measure(labels)])
    names = plotted_columns(table.columns)
    assert "TrackObjects_DistanceTraveled" in names and "TrackObjects_Lifetime" in names
    assert "TrackObjects_Label" not in names and "TrackObjects_ParentObjectNumber" not in names


def test_a_channel_in_colour_is_as_opaque_as_it_is_bright():
    from cellprop.app.render import CHANNEL_COLOURS, channel_rgba

    pixels = np.array([[100, 200], [300, 500]], np.uint16)
    rgba = channel_rgba(pixels, CHANNEL_COLOURS["Magenta"], levels=(100, 300))
    assert (rgba[..., :3] == [255, 0, 255]).all()
    assert rgba[..., 3].tolist() == [[0, 127], [255, 255]]  # black to white: clear to solid


def test_cells_coloured_by_a_value_run_from_dark_blue_to_yellow():
    from cellprop.app.render import NO_VALUE_COLOUR, fills_by_value_rgba, value_colours

    colours = value_colours([0.0, 0.5, 1.0, 2.0, -1.0, np.nan], 0.0, 1.0)
    assert colours[0].tolist() == [68, 1, 84] and colours[2].tolist() == [253, 231, 37]
    assert colours[3].tolist() == colours[2].tolist()  # clipped above ...
    assert colours[4].tolist() == colours[0].tolist()  # ... and below
    assert colours[5].tolist() == list(NO_VALUE_COLOUR)
    # the middle: halfway between the 5th and 6th stops, (38, 130, 142) and (31, 158, 137)
    assert colours[1].tolist() == [34, 144, 140]
    labels = np.array([[0, 1], [2, 3]])
    rgba = fills_by_value_rgba(labels, [np.nan, 0.0, 1.0], 0.0, 1.0)  # cell 3: no value
    assert rgba[0, 0, 3] == 0 and rgba[1, 1].tolist() == [*NO_VALUE_COLOUR, 255]
    assert rgba[0, 1].tolist() == [68, 1, 84, 255] and rgba[1, 0].tolist() == [253, 231, 37, 255]


@pytest.mark.parametrize(
    ("width", "size", "unit", "label", "length_px"),
    [
        (1392, 0.65, "um", "100 µm", 100 / 0.65),  # a fifth is 181 µm: 100, not 200
        (256, 0.65, "um", "20 µm", 20 / 0.65),
        (1000, 100.0, "nm", "20 µm", 200.0),  # a calibration in nanometres
        (512, 10.0, "um", "1 mm", 100.0),
        (1000, 0.003, "um", "500 nm", 0.5 / 0.003),
        (1000, 0.25, "um", "50 µm", 200.0),  # exactly a fifth
    ],
)
def test_a_scale_bar_is_a_round_length_near_a_fifth_of_the_width(
    width, size, unit, label, length_px
):
    bar = render.scale_bar(width, size, unit)
    assert bar is not None and bar[1] == label
    assert bar[0] == pytest.approx(length_px)
    assert 0.08 * width <= bar[0] <= 0.2 * width + 1e-6


def test_no_scale_bar_without_a_length_per_pixel():
    assert render.scale_bar(1000, None, None) is None
    assert render.scale_bar(1000, 0.5, "pixel") is None
    assert render.scale_bar(1000, 0.0, "um") is None
    assert render.scale_bar(1000, float("nan"), "um") is None  # raised in the window
    assert render.scale_bar(1000, float("inf"), "um") is None  # "inf mm", of no length


def test_cells_followed_over_time_are_filled_in_their_tracks_colour():
    labels = np.zeros((20, 30), np.uint16)
    labels[2:8, 2:8], labels[10:18, 10:18], labels[2:8, 20:28] = 1, 2, 3
    tracks = np.array([7, 2, 11])
    filled = render.fills_rgba(labels, tracks)
    colours = render.label_colours(11)
    for label, track in zip((1, 2, 3), tracks, strict=True):
        assert (filled[labels == label][:, :3] == colours[track]).all()
    assert (filled[labels == 0][:, 3] == 0).all()
    # tracks that do not fit the cells (a correction since): each cell its own colour
    np.testing.assert_array_equal(render.fills_rgba(labels, tracks[:2]), render.fills_rgba(labels))


def test_the_paths_of_cells_followed_over_time_end_at_the_page_shown():
    from cellprop.engine.features import measure
    from cellprop.engine.track import measure_tracks, track_frames

    frames = []
    for t in range(3):  # one cell drifting right 5 px a page, one still, one new at the last
        labels = np.zeros((40, 60), np.uint16)
        labels[5:15, 5 + 5 * t : 15 + 5 * t] = 1
        labels[25:35, 40:50] = 2
        if t == 2:
            labels[25:35, 5:15] = 3
        frames.append(labels)
    tables = [measure(f) for f in frames]
    measure_tracks(track_frames(frames), tables)
    paths = render.track_paths(tables, max_gap=1)
    moving, still, new = (int(tables[2].columns["TrackObjects_Label"][k]) for k in range(3))
    np.testing.assert_allclose(paths[moving], [[9.5, 9.5], [14.5, 9.5], [19.5, 9.5]])
    assert len(paths[still]) == 3 and len(paths[new]) == 1
    assert render.track_paths(tables[:2], max_gap=1).keys() == {moving, still}
    plain = measure(frames[1])  # a page measured again (a correction): no tracks
    assert render.track_paths([tables[0], plain, tables[2]], max_gap=1)[moving].tolist() == [
        [19.5, 9.5]
    ]
    # a page not segmented, or one the moving cell was missed at (a gap closed): its path
    # goes on from where it was last seen; two such pages in a row end it
    skipped = [tables[0], None, tables[2]]
    assert render.track_paths(skipped, max_gap=1)[moving].tolist() == [[9.5, 9.5], [19.5, 9.5]]
    assert render.track_paths([tables[0], None, None, tables[2]], max_gap=1)[moving].tolist() == [
        [19.5, 9.5]
    ]
    frames[1][frames[1] == 1] = 0
    frames[1][frames[1] == 2] = 1
    tables = [measure(f) for f in frames]
    measure_tracks(track_frames(frames), tables)
    paths = render.track_paths(tables, max_gap=1)
    assert paths[moving].tolist() == [[9.5, 9.5], [19.5, 9.5]] and len(paths[still]) == 3
    # a page with no cells at all (a blank frame): every path goes on across it (they all
    # started again after it, as after a page not followed)
    empty = measure(np.zeros((40, 60), np.uint16))
    assert len(empty) == 0
    paths = render.track_paths([tables[0], empty, tables[2]], max_gap=1)
    assert paths[moving].tolist() == [[9.5, 9.5], [19.5, 9.5]] and len(paths[still]) == 2
    # the window walks back from the page shown over as many pages not segmented in a row
    # as the batch closed gaps across (MainWindow._track_paths; keys: the segmented pages)
    from cellprop.app.main_window import MainWindow

    lapse = {0: tables[0], 3: tables[2]}  # pages 1 and 2 not segmented
    assert render.track_paths([tables[0], None, None, tables[2]], max_gap=2)[moving].tolist() == [
        [9.5, 9.5],
        [19.5, 9.5],
    ]
    assert MainWindow._track_paths(lapse, 3, 2)[moving].tolist() == [[9.5, 9.5], [19.5, 9.5]]
    assert MainWindow._track_paths(lapse, 3, 1)[moving].tolist() == [[19.5, 9.5]]
    assert MainWindow._track_paths(lapse, 2, 2) == {}  # the page shown not segmented
    assert len(MainWindow._track_paths({**lapse, 1: tables[1]}, 3, 1)[still]) == 3
    assert render.track_paths(tables, max_gap=0)[moving].tolist() == [[19.5, 9.5]]


def test_the_cell_tables_headings_are_short_words_and_say_the_unit():
    from cellprop.app.table import friendly_name

    names = {
        "ObjectNumber": "Cell",
        "AreaShape_Area_um2": "Area (µm²)",
        "AreaShape_MaxFeretDiameter": "Max Feret Diameter",
        "Intensity_MeanIntensity_C1": "Mean Intensity C1",
        "TrackObjects_Label": "Track",
        "TrackObjects_ParentObjectNumber": "Cell Before",
        "TrackObjects_DistanceTraveled_um": "Distance Traveled (µm)",
        "TrackObjects_Lifetime": "Lifetime",
        "Neighbors_NumberOfNeighbors_Adjacent": "Number Of Neighbors",
        "Neighbors_PercentTouching_5": "Percent Touching (within 5 px)",
        "Neighbors_NumberOfNeighbors_Expanded": "Number Of Neighbors (expanded)",
        "Neighbors_FirstClosestDistance_Expanded_um": "First Closest Distance (µm)",
        "Ring_Intensity_MeanIntensity_C1": "Ring Mean Intensity C1",
        "Ring_AreaShape_Area_um2": "Ring Area (µm²)",
        "Ring_Intensity_CellToRingRatio": "Cell To Ring Ratio",
    }
    assert {name: friendly_name(name) for name in names} == names


def test_the_rings_layer_is_the_engines_rings_in_one_colour():
    """``result_layers(..., ring=3)`` adds the rings the cells were measured with (the
    engine's ``rings``) as an opaque colour where they lie; without a ring, no such layer.
    A result's ring is its settings' (none where it has no settings)."""
    from types import SimpleNamespace

    from cellprop.engine.features import rings

    labels = np.zeros((30, 40), np.uint16)
    labels[5:12, 5:12] = 1
    labels[15:25, 20:30] = 2
    layers = render.result_layers(labels, ring=3)
    where = rings(labels, 3) > 0
    assert where.sum() > 50
    assert (layers["rings"][where] == (0, 200, 255, 255)).all()
    assert not layers["rings"][~where].any()
    assert "rings" not in render.result_layers(labels)
    assert render.ring_width(SimpleNamespace(settings={"ring_width": 4})) == 4
    assert render.ring_width(SimpleNamespace(settings=None)) == 0


def test_the_levels_read_whole_and_apart():
    """A 16-bit maximum reads 65535 (it read 6.554e+04), and two levels of a narrow float
    image read apart (they read 1000 – 1000)."""
    from cellprop.app.panels import levels_text

    assert levels_text(0.0, 65535.0) == "0 – 65535"
    assert levels_text(1000.000001, 1000.000002) == "1000.000001 – 1000.000002"
    assert levels_text(0.25, 0.75) == "0.25 – 0.75"
