"""Training targets from cell centres: Gaussian likelihood maps (METHOD.md section 1)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

__all__ = [
    "blob_diameter",
    "estimate_cell_diameter",
    "gaussian_targets",
    "nearest_neighbour_distances",
]


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


#: Blob scales tried by :func:`blob_diameter` (Gaussian sigma, pixels): diameters ~4-180 px.
BLOB_SIGMAS = np.geomspace(1.5, 64.0, 24)


def blob_diameter(images: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Typical diameter of bright round cells (fluorescent nuclei) at their clicked centres.

    The scale-normalised Laplacian of Gaussian, ``-sigma^2 * LoG``, peaks over sigma where a
    bright disc of diameter ``d`` has ``sigma = d / (2 sqrt 2)``: each centre gets the sigma
    of its strongest response, and the median over all centres gives the diameter. Unlike
    the spacing of the points it does not grow when the cells lie far apart (gowt1-fluo:
    58 px, the masks' 60 px, where neighbours are 108 px apart). Only for bright blobs: the
    irregular cells of phase contrast and the relief of DIC are not blobs (c2c12: 80-94 px
    for 32 px cells; hela: 28-58 px for 110 px).

    Parameters
    ----------
    images : list of (pixels, points)
        2-D images and their centres, [N, 2] (x, y).
    """
    best = []
    for pixels, points in images:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not len(points):
            continue
        image = np.asarray(pixels, dtype=np.float32)
        low, high = np.percentile(image, (1.0, 99.8))
        image = np.clip((image - low) / max(float(high - low), 1e-6), 0.0, 1.0)
        responses = []
        for sigma in BLOB_SIGMAS:
            # large scales on a smaller copy (sigma there ~4 px): the same normalised response
            factor = max(1.0, sigma / 4.0)
            small = ndi.zoom(image, 1.0 / factor, order=1) if factor > 1 else image
            s = sigma / factor
            response = -(s * s) * ndi.gaussian_laplace(small, s)
            rows = np.clip(np.round(points[:, 1] / factor).astype(int), 0, small.shape[0] - 1)
            cols = np.clip(np.round(points[:, 0] / factor).astype(int), 0, small.shape[1] - 1)
            responses.append(response[rows, cols])
        best.append(BLOB_SIGMAS[np.argmax(responses, axis=0)])
    if not best:
        raise ValueError("need at least one centre to measure the cells' size")
    return float(2.0 * np.sqrt(2.0) * np.median(np.concatenate(best)))
