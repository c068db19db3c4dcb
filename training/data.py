"""Training data: images and their clicked cell centres, read from dataset folders.

A dataset folder holds ``images/`` and the cell centres in one of three forms::

    DATASET/images/<stem>.<ext>     the microscopy images (TIFF 8/16-bit, PNG, JPEG, BMP)
    DATASET/points.csv              image,x,y  one row per cell (x = column, y = row, pixels)
    DATASET/points/<stem>.csv       x,y        one file per image (header optional)
    DATASET/markers/<stem>.<ext>    label image of markers; each label's centroid is a centre

Only centres are read: instance masks (``masks/``) are never used for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cellprop.engine.errors import ImageError, PointsError
from cellprop.engine.io import IMAGE_EXTENSIONS, read_image, read_points
from cellprop.engine.output import read_training_sources

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


def _marker_centres(path: Path) -> tuple[np.ndarray, tuple]:
    """(x, y) centroids of the labels of a marker image (0 = background), and its size."""
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
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros((0, 2)), labels.shape
    centres = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return np.asarray([(c, r) for r, c in centres], dtype=np.float64), labels.shape


def _read_pixels(path: Path, channel: int = 0) -> np.ndarray:
    try:
        return read_image(path, channel=channel).pixels
    except ImageError as exc:
        raise DatasetError(str(exc)) from None


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def load_dataset(folder: str | Path, read_pixels: bool = True, channel: int = 0) -> list[Sample]:
    """Read every annotated image of one dataset folder (layouts in the module docstring).

    Images without any centre are skipped: with no cells marked, their background would teach
    the network that cells there are background. Centres outside the image are an error.

    Parameters
    ----------
    folder : path
        The dataset folder (holding ``images/``).
    read_pixels : bool
        False to read only the annotations (pixels left empty), e.g. for a summary.
    channel : int
        The channel of the images to read, from 0 (a colour image's: 0 grey, 1 red, 2 green,
        3 blue); an image without it is an error naming the file.

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
        raise DatasetError(f"{images_dir}: no images ({', '.join(IMAGE_EXTENSIONS)})")

    by_name: dict[str, np.ndarray] = {}
    markers: dict[str, tuple] = {}  # a marker image's path and size, by its image's stem
    if (folder / "points.csv").is_file():
        by_name = read_points_csv(folder / "points.csv")
        known = {p.name for p in files} | {p.stem for p in files}
        unknown = sorted(set(by_name) - known)
        if "" in by_name:
            raise DatasetError(f"{folder / 'points.csv'}: needs an 'image' column (image,x,y)")
        if unknown:
            raise DatasetError(
                f"{folder / 'points.csv'}: images not found in {images_dir}: "
                + ", ".join(unknown[:5])
            )
    elif (folder / "points").is_dir():
        for csv_path in sorted((folder / "points").glob("*.csv")):
            by_name[csv_path.stem] = read_points_csv(csv_path).get("", np.zeros((0, 2)))
    elif (folder / "markers").is_dir():
        for marker in _image_files(folder / "markers"):
            by_name[marker.stem], shape = _marker_centres(marker)
            markers[marker.stem] = (marker, shape)
    else:
        raise DatasetError(
            f"{folder}: no cell centres found: expected points.csv (image,x,y), "
            "points/<image>.csv (x,y) or markers/<image> label images"
        )

    samples = []
    for path in files:
        points = by_name.get(path.name, by_name.get(path.stem))
        if points is None or len(points) == 0:
            continue
        pixels = _read_pixels(path, channel) if read_pixels else np.zeros((0, 0))
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
                raise DatasetError(
                    f"{path}: {int(outside.sum())} centre(s) outside the {cols}x{rows} image, "
                    f"e.g. x={x:g}, y={y:g}"
                )
        samples.append(Sample(f"{folder.name}/{path.name}", path, pixels, points))
    if not samples:
        raise DatasetError(f"{folder}: no image has any cell centre")
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


def load_datasets(folders: list[str | Path], channel: int = 0) -> list[Sample]:
    """Samples of several dataset folders, in the order given (``channel``: as
    :func:`load_dataset` takes it)."""
    samples: list[Sample] = []
    for folder in folders:
        samples.extend(load_dataset(folder, channel=channel))
    return samples
