"""Memo: what :func:`cellprop.engine.segment` computed on one image, kept for the next call
on it; :func:`digest`, the key everything in it is kept under.

A correction in the app segments the same image again from centres that differ by one: most
cells' maps, cuts and table rows come out as before. Each is kept under a digest of everything
it is computed from, so what is found is exactly what would be computed again.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["Memo", "digest"]


def digest(*parts) -> bytes:
    """A 16-byte digest of ``parts``: arrays by shape, type and bytes (boolean ones packed to
    bits), anything else by its ``repr``."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.shape}{part.dtype.str}".encode())
            data = np.packbits(part) if part.dtype == bool else np.ascontiguousarray(part)
            h.update(data.view(np.uint8).data)  # the array's own bytes, not a copy
        else:
            h.update(repr(part).encode())
    return h.digest()


class Memo:
    """What :func:`cellprop.engine.segment` computed on one image, kept so that segmenting the
    same image again from other centres (a correction in the app: a cell added or removed)
    redoes only what those centres change.

    Pass the same Memo to each call. It keeps the networks' input and likelihood, the
    boundary image, and each cell's contribution map and graph cut, each under a
    :func:`digest` of everything it was computed from: a cell whose centre region is the same
    reuses its map, a cell whose window of the projection is the same reuses its cut, anything
    else is computed again. The labels are therefore those of a call without it, byte for byte
    on the CPU (where a map does not depend on the cells batched with it). ``rows`` does the
    same for the cell table (``measure_image(..., memo=memo.rows)``). Another image, model or
    setting starts it afresh; only what the last call used is kept (17 MB for a 1040 x 1392
    C2C12 frame). One call at a time (not shared between threads).
    """

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.arrays: dict = {}  # the networks' input and output, the cut's image and edges
        self.maps: dict = {}  # cell map digest -> scaled contribution map (crop mode)
        self.cuts: dict = {}  # cut digest -> the cell's mask on its window
        self.rows: dict = {}  # for measure(memo=): cell digest -> its row of the cell table
        self.reused = {"maps": 0, "cuts": 0}  # of the last call, for tests and benchmarks

    def start(self, image: np.ndarray, model, cfg: dict) -> None:
        """Begin a call on ``image`` with ``model`` and resolved settings ``cfg``: keep what
        was computed on the same image, model and settings, forget anything else."""
        key = digest(image, id(model), model.name, json.dumps(cfg, sort_keys=True, default=str))
        if key != self.key:
            self.key, self.arrays, self.maps, self.cuts, self.rows = key, {}, {}, {}, {}
        self.reused = {"maps": 0, "cuts": 0}

    def keep_used(self, maps: set, cuts: set) -> None:
        """Forget the maps and cuts the last call did not use."""
        self.maps = {k: v for k, v in self.maps.items() if k in maps}
        self.cuts = {k: v for k, v in self.cuts.items() if k in cuts}
