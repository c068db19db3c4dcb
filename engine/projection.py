"""Maximum projection of the cells' contribution maps (METHOD.md section 4, Eq. 4-5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Projection", "project"]


@dataclass(frozen=True)
class Projection:
    """Each pixel's strongest contribution and the cell it comes from.

    Attributes
    ----------
    value : numpy.ndarray
        float32, max over cells of their scaled maps (C in the paper, fused); 0 = nobody's.
    owner : numpy.ndarray
        int32 label of the cell with that maximum; 0 where every map is 0.
    """

    value: np.ndarray
    owner: np.ndarray


def project(shape: tuple[int, int], maps: Iterable) -> Projection:
    """Fold cell maps into their maximum projection, one map at a time.

    Only the running maximum and its owner are kept, so memory does not grow with the number
    of cells and maps can come straight from batched propagation.

    Parameters
    ----------
    shape : (int, int)
        Shape of the network-scale image.
    maps : iterable of CellMap
        Objects with ``label``, ``top``, ``left`` and ``values`` (see
        :class:`cellprop.engine.propagate.CellMap`).

    Returns
    -------
    Projection
        Ties go to the cell seen first (lower label, in label order).
    """
    value = np.zeros(shape, np.float32)
    owner = np.zeros(shape, np.int32)
    for cell in maps:
        h, w = cell.values.shape
        window = (slice(cell.top, cell.top + h), slice(cell.left, cell.left + w))
        wins = cell.values > value[window]
        value[window][wins] = cell.values[wins]
        owner[window][wins] = cell.label
    return Projection(value=value, owner=owner)
