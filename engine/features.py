"""Per-cell measurements with CellProfiler's names (MeasureObjectSizeShape, MeasureObjectIntensity,
MeasureObjectNeighbors).

Shape features come from scikit-image's ``regionprops``; the few CellProfiler has and scikit-image
lacks (form factor, compactness, minimum Feret diameter, orientation from the x axis) are written
out here with their formulas. Positions and bounding boxes are always in pixels (they locate the
cell in the image); sizes are in pixels, or in physical units when a pixel size is known, with the
unit in the column name (``AreaShape_Area_um2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .memo import digest

__all__ = [
    "CellTable",
    "calibration",
    "centroids_and_areas",
    "detection_centres",
    "feature_transform",
    "feret_diameters",
    "measure",
    "measure_image",
    "neighbours",
]


@dataclass
class CellTable:
    """A table of per-cell measurements: ordered columns of equal length.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        Column name -> values, one per cell, in label order.
    pixel_size : float or None
        Physical pixel size used for the size columns (None = pixels).
    unit : str or None
        Its unit.
    """

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    pixel_size: float | None = None
    unit: str | None = None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def rows(self) -> list[dict]:
        """One dict per cell, column order kept, numpy scalars turned into Python numbers."""
        names = self.names
        values = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


#: The edition of what the cell tables measure, recorded in a batch's run.json: a run
#: continued from an earlier edition measures the cells it keeps again. 2: Compactness as
#: CellProfiler 4 has it (P^2 / (4 pi A)), and no form factor for a cell of no perimeter.
#: 3: no ring integrated intensity where no pixel of the ring is a number (it was 0).
MEASURES = 3


def detection_centres(table) -> np.ndarray | None:
    """The centres (x, y) a cell table records where the network found each cell
    (``Detection_Center_X/Y``, row k for cell k + 1: what a segmentation's centres were),
    as float [N, 2]; None where it does not record them."""
    columns = getattr(table, "columns", None) or {}
    if "Detection_Center_X" not in columns or "Detection_Center_Y" not in columns:
        return None
    return np.column_stack(
        [np.asarray(columns[f"Detection_Center_{axis}"], float) for axis in "XY"]
    )


def centroids_and_areas(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's centroid, (n, 2) of (x, y), and its area in pixels, for labels 1..``n``
    of a label image, in one pass over its cells' pixels (a label with no pixel: centroid
    nan, area 0). The sums of rows come from those of flat indices less those of columns,
    all whole numbers below 2**53 and so exact: the centroids of summing every pixel's row
    and column, at a third of the time where cells cover a fifth of a 16 MP image and with no
    image-sized index arrays (following a 16 MP time point of 2,500 cells, ``make bench``:
    4.6 s -> 0.64 s)."""
    flat, width = labels.ravel(), max(labels.shape[-1], 1)
    inside = np.flatnonzero(flat)
    cells = flat[inside]
    areas = np.bincount(cells, minlength=n + 1)[1 : n + 1].astype(float)
    col_sums = np.bincount(cells, inside % width, minlength=n + 1)[1 : n + 1]
    row_sums = (np.bincount(cells, inside, minlength=n + 1)[1 : n + 1] - col_sums) / width
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack([col_sums / areas, row_sums / areas]), areas


#: The method part of the neighbour columns' names: CellProfiler's *MeasureObjectNeighbors*
#: names its measurements after how neighbours are found, and "Adjacent" is cells that touch.
NEIGHBOURS = "Adjacent"

#: The neighbour distance that stands for CellProfiler's *Expand until adjacent*: every cell
#: grown over the background until it meets another (its columns end in ``_Expanded``), the
#: neighbours of cells that never touch, such as nuclei.
EXPANDED = -1


def neighbour_method(distance: int = 0) -> str:
    """The method part of the neighbour columns' names, as CellProfiler writes it: "Adjacent"
    for cells that touch (``distance`` 0), "Expanded" for cells grown until they meet
    (:data:`EXPANDED`), else the distance in pixels ("5": *Within a specified distance*)."""
    if distance == EXPANDED:
        return "Expanded"
    if distance < 0 or int(distance) != distance:
        raise ValueError(
            "neighbour distance must be a whole number of pixels, 0 or more, or "
            f"{EXPANDED} (expanded until adjacent), got {distance}"
        )
    return NEIGHBOURS if not distance else str(int(distance))


def neighbours_in_words(distance: int = 0) -> str:
    """How neighbours are found, as a person says it: "touching", "within 5 px", "expanded
    until adjacent"."""
    if distance == EXPANDED:
        return "expanded until adjacent"
    return f"within {distance} px" if distance else "touching"


# The 8 neighbours of a pixel, each pair of opposite offsets once: right, down, two diagonals.
_HALF_RING = ((0, 1), (1, 0), (1, 1), (1, -1))


def _offset_slices(shape: tuple, dr: int, dc: int) -> tuple[tuple, tuple]:
    """Slices of an image of ``shape``: each pixel of the first, and the pixel ``(dr, dc)``
    from it in the second."""
    h, w = shape
    first = (slice(max(0, -dr), h - max(0, dr)), slice(max(0, -dc), w - max(0, dc)))
    second = (slice(max(0, dr), h - max(0, -dr)), slice(max(0, dc), w - max(0, -dc)))
    return first, second


def neighbours(
    labels: np.ndarray,
    numbers,
    centres: np.ndarray,
    scale: float = 1.0,
    distance: int = 0,
    grown: np.ndarray | None = None,
) -> dict:
    """CellProfiler's *MeasureObjectNeighbors* of the cells ``numbers`` (their labels, each
    once), in that order: method *Adjacent* (``distance`` 0), *Within a specified distance*
    (``distance`` pixels) or *Expand until adjacent* (``distance`` :data:`EXPANDED`).

    Two cells are neighbours where they touch: a pixel of one beside a pixel of the other,
    side by side or corner to corner; with a ``distance``, where a pixel of one lies within
    ``distance`` pixels of a pixel of the other (centre to centre, to the half pixel, as
    CellProfiler's disc: cells that touch are neighbours at any distance, and at 1 pixel the
    two methods agree); expanded, where they touch once every background pixel is given to
    the cell nearest it (the cells' Voronoi neighbours, whatever lies between). Returns, by
    CellProfiler's names without their ``Neighbors_`` prefix and method suffix
    (``_Adjacent``, ``_5``, ``_Expanded``): ``NumberOfNeighbors`` (the
    cells it touches, or lying within the distance); ``PercentTouching`` (of its outline
    pixels, those beside another cell, or within the distance of one; expanded, of the grown
    cell's outline, as CellProfiler's: what does not lie against another cell is the image
    edge: a cell
    inside a dense colony near 100, a lone cell 0; its pixels on the image edge count as
    outline); ``FirstClosestObjectNumber`` / ``SecondClosestObjectNumber`` and
    ``FirstClosestDistance`` / ``SecondClosestDistance``, the nearest other cells by the
    distance between centres (``centres``, (x, y) of each of ``numbers``: their centroids, as
    CellProfiler's; times ``scale``, the pixel size; 0 and nan where there is no such cell);
    ``AngleBetweenNeighbors``, the angle at its centre between those two (degrees, 0-180; nan
    without two). ``grown``: the labels grown until they meet, where the caller has them
    (:func:`measure`, with a ring too, takes one feature transform for both).
    """
    numbers = np.asarray(numbers, np.int64).ravel()
    if distance == EXPANDED:
        if grown is None:
            grown = _expanded(np.asarray(labels))
        count, percent = _adjacent(grown, numbers)
    elif distance:
        count, percent = _within(np.asarray(labels), numbers, distance + 0.5)
    else:
        count, percent = _adjacent(np.asarray(labels), numbers)
    n = len(numbers)
    closest = np.zeros((n, 2), np.int64)
    apart = np.full((n, 2), np.nan)
    angle = np.full(n, np.nan)
    if n > 1:
        from scipy.spatial import cKDTree

        xy = np.asarray(centres, float).reshape(n, 2)
        k = min(3, n)
        d, i = cKDTree(xy).query(xy, k=k)
        # a cell's own centre comes first, unless another lies at the same place
        own = i == np.arange(n)[:, None]
        order = np.argsort(own, axis=1, kind="stable")[:, : k - 1]
        i, d = np.take_along_axis(i, order, 1), np.take_along_axis(d, order, 1)
        closest[:, : k - 1], apart[:, : k - 1] = numbers[i], d * scale
        if k == 3:
            u, v = xy[i[:, 0]] - xy, xy[i[:, 1]] - xy
            # (no angle where a neighbour's centre is the cell's own: a cell in another's hole)
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = (u * v).sum(1) / (np.hypot(*u.T) * np.hypot(*v.T))
                angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {
        "NumberOfNeighbors": count,
        "PercentTouching": percent,
        "FirstClosestObjectNumber": closest[:, 0],
        "FirstClosestDistance": apart[:, 0],
        "SecondClosestObjectNumber": closest[:, 1],
        "SecondClosestDistance": apart[:, 1],
        "AngleBetweenNeighbors": angle,
    }


def check_ring_width(width) -> None:
    """ValueError unless ``width`` is a ring width :func:`measure` takes: whole pixels, 0 or
    more (0: no ring)."""
    if width < 0 or int(width) != width:
        raise ValueError(f"ring width must be a whole number of pixels, 0 or more, got {width}")


def rings(labels: np.ndarray, width: int, transform: tuple | None = None) -> np.ndarray:
    """Each cell's ring: the background pixels within ``width`` pixels of it that lie nearer
    to it than to any other cell (a tie to either), labelled with its number; 0 elsewhere
    (cells, and the background farther from every cell). The cytoplasm around a nucleus, as
    CellProfiler makes it: the nuclei grown by a distance (*IdentifySecondaryObjects*,
    *Distance - N*) less the nuclei (*IdentifyTertiaryObjects*). ``transform``: the labels'
    :func:`feature_transform`, where the caller has it."""
    labels = np.asarray(labels)
    if not labels.any() or width <= 0:
        return np.zeros_like(labels)
    grown, distance = transform if transform is not None else feature_transform(labels)
    return np.where((labels == 0) & (distance <= width), grown, 0)


def feature_transform(labels: np.ndarray, distances: bool = True) -> tuple:
    """Every pixel given the label of the cell pixel nearest it (the Euclidean feature
    transform; a tie to either; cells keep their own), and with ``distances`` how far that
    pixel is (else None). Indices in 32 bits: half the memory of skimage's
    ``expand_labels``, which gives the same labels (a 4096 x 4096 mosaic: 2.5 s against
    3.7 s). Without any cell: every pixel 0, infinitely far (the transform itself would
    leave its indices unset)."""
    from scipy import ndimage

    if not labels.any():  # an empty well, a black frame
        return np.zeros_like(labels), np.full(labels.shape, np.inf) if distances else None
    nearest = np.empty((2, *labels.shape), np.int32)
    distance = ndimage.distance_transform_edt(
        labels == 0, return_distances=distances, return_indices=True, indices=nearest
    )
    return labels[nearest[0], nearest[1]], distance


def _ring_columns(
    labels: np.ndarray,
    width: int,
    numbers,
    planes: list,
    means: dict,
    transform: tuple | None = None,
) -> dict:
    """The ``Ring_`` columns of :func:`measure` without their prefix, of the cells
    ``numbers``: ``AreaShape_Area`` (pixels), and for each ``(suffix, plane)`` of ``planes``
    ``Intensity_MeanIntensity``, ``_IntegratedIntensity`` and ``_CellToRingRatio`` (the
    cell's mean, ``means[suffix]``, over the ring's; nan where that is no number).
    ``transform``: as :func:`rings` takes it."""
    numbers = np.asarray(numbers, np.int64)
    around = rings(labels, width, transform).ravel()
    top = int(labels.max()) + 1
    area = np.bincount(around, minlength=top)[numbers].astype(np.float64)
    out = {"AreaShape_Area": area}
    for suffix, plane in planes:
        values = np.asarray(plane, np.float64).ravel()
        finite = np.isfinite(values)  # (NaN where a ratio image is masked: left out)
        total = np.bincount(around[finite], values[finite], minlength=top)
        counted = np.bincount(around[finite], minlength=top)[numbers]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total[numbers] / counted
            ratio = np.asarray(means[suffix], np.float64) / mean
        out[f"Intensity_MeanIntensity{suffix}"] = mean
        # none a number (or no ring): none measured, as a cell's own intensities
        out[f"Intensity_IntegratedIntensity{suffix}"] = np.where(
            counted > 0, total[numbers], np.nan
        )
        out[f"Intensity_CellToRingRatio{suffix}"] = np.where(np.isfinite(ratio), ratio, np.nan)
    return out


def _expanded(labels: np.ndarray) -> np.ndarray:
    """Every background pixel given to the cell nearest it (CellProfiler's *Expand until
    adjacent*; a tie to either): cells grown until they meet, whatever lies between."""
    return feature_transform(labels, distances=False)[0] if labels.any() else labels


def _within(labels: np.ndarray, numbers: np.ndarray, reach: float) -> tuple:
    """The neighbour counts and touching percentages of :func:`neighbours` at a distance: for
    each cell, the other cells with a pixel within ``reach`` of one of its own, and the share
    of its outline pixels that lie within ``reach`` of another cell. Cell by cell, in its box
    widened by the reach (nothing farther can be near it)."""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels)
    margin = int(np.ceil(reach))
    h, w = labels.shape
    count = np.zeros(len(numbers), np.int64)
    percent = np.full(len(numbers), np.nan)
    for k, number in enumerate(numbers.tolist()):
        box = boxes[number - 1] if 0 < number <= len(boxes) else None
        if box is None:
            continue
        rows = slice(max(0, box[0].start - margin), min(h, box[0].stop + margin))
        cols = slice(max(0, box[1].start - margin), min(w, box[1].stop + margin))
        patch = labels[rows, cols]
        own = patch == number
        others = (patch > 0) & ~own
        near = ndimage.distance_transform_edt(~own) <= reach
        count[k] = len(np.unique(patch[near & others]))
        # its outline, as the touching cells': a pixel beside one not its own, or on the
        # image edge (the box reaches past its pixels but there)
        edged = np.pad(own, 1)
        inner = edged[:-2, 1:-1] & edged[2:, 1:-1] & edged[1:-1, :-2] & edged[1:-1, 2:]
        outline = own & ~inner
        if others.any():
            close = ndimage.distance_transform_edt(~others) <= reach
            percent[k] = 100.0 * (outline & close).sum() / outline.sum()
        else:
            percent[k] = 0.0
    return count, percent


def _adjacent(labels: np.ndarray, numbers: np.ndarray) -> tuple:
    """The neighbour counts and touching percentages of :func:`neighbours` of cells that
    touch."""
    padded = np.pad(labels, 1)
    inside = padded > 0
    touching = np.zeros(padded.shape, bool)
    outline = np.zeros(padded.shape, bool)
    pairs = []
    for dr, dc in _HALF_RING:
        first, second = _offset_slices(padded.shape, dr, dc)
        a, b = padded[first], padded[second]
        differ = a != b
        meet = differ & (a > 0) & (b > 0)  # two cells side by side
        pairs.append((a[meet].astype(np.int64), b[meet].astype(np.int64)))
        touching[first] |= meet
        touching[second] |= meet
        if dr == 0 or dc == 0:  # a cell's pixel beside what is not that cell: its outline
            outline[first] |= differ & (a > 0)
            outline[second] |= differ & (b > 0)
    top = int(padded.max()) + 1
    one = np.concatenate([np.minimum(a, b) for a, b in pairs])
    other = np.concatenate([np.maximum(a, b) for a, b in pairs])
    touched = np.unique(one * top + other)  # each pair of touching cells once
    count = np.bincount(np.concatenate([touched // top, touched % top]), minlength=top)[numbers]
    flat = padded[inside]
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = (
            100.0
            * (
                np.bincount(flat, (touching & outline)[inside], minlength=top)
                / np.bincount(flat, outline[inside], minlength=top)
            )[numbers]
        )
    return count, percent


def _hull_points(coords: np.ndarray) -> np.ndarray:
    """Convex hull vertices of the union of the pixel squares at ``coords`` (row, col).

    Only the first and last pixel of each row can hold a hull vertex, so only their squares'
    corners go to Qhull: the same hull as from every pixel's corners, for a fraction of the
    sorting (a 1,000-pixel cell has some 40 rows).
    """
    from scipy.spatial import ConvexHull, QhullError

    rows, at = np.unique(coords[:, 0], return_inverse=True)
    first = np.full(len(rows), np.inf)
    last = np.full(len(rows), -np.inf)
    np.minimum.at(first, at, coords[:, 1])
    np.maximum.at(last, at, coords[:, 1])
    ends = np.concatenate([np.column_stack([rows, first]), np.column_stack([rows, last])])
    corners = ends[:, None, :] + np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = np.unique(corners.reshape(-1, 2), axis=0)
    try:
        return corners[ConvexHull(corners).vertices]
    except QhullError:  # collinear: a one-pixel-wide line is still a rectangle of corners
        return corners


def feret_diameters(coords: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum Feret (caliper) diameters of a pixel set.

    Measured on the convex hull of the pixels' squares, so a w x h rectangle of pixels has
    minimum ``min(w, h)`` and maximum ``hypot(w, h)``, and one pixel has 1 and sqrt(2).

    Parameters
    ----------
    coords : numpy.ndarray
        [K, 2] (row, col) pixel coordinates of one object.

    Returns
    -------
    (float, float)
        (min Feret, max Feret) in pixels.
    """
    hull = _hull_points(np.asarray(coords, np.float64))
    diff = hull[:, None, :] - hull[None, :, :]
    max_feret = float(np.sqrt((diff**2).sum(-1)).max())
    # Rotating calipers: the minimum width is attained with one side flush to a hull edge.
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    ok = lengths > 0
    normals = np.stack([-edges[ok, 1], edges[ok, 0]], axis=1) / lengths[ok, None]
    widths = hull @ normals.T  # projections of every vertex on every edge normal
    min_feret = float((widths.max(0) - widths.min(0)).min())
    return min_feret, max_feret


def measure(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    pixel_size: float | None = None,
    unit: str = "um",
    centres: np.ndarray | None = None,
    channels: dict | None = None,
    memo: dict | None = None,
    neighbour_distance: int = 0,
    ring_width: int = 0,
    transform: tuple | None = None,
) -> CellTable:
    """Measure every labelled cell.

    Parameters
    ----------
    labels : numpy.ndarray
        2-D integer label image, 0 = background.
    image : numpy.ndarray, optional
        The original image (same shape) for the intensity columns, in its own values.
    pixel_size : float, optional
        Physical size of one pixel; size columns are then in ``unit`` (areas in ``unit``^2).
    unit : str
        Name of the physical unit, used in column names (``"um"``).
    centres : numpy.ndarray, optional
        [N, 2] (x, y) where cell k was detected (``Segmentation.centres``, label k = row k - 1):
        adds Detection_Center_X/Y after the centroid, the points the published detection
        F-measure is computed on.
    channels : dict of str to numpy.ndarray, optional
        More images of the same cells (the channels of a multi-channel file, same shape), by
        name: each adds Intensity_MeanIntensity_<name>, _MinIntensity_<name>,
        _MaxIntensity_<name> and _IntegratedIntensity_<name> (CellProfiler's naming for an
        image measured by name), e.g. a fluorescent reporter in cells outlined on phase
        contrast.
    memo : dict, optional
        Rows measured before, by a digest of everything a cell's row depends on (its pixels,
        box, centre, the images under it, the calibration); a cell found there is not
        measured again (a correction changes a few cells of many), and the dict is left
        holding this call's cells only. The table is the same as without it.
    neighbour_distance : int
        How neighbours are found (:func:`neighbours`): 0, cells that touch (the columns end
        in ``_Adjacent``); :data:`EXPANDED`, cells grown until they meet (``_Expanded``);
        else cells within this many pixels of each other (in ``_5``, ..., as CellProfiler's
        *Within a specified distance*).
    ring_width : int
        0: no ring. Else each cell's ring is measured too (:func:`rings`): the background
        within this many pixels of it that lies nearer to it than to any other cell, the
        cytoplasm around a nucleus: ``Ring_AreaShape_Area``, and of the image and each of
        ``channels`` ``Ring_Intensity_MeanIntensity``, ``_IntegratedIntensity`` and
        ``Ring_Intensity_CellToRingRatio`` (the cell's mean intensity over its ring's: a
        reporter's nuclear to cytoplasmic ratio; nan for a ring of no pixels or mean 0).
    transform : tuple, optional
        The labels' :func:`feature_transform`, where the caller has it (the overlay of the
        same cells draws their rings from it too); else made here when needed.

    Returns
    -------
    CellTable
        Columns, in order: ObjectNumber, AreaShape_Center_X/Y, AreaShape_Area, _Perimeter,
        _EquivalentDiameter, _MajorAxisLength, _MinorAxisLength, _Eccentricity, _Orientation
        (degrees, counter-clockwise from the x axis as seen on screen, -90..90), _Solidity,
        _Extent, _FormFactor (4 pi A / P^2), _Compactness (P^2 / (4 pi A): 1 for a disk, as
        CellProfiler 4 has it; both empty, nan, for a cell of no perimeter: one or two pixels),
        _ConvexArea, _MinFeretDiameter, _MaxFeretDiameter, _BoundingBoxMinimum_X/_Y,
        _BoundingBoxMaximum_X/_Y (pixels, maximum exclusive), TouchesBorder, and with an image
        Intensity_MeanIntensity, _MinIntensity, _MaxIntensity, _IntegratedIntensity, then
        those of each of ``channels``; then the Neighbors_ columns of :func:`neighbours`
        (``Neighbors_NumberOfNeighbors_Adjacent``, ...; distances with the length unit); then
        with a ``ring_width`` the Ring_ columns.

    Examples
    --------
    >>> lab = np.zeros((10, 10), np.uint16); lab[2:6, 3:8] = 1
    >>> t = measure(lab)
    >>> t.columns["AreaShape_Area"].tolist(), t.columns["AreaShape_Extent"].tolist()
    ([20.0], [1.0])
    """
    from skimage.measure import regionprops

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    channels = dict(channels or {})
    for name, plane in [("image", image), *channels.items()]:
        if plane is not None and np.shape(plane) != labels.shape:
            raise ValueError(f"{name} shape {np.shape(plane)} differs from labels {labels.shape}")
    if pixel_size is not None and not pixel_size > 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size}")
    method = neighbour_method(neighbour_distance)
    check_ring_width(ring_width)
    props = regionprops(labels.astype(np.int64, copy=False))
    s = 1.0 if pixel_size is None else float(pixel_size)
    lu = "" if pixel_size is None else f"_{unit}"  # length unit suffix
    au = "" if pixel_size is None else f"_{unit}2"  # area unit suffix
    h, w = labels.shape
    rows: dict[str, list] = {}
    planes = ([("", image)] if image is not None else []) + [
        (f"_{k}", v) for k, v in channels.items()
    ]
    used: dict = {}

    def put(name: str, value) -> None:
        rows.setdefault(name, []).append(value)

    for p in props:
        key = None
        if memo is not None:
            under = [np.asarray(plane)[p.slice] for _, plane in planes]
            centre = None if centres is None else tuple(centres[p.label - 1])
            names = [name for name, _ in planes]
            key = digest(p.image, *under, p.bbox, (h, w), centre, s, lu, names)
            if key in memo:
                used[key] = memo[key]
                put("ObjectNumber", int(p.label))
                for name, value in memo[key]:
                    put(name, value)
                continue
        coords = p.coords
        r0, c0, r1, c1 = p.bbox
        area = float(p.area)
        perimeter = float(p.perimeter)
        cy, cx = p.centroid
        mu = p.moments_central
        # Orientation as CellProfiler/MATLAB report it: from the x axis, counter-clockwise on
        # screen (image rows grow downwards, hence the sign of mu11).
        mu20, mu02, mu11 = mu[2, 0] / mu[0, 0], mu[0, 2] / mu[0, 0], mu[1, 1] / mu[0, 0]
        orientation = 0.5 * np.degrees(np.arctan2(-2.0 * mu11, mu02 - mu20))
        if orientation <= -90.0:
            orientation += 180.0
        min_feret, max_feret = feret_diameters(coords)
        put("ObjectNumber", int(p.label))
        put("AreaShape_Center_X", float(cx))
        put("AreaShape_Center_Y", float(cy))
        if centres is not None:
            put("Detection_Center_X", float(centres[p.label - 1][0]))
            put("Detection_Center_Y", float(centres[p.label - 1][1]))
        put(f"AreaShape_Area{au}", area * s * s)
        put(f"AreaShape_Perimeter{lu}", perimeter * s)
        put(f"AreaShape_EquivalentDiameter{lu}", float(p.equivalent_diameter_area) * s)
        put(f"AreaShape_MajorAxisLength{lu}", float(p.axis_major_length) * s)
        put(f"AreaShape_MinorAxisLength{lu}", float(p.axis_minor_length) * s)
        put("AreaShape_Eccentricity", float(p.eccentricity))
        put("AreaShape_Orientation", float(orientation))
        put("AreaShape_Solidity", float(p.solidity))
        put("AreaShape_Extent", float(p.extent))
        # Both of the perimeter (CellProfiler 4's): none for a cell of one or two pixels,
        # whose perimeter scikit-image counts as 0.
        put("AreaShape_FormFactor", 4 * np.pi * area / perimeter**2 if perimeter > 0 else np.nan)
        put("AreaShape_Compactness", perimeter**2 / (4 * np.pi * area) if perimeter > 0 else np.nan)
        put(f"AreaShape_ConvexArea{au}", float(p.area_convex) * s * s)
        put(f"AreaShape_MinFeretDiameter{lu}", min_feret * s)
        put(f"AreaShape_MaxFeretDiameter{lu}", max_feret * s)
        put("AreaShape_BoundingBoxMinimum_X", int(c0))
        put("AreaShape_BoundingBoxMinimum_Y", int(r0))
        put("AreaShape_BoundingBoxMaximum_X", int(c1))
        put("AreaShape_BoundingBoxMaximum_Y", int(r1))
        put("TouchesBorder", bool(r0 == 0 or c0 == 0 or r1 == h or c1 == w))
        for suffix, plane in planes:
            values = np.asarray(plane)[coords[:, 0], coords[:, 1]].astype(np.float64)
            values = values[np.isfinite(values)]  # NaN or inf pixels (a masked ratio image)
            if values.size:
                put(f"Intensity_MeanIntensity{suffix}", float(values.mean()))
                put(f"Intensity_MinIntensity{suffix}", float(values.min()))
                put(f"Intensity_MaxIntensity{suffix}", float(values.max()))
                put(f"Intensity_IntegratedIntensity{suffix}", float(values.sum()))
            else:  # none a number: none measured
                for name in ("Mean", "Min", "Max", "Integrated"):
                    put(f"Intensity_{name}Intensity{suffix}", np.nan)
        if key is not None:  # this cell's row, its number aside
            used[key] = [
                (name, values[-1]) for name, values in rows.items() if name != "ObjectNumber"
            ]
    if memo is not None:
        memo.clear()
        memo.update(used)
    if props:  # of every cell, after the others' rows (a cell's neighbours are not its own)
        centroids = np.column_stack([rows["AreaShape_Center_X"], rows["AreaShape_Center_Y"]])
        if transform is None and ring_width and neighbour_distance == EXPANDED:
            transform = feature_transform(labels)  # for both expanded neighbours and rings
        grown = None if transform is None else transform[0]
        numbers = rows["ObjectNumber"]
        near = neighbours(labels, numbers, centroids, s, neighbour_distance, grown)
        for name, values in near.items():
            length = lu if name.endswith("Distance") else ""
            rows[f"Neighbors_{name}_{method}{length}"] = values
        if ring_width:
            means = {suffix: rows[f"Intensity_MeanIntensity{suffix}"] for suffix, _ in planes}
            around = _ring_columns(labels, int(ring_width), numbers, planes, means, transform)
            for name, values in around.items():
                area = name == "AreaShape_Area"  # (not ``unit``: the table's, returned below)
                rows[f"Ring_{name}{au if area else ''}"] = values * s * s if area else values

    if not props:  # an empty table still has its columns, so CSV headers stay the same
        empty = measure(
            np.pad(np.ones((1, 1), np.int32), 1),
            None if image is None else np.zeros((3, 3), np.asarray(image).dtype),
            pixel_size,
            unit,
            None if centres is None else np.zeros((1, 2)),
            {k: np.zeros((3, 3), np.asarray(v).dtype) for k, v in channels.items()},
            neighbour_distance=neighbour_distance,
            ring_width=ring_width,
        )
        return CellTable(
            {k: v[:0] for k, v in empty.columns.items()},
            pixel_size,
            None if pixel_size is None else unit,
        )
    columns = {k: np.asarray(v) for k, v in rows.items()}
    return CellTable(columns, pixel_size, None if pixel_size is None else unit)


def measure_image(
    labels: np.ndarray,
    data,
    pixel_size: float | None = None,
    centres: np.ndarray | None = None,
    memo: dict | None = None,
    neighbour_distance: int = 0,
    ring_width: int = 0,
    transform: tuple | None = None,
) -> CellTable:
    """The cell table of one segmented image plane, as every front end writes it.

    Parameters
    ----------
    labels : numpy.ndarray
        The plane's labels.
    data : ImageData
        The plane as read (:func:`cellprop.engine.read_image`).
    pixel_size : float, optional
        Micrometres per pixel, given by the user; default: the file's calibration (in its
        unit), else pixels.
    centres, memo, neighbour_distance, ring_width, transform : optional
        As :func:`measure`.

    A file of several channels has every channel of this plane measured too (read from the
    file): ``Intensity_MeanIntensity_C0``, ``_C1``, ... (channels counted from 0, as
    ``--channel`` counts them), whichever of them was segmented; a colour image's are its
    grey, red, green and blue.
    """
    from .io import read_image

    size, unit = calibration(data, pixel_size)
    channels = {}
    if data.colour is not None:  # a colour image's grey, red, green, blue: all at hand
        channels["C0"] = data.pixels
        for c in range(3):
            channels[f"C{c + 1}"] = data.colour[..., c]
    elif data.n_channels > 1 and data.path is not None:
        for c in range(data.n_channels):
            same = c == data.channel
            plane = data.pixels if same else read_image(data.path, data.page, c).pixels
            channels[f"C{c}"] = plane
    return measure(
        labels,
        data.pixels,
        size,
        unit or "um",
        centres=centres,
        channels=channels,
        memo=memo,
        neighbour_distance=neighbour_distance,
        ring_width=ring_width,
        transform=transform,
    )


def calibration(data, pixel_size: float | None = None) -> tuple[float | None, str | None]:
    """The pixel size and its unit that the measurements of the plane ``data`` (ImageData)
    use, and its label image records: ``pixel_size`` given (micrometres), else the file's
    calibration, else (None, None): pixels."""
    if pixel_size:
        return float(pixel_size), "um"
    if data.pixel_size:
        return float(data.pixel_size), data.unit or "um"
    return None, None
