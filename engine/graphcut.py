"""Per-cell graph cut and fusion into one label image (METHOD.md section 5).

Each cell is cut on a small window around the pixels its map owns, with PyMaxflow's grid graph
(two labels: the min-cut is exact). Cells are then fused: a pixel claimed by two cells goes to
the nearer centre, and each cell keeps only its part connected to its centre.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import Cancelled
from .memo import digest

__all__ = [
    "GraphCutParams",
    "border_labels",
    "boundary_image",
    "cut_cell",
    "fuse",
    "label_dtype",
    "reaches_rim",
    "segment_cells",
]

_INF = 1e9


@dataclass(frozen=True)
class GraphCutParams:
    """Parameters of the per-cell cut; defaults are the authors' (METHOD.md section 5).

    Attributes
    ----------
    weight : float
        Potts pairwise weight ("smoothness").
    beta : float
        Edge weight ``exp(-beta * I)``, I the boundary image in [0, 1].
    fg_seed : float
        Pixels the cell owns in the projection with a scaled value above this are foreground
        seeds. The authors' code uses 0.001 on maps floored at 0.01, i.e. every pixel a cell's
        map wins; on C2C12 that annexes the faint halo of each map (mean cell area 2431 px on a
        512 x 512 crop where the cells are about 1250 px) and leaves the cut nothing to decide.
        0.05 seeds the cell's body and lets the cut place the outline on the bright halo (mean
        area 1654 px); 0.15 and above lose weak cells' seeds. On HeLa DIC held-out frames
        t070-t083 (dic model, silver masks), seeds fg/bg 0.001/0.01, 0.02/0.02, 0.05/0.05,
        0.05/0.01, 0.1/0.1, 0.15/0.15 gave mDice 0.702, 0.716, 0.720, 0.704, 0.705, 0.654 and
        AP50 0.611, 0.639, 0.633, 0.586, 0.563, 0.468. model.json "seed_fg" overrides.
    bg_seed : float
        Pixels another cell owns with a value above this are background seeds (code: 0.01;
        0.05 here, see above; model.json "seed_bg").
    p_cell : float
        Probability of "cell" for non-seed pixels the cell owns (code: 0.5001, nearly neutral);
        other non-seed pixels get ``1 - p_cell``. On the HeLa tune frames (dic model) 0.51
        lowered mDice / AP50 from 0.845 / 0.860 to 0.796 / 0.781 (0.53: 0.711 / 0.560). Outlines
        shrank rather than grew (foreground 1.11 -> 0.93 of the masks' area; AP50 outlines too
        small 0 -> 8): a DIC cell's map does not own all of its cell, and what it does not own
        pays ``1 - p_cell`` for being cell.
    pad : int
        Pixels of context around the owned region; the window's rim is background.
    min_seed_px : int
        Foreground seed blobs smaller than this are dropped ("tiny blobs").
    seed_radius_px : float
        If positive, foreground seeds lie within this distance of the cell's centre (model.json
        "seed_radius", a fraction of the cell diameter). The guided maps of DIC cells light up
        the relief at a cell's edge, outside as much as inside: on the HeLa tune frames 36% of
        the seeds (maps above 0.05) lay on mask background, and the cut cannot be tighter than
        its seeds. Seeds within 0.45 diameters of the centre raised mDice / AP50 there from
        0.788 / 0.764 to 0.837 / 0.840 (0.36: 0.833 / 0.811; 0.6: 0.798 / 0.773). 0: the
        authors' rule (every strong pixel the cell owns).
    data_term : {"map", "intensity"}
        ``map``: the authors' nearly neutral data term from the projection alone. ``intensity``
        (fluorescence, model.json "data_term"): where the image itself is strong evidence
        (bright nuclei on a dark background), pixels darker than the cell window's Otsu
        threshold pay for being "cell" and brighter ones for being background. With the
        neutral term the dark-boundary pairwise weight is cheapest far out in the dark
        background, so nuclei came out ~24% larger than their masks on GOWT1. On the GOWT1
        tune frames t021/t031 (nuclei model) mDice went 0.889 -> 0.918, AP50 0.960 both;
        the result hardly depends on the weight (0.01 to 3 within 0.0002): in the dark
        background the pairwise term is ~0, so any data cost there decides.
    data_weight : float
        Scale of the intensity term against the Potts weight (model.json "data_weight").
    data_softness : float
        Width of the sigmoid around the threshold, as a fraction of the window's intensity
        range (model.json "data_softness").
    """

    weight: float = 20.0
    beta: float = 10.0
    fg_seed: float = 0.05
    bg_seed: float = 0.05
    p_cell: float = 0.5001
    pad: int = 4
    min_seed_px: int = 4
    seed_radius_px: float = 0.0
    data_term: str = "map"
    data_weight: float = 1.0
    data_softness: float = 0.05


def label_dtype(n_cells: int) -> type:
    """uint16 labels, uint32 past 65535 cells."""
    return np.uint16 if n_cells <= np.iinfo(np.uint16).max else np.uint32


def border_labels(labels: np.ndarray) -> np.ndarray:
    """The labels (0 included if present) of a label image's outermost rows and columns."""
    return np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))


#: Sigma (pixels at the cut's scale) of the "gradient" boundary image when a model names none.
GRADIENT_SIGMA = 2.0


def boundary_image(
    normalised: np.ndarray, polarity: str, sigma: float = GRADIENT_SIGMA
) -> np.ndarray:
    """The image that makes a cut cheap, in [0, 1]: high where cell boundaries are.

    Parameters
    ----------
    normalised : numpy.ndarray
        The image normalised as the network's input (percentiles to 0..1), at the graph cut's
        scale (where cells have the model's own diameter).
    polarity : {"bright_boundary", "dark_boundary", "gradient"}
        ``bright_boundary``: phase contrast, where a bright halo surrounds each cell.
        ``dark_boundary``: fluorescence (bright cells on a dark background), where the dark gaps
        between cells are the boundaries.
        ``gradient``: DIC, the smoothed image's gradient magnitude (scaled so that its 99th
        percentile is 1). On the HeLa tune frames t060-t067 (dic model, edge_beta 25) it raised
        mDice / AP50 from 0.749 / 0.705 (dark_boundary, beta 10) to 0.793 / 0.753.
    sigma : float
        ``gradient`` only: the Gaussian's sigma in pixels (model.json ``edge_sigma``). Small
        values follow the texture inside a cell, large ones only the relief of whole cells.
    """
    if polarity == "gradient":
        # DIC: a boundary is a bright and a dark line side by side (relief), so neither
        # polarity of the raw intensity marks it; the smoothed gradient magnitude does, with
        # the 99th percentile as "1".
        g = ndi.gaussian_gradient_magnitude(np.asarray(normalised, np.float32), float(sigma))
        top = float(np.percentile(g, 99.0))
        return np.clip(g / top, 0.0, 1.0).astype(np.float32) if top > 0 else np.zeros_like(g)
    image = np.clip(normalised, 0.0, 1.0).astype(np.float32)
    if polarity == "bright_boundary":
        return image
    if polarity == "dark_boundary":
        return 1.0 - image
    raise ValueError(
        f"polarity must be 'bright_boundary', 'dark_boundary' or 'gradient', not {polarity!r}"
    )


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of ``values`` (in [0, 1])."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    mids = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mids)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][int(np.argmax(between[:-1]))])


def intensity_probability(
    intensity: np.ndarray, softness: float = 0.05, where: np.ndarray | None = None
) -> np.ndarray:
    """P(cell) from a fluorescence window: a sigmoid around the window's Otsu threshold.

    The window is smoothed (quantised 8-bit nuclei near the background level are otherwise
    noise) and the threshold is taken on its own range over ``where`` (default: all of it),
    so that a dim nucleus is judged against its own surroundings, not against a bright
    neighbour; ``softness`` is the sigmoid's width as a fraction of that range.
    """
    image = ndi.gaussian_filter(intensity.astype(np.float32), 1.5)
    values = image[where] if where is not None and where.any() else image.ravel()
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        return np.full(image.shape, 0.5)
    t = lo + (hi - lo) * _otsu((values - lo) / (hi - lo))
    z = np.clip((image - t) / (max(softness, 1e-6) * (hi - lo)), -30.0, 30.0)
    return 1.0 / (1.0 + np.exp(-z))


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def _component_at(mask: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The 4-connected component of ``mask`` containing ``point``, else the nearest one."""
    labels, n = ndi.label(mask)
    if n <= 1:
        return mask
    r = int(np.clip(round(point[0]), 0, mask.shape[0] - 1))
    c = int(np.clip(round(point[1]), 0, mask.shape[1] - 1))
    keep = labels[r, c]
    if keep == 0:
        rr, cc = np.nonzero(mask)
        k = int(np.argmin((rr - point[0]) ** 2 + (cc - point[1]) ** 2))
        keep = labels[rr[k], cc[k]]
    return labels == keep


def cut_cell(
    own: np.ndarray,
    value: np.ndarray,
    others: np.ndarray,
    boundary: np.ndarray,
    peak: tuple[float, float],
    params: GraphCutParams = GraphCutParams(),
    rim: tuple[bool, bool, bool, bool] = (True, True, True, True),
    intensity: np.ndarray | None = None,
) -> np.ndarray:
    """Binary min-cut of one cell on its window.

    Parameters
    ----------
    own : numpy.ndarray
        bool, pixels this cell owns in the maximum projection.
    value : numpy.ndarray
        float, the projection's value (C) on the window.
    others : numpy.ndarray
        bool, pixels other cells own.
    boundary : numpy.ndarray
        float in [0, 1], see :func:`boundary_image`.
    peak : (float, float)
        The cell's centre (row, col) in window coordinates.
    params : GraphCutParams
        Weights and seed thresholds.
    rim : (bool, bool, bool, bool)
        Which window edges (top, bottom, left, right) are background seeds: those inside the
        image, where the window's padding guarantees the cell does not reach. Edges on the
        image border are left free.
    intensity : numpy.ndarray, optional
        The normalised image on the window; needed when ``params.data_term`` is
        ``"intensity"``.

    Returns
    -------
    numpy.ndarray
        bool mask of the cell on the window (empty if it has no foreground seed).
    """
    import maxflow

    # A cell whose map is weak everywhere it wins still gets its strongest pixels as seeds,
    # rather than vanishing.
    strongest = float(value[own].max()) if own.any() else 0.0
    fg = ndi.binary_fill_holes(own & (value > min(params.fg_seed, 0.5 * strongest)))
    if params.seed_radius_px > 0:  # evidence near the centre only (see GraphCutParams)
        rr, cc = np.ogrid[: fg.shape[0], : fg.shape[1]]
        fg &= (rr - peak[0]) ** 2 + (cc - peak[1]) ** 2 <= params.seed_radius_px**2
    if params.min_seed_px > 1 and fg.any():
        lab, n = ndi.label(fg)
        sizes = np.bincount(lab.ravel())
        small = sizes < params.min_seed_px
        small[0] = False
        fg[small[lab]] = False
    if not fg.any():
        return fg
    bg = ndi.binary_fill_holes(others & (value > params.bg_seed))
    # Nothing of this cell lies outside its padded window: the rim is background.
    rim_top, rim_bottom, rim_left, rim_right = rim
    bg[0, :] |= rim_top
    bg[-1, :] |= rim_bottom
    bg[:, 0] |= rim_left
    bg[:, -1] |= rim_right
    fg &= ~bg  # background wins where seeds overlap (authors' rule)
    if not fg.any():
        return fg
    # The detected centre belongs to its cell: where the map is weak right at the centre (a
    # thin dark cell whose map lights up only its rim), the cut must not keep a sliver beside
    # it and drop the centre. (A cell left with no seed of its own, e.g. a second peak on a
    # neighbour, still vanishes above.)
    r = int(np.clip(round(peak[0]), 0, fg.shape[0] - 1))
    c = int(np.clip(round(peak[1]), 0, fg.shape[1] - 1))
    centre = np.zeros_like(fg)
    centre[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = True
    fg |= centre & ~bg

    h, w = own.shape
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes((h, w))
    # Potts term on 4-connected pairs; cutting through a boundary-bright pair is cheap.
    right = np.zeros((h, w), np.float64)
    down = np.zeros((h, w), np.float64)
    right[:, :-1] = params.weight * np.exp(
        -params.beta * np.maximum(boundary[:, :-1], boundary[:, 1:])
    )
    down[:-1, :] = params.weight * np.exp(
        -params.beta * np.maximum(boundary[:-1, :], boundary[1:, :])
    )
    graph.add_grid_edges(nodes, weights=right, structure=_RIGHT, symmetric=True)
    graph.add_grid_edges(nodes, weights=down, structure=_DOWN, symmetric=True)
    # Data term: source = cell; a pixel on the source side pays its sink capacity. Nearly
    # neutral, as in the authors' code: a hair towards "cell" where this cell's map owns the
    # pixel and towards "background" elsewhere, so that the pairwise term decides, but an
    # empty stretch of background is never annexed for free.
    p = np.where(own, params.p_cell, 1.0 - params.p_cell)
    source = -np.log(1.0 - p)
    sink = -np.log(p)
    if params.data_term == "intensity":
        if intensity is None:
            raise ValueError("data_term 'intensity' needs the normalised image")
        # Fluorescence: the image is the evidence the neutral term lacks (see GraphCutParams).
        q = intensity_probability(intensity, params.data_softness, where=~bg)
        q = np.clip(q, 1e-4, 1.0 - 1e-4)
        source = source + params.data_weight * -np.log(1.0 - q)
        sink = sink + params.data_weight * -np.log(q)
    elif params.data_term != "map":
        raise ValueError(f"data_term must be 'map' or 'intensity', not {params.data_term!r}")
    source[fg], sink[fg] = _INF, 0.0
    source[bg], sink[bg] = 0.0, _INF
    graph.add_grid_tedges(nodes, source, sink)
    graph.maxflow()
    mask = ~graph.get_grid_segments(nodes)
    if not mask.any():
        return mask
    # Holes first: a centre seed inside a dark nucleolus is one piece with the nucleus around it.
    mask = _component_at(ndi.binary_fill_holes(mask), peak)
    # Authors' clean-up: close small gaps, fill holes, then take back one pixel of the growth.
    mask = ndi.binary_dilation(mask, _disk(2))
    mask = ndi.binary_fill_holes(mask)
    # Outside the window counts as cell for the erosion: inside the image the rim is a
    # background seed, so the mask never reaches it there, and at the image border a cell
    # must keep its outermost pixels (else every border cell ends one pixel short of it).
    mask = ndi.binary_erosion(mask, _disk(1), border_value=1)
    return mask


def reaches_rim(mask: np.ndarray, rim: tuple[bool, bool, bool, bool]) -> bool:
    """Whether a cut fills its window: it reaches the rim on most of the sides that have one.

    The window is the cell's seeds' box padded so that the cell does not reach its rim, and the
    rim (the sides inside the image) is a background seed. A cut pressed against that rim on
    most of those sides (3 of 4, 2 of 3, 2 of 2) was stopped by the window, not by the image:
    either the cell is larger than its seeds' box says (a long cell lying diagonally, its ends
    in the window's corners, as at C2C12 frame 0006), or nothing in the image bounds the cut
    at all. :func:`segment_cells` tells them apart by cutting again in a larger window.
    """
    lines = (mask[0, :], mask[-1, :], mask[:, 0], mask[:, -1])
    sides = [bool(line.any()) for line, inside in zip(lines, rim, strict=True) if inside]
    return len(sides) >= 2 and sum(sides) >= max(2, len(sides) // 2 + 1)


#: A cut that fills its window is cut again with this many times the padding (see segment_cells).
WIDER = 3


_RIGHT = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
_DOWN = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])


def fuse(
    masks: list[tuple[int, tuple[slice, slice], np.ndarray]],
    centres: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """Paint per-cell masks into one label image; contested pixels go to the nearer centre.

    Parameters
    ----------
    masks : list of (label, window, mask)
        ``label`` 1..N, ``window`` the (row, col) slices of ``mask`` in the image.
    centres : numpy.ndarray
        [N, 2] (row, col) of labels 1..N.
    shape : (int, int)
        Image shape.

    Returns
    -------
    numpy.ndarray
        int32 labels; each cell is one 4-connected piece (fragments cut off by a neighbour's
        win are dropped, and background holes this leaves inside a cell are filled).
    """
    labels = np.zeros(shape, np.int32)
    touched: set[int] = set()
    for label, window, mask in masks:
        target = labels[window]
        current = target[mask]
        free = current == 0
        if not free.all():
            rr, cc = np.nonzero(mask)
            rr = rr + window[0].start
            cc = cc + window[1].start
            rivals = current[~free]
            mine = centres[label - 1]
            theirs = centres[rivals - 1]
            r_c, c_c = rr[~free], cc[~free]
            d_mine = (r_c - mine[0]) ** 2 + (c_c - mine[1]) ** 2
            d_theirs = (r_c - theirs[:, 0]) ** 2 + (c_c - theirs[:, 1]) ** 2
            take = d_mine < d_theirs
            touched.update(int(v) for v in np.unique(rivals[take]))
            touched.add(label)
            current[~free] = np.where(take, label, rivals)
        current[free] = label
        target[mask] = current
    if touched:
        boxes = ndi.find_objects(labels)
        for label in touched:
            if label > len(boxes) or boxes[label - 1] is None:
                continue
            box = boxes[label - 1]
            sub = labels[box]
            mine = sub == label
            peak = (centres[label - 1][0] - box[0].start, centres[label - 1][1] - box[1].start)
            keep = _component_at(mine, peak)
            sub[mine & ~keep] = 0
            # A pixel lost to a rival's fragment leaves a hole; nobody else may have it.
            hole = ndi.binary_fill_holes(keep) & ~keep & (sub == 0)
            sub[hole] = label
    return labels


def _cut_in_window(label, box, pad, owner, value, centres, boundary, params, intensity, memo, used):
    """Cut one cell on its seeds' box padded by ``pad``: (window, mask, rim)."""
    h, w = owner.shape
    r0 = max(0, box[0].start - pad)
    r1 = min(h, box[0].stop + pad)
    c0 = max(0, box[1].start - pad)
    c1 = min(w, box[1].stop + pad)
    window = (slice(r0, r1), slice(c0, c1))
    rim = (r0 > 0, r1 < h, c0 > 0, c1 < w)
    sub_owner = owner[window]
    own = sub_owner == label
    others = (sub_owner != label) & (sub_owner > 0)
    peak = (centres[label - 1, 0] - r0, centres[label - 1, 1] - c0)
    key = None
    if memo is not None:
        key = digest(own, others, value[window], window, peak)
        if used is not None:
            used.add(key)
    mask = memo.get(key) if memo is not None else None
    if mask is None:
        mask = cut_cell(
            own=own,
            value=value[window],
            others=others,
            boundary=boundary[window],
            peak=peak,
            params=params,
            rim=rim,
            intensity=None if intensity is None else intensity[window],
        )
        if memo is not None:
            memo[key] = mask
    return window, mask, rim


def segment_cells(
    owner: np.ndarray,
    value: np.ndarray,
    centres: np.ndarray,
    boundary: np.ndarray,
    params: GraphCutParams = GraphCutParams(),
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
    intensity: np.ndarray | None = None,
    memo: dict | None = None,
    used: set | None = None,
) -> np.ndarray:
    """Cut every cell on its own window and fuse the results.

    Parameters
    ----------
    owner, value : numpy.ndarray
        The maximum projection at the image's size (labels 1..N, and their scaled values).
    centres : numpy.ndarray
        [N, 2] (row, col) at the image's size.
    boundary : numpy.ndarray
        Boundary image in [0, 1] (:func:`boundary_image`).
    params : GraphCutParams
        Cut parameters.
    intensity : numpy.ndarray, optional
        The normalised image, for ``params.data_term == "intensity"``.
    memo : dict, optional
        Cuts made before with the same ``boundary``, ``intensity`` and ``params``, by a digest
        of everything else a cut depends on (its window, centre and the projection there); a
        cell found there is not cut again, and those cut are added. ``used`` gets the digests
        of this call's cells (see ``memo.Memo``).

    Returns
    -------
    numpy.ndarray
        int32 label image, label k for ``centres[k - 1]`` (some labels may be absent).
    """
    n = len(centres)
    # Each window frames the cell's seeds (its strong evidence) plus padding, not every faint
    # pixel its map happens to win: windows stay cell-sized and the cuts cheap.
    core = np.where(value > params.fg_seed, owner, 0)
    boxes = [
        c if c is not None else a
        for c, a in zip(
            ndi.find_objects(core, max_label=n), ndi.find_objects(owner, max_label=n), strict=True
        )
    ]
    del core
    masks = []
    for k, box in enumerate(boxes):
        if cancel is not None and k % 16 == 0 and cancel():
            raise Cancelled()
        if box is None:
            continue
        label = k + 1
        window, mask, rim = _cut_in_window(
            label, box, params.pad, owner, value, centres, boundary, params, intensity, memo, used
        )
        if reaches_rim(mask, rim):
            # Stopped by the window, not by the image (reaches_rim): with room to spare, a
            # cell's cut stops at its outline (two long C2C12 cells lying diagonally, their
            # ends in the corners, were cut off straight there). With the intensity data term
            # one that fills the larger window too has no outline: on fluorescence with a
            # bright, noisy background (GOWT1 with gamma 0.5) the nuclei model found centres
            # in the background, the term's Otsu threshold, taken on the window's own range,
            # called half of the noise "cell", the Potts term costs next to nothing in the
            # dark, and the cut filled the window: box-shaped false cells, left out. (With
            # the map's term a cell still longer is kept as the larger window cuts it.)
            window, mask, rim = _cut_in_window(
                label,
                box,
                WIDER * params.pad,
                owner,
                value,
                centres,
                boundary,
                params,
                intensity,
                memo,
                used,
            )
            if params.data_term == "intensity" and reaches_rim(mask, rim):
                mask = np.zeros_like(mask)
        if mask.any():
            masks.append((label, window, mask))
        if progress is not None and k % 16 == 0:
            progress(k / max(1, n))
    return fuse(masks, centres, owner.shape)
