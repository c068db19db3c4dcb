"""Random training crops with augmentation, in numpy (cheap next to the network on a CPU).

Every crop is a pure function of a numpy Generator, so a seeded run draws the same crops.
The augmentations aim at generalising to other microscopes and settings: geometry (flips, 90-degree
rotations, a modest zoom), intensity (contrast, offset, gamma) and acquisition (noise, blur).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Augmentation", "random_crop"]


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes applied to each crop (``none()`` switches all off)."""

    zoom: tuple[float, float] = (0.8, 1.25)
    contrast: tuple[float, float] = (0.7, 1.4)
    offset: tuple[float, float] = (-0.15, 0.15)
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_std: tuple[float, float] = (0.0, 0.06)
    noise_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.0)
    blur_probability: float = 0.25
    flips: bool = True

    @classmethod
    def none(cls) -> Augmentation:
        return cls(
            zoom=(1.0, 1.0),
            contrast=(1.0, 1.0),
            offset=(0.0, 0.0),
            gamma=(1.0, 1.0),
            noise_probability=0.0,
            blur_probability=0.0,
            flips=False,
        )


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def random_crop(
    image: np.ndarray,
    target: np.ndarray,
    size: int,
    rng: np.random.Generator,
    augmentation: Augmentation = Augmentation(),  # noqa: B008 - frozen, so safe as a default
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented ``size`` x ``size`` crop of a normalised image and its target.

    Parameters
    ----------
    image, target : ndarray (2-D, float32)
        Normalised image and its likelihood target, same shape, at the network's scale.
    size : int
        Side of the crop.
    rng : numpy.random.Generator
        Source of all randomness.
    augmentation : Augmentation
        The ranges to draw from.

    Returns
    -------
    image_crop, target_crop : ndarray (float32, size x size)
    """
    zoom = _log_uniform(rng, augmentation.zoom)
    # A zoom > 1 magnifies: take a smaller region and enlarge it, image and target alike (the
    # target's peaks widen with the cells, which is what a higher magnification would show).
    side = max(4, int(round(size / zoom)))
    pad = max(0, side - min(image.shape))
    if pad:
        image = np.pad(image, pad, mode="reflect")
        target = np.pad(target, pad, mode="reflect")
    r0 = int(rng.integers(0, image.shape[0] - side + 1))
    c0 = int(rng.integers(0, image.shape[1] - side + 1))
    img = image[r0 : r0 + side, c0 : c0 + side]
    tgt = target[r0 : r0 + side, c0 : c0 + side]
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interpolation)
        tgt = cv2.resize(tgt, (size, size), interpolation=interpolation)

    if augmentation.flips:
        k = int(rng.integers(0, 4))
        img, tgt = np.rot90(img, k), np.rot90(tgt, k)
        if rng.random() < 0.5:
            img, tgt = img[:, ::-1], tgt[:, ::-1]

    img = np.ascontiguousarray(img, dtype=np.float32)
    gamma = _log_uniform(rng, augmentation.gamma)
    if gamma != 1.0:
        # Gamma on the [0, 1] core only, keeping values beyond it (halos, debris) monotonic.
        core = np.clip(img, 0.0, 1.0)
        img = img + (core**gamma - core)
    img = img * rng.uniform(*augmentation.contrast) + rng.uniform(*augmentation.offset)
    if augmentation.blur_probability and rng.random() < augmentation.blur_probability:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*augmentation.blur_sigma))
    if augmentation.noise_probability and rng.random() < augmentation.noise_probability:
        img = img + rng.normal(0.0, rng.uniform(*augmentation.noise_std), img.shape)
    return img.astype(np.float32), np.ascontiguousarray(tgt, dtype=np.float32)
