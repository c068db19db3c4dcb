"""engine.normalise: the one normalisation and resize used by training and inference."""

from __future__ import annotations

import numpy as np
import pytest
from cellprop.engine.normalise import (
    normalise,
    pad_to_multiple,
    percentiles,
    prepare,
    rescale,
    scaled_shape,
)


def test_normalise_maps_percentiles_to_zero_and_one_without_clipping():
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 5000, (64, 80)).astype(np.uint16)
    image[0, 0] = 65535  # one hot pixel must not squash the rest
    out = normalise(image, 1.0, 99.8)
    lo, hi = percentiles(image, 1.0, 99.8)
    assert out.dtype == np.float32
    assert np.isclose(np.percentile(out, 1.0), 0.0, atol=1e-5)
    assert np.isclose(np.percentile(out, 99.8), 1.0, atol=1e-5)
    assert out[0, 0] > 1.0  # kept, not clipped
    assert np.allclose(out, (image.astype(np.float64) - lo) / (hi - lo), atol=1e-5)


def test_normalise_makes_8_and_16_bit_versions_of_one_image_equal():
    rng = np.random.default_rng(1)
    image8 = rng.integers(0, 256, (50, 50)).astype(np.uint8)
    image16 = image8.astype(np.uint16) * 257
    assert np.allclose(normalise(image8), normalise(image16), atol=1e-5)


def test_normalise_scales_float64_values_past_float32s_range():
    """A float64 image of values near 1e40 (past float32's 3.4e38): scaled as it is, not made
    inf by a cast first (the image then read as blank, 0 cells)."""
    rng = np.random.default_rng(2)
    small = rng.random((40, 50))
    out = normalise(small * 1e40)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.allclose(out, normalise(small), atol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "offset"), [(np.uint32, 2**31), (np.int32, -(2**30)), (np.int64, 2**40)]
)
def test_normalise_keeps_the_contrast_of_32_and_64_bit_integers_far_from_0(dtype, offset):
    """A 32- or 64-bit integer image whose values lie far from 0 (a camera's offset, a sum
    image): normalised as the same pixels without the offset, not cast to float32 first
    (its 24 bits rounded 2**31 + 0..255 to a few values: 1 cell instead of 8, no word)."""
    rng = np.random.default_rng(3)
    image8 = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    out = normalise(image8.astype(dtype) + dtype(offset))
    assert np.allclose(out, normalise(image8), atol=1e-5)


def test_flat_images_and_bad_arguments():
    assert not normalise(np.full((8, 8), 7, np.uint8)).any()
    with pytest.raises(ValueError):
        normalise(np.zeros((4, 4)), 50, 10)
    with pytest.raises(TypeError):
        normalise(np.array([["a"]]))


def test_rescale_keeps_dtype_and_labels():
    image = np.arange(40 * 60, dtype=np.uint16).reshape(40, 60)
    half = rescale(image, 0.5)
    assert half.shape == (20, 30) == scaled_shape(image.shape, 0.5)
    assert half.dtype == np.uint16
    # Area averaging when shrinking: each output pixel is the mean of a 2x2 block.
    assert half[3, 4] == pytest.approx(image[6:8, 8:10].mean(), abs=1)
    labels = np.zeros((10, 10), np.uint32)
    labels[2:5, 2:5] = 70000  # beyond uint16
    up = rescale(labels, 2.0, order=0)
    assert up.dtype == np.uint32 and set(np.unique(up)) == {0, 70000}
    assert rescale(labels, shape=(10, 10)) is labels
    back = rescale(up, order=0, shape=(10, 10))
    assert np.array_equal(back, labels)
    with pytest.raises(ValueError):
        rescale(labels, 0.5, order=2)


def test_pad_to_multiple_pads_bottom_right_only():
    image = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (8, 8)
    assert np.array_equal(padded[:5, :7], image)
    assert pad_to_multiple(np.zeros((8, 16)), 8).shape == (8, 16)
    # Too small to reflect: falls back to symmetric padding instead of failing.
    assert pad_to_multiple(np.ones((2, 3)), 16).shape == (16, 16)


def test_prepare_normalises_at_full_resolution_then_resizes():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 4096, (100, 120)).astype(np.uint16)
    out = prepare(image, 0.5)
    assert out.shape == (50, 60) and out.dtype == np.float32
    assert np.allclose(out, rescale(normalise(image), 0.5), atol=1e-6)
