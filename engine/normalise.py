"""Input normalisation shared by training and inference.

This is the one implementation of the intensity normalisation and the resize to the network's
working scale. Training (``cellprop.training``) and the engine both call it, so a model sees the
same numbers at inference as it saw while it learnt. Only numpy and OpenCV are used: the engine
must not depend on torch.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = [
    "finite_filled",
    "normalise",
    "rescale",
    "prepare",
    "scaled_shape",
    "pad_to_multiple",
    "percentiles",
    "to_network_coordinates",
    "to_original_coordinates",
    "working_float",
]


def to_network_coordinates(points: np.ndarray, scale) -> np.ndarray:
    """Pixel-centre coordinates after a resize by ``scale`` (as OpenCV resizes): a float, or one
    factor per coordinate column (e.g. ``[sy, sx]`` for (row, col) points)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * np.asarray(scale, np.float64) - 0.5


def to_original_coordinates(points: np.ndarray, scale) -> np.ndarray:
    """Inverse of `to_network_coordinates`."""
    return (np.asarray(points, dtype=np.float64) + 0.5) / np.asarray(scale, np.float64) - 0.5


def percentiles(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> tuple[float, float]:
    """Robust intensity range of an image.

    Parameters
    ----------
    image : ndarray
        Any real-valued array (2-D image, any dtype).
    low, high : float
        Percentiles (0..100) taken as black and white.

    Returns
    -------
    lo, hi : float
        The two percentile values. ``hi > lo`` is not guaranteed (flat image).
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    values = np.asarray(image)
    # Very large images: a regular subsample gives the same percentiles to within noise
    # and keeps this step cheap on a 2-core machine.
    if values.size > 4_000_000:
        step = int(np.ceil(np.sqrt(values.size / 4_000_000)))
        values = values[..., ::step, ::step]
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi)


def finite_filled(image: np.ndarray) -> np.ndarray:
    """A float image's NaN and infinite pixels (masked or saturated data) set to the median
    of the others (0 where none is a number), so that they poison neither the percentiles
    nor the network; any other image as it is. Segmentation and training read alike."""
    image = np.asarray(image)
    if image.dtype.kind != "f" or np.isfinite(image).all():
        return image
    finite = np.isfinite(image)
    fill = float(np.median(image[finite])) if finite.any() else 0.0
    return np.where(finite, image, fill).astype(image.dtype, copy=False)


def working_float(dtype) -> type:
    """The float type an image of ``dtype`` is scaled in: float64 for 64-bit values and 32-bit
    integers, float32 for the rest. A float64 image's values past float32's range (1e40) are
    not made inf, and a 32- or 64-bit integer image far from 0 (an offset of 2**31, a sum
    image) keeps its contrast, which float32's 24 bits would round away before the offset is
    taken off (the network, the overlay and the window alike)."""
    dtype = np.dtype(dtype)
    wide = dtype.itemsize > 4 or (dtype.kind in "iu" and dtype.itemsize == 4)
    return np.float64 if wide else np.float32


def normalise(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Map an image's robust intensity range onto [0, 1].

    The ``low`` percentile becomes 0 and the ``high`` percentile 1; values beyond are kept (not
    clipped) so that bright halos and dark debris still carry their contrast. This makes 8- and
    16-bit images, and different exposures, look alike to the network.

    Parameters
    ----------
    image : ndarray
        2-D image (or a stack), any real dtype.
    low, high : float
        Percentiles (0..100) mapped to 0 and 1.

    Returns
    -------
    ndarray of float32
        Same shape as ``image``. A flat image (no intensity range) gives all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(1001, dtype=np.uint16)[:1000].reshape(10, 100)
    >>> y = normalise(x, 0.0, 100.0)
    >>> float(y.min()), float(y.max())
    (0.0, 1.0)
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise TypeError(f"cannot normalise an image of dtype {image.dtype}")
    lo, hi = percentiles(image, low, high)
    if not hi > lo:
        # A flat image holds no structure; zeros are the honest input for it.
        return np.zeros(image.shape, np.float32)
    if working_float(image.dtype) == np.float64:
        return ((image - lo) * (1.0 / (hi - lo))).astype(np.float32)
    out = image.astype(np.float32)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return out


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """Shape (rows, cols) of a 2-D image after resizing by ``scale`` (at least 1x1)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))


def rescale(
    image: np.ndarray,
    scale: float | None = None,
    order: int = 1,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize a 2-D image by a factor, or to an exact shape.

    Parameters
    ----------
    image : ndarray
        2-D array. float32/uint8/uint16 keep their dtype; labels (integers) should use ``order=0``.
    scale : float, optional
        Resize factor (0.5 halves each side). Ignored when ``shape`` is given.
    order : int
        0 = nearest neighbour (labels), 1 = bilinear (images; area averaging when shrinking,
        which avoids aliasing of fine texture), 3 = bicubic.
    shape : (int, int), optional
        Exact output shape (rows, cols), e.g. to map results back to the original size.

    Returns
    -------
    ndarray
        The resized image. ``scale == 1`` with no ``shape`` returns the input unchanged.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"rescale expects a 2-D image, got shape {image.shape}")
    if shape is None:
        if scale is None:
            raise ValueError("give either scale or shape")
        shape = scaled_shape(image.shape, scale)
    shape = (int(shape[0]), int(shape[1]))
    if shape == image.shape:
        return image
    if order == 0:
        interpolation = cv2.INTER_NEAREST
    elif order == 1:
        shrinking = shape[0] < image.shape[0] and shape[1] < image.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    elif order == 3:
        interpolation = cv2.INTER_CUBIC
    else:
        raise ValueError(f"order must be 0, 1 or 3, got {order}")
    work = image
    # OpenCV cannot resize every dtype (bool, int64, uint32...); go through a safe one.
    if work.dtype == bool:
        work = work.astype(np.uint8)
    convert_back = None
    if work.dtype not in (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64):
        if order != 0:
            work = work.astype(np.float32)
        else:
            convert_back = work.dtype
            if np.issubdtype(work.dtype, np.integer) and work.size and work.max() < 2**31:
                work = work.astype(np.int32)
            else:
                work = work.astype(np.float64)
    out = cv2.resize(work, (shape[1], shape[0]), interpolation=interpolation)
    if convert_back is not None:
        out = out.astype(convert_back)
    return out


def pad_to_multiple(
    image: np.ndarray, multiple: int, mode: Literal["reflect", "constant"] = "reflect"
) -> np.ndarray:
    """Pad a 2-D image at the bottom and right so both sides are multiples of ``multiple``.

    The network's max-pool steps need sides divisible by its stride (2**depth). Padding only at
    the bottom/right keeps pixel coordinates unchanged: crop ``[:rows, :cols]`` to undo it.

    Parameters
    ----------
    image : ndarray
        2-D array.
    multiple : int
        The stride, e.g. 16.
    mode : str
        numpy.pad mode; "reflect" avoids a hard edge the network might read as a cell boundary.
        Falls back to "symmetric" when the image is too small to reflect.

    Returns
    -------
    ndarray
        Padded copy (or the input itself when no padding is needed).
    """
    rows, cols = image.shape[-2:]
    pad_r = (-rows) % multiple
    pad_c = (-cols) % multiple
    if pad_r == 0 and pad_c == 0:
        return image
    width = [(0, 0)] * (image.ndim - 2) + [(0, pad_r), (0, pad_c)]
    if mode == "reflect" and (pad_r >= rows or pad_c >= cols):
        return np.pad(image, width, mode="symmetric")
    return np.pad(image, width, mode=mode)


def prepare(
    image: np.ndarray, scale: float = 1.0, low: float = 1.0, high: float = 99.8
) -> np.ndarray:
    """Turn raw pixels into the network's input: normalise, then resize by ``scale``.

    This fixes the order of the two steps (percentiles are taken at the original resolution)
    for training and inference alike; model.json's ``input.normalisation`` and ``input.scale``
    are its arguments.

    Parameters
    ----------
    image : ndarray
        2-D raw image, any real dtype.
    scale : float
        Resize factor to the network's working scale.
    low, high : float
        Percentiles mapped to 0 and 1.

    Returns
    -------
    ndarray of float32
        2-D, shape ``scaled_shape(image.shape, scale)``. Not padded: see `pad_to_multiple`.
    """
    return rescale(normalise(image, low, high), scale, order=1)
