"""engine.graphcut, detect and projection on synthetic cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from cellprop.engine.detect import centre_regions, find_centres
from cellprop.engine.graphcut import (
    GRADIENT_SIGMA,
    GraphCutParams,
    boundary_image,
    fuse,
    label_dtype,
    segment_cells,
)
from cellprop.engine.projection import project
from cellprop.engine.propagate import CellMap, scale_map
from scipy import ndimage as ndi


def disc(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def two_touching_discs():
    """A big and a small dark disc overlapping on a bright (phase-halo-like) background."""
    shape = (60, 80)
    a, b = (30.0, 28.0), (30.0, 47.0)
    ra, rb = 13.0, 9.0
    union = disc(shape, a, ra) | disc(shape, b, rb)
    image = np.where(union, 0.2, 0.9).astype(np.float32)
    # The neck: the chord where the two circles cross (distance from a's centre along the row).
    d = b[1] - a[1]
    neck_col = a[1] + (d * d + ra * ra - rb * rb) / (2 * d)
    return shape, np.array([a, b]), (ra, rb), union, image, neck_col


def projection_like(shape, centres, radii, union):
    """What a projection looks like: each cell owns the pixels nearer to it, its evidence
    strongest at its centre and fading outwards; nothing owned far outside the cells."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    dist = np.stack([np.hypot(rr - r, cc - c) for r, c in centres])
    owner = np.argmin(dist, axis=0) + 1
    value = np.clip(1 - dist.min(0) / np.array(radii)[owner - 1], 0, 1).astype(np.float32)
    near = np.zeros(shape, bool)
    for (r, c), rad in zip(centres, radii, strict=True):
        near |= disc(shape, (r, c), rad + 3)
    owner = np.where(near & (value > 0), owner, 0).astype(np.int32)
    return owner, np.where(owner > 0, value, 0).astype(np.float32)


def test_two_touching_discs_split_at_their_neck():
    shape, centres, radii, union, image, neck_col = two_touching_discs()
    owner, value = projection_like(shape, centres, radii, union)
    voronoi_col = centres[:, 1].mean()
    assert abs(neck_col - voronoi_col) > 2  # the test can tell the neck from the bisector
    # Seeds: each disc's core (evidence above half its peak). The cut's window is the seeds'
    # box plus `pad`, which must reach the disc's rim: pad >= radius - core radius.
    params = GraphCutParams(fg_seed=0.5, bg_seed=0.5, pad=12)
    labels = segment_cells(owner, value, centres, boundary_image(image, "bright_boundary"), params)
    assert set(np.unique(labels)) == {0, 1, 2}
    # The two cells together cover the discs, not the bright background (beyond the one-pixel
    # rim that the authors' clean-up, dilate 2 then erode 1, adds) ...
    cover = labels > 0
    assert (cover & union).sum() / union.sum() > 0.97
    rim = ndi.binary_dilation(union, np.ones((3, 3), bool))
    assert (cover & ~rim).sum() / union.sum() < 0.02
    # ... and part where the discs' outline pinches, not halfway between the centres.
    cols = np.arange(shape[1])
    expected = np.where(cols[None, :] < neck_col, 1, 2) * union
    inside = union & cover
    agreement = (labels[inside] == expected[inside]).mean()
    assert agreement > 0.98
    row = labels[int(centres[0, 0])]
    split = np.nonzero(row == 2)[0].min()
    assert abs(split - neck_col) <= 1.5


def test_polarity_dark_boundary_inverts():
    img = np.array([[0.0, 0.25, 1.0]], np.float32)
    np.testing.assert_allclose(boundary_image(img, "dark_boundary"), [[1.0, 0.75, 0.0]])
    np.testing.assert_allclose(boundary_image(img * 2, "bright_boundary"), [[0.0, 0.5, 1.0]])


def test_no_cells_gives_empty_labels_not_an_error():
    owner = np.zeros((40, 50), np.int32)
    labels = segment_cells(
        owner, np.zeros((40, 50), np.float32), np.zeros((0, 2)), np.zeros((40, 50), np.float32)
    )
    assert labels.shape == (40, 50) and labels.max() == 0


def test_fusion_gives_contested_pixels_to_the_nearer_centre_and_keeps_cells_connected():
    shape = (20, 30)
    centres = np.array([[10.0, 8.0], [10.0, 20.0]])
    a = np.zeros(shape, bool)
    a[5:15, 2:20] = True  # reaches far into b's side
    b = np.zeros(shape, bool)
    b[5:15, 12:28] = True
    whole = (slice(0, shape[0]), slice(0, shape[1]))
    labels = fuse([(1, whole, a), (2, whole, b)], centres, shape)
    # Contested columns 12..19: nearer to centre 1 up to col 13, to centre 2 from col 15.
    assert (labels[5:15, 12:14] == 1).all() and (labels[5:15, 15:20] == 2).all()
    for label in (1, 2):
        assert ndi.label(labels == label)[1] == 1


def test_label_dtype_widens_past_65535():
    assert label_dtype(65535) == np.uint16
    assert label_dtype(65536) == np.uint32


def test_centres_merge_touching_peaks_and_regions_are_voronoi_within_a_disk():
    lik = np.zeros((30, 40), np.float32)
    lik[10, 10] = lik[10, 11] = 0.9  # a two-pixel plateau: one cell
    lik[10, 20] = 0.8
    lik[25, 35] = 0.3  # below threshold
    centres = find_centres(lik, threshold=0.5, min_distance=2)
    np.testing.assert_allclose(centres, [[10, 10.5], [10, 20]])
    regions = centre_regions(lik.shape, centres, radius=6)
    assert regions[10, 12] == 1 and regions[10, 18] == 2
    assert regions[10, 2] == 0  # farther than the radius
    # Every region pixel is nearer to its own centre than to the other one.
    rr, cc = np.nonzero(regions)
    d = np.stack([np.hypot(rr - r, cc - c) for r, c in np.rint(centres)])
    assert (np.argmin(d, 0) + 1 == regions[rr, cc]).mean() > 0.97


def test_scale_map_and_projection():
    grad = np.array([[-1.0, 0.004, 0.5, 2.0]], np.float32)
    np.testing.assert_allclose(scale_map(grad), [[0, 0, 0.25, 1.0]])
    maps = [
        CellMap(1, 0, 0, np.array([[1.0, 0.5, 0.0]], np.float32)),
        CellMap(2, 0, 1, np.array([[0.7, 0.2]], np.float32)),
    ]
    proj = project((1, 3), maps)
    np.testing.assert_array_equal(proj.owner, [[1, 2, 2]])
    np.testing.assert_allclose(proj.value, [[1.0, 0.7, 0.2]])


def bright_disc_in_weak_map():
    """A bright nucleus (radius 10) on a dark background; its guided map is sure of the
    core only (radius 5) and weak out to radius 20, as on GOWT1 where nuclei came out too big."""
    shape, centre = (70, 70), (35.0, 35.0)
    nucleus = disc(shape, centre, 10)
    image = np.where(nucleus, 0.8, 0.02).astype(np.float32)
    owner = disc(shape, centre, 20).astype(np.int32)
    value = np.where(disc(shape, centre, 5), 1.0, 0.04) * owner
    return np.array([centre]), nucleus, image, owner, value.astype(np.float32)


def test_intensity_data_term_cuts_a_fluorescent_nucleus_at_its_edge():
    centres, nucleus, image, owner, value = bright_disc_in_weak_map()
    boundary = boundary_image(image, "dark_boundary")
    neutral = GraphCutParams(fg_seed=0.5, bg_seed=0.5, pad=12)
    # The authors' nearly neutral term follows the weak map into the dark background ...
    loose = segment_cells(owner, value, centres, boundary, neutral) > 0
    assert loose.sum() > 2 * nucleus.sum()
    # ... the image as data term stops the cut at the nucleus's edge (the clean-up, dilate 2
    # then erode 1, may add a one-pixel rim).
    bright = GraphCutParams(fg_seed=0.5, bg_seed=0.5, pad=12, data_term="intensity")
    cut = segment_cells(owner, value, centres, boundary, bright, intensity=image) > 0
    dice = 2 * (cut & nucleus).sum() / (cut.sum() + nucleus.sum())
    assert dice > 0.9
    assert (nucleus & ~cut).sum() == 0
    assert (cut & ~ndi.binary_dilation(nucleus, np.ones((3, 3), bool))).sum() == 0


def test_intensity_data_term_needs_the_image_and_a_known_name():
    centres, _, image, owner, value = bright_disc_in_weak_map()
    boundary = boundary_image(image, "dark_boundary")
    with pytest.raises(ValueError, match="normalised image"):
        segment_cells(owner, value, centres, boundary, GraphCutParams(data_term="intensity"))
    with pytest.raises(ValueError, match="data_term"):
        segment_cells(owner, value, centres, boundary, GraphCutParams(data_term="bogus"))


def test_gradient_polarity_marks_both_sides_of_a_relief_edge():
    # DIC relief: a bright line beside a dark line on grey; raw intensity marks only one.
    img = np.full((40, 40), 0.5, np.float32)
    img[:, 19] = 1.0
    img[:, 20] = 0.0
    g = boundary_image(img, "gradient")
    assert g.shape == img.shape and g.min() >= 0.0 and g.max() <= 1.0
    assert g[20, 19:21].min() > 0.9 and g[20, 5] < 0.05
    with pytest.raises(ValueError, match="gradient"):
        boundary_image(img, "nonsense")


def test_gradient_sigma_trades_texture_for_the_relief_of_whole_cells():
    # Fine texture inside a cell (period 6 px) and one relief edge: a small sigma marks both,
    # a large one (model.json edge_sigma) the relief and a wider band around it.
    img = np.full((40, 80), 0.5, np.float32)
    xx = np.arange(80)[None, :].repeat(40, 0)
    img[:, :30] += (0.1 * np.sin(2 * np.pi * xx / 6))[:, :30]
    img[:, 59], img[:, 60] = 1.0, 0.0
    fine = boundary_image(img, "gradient", sigma=1.0)
    broad = boundary_image(img, "gradient", sigma=4.0)
    assert fine[20, 10:16].max() > 0.4 and broad[20, 10:16].max() < 0.15
    assert fine[20, 59:61].min() > 0.9 and broad[20, 59:61].min() > 0.9
    assert broad[20, 53] > 0.3 > fine[20, 53]
    # The default is the sigma a model without edge_sigma gets.
    np.testing.assert_array_equal(
        boundary_image(img, "gradient"), boundary_image(img, "gradient", GRADIENT_SIGMA)
    )


def test_a_cell_cut_by_the_image_border_reaches_it():
    """A cell the image edge cuts off keeps its outermost pixels (the clean-up's erosion must not
    treat the image border as background), so `exclude_border` can see it touch the edge."""
    shape = (60, 80)
    centres = np.array([[4.0, 40.0]])  # the disc of radius 12 runs off the top edge
    union = disc(shape, centres[0], 12.0)
    image = np.where(union, 0.2, 0.9).astype(np.float32)
    owner, value = projection_like(shape, centres, (12.0,), union)
    params = GraphCutParams(fg_seed=0.5, bg_seed=0.5, pad=12)
    labels = segment_cells(owner, value, centres, boundary_image(image, "bright_boundary"), params)
    top_row = labels[0] > 0
    assert top_row.sum() >= 0.9 * union[0].sum()
    assert (labels[0][union[0]] == 1).all()


def test_seed_radius_keeps_far_map_evidence_from_forcing_the_outline():
    """A cell (disc of radius 8, outlined by a bright edge) whose map is also strong on a tail
    outside it, as DIC maps are on the relief beside a cell: with every strong pixel a seed the
    tail is forced into the cell; with seeds near the centre only, the cut follows the edge."""
    from cellprop.engine.graphcut import cut_cell

    shape, centre = (41, 61), (20.0, 20.0)
    cell = disc(shape, centre, 8)
    ring = disc(shape, centre, 9) & ~cell
    value = np.where(cell, 0.8, 0.0).astype(np.float32)
    value[18:23, 20:50] = 0.6  # the tail: strong map evidence reaching 30 px out
    own = value > 0
    boundary = ring.astype(np.float32)
    args = (own, value, np.zeros(shape, bool), boundary, centre)
    rim = (True, True, True, True)
    base = dict(fg_seed=0.05, bg_seed=0.5, beta=10.0)
    forced = cut_cell(*args, GraphCutParams(**base), rim=rim)
    near = cut_cell(*args, GraphCutParams(**base, seed_radius_px=6.0), rim=rim)
    assert forced[20, 45]  # the tail became cell
    assert not near[20, 45] and near[20, 20]
    inside = disc(shape, centre, 10)
    assert near.sum() >= 0.9 * cell.sum() and (near & ~inside).sum() == 0


def test_a_cut_that_fills_its_window_is_no_cell():
    """A centre found in a fluorescence background (GOWT1 with gamma 0.5): the intensity term's
    Otsu threshold, on the window's own range, calls half of the noise "cell", the dark
    background makes the Potts term free, and the cut spreads until the window's rim stops it,
    a box-shaped false cell. It fills a window three times as padded too: left out. A nucleus
    in the same noise is cut as before."""
    shape, centre = (240, 240), (120.0, 120.0)
    noise = np.random.default_rng(2).uniform(0.0, 0.3, shape).astype(np.float32)
    owner = disc(shape, centre, 30).astype(np.int32)
    value = (np.where(disc(shape, centre, 6), 1.0, 0.02) * owner).astype(np.float32)
    params = GraphCutParams(weight=5.0, fg_seed=0.05, bg_seed=0.2, pad=4, data_term="intensity")

    def cut(image):
        boundary = boundary_image(image, "dark_boundary")
        return segment_cells(owner, value, np.array([centre]), boundary, params, intensity=image)

    assert not cut(noise).any()
    nucleus = disc(shape, centre, 12)
    kept = cut(np.where(nucleus, 0.8, noise).astype(np.float32)) > 0
    assert (nucleus & ~kept).sum() == 0 and kept.sum() < 1.3 * nucleus.sum()


def test_a_long_cell_stopped_by_its_window_is_cut_again_with_room():
    """A long cell lying diagonally (C2C12), its centre region a small part of it: the cut on
    that region's box reached the window's rim at its corners and was cut off straight
    there. It is cut again in a window three times as padded, and kept (the map's data term:
    a long cell is no box-shaped noise)."""
    shape, centre = (240, 240), (120.0, 120.0)
    rows, cols = np.indices(shape)
    along = ((rows - 120) + (cols - 120)) / np.sqrt(2)
    across = ((rows - 120) - (cols - 120)) / np.sqrt(2)
    cell = (np.abs(along) < 40) & (np.abs(across) < 8)
    owner = disc(shape, centre, 70).astype(np.int32)  # its map's region holds all of it
    value = np.where(disc(shape, centre, 6), 1.0, 0.0).astype(np.float32)  # strong at its centre
    params = GraphCutParams(fg_seed=0.05, bg_seed=0.2, pad=4)
    halo = ndi.binary_dilation(cell, iterations=2) & ~cell  # phase contrast's bright outline
    boundary = halo.astype(np.float32)
    kept = segment_cells(owner, value, np.array([centre]), boundary, params) > 0
    first = (slice(120 - 10 - 4, 120 + 11 + 4),) * 2  # the seeds' box, padded once
    assert kept.sum() > cell[first].sum() + 100  # more of it than that window holds
    assert not (kept & ~ndi.binary_dilation(cell, iterations=3)).any()  # along its outline
