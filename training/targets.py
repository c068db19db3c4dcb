"""Training targets from cell centres: Gaussian likelihood maps (METHOD.md section 1)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["gaussian_targets", "nearest_neighbour_distances", "estimate_cell_diameter"]


def gaussian_targets(shape: tuple[int, int], points: np.ndarray, sigma: float) -> np.ndarray:
    """Likelihood map with a Gaussian peak of height 1 at every cell centre.

    Overlapping Gaussians are combined by the pixel-wise maximum (not the sum), so that two
    touching cells keep two separate peaks and the map stays within [0, 1].

    Parameters
    ----------
    shape : (rows, cols)
        Shape of the map.
    points : ndarray [N, 2]
        Centres as (x, y) = (column, row); sub-pixel positions are honoured.
    sigma : float
        Standard deviation of each peak, pixels.

    Returns
    -------
    ndarray of float32
        The map, values in [0, 1], exactly 1 only at a centre lying on a pixel.

    Examples
    --------
    >>> m = gaussian_targets((5, 7), np.array([[3.0, 2.0]]), sigma=1.0)
    >>> float(m[2, 3]), round(float(m[2, 4]), 4)
    (1.0, 0.6065)
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    rows, cols = int(shape[0]), int(shape[1])
    target = np.zeros((rows, cols), np.float32)
    # Beyond 4 sigma a peak is below 3.4e-4: a local window per cell keeps this linear in N.
    reach = int(np.ceil(4 * sigma))
    for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
        r0, r1 = max(0, int(np.floor(y)) - reach), min(rows, int(np.ceil(y)) + reach + 1)
        c0, c1 = max(0, int(np.floor(x)) - reach), min(cols, int(np.ceil(x)) + reach + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        gy = np.exp(-((np.arange(r0, r1) - y) ** 2) / (2 * sigma**2))
        gx = np.exp(-((np.arange(c0, c1) - x) ** 2) / (2 * sigma**2))
        np.maximum(target[r0:r1, c0:c1], np.outer(gy, gx), out=target[r0:r1, c0:c1])
    return target


def nearest_neighbour_distances(points: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point (empty for fewer than 2 points)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return np.zeros(0)
    distances, _ = cKDTree(points).query(points, k=2)
    return distances[:, 1]


def estimate_cell_diameter(point_sets: list[np.ndarray], scale: float = 1.0) -> float:
    """Typical cell diameter from centres alone: the median nearest-neighbour distance.

    In a confluent or semi-confluent culture neighbouring centres are about one cell diameter
    apart, so this is a fair size estimate without any drawn outline. It over-estimates in sparse
    cultures; the engine uses it only to choose a resize factor and default sizes.

    Parameters
    ----------
    point_sets : list of ndarray [N, 2]
        Centres per image (distances are only measured within an image).
    scale : float
        Factor to the network's scale (the result is in network pixels).

    Returns
    -------
    float
        Median over all images' nearest-neighbour distances, times ``scale``.
    """
    distances = [nearest_neighbour_distances(p) for p in point_sets]
    distances = np.concatenate(distances) if distances else np.zeros(0)
    if distances.size == 0:
        raise ValueError("need at least two centres in one image to estimate the cell diameter")
    return float(np.median(distances) * scale)
