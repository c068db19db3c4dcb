"""How large the cells of an image are, for a model that has not seen it: ``--diameter auto``.

A model's U-Net was trained on cells of one size (give or take its zoom augmentation). Shown
cells of that size it answers with clean peaks near 1 at their centres; shown cells much larger
it splits them into several weaker peaks, much smaller it merges or misses them. So the image
is run at a range of trial scales and the scale where the median likelihood of the detected
centres is highest says how much larger or smaller the image's cells are than the model's own
(the same figure :func:`cellprop.engine.choose.suggest_model` compares across models).

The top of that curve is flat over a zoom range or so; the estimate is the middle (in log
scale) of the trial scales within :data:`PLATEAU` of the best. Where a model's curve peaks on
its own images is not exactly its working scale (the working scale was chosen for the whole
segmentation, not for the peaks): model.json ``diameter_estimate.reference`` records that
offset (:func:`measure_reference`: cellprop-train runs it on the held-out images of the model
it exports, `make models` on the tune images), and the estimate corrects for it.
Measured on simulated magnifications x0.5-x2 of every dataset's images, docs/validation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .choose import centre_confidence
from .normalise import normalise, percentiles, working_float

__all__ = [
    "PLATEAU",
    "STEPS",
    "DiameterEstimate",
    "estimate_diameter",
    "measure_reference",
    "reference_record",
]

#: log2 of the magnifications tried, relative to the model's own images: x0.42 ... x2.38.
STEPS = np.arange(-5, 6) / 4
#: Trial scales whose centre confidence is within this of the best form the plateau.
PLATEAU = 0.02
_MAX_SIDE = 512  # network-scale window looked at per trial scale; bounds the time taken


@dataclass(frozen=True)
class DiameterEstimate:
    """What :func:`estimate_diameter` found.

    Attributes
    ----------
    diameter : float or None
        Typical cell diameter in the image's pixels; None when no trial scale found a cell.
    magnification : float or None
        The image's cells relative to the model's own (2.0: twice as wide).
    model_diameter : float
        The model's own typical cell diameter, original pixels of its training images.
    confidence : dict
        Magnification tried -> median likelihood of the centres found there (0: none).
    beyond : str
        ``"larger"`` or ``"smaller"`` where the model was most confident at the largest or
        smallest magnification tried: the cells may be larger (smaller) still, which the
        trials do not tell; "" otherwise.
    """

    diameter: float | None
    magnification: float | None
    model_diameter: float
    confidence: dict = field(default_factory=dict)
    beyond: str = ""

    def describe(self) -> str:
        """One line for a log."""
        if self.diameter is None:
            return (
                f"cell diameter could not be estimated (no cells found at any scale); the "
                f"model's {self.model_diameter:.0f} px is used"
            )
        if self.beyond:
            most = "more" if self.beyond == "larger" else "less"
            end = "largest" if self.beyond == "larger" else "smallest"
            return (
                f"cell diameter estimated at {self.diameter:.0f} px or {most} (x"
                f"{self.magnification:.2f} the model's {self.model_diameter:.0f} px; the model "
                f"was most confident at the {end} size tried, and cells {self.beyond} still "
                "are not told apart: give --diameter if they are)"
            )
        return (
            f"cell diameter estimated at {self.diameter:.0f} px (x{self.magnification:.2f} the "
            f"model's {self.model_diameter:.0f} px)"
        )


def estimate_diameter(pixels: np.ndarray, model, steps: np.ndarray = STEPS) -> DiameterEstimate:
    """Estimate the typical cell diameter of a 2-D image in its own pixels, for ``model``.

    Parameters
    ----------
    pixels : numpy.ndarray
        The image as read (any real dtype), 2-D.
    model : cellprop.engine.model.Model
        The model that will segment it; its ``cell_diameter_px`` must be known.
    steps : numpy.ndarray
        log2 of the magnifications tried (default :data:`STEPS`).

    Returns
    -------
    DiameterEstimate
        ``diameter`` None when no trial scale found any cell (e.g. an empty or flat image).
    """
    own = (model.cell_diameter_px or 16.0) / model.scale
    pixels = np.asarray(pixels)
    pixels = pixels.astype(working_float(pixels.dtype), copy=False)  # (an offset of 2**31 too)
    lo, hi = percentiles(pixels, model.low, model.high)
    if not hi > lo:
        return DiameterEstimate(None, None, own)
    normalised = normalise(pixels, model.low, model.high)
    magnifications = 2.0 ** np.asarray(steps, dtype=np.float64)
    # Cells `m` times the model's are brought to its size at scale / m; `reference` moves the
    # trial to where the model's own images peak.
    scales = model.scale * model.size_reference / magnifications
    # every trial's window around one point, where cells are (the smallest window, the
    # largest scale's, must hold some: a scratch assay's empty middle gave it none, and
    # the trials of small cells found nothing there, 38 px estimated for 32)
    at = busiest_point(normalised, int(np.ceil(_MAX_SIDE / scales.max())))
    scores = np.array([centre_confidence(model, normalised, s, _MAX_SIDE, at=at) for s in scales])
    confidence = {
        round(float(m), 3): round(float(c), 4) for m, c in zip(magnifications, scores, strict=True)
    }
    if not scores.max() > 0:
        return DiameterEstimate(None, None, own, confidence)
    top = np.asarray(steps)[scores >= scores.max() - PLATEAU]
    magnification = float(2.0 ** top.mean())
    best = int(np.argmax(scores))
    beyond = {len(scores) - 1: "larger", 0: "smaller"}.get(best, "") if len(scores) > 1 else ""
    return DiameterEstimate(own * magnification, magnification, own, confidence, beyond)


def busiest_point(normalised: np.ndarray, side: int) -> tuple[int, int] | None:
    """The centre (row, column) of the ``side`` x ``side`` window of a normalised image
    richest in edges (cells; a background is smooth), where the middle window has less than
    half as many: None (the image's middle, as ever) where it has as many, or the image is
    no larger than the window."""
    import cv2

    rows, cols = normalised.shape
    if side >= rows and side >= cols:
        return None
    step = max(1, side // 32)  # (looked at 32 x 32 blocks a window, or so)
    small = cv2.resize(
        np.asarray(normalised, np.float32),
        (max(1, cols // step), max(1, rows // step)),
        interpolation=cv2.INTER_AREA,
    )
    gy, gx = np.gradient(small)
    edges = np.hypot(gx, gy)
    box = max(1, side // step)
    mass = cv2.boxFilter(edges, -1, (box, box), normalize=True, borderType=cv2.BORDER_REFLECT)
    h, w = mass.shape
    half = box // 2  # window centres that keep it inside the image
    inner = mass[
        min(half, h - 1) : max(h - half, min(half, h - 1) + 1),
        min(half, w - 1) : max(w - half, min(half, w - 1) + 1),
    ]
    middle = mass[h // 2, w // 2]
    if not inner.size or middle >= 0.5 * inner.max():
        return None
    r, c = np.unravel_index(int(np.argmax(inner)), inner.shape)
    r0, c0 = min(half, h - 1), min(half, w - 1)
    return int((r + r0) * step + step // 2), int((c + c0) * step + step // 2)


def measure_reference(model, images) -> tuple[float, list[float]]:
    """Where ``model``'s centre confidence peaks on images of its own kind and cell size.

    Run on the images a model was tuned or validated on (training does this after export,
    `make models` on the tune images); the result is model.json ``diameter_estimate.reference``
    (the inverse of the geometric mean magnification found with no reference).

    Returns
    -------
    (float, list of float)
        The reference, and the magnification found on each image where cells were found.

    Raises
    ------
    ValueError
        When no image shows a cell at any trial scale.
    """
    saved = model.size_reference
    model.size_reference = 1.0
    try:
        estimated = [estimate_diameter(pixels, model).magnification for pixels in images]
    finally:
        model.size_reference = saved
    found = [float(m) for m in estimated if m]
    if not found:
        raise ValueError("no cells found on these images at any trial scale")
    return float(2.0 ** -np.mean(np.log2(found))), found


def reference_record(model, names, images) -> dict:
    """model.json ``diameter_estimate``: :func:`measure_reference` on named images, rounded.

    ``{"reference": ..., "images": names, "magnifications": [one per image with cells]}``;
    raises ValueError as :func:`measure_reference` does.
    """
    reference, found = measure_reference(model, images)
    return {
        "reference": round(reference, 4),
        "images": list(names),
        "magnifications": [round(m, 4) for m in found],
    }
