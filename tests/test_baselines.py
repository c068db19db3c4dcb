"""The comparison pipelines of `make validate` on synthetic images with a known answer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from baselines import classical_segment, foreground_mask, seeded_watershed  # noqa: E402

SHAPE = (160, 200)
CENTRES = np.array([[70.0, 80.0], [112.0, 80.0], [160.0, 40.0]])  # (x, y); first two touch
RADIUS = 24


def _truth() -> np.ndarray:
    """Three discs of radius 24: two overlapping (split at the perpendicular bisector), one apart."""
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    dist = np.stack([np.hypot(x - cx, y - cy) for cx, cy in CENTRES])
    labels = np.where(dist.min(0) <= RADIUS, dist.argmin(0) + 1, 0)
    return labels.astype(np.int32)


def _render(labels: np.ndarray, modality: str, seed: int = 0) -> np.ndarray:
    """Grey image of the discs in a modality's look, with noise."""
    rng = np.random.default_rng(seed)
    inside = labels > 0
    if modality == "fluorescence":
        image = 20 + 150 * inside
    else:  # phase: dark bodies inside a bright halo (the outer 3 px ring) on grey
        from scipy import ndimage as ndi

        halo = inside & ~ndi.binary_erosion(inside, iterations=3)
        image = 120 - 50 * inside + 110 * halo
    return np.clip(image + rng.normal(0, 6, SHAPE), 0, 255).astype(np.uint8)


def _best_iou(truth: np.ndarray, labels: np.ndarray, k: int) -> float:
    cell = truth == k
    ids, counts = np.unique(labels[cell], return_counts=True)
    counts, ids = counts[ids > 0], ids[ids > 0]
    if not len(ids):
        return 0.0
    other = labels == ids[counts.argmax()]
    return float((cell & other).sum() / (cell | other).sum())


@pytest.mark.parametrize("modality", ["fluorescence", "phase"])
def test_classical_splits_touching_discs(modality):
    truth = _truth()
    labels = classical_segment(_render(truth, modality), modality, diameter=2 * RADIUS)
    assert labels.max() == 3
    assert min(_best_iou(truth, labels, k) for k in (1, 2, 3)) > 0.8


def test_seeded_watershed_one_region_per_centre_in_seed_order():
    truth = _truth()
    image = _render(truth, "fluorescence")
    labels = seeded_watershed(image, CENTRES[::-1], "fluorescence", diameter=2 * RADIUS)
    # centre k-1 of the reversed list grows label k
    for k, (cx, cy) in enumerate(CENTRES[::-1], start=1):
        assert labels[int(cy), int(cx)] == k
    assert min(_best_iou(truth, labels, k) for k in (1, 2, 3)) > 0.8


def test_seeded_watershed_keeps_a_cell_the_threshold_misses():
    truth = _truth()
    image = _render(truth, "fluorescence")
    image[truth == 3] = 28  # third disc barely above background: the threshold drops it
    assert not foreground_mask(image, "fluorescence", 48)[40, 160]
    labels = seeded_watershed(image, CENTRES, "fluorescence", diameter=48)
    assert labels[40, 160] == 3


def test_unknown_modality_is_refused():
    with pytest.raises(ValueError, match="modality"):
        classical_segment(np.zeros(SHAPE, np.uint8), "xray", 20)
