"""Result files: label TIFF, overlay PNG, per-cell CSV and ImageJ ROI zip.

Every writer goes through a temporary file in the target folder and renames it at the end, so an
interrupted or failed write never leaves a half-written result under the final name; and none
replaces an existing file unless asked to.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .errors import OutputExists, PointsError
from .normalise import working_float

__all__ = [
    "atomic_path",
    "format_value",
    "boundary_loops",
    "masks_from_rois",
    "read_labels",
    "read_table",
    "spots_as_cells",
    "write_labels",
    "write_overlay",
    "write_roi_zip",
    "write_table",
    "write_points",
    "write_tables",
    "write_image_table",
    "write_training_set",
    "write_rows",
    "read_training_sources",
    "SOURCES_FILE",
]

#: A training set's record of where each of its images was taken from (written by
#: :func:`write_training_set`): ``image,file,page,channel``.
SOURCES_FILE = "sources.csv"
_SOURCE_COLUMNS = ("image", "file", "page", "channel")


def _umask() -> int:
    """The process's umask (read by setting it and back: once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


#: Files written for each image, by kind: DIR/<stem><suffix> (engine.batch.output_paths).
OUTPUT_SUFFIXES = {
    "labels": "_labels.tif",
    "overlay": "_overlay.png",
    "cells": "_cells.csv",
    "roi": "_rois.zip",
}

#: The longest file name most file systems take, in bytes.
NAME_MAX = 255

#: Micrometres in a pixel-size unit as the engine keeps it (engine.io reads every other
#: unit of length as one of these).
UM_PER_UNIT = {"um": 1.0, "nm": 1e-3}


def temporary_stem(path: str | Path) -> str:
    """The start of the name of :func:`atomic_path`'s temporary file for ``path``:
    ".<stem>", the stem cut short where the temporary name (".<stem>.<8 random><suffix>")
    would be longer than a file name can be while ``path``'s is not."""
    path = Path(path)
    room = NAME_MAX - len(os.fsencode(path.suffix)) - 10  # the dots and mkstemp's 8
    stem = path.stem
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f".{stem}"


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Raises
    ------
    OutputExists
        ``path`` exists and ``overwrite`` is False (checked before and again at the end).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f"{temporary_stem(path)}.", suffix=path.suffix, dir=path.parent
        )
    except OSError as exc:  # a read-only folder: named by the file wanted, not a hidden one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.exists() and not overwrite:
            raise OutputExists(path)
        # the mode a file made the plain way gets (the temporary one is the owner's alone):
        # colleagues on a shared disk read the results; a file replaced keeps its own
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_UMASK
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_labels(
    path: str | Path,
    labels: np.ndarray,
    pixel_size: float | None = None,
    unit: str = "um",
    overwrite: bool = False,
) -> Path:
    """Write an instance label image as a zlib-compressed TIFF (uint16, or uint32 if needed).

    The pixel size, when known, is written as ImageJ reads it (resolution and unit), so Fiji
    shows the labels calibrated like the image; past 65535 cells (uint32, which ImageJ's
    metadata does not hold) as the TIFF's resolution in pixels a centimetre.
    """
    import tifffile

    labels = np.asarray(labels)
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32
    kwargs: dict = {"compression": "zlib", "photometric": "minisblack"}
    if pixel_size:
        kwargs["resolution"] = (1.0 / pixel_size, 1.0 / pixel_size)
        kwargs["resolutionunit"] = "NONE"
        if dtype == np.uint16:
            kwargs["imagej"] = True
            kwargs["metadata"] = {"unit": "micron" if unit == "um" else unit}
            kwargs.pop("photometric")
        else:  # (ImageJ's metadata holds no 32-bit integers) pixels a centimetre, as TIFF
            # says a length without it, so the unit is not lost
            per_cm = 1e4 / (pixel_size * UM_PER_UNIT.get(unit, 1.0))
            kwargs["resolution"], kwargs["resolutionunit"] = (per_cm, per_cm), "CENTIMETER"
    with atomic_path(path, overwrite) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype, copy=False), **kwargs)
    return Path(path)


class NotLabels(ValueError):
    """A TIFF that reads, but is no label image (:func:`read_labels`): another kind of
    image saved under a label image's name, or labels of fractions or negative numbers."""


def read_labels(path: str | Path) -> np.ndarray:
    """Read back a label image :func:`write_labels` wrote (2-D, unsigned integers), or one
    edited and saved again otherwise: as Fiji's 32-bit (float) or another program's signed
    integers, or with an axis of one (1, H, W), as long as its values are whole numbers from
    0 (returned as uint16, or uint32 past 65535).

    Raises
    ------
    ValueError
        The file is not a TIFF that can be read (names the file); :class:`NotLabels` where
        it is one, but no label image (and why); OSError where it cannot be read.
    """
    import tifffile

    try:
        labels = tifffile.imread(path)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile's and its codecs' (damaged data)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a label image that can be read ({reason})") from exc
    return as_labels(labels, path)


def spots_as_cells(labels: np.ndarray) -> tuple[np.ndarray, str]:
    """Label images of one value in separate spots (a black-and-white mask: every cell 255, as
    a thresholded mask or Fiji's *Create Mask* of a point selection saves them) with a cell in
    each spot, and what was done, in words ("one value (255) in 3 separate spots"); other
    label images as they are, and "". Taken as one label, the spots were one cell an image
    (training: one centre at their mean, where no cell lies; evaluate: one true cell)."""
    values = np.unique(labels)
    if len(values) != 2 or values[0] != 0:
        return labels, ""
    spots, n = ndi.label(labels > 0, structure=np.ones((3, 3)))
    if n < 2:
        return labels, ""
    said = f"one value ({values[1]}) in {n} separate spots"
    return spots.astype(np.uint16 if n < 65536 else np.uint32), said


def as_labels(labels: np.ndarray, path: str | Path) -> np.ndarray:
    """``labels`` read from ``path`` as :func:`read_labels` returns them: unsigned integers
    (whole numbers from 0 of floats or signed integers made so; an axis of one dropped).

    Raises
    ------
    NotLabels
        They are no label image (not 2-D, negative numbers, fractions), naming ``path``.
    """
    labels = np.asarray(labels)
    if labels.ndim > 2 and sum(n > 1 for n in labels.shape) <= 2:
        labels = labels.reshape([n for n in labels.shape if n > 1] or [1, 1])
    if labels.ndim != 2 or labels.dtype.kind not in "uif":
        raise NotLabels(f"{path}: not a label image ({labels.ndim}-D, {labels.dtype})")
    if labels.dtype.kind == "u":
        return labels
    kind = f"{labels.dtype.itemsize * 8}-bit {'float' if labels.dtype.kind == 'f' else 'signed'}"
    if labels.size and not (
        np.isfinite(labels).all() and labels.min() >= 0 and labels.max() < 2**32
    ):
        raise NotLabels(f"{path}: not a label image ({kind}, with negative or no numbers)")
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise NotLabels(f"{path}: not a label image ({kind}, with fractions)")
    top = labels.max(initial=0)
    return labels.astype(np.uint16 if top < 65536 else np.uint32)


def _display_8bit(image: np.ndarray) -> np.ndarray:
    """A grey image stretched to 8 bits between its 0.5 and 99.5 percentiles, over its finite
    pixels only (a masked ratio image's NaN, drawn black, does not blank the rest)."""
    image = np.asarray(image)
    image = image.astype(working_float(image.dtype), copy=False)
    sample = image[:: max(1, image.shape[0] // 512), :: max(1, image.shape[1] // 512)]
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return np.zeros(image.shape, np.uint8)
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if not hi > lo:
        return np.zeros(image.shape, np.uint8)
    with np.errstate(invalid="ignore"):
        stretched = np.clip((image - lo) * (255.0 / (hi - lo)), 0, 255)
    return np.nan_to_num(stretched, nan=0.0).astype(np.uint8)


def write_overlay(
    path: str | Path,
    image: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray | None = None,
    overwrite: bool = False,
    numbers: Sequence[int] | np.ndarray | None = None,
    ring: int = 0,
    transform: tuple | None = None,
) -> Path:
    """Write a PNG of the image (contrast-stretched grey; a colour image, (H, W, 3), in its
    colours) with each cell's outline, centre and number, and where ``ring`` (pixels) is not
    0 the outer edge of the ring around each cell that ``Ring_`` columns measure (cyan, as the
    window draws the rings; :func:`cellprop.engine.features.rings`; ``transform``: the
    labels' feature transform, where the caller has it from measuring the same rings).

    Outlines are the cells' own boundary pixels (yellow), so neighbouring cells stay apart;
    centres (x, y) are small red dots, row k the centre of cell k + 1, and beside each its
    number (white on a dark edge, legible on any image): ``numbers[k]`` where given (a
    followed time-lapse gives each cell's track, ``cellprop.engine.track.table_tracks``, so
    that one cell has one number at every time point), else k + 1, the ``ObjectNumber`` of
    its row in the cell table, so that a cell seen in the picture is found in the table.
    """
    import cv2

    shown = _display_8bit(image)
    rgb = shown.copy() if shown.ndim == 3 else np.dstack([shown, shown, shown])
    labels = np.asarray(labels)
    inner = labels > 0
    if ring:
        from .features import rings

        around = rings(labels, ring, transform)
        grown = np.where(inner, labels, around)  # each cell with its ring
        rgb[(around > 0) & _edges(grown)] = (0, 200, 255)
    rgb[inner & _edges(labels)] = (255, 220, 0)
    if centres is not None and len(centres):
        xy = np.rint(np.asarray(centres)).astype(int)
        h, w = labels.shape
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if abs(dr) + abs(dc) > 1:
                    continue
                r = np.clip(xy[:, 1] + dr, 0, h - 1)
                c = np.clip(xy[:, 0] + dc, 0, w - 1)
                rgb[r, c] = (255, 40, 40)
        shown_numbers = range(1, len(xy) + 1) if numbers is None else numbers
        if len(shown_numbers) != len(xy):
            raise ValueError(f"{len(shown_numbers)} numbers for {len(xy)} cells")
        _draw_numbers(rgb, xy, shown_numbers)
    # encoded in memory and written by Python, as images are read (np.fromfile + imdecode):
    # OpenCV's own file functions cannot open non-ASCII paths on Windows (a user's "Müller")
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    if not ok:
        raise OSError(f"{path}: could not write the PNG")
    with atomic_path(path, overwrite) as tmp:
        Path(tmp).write_bytes(png.tobytes())
    return Path(path)


def _edges(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood holds another label than theirs (or background)."""
    return ndi.grey_erosion(labels, size=3) != ndi.grey_dilation(labels, size=3)


def _draw_numbers(rgb: np.ndarray, xy: np.ndarray, numbers) -> None:
    """``numbers[k]`` just right of and above centre ``xy[k]``, in place on ``rgb``."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    for (x, y), number in zip(xy, numbers, strict=True):
        at = (int(x) + 3, int(y) - 3)
        text = str(int(number))
        cv2.putText(bgr, text, at, font, scale, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(bgr, text, at, font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    rgb[...] = bgr[..., ::-1]


def format_value(value) -> str:
    """A table value as the CSV files write it: numbers to 10 significant digits, booleans
    as 1 / 0, nothing where there is no number (nan: a lone cell's distance to its nearest
    neighbour; read back as nan); the app copies rows for a spreadsheet the same way."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):  # (-0.0 + 0.0 is 0.0: no "-0" written)
        return f"{float(value) + 0.0:.10g}" if value == value else ""
    return str(value)


def as_written(table):
    """``table`` (a :class:`~cellprop.engine.features.CellTable`) with its numbers as the CSV
    files hold them (:func:`format_value`: 10 significant digits), as a table read back from
    its file has them: what a run computes from its tables (images.csv's means, the distances
    of cells followed) comes out the same whether a table was measured now or read back from
    an earlier run's file (a run continued)."""
    columns = {}
    for name, column in table.columns.items():
        values = np.asarray(column)
        if values.dtype.kind == "f":
            values = np.array(
                [float(format_value(v) or "nan") for v in values.tolist()], dtype=np.float64
            )
        columns[name] = values
    return replace(table, columns=columns)


def write_table(path: str | Path, table, overwrite: bool = False) -> Path:
    """Write a :class:`~cellprop.engine.features.CellTable` as CSV, one row per cell (one
    image's cells; :func:`write_tables` gathers many images' with an ``Image`` column)."""
    names = list(table.columns)
    columns = [table.columns[n].tolist() for n in names]
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            for row in zip(*columns, strict=True):
                writer.writerow([format_value(v) for v in row])
    return Path(path)


def read_csv_rows(path: str | Path) -> tuple[list[list[str]], bool]:
    """A CSV file's rows, as cellprop wrote it or as a spreadsheet saved it again: UTF-8 with
    or without Excel's byte-order mark (else the spreadsheet's own cp1252), separated by
    commas, semicolons (a European Excel's) or tabs; and whether its numbers are written
    with decimal commas (a semicolon-separated file's). OSError where it cannot be read,
    csv.Error where it is no CSV."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return rows, delimiter == ";"


def read_table(path: str | Path):
    """Read back a per-image cell table :func:`write_table` wrote, as a CellTable.

    Numbers come back as float64 (what was written, to its 10 significant digits); a column
    with anything else stays text. Pixel size and unit are not in the file (None).

    Raises
    ------
    ValueError
        The file is not such a table (names the file); OSError where it cannot be read.
    """
    from .features import CellTable

    try:
        rows, comma = read_csv_rows(path)  # (saved again by a spreadsheet, too)
    except csv.Error as exc:
        raise ValueError(f"{path}: not a cell table ({exc})") from exc
    if not rows or len(set(map(len, rows))) != 1:
        raise ValueError(f"{path}: not a cell table (no heading, or rows of unequal length)")
    header, body = rows[0], rows[1:]
    if not body:
        return CellTable(columns={name: np.zeros(0) for name in header})
    columns = {}
    for name, values in zip(header, zip(*body, strict=True), strict=True):
        try:
            columns[name] = np.array(
                [float(v.replace(",", ".") if comma else v) if v else np.nan for v in values]
            )
        except ValueError:
            columns[name] = np.array(values, dtype=object)
    return CellTable(columns=columns)


def write_tables(path: str | Path, tables: list, overwrite: bool = False) -> Path:
    """Write the cells of many images into one CSV, an ``Image`` column first.

    ``tables``: ``(image name, CellTable)`` pairs, in the order their rows are written, or
    ``(image name, CellTable, page)`` triples for images that are pages of multi-page files
    (a time-lapse): the file then has a ``Page`` column after ``Image`` (empty for an image
    read whole), as summary.csv has, so cells can be joined to time points without taking
    their names apart. Column sets may differ between images (physical units in some only):
    the file has their union, in first-seen order, and a cell lacks nothing but the columns
    its image did not measure.
    """
    lead, items, names = _gathered(tables)
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow([*lead, *names])
            for first, table in items:
                for row in table.rows():
                    writer.writerow(first + [format_value(row.get(n, "")) for n in names])
    return Path(path)


def write_rows(
    path: str | Path, rows: list, overwrite: bool = False, columns: Sequence[str] = ()
) -> Path:
    """Write dicts as CSV rows, the union of their keys as columns in first-seen order, values
    as :func:`format_value` writes them (a run's ``tracks.csv``); ``columns``: the header
    where there is no row (a file of no rows keeps its columns, as the cell tables do)."""
    names: list[str] = [] if rows else list(columns)
    for row in rows:
        names += [n for n in row if n not in names]
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            for row in rows:
                writer.writerow([format_value(row.get(n, "")) for n in names])
    return Path(path)


def _gathered(tables: list) -> tuple[list, list, list]:
    """Many images' tables as :func:`write_tables` takes them: the leading column names
    (``Image``, and ``Page`` when any image is a page), each table with its leading values,
    and the union of the tables' columns in first-seen order."""
    items = [(item[0], item[1], item[2] if len(item) > 2 else None) for item in tables]
    paged = any(page is not None for *_, page in items)
    lead = ["Image", "Page"] if paged else ["Image"]
    names: list[str] = []
    for _, table, _ in items:
        names += [n for n in table.columns if n not in names]
    led = [
        ([name, "" if page is None else page] if paged else [name], table)
        for name, table, page in items
    ]
    return lead, led, names


#: Cell-table columns that say which cell it is or where, not what it is like: their mean over
#: an image's cells means nothing (an orientation's neither: it is an angle; nor a track's
#: number, age or gap). ObjectNumber covers TrackObjects_ParentObjectNumber.
NOT_AVERAGED = (
    "ObjectNumber",
    "Center_",
    "BoundingBox",
    "Orientation",
    "TrackObjects_Label",
    "TrackObjects_Lifetime",
    "TrackObjects_GapLength",
)


def write_image_table(path: str | Path, tables: list, overwrite: bool = False) -> Path:
    """Write one row per image: ``Image`` (and ``Page``, as :func:`write_tables`),
    ``Count_Cells``, then the mean and the median over its cells of each measurement, named
    as CellProfiler names its per-image aggregates (``Mean_Cells_AreaShape_Area``,
    ``Median_Cells_Intensity_MeanIntensity``, ...; not of positions, numbers or orientations:
    :data:`NOT_AVERAGED`). An image without cells has a count of 0 and empty means.

    ``tables``: as :func:`write_tables` takes them.
    """
    lead, items, names = _gathered(tables)
    measured = [n for n in names if not any(part in n for part in NOT_AVERAGED)]
    header = [*lead, "Count_Cells"]
    header += [f"{kind}_Cells_{n}" for kind in ("Mean", "Median") for n in measured]
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for first, table in items:
                values = {n: _numbers(table.columns.get(n)) for n in measured}
                row = [*first, len(table)]
                for summary in (np.mean, np.median):
                    for n in measured:
                        v = values[n]
                        row.append(format_value(summary(v)) if v is not None and v.size else "")
                writer.writerow(row)
    return Path(path)


def _numbers(column) -> np.ndarray | None:
    """A table column's finite numbers, or None for text or a column the image lacks."""
    if column is None:
        return None
    try:
        values = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return values[np.isfinite(values)]


def write_points(path: str | Path, points: list, overwrite: bool = False) -> Path:
    """Write cell centres as ``image,x,y`` (pixels), the points.csv of a training dataset.

    ``points``: ``(image name, [N, 2] array of (x, y))`` pairs, rows written in that order;
    :func:`cellprop.engine.io.read_points` reads the file back.
    """
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", "x", "y"])
            for name, centres in points:
                for x, y in np.reshape(np.asarray(centres, np.float64), (-1, 2)):
                    writer.writerow([name, format_value(x), format_value(y)])
    return Path(path)


def _points_with_more_columns(
    path: Path, rows: list, replaced: set, renamed: dict | None = None
) -> bool:
    """Write a training set's points.csv that has columns of its own beside image, x and y
    (a cell type, a comment; a cellprop cell table used as one) again with them: the rows of
    the images not ``replaced`` (names, or stems naming them) as they were (decimal commas
    made points; an image named as ``renamed`` says), then ``rows`` of the replaced ones,
    their other columns those of the row of the same centre before (blank for a new one).
    False
    (nothing written) where it has no other columns: :func:`write_points` then writes
    image,x,y (their columns were dropped, unasked, at every save)."""
    from .io import points_table

    table = points_table(path)  # read as read_points reads it (it read the file already)
    if table is None:
        return False
    header, numbered, comma = table
    if not {"image", "x", "y"} <= set(header) or len(header) == 3:
        return False
    at = {key: header.index(key) for key in ("image", "x", "y")}
    out = [numbered[0][1]]
    before: dict[str, list] = {}  # the replaced images' rows, for the centres that stay
    for _, row in numbered[1:]:
        row = row + [""] * (len(header) - len(row))
        if row[at["image"]].strip() in replaced:
            with contextlib.suppress(ValueError):
                xy = [float(row[at[key]].replace(",", ".")) for key in ("x", "y")]
                before.setdefault(row[at["image"]].strip(), []).append((xy, row))
            continue
        row[at["image"]] = (renamed or {}).get(row[at["image"]].strip(), row[at["image"]])
        if comma:
            for key in ("x", "y"):
                row[at[key]] = row[at[key]].replace(",", ".")
        out.append(row)
    for name, centres in rows:
        if name not in replaced:
            continue
        # a centre that was there keeps its row's other columns (a cell type typed in);
        # the new ones' are blank (all of an image's were blanked at each save)
        was = before.get(name, []) + before.get(Path(name).stem, [])
        for x, y in np.reshape(np.asarray(centres, np.float64), (-1, 2)):
            same = next(
                (k for k, (xy, _) in enumerate(was) if abs(xy[0] - x) + abs(xy[1] - y) < 1e-3),
                None,
            )
            row = list(was.pop(same)[1]) if same is not None else [""] * len(header)
            row[at["image"]], row[at["x"]], row[at["y"]] = name, format_value(x), format_value(y)
            out.append(row)
    with atomic_path(path, True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(out)
    return True


def read_training_sources(folder: str | Path) -> dict[str, dict]:
    """Where each image of a training set was taken from, by image name: ``{"file", "page",
    "channel"}`` (page and channel as ints, counted from 0), from its :data:`SOURCES_FILE`.
    Empty where the set has none (one made by hand) or it cannot be read; rows that cannot be
    read are left out: the record informs, it never stops a training."""
    path = Path(folder) / SOURCES_FILE
    sources: dict[str, dict] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    page, channel = int(row["page"]), int(row["channel"])
                except (KeyError, TypeError, ValueError):
                    continue
                if row.get("image") and page >= 0 and channel >= 0:
                    file = row.get("file") or ""
                    sources[row["image"]] = {"file": file, "page": page, "channel": channel}
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return sources


def _not_a_sources_file(path: Path) -> str:
    """Why ``path``, where it exists, is not a :data:`SOURCES_FILE` a training set wrote (its
    columns), in words; "" where it is one, or is not there."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not header or set(_SOURCE_COLUMNS) <= {h.strip().lower() for h in header}:
        return ""
    return f"its columns are {','.join(header[:6])}"


def write_training_set(
    folder: str | Path, planes: list, overwrite: bool = False, sources: list | None = None
) -> list[Path]:
    """Add images and their clicked cell centres to a training dataset folder.

    The layout is the one ``cellprop-train`` reads: ``folder/images/NAME`` (each plane as a
    zlib-compressed TIFF, so training sees the very pixels that were clicked on, whatever page
    or channel of whichever file they came from) and ``folder/points.csv`` (``image,x,y``).

    ``planes``: ``(NAME, pixels, [N, 2] (x, y))``, NAME ending in ``.tif``; pixels None for an
    image of the set itself, ``images/NAME`` (its centres corrected), which stays as it is. With
    pixels None and no centres, the image's rows are taken away (every mark on it cleared): its
    file stays, and ``cellprop-train`` leaves it out, saying so; one not in the set is passed
    over. A
    points.csv already there keeps its rows for other images (a dataset grows over several
    sessions); the rows of these images are replaced. ``sources``: where each plane was taken from, ``(file, page,
    channel)``, kept in ``folder/sources.csv`` (:func:`read_training_sources`) likewise, so that
    a model trained on planes of one channel of their files segments that channel of such
    files (``cellprop-train`` records it).

    Raises
    ------
    OutputExists
        An image of that name is in ``images/`` and ``overwrite`` is False (nothing written).
    PointsError
        The existing points.csv cannot be read or has no image column, or the set keeps its
        centres otherwise (``points/``, ``markers/``: a points.csv beside them would be read
        instead of them); nothing written.
    """
    import tifffile

    from .io import read_points

    folder = Path(folder)
    images = folder / "images"
    # marks cleared on an image that is not in the set: nothing of it to take away
    there = [
        pixels is not None or len(xy) > 0 or (images / name).is_file()
        for name, pixels, xy in planes
    ]
    planes = [plane for plane, keep in zip(planes, there, strict=True) if keep]
    if sources is not None:
        sources = [source for source, keep in zip(sources, there, strict=False) if keep]
    names = [name for name, _, _ in planes]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"two images would be saved as {twice[0]}: rename one of them")
    if not overwrite:
        for name, pixels, _ in planes:
            if pixels is not None and (images / name).exists():
                raise OutputExists(images / name)
    for name, pixels, _ in planes:
        if pixels is None and not (images / name).is_file():
            raise ValueError(f"{images / name}: no such image of the training set")
    foreign = _not_a_sources_file(folder / SOURCES_FILE)
    if foreign:  # the user's own sources.csv (samples, conditions): never replaced unasked
        raise PointsError(
            f"{folder / SOURCES_FILE}: {foreign}, not a training set's record of where its "
            f"images came from ({','.join(_SOURCE_COLUMNS)}), and a training set writes one "
            "there; move it away or save into another folder"
        )
    points_csv = folder / "points.csv"
    for layout in ("points", "markers"):
        if not points_csv.exists() and (folder / layout).is_dir():
            raise PointsError(
                f"{folder} keeps its cell centres in {layout}/ (one file per image): a "
                "points.csv written beside them would be read instead of them, and their images "
                "left out of training; save into another folder"
            )
    # An image's rows by its name, or by its stem (t000 for t000.tif): replaced alike. Where
    # the stem is another image's of the set (images/t000.png, its rows written "t000"), its
    # rows are that image's: they stay, named by the image's whole name now, since the stem
    # will name two images (they were dropped, and the image left out of the next training).
    others = [p.name for p in images.iterdir() if p.name not in names] if images.is_dir() else []
    renamed = {}
    for stem in {Path(name).stem for name in names}:
        owners = [other for other in others if Path(other).stem == stem]
        if len(owners) == 1:
            renamed[stem] = owners[0]
        elif owners:  # named by a stem of two images already: left as the set had it
            renamed[stem] = stem
    replaced = {*names, *(Path(name).stem for name in names)} - set(renamed)
    kept: list = []
    if points_csv.exists():
        before = read_points(points_csv)
        if "" in before:
            raise PointsError(
                f"{points_csv}: has no image column (image,x,y), so it is not a dataset's "
                "points file; choose another folder"
            )
        kept = [
            (renamed.get(name, name), xy) for name, xy in before.items() if name not in replaced
        ]
    written = []
    for name, pixels, _ in planes:
        if pixels is None:  # the set's own image: stays
            continue
        with atomic_path(images / name, overwrite) as tmp:
            tifffile.imwrite(tmp, np.asarray(pixels), compression="zlib", photometric="minisblack")
        written.append(images / name)
    rows = kept + [(name, xy) for name, _, xy in planes]
    if not (points_csv.exists() and _points_with_more_columns(points_csv, rows, replaced, renamed)):
        write_points(points_csv, rows, overwrite=True)
    written.append(points_csv)
    before_sources = read_training_sources(folder)
    if sources is not None or set(before_sources) & set(names):
        # the set's own images (pixels None) keep where they were taken from: opened from
        # images/ to correct their centres, they were recorded as taken from there, page 0
        # channel 0 (a model trained on channel 1 of its files then segmented channel 0)
        own = {name for name, pixels, _ in planes if pixels is None and name in before_sources}
        mine = {n: s for n, s in zip(names, sources or [], strict=False) if n not in own}
        table = [
            (n, s["file"], s["page"], s["channel"])
            for n, s in before_sources.items()
            if n not in names or n in own  # (an image written anew: its own record, or none)
        ]
        table += [(n, str(f), int(p or 0), int(c or 0)) for n, (f, p, c) in mine.items()]
        with atomic_path(folder / SOURCES_FILE, True) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
                writer = csv.writer(fh)
                writer.writerow(_SOURCE_COLUMNS)
                writer.writerows(table)
        written.append(folder / SOURCES_FILE)
    return written


def boundary_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Every boundary of a pixel set, along pixel edges: each 4-connected piece's outer
    boundary, clockwise on screen, and each of its holes' boundaries, counter-clockwise (the
    set on the right of every edge walked), the outer boundary of the piece that holds the
    first pixel in raster order first.

    Vertices are pixel corners in ImageJ's convention (pixel (row r, col c) spans x c..c+1 and
    y r..r+1), without collinear points. Filling the loops together, even-odd (pixel centres
    inside an odd number of loops), gives back the pixel set exactly. Where the set touches
    itself only at a corner, each loop turns right there (keeps the pixel walked around on
    its right), which keeps 4-connected pieces and their holes apart.

    Returns
    -------
    list of numpy.ndarray
        int [K, 2] of (x, y) each; none for an empty set.
    """
    m = np.pad(np.asarray(mask, bool), 1)
    r, c = np.nonzero(m)
    # Directed boundary edges with the set on their right (clockwise on screen).
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    starts: list[tuple[int, int]] = []

    def add(x0: int, y0: int, x1: int, y1: int) -> None:
        edges.setdefault((x0, y0), []).append((x1, y1))

    for y, x in zip(r.tolist(), c.tolist(), strict=True):
        if not m[y - 1, x]:
            add(x, y, x + 1, y)
            starts.append((x, y))  # a top edge: the first in raster order is an outer one
        if not m[y, x + 1]:
            add(x + 1, y, x + 1, y + 1)
        if not m[y + 1, x]:
            add(x + 1, y + 1, x, y + 1)
            starts.append((x + 1, y + 1))  # a bottom edge: every hole has one
        if not m[y, x - 1]:
            add(x, y + 1, x, y)
    loops = []
    for start in starts:
        if not edges.get(start):
            continue  # walked already
        points = [start]
        prev, current = start, edges[start].pop(0)
        while current != start:
            outs = edges[current]
            if len(outs) > 1:
                # a corner where the set touches itself diagonally: turn right
                d_in = (current[0] - prev[0], current[1] - prev[1])
                right = (-d_in[1], d_in[0])
                nxt = next(
                    (o for o in outs if (o[0] - current[0], o[1] - current[1]) == right), outs[0]
                )
                outs.remove(nxt)
            else:
                nxt = outs.pop()
            points.append(current)
            prev, current = current, nxt
        pts = np.array(points, np.int64) - 1  # undo the padding
        # Drop vertices in the middle of straight runs.
        before, after = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        cross = (pts[:, 0] - before[:, 0]) * (after[:, 1] - pts[:, 1]) - (
            pts[:, 1] - before[:, 1]
        ) * (after[:, 0] - pts[:, 0])
        loops.append(pts[cross != 0])
    return loops


# The largest coordinate a traced polygon can hold: ImageJ stores its corner in 16 bits and
# reads values from 60,536 up as negative (ij.io.RoiDecoder.getShort, for ROIs that begin just
# off the image). A composite shape's path is floats, exact to 2**24 px.
_ROI_SHORT_MAX = 60535


def _roi(loops: list[np.ndarray], offset: np.ndarray, name: str):
    """One ImageJ ROI of a pixel set's boundaries (:func:`boundary_loops`, shifted by
    ``offset``, (x, y)): a traced polygon where there is one loop, as ImageJ's wand makes it,
    else a composite shape (ImageJ's ``ShapeRoi``, filled even-odd: a cell with holes, or in
    pieces; a ring around a cell; a cell beyond x or y 60,535 of a stitched image, which a
    polygon cannot place), its path of the loops, each moved to, drawn and closed."""
    import roifile

    loops = [loop + offset for loop in loops]
    if len(loops) == 1 and loops[0].max() <= _ROI_SHORT_MAX:
        pts = loops[0]
        roi = roifile.ImagejRoi.frompoints(pts.astype(np.int32), name=name)
        roi.roitype = roifile.ROI_TYPE.TRACED
        roi.options = roifile.ROI_OPTIONS(0)
        roi.right = int(pts[:, 0].max())
        roi.bottom = int(pts[:, 1].max())
        return roi
    moveto, lineto, close = 0.0, 1.0, 4.0  # java.awt.geom.PathIterator's segment types
    path = []
    for loop in loops:
        steps = np.column_stack([np.full(len(loop), lineto), loop]).astype(np.float32)
        steps[0, 0] = moveto
        path += [steps.ravel(), np.array([close], np.float32)]
    roi = roifile.ImagejRoi()
    roi.roitype = roifile.ROI_TYPE.RECT
    roi.name = name
    roi.multi_coordinates = np.concatenate(path)
    roi.shape_roi_size = len(roi.multi_coordinates)
    every = np.concatenate(loops)
    roi.left, roi.top = (int(v) for v in every.min(axis=0))
    roi.right, roi.bottom = (int(v) for v in every.max(axis=0))
    return roi


def write_roi_zip(
    path: str | Path,
    labels: np.ndarray,
    overwrite: bool = False,
    ring: int = 0,
    transform: tuple | None = None,
) -> Path:
    """Write one ImageJ ROI per cell into a zip for Fiji, traced along pixel edges, and where
    ``ring`` (pixels) is not 0 one of each cell's ring after them (the pixels its ``Ring_``
    columns measure: :func:`cellprop.engine.features.rings`; ``transform`` as it takes it).

    ROI names are ``cell-<label>`` and ``ring-<label>``, so a ROI is found from a CSV row.
    Filling each ROI in ImageJ gives back the cell's pixels, or its ring's, exactly: a cell
    of one piece without holes is a traced polygon; a cell with holes or in pieces, and a
    ring (a cell's outline is its hole), a composite shape (:func:`_roi`).
    """
    import roifile

    labels = np.asarray(labels)
    regions = [("cell", labels)]
    if ring:
        from .features import rings

        regions.append(("ring", rings(labels, ring, transform)))
    rois = []
    for kind, image in regions:
        for k, box in enumerate(ndi.find_objects(image)):
            if box is None:
                continue
            loops = boundary_loops(image[box] == k + 1)
            corner = np.array([box[1].start, box[0].start])
            rois.append(_roi(loops, corner, f"{kind}-{k + 1}"))
    with atomic_path(path, overwrite) as tmp:
        tmp.unlink()  # roifile appends to an existing zip; give it a fresh one
        if rois:
            roifile.roiwrite(tmp, rois, mode="w")
        else:
            import zipfile

            zipfile.ZipFile(tmp, "w").close()
    return Path(path)


def masks_from_rois(path: str | Path, shape: tuple[int, int], kind: str = "cell") -> np.ndarray:
    """Read a ROI zip written by :func:`write_roi_zip` back into a label image (for checks):
    its ROIs of ``kind`` (``cell`` or ``ring``), each filled as ImageJ fills it.

    Pixels whose centre lies inside a ROI (an odd number of its loops) get the label in the
    ROI's name.
    """
    import roifile
    from skimage.draw import polygon

    labels = np.zeros(shape, np.int32)
    rois = roifile.roiread(path) if Path(path).stat().st_size > 22 else []
    for roi in rois if isinstance(rois, list) else [rois]:
        named, _, label = str(roi.name).rpartition("-")
        if named != kind:
            continue
        inside = np.zeros(shape, bool)
        loops = roi.coordinates(multi=True) if roi.composite else [roi.coordinates()]
        for xy in loops:
            xy = np.asarray(xy)
            # Pixel (r, c) has its centre at (c + 0.5, r + 0.5) in ImageJ coordinates.
            rr, cc = polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape)
            inside[rr, cc] ^= True
        labels[inside] = int(label)
    return labels
