"""Turn images and segmentation results into RGBA arrays for display.

Pure numpy, no Qt: the viewer wraps these arrays in QImages, tests check them directly.
"""

from __future__ import annotations

import numpy as np
from cellprop.engine.normalise import working_float

# Golden-ratio hue steps give neighbouring label ids clearly different colours.
_GOLDEN = 0.618033988749895


def auto_contrast(pixels: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple:
    """Display range (low, high) that clips the darkest and brightest fraction of pixels.

    Parameters
    ----------
    pixels : 2-D array of any numeric dtype.
    low_pct, high_pct : percentiles that become black and white.

    Returns
    -------
    (low, high) as floats with high > low.
    """
    finite = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels
    if finite.size == 0:
        return 0.0, 1.0
    # A strided sample keeps this fast on large images; the percentiles barely move.
    sample = finite.ravel()[:: max(1, finite.size // 500_000)]
    low, high = np.percentile(sample, [low_pct, high_pct])
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    if high <= low:  # one value all over (blank, saturated): shown as that value looks
        return _flat_range(pixels.dtype, float(low))
    return float(low), float(high)


def _flat_range(dtype, value: float) -> tuple:
    """The display range of an image of one ``value``: its type's range for integers (a
    saturated 8-bit frame white, 128 mid-grey), else 0 to 1 or to the value (drawn black
    at its own value and value + 1, whatever it was)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    if 0.0 <= value <= 1.0:
        return 0.0, 1.0
    return min(0.0, value), max(0.0, value)


def value_range(pixels: np.ndarray) -> tuple:
    """(minimum, maximum) a contrast control should offer for this image: its values, but
    for a few far outliers (a hot pixel, a ratio image's division by almost nothing), which
    would leave the image's own values a sliver of the slider: no further than the span of
    the 0.001st to 99.999th percentiles beyond them (a few pixels in a million; small bright
    objects, beads or spots, are many more)."""
    if pixels.dtype == np.uint8:
        return 0.0, 255.0
    seen = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels.ravel()
    if not seen.size:  # a float image's nan and inf pixels set no level
        return 0.0, 1.0
    lo, hi = float(seen.min()), float(seen.max())
    if seen.size > 100:
        sample = seen[:: max(1, seen.size // 500_000)]
        low, high = (float(v) for v in np.percentile(sample, [0.001, 99.999]))
        span = max(high - low, 1.0 if pixels.dtype.kind in "iu" else 0.0)
        lo, hi = max(lo, low - span), min(hi, high + span)
    if pixels.dtype == np.uint16:
        return 0.0, float(max(hi, 1.0))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_display(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    """Grey uint8 image with ``low`` shown black and ``high`` white (8-, 16-bit or float input;
    a colour (H, W, 3) image gives its colours, each between the same levels)."""
    scale = 255.0 / max(high - low, 1e-12)
    # (a 32-bit integer image far from 0 in float64: float32 would round its contrast away)
    work = working_float(pixels.dtype)
    out = (pixels.astype(work) - work(low)) * work(scale)
    np.nan_to_num(out, copy=False, nan=0.0)  # a float image's nan pixels black, said nothing
    np.clip(out, 0, 255, out=out)
    return np.ascontiguousarray(out.astype(np.uint8))


# Micrometres in one of each unit a file's calibration may be in.
_UM_PER_UNIT = {"nm": 1e-3, "um": 1.0, "mm": 1e3, "cm": 1e4}


def scale_bar(width_px: int, pixel_size: float | None, unit: str | None, fraction: float = 0.2):
    """A scale bar for an image ``width_px`` pixels wide of ``pixel_size`` ``unit`` per pixel:
    ``(length in pixels, label)``, the length about ``fraction`` of the width and rounded down
    to 1, 2 or 5 times a power of ten, labelled in nm, µm or mm, whichever reads best
    (``"50 µm"``). None without a calibration in a unit of length."""
    per_unit = _UM_PER_UNIT.get(unit or "")
    if not (pixel_size and 0 < pixel_size < np.inf) or per_unit is None or width_px <= 0:
        return None  # (a calibration of nan or inf too)
    um_per_px = pixel_size * per_unit
    target = fraction * width_px * um_per_px
    power = 10.0 ** np.floor(np.log10(target))
    length = max(m * power for m in (1, 2, 5) if m * power <= target * (1 + 1e-9))
    if length < 1:
        label = f"{round(length * 1e3, 9):g} nm"
    elif length >= 1000:
        label = f"{round(length / 1e3, 9):g} mm"
    else:
        label = f"{round(length, 9):g} µm"
    return float(length / um_per_px), label


#: Colours a second channel can be drawn in over the image (Fiji's LUT names).
CHANNEL_COLOURS = {
    "Green": (0, 255, 0),
    "Magenta": (255, 0, 255),
    "Cyan": (0, 255, 255),
    "Red": (255, 0, 0),
    "Yellow": (255, 255, 0),
}


def channel_rgba(pixels: np.ndarray, colour=(0, 255, 0), levels: tuple | None = None) -> np.ndarray:
    """Another channel (a fluorescent reporter) as a colour layer over the image: the
    colour everywhere, as opaque as the channel is bright between ``levels`` (default: its
    automatic contrast), so that the image shows through where the channel is dark."""
    low, high = auto_contrast(pixels) if levels is None else levels
    rgba = np.zeros((*pixels.shape[:2], 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = to_display(pixels, low, high)
    return rgba


def label_colours(n_labels: int, seed: int = 0) -> np.ndarray:
    """An (n_labels + 1, 3) uint8 colour table; row 0 (background) is black.

    Colours are bright, saturated and differ between consecutive ids.
    """
    ids = np.arange(n_labels + 1, dtype=np.float64)
    hue = (ids * _GOLDEN + seed * 0.1) % 1.0
    sat = 0.65 + 0.35 * ((ids * 7) % 3) / 2.0
    val = np.full_like(hue, 0.95)
    rgb = _hsv_to_rgb(hue, sat, val)
    table = (rgb * 255).astype(np.uint8)
    table[0] = 0
    return table


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros((*h.shape, 3))
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[sel, 0], out[sel, 1], out[sel, 2] = r[sel], g[sel], b[sel]
    return out


def track_numbers(table, n_cells: int) -> np.ndarray:
    """Each cell's track, from a cell table's ``TrackObjects_Label`` (cells followed over
    time), where it fits the ``n_cells`` cells; empty otherwise: the engine's reading
    (``table_tracks``), the one its overlays are numbered by."""
    from cellprop.engine.track import table_tracks  # loaded: a table was measured

    return table_tracks(table, n_cells)


def track_paths(tables: list, max_gap: int) -> dict:
    """Where the cells followed over time have been: ``tables`` are the cell tables of one
    time-lapse's consecutive time points up to the one shown, in time order (None: a time
    point not segmented). Returns {track: (k, 2) array of its centres (x, y), time point by
    time point} for the tracks on the last one; a track missed at up to ``max_gap`` time
    points in a row (a gap closed, as the engine's ``TrackSettings.max_gap``) goes on across
    them."""
    seen: dict = {}
    missed: dict = {}  # track -> time points in a row it was not seen at
    for table in tables:
        columns = getattr(table, "columns", None) or {}
        tracks = track_numbers(table, len(table)) if table is not None else None
        if (
            table is not None
            and len(table)
            and (not len(tracks) or "AreaShape_Center_X" not in columns)
        ):
            seen, missed = {}, {}  # a page not followed: the paths start again after it
            continue  # (one without cells, a blank frame: a time point every track missed)
        now = {}
        if tracks is not None:
            xs = np.asarray(columns["AreaShape_Center_X"], float)
            ys = np.asarray(columns["AreaShape_Center_Y"], float)
            for k, track in enumerate(tracks.tolist()):
                now[track] = [*seen.get(track, []), (xs[k], ys[k])]
        gone = {t: p for t, p in seen.items() if t not in now and missed.get(t, 0) < max_gap}
        missed = {t: missed.get(t, 0) + 1 for t in gone}
        seen = {**gone, **now}
    return {track: np.asarray(points) for track, points in seen.items() if track not in missed}


def fills_rgba(labels: np.ndarray, tracks=None) -> np.ndarray:
    """Each cell filled with its own colour, background transparent. (H, W, 4) uint8.

    ``tracks``: each cell's track (index ``k - 1`` for label ``k``; the cell table's
    ``TrackObjects_Label``): the colour is then the track's, so that a cell followed over
    time keeps its colour from time point to time point."""
    n = int(labels.max()) if labels.size else 0
    if tracks is None or len(tracks) != n:
        return _filled(labels, label_colours(n))
    tracks = np.asarray(tracks, np.int64)
    colours = label_colours(int(tracks.max(initial=0)))
    return _filled(labels, np.concatenate([colours[:1], colours[tracks]]))


def _filled(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each cell in its colour of ``table`` (one RGB row per label), background clear."""
    rgba = np.zeros((*labels.shape, 4), dtype=np.uint8)
    rgba[..., :3] = table[labels]
    rgba[..., 3] = np.where(labels > 0, 255, 0).astype(np.uint8)
    return rgba


#: The viridis colour map at ten evenly spaced points (its published ten-colour palette),
#: interpolated between them: perceptually even, and readable by colour-blind eyes.
_VIRIDIS = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (109, 205, 89),
        (180, 222, 44),
        (253, 231, 37),
    ],
    float,
)

#: Cells without a value (not a number) where cells are coloured by a measurement.
NO_VALUE_COLOUR = (128, 128, 128)


def value_colours(values, low: float, high: float) -> np.ndarray:
    """Viridis colours (N, 3) uint8 of ``values`` between ``low`` (dark blue) and ``high``
    (yellow), clipped; grey where a value is not a number."""
    values = np.asarray(values, dtype=float)
    t = np.clip((values - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(values)
    position = np.nan_to_num(t) * (len(_VIRIDIS) - 1)
    below = np.minimum(np.floor(position).astype(int), len(_VIRIDIS) - 2)
    frac = (position - below)[..., None]
    rgb = _VIRIDIS[below] * (1 - frac) + _VIRIDIS[below + 1] * frac
    rgb[~np.isfinite(values)] = NO_VALUE_COLOUR
    return np.round(rgb).astype(np.uint8)


def fills_by_value_rgba(labels: np.ndarray, values, low: float, high: float) -> np.ndarray:
    """Each cell filled with the colour of its value (``values[label]``; a measurement map):
    where the big, the bright or the round cells lie in the image."""
    values = np.asarray(values, dtype=float)
    n = int(labels.max()) if labels.size else 0
    per_label = np.full(n + 1, np.nan)
    k = min(n + 1, len(values))
    per_label[:k] = values[:k]
    return _filled(labels, value_colours(per_label, low, high))


def outline_mask(labels: np.ndarray) -> np.ndarray:
    """True on the pixels of a cell that touch a different label (its boundary)."""
    edge = np.zeros(labels.shape, dtype=bool)
    if labels.ndim != 2 or labels.size == 0:
        return edge
    diff_y = labels[1:, :] != labels[:-1, :]
    diff_x = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    return edge & (labels > 0)


def outlines_rgba(labels: np.ndarray, colour=(255, 255, 0)) -> np.ndarray:
    """Cell boundaries in one colour, everything else transparent."""
    edge = outline_mask(labels)
    rgba = np.zeros((*labels.shape, 4), dtype=np.uint8)
    rgba[edge, :3] = colour
    rgba[edge, 3] = 255
    return rgba


def cell_outline_rgba(labels: np.ndarray, chosen, colour=(255, 255, 255)) -> np.ndarray:
    """The boundary of each chosen cell (a cell number, or several: the selection
    highlight), thickened to two pixels; chosen cells side by side keep the line between
    them."""
    inside = np.isin(labels, np.atleast_1d(np.asarray(chosen))) & (labels > 0)
    rgba = np.zeros((*labels.shape, 4), dtype=np.uint8)
    if not inside.any():
        return rgba
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    box = np.s_[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
    edge = outline_mask(labels[box]) & inside[box]
    grown = edge.copy()
    grown[1:, :] |= edge[:-1, :]
    grown[:, 1:] |= edge[:, :-1]
    rgba[box][grown] = (*colour, 255)
    return rgba


def heatmap_rgba(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """A 'hot' colour map (black-red-yellow-white) whose transparency follows the value.

    Zero stays fully transparent so the image shows through where nothing was found.
    """
    v = values.astype(np.float32)
    top = float(np.nanmax(v)) if vmax is None and v.size else (vmax or 1.0)
    top = top if top > 0 else 1.0
    x = np.clip(v / np.float32(top), 0, 1)
    rgba = np.zeros((*v.shape, 4), dtype=np.uint8)
    rgba[..., 0] = (np.clip(x * 3.0, 0, 1) * 255).astype(np.uint8)
    rgba[..., 1] = (np.clip(x * 3.0 - 1.0, 0, 1) * 255).astype(np.uint8)
    rgba[..., 2] = (np.clip(x * 3.0 - 2.0, 0, 1) * 255).astype(np.uint8)
    rgba[..., 3] = (np.sqrt(x) * 255).astype(np.uint8)
    return rgba


def rings_rgba(
    labels: np.ndarray, width: int, colour=(0, 200, 255), transform: tuple | None = None
) -> np.ndarray:
    """Each cell's ring of ``width`` pixels (the engine's ``rings``: what its ``Ring_``
    columns measure) in one colour, everything else transparent. ``transform``: the labels'
    ``feature_transform``, where the caller has it from measuring them."""
    from cellprop.engine.features import rings  # loaded: cells were measured with a ring

    rgba = np.zeros((*labels.shape, 4), dtype=np.uint8)
    rgba[rings(labels, width, transform) > 0] = (*colour, 255)
    return rgba


def ring_width(result) -> int:
    """The ring a result's cells were measured with (its settings' ``ring_width``; 0: none)."""
    made = getattr(result, "settings", None)
    return int((made.get("ring_width") if isinstance(made, dict) else 0) or 0)


def result_layers(
    labels: np.ndarray,
    likelihood=None,
    contribution=None,
    tracks=None,
    ring: int = 0,
    transform: tuple | None = None,
) -> dict:
    """All overlay images of one result, {name: RGBA}; for drawing off the GUI thread.
    ``tracks``: as :func:`fills_rgba` takes them (cells coloured by their track); ``ring``:
    the width of the rings measured (:func:`rings_rgba`, with ``transform``; 0, none)."""
    layers = {"fills": fills_rgba(labels, tracks), "outlines": outlines_rgba(labels)}
    if ring:
        layers["rings"] = rings_rgba(labels, ring, transform=transform)
    if likelihood is not None:
        layers["likelihood"] = heatmap_rgba(likelihood, vmax=1.0)
    if contribution is not None:
        layers["contribution"] = heatmap_rgba(contribution)
    return layers
