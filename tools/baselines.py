"""Comparison pipelines for `make validate`: what a user could do without cellprop.

1. `classical_segment`: the pipeline a CellProfiler user would build (IdentifyPrimaryObjects):
   smooth, threshold (Otsu or local), fill holes, split touching cells by a distance-transform
   watershed. The foreground feature respects the modality's polarity:

   * fluorescence: nuclei are brighter than the background -> the smoothed intensity;
   * phase contrast: dark cell bodies inside bright halos on a flat grey background -> the
     absolute deviation from a broad background estimate (dark body and bright halo both count);
   * DIC: shadow-cast relief, cells are textured, the background is flat -> local standard
     deviation.

2. `seeded_watershed`: the same foreground mask, but split by a watershed on the image gradient
   seeded from the cellprop model's own detected centres. Detection is then shared with cellprop,
   so the difference to cellprop is what guided propagation and the graph cut add.

Both take and return plain arrays (labels: int32, 0 = background), with sizes in original pixels.
"""

from __future__ import annotations

import numpy as np
from cellprop.engine.normalise import normalise, rescale
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_local, threshold_otsu
from skimage.segmentation import watershed

__all__ = ["foreground_feature", "foreground_mask", "classical_segment", "seeded_watershed"]

POLARITIES = {
    "fluorescence": "bright",
    "phase": "deviation",
    "brightfield": "deviation",
    "dic": "texture",
}


def foreground_feature(image: np.ndarray, modality: str, diameter: float) -> np.ndarray:
    """A smoothed map that is high on cells and low on background.

    Parameters
    ----------
    image : ndarray
        2-D raw image.
    modality : str
        "fluorescence", "phase", "brightfield" or "dic" (see the module docstring).
    diameter : float
        Typical cell diameter in pixels; sets the smoothing and background scales.

    Returns
    -------
    ndarray of float32
        Same shape as ``image``.
    """
    if modality not in POLARITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(POLARITIES)}")
    img = normalise(image)
    sigma = max(1.0, diameter / 16)
    kind = POLARITIES[modality]
    if kind == "bright":
        return ndi.gaussian_filter(img, sigma)
    if kind == "deviation":
        background = ndi.median_filter(img[::4, ::4], size=max(3, int(diameter) // 2))
        background = rescale(background, shape=img.shape)
        return ndi.gaussian_filter(np.abs(img - background), sigma)
    # DIC texture lives at the scale of organelles and membrane relief (a few pixels), whatever
    # the cell size; the region is then smoothed at the cell's scale.
    mean = ndi.gaussian_filter(img, 2.0)
    var = ndi.gaussian_filter(img * img, 2.0) - mean * mean
    return ndi.gaussian_filter(np.sqrt(np.clip(var, 0, None)), sigma)


def foreground_mask(
    image: np.ndarray,
    modality: str,
    diameter: float,
    method: str = "otsu",
    correction: float = 1.0,
) -> np.ndarray:
    """Threshold the foreground feature; holes filled, specks and thin debris removed.

    Parameters
    ----------
    image : ndarray
        2-D raw image.
    modality : str
        See `foreground_feature`.
    diameter : float
        Typical cell diameter in pixels.
    method : {"otsu", "local"}
        Global Otsu threshold, or a local (Gaussian-weighted mean) threshold over a window of about
        three cell diameters, as in CellProfiler's "Adaptive" strategy.
    correction : float
        CellProfiler's "threshold correction factor": the threshold is multiplied by it.

    Returns
    -------
    ndarray of bool
    """
    feature = foreground_feature(image, modality, diameter)
    if method == "otsu":
        threshold = threshold_otsu(feature)
    elif method == "local":
        block = 2 * int(1.5 * diameter) + 1
        # A local threshold alone also splits flat background into noise; the global Otsu level
        # is a floor, as CellProfiler's adaptive mode bounds it by the global value.
        threshold = np.maximum(threshold_local(feature, block), 0.5 * threshold_otsu(feature))
    else:
        raise ValueError(f"method must be 'otsu' or 'local', got {method!r}")
    mask = feature > threshold * correction
    radius = max(1, int(round(diameter / 12)))
    disk = _disk(radius)
    mask = ndi.binary_opening(mask, disk)
    mask = ndi.binary_fill_holes(mask)
    return _remove_small(mask, _min_area(diameter))


def classical_segment(
    image: np.ndarray,
    modality: str,
    diameter: float,
    method: str = "otsu",
    correction: float = 1.0,
) -> np.ndarray:
    """Baseline 1: threshold + distance-transform watershed (CellProfiler-style).

    Touching cells are split at the necks of the mask: seeds are maxima of the smoothed distance
    transform at least half a diameter apart.

    Parameters
    ----------
    image, modality, diameter, method, correction
        See `foreground_mask`.

    Returns
    -------
    ndarray of int32
        Instance labels 1..N, 0 = background.
    """
    mask = foreground_mask(image, modality, diameter, method, correction)
    distance = ndi.gaussian_filter(ndi.distance_transform_edt(mask), max(1.0, diameter / 16))
    components, _ = ndi.label(mask)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, int(diameter / 2)),
        labels=components,
        exclude_border=False,
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=mask)
    return _relabel(labels, _min_area(diameter))


def seeded_watershed(
    image: np.ndarray,
    centres: np.ndarray,
    modality: str,
    diameter: float,
    method: str = "otsu",
    correction: float = 1.0,
    compactness: float = 0.001,
) -> np.ndarray:
    """Baseline 2: watershed on the image gradient from given cell centres.

    The flooding is confined to the classical foreground mask plus a disk of half a diameter
    around each centre (so every detected cell gets a region even where the threshold misses it),
    and to one diameter from its centre (a cell does not flood the whole clump).

    Parameters
    ----------
    image : ndarray
        2-D raw image.
    centres : ndarray
        [N, 2] array of (x, y) cell centres in pixels, e.g. ``Segmentation.centres``.
    modality, diameter, method, correction
        See `foreground_mask`.
    compactness : float
        Weight of the distance to the seed against the gradient (skimage's compact watershed).

    Returns
    -------
    ndarray of int32
        Instance labels; label k (1-based) grows from ``centres[k - 1]``, unless it vanished.
    """
    centres = np.asarray(centres, float).reshape(-1, 2)
    shape = np.shape(image)
    points = np.zeros(shape, np.int32)
    rows = np.clip(np.round(centres[:, 1]).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.round(centres[:, 0]).astype(int), 0, shape[1] - 1)
    points[rows, cols] = np.arange(1, len(centres) + 1)
    if not len(centres):
        return points
    near_seed, nearest = ndi.distance_transform_edt(points == 0, return_indices=True)
    # Seeds are small disks, not single pixels: a point seed on a noisy flat interior is walled in
    # by its own noise and loses the flooding race to its neighbours.
    markers = np.where(near_seed <= max(1.0, diameter / 8), points[tuple(nearest)], 0)
    mask = foreground_mask(image, modality, diameter, method, correction)
    mask = (mask | (near_seed <= diameter / 2)) & (near_seed <= diameter)
    smooth = ndi.gaussian_filter(normalise(image), max(1.0, diameter / 16))
    gradient = np.hypot(ndi.sobel(smooth, 0), ndi.sobel(smooth, 1))
    # A small compactness term, like CellProfiler's "Propagate" (gradient plus distance), splits
    # touching cells near the middle where the image shows no edge between them.
    labels = watershed(gradient, markers, mask=mask, compactness=compactness)
    return _relabel(labels, _min_area(diameter), keep_ids=True)


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def _min_area(diameter: float) -> int:
    """Objects smaller than a disk of a quarter diameter are noise, not cells."""
    return int(np.pi * (diameter / 8) ** 2)


def _remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    components, n = ndi.label(mask)
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    keep = sizes >= min_area
    keep[0] = False
    return keep[components]


def _relabel(labels: np.ndarray, min_area: int, keep_ids: bool = False) -> np.ndarray:
    """Drop objects below ``min_area``; renumber 1..N unless ``keep_ids``."""
    labels = labels.astype(np.int32)
    sizes = np.bincount(labels.ravel())
    small = sizes < min_area
    small[0] = True
    if keep_ids:
        labels[small[labels]] = 0
        return labels
    lut = np.zeros(len(sizes), np.int32)
    lut[~small] = np.arange(1, int((~small).sum()) + 1)
    return lut[labels]
