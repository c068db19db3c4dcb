"""Detection quality from a likelihood map: peaks, one-to-one matching, F1 (METHOD.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cellprop.engine.detect import find_centres
from cellprop.engine.evaluate import DetectionCounts, match_points

__all__ = ["DetectionScore", "find_peaks", "detection_score"]


def find_peaks(likelihood: np.ndarray, threshold: float = 0.5, min_distance: int = 2) -> np.ndarray:
    """Cell centres as the engine finds them (:func:`cellprop.engine.detect.find_centres`).

    Training scores its epochs with the very peak finder that segmentation uses, so the F1
    recorded in model.json is the F1 users get.

    Returns
    -------
    ndarray [N, 2]
        (x, y) of each peak, pixels of ``likelihood``.
    """
    return find_centres(likelihood, threshold, min_distance)[:, ::-1]


@dataclass(frozen=True)
class DetectionScore(DetectionCounts):
    """Counts summed over images, and the scores derived from them (precision, recall and F1
    by the rule `cellprop evaluate` scores by)."""

    tp: int
    fp: int
    fn: int

    def __add__(self, other: DetectionScore) -> DetectionScore:
        return DetectionScore(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def detection_score(
    predicted: np.ndarray, truth: np.ndarray, max_distance: float = 10.0
) -> DetectionScore:
    """True/false positives and false negatives of predicted centres against annotated ones.

    Examples
    --------
    >>> s = detection_score(np.array([[0, 0], [50, 50]]), np.array([[3, 4], [90, 90]]))
    >>> s.tp, s.fp, s.fn
    (1, 1, 1)
    """
    # One matching for training and `cellprop evaluate`: the engine's (authors' weighting).
    tp, fp, fn = match_points(truth, predicted, max_distance)
    return DetectionScore(tp, fp, fn)
