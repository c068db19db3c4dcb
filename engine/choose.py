"""Which installed model suits an image: ``--model auto``.

Two observations, measured on every dataset in ../shared/data (docs/validation.md lists the
figures), make the choice:

1. Light. Fluorescence images are emitted light on a dark background: after the models'
   percentile normalisation their median pixel is near 0 (GOWT1: 0.00). Transmitted-light
   images (phase contrast, DIC, bright field) have a lit background in mid-grey (C2C12 0.30,
   HeLa DIC 0.38-0.41, the WSISPDR phase crop 0.17). So a median below
   :data:`DARK_BACKGROUND` lets only fluorescence models compete, a median above it only the
   others (all of them, where the installed models are of one kind only).
2. Confidence. A U-Net trained on one modality answers its own kind of image with peaks near 1
   and others with lower, ragged ones. Among the competing models the one whose detected
   centres have the highest median likelihood wins (C2C12: phase 0.95, dic 0.70-0.79;
   HeLa: dic 0.96-0.98, phase 0.59-0.69). That answer depends on the cells' size as much as
   on the light (:mod:`.size` measures the size so), so each model is asked at
   :data:`TRIALS`, its cells' size halved to doubled, and its best answer counts: asked only
   at its own scale, the phase model won HeLa DIC frames taken at half or three times the
   magnification (0.85 against 0.82), the dic model C2C12 at 0.4.

It is a suggestion, stated with its figures: the front ends say which model was chosen and why,
and a batch uses one model for all its images so that their measurements stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .detect import find_centres
from .errors import ModelError
from .normalise import normalise, percentiles, rescale, working_float
from .propagate import likelihood_map

if TYPE_CHECKING:
    from .model import Model

__all__ = [
    "DARK_BACKGROUND",
    "TRIALS",
    "Suggestion",
    "background_level",
    "centre_confidence",
    "light_fits",
    "suggest_model",
]

DARK_BACKGROUND = 0.1  # normalised median below which an image is taken as fluorescence
#: Magnifications each model is asked at, relative to its own cells' size: x0.5 ... x2.
TRIALS = tuple(float(2 ** (k / 2)) for k in range(-2, 3))
_MAX_SIDE = 768  # network-scale pixels looked at (a centred window); bounds the time taken


@dataclass(frozen=True)
class Suggestion:
    """The model :func:`suggest_model` chose, and the figures it chose by.

    Attributes
    ----------
    model : Model
        The chosen model (one of those given).
    fluorescence : bool
        Whether the image was taken as fluorescence (dark background).
    median : float
        The image's median pixel after percentile normalisation (1, 99.8).
    confidence : dict
        Model name -> median likelihood of its detected centres (0 when it found none), the
        best over :data:`TRIALS`, for the models that competed.
    own_scale : dict
        The same at each model's own scale alone (where it finds cells at all).
    """

    model: Model
    fluorescence: bool
    median: float
    confidence: dict = field(default_factory=dict)
    own_scale: dict = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """Whether any model found a cell in the image at its own scale: where none did (an
        empty well, a smooth ramp), the choice rests on nothing. (Enlarged twice, camera
        noise gave the dic model two dozen "centres" at 0.77.)"""
        return any(v > 0 for v in (self.own_scale or self.confidence).values())

    def describe(self) -> str:
        """One line for a log: what was chosen and why."""
        if not self.found:
            names = ", ".join(self.confidence)
            return f"no model finds a cell in this image ({names} tried): nothing to choose by"
        kind = "dark background: fluorescence" if self.fluorescence else "lit background"
        if self.median != self.median:  # NaN: one value all over
            kind = "an image of one value: its light tells nothing"
        else:
            kind += f", median {self.median:.2f}"
        scores = ", ".join(f"{k} {v:.2f}" for k, v in self.confidence.items())
        return f"model {self.model.name} chosen for this image ({kind}; centre confidence {scores})"


def centre_confidence(
    model,
    normalised: np.ndarray,
    scale: float,
    max_side: int = _MAX_SIDE,
    min_centres: int = 1,
    at: tuple[int, int] | None = None,
):
    """Median likelihood at the centres ``model`` finds in a normalised image run at ``scale``.

    Only a window of at most ``max_side`` network-scale pixels is looked at (it bounds the
    time taken), centred on the image's centre or on ``at`` (row, column; the window kept
    inside the image); 0 when fewer than ``min_centres`` centres are found. Also what
    :mod:`.size` compares across scales.
    """
    # Crop in the image's pixels first: a large image is never rescaled whole.
    side = int(np.ceil(max_side / scale))
    rows, cols = normalised.shape
    if at is None:
        r0, c0 = max(0, (rows - side) // 2), max(0, (cols - side) // 2)
    else:
        r0 = int(np.clip(at[0] - side // 2, 0, max(0, rows - side)))
        c0 = int(np.clip(at[1] - side // 2, 0, max(0, cols - side)))
    net = rescale(normalised[r0 : r0 + side, c0 : c0 + side], scale, order=1)
    likelihood = likelihood_map(model, net)
    threshold = float(model.defaults.get("threshold", 0.5))
    centres = find_centres(likelihood, threshold, int(model.defaults.get("peak_min_distance", 2)))
    if len(centres) < max(1, min_centres):
        return 0.0
    peaks = np.round(centres).astype(int)
    return float(np.median(likelihood[peaks[:, 0], peaks[:, 1]]))


def background_level(pixels: np.ndarray) -> float:
    """The image's median after percentile normalisation (1, 99.8), in [0, 1].

    Below :data:`DARK_BACKGROUND` the image is taken as fluorescence (a dark background).
    NaN for an image of one value (blank, saturated): its light tells nothing. Scaled in the
    float its type needs (``working_float``: a 32-bit image offset by 2**31 kept its contrast
    in the network's input, not here, and was taken for fluorescence).
    """
    pixels = np.asarray(pixels)
    pixels = pixels.astype(working_float(pixels.dtype), copy=False)
    lo, hi = percentiles(pixels, 1.0, 99.8)
    if not hi > lo:
        return float("nan")
    return float(np.clip((np.median(pixels) - lo) / (hi - lo), 0.0, 1.0))


def light_fits(modality: str, dark: bool) -> bool:
    """Whether a model of ``modality`` is made for images with (or without) a dark background."""
    return (modality == "fluorescence") == dark


def suggest_model(pixels: np.ndarray, models: Sequence) -> Suggestion:
    """Choose among loaded models for one 2-D image (see the module docstring for how).

    Parameters
    ----------
    pixels : numpy.ndarray
        The image as read (any dtype), 2-D.
    models : sequence of Model
        The candidates, loaded (:func:`cellprop.engine.load_model`).

    Raises
    ------
    ModelError
        When no model is given.
    """
    if not models:
        raise ModelError("no model to choose from")
    pixels = np.asarray(pixels)  # (each step scales it in the float its type needs)
    median = background_level(pixels)
    fluorescence = bool(median < DARK_BACKGROUND)  # (False where the light tells nothing)
    pool = [m for m in models if light_fits(m.modality, fluorescence)] if median == median else []
    pool = pool or list(models)
    own, confidence = {}, {}
    for m in pool:
        own[m.name], confidence[m.name] = _confidences(m, pixels, alone=len(pool) == 1)
    best = max(pool, key=lambda m: confidence[m.name])
    return Suggestion(best, fluorescence, median, confidence, own)


#: Centres a trial other than a model's own scale must find to count: one or two peaks (one
#: HeLa cell taken by the phase model, 0.85) say little.
_TRIAL_CENTRES = 3


def _confidences(model, pixels: np.ndarray, alone: bool = False) -> tuple[float, float]:
    """``model``'s centre confidence on ``pixels`` at its own scale, and the best of
    :data:`TRIALS` (``alone``: none to compare with, its own scale's twice)."""
    normalised = normalise(pixels, model.low, model.high)
    own = centre_confidence(model, normalised, model.scale)
    if alone:
        return own, own
    trials = [
        centre_confidence(model, normalised, model.scale / t, min_centres=_TRIAL_CENTRES)
        for t in TRIALS
        if t != 1.0
    ]
    return own, max([own, *trials])
