"""Cell centres and centre regions S_u from the likelihood map (METHOD.md section 2)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["centre_regions", "find_centres"]


def find_centres(likelihood: np.ndarray, threshold: float, min_distance: int = 2) -> np.ndarray:
    """Cell centres: local maxima of the likelihood above a threshold, merged when they touch.

    As the authors' code: pixels that are the maximum of their ``(2 * min_distance + 1)``-square
    neighbourhood and above ``threshold`` are peaks; peaks that touch (8-connected, e.g. a
    plateau) are one cell, placed at their centroid.

    Parameters
    ----------
    likelihood : numpy.ndarray
        2-D map in [0, 1].
    threshold : float
        Smallest likelihood of a centre (the code uses 125/255 ~ 0.49).
    min_distance : int
        Half-size of the neighbourhood a peak must dominate.

    Returns
    -------
    numpy.ndarray
        Float array [N, 2] of (row, col), ordered by row then column. Empty [0, 2] when none.

    Examples
    --------
    >>> y = np.zeros((9, 9), np.float32); y[4, 4] = 0.9; y[4, 5] = 0.9
    >>> find_centres(y, 0.5)
    array([[4. , 4.5]])
    """
    likelihood = np.asarray(likelihood, dtype=np.float32)
    size = 2 * int(min_distance) + 1
    # Pad with -inf so a peak on the border is judged only against pixels that exist.
    local_max = ndi.maximum_filter(likelihood, size=size, mode="constant", cval=-np.inf)
    peaks = (likelihood >= local_max) & (likelihood > threshold)
    labels, n = ndi.label(peaks, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros((0, 2), np.float64)
    centres = np.array(ndi.center_of_mass(peaks, labels, np.arange(1, n + 1)), np.float64)
    return centres[np.lexsort((centres[:, 1], centres[:, 0]))]


def centre_regions(shape: tuple[int, int], centres: np.ndarray, radius: float) -> np.ndarray:
    """Centre regions S_u: each centre's Voronoi cell intersected with a disk around it.

    Parameters
    ----------
    shape : (int, int)
        Shape of the map.
    centres : numpy.ndarray
        [N, 2] (row, col), as from :func:`find_centres`.
    radius : float
        Disk radius in pixels of this map.

    Returns
    -------
    numpy.ndarray
        int32 label image: ``k + 1`` on the region of ``centres[k]``, 0 elsewhere.
    """
    regions = np.zeros(shape, np.int32)
    if len(centres) == 0:
        return regions
    seeds = np.zeros(shape, np.int32)
    rc = np.clip(np.rint(centres).astype(int), 0, np.array(shape) - 1)
    # Later centres on the same rounded pixel would hide earlier ones; keep the first.
    for k in range(len(rc) - 1, -1, -1):
        seeds[rc[k, 0], rc[k, 1]] = k + 1
    distance, (ri, ci) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    regions = seeds[ri, ci]
    regions[distance > radius] = 0
    return regions.astype(np.int32, copy=False)
