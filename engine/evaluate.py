"""Accuracy as the paper reports it (METHOD.md section 7), plus AP at IoU 0.5.

* Detection F1: predicted and annotated centres matched one-to-one within 10 px, maximising
  sum(exp(-0.01 d)) as the authors' code does; counts summed over images. Predicted centres are
  the detections (Detection_Center_X/Y of ``<stem>_cells.csv``) when present, as published;
  otherwise the centroids of the predicted labels.
* mDice: for every ground-truth cell, the predicted cell most frequent under it; Dice of the two
  whole objects (0 if none); averaged over ground-truth cells. Extra predictions cost nothing.
* AP50: instances matched at IoU > 0.5 (one-to-one by construction); TP / (TP + FP + FN).
* Links (cells followed over time, :func:`link_scores`): against masks that number each cell
  alike in every frame (the Cell Tracking Challenge's), a link between two predicted cells
  matched (IoU > 0.5) to true cells is right if those are one cell.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

from .graphcut import border_labels

__all__ = [
    "AP50_ERRORS",
    "DetectionCounts",
    "Scores",
    "ap50_errors",
    "ap_counts",
    "centroids",
    "f1_score",
    "compare_modes",
    "link_scores",
    "dice_per_cell",
    "evaluate_folder",
    "map_correlation",
    "match_points",
]


def match_points(true_xy, pred_xy, radius: float = 10.0) -> tuple[int, int, int]:
    """One-to-one matching of points within ``radius``; returns (tp, fp, fn).

    The matching maximises sum(exp(-0.01 d)) over pairs closer than ``radius`` (authors' code).
    """
    t = np.asarray(true_xy, float).reshape(-1, 2)
    p = np.asarray(pred_xy, float).reshape(-1, 2)
    if len(t) == 0 or len(p) == 0:
        return 0, len(p), len(t)
    d = np.hypot(t[:, None, 0] - p[None, :, 0], t[:, None, 1] - p[None, :, 1])
    weight = np.where(d <= radius, np.exp(-0.01 * d), 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    tp = int((d[rows, cols] <= radius).sum())
    return tp, len(p) - tp, len(t) - tp


def f1_score(tp: int, fp: int, fn: int) -> float:
    """Detection F1 from matched counts: 2 TP / (2 TP + FP + FN); 1.0 where there was
    nothing to find and nothing was found (an image without cells segmented as such). The one
    rule for ``cellprop evaluate``, training's checkpoint scores and docs/validation.md."""
    total = 2 * tp + fp + fn
    return 2 * tp / total if total else 1.0


class DetectionCounts:
    """Precision, recall and F1 of matched detection counts ``tp``, ``fp`` and ``fn``, for
    the classes that hold them (:class:`Scores`; training's checkpoint scores)."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return f1_score(self.tp, self.fp, self.fn)


def centroids(labels: np.ndarray) -> np.ndarray:
    """(x, y) centroid of every label present, in label order."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return np.zeros((0, 2))
    rc = np.array(ndi.center_of_mass(np.ones_like(labels, bool), labels, ids))
    return rc[:, ::-1]


#: True x predicted cells one image's overlap table may hold (8 bytes each, and as many again
#: for its IoU): 2 GB at most, some 11,000 cells each.
_MAX_PAIRS = 125_000_000


def _check_pairs(n_true: int, n_pred: int) -> None:
    """ValueError where an image's true and predicted ids (background included) are too many
    for one overlap table (a table of every pair: 60 GB at 90,000 cells; a traceback)."""
    if n_true * n_pred > _MAX_PAIRS:
        raise ValueError(
            f"{n_true - 1} true and {n_pred - 1} predicted cells in one image, too many to "
            "score together: score it in tiles (crop image, mask and labels alike)"
        )


@dataclass(frozen=True)
class _Overlap:
    """True x predicted labels of one image (background 0 included where present): their ids,
    the contingency table of pixel counts and IoU. Computed once per image, every instance
    score reads it."""

    t_ids: np.ndarray
    p_ids: np.ndarray
    table: np.ndarray
    iou: np.ndarray
    p_at_edge: np.ndarray  # bool per predicted id: touches the image border

    @classmethod
    def of(cls, true: np.ndarray, pred: np.ndarray) -> _Overlap:
        pred = np.asarray(pred)
        t_ids, t_inv = np.unique(np.asarray(true).astype(np.int64).ravel(), return_inverse=True)
        p_ids, p_inv = np.unique(pred.astype(np.int64).ravel(), return_inverse=True)
        _check_pairs(len(t_ids), len(p_ids))
        table = np.bincount(
            t_inv.ravel() * len(p_ids) + p_inv.ravel(), minlength=len(t_ids) * len(p_ids)
        ).reshape(len(t_ids), len(p_ids))
        union = table.sum(1)[:, None] + table.sum(0)[None, :] - table
        edge = np.isin(p_ids, border_labels(pred)) if pred.size else np.zeros(len(p_ids), bool)
        return cls(t_ids, p_ids, table, table / np.maximum(union, 1), edge)

    def matched(self, iou: float) -> tuple[np.ndarray, np.ndarray]:
        """Which true and which predicted ids (bool per id; background never) have a partner
        of IoU above ``iou``: one-to-one for ``iou`` >= 0.5."""
        hit = (self.iou > iou) & (self.t_ids > 0)[:, None] & (self.p_ids > 0)[None, :]
        return np.asarray(hit.any(1)), np.asarray(hit.any(0))


def _dice(o: _Overlap) -> np.ndarray:
    t_sizes, p_sizes = o.table.sum(1), o.table.sum(0)
    counts = np.where(o.p_ids[None, :] > 0, o.table, 0)[o.t_ids > 0]
    if counts.shape[1] == 0:
        return np.zeros(len(counts))
    j = np.argmax(counts, axis=1)
    best = counts[np.arange(len(counts)), j]
    dice = 2.0 * best / (t_sizes[o.t_ids > 0] + p_sizes[j])
    return np.where(best > 0, dice, 0.0).astype(float)


def dice_per_cell(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Dice of every ground-truth cell with the predicted cell most frequent under it.

    Returns one value per ground-truth label (in label order); 0 where no predicted cell lies
    under it.
    """
    return _dice(_Overlap.of(true, pred))


def _ap(o: _Overlap, iou: float) -> tuple[int, int, int]:
    tp = int(o.matched(iou)[0].sum())
    return tp, int((o.p_ids > 0).sum()) - tp, int((o.t_ids > 0).sum()) - tp


def ap_counts(true: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> tuple[int, int, int]:
    """(tp, fp, fn) of instances matched at IoU > ``iou`` (>= 0.5 makes matches unique)."""
    return _ap(_Overlap.of(true, pred), iou)


#: What each AP50 error is, in the order :func:`ap50_errors` tests for it. False positives (an
#: unmatched predicted cell) that cover no true cell by half or more and lie mostly on pixels
#: the truth leaves unlabelled: "unlabelled edge", it touches the image border (a cell the
#: truth omits there); "background", elsewhere. Every other one, by the true cell it covers
#: most: "second piece", that cell is matched by another prediction; "outline too small" /
#: "outline too large", that cell is matched by none and this prediction is smaller / larger
#: than it (a small cell's outline grown far into the background is "too large", not a cell
#: the truth omits). False negatives (an unmatched true cell), by the predicted cell most
#: frequent under it: "missed", none covers a fifth of it; "merged", that prediction is matched
#: to another true cell or has a quarter or more of its pixels on other true cells; "outline",
#: else (it is this cell's, with IoU at most the threshold).
AP50_ERRORS = (
    "fp unlabelled edge",
    "fp background",
    "fp second piece",
    "fp outline too small",
    "fp outline too large",
    "fn missed",
    "fn merged",
    "fn outline",
)


def ap50_errors(true: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> dict[str, int]:
    """Every AP50 false positive and false negative of one image, by kind (:data:`AP50_ERRORS`).

    The counts add up to the FP and FN of :func:`ap_counts` at the same ``iou``. They say where a
    score is lost: outlines that close too early, cells cut in two or merged, cells missed, or
    cells the truth does not label (Cell Tracking Challenge silver truth leaves some cells at
    the image edge unlabelled, ../shared/data/README.md): a report of what limits a score, not a
    different score.
    """
    return _errors(_Overlap.of(true, pred), iou)


def _errors(o: _Overlap, iou: float) -> dict[str, int]:
    t_ids, p_ids, table, at_edge = o.t_ids, o.p_ids, o.table, o.p_at_edge
    out = dict.fromkeys(AP50_ERRORS, 0)
    t_fg, p_fg = t_ids > 0, p_ids > 0
    t_matched, p_matched = o.matched(iou)
    t_sizes, p_sizes = table.sum(1), table.sum(0)
    cells = np.where(t_fg[:, None], table, 0)  # overlaps with true cells only
    for j in np.flatnonzero(p_fg & ~p_matched):
        i = int(np.argmax(cells[:, j]))
        covers_a_cell = cells[i, j] > 0 and cells[i, j] >= 0.5 * t_sizes[i]
        if not covers_a_cell and table[~t_fg, j].sum() > 0.5 * p_sizes[j]:
            out["fp unlabelled edge" if at_edge[j] else "fp background"] += 1
            continue
        if t_matched[i]:
            out["fp second piece"] += 1
        else:
            small = p_sizes[j] < t_sizes[i]
            out["fp outline too small" if small else "fp outline too large"] += 1
    preds = np.where(p_fg[None, :], table, 0)
    for t in np.flatnonzero(t_fg & ~t_matched):
        best = int(np.argmax(preds[t]))
        if preds[t, best] < 0.2 * t_sizes[t]:
            out["fn missed"] += 1
        elif p_matched[best] or cells[:, best].sum() - cells[t, best] >= 0.25 * p_sizes[best]:
            out["fn merged"] += 1
        else:
            out["fn outline"] += 1
    return out


@dataclass
class Scores(DetectionCounts):
    """Summed counts and pooled per-cell Dice over images, and the ratios from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    dice: list = field(default_factory=list)
    ap_tp: int = 0
    ap_fp: int = 0
    ap_fn: int = 0
    ap75_counts: list = field(default_factory=lambda: [0, 0, 0])  # tp, fp, fn at IoU 0.75
    # The AP50 false positives and negatives by kind (ap50_errors), summed over images.
    ap50_errors: dict = field(default_factory=lambda: dict.fromkeys(AP50_ERRORS, 0))
    per_image: list = field(default_factory=list)
    radius: float = 10.0  # the detection matching radius, pixels
    # Each image's own figures, for resampling (interval): detection (tp, fp, fn); the sum and
    # count of its true cells' Dice; its AP50 (tp, fp, fn).
    image_points: list = field(default_factory=list)
    image_instances: list = field(default_factory=list)
    # What of the dataset was passed over, in words (masks or points naming no image, images
    # without a mask beside others that have one): said, where a score left them out unsaid
    notes: list = field(default_factory=list)

    def add_points(self, tp: int, fp: int, fn: int) -> None:
        """Add one image's detection counts (:func:`match_points`)."""
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.image_points.append((tp, fp, fn))

    def interval(
        self, metric: str, level: float = 0.95, rounds: int = 2000, seed: int = 0
    ) -> tuple[float, float] | None:
        """A bootstrap interval of a pooled score ("f1", "mdice" or "ap50"): the images are
        drawn again with replacement ``rounds`` times, the score pooled over each draw as over
        the images themselves, and the central ``level`` of those scores returned (None with
        fewer than two images: one cannot say how much the score rests on it). It says how
        much the score rests on which images were chosen; the frames of one time-lapse are
        alike, so the spread over other sequences is wider."""
        draw = self._draws(metric, rounds, seed)
        if draw is None:
            return None
        return _central(self._drawn(metric, draw), level)

    def difference_interval(
        self, other: Scores, metric: str, level: float = 0.95, rounds: int = 2000, seed: int = 0
    ) -> tuple[float, float] | None:
        """The same for this score minus ``other``'s, scored on the same images: both drawn
        alike (paired), so that what the images share cancels. None where the two were not
        scored on as many images, or on fewer than two."""
        draw = self._draws(metric, rounds, seed)
        if draw is None or len(other._images(metric)) != draw.shape[1]:
            return None
        return _central(self._drawn(metric, draw) - other._drawn(metric, draw), level)

    def _images(self, metric: str) -> list:
        if metric not in ("f1", "mdice", "ap50"):
            raise ValueError(f"no interval for {metric!r}: f1, mdice or ap50")
        return self.image_points if metric == "f1" else self.image_instances

    def _draws(self, metric: str, rounds: int, seed: int) -> np.ndarray | None:
        """``rounds`` draws of image indexes with replacement; None for fewer than 2 images."""
        n = len(self._images(metric))
        if n < 2:
            return None
        return np.random.default_rng(seed).integers(0, n, size=(rounds, n))

    def _drawn(self, metric: str, draw: np.ndarray) -> np.ndarray:
        """The pooled score of each draw (a row of image indexes); NaN for a draw that has
        no score, as the headline has none for no images of the kind (a draw of empty masks
        alone has no true cell for mDice: not a score of 0, which pulled an interval's low
        end to 0 where a set holds an empty field)."""
        if metric == "f1":
            tp, fp, fn = np.array(self.image_points, float).T
            t = tp[draw].sum(1)
            return _ratio(2 * t, 2 * t + fp[draw].sum(1) + fn[draw].sum(1))
        dice_sum, cells, tp, fp, fn = np.array(self.image_instances, float).T
        if metric == "mdice":
            return _ratio(dice_sum[draw].sum(1), cells[draw].sum(1))
        return _ratio(tp[draw].sum(1), (tp + fp + fn)[draw].sum(1))

    def add_instances(
        self, true: np.ndarray, pred: np.ndarray, overlap: _Overlap | None = None
    ) -> dict:
        """Add one image's instance scores against its mask; returns that image's figures.

        Dice of every true cell (pooled for mDice), the AP counts at IoU 0.5 and 0.75, and the
        AP50 errors by kind. ``overlap``: theirs (:class:`_Overlap`), where known already.
        """
        overlap = overlap if overlap is not None else _Overlap.of(true, pred)
        dice = _dice(overlap)
        self.dice.extend(dice.tolist())
        tp, fp, fn = _ap(overlap, 0.5)
        self.ap_tp, self.ap_fp, self.ap_fn = self.ap_tp + tp, self.ap_fp + fp, self.ap_fn + fn
        strict = _ap(overlap, 0.75)
        self.ap75_counts = [a + b for a, b in zip(self.ap75_counts, strict, strict=True)]
        for kind, n in _errors(overlap, 0.5).items():
            self.ap50_errors[kind] += n
        self.image_instances.append((float(dice.sum()), len(dice), tp, fp, fn))
        return {
            "mdice": float(dice.mean()) if len(dice) else None,
            "ap50": tp / max(1, tp + fp + fn),
            "ap75": strict[0] / max(1, sum(strict)),
        }

    @property
    def mdice(self) -> float | None:
        return float(np.mean(self.dice)) if self.dice else None

    @property
    def ap50(self) -> float | None:
        total = self.ap_tp + self.ap_fp + self.ap_fn
        return self.ap_tp / total if total else None

    @property
    def ap75(self) -> float | None:
        """AP at IoU 0.75: how closely outlines fit, where AP50 saturates."""
        total = sum(self.ap75_counts)
        return self.ap75_counts[0] / total if total else None

    def report(self) -> dict:
        pointed = bool(self.image_points)  # no points scored: no F1 (it read 1.0 of nothing)
        return {
            # the images scored (per_image lists those not scored too, and why)
            "images": sum(1 for e in self.per_image if not (e.get("missing") or e.get("error"))),
            "detection": {
                "f1": self.f1 if pointed else None,
                "precision": self.precision if pointed else None,
                "recall": self.recall if pointed else None,
                "tp": self.tp,
                "fp": self.fp,
                "fn": self.fn,
                "radius_px": self.radius,
            },
            "mdice": self.mdice,
            "mdice_cells": len(self.dice),
            "ap50": self.ap50,
            "ap50_counts": {"tp": self.ap_tp, "fp": self.ap_fp, "fn": self.ap_fn},
            "ap50_errors": dict(self.ap50_errors),
            "ap75": self.ap75,
            "ap75_counts": dict(zip(("tp", "fp", "fn"), self.ap75_counts, strict=True)),
            # 95%, the images resampled (interval); None for fewer than two images
            "intervals": {m: self.interval(m) for m in ("f1", "mdice", "ap50")},
            "per_image": self.per_image,
            "notes": self.notes,
        }


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """``part / whole``, NaN where ``whole`` is 0 (nothing to score)."""
    out = np.full(part.shape, np.nan)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


def _central(values: np.ndarray, level: float) -> tuple[float, float] | None:
    """The central ``level`` of ``values`` that are scores: (low, high) percentiles; the
    draws without a score (NaN) are left out, and None is returned where none has one."""
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _detections(table: Path) -> np.ndarray | None:
    """Detected centres (x, y) from a per-image cells CSV, if it has them; None where it has
    not, or cannot be read (cut short, edited into words: the outlines' centroids then)."""
    if not table.is_file():
        return None
    try:
        with open(table, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if "Detection_Center_X" not in (reader.fieldnames or []):
                return None
            xy = [(float(r["Detection_Center_X"]), float(r["Detection_Center_Y"])) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
        return None
    return np.array(xy, float).reshape(-1, 2)


def _find_prediction(pred_dir: Path, stem: str) -> Path | None:
    for name in (
        f"{stem}_labels.tif",
        f"{stem}_labels.tiff",
        f"{stem}.tif",
        f"{stem}.tiff",
        f"{stem}.png",
    ):
        if (pred_dir / name).is_file():
            return pred_dir / name
    return None


def _label_image(path: Path) -> np.ndarray:
    """A prediction or mask read as a label image: whole numbers from 0 (a float TIFF of
    whole numbers as Fiji saves labels, too), never a colour image, fractions or negative
    numbers, which would be scored as cells cut to whole numbers.

    Raises
    ------
    ImageError
        It cannot be read (names it); ValueError (NotLabels) where it is no label image.
    """
    from .io import read_image
    from .output import NotLabels, as_labels

    read = read_image(path)
    if read.is_colour_file:
        raise NotLabels(f"{path}: not a label image (a colour image)")
    return as_labels(read.pixels, path)


def _truth(path: Path) -> tuple[np.ndarray, str]:
    """A mask read as the true cells (:func:`_label_image`), and a note: a mask of one value
    in separate spots (a black-and-white mask, every cell 255) has a cell in each spot, and
    says so; it was scored as one cell an image (mDice 0.25 for 0.87, unsaid)."""
    from .output import spots_as_cells

    labels, said = spots_as_cells(_label_image(path))
    return labels, f"{path.name}: {said}, each taken as a cell" if said else ""


def _pixels_of(image: Path) -> np.ndarray | None:
    """A dataset image's pixels (its first plane), or None where it cannot be read."""
    from .errors import ImageError
    from .io import read_image

    try:
        return read_image(image).pixels
    except ImageError:
        return None


def _same_pixels(labels: np.ndarray, pixels: np.ndarray) -> bool:
    """Whether ``labels`` are an image's own ``pixels``, not all 0: an image copied for its
    prediction (a blank image's prediction of no cell is one)."""
    return bool(pixels.shape == labels.shape and labels.any() and np.array_equal(pixels, labels))


def _made_from(pred_dir: Path) -> dict[str, dict]:
    """The summary.csv rows of the cellprop run that wrote ``pred_dir``, by image name
    (empty where there is none, or it cannot be read): where each prediction was made from."""
    import csv

    try:
        with open(pred_dir / "summary.csv", newline="", encoding="utf-8") as fh:
            return {r["Image"]: r for r in csv.DictReader(fh) if r.get("Image")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError):
        return {}


def _other_pixels(image: Path, row: dict) -> bool:
    """Whether the run's row (summary.csv) of ``image`` records other pixels than the
    image's (its ``Digest``): the prediction was made from another image of that name (another
    dataset's, or another page of a file whose pages the dataset holds as images). False
    where the row records none."""
    from .batch import read_plane
    from .io import pixels_digest
    from .journal import row_channel

    digest, page = row.get("Digest") or "", row.get("Page") or ""
    if not digest:
        return False
    plane = read_plane(image, channel=row_channel(row))
    if page.isdigit() and plane.n_pages > 1 and int(page) > 0:
        return True  # the file itself, another of its pages than the first, which is scored
    return pixels_digest(plane.pixels) != digest


def evaluate_folder(dataset: str | Path, pred_dir: str | Path, radius: float = 10.0) -> Scores:
    """Score predicted label images against a dataset folder (shared/data layout).

    Parameters
    ----------
    dataset : path
        Folder with ``images/``, ``points.csv`` and optionally ``masks/<stem>.tif``.
    pred_dir : path
        Folder with ``<stem>_labels.tif`` (as ``cellprop segment`` writes) or ``<stem>.tif``.
    radius : float
        Detection matching radius, pixels.

    Returns
    -------
    Scores
        Detection counts over images with points, Dice and AP over images with masks.
        Images without a prediction are listed in ``per_image`` with ``"missing": true``,
        those whose prediction or mask cannot be read or differ in size, or whose
        prediction a cellprop run made from other pixels than the image's (its summary.csv
        says: another dataset's image of the same name), with ``"error"`` (why), and not
        scored.

    Raises
    ------
    FileNotFoundError
        No images folder, or not one prediction found.
    """
    from .errors import ImageError
    from .io import IMAGE_EXTENSIONS, plane_size, points_outside

    dataset, pred_dir = Path(dataset), Path(pred_dir)
    images = dataset / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"{dataset}: no images/ folder (expected the dataset layout)")
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: no such folder of predictions")
    if pred_dir.resolve() == images.resolve():  # the images given for their labels
        raise ValueError(
            f"{pred_dir}: the dataset's own images, not predictions; give the folder of "
            "cellprop segment's results"
        )
    if pred_dir.resolve() == (dataset / "masks").resolve():  # the truth scored against itself
        raise ValueError(
            f"{pred_dir}: the dataset's own masks, not predictions; give the folder of "
            "cellprop segment's results"
        )
    points = _dataset_points(dataset)
    scores = Scores(radius=radius)
    found = 0
    made = _made_from(pred_dir)
    listed = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if "" in points and len(listed) == 1:  # x,y alone (Fiji's table) for the one image
        points[listed[0].name] = points.pop("")
    mask_files = _mask_files(dataset / "masks")
    used_masks: set = set()
    stems = Counter(p.stem for p in listed)
    for image in listed:
        pred_path = _find_prediction(pred_dir, image.stem)
        if pred_path is None:
            scores.per_image.append({"image": image.name, "missing": True})
            continue
        found += 1
        if stems[image.stem] > 1:  # t021.tif and t021.png: a prediction of either, or both
            named = ", ".join(p.name for p in listed if p.stem == image.stem)
            scores.per_image.append(
                {
                    "image": image.name,
                    "error": f"{images}: {named} have one name; which of them "
                    f"{pred_path.name} is of cannot be told (rename or remove one)",
                }
            )
            continue
        # masks/<stem>.tif, .tiff or .png, the extension in any case (crop1.TIF too)
        kinds = [mask_files.get(f"{image.stem}{ext}".lower()) for ext in (".tif", ".tiff", ".png")]
        mask = next((m for m in kinds if m is not None), dataset / "masks" / f"{image.stem}.tif")
        used_masks.add(mask)
        try:  # one unreadable or mismatched file is that image's failure, not the whole run's
            pred = _label_image(pred_path)
            true, spots = _truth(mask) if mask.is_file() else (None, "")
            own = _pixels_of(image)  # (a 3-D stack's from its header; None where it
            size = own.shape[:2] if own is not None else plane_size(image)  # cannot say)
            for path, labels in ((mask, true), (pred_path, pred)):
                ought = size if size is not None else pred.shape
                if labels is not None and tuple(labels.shape) != tuple(ought):
                    raise ValueError(
                        f"{path}: {labels.shape[1]} x {labels.shape[0]} pixels, not the size "
                        f"of {image if size is not None else pred_path} ({ought[1]} x {ought[0]})"
                    )
            # (too many cells to score together: named before any of it is scored)
            overlap = _Overlap.of(true, pred) if true is not None else None
            if own is not None and _same_pixels(pred, own):
                raise ValueError(
                    f"{pred_path}: the pixels of {image}, not its cells' labels (a copy of the "
                    "dataset's images?); give the folder of cellprop segment's results"
                )
            if image.name in made and _other_pixels(image, made[image.name]):
                row = made[image.name]
                where = row.get("Path") or "another file"
                where += f" page {row['Page']}" if row.get("Page") else ""
                raise ValueError(
                    f"{pred_path}: made from other pixels than {image} (from {where}, "
                    "says the run's summary.csv: another image of the same name?)"
                )
        except (ValueError, ImageError) as exc:
            scores.per_image.append({"image": image.name, "error": str(exc)})
            continue
        entry: dict = {
            "image": image.name,
            "prediction": pred_path.name,
            "cells": int(len(np.unique(pred)) - (pred.min() == 0)),
        }
        if spots:
            entry["note"] = spots
        clicked = points.get(image.name)
        if clicked is None:  # its file converted since (t070.tif -> t070.png): by its stem
            alike = [k for k in points if Path(k).stem == image.stem]
            clicked = points[alike[0]] if len(alike) == 1 else None
        if clicked is not None and size is not None:  # said, as training and segment say it
            off, (rows, cols) = points_outside(clicked, size), size
            said = (
                f"{off} of its {len(clicked)} points lie outside its {cols} x {rows} pixels "
                "(saved in micrometres? counted from 1?): counted as cells missed"
            )
            if off:
                entry["note"] = f"{entry['note']}; {said}" if entry.get("note") else said
        if clicked is not None:
            detected = _detections(pred_path.parent / f"{image.stem}_cells.csv")
            if detected is not None and len(detected) != entry["cells"]:
                detected = None  # its table is not of these labels (edited since): their own
            entry["points"] = "detections" if detected is not None else "centroids"
            predicted = detected if detected is not None else centroids(pred)
            tp, fp, fn = match_points(clicked, predicted, radius)
            scores.add_points(tp, fp, fn)
            entry.update(tp=tp, fp=fp, fn=fn)
        if true is not None:
            entry.update(scores.add_instances(true, pred, overlap))
        scores.per_image.append(entry)
    inside = sorted(p.name for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))
    folders = (
        f"images/ {', '.join(inside[:3])}{' ...' if len(inside) > 3 else ''}: folders, not "
        "looked into (a dataset's images lie in images/ itself; give each folder's as a "
        "dataset of its own)"
        if inside
        else ""
    )
    if found == 0:
        raise FileNotFoundError(
            f"{pred_dir}: no predicted label image for any image of {images}"
            + (f"; {folders}" if folders else "")
        )
    scores.notes += [folders] if folders else []
    scores.notes += _passed_over(listed, points, mask_files, used_masks, scores.per_image)
    return scores


def _dataset_points(dataset: Path) -> dict:
    """The clicked centres of a dataset, by image name, as training reads them: its
    points.csv, or points/<image>.csv (.txt, .tsv) one file per image (it said "no points"
    of a set training read)."""
    from .io import POINTS_SUFFIXES, read_points

    if (dataset / "points.csv").is_file():
        return read_points(dataset / "points.csv")
    folder = dataset / "points"
    if not folder.is_dir():
        return {}
    points: dict = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in POINTS_SUFFIXES and not path.name.startswith("."):
            for name, xy in read_points(path).items():
                points[name or path.stem] = xy  # x,y rows: the image it is named after
    return points


def _mask_files(folder: Path) -> dict[str, Path]:
    """The label images of a dataset's ``masks/``, by their names in lower case."""
    if not folder.is_dir():
        return {}
    kinds = (".tif", ".tiff", ".png")
    return {
        p.name.lower(): p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in kinds and not p.name.startswith(".")
    }


def _passed_over(listed, points: dict, mask_files: dict, used: set, per_image: list) -> list:
    """What of a dataset a score passed over, in words: masks that name no image, images
    scored without a mask where others have one, points.csv's names of no image."""
    notes = []
    unused = sorted(p.name for p in mask_files.values() if p not in used)
    if unused:
        notes.append(
            f"masks/ {', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}: of no image "
            "(a mask is named as its image, masks/<image stem>.tif or .png), not scored"
        )
    if mask_files:
        scored = {e["image"] for e in per_image if "cells" in e and "mdice" not in e}
        bare = [p.name for p in listed if p.name in scored]
        if bare:
            notes.append(
                f"no mask for {', '.join(bare[:5])}{' ...' if len(bare) > 5 else ''} "
                "(masks/<image stem>.tif or .png): left out of mDice and AP"
            )
    known = {p.name for p in listed} | {p.stem for p in listed}
    strays = sorted(k for k in points if k and k not in known and Path(k).stem not in known)
    if strays:
        notes.append(
            f"points.csv names {', '.join(strays[:5])}{' ...' if len(strays) > 5 else ''}, "
            "of no image in images/ (the names must be the images' own, case and all): "
            "their centres not scored"
        )
    return notes


def _matches(true: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> dict[int, int]:
    """Predicted label -> the true label it matches at IoU > ``iou`` (one-to-one)."""
    o = _Overlap.of(true, pred)
    t, p = np.nonzero((o.iou > iou) & (o.t_ids > 0)[:, None] & (o.p_ids > 0)[None, :])
    return {int(o.p_ids[j]): int(o.t_ids[i]) for i, j in zip(t, p, strict=True)}


def _true_mothers(before: np.ndarray, after: np.ndarray) -> dict[int, int]:
    """True daughters of ``after`` -> their mother in ``before``: cells whose number is new
    and that lie most on a cell whose number ends at ``before``."""
    o = _Overlap.of(before, after)
    ended = ~np.isin(o.t_ids, o.p_ids) & (o.t_ids > 0)
    new = ~np.isin(o.p_ids, o.t_ids) & (o.p_ids > 0)
    found = {}
    for j in np.flatnonzero(new):
        counts = np.where(o.t_ids > 0, o.table[:, j], 0)
        i = int(np.argmax(counts))
        if counts[i] > 0 and ended[i]:
            found[int(o.p_ids[j])] = int(o.t_ids[i])
    return found


def link_scores(truth: list, predicted: list, settings=None) -> dict[str, int]:
    """How well the cells of ``predicted`` (label images of consecutive time points) are
    followed (:func:`cellprop.engine.track.track_frames`), against ``truth`` (the same time
    points' masks, each cell numbered alike in every frame). Between each two time points:
    of the links (not divisions) between predicted cells matched to true cells at IoU > 0.5
    at both, how many join one cell (``right``) or two (``wrong``); of the true links (a number
    in both frames) whose cells are both matched, how many the prediction makes (``found``
    of ``true_links``); the daughter cells it calls (``daughters``), how many of them match a
    true daughter whose mother their mother matches (``daughters_right``), and the true
    daughters (``true_daughters``: a cell numbered anew that lies most on a cell whose number
    ends there). A gap closed (a cell linked to one further back than the time point before)
    counts among ``gaps``, and among ``gaps_right`` where its two cells match one true cell;
    its link counts as a link (``right`` or ``wrong``) too. ``true_gaps``: true cells matched
    at a time point and two before it but not at the one between (the segmentation missed
    them there), ``gaps_found``: how many of those keep their track across."""
    from .track import track_frames

    tracks = track_frames(predicted, settings)
    names = ("right", "wrong", "true_links", "found", "daughters", "daughters_right")
    gaps = ("gaps", "gaps_right", "true_gaps", "gaps_found")
    scores = dict.fromkeys((*names, "true_daughters", *gaps), 0)
    matched = [_matches(t, p) for t, p in zip(truth, predicted, strict=True)]
    for step in range(1, len(predicted)):
        links = tracks.links[step]
        after = matched[step]
        steps = links.steps().tolist()
        for k, (source, back) in enumerate(zip(links.source.tolist(), steps, strict=True), 1):
            earlier = matched[step - back]
            if source and not links.daughter[k - 1] and source in earlier and k in after:
                same = earlier[source] == after[k]
                scores["right" if same else "wrong"] += 1
                if back > 1:
                    scores["gaps"] += 1
                    scores["gaps_right"] += bool(same)
        before = matched[step - 1]
        cell_before = {t: p for p, t in before.items()}
        two_before = {t: p for p, t in matched[step - 2].items()} if step >= 2 else {}
        for true_id, k in ((t, p) for p, t in after.items()):
            if true_id in cell_before:
                scores["true_links"] += 1
                made = links.source[k - 1] == cell_before[true_id] and not links.daughter[k - 1]
                scores["found"] += bool(made and steps[k - 1] == 1)
            elif true_id in two_before:
                # a true cell outlined two time points back, missed at the one between
                scores["true_gaps"] += 1
                was = two_before[true_id]
                same = tracks.labels[step - 2][was - 1] == tracks.labels[step][k - 1]
                scores["gaps_found"] += bool(same)
        mothers = _true_mothers(truth[step - 1], truth[step])
        scores["true_daughters"] += len(mothers)
        scores["daughters"] += int(links.daughter.sum())
        for k in (np.flatnonzero(links.daughter) + 1).tolist():
            mother = before.get(int(links.source[k - 1]))
            true_daughter = after.get(k)
            if mother is not None and true_daughter is not None:
                scores["daughters_right"] += mothers.get(true_daughter) == mother
    return scores


def map_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps over the same pixels (1.0 when both are constant)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt((da * da).sum() * (db * db).sum())
    if denom == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((da * db).sum() / denom)


def compare_modes(image: np.ndarray, model, settings=None) -> dict:
    """Crop-mode propagation against the paper's full-image propagation on one image.

    Detection runs once; both modes propagate from the same cells. Each cell's two maps are
    compared on its neighbourhood: the pixels within one cell diameter of its centre (network
    scale). The final label images of the two modes are compared by mDice (full as truth).

    Returns
    -------
    dict
        ``cells``, per-cell ``correlations`` (list), their ``min``/``median``/``p05``,
        ``seconds_crop``/``seconds_full`` (propagation only) and ``ratio``, ``labels_mdice``,
        ``segment_seconds_crop``/``segment_seconds_full`` (whole pipeline).
    """
    import time
    from dataclasses import replace

    from .pipeline import Settings, detect_cells, network_input, resolve_settings, segment
    from .propagate import likelihood_map, propagate_cells

    settings = settings or Settings()
    cfg = resolve_settings(model, settings)
    net = network_input(image, model, cfg)
    lik = likelihood_map(model, net, cfg["memory_mb"])
    centres, regions = detect_cells(lik, cfg)
    n = len(centres)
    maps, seconds = {}, {}
    for mode in ("crop", "full"):
        t0 = time.perf_counter()
        maps[mode] = {
            m.label: m
            for m in propagate_cells(
                model, net, lik, regions, n, mode, cfg["propagation_margin_px"], cfg["memory_mb"]
            )
        }
        seconds[mode] = time.perf_counter() - t0
    radius = (model.cell_diameter_px or 16.0) * cfg["scale"] / model.scale
    rr, cc = np.ogrid[: net.shape[0], : net.shape[1]]
    correlations = []
    for label, crop in maps["crop"].items():
        full = maps["full"][label]
        r, c = centres[label - 1]
        near = (rr - r) ** 2 + (cc - c) ** 2 <= radius**2
        a = np.zeros(net.shape, np.float32)
        a[
            crop.top : crop.top + crop.values.shape[0], crop.left : crop.left + crop.values.shape[1]
        ] = crop.values
        correlations.append(map_correlation(a[near], full.values[near]))
    labels, seg_seconds = {}, {}
    for mode in ("crop", "full"):
        t0 = time.perf_counter()
        labels[mode] = segment(image, model, replace(settings, propagation=mode)).labels
        seg_seconds[mode] = time.perf_counter() - t0
    dice = dice_per_cell(labels["full"], labels["crop"])
    corr = np.asarray(correlations) if correlations else np.ones(1)
    return {
        "cells": n,
        "correlations": [round(v, 5) for v in correlations],
        "min": float(corr.min()),
        "p05": float(np.percentile(corr, 5)),
        "median": float(np.median(corr)),
        "seconds_crop": seconds["crop"],
        "seconds_full": seconds["full"],
        "ratio": seconds["full"] / max(seconds["crop"], 1e-9),
        "labels_mdice": float(dice.mean()) if len(dice) else 1.0,
        "segment_seconds_crop": seg_seconds["crop"],
        "segment_seconds_full": seg_seconds["full"],
    }
