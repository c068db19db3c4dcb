"""Detection quality from a likelihood map: peaks, one-to-one matching, F1 (METHOD.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

__all__ = ["DetectionScore", "find_peaks", "match_points", "detection_score"]


def find_peaks(likelihood: np.ndarray, threshold: float = 0.5, min_distance: int = 2) -> np.ndarray:
    """Cell centres as the local maxima of a likelihood map above a threshold.

    A pixel is a maximum when it equals the maximum of its ``(2 min_distance + 1)`` square
    neighbourhood; touching maxima (plateaus) are merged into their centroid, as in the
    reference code.

    Returns
    -------
    ndarray [N, 2]
        (x, y) of each peak, pixels of ``likelihood``.
    """
    size = 2 * int(min_distance) + 1
    local_max = ndimage.maximum_filter(likelihood, size=size, mode="nearest") == likelihood
    peaks = local_max & (likelihood > threshold)
    labels, n = ndimage.label(peaks, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros((0, 2))
    centres = ndimage.center_of_mass(peaks, labels, np.arange(1, n + 1))
    return np.asarray([(c, r) for r, c in centres], dtype=np.float64)


def match_points(
    predicted: np.ndarray, truth: np.ndarray, max_distance: float = 10.0
) -> list[tuple[int, int]]:
    """One-to-one matching of two point sets within ``max_distance`` (minimum total distance)."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    if len(predicted) == 0 or len(truth) == 0:
        return []
    distance = np.linalg.norm(predicted[:, None, :] - truth[None, :, :], axis=2)
    # Pairs farther than the limit get a prohibitive cost, then are dropped.
    cost = np.where(distance <= max_distance, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [
        (int(r), int(c)) for r, c in zip(rows, cols, strict=True) if distance[r, c] <= max_distance
    ]


@dataclass(frozen=True)
class DetectionScore:
    """Counts summed over images, and the scores derived from them."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        total = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / total if total else 1.0

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
    tp = len(match_points(predicted, truth, max_distance))
    return DetectionScore(tp, len(predicted) - tp, len(truth) - tp)
