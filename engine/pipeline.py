"""segment(): one image in, labels out, through every stage of the method (METHOD.md sections 2-5).

    raw image -> normalise + rescale -> U-Net likelihood (tiled) -> centres, regions S_u
      -> guided propagation per cell (crop windows, batched) -> maximum projection
      -> back to the original size -> per-cell graph cut -> fusion -> size/border filters

Stages are the plain functions of the neighbouring modules; this one resolves settings against
the model's defaults, times each stage and maps results back to the original pixel grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .detect import centre_regions, find_centres
from .errors import Cancelled, ImageError
from .features import check_ring_width, neighbour_method
from .graphcut import (
    GRADIENT_SIGMA,
    GraphCutParams,
    border_labels,
    boundary_image,
    label_dtype,
    segment_cells,
)
from .io import MAX_PIXELS
from .memo import Memo
from .normalise import (
    finite_filled,
    normalise,
    percentiles,
    rescale,
    to_network_coordinates,
    to_original_coordinates,
)
from .projection import project
from .propagate import likelihood_map, propagate_cells
from .size import estimate_diameter

__all__ = [
    "Segmentation",
    "Settings",
    "detect_cells",
    "EDGE_ESTIMATES",
    "edge_centre_distance",
    "edge_limits",
    "edge_min_size",
    "left_out_note",
    "filter_cells",
    "network_input",
    "resolve_settings",
    "scaled_min_size",
    "keep_unreached",
    "segment",
]


#: Settings that change only how the cells are measured, not which cells there are: a run
#: continued with others measures the cells it kept again (the labels as they are).
MEASURED = ("pixel_size", "neighbour_distance", "ring_width")


@dataclass(frozen=True)
class Settings:
    """What a user may choose; None means the model's default (model.json "defaults").

    Attributes
    ----------
    threshold : float, optional
        Detection threshold on the likelihood, 0..1.
    diameter : float or "auto", optional
        Expected cell diameter in original pixels; the image is rescaled so cells have the
        diameter the network was trained on. None: the model's fixed ``input.scale``.
        ``"auto"``: estimated on each image (:func:`cellprop.engine.size.estimate_diameter`).
    smoothness : float, optional
        Graph-cut pairwise (Potts) weight.
    min_size : int, optional
        Smallest cell kept, original pixels.
    max_size : int, optional
        Largest cell kept, original pixels (clumps, or outlines grown over the background);
        None or 0: no limit (a model may set one, model.json ``"max_size_px"``).
    exclude_border : bool
        Drop every cell touching the image border.
    edge_fraction : float, optional
        Drop cells touching the image border that show less than this fraction of a typical
        cell (a disc of the cell diameter in use): fragments of cells mostly outside the image,
        whose shape measurements mean little. 0 keeps them all. How much of a cell shows is
        judged by the model (model.json ``"edge_estimate"``): by its outline's area
        (``"area"``, the default), or by where the network placed its centre (``"centre"``:
        :func:`edge_centre_distance`), for models whose outlines of cut cells are less sure
        than their centres.
    pixel_size : float, optional
        Physical pixel size (overrides the file's metadata) for measurements.
    neighbour_distance : int
        How the cells' neighbours are measured: 0, cells that touch; -1 (``EXPANDED``), cells
        grown over the background until they meet; else cells within this many pixels of each
        other (:func:`cellprop.engine.features.neighbours`).
    ring_width : int
        0: none. Else each cell's ring of this many pixels (the cytoplasm around a nucleus:
        :func:`cellprop.engine.features.rings`) is measured too, its ``Ring_`` columns.
    propagation : {"crop", "full"}
        ``crop``: windows around each cell (fast); ``full``: the paper's whole-image passes.
    memory_mb : int
        Budget for one network call (batched propagation, U-Net tiles).
    """

    threshold: float | None = None
    diameter: float | str | None = None
    smoothness: float | None = None
    min_size: int | None = None
    max_size: int | None = None
    exclude_border: bool = False
    edge_fraction: float | None = None
    pixel_size: float | None = None
    neighbour_distance: int = 0
    ring_width: int = 0
    propagation: str = "crop"
    memory_mb: int = 1024

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(
                f"threshold must lie between 0 and 1 (not 0 or 1 itself), got {self.threshold}"
            )
        if isinstance(self.diameter, str):
            if self.diameter != "auto":
                raise ValueError(f"diameter must be a number or 'auto', got {self.diameter!r}")
        elif self.diameter is not None and not 1 <= self.diameter < math.inf:
            # (below a pixel the image would be enlarged past any memory; nan hung)
            raise ValueError(f"diameter must be a number of pixels, 1 or more, got {self.diameter}")
        if self.smoothness is not None and not 0 <= self.smoothness < math.inf:
            raise ValueError(f"smoothness must be a number, 0 or more, got {self.smoothness}")
        if self.min_size is not None and self.min_size < 0:
            raise ValueError(f"min size must not be negative, got {self.min_size}")
        if self.max_size is not None and self.max_size < 0:
            raise ValueError(f"max size must not be negative, got {self.max_size}")
        if self.max_size and self.min_size and self.min_size > self.max_size:
            raise ValueError(
                f"the smallest cell ({self.min_size} px) is larger than the largest "
                f"({self.max_size} px): no cell would be kept"
            )
        if self.edge_fraction is not None and not 0.0 <= self.edge_fraction <= 1.0:
            raise ValueError(f"edge fraction must lie between 0 and 1, got {self.edge_fraction}")
        if self.pixel_size is not None and not 1e-6 <= self.pixel_size <= 1e6:
            raise ValueError(
                "pixel size must be between 0.000001 and 1000000 micrometres (a pixel's "
                f"width in µm: 0.325, say), got {self.pixel_size:g}"
            )
        neighbour_method(self.neighbour_distance)  # whole pixels, 0 or more, or EXPANDED
        check_ring_width(self.ring_width)
        if self.propagation not in ("crop", "full"):
            raise ValueError(f"propagation must be 'crop' or 'full', got {self.propagation!r}")
        if self.memory_mb < 64:
            raise ValueError(f"memory budget must be at least 64 MB, got {self.memory_mb}")

    def measured(self) -> dict:
        """How cells are measured (:data:`MEASURED`), as keywords of
        :func:`~cellprop.engine.features.measure_image` and ``batch.measure_again``."""
        return {name: getattr(self, name) for name in MEASURED}


@dataclass
class Segmentation:
    """The result of :func:`segment` on one image.

    Attributes
    ----------
    labels : numpy.ndarray
        uint16 (uint32 past 65535 cells) instance labels 1..N, 0 = background; image shape.
    likelihood : numpy.ndarray
        float32 detection likelihood in [0, 1], image shape.
    contribution : numpy.ndarray
        float32 fused maximum projection of the cells' contribution maps, image shape.
    centres : numpy.ndarray
        float [N, 2] of (x, y) for labels 1..N, original pixels.
    timings : dict of str to float
        Seconds per stage.
    settings : dict
        The values actually used (model defaults filled in, scale, mode, provider).
    """

    labels: np.ndarray
    likelihood: np.ndarray
    contribution: np.ndarray
    centres: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return len(self.centres)


def resolve_settings(model, settings: Settings) -> dict:
    """Fill the settings' None values from the model's defaults; add the working scale.

    Returns a plain dict (JSON-ready) of every value the pipeline will use. A diameter of
    ``"auto"`` must have been estimated first (:func:`segment` does).
    """
    if settings.diameter == "auto":
        raise ValueError("diameter 'auto' is estimated per image; segment() resolves it")
    d = model.defaults
    scale = model.scale
    if settings.diameter is not None and not model.cell_diameter_px:  # (a hand-made folder)
        raise ValueError(
            f"a cell diameter cannot be used with the model {model.name}: its model.json "
            "gives no cell_diameter_px, the size of its cells to rescale to"
        )
    if settings.diameter is not None:
        scale = model.cell_diameter_px / settings.diameter
    # Defaults in original pixels (minimum size, centre region) were set for the model's own
    # cell size; cells `ratio` times wider need them `ratio` times wider too.
    ratio = model.scale / scale
    resolved = asdict(settings)
    resolved.update(
        threshold=float(
            settings.threshold if settings.threshold is not None else d.get("threshold", 0.5)
        ),
        smoothness=float(
            settings.smoothness
            if settings.smoothness is not None
            else d.get("graphcut_weight", 20.0)
        ),
        min_size=int(
            settings.min_size
            if settings.min_size is not None
            else scaled_min_size(d.get("min_size_px", 0), ratio)
        ),
        max_size=int(
            settings.max_size
            if settings.max_size is not None
            else scaled_min_size(d.get("max_size_px", 0), ratio)
        ),
        scale=float(scale),
        peak_min_distance=int(d.get("peak_min_distance", 2)),
        region_radius_px=float(d.get("region_radius_px", 15)) * ratio,
        edge_beta=float(d.get("edge_beta", 10.0)),
        # Optional: sigma of the "gradient" boundary image, pixels at the cut's scale.
        edge_sigma=float(d.get("edge_sigma", GRADIENT_SIGMA)),
        polarity=str(d.get("polarity", "bright_boundary")),
        propagation_margin_px=int(d.get("propagation_margin_px", 48)),
        # Optional in model.json: graph-cut seed thresholds on the scaled maps (METHOD 5).
        seed_fg=float(d.get("seed_fg", GraphCutParams.fg_seed)),
        seed_bg=float(d.get("seed_bg", GraphCutParams.bg_seed)),
        # Optional: foreground seeds within this fraction of the cell diameter of the centre.
        seed_radius=float(d.get("seed_radius", 0.0)),
        # Optional: "intensity" adds the image as a data term (fluorescence; graphcut.py).
        data_term=str(d.get("data_term", GraphCutParams.data_term)),
        data_weight=float(d.get("data_weight", GraphCutParams.data_weight)),
        data_softness=float(d.get("data_softness", GraphCutParams.data_softness)),
        # Cell diameter in original pixels, for the graph-cut window's context.
        diameter_px=float(
            settings.diameter
            if settings.diameter is not None
            else (model.cell_diameter_px or 16.0) / model.scale
        ),
        edge_fraction=float(
            settings.edge_fraction
            if settings.edge_fraction is not None
            else d.get("edge_fraction", 0.0)
        ),
        # How the edge rule judges what share of a cut cell shows: "area" or "centre".
        edge_estimate=edge_estimate(d),
        # The graph cut runs on the image resized by this factor, where cells have the model's
        # own diameter: its weights, edge smoothing and seeds were tuned at that size.
        cut_scale=1.0 / ratio,
        model=model.name,
        provider=model.provider,
    )
    # The edge rule, original pixels, from the diameter in use: the smallest area of a cut cell
    # kept, or the nearest to the edge its centre may lie.
    resolved["edge_min_size"], resolved["edge_centre_px"] = edge_limits(
        resolved["edge_fraction"], resolved["diameter_px"], resolved["edge_estimate"]
    )
    return resolved


def edge_limits(fraction: float, diameter: float, estimate: str = "area") -> tuple[int, float]:
    """The edge rule as :func:`filter_cells` takes it: (``edge_min``, ``edge_centre``) for cut
    cells that show less than ``fraction`` of a cell of ``diameter`` pixels, judged by
    ``estimate`` (:data:`EDGE_ESTIMATES`); the other limit is 0."""
    if estimate == "centre":
        return 0, edge_centre_distance(fraction, diameter)
    return edge_min_size(fraction, diameter), 0.0


def count_cells(n: int) -> str:
    """A count of cells in words, for every front end's messages: "1 cell", "0 cells"."""
    return f"{n} cell{'s' * (n != 1)}"


def left_out_note(settings: dict | None) -> str:
    """For a log line about one image: "; 3 cells cut by the image edge left out (...)" where
    the border or edge rule left cells out, "; 1 cell larger than the largest cell (30000 px)
    left out" where the largest-cell rule did, "; all 12 cells found were smaller than the
    smallest cell (900 px) and left out" where the smallest-cell rule left none
    (``Segmentation.settings``), else ""."""
    settings = settings or {}
    cells = count_cells
    note = ""
    count = int(settings.get("edge_left_out") or 0)
    if count and settings.get("exclude_border"):
        note += f"; {cells(count)} touching the image edge left out"
    elif count:
        share = 100 * float(settings.get("edge_fraction") or 0.0)
        note += (
            f"; {cells(count)} cut by the image edge left out (showing under {share:.0f}% of "
            "a cell)"
        )
    count = int(settings.get("large_left_out") or 0)
    if count:
        note += (
            f"; {cells(count)} larger than the largest cell ({settings.get('max_size')} px) "
            "left out"
        )
    count = int(settings.get("small_left_out") or 0)
    if count and count == settings.get("n_detected"):  # every cell found, none kept: say why
        note += (
            f"; {'the' if count == 1 else 'all'} {cells(count)} found "
            f"{'was' if count == 1 else 'were'} smaller than the smallest cell "
            f"({settings.get('min_size')} px) and left out"
        )
    return note


#: How the edge rule may judge the share of a cut cell that shows (model.json "edge_estimate").
EDGE_ESTIMATES = ("area", "centre")


def edge_estimate(defaults: dict) -> str:
    """A model's ``"edge_estimate"`` (``"area"`` where it names none); ValueError if unknown."""
    value = str(defaults.get("edge_estimate", "area"))
    if value not in EDGE_ESTIMATES:
        raise ValueError(
            f"model.json edge_estimate must be one of {', '.join(EDGE_ESTIMATES)}, got {value!r}"
        )
    return value


def scaled_min_size(min_size_px: float, ratio: float) -> int:
    """A model's default minimum cell area for cells ``ratio`` times its own cells' diameter."""
    return int(round(float(min_size_px) * ratio**2))


def edge_min_size(fraction: float, diameter: float) -> int:
    """The smallest area (pixels) of a cell cut by the image edge that is kept: ``fraction`` of
    a typical cell's area, a disc of ``diameter`` pixels."""
    return int(round(float(fraction) * np.pi * float(diameter) ** 2 / 4.0))


def edge_centre_distance(fraction: float, diameter: float) -> float:
    """How near the image edge (pixels) the centre of a cut cell lies when the cell shows
    ``fraction`` of itself: the centroid of the part of a disc of ``diameter`` pixels that a
    straight edge leaves, from that edge.

    The networks learn to place a cell's centre at the middle of what they see of it (the
    annotated points of a cut cell lie on its visible part), so a centre nearer the edge than
    this means a cell that shows less: half a disc shows 1/2 with its centroid 4r/(3 pi) from
    the edge, a thin sliver has its centroid next to the edge. 0 for a fraction of 0.
    """
    fraction = float(fraction)
    if fraction <= 0.0:
        return 0.0
    if fraction >= 1.0:
        return float(diameter) / 2.0
    return float(np.interp(fraction, _SEGMENT_SHARE, _SEGMENT_CENTROID)) * float(diameter) / 2.0


def _segment_table() -> tuple[np.ndarray, np.ndarray]:
    """Circular segments of the unit disc by central angle: the share of the disc each covers
    and its centroid's distance from its chord (both rise with the angle)."""
    angle = np.linspace(1e-3, 2 * np.pi - 1e-3, 4001)
    area = angle - np.sin(angle)
    share = area / (2 * np.pi)
    centroid = 4 * np.sin(angle / 2) ** 3 / (3 * area) - np.cos(angle / 2)
    return share, np.maximum.accumulate(centroid)


_SEGMENT_SHARE, _SEGMENT_CENTROID = _segment_table()


def filter_cells(
    labels: np.ndarray,
    centres_rc: np.ndarray,
    min_size: int,
    exclude_border: bool = False,
    edge_min: int = 0,
    edge_centre: float = 0.0,
    report: dict | None = None,
    max_size: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop cells below ``min_size`` pixels, above ``max_size`` (where it is not 0), and cells
    touching the image border (all of them with ``exclude_border``, else those below
    ``edge_min`` pixels or whose centre lies nearer than ``edge_centre`` pixels to the image
    edge); number the rest 1..N in detection order.

    ``labels`` are 1..N for the N rows of ``centres_rc`` ((row, col), pixels of ``labels``);
    returns the new labels and the kept rows. A ``report`` dict given gets ``"edge"``: how many
    cells of ``min_size`` or more (and no more than ``max_size``) the border or edge rule left
    out, ``"large"``: how many cells over ``max_size`` were left out, and ``"small"``: how many
    were under ``min_size`` (or empty)."""
    n = len(centres_rc)
    counts = np.bincount(labels.ravel(), minlength=n + 1)[: n + 1]
    keep = counts >= max(1, min_size)
    keep[0] = False
    large = 0
    if max_size > 0:
        too_large = keep & (counts > max_size)
        large = int(too_large.sum())
        keep &= ~too_large
    edge = border_labels(labels).astype(np.int64)
    edge = edge[(edge > 0) & (edge <= n)]
    sized = int(keep[edge].sum())
    if exclude_border:
        keep[edge] = False
    else:
        if edge_min > 0:
            keep[edge[counts[edge] < edge_min]] = False
        if edge_centre > 0 and len(edge):
            h, w = labels.shape[:2]
            r, c = np.asarray(centres_rc, float).reshape(-1, 2)[edge - 1].T
            depth = np.minimum(np.minimum(r, h - 1 - r), np.minimum(c, w - 1 - c))
            keep[edge[depth < edge_centre]] = False
    if report is not None:
        report["edge"] = sized - int(keep[edge].sum())
        report["large"] = large
        report["small"] = int((counts[1:] < max(1, min_size)).sum())
    new_ids = np.zeros(n + 1, np.int64)
    new_ids[keep] = np.arange(1, int(keep.sum()) + 1)
    out = new_ids[labels].astype(label_dtype(int(keep.sum())))
    return out, centres_rc[keep[1:]]


def _pieces_as_they_were(out: np.ndarray, now: np.ndarray, will: np.ndarray) -> None:
    """Each cell of ``out`` that changed, in no more pieces than it has in ``now`` or in
    ``will`` (the labels as they were, the method's with the edit): pieces beyond those, the
    smallest, become background (a removed cell's place reached across a band erased in
    Fiji, a pixel of a cell clicked into). In place."""
    from scipy import ndimage as ndi

    changed = out != now
    cells = np.union1d(np.unique(out[changed]), np.unique(now[changed]))
    boxes = [ndi.find_objects(image) for image in (out, now, will)]

    def box_of(cell: int) -> tuple | None:  # around the cell in all three
        if cell > len(boxes[0]) or boxes[0][cell - 1] is None:
            return None  # (not in ``out``: nothing to cut)
        found = [b[cell - 1] for b in boxes if cell <= len(b) and b[cell - 1] is not None]
        return tuple(
            slice(min(f[a].start for f in found), max(f[a].stop for f in found)) for a in (0, 1)
        )

    for cell in cells[cells > 0].tolist():
        box = box_of(cell)
        if box is None:
            continue
        pieces, n = ndi.label(out[box] == cell)
        if n < 2:
            continue
        allowed = max(ndi.label(now[box] == cell)[1], ndi.label(will[box] == cell)[1], 1)
        if n <= allowed:
            continue
        sizes = np.bincount(pieces.ravel())[1:]
        small = np.argsort(sizes)[: n - allowed] + 1
        view = out[box]
        view[np.isin(pieces, small)] = 0


def detect_cells(
    likelihood: np.ndarray, cfg: dict, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (network-scale row, col) and centre regions S_u with resolved settings ``cfg``;
    given ``centres`` (network-scale row, col) are used instead of the likelihood's peaks."""
    if centres is None:
        centres = find_centres(likelihood, cfg["threshold"], cfg["peak_min_distance"])
    regions = centre_regions(likelihood.shape, centres, cfg["region_radius_px"] * cfg["scale"])
    return centres, regions


def network_input(image: np.ndarray, model, cfg: dict) -> np.ndarray:
    """The normalised image at the network's scale, as segment() feeds it to the networks."""
    return rescale(normalise(image, model.low, model.high), cfg["scale"], order=1)


def segment(
    image: np.ndarray,
    model,
    settings: Settings = Settings(),
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    centres: np.ndarray | None = None,
    memo: Memo | None = None,
) -> Segmentation:
    """Segment every cell of one 2-D image.

    Parameters
    ----------
    image : numpy.ndarray
        2-D raw image (any real dtype), e.g. ``read_image(path).pixels``.
    model : cellprop.engine.model.Model
        From :func:`cellprop.engine.load_model`.
    settings : Settings
        User choices; None fields take the model's defaults.
    progress : callable, optional
        ``progress(stage, fraction)`` with fraction of the whole image done, 0..1.
    cancel : callable, optional
        Polled between steps; when it returns True, :class:`Cancelled` is raised.
    centres : numpy.ndarray, optional
        [N, 2] (x, y) cell centres in original pixels, used instead of the detected ones: a
        user's corrections (a centre clicked where the network found none, a false cell left
        out). Each propagates from the likelihood in its centre region (Eq. 1), as a
        detected one does; where the network's peak is faint (down to 0.03 at cells of
        hela-dic it missed) the map, scaled to a maximum of 1, is no different from one
        propagated from a peak of height 1 put there. The size and border filters apply as
        usual; the cells keep the centres' order.
    memo : Memo, optional
        Kept between calls on the same image (with other ``centres``): what they share is
        not computed again, and the result is the same as without it.

    Returns
    -------
    Segmentation
        Labels, likelihood and contribution at the image's size, centres, timings, settings.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"segment expects a 2-D image, got shape {image.shape}")
    if not image.size:
        raise ValueError(f"segment expects an image with pixels, got shape {image.shape}")
    if image.dtype == bool:  # a mask: 0 and 1 (numpy subtracts no booleans)
        image = image.astype(np.uint8)
    timings: dict[str, float] = {}
    image = finite_filled(image)  # NaN/inf pixels would poison the percentiles
    estimate = None
    if settings.diameter == "auto":
        if progress is not None:
            progress("size", 0.0)
        t0 = time.perf_counter()
        estimate = estimate_diameter(image, model)
        timings["size"] = time.perf_counter() - t0
        # None (no cells at any scale): the model's own scale, as without a diameter.
        settings = replace(settings, diameter=estimate.diameter)
    cfg = resolve_settings(model, settings)
    if estimate is not None:
        cfg["diameter_estimated"] = True
        cfg["diameter_measured"] = estimate.diameter is not None  # (else the model's own)
        cfg["diameter_estimate"] = estimate.describe()

    def report(stage: str, fraction: float) -> None:
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None:
            progress(stage, float(min(1.0, max(0.0, fraction))))

    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    report("normalise", 0.0)
    h, w = image.shape
    wide = None if estimate is not None else settings.diameter  # (not one measured)
    if isinstance(wide, (int, float)) and wide > max(h, w):  # 5000 for 50: an area, or nm?
        raise ImageError(
            None,
            f"at a cell diameter of {wide:g} px no cell fits in its {w} x {h} pixels, nothing "
            "can be found: give your cells' diameter in pixels of the image",
        )
    enlarged = max(cfg["scale"], cfg["cut_scale"])  # a diameter given smaller than the model's
    if enlarged > 1 and h * w * enlarged**2 > MAX_PIXELS:
        raise ImageError(
            None,
            f"at a cell diameter of {cfg['diameter_px']:g} px it is segmented {enlarged:g} "
            f"times as large, {round(w * enlarged)} x {round(h * enlarged)} pixels, over the "
            f"{MAX_PIXELS // 2**20} Mpixel limit (the memory it would take): give a larger "
            "diameter, or crop the image",
        )
    lo, hi = percentiles(image, model.low, model.high)
    empty = np.zeros((h, w), np.float32)
    if not hi > lo:  # a flat image holds no cells; the network must not be asked to invent some
        lap("normalise")
        labels = np.zeros((h, w), np.uint16)
        cfg["n_detected"] = 0
        return Segmentation(labels, empty, empty.copy(), np.zeros((0, 2)), timings, cfg)
    if memo is not None:
        memo.start(image, model, cfg)
    kept = memo.arrays if memo is not None else {}
    if "likelihood" in kept:  # the same image, model and settings as the memo's last call
        net_image, likelihood = kept["net_image"], kept["likelihood"]
        cut_image, boundary = kept["cut_image"], kept["boundary"]
    else:
        normalised = normalise(image, model.low, model.high)
        net_image = rescale(normalised, cfg["scale"], order=1)
        # The graph cut follows the image's own edges at full resolution (with a --diameter
        # other than the model's, where cells have the model's size: cut_scale).
        cut_image = rescale(normalised, cfg["cut_scale"], order=1)
        del normalised
        boundary = None
    sy, sx = net_image.shape[0] / h, net_image.shape[1] / w
    lap("normalise")

    report("detect", 0.02)
    if "likelihood" not in kept:
        likelihood = likelihood_map(model, net_image, cfg["memory_mb"], cancel)
    lap("unet")
    given = None
    if centres is not None:  # (x, y) original pixels -> (row, col) at the network's scale
        xy = np.asarray(centres, np.float64).reshape(-1, 2)
        given = to_network_coordinates(xy[:, ::-1], [sy, sx])
        # Onto the image's extent there (its edge pixels' outer sides, where the centres of
        # the grid's last pixels would move a point on the image's outermost row inwards).
        given = np.clip(given, -0.5, np.array(likelihood.shape) - 0.5)
        cfg["centres_given"] = int(len(xy))
    centres_net, regions = detect_cells(likelihood, cfg, given)
    lap("detect")
    n = len(centres_net)

    report("propagate", 0.15)
    maps_used: set = set()
    maps_known = set(memo.maps) if memo is not None else set()
    maps = propagate_cells(
        model,
        net_image,
        likelihood,
        regions,
        n,
        mode=cfg["propagation"],
        margin=cfg["propagation_margin_px"],
        memory_mb=cfg["memory_mb"],
        progress=lambda f: report("propagate", 0.15 + 0.6 * f),
        cancel=cancel,
        memo=memo.maps if memo is not None else None,
        used=maps_used,
    )
    proj = project(likelihood.shape, maps)
    lap("propagate")

    report("graph cut", 0.75)
    # Back to the original grid: the cut runs on the image at cut_scale (1 unless a
    # --diameter other than the model's was given) and its labels are brought back after.
    ch, cw = cut_image.shape
    value = rescale(proj.value, shape=(ch, cw), order=1)
    owner = rescale(proj.owner, shape=(ch, cw), order=0)
    del proj
    centres_cut = to_original_coordinates(centres_net, [sy * h / ch, sx * w / cw])
    centres_rc = to_original_coordinates(centres_net, [sy, sx])
    cut_diameter = cfg["diameter_px"] * ch / h
    params = GraphCutParams(
        weight=cfg["smoothness"],
        beta=cfg["edge_beta"],
        fg_seed=cfg["seed_fg"],
        bg_seed=cfg["seed_bg"],
        seed_radius_px=cfg["seed_radius"] * cut_diameter,
        pad=max(4, round(0.25 * cut_diameter)),
        data_term=cfg["data_term"],
        data_weight=cfg["data_weight"],
        data_softness=cfg["data_softness"],
    )
    if boundary is None:
        boundary = boundary_image(cut_image, cfg["polarity"], cfg["edge_sigma"])
    if memo is not None:
        memo.arrays = dict(
            net_image=net_image, likelihood=likelihood, cut_image=cut_image, boundary=boundary
        )
    intensity = cut_image if cfg["data_term"] == "intensity" else None
    cuts_used: set = set()
    cuts_known = set(memo.cuts) if memo is not None else set()
    labels = segment_cells(
        owner,
        value,
        centres_cut,
        boundary,
        params,
        cancel=cancel,
        progress=lambda f: report("graph cut", 0.75 + 0.2 * f),
        intensity=intensity,
        memo=memo.cuts if memo is not None else None,
        used=cuts_used,
    )
    if memo is not None:
        memo.reused = {"maps": len(maps_used & maps_known), "cuts": len(cuts_used & cuts_known)}
        memo.keep_used(maps_used, cuts_used)
    del owner, boundary, intensity, cut_image
    labels = rescale(labels, shape=(h, w), order=0)
    value = rescale(value, shape=(h, w), order=1)
    left_out: dict = {}
    every_rc = centres_rc
    labels, centres_rc = filter_cells(
        labels,
        centres_rc,
        cfg["min_size"],
        settings.exclude_border,
        cfg["edge_min_size"],
        cfg["edge_centre_px"],
        report=left_out,
        max_size=cfg["max_size"],
    )
    cfg["edge_left_out"], cfg["large_left_out"] = left_out["edge"], left_out["large"]
    cfg["small_left_out"] = left_out["small"]
    lap("graphcut")

    likelihood_full = rescale(likelihood, shape=(h, w), order=1).astype(np.float32, copy=False)
    centres_xy = centres_rc[:, ::-1].copy() if len(centres_rc) else np.zeros((0, 2))
    if given is not None:  # the points given, as given (one on the image's last row or
        # column, past the last pixel's centre, was moved onto it: not found again)
        from .io import points_kept

        centres_xy = xy[points_kept(every_rc, centres_rc)]
    lap("finish")
    report("done", 1.0)
    cfg["n_detected"] = int(n)
    return Segmentation(
        labels, likelihood_full, value.astype(np.float32, copy=False), centres_xy, timings, cfg
    )


def keep_unreached(
    labels: np.ndarray,
    centres: np.ndarray,
    removed,
    given: np.ndarray,
    before: Segmentation,
    after: Segmentation,
) -> Segmentation:
    """A correction's cells: the method's outlines with the edit where the cells are the
    method's own, the labels as they are where they were edited since.

    ``labels`` are an image's cells 1..N as they stand, at ``centres`` (N rows, x, y): the
    outlines the method gave, or edited since (drawn in Fiji and read back; the place of a
    cell that a size or edge rule left out, into which a run from these centres alone grows
    its neighbour). ``before`` is :func:`segment` from ``centres``, ``after`` from ``given``:
    ``centres`` less the cells numbered ``removed``, in order, then the cells clicked. Each
    pixel where ``labels`` agree with ``before`` takes ``after``'s cell; a pixel where they
    do not keeps its own, but for the pixels of a cell removed and of a cell added, which
    take ``after``'s. Where ``labels`` are ``before``'s the outcome is ``after``, to the
    pixel: a fresh run from ``given``.

    Returns ``after`` with the cells so, numbered 1..n in the order of ``given``, at their
    points of ``given`` (as :func:`segment` gives the cells of points given).
    """
    from .io import points_kept

    labels = np.asarray(labels)
    centres = np.reshape(np.asarray(centres, np.float64), (-1, 2))
    given = np.reshape(np.asarray(given, np.float64), (-1, 2))
    removed = sorted({int(k) for k in removed if 0 < int(k) <= len(centres)})
    stay = len(centres) - len(removed)
    # Every cell by one number: its row of ``given`` + 1 (cells kept, then those added); a
    # cell removed by one after those.
    of_old = np.zeros(max(len(centres), int(labels.max(initial=0))) + 1, np.int64)
    of_old[np.delete(np.arange(1, len(centres) + 1), [k - 1 for k in removed])] = np.arange(
        1, stay + 1
    )
    of_old[removed] = np.arange(len(given) + 1, len(given) + 1 + len(removed))
    of_before = np.concatenate(
        [[0], of_old[1 : len(centres) + 1][points_kept(centres, before.centres)]]
    )
    of_after = np.concatenate([[0], np.flatnonzero(points_kept(given, after.centres)) + 1])
    now, was, will = of_old[labels], of_before[before.labels], of_after[after.labels]
    # Where the labels are the method's own (as ``before`` gives them), the method's outlines
    # with the edit; where they differ (edited since, a cell left out), they stay; a removed
    # cell's pixels and a cell added are the method's with the edit.
    out = np.where(now == was, will, now)
    gone = now > len(given)
    out[gone] = will[gone]
    added = will > stay
    out[added] = will[added]
    # A cell the method gives before the edit and not after it (its outline came out empty
    # beside a cell added, or past a size limit) goes whole, as in a fresh run: not its
    # pixels that differed from the method's alone, a remnant under the smallest cell.
    gave_way = np.setdiff1d(of_before[1:], of_after[1:])
    out[np.isin(out, gave_way[gave_way <= stay])] = 0
    _pieces_as_they_were(out, now, will)
    present = np.unique(out)
    present = present[present > 0]
    rank = np.zeros(int(present.max(initial=0)) + 1, np.int64)
    rank[present] = np.arange(1, len(present) + 1)
    cells = rank[out].astype(label_dtype(len(present)))
    return replace(after, labels=cells, centres=given[present - 1])
