"""Network passes: the tiled U-Net forward and the batched guided propagation per cell (METHOD 1, 3, 6).

Everything here works at the network's scale on the normalised image.

Guided propagation runs the exported ``guided.onnx`` graph once per cell, with the cell's
likelihood inside its centre region S_u as the gradient at the output (the paper's Eq. 1), and
returns the gradient at the input. In ``crop`` mode each cell's pass sees only a window around
its region (the region's box plus a margin of the order of the network's effective receptive
field), and all windows share one size so that many cells run in one ONNX call; ``full`` mode is
the paper's computation, the whole image once per cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import Cancelled
from .memo import digest
from .normalise import pad_to_multiple

__all__ = ["CellMap", "crop_windows", "likelihood_map", "propagate_cells", "scale_map"]

#: Values of a per-cell map below this fraction of the map's maximum are zeroed (authors' code).
MAP_FLOOR = 0.01

#: On the CPU, the working memory of one batched guided call, MB, at most (whatever the
#: budget): a batch far larger than the processor's caches runs slower, not faster (C2C12
#: frame, 222 cells of 56 x 56 px windows, 2 cores: 1.41 s at 227 cells a call, 0.71 s at 14
#: to 28, 0.74 s at 3; ``tools/bench.py``). A graphics card wants its batches large.
CPU_CALL_MB = 64


@dataclass(frozen=True)
class CellMap:
    """One cell's contribution map on a window of the network-scale image.

    ``values`` covers rows ``top:top + values.shape[0]`` and columns ``left:left + ...`` of the
    (unpadded) network-scale image; it is scaled so that its maximum is 1 (see
    :func:`scale_map`).
    """

    label: int
    top: int
    left: int
    values: np.ndarray


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


def _tiles(length: int, core: int) -> list[tuple[int, int]]:
    """Abutting intervals of at most ``core`` pixels covering ``0..length``."""
    return [(s, min(s + core, length)) for s in range(0, length, core)]


def likelihood_map(
    model,
    image: np.ndarray,
    memory_mb: int = 1024,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Run the U-Net on a normalised 2-D image of any size; tiles keep memory bounded.

    The image is padded (reflect) to the network's stride. When a whole-image pass would need
    more than ``memory_mb`` (estimated from the network's width), it runs on tiles whose cores
    abut, each read with an overlap of the receptive-field radius so that every output pixel sees
    the context it would see in one pass. Not exactly the values of one pass: the bilinear
    upsampling with ``align_corners=True`` samples at positions that drift with its input's
    size (C2C12 frame, tiles of a 64 MB budget against one pass: likelihood up to 0.11 apart,
    the same cells at mDice 0.998; README, Performance).

    Parameters
    ----------
    model : cellprop.engine.model.Model
        The loaded model.
    image : numpy.ndarray
        2-D float32, normalised and at the network's scale.
    memory_mb : int
        Budget for one network call.

    Returns
    -------
    numpy.ndarray
        float32 likelihood in [0, 1], same shape as ``image``.
    """
    rows, cols = image.shape
    stride = model.stride
    # The forward pass holds far fewer tensors than the guided one; half its estimate is ample.
    per_pixel = max(1, model.bytes_per_pixel() // 2)
    budget_px = max(stride * stride * 16, memory_mb * 2**20 // per_pixel)
    padded = pad_to_multiple(image, stride)
    if padded.size <= budget_px:
        return model.likelihood(padded[None, None])[0, 0, :rows, :cols]

    halo = int(np.ceil(max(model.receptive_field_radius_px, 2 * stride) / stride)) * stride
    side = int(np.sqrt(budget_px)) // stride * stride
    core = max(stride, side - 2 * halo)
    out = np.zeros((rows, cols), np.float32)
    prows, pcols = padded.shape
    for r0, r1 in _tiles(rows, core):
        for c0, c1 in _tiles(cols, core):
            _check_cancel(cancel)
            # Read window: the core plus the halo, clipped to the padded image, stride-aligned
            # so that pooling windows fall where they fall in a whole-image pass.
            a0, b0 = max(0, r0 - halo), max(0, c0 - halo)
            a1 = min(prows, a0 + int(np.ceil((r1 + halo - a0) / stride)) * stride)
            b1 = min(pcols, b0 + int(np.ceil((c1 + halo - b0) / stride)) * stride)
            tile = padded[a0:a1, b0:b1]
            tile = pad_to_multiple(tile, stride)
            pred = model.likelihood(tile[None, None])[0, 0]
            out[r0:r1, c0:c1] = pred[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
    return out


def scale_map(grad: np.ndarray, floor: float = MAP_FLOOR) -> np.ndarray:
    """A cell's contribution map from its raw input gradient: positive part, max 1, floor zeroed.

    Scaling every cell's map to a maximum of 1 makes the maximum projection compare where each
    cell's own evidence lies, not how confident the detector was about each cell.
    """
    values = np.maximum(grad, 0, dtype=np.float32)
    peak = float(values.max()) if values.size else 0.0
    if peak <= 0:
        return np.zeros_like(values)
    values *= np.float32(1.0 / peak)
    values[values < floor] = 0
    return values


def crop_windows(
    regions: np.ndarray,
    n_cells: int,
    shape: tuple[int, int],
    margin: int,
    stride: int,
) -> tuple[np.ndarray, tuple[int, int]]:
    """One window per cell: its region's box plus ``margin``, all of one stride-aligned size.

    Parameters
    ----------
    regions : numpy.ndarray
        Label image of the centre regions S_u (1..n_cells).
    n_cells : int
        Number of cells.
    shape : (int, int)
        Shape of the padded image the windows lie in (multiples of ``stride``).
    margin : int
        Context on each side of the region's box, pixels.
    stride : int
        The network's stride: window sizes and origins are multiples of it, so that max-pool
        windows in a crop coincide with those of a whole-image pass.

    Returns
    -------
    tops_lefts : numpy.ndarray
        int [n_cells, 2]; cells with an empty region get -1.
    size : (int, int)
        The common window size.
    """
    boxes = ndi.find_objects(regions, max_label=n_cells)
    extent = 1
    for box in boxes:
        if box is not None:
            extent = max(extent, box[0].stop - box[0].start, box[1].stop - box[1].start)
    side = int(np.ceil((extent + 2 * margin) / stride)) * stride
    size = (min(side, shape[0]), min(side, shape[1]))
    origins = np.full((n_cells, 2), -1, np.int64)
    for k, box in enumerate(boxes):
        if box is None:
            continue
        for axis in range(2):
            centre = (box[axis].start + box[axis].stop) / 2
            # Nearest grid origin: the margin on one side may shrink by up to stride / 2,
            # which costs far less agreement than misaligned pooling windows would.
            start = int(np.round((centre - size[axis] / 2) / stride)) * stride
            origins[k, axis] = min(max(start, 0), shape[axis] - size[axis])
    return origins, size


def propagate_cells(
    model,
    image: np.ndarray,
    likelihood: np.ndarray,
    regions: np.ndarray,
    n_cells: int,
    mode: str = "crop",
    margin: int = 48,
    memory_mb: int = 1024,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    memo: dict | None = None,
    used: set | None = None,
) -> Iterator[CellMap]:
    """Guided propagation from every cell, batched; yields each cell's scaled contribution map.

    Parameters
    ----------
    model : cellprop.engine.model.Model
        The loaded model (its guided graph and stride).
    image : numpy.ndarray
        2-D float32 normalised image at the network's scale (unpadded).
    likelihood : numpy.ndarray
        The U-Net output for ``image``; its values inside S_u are the output gradient (Eq. 1).
    regions : numpy.ndarray
        Label image of the centre regions S_u, labels 1..n_cells.
    n_cells : int
        Number of cells.
    mode : {"crop", "full"}
        ``crop``: a window around each region (fast); ``full``: the whole image per cell.
    margin : int
        Crop mode: context around each region's box, network-scale pixels.
    memory_mb : int
        Budget for one batched ONNX call; the batch size follows from it (on the CPU, from
        at most ``CPU_CALL_MB`` of it).
    progress : callable, optional
        Called with the fraction of cells done (0..1) after each batch.
    cancel : callable, optional
        Checked between batches; raises :class:`Cancelled` when it returns True.
    memo : dict, optional
        Crop mode: maps computed before on the same ``image`` and ``likelihood``, by a digest
        of what a cell's map depends on (its window and its region in it); a cell found there
        is not propagated again, and those propagated are added. ``used`` gets the digests
        of this call's cells (see ``memo.Memo``).

    Yields
    ------
    CellMap
        In label order; the window is clipped to the unpadded image. Cells whose region is
        empty yield nothing.
    """
    if mode not in ("crop", "full"):
        raise ValueError(f"propagation mode must be 'crop' or 'full', not {mode!r}")
    rows, cols = image.shape
    stride = model.stride
    padded = pad_to_multiple(image, stride)
    grad_source = np.where(regions > 0, likelihood, 0).astype(np.float32)
    grad_source = pad_to_multiple(grad_source, stride, mode="constant")
    regions_p = pad_to_multiple(regions, stride, mode="constant")
    if mode == "full":
        origins = np.zeros((n_cells, 2), np.int64)
        present = np.bincount(regions.ravel(), minlength=n_cells + 1)[1:] > 0
        origins[~present] = -1
        size = padded.shape
    else:
        origins, size = crop_windows(regions_p, n_cells, padded.shape, margin, stride)
    per_item = size[0] * size[1] * model.bytes_per_pixel()
    if getattr(model, "device", "cpu") == "cpu":
        memory_mb = min(memory_mb, CPU_CALL_MB)
    batch = int(max(1, min(256, memory_mb * 2**20 // per_item)))
    todo = [k for k in range(n_cells) if origins[k, 0] >= 0]

    def window_of(k: int) -> tuple[slice, slice]:
        t, left = (int(v) for v in origins[k])
        return slice(t, t + size[0]), slice(left, left + size[1])

    keys: dict[int, bytes] = {}
    if memo is not None and mode == "crop":
        for k in todo:
            window = window_of(k)
            keys[k] = digest(regions_p[window] == k + 1, window)
        if used is not None:
            used.update(keys.values())
        known = {k for k in todo if keys[k] in memo}
    else:
        memo, known = None, set()
    run = [k for k in todo if k not in known]
    done = 0
    new: dict[int, np.ndarray] = {}  # with a memo: this call's maps, yielded after the last
    for start in range(0, len(run), batch):
        _check_cancel(cancel)
        chunk = run[start : start + batch]
        images = np.empty((len(chunk), 1, *size), np.float32)
        grads = np.empty_like(images)
        for i, k in enumerate(chunk):
            window = window_of(k)
            images[i, 0] = padded[window]
            grads[i, 0] = np.where(regions_p[window] == k + 1, grad_source[window], 0)
        result = model.guided(images, grads)
        for i, k in enumerate(chunk):
            t, left = (int(v) for v in origins[k])
            h, w = min(size[0], rows - t), min(size[1], cols - left)
            values = scale_map(result[i, 0, : max(h, 0), : max(w, 0)])
            if memo is None:
                if h > 0 and w > 0:
                    yield CellMap(k + 1, t, left, values)
            else:
                memo[keys[k]] = new[k] = values
        done += len(chunk)
        if progress is not None:
            progress(done / max(1, len(run)))
    if memo is not None:  # every cell in label order, as without a memo
        for k in todo:
            t, left = (int(v) for v in origins[k])
            values = new.get(k, memo[keys[k]])
            if values.size:
                yield CellMap(k + 1, t, left, values)
