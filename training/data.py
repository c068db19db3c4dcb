"""Training data: images and their clicked cell centres, read from dataset folders.

A dataset folder holds ``images/`` and the cell centres in one of three forms::

    DATASET/images/<stem>.<ext>     the microscopy images (TIFF 8/16-bit, PNG, JPEG, BMP)
    DATASET/points.csv              image,x,y  one row per cell (x = column, y = row, pixels)
    DATASET/points/<stem>.csv       x,y        one file per image (header optional)
    DATASET/markers/<stem>.<ext>    label image of markers; each label's centroid is a centre

Only centres are read: instance masks (``masks/``) are never used for training.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath

import numpy as np
from cellprop.engine.batch import points_in_units
from cellprop.engine.errors import ImageError, PointsError
from cellprop.engine.io import (
    IMAGE_EXTENSIONS,
    POINTS_SUFFIXES,
    count_pages,
    read_image,
    read_points,
)
from cellprop.engine.normalise import finite_filled
from cellprop.engine.output import read_training_sources, spots_as_cells

__all__ = [
    "Sample",
    "DatasetError",
    "load_dataset",
    "load_datasets",
    "read_points_csv",
    "source_channel",
]


class DatasetError(ValueError):
    """A dataset folder or file cannot be used; the message names the file."""


@dataclass
class Sample:
    """One training image with its cell centres.

    Attributes
    ----------
    name : str
        ``<dataset>/<image file name>``, unique across datasets.
    path : Path
        The image file.
    pixels : ndarray
        2-D raw pixels (original dtype).
    points : ndarray [N, 2]
        Cell centres as (x, y) = (column, row) in original pixels.
    """

    name: str
    path: Path
    pixels: np.ndarray
    points: np.ndarray = field(repr=False)


def read_points_csv(path: Path) -> dict[str, np.ndarray]:
    """Cell centres from a CSV file (:func:`cellprop.engine.io.read_points`, which
    ``cellprop segment --points`` reads too); errors as :class:`DatasetError`."""
    try:
        return read_points(path)
    except PointsError as exc:
        raise DatasetError(str(exc)) from None


def _marker_centres(path: Path, notes: list[str] | None = None) -> tuple[np.ndarray, tuple]:
    """(x, y) centroids of the labels of a marker image (0 = background), and its size. An
    image of one value in separate spots (a black-and-white mask, as Fiji makes from a point
    selection) has a cell in each spot: taken as one label, their mean would be one centre
    where no cell lies. Said in ``notes``."""
    from scipy import ndimage

    try:
        data = read_image(path)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    if data.is_colour_file or data.n_channels > 1:  # (its grey would be taken for labels)
        raise DatasetError(f"{path}: a marker image must be one channel of labels, not colour")
    labels = data.pixels
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: marker image must hold integer labels, not {labels.dtype}")
    labels, said = spots_as_cells(labels)
    if said and notes is not None:
        notes.append(f"{path}: {said}, a black-and-white mask: each spot taken as a cell's marker")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros((0, 2)), labels.shape
    centres = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return np.asarray([(c, r) for r, c in centres], dtype=np.float64), labels.shape


def _read_pixels(path: Path, channel: int = 0):
    """The image trained on (engine ``ImageData``), its pixels as segmentation reads them:
    NaN and infinite pixels filled (a few made the whole image read as flat, all zeros, its
    cells still taught on it)."""
    try:
        data = read_image(path, channel=channel)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    return replace(data, pixels=finite_filled(data.pixels))


def _image_files(folder: Path) -> list[Path]:
    """The images of ``folder``, in name order; not hidden files (the ``._0000.png`` that
    macOS writes beside each file on a shared or exFAT drive), as segmenting leaves them."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _points_files(folder: Path) -> list[Path]:
    """The points files of a ``points/`` folder, in name order; not hidden files. Two of one
    image (0000.csv and 0000.txt) are refused: which holds its centres cannot be told."""
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in POINTS_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )
    stems = Counter(p.stem for p in files)
    twice = sorted(p.name for p in files if stems[p.stem] > 1)
    if twice:
        raise DatasetError(
            f"{folder}: {' and '.join(twice[:2])} are the centres of one image: keep one"
        )
    return files


#: Centres nearer than this (pixels) to one clicked before it are that cell clicked twice.
REPEAT_PX = 2.0


def _without_repeats(points: np.ndarray) -> tuple[np.ndarray, int]:
    """``points`` less those within :data:`REPEAT_PX` of one before them (a cell clicked
    twice, or two exports of the same clicks pasted together), and how many went."""
    from scipy.spatial import cKDTree

    keep = np.ones(len(points), bool)
    for i, j in sorted(cKDTree(points).query_pairs(REPEAT_PX)):
        if keep[i]:
            keep[j] = False
    return points[keep], int((~keep).sum())


def _named(by_name: dict, files: list[Path], where: Path, how: str) -> None:
    """DatasetError where the centres ``by_name`` (read from ``where``) name images that
    ``files`` (images/) lack, or name by its stem one of two images of that stem."""
    known = {p.name for p in files} | {p.stem for p in files}
    unknown = sorted(set(by_name) - known - {""})
    if unknown:
        raise DatasetError(
            f"{where}: images not found in {files[0].parent}: {', '.join(unknown[:5])}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            + f" ({how}{_naming_hint(unknown, known)})"
        )
    stems = Counter(p.stem for p in files)
    for key in by_name:
        if stems.get(key, 0) > 1 and key not in {p.name for p in files}:
            both = sorted(p.name for p in files if p.stem == key)
            raise DatasetError(
                f"{where}: {key} names {' and '.join(both)}, which cannot be told apart: name "
                "the image with its extension"
            )


def _naming_hint(unknown: list[str], known: set[str]) -> str:
    """What the first of ``unknown`` names would have to be to name an image of ``known``:
    its file name alone, not a path; its letters in the file's case."""
    lower = {k.lower(): k for k in known}
    for name in unknown:
        base = PureWindowsPath(name).name  # a path of either system's, C:\\data\\0000.png too
        if base != name and base in known:
            return f"; name an image by its file name alone: {base}, not {name}"
        if name.lower() in lower:
            return f"; the names differ in case: {name} is not {lower[name.lower()]}"
    return ""


def _file_points(csv_path: Path) -> np.ndarray:
    """The centres of a ``points/<image>.csv``: its x,y rows; rows with an image column are
    taken where they name its image (the file's own name), else the file is refused."""
    got = read_points_csv(csv_path)
    if not got:  # empty, or a header alone: no centres, its image left out as any such
        return np.zeros((0, 2))
    if "" in got:
        return got[""]
    own = csv_path.stem
    mine = [v for k, v in got.items() if k in (own, Path(own).stem) or Path(k).stem == own]
    if not mine:
        raise DatasetError(
            f"{csv_path}: its rows name other images ({', '.join(sorted(got)[:3])}); a file of "
            "points/ holds the x,y of the image it is named after"
        )
    return np.concatenate(mine)


def load_dataset(
    folder: str | Path,
    read_pixels: bool = True,
    channel: int = 0,
    notes: list[str] | None = None,
    label: str | None = None,
) -> list[Sample]:
    """Read every annotated image of one dataset folder (layouts in the module docstring).

    Images without any centre are skipped: with no cells marked, their background would teach
    the network that cells there are background (they are named in ``notes``). A centre
    within :data:`REPEAT_PX` of another of its image is that cell clicked twice: counted once,
    and said in ``notes``. Centres outside the image, and centres naming no image of the
    folder, are errors.

    Parameters
    ----------
    folder : path
        The dataset folder (holding ``images/``).
    read_pixels : bool
        False to read only the annotations (pixels left empty), e.g. for a summary.
    channel : int
        The channel of the images to read, from 0 (a colour image's: 0 grey, 1 red, 2 green,
        3 blue); an image without it is an error naming the file.
    notes : list of str, optional
        Receives a line for what was left out or merged, naming the files.
    label : str, optional
        What the samples' names start with (default the folder's name).

    Returns
    -------
    list of Sample
        Sorted by image file name.
    """
    folder = Path(folder)
    images_dir = folder / "images"
    if not images_dir.is_dir():
        raise DatasetError(f"{folder}: not a dataset folder (it has no images/ folder)")
    files = _image_files(images_dir)
    if not files:
        inside = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
        raise DatasetError(
            f"{images_dir}: no images ({', '.join(IMAGE_EXTENSIONS)})"
            + (
                f"; its folders ({', '.join(inside[:3])}) are not looked into: put the "
                "images in images/ itself, or give each folder as a dataset of its own"
                if inside
                else ""
            )
        )

    by_name: dict[str, np.ndarray] = {}
    markers: dict[str, tuple] = {}  # a marker image's path and size, by its image's stem
    layouts = [
        name
        for name, holds in (
            ("points.csv", (folder / "points.csv").is_file()),
            ("points/", (folder / "points").is_dir() and bool(_points_files(folder / "points"))),
            ("markers/", (folder / "markers").is_dir() and bool(_image_files(folder / "markers"))),
        )
        if holds
    ]
    if len(layouts) > 1:  # one would be passed over without a word
        raise DatasetError(
            f"{folder}: holds cell centres in {' and '.join(layouts)}: which to train on "
            "cannot be told; move all but one of them out of the folder"
        )
    if (folder / "points.csv").is_file():
        where = folder / "points.csv"
        by_name = read_points_csv(where)
        if "" in by_name:
            raise DatasetError(f"{where}: needs an 'image' column (image,x,y)")
        _named(by_name, files, where, "its image column names them")
    elif (folder / "points").is_dir():
        where = folder / "points"
        for csv_path in _points_files(where):
            by_name[csv_path.stem] = _file_points(csv_path)
        _named(by_name, files, where, "each file is named after its image: points/<image>.csv")
    elif (folder / "markers").is_dir():
        where = folder / "markers"
        for marker in _image_files(where):
            by_name[marker.stem], shape = _marker_centres(marker, notes)
            markers[marker.stem] = (marker, shape)
        _named(
            by_name,
            files,
            where,
            "each marker image is named as its image, another extension allowed",
        )
    else:
        raise DatasetError(
            f"{folder}: no cell centres found: expected points.csv (image,x,y), "
            "points/<image>.csv (x,y) or markers/<image> label images"
        )

    samples, unmarked = [], []
    for path in files:
        # its rows by its name and by its stem alike (t000.tif and t000 in one file: both)
        found = [by_name[k] for k in dict.fromkeys((path.name, path.stem)) if k in by_name]
        points = np.concatenate([np.reshape(p, (-1, 2)) for p in found]) if found else None
        if points is None or len(points) == 0:
            unmarked.append(path.name)
            continue
        points, repeats = _without_repeats(np.asarray(points, np.float64).reshape(-1, 2))
        if repeats and notes is not None:
            notes.append(
                f"{path}: {repeats} centre(s) within {REPEAT_PX:g} px of another (the same "
                "cell clicked twice) counted once"
            )
        data = _read_pixels(path, channel) if read_pixels else None
        pixels = data.pixels if data is not None else np.zeros((0, 0))
        in_units = points_in_units(points, data) if data is not None else ""
        if in_units and notes is not None:  # (as segmenting at these points says it)
            notes.append(f"{path}: {in_units}")
        pages = count_pages(path) if read_pixels and notes is not None else 1
        if pages > 1:  # (a Fiji table's Slice column may name another: said, not guessed)
            notes.append(
                f"{path}: {pages} pages: trained on its first, its centres taken to lie "
                "there (the window's Save as training set writes each page as an image of "
                "its own)"
            )
        if read_pixels:
            rows, cols = pixels.shape
            marker, shape = markers.get(path.stem, (None, pixels.shape))
            if shape != pixels.shape:  # its centres would be another image's
                raise DatasetError(
                    f"{marker}: {shape[1]}x{shape[0]}, not the size of its image {path.name} "
                    f"({cols}x{rows})"
                )
            outside = (
                (points[:, 0] < -0.5)
                | (points[:, 1] < -0.5)
                | (points[:, 0] > cols - 0.5)
                | (points[:, 1] > rows - 0.5)
            )
            if outside.any():
                x, y = points[np.argmax(outside)]
                off = points[outside]
                by_one = (
                    (off >= -0.5).all(1) & (off[:, 0] <= cols + 0.5) & (off[:, 1] <= rows + 0.5)
                )
                raise DatasetError(
                    f"{path}: {int(outside.sum())} centre(s) outside the {cols}x{rows} image, "
                    f"e.g. x={x:g}, y={y:g}"
                    + (
                        f" (pixels are counted from 0, the last at x={cols - 1}, "
                        f"y={rows - 1}: centres counted from 1 lie a pixel off)"
                        if by_one.all()
                        else ""
                    )
                )
        samples.append(
            Sample(f"{label or folder.resolve().name}/{path.name}", path, pixels, points)
        )
    if not samples:
        raise DatasetError(
            f"{folder}: none of its {len(files)} image(s) has a cell centre in {where.name}"
        )
    if unmarked and notes is not None:
        notes.append(
            f"{folder}: {len(unmarked)} image(s) without cell centres left out: "
            + ", ".join(unmarked[:5])
            + (f" and {len(unmarked) - 5} more" if len(unmarked) > 5 else "")
        )
    return samples


def source_channel(samples: list[Sample]) -> int | None:
    """The channel of their files every one of these images was taken from, where their
    training sets say so (the window saves a plane of a file with where it came from, in
    sources.csv) and all agree; else None. A model trained on them then segments that channel
    of such files."""
    channels, sets = set(), {}
    for sample in samples:
        folder = sample.path.parent.parent  # the set holding images/
        if folder not in sets:
            sets[folder] = read_training_sources(folder)
        source = sets[folder].get(sample.path.name)
        if source is None:
            return None
        channels.add(source["channel"])
    return channels.pop() if len(channels) == 1 else None


def load_datasets(
    folders: list[str | Path], channel: int = 0, notes: list[str] | None = None
) -> list[Sample]:
    """Samples of several dataset folders, in the order given (``channel``, ``notes``: as
    :func:`load_dataset` takes them)."""
    paths = [Path(folder) for folder in folders]
    where = [p.resolve() for p in paths]
    twice = next((p for k, p in enumerate(paths) if where[k] in where[:k]), None)
    if twice is not None:  # (its images were trained on twice, its points counted twice)
        raise DatasetError(f"{twice}: the same training set given twice")
    # named as given, a link's own name kept (--val link/a.tif); ".": the folder's own name
    names = [Path(os.path.abspath(p)).name for p in paths]
    samples: list[Sample] = []
    for folder, name in zip(paths, names, strict=True):
        label = name
        if names.count(name) > 1:  # two sets named alike (a/cells, b/cells): apart
            label = "_".join(folder.resolve().parts[-2:])
        samples.extend(load_dataset(folder, channel=channel, notes=notes, label=label))
    return samples
