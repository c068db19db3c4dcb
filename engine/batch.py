"""Whole files in, result files out: one image (process_image) or many (process_batch).

The CLI, the app's export and its folder batch all call these, so every front end writes the
same files. A file that cannot be read or segmented is reported by name and leaves nothing
behind; existing results are never replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import glob
import math
import numbers
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import Cancelled, FolderInUse, ImageError, OutputExists, ResumeError
from .features import (
    calibration,
    centroids_and_areas,
    detection_centres,
    feature_transform,
    measure_image,
)
from .io import (
    _natural_key,
    page_axes,
    pixel_size_of,
    pixels_digest,
    plane_size,
    points_kept,
    points_outside,
    read_image,
)
from .journal import (
    MEASURED_AGAIN,
    SEQUENCES,
    EarlierRun,
    Journal,
    add_note,
    earlier_run,
    made_by,
    row_channel,
    run_record,
)
from .output import (
    NAME_MAX,
    OUTPUT_SUFFIXES,
    UM_PER_UNIT,
    NotLabels,
    as_written,
    read_labels,
    read_table,
    temporary_stem,
    write_labels,
    write_overlay,
    write_roi_zip,
    write_rows,
    write_table,
)
from .parallel import auto_workers, in_processes
from .pipeline import Settings, resolve_settings, segment
from .planes import (
    ImageResult,
    Plane,
    _folder_of,
    batch_planes,
    clash_message,
    clashes,
    continued_planes,
    planes_points,
)
from .track import (
    LINK_COLUMNS,
    TRACK_COLUMNS,
    TRACKS_CSV_COLUMNS,
    Links,
    Tracker,
    TrackSettings,
    follow_again,
    follow_tables,
    link_frames,
    links_from_tables,
    relink,
    settle_divisions,
    table_tracks,
    track_rows,
)

__all__ = [
    "BatchResult",
    "LeftOut",
    "output_paths",
    "process_batch",
    "process_image",
    "read_plane",
    "RunTables",
    "run_tables",
    "saved_results",
]

#: Files written once per run (tracks.csv where cells are followed over time).
RUN_FILES = ("cells.csv", "images.csv", "summary.csv", "run.json", "tracks.csv")


@dataclass
class BatchResult:
    """A run over many images: per-image results and the run's folder."""

    results: list[ImageResult]
    out_dir: Path
    #: A continued run that follows its cells otherwise than the run it continues: how, in
    #: words (:meth:`~cellprop.engine.journal.EarlierRun.followed_otherwise`); its kept
    #: images were followed again, their links mended by hand kept. Empty otherwise.
    followed_again: list[str] = field(default_factory=list)
    #: Images whose cells started every track anew, as a field of another size than the
    #: image before them in their time-lapse (a stray frame: :func:`started_anew` says so).
    restarted: list[str] = field(default_factory=list)
    #: A run that replaced another (overwrite): the images that run finished that this one
    #: was not given, whose files stay in the folder beside this run's (by name).
    left_over: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.status == "failed"]

    def _folder_time_lapses(self) -> dict[str, list[tuple]]:
        """The folders followed as time-lapses: their images' (time point, name), in order,
        by time-lapse."""
        folders: dict[str, list[tuple]] = {}
        for r in self.results:
            if r.sequence is not None and r.page is None:
                folders.setdefault(str(r.sequence[0]), []).append((r.sequence[1], r.name))
        return {name: sorted(members) for name, members in folders.items()}

    @property
    def skipped_times(self) -> str:
        """Where the names of a folder followed as a time-lapse skip time points (t001,
        t003: :func:`times_in_names`): what is said of it, since its cells are then followed
        as missed there; else ""."""
        said = []
        # (by all of a folder's images, those that failed too: a time point that failed
        # is no name skipped, and is named among the images not processed)
        for name, members, times in sequences(self.results, by_page=True):
            images = [self.results[k] for k in members]
            if images[0].page is not None or all(r.sequence is None for r in images):
                continue  # a file's pages, or a folder not followed
            gaps = [
                f"{a.name} to {b.name}"
                for a, b, ta, tb in zip(images, images[1:], times, times[1:], strict=False)
                if tb - ta > 1
            ]
            if gaps:
                said.append(f"{name} ({first_three(gaps)})")
        if not said:
            return ""
        return (
            f"the names of {'; '.join(said)} skip time points: their cells are followed as "
            "missed there (GapLength 2 across one, closed where --max-gap allows)"
        )

    @property
    def mixed_series(self) -> str:
        """Where the images of a folder followed as one time-lapse look like several series
        (:func:`several_series`: positions or slices saved side by side, XY01_T001 ...
        XY02_T001): what is said of it, since the tracks then run from one into the next;
        else ""."""
        said = []
        for name, members in self._folder_time_lapses().items():
            if several_series([Path(image).stem for _, image in members]):
                said.append(f"{name} ({members[0][1]} ... {members[-1][1]})")
        if not said:
            return ""
        return (
            f"the images of {'; '.join(said)} were followed as one time-lapse, in name order, "
            "but their names differ otherwise than in one number, as those of several "
            "positions or slices saved side by side do: the tracks run from one into the "
            "next. Put each series in a folder of its own to follow them apart"
        )

    @property
    def mixed_units(self) -> str:
        """Where the images done were measured in different units (files calibrated and
        not, or in um and in nm): what is said of it, since cells.csv then holds their sizes
        in columns of different names, each empty for the others; else ""."""
        units: dict[str, list[str]] = {}
        for r in self.results:
            if r.status == "done" and r.table is not None:
                unit = (r.table.unit or "um") if r.table.pixel_size else "pixels"
                units.setdefault(unit, []).append(r.name)
        if len(units) < 2:
            return ""
        parts = [
            f"{len(names)} in {unit} ({', '.join(names[:2])}{', ...' if len(names) > 2 else ''})"
            for unit, names in units.items()
        ]
        columns = ["AreaShape_Area" + ("" if unit == "pixels" else f"_{unit}2") for unit in units]
        return (
            "the images' cells were measured in different units, "
            + "; ".join(parts)
            + ": cells.csv and images.csv hold their sizes in columns of different names "
            f"({' beside '.join(columns)}), each empty for the others; a pixel "
            "size given (--pixel-size, the window's Pixel size) measures them alike"
        )

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.results)


def output_paths(path: str | Path, out_dir: str | Path, roi: bool = False) -> dict[str, Path]:
    """The result files for one input image, by kind."""
    stem = Path(path).stem
    kinds = [k for k in OUTPUT_SUFFIXES if roi or k != "roi"]
    return {k: Path(out_dir) / f"{stem}{OUTPUT_SUFFIXES[k]}" for k in kinds}


def read_plane(path: str | Path, page: int | None = None, channel: int | None = None):
    """:func:`read_image` as a batch reads its files: a file of one channel is read whole,
    whatever ``channel`` (the channel chosen, or the model's own, picks among the channels of
    the files that have several; a grey image among colour ones has nothing else to give, as
    the window shows it). ``ImageData.channel`` says which was read."""
    try:
        return read_image(path, page=page, channel=channel)
    except ImageError as exc:
        if not channel:
            raise
        try:
            whole = read_image(path, page=page)
        except ImageError:
            raise exc from None
        if whole.n_channels > 1:
            raise
        return whole


def points_in_units(centres: np.ndarray, data) -> str:
    """A note where a calibrated image's points all lie within its size in its unit (0.65 um
    pixels, 1040 px wide: all x below 676), as a Fiji table saved in micrometres would: on an
    image whose pixels are under a unit wide, such points are on the image, so nothing else
    tells (they were outlined at the wrong places without a word); "" otherwise."""
    size, unit = data.pixel_size, data.unit
    xy = np.reshape(np.asarray(centres, float), (-1, 2))
    # said only where points clicked all over the image would fall there by chance less
    # than once in a thousand (0.65 um pixels: 8 points; 0.8 um: 16)
    if not size or not unit or not 0 < size < 1 or len(xy) < 5 or size ** (2 * len(xy)) > 1e-3:
        return ""
    h, w = data.pixels.shape[:2]
    if (xy[:, 0].max() > w * size) or (xy[:, 1].max() > h * size):
        return ""
    return (
        f"all {len(xy)} points lie in its top left {w * size:.0f} x {h * size:.0f} pixels, "
        f"as many pixels as the image is {unit} wide and high ({size:g} {unit}/px): were "
        f"they saved in {unit} (a calibrated Fiji table)? They must be in pixels"
    )


def process_image(
    path: str | Path,
    out_dir: str | Path,
    model,
    settings: Settings | None = None,
    overwrite: bool = False,
    roi: bool = False,
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    page: int | None = None,
    channel: int | None = None,
    centres: np.ndarray | None = None,
    name: str | None = None,
) -> ImageResult:
    """Read, segment, measure and write the result files of one image.

    ``centres`` ([N, 2] (x, y), pixels): segment the cells at these centres instead of the
    detected ones (:func:`cellprop.engine.segment`). ``name``: the name the results go by
    (default the file's; :func:`plane_name` for one page of many).

    Never raises for a bad image: the result's status says "failed" (unreadable file, or an
    error while segmenting), "skipped" (results exist and ``overwrite`` is False) or
    "cancelled", and no file of that image is left behind.

    Returns
    -------
    ImageResult
    """
    path = Path(path)
    settings = settings if settings is not None else Settings()
    started = time.perf_counter()
    result = ImageResult(path=path, name=name or path.name, page=page)
    targets = output_paths(path.with_name(result.name), out_dir, roi)
    longest = max(targets.values(), key=lambda p: len(os.fsencode(p.name)))
    if len(os.fsencode(longest.name)) > NAME_MAX:  # said before it is segmented
        result.status = "failed"
        result.error = str(
            ImageError(
                path,
                f"its results' names would be too long for a file name ({longest.name[:40]}"
                f"... is over {NAME_MAX} bytes); give the file a shorter name",
            )
        )
        return result
    existing = [p for p in targets.values() if p.exists()]
    if existing and not overwrite:
        result.status = "skipped"
        result.error = str(OutputExists(existing[0]))
        return result
    written: list[Path] = []
    try:
        data = read_plane(path, page=page, channel=channel)
        result.image_info, result.n_pages = data.description, data.n_pages
        result.channel, result.digest = data.channel, pixels_digest(data.pixels)
        if channel and data.channel != channel:
            result.note = f"a file of one channel: segmented it, not channel {channel}"
        if data.note:
            result.note = add_note(result.note, data.note)
        finite = (
            data.pixels[np.isfinite(data.pixels)] if data.pixels.dtype.kind == "f" else data.pixels
        )
        if not finite.size or finite.min() == finite.max():  # nothing to find cells in
            level = f"every pixel {finite.flat[0]:g}" if finite.size else "no pixel a number"
            result.note = add_note(result.note, f"a blank image ({level})")
        given, read = settings.pixel_size, calibration(data)
        if given and read[0] and (read[0] * UM_PER_UNIT.get(read[1] or "", np.nan) != given):
            result.note = add_note(
                result.note,
                f"measured at {given:g} um/px as given, not the file's {read[0]:g} {read[1]}/px",
            )
        if data.pixel_height and settings.pixel_size is None:  # (given: taken as square)
            result.note = add_note(
                result.note,
                f"its pixels are not square ({data.pixel_size:g} x {data.pixel_height:g} "
                f"{data.unit}): measured as {data.pixel_size:g} {data.unit} square",
            )
        outside = 0 if centres is None else points_outside(centres, data.pixels.shape)
        if outside and centres is not None:
            h, w = data.pixels.shape[:2]
            raise ImageError(
                path,
                f"{outside} of its {len(centres)} points lie outside the image ({w} x {h} "
                "pixels); points must be in pixels (x = column, y = row) of this image",
            )
        if centres is not None:
            result.note = add_note(result.note, points_in_units(centres, data))
        seg = segment(
            data.pixels, model, settings, progress=progress, cancel=cancel, centres=centres
        )
        if centres is not None:  # a point that gave no cell is said, not dropped quietly
            clicked = np.reshape(np.asarray(centres, float), (-1, 2))
            lost = np.flatnonzero(~points_kept(clicked, seg.centres))
            # a cell clicked twice (within 2 px of a point before it): said so
            twice = {i for i in lost if (np.hypot(*(clicked[:i] - clicked[i]).T) <= 2.0).any()}
            if twice:
                result.note = add_note(
                    result.note,
                    f"{len(twice)} of its {len(centres)} points lie within 2 px of another "
                    "(the same cell clicked twice): one cell each",
                )
            missed = [tuple(clicked[i]) for i in lost if i not in twice]
            if missed:
                at = "; ".join(f"x {x:.0f}, y {y:.0f}" for x, y in missed[:3])
                more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
                result.note = add_note(
                    result.note,
                    f"{len(missed)} of its {len(centres)} points gave no cell ({at}{more}: "
                    "nothing there to outline, or left out by the size or edge rules)",
                )
        grown = _grown(seg.labels, settings)
        table = measure_image(
            seg.labels, data, centres=seg.centres, transform=grown, **settings.measured()
        )
        size, unit = table.pixel_size, table.unit or "um"  # as measured: given, or the file's
        writers = {
            "labels": lambda p: write_labels(p, seg.labels, size, unit, overwrite),
            "overlay": lambda p: write_overlay(
                p,
                data.display_pixels,
                seg.labels,
                seg.centres,
                overwrite,
                ring=settings.ring_width,
                transform=grown,
            ),
            "cells": lambda p: write_table(p, table, overwrite=overwrite),
            "roi": lambda p: write_roi_zip(
                p, seg.labels, overwrite, ring=settings.ring_width, transform=grown
            ),
        }
        for kind, target in targets.items():
            writers[kind](target)
            written.append(target)
            result.outputs[kind] = target
        result.segmentation, result.table = seg, table
        result.n_cells = seg.n_cells
        result.diameter = float(seg.settings["diameter_px"])
        if seg.settings.get("diameter_measured") is False:  # said, not taken for a measure
            result.note = add_note(result.note, seg.settings["diameter_estimate"])
        result.settings = seg.settings
        areas = np.bincount(seg.labels.ravel())[1:]
        result.mean_area = float(areas.mean()) if seg.n_cells else float("nan")
    except Cancelled:
        result.status = "cancelled"
    except ImageError as exc:  # (one found in its pixels, not its file, named by its file)
        error = str(exc if exc.path is not None else ImageError(path, exc.reason))
        if page is not None and name not in (None, Path(path).name):  # one page of many:
            error = error.replace(f"{path}: ", f"{path} page {page}: ", 1)  # which one
        result.status, result.error = "failed", error
    except OutputExists as exc:
        result.status, result.error = "skipped", str(exc)
    except MemoryError:
        result.status, result.error = "failed", f"{path}: out of memory while segmenting"
    except OSError as exc:
        if exc.errno in _FOLDER_FULL:  # no image after it could be written either: stop
            _remove(written)
            raise
        result.status, result.error = "failed", f"{path}: {type(exc).__name__}: {exc}"
    except Exception as exc:  # one bad image must not stop a batch; say which and why
        if "bad_alloc" in str(exc):  # onnxruntime's own out of memory
            result.status, result.error = "failed", f"{path}: out of memory while segmenting"
        else:
            result.status, result.error = "failed", f"{path}: {type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C while its files are written: they go, then the run stops
        _remove(written)
        raise
    if result.status != "done":
        _remove(written)  # nothing half-done stays on disk
        result.outputs = {}
        result.segmentation = result.table = None
    result.seconds = time.perf_counter() - started
    return result


#: Errors writing a result that hold for every image after it (the disk full, over its quota,
#: read-only): the batch stops, saying so once, instead of failing each image by name.
_FOLDER_FULL = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextmanager
def _alone_in(out: Path) -> Iterator[None]:
    """Hold the folder ``out`` for one run while it runs: another run writing into it at the
    same time (a second command, the window and a terminal, a continued run started twice)
    is refused, saying so, instead of both segmenting the same images and mixing their
    tables. An advisory lock of the folder (flock), let go when the run ends or its process
    dies; not held where the system has none (Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUse(
                f"{out}: another cellprop run is writing its results into this folder now; "
                "wait for it to end (or stop it), or choose another result folder"
            ) from None
        yield
    finally:
        os.close(fd)


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for a name no file can have (too long: that image
    fails by name, the batch goes on)."""
    try:
        return path.exists()
    except OSError:
        return False


def _remove(files: list[Path]) -> None:
    for p in files:
        p.unlink(missing_ok=True)


def _versions() -> dict:
    import onnxruntime
    import scipy
    import skimage

    from cellprop import __version__

    return {
        "cellprop": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        # getattr: skimage sets it lazily, out of a type checker's sight (and a frozen app
        # may lack the package metadata importlib.metadata would read)
        "scikit-image": str(getattr(skimage, "__version__", "")),
        "onnxruntime": onnxruntime.__version__,
    }


def process_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    model,
    settings: Settings | None = None,
    overwrite: bool = False,
    roi: bool = False,
    workers: int | str = 1,
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_result: Callable[[ImageResult], None] | None = None,
    page: int | str | None = None,
    channel: int | None = None,
    points: dict | None = None,
    resume: bool = False,
    track: bool | TrackSettings = False,
) -> BatchResult:
    """Process many images into one folder, keeping a record of the run there as it goes.

    Writes each image's files as :func:`process_image` does, DIR/run.json (what makes the
    results) before the first image, a DIR/summary.csv row as each image ends, and at the end
    DIR/cells.csv with summary.csv and run.json in input order (engine/journal.py).

    Parameters
    ----------
    paths : iterable of path
        Image files (see :func:`cellprop.engine.find_images`), or the :class:`Plane` items
        :func:`batch_planes` made of them (for this ``page`` and ``channel``).
    out_dir : path
        Result folder (created).
    page : int or "all", optional
        The page of multi-page files to segment (default: the first), or ``"all"``: each page
        of a multi-page file as an image of its own, named ``<stem>_p<page>c<channel>``
        (:func:`batch_planes`; a time-lapse gives a label image and a table per time point,
        and ``cells.csv`` all of them).
    workers : int or "auto"
        Images processed at the same time, each in its own process with its own copy of the
        model and an equal share of the CPU cores for onnxruntime (threads would not do: the
        graph cut, PyMaxflow, holds Python's lock). Each worker holds one image's memory
        (``settings.memory_mb`` plus the image's arrays). 1: in this process. ``"auto"``:
        :func:`auto_workers`. Workers are spawned: a script that asks for more than one must
        keep its top level under ``if __name__ == "__main__":``, or each worker runs it again.
    progress : callable, optional
        ``progress(name, fraction)``: the image just finished and the fraction of images done.
    on_result : callable, optional
        Called with each :class:`ImageResult` as it completes (in completion order; images
        kept from an earlier run first).
    points : dict, optional
        Cell centres to segment instead of detecting cells, as :func:`cellprop.engine.read_points`
        gives them: ``{image file name: [N, 2] (x, y)}``, or ``{"": ...}`` for every image. An
        image the dict does not name fails (by name), and the batch goes on. A page of a
        multi-page file (``page="all"``) is named as its results are (``movie_p3c0.tif``);
        its first page also by the file's name. Images of one name in different folders are
        named by their path (``A01/field1.tif``) or their results' name (``A01_field1.tif``):
        :func:`planes_points`.
    resume : bool
        Continue the earlier run in ``out_dir`` (cancelled, interrupted or killed; or finished,
        to try its failed images again): the images it finished whose files are all there are
        kept as they are (``ImageResult.kept``), the others are segmented. The model, settings,
        planes and centres must be those of that run. Images it finished that ``paths`` does
        not hold stay in the run, after the others (:func:`continued_planes`). Not with
        ``overwrite``.
    track : bool
        Follow the cells of each time-lapse from time point to time point: the pages of a
        multi-page file (``page="all"``), and the images of one folder in their order (a
        folder of frames, ``t000.tif``, ``t001.tif``, ...; the files of other folders are
        other time-lapses). Once every image is done, each one's cell table (its
        ``_cells.csv`` and ``cells.csv``) gains :data:`cellprop.engine.track.TRACK_COLUMNS`,
        and DIR/tracks.csv describes every track (:func:`cellprop.engine.track.measure_tracks`,
        with ``Sequence``, the file or folder, first, and the first and last image's names).
        An image that failed is a time point missed, a gap a track may go on across; time
        points of another size start anew. ``True`` follows them with the default
        :class:`~cellprop.engine.track.TrackSettings`, or give the settings (how far a cell
        may move between time points, the gaps closed); a continued run that follows them
        otherwise follows the cells it kept again, their links mended by hand kept
        (:attr:`BatchResult.followed_again`).

    Returns
    -------
    BatchResult
        Results in input order. A failed image does not stop the batch.

    Raises
    ------
    OutputExists
        A run file (cells.csv, summary.csv, run.json) exists, and neither ``overwrite`` nor
        ``resume`` is set; raised before any image is processed.
    ResumeError
        ``resume`` and the folder holds no run to continue, or one made another way (the
        message says what differs); raised before any image is processed.
    FolderInUse
        Another run is writing into ``out_dir`` now (a ResumeError).
    """
    if page is not None and page != "all" and not isinstance(page, numbers.Integral):
        raise ValueError(f"page must be a page number or 'all', not {page!r}")
    files = batch_planes(paths, page, channel)
    clashed = _clashing(files)  # (they fail by name; the others run)
    settings = settings if settings is not None else Settings()
    if workers == "auto":
        workers = auto_workers(len(files))
    elif not isinstance(workers, numbers.Integral) or isinstance(workers, bool):
        raise ValueError(f"workers must be a whole number or 'auto', not {workers!r}")
    if resume and overwrite:
        raise ValueError("a run is either continued (resume) or replaced (overwrite), not both")
    out = Path(out_dir)
    clashed.update(_over_inputs(files, out, roi, clashed))
    hold = ExitStack()  # this run's hold on its folder (_alone_in), let go however it ends
    held = out.is_dir()
    if held:
        hold.enter_context(_alone_in(out))
    try:
        following = TrackSettings.following(track)
        record = run_record(model, settings, roi, page, channel, points, following)
        if settings.diameter != "auto":  # (else each image's own, known once it is segmented)
            record["resolved"] = resolve_settings(model, settings)  # the defaults it stands for
        kept: dict[int, ImageResult] = {}
        left_over: list[str] = []  # a replaced run's images not among these, their files left
        replaced: dict[str, dict] = {}  # the replaced run's files of the images given again
        changed: dict[int, str] = {}  # images segmented again, their image changed: why
        refused: dict[int, ImageResult] = {}  # images whose labels changed and cannot be used
        earlier, refollowed, was = None, [], None
        if resume:
            earlier = earlier_run(out)
            if earlier is None:
                raise ResumeError(f"{out}: no earlier run to continue here (no run.json)")
            if not (out / "summary.csv").is_file():  # written with run.json, as the run began
                raise ResumeError(
                    f"{out / 'summary.csv'} is missing: it says which images the run finished, "
                    "so that their files (labels drawn over in Fiji too) are kept; put it back, "
                    "or replace the run (--overwrite; in the window, Replace)"
                )
            problem = earlier.difference(record)
            if problem:
                raise ResumeError(problem)
            other = _of_other_files(earlier, files)
            if other:
                raise ResumeError(other)
            files = continued_planes(files, earlier)
            anew = earlier.measured_otherwise(record)  # the pixel size, say: measured again
            refollowed = earlier.followed_otherwise(record)  # another reach: followed again
            was = TrackSettings.of(earlier.record.get("tracking")) if refollowed else None
            kept = _kept(files, out, earlier, model, settings, roi, channel, anew, changed, refused)
            if roi and not earlier.record.get("roi", False):  # ROI sets asked only now
                for i, result in kept.items():
                    result.outputs = output_paths(files[i].target, out, True)
                    labels = read_labels(result.outputs["labels"])
                    write_roi_zip(
                        result.outputs["roi"], labels, overwrite=True, ring=settings.ring_width
                    )
            _remove_leftovers(files, out, roi)
        else:
            for name in RUN_FILES:
                if (out / name).exists() and not overwrite:
                    raise OutputExists(out / name)
            if overwrite:
                left_over = _replaced_images(out, files)
                replaced = _replaced_files(out, files)
        out.mkdir(parents=True, exist_ok=True)
        if not held:  # a folder made now: held from here
            hold.enter_context(_alone_in(out))
        started = time.perf_counter()
        journal = Journal(out, record, replace=overwrite or resume, kept=list(kept.values()))
        results: list[ImageResult | None] = [None] * len(files)
        done = 0
        # Continuing a run, the other images' files there are its own: an image it was writing
        # when it stopped has some of them, and they are replaced.
        if points is not None:  # each image's centres, or why it has none
            points = planes_points(points, files, channel)
        args = (out, settings, overwrite or resume, roi, channel, points)
        resolved: dict = {}

        def finish(i: int, res: ImageResult) -> None:
            nonlocal done
            done += 1
            if res.table is not None:  # as its file holds it (a kept one read back has so)
                res.table = as_written(res.table)
            if i in changed and not res.kept:
                res.note = add_note(res.note, changed[i])
                left = [
                    p.name
                    for p in output_paths(files[i].target, out, roi).values()
                    if res.status != "done" and p.is_file()
                ]
                if left:  # (the earlier run's results of it, maybe all there is of its image)
                    res.error = (
                        f"{res.error}; the earlier run finished it, and its files from then "
                        f"are left as they were, out of the tables: {', '.join(left)}"
                    )
            if not res.kept:
                journal.add(res)
            _remove_replaced(res, replaced.get(res.name))
            if on_result is not None:
                on_result(res)
            if progress is not None:
                progress(res.name, done / len(files))
            # Keep the small per-cell table, not the image-sized arrays: a batch of a thousand
            # frames must not hold a thousand label images.
            if res.segmentation is not None:
                resolved.setdefault("settings", res.segmentation.settings)
                res.segmentation = None
            results[i] = res

        kept = {i: r for i, r in kept.items() if i not in clashed}
        for i, res in [*kept.items(), *refused.items(), *clashed.items()]:
            finish(i, res)
        todo = [
            i for i in range(len(files)) if i not in kept and i not in refused and i not in clashed
        ]
        workers = max(1, min(workers, len(todo)))
        if workers == 1:
            for i in todo:
                finish(i, _one(files[i], model, args, cancel))
        else:
            running = [files[i] for i in todo]
            # A lost image's second try replaces its own files, unless they were there before
            # the run (a user's, never replaced without overwrite).
            before = set()
            if not (overwrite or resume):
                for k, plane in enumerate(running):
                    if any(_exists(p) for p in output_paths(plane.target, out, roi).values()):
                        before.add(k)
            again = (*args[:2], True, *args[3:])
            jobs = in_processes(
                running,
                _one,
                model,
                args,
                workers,
                cancel,
                lambda k: args if k in before else again,
            )
            for k, res in jobs:
                finish(todo[k], res)
        final = [r for r in results if r is not None]
        restarted: list[str] = []
        if following is not None:
            linked = _earlier_before(earlier, page == "all")
            restarted = _follow(final, out, page == "all", linked, channel, following, was)
        elif overwrite and (out / "tracks.csv").is_file():
            (out / "tracks.csv").unlink()  # the replaced run's, which followed its cells
        used = resolved.get("settings") or (earlier and earlier.record.get("resolved"))
        if isinstance(used, dict):  # every image kept: the earlier run's, measured as now
            used = {**used, **settings.measured()}
        journal.close(
            final,
            {
                "resolved": used,
                "provider": model.provider,
                "device": model.device,
                "workers": workers,
                "seconds": round(time.perf_counter() - started, 3),
                "versions": _versions(),
            },
            replace_cells=overwrite or resume,
        )
        return BatchResult(
            results=final,
            out_dir=out,
            followed_again=refollowed,
            restarted=restarted,
            left_over=left_over,
        )

    finally:
        hold.close()


def sequences(items: list, by_page: bool) -> list[tuple[str, list[int], list[int]]]:
    """The time-lapses among a batch's images (``items``: ImageResult or Plane, in input
    order, failed ones too): the pages of a multi-page file where ``by_page``, else the
    images of one folder. Returns (its name as tracks.csv gives it, the indexes of its
    items, their time points: pages, or places in the folder's order)."""
    groups: dict = {}
    for k, item in enumerate(items):
        paged = by_page and item.page is not None
        # (an image kept by a run: its path as recorded; a link: the folder it lies in)
        where = _folder_of(Path(item.path)) / Path(item.path).name
        key = (str(where), True) if paged else (str(where.parent), False)
        groups.setdefault(key, []).append(k)
    folders = [Path(where) for where, paged in groups if not paged]
    named = dict(zip(map(str, folders), _folder_names(folders), strict=True))
    found = []
    for (where, paged), members in groups.items():
        if paged:
            members.sort(key=lambda k: items[k].page)
            name = re.sub(r"_p\d+c\d+(?=\.[^.]*$)", "", items[members[0]].name)
            pages = [items[k].page for k in members]
            for suffix, own, times in _over_time(Path(items[members[0]].path), members, pages):
                found.append((name + suffix, own, times))
        else:  # in name order (t8 before t10), whatever order the files were given in
            members.sort(key=lambda k: _natural_key(Path(Path(items[k].path).name)))
            stems = [Path(items[k].path).stem for k in members]
            found.append((named[where], members, times_in_names(stems)))
    return found


def times_in_names(stems: list[str]) -> list[int]:
    """The time points of a folder's images (their stems, in name order): by the one number
    their names differ in, counted in its step (t000, t001, t003: 0, 1, 3, a time point
    missed; frame_0120, frame_0240, frame_0480: 0, 1, 3), where the numbers keep one step
    but for time points missing; else by their places (0, 1, 2, ...)."""
    places = list(range(len(stems)))
    varying = _varying_numbers(stems)
    if varying is None or varying.shape[1] != 1:
        return places
    values = varying[:, 0]
    steps = np.diff(values)
    if (steps <= 0).any() or (steps % steps.min()).any():
        return places
    return [int(v) for v in (values - values[0]) // steps.min()]


def _over_time(path: Path, members: list[int], pages: list[int]) -> list[tuple]:
    """The time-lapses among the pages of one file (``members``, of ``pages``): all of them,
    in page order, unless its header says its pages are slices (a 3-D stack: each slice on
    its own, no cell followed from slice to slice; a hyperstack of time points of slices:
    each slice followed over the time points). Returns [(suffix of its name, its members,
    their time points)]."""
    axes = page_axes(path)
    if not any(axis == "Z" and n > 1 for axis, n in axes):
        return [("", members, pages)]
    sizes = [n for _, n in axes]
    groups: dict[tuple, list] = {}
    for k, page in zip(members, pages, strict=True):
        if page >= math.prod(sizes):
            return [("", members, pages)]  # the header says otherwise than the run read it
        where = dict(zip([a for a, _ in axes], np.unravel_index(page, sizes), strict=True))
        place = tuple((a.lower(), int(i)) for a, i in where.items() if a != "T")
        groups.setdefault(place, []).append((k, int(where.get("T", 0))))
    return [
        (" " + " ".join(f"{a}{i}" for a, i in place), [k for k, _ in own], [t for _, t in own])
        for place, own in groups.items()
    ]


def _folder_names(folders: list[Path]) -> list[str]:
    """The names time-lapses in these folders go by in tracks.csv: the folder's name, and
    where folders of one name hold time-lapses (plate/A01/pos1, plate/A02/pos1) as much of
    their paths as tells them apart (A01/pos1, A02/pos1)."""
    names = [f.name for f in folders]
    for name in set(names):
        alike = [k for k, n in enumerate(names) if n == name]
        if len(alike) < 2:
            continue
        common = Path(os.path.commonpath([folders[k] for k in alike]))
        for k in alike:
            names[k] = folders[k].relative_to(common).as_posix() if common != folders[k] else name
    return names


def _of_other_files(earlier: EarlierRun, files: list[Plane]) -> str:
    """Why a run over ``files`` cannot continue ``earlier``, in words, where it read other
    files under the same names (``day2/t000.png`` given to continue a run of
    ``day1/t000.png``: its outlines were kept and measured on the other image, or its files
    replaced as "changed since"); "" where none. An image the run read from a file that is
    gone since is not one: moved, it is continued and its pixels compared."""
    sources = {plane.name: plane.path for plane in files}
    other = [
        name
        for name in earlier.of_other_files(sources)
        if Path(earlier.rows[name].get("Path") or "").exists()
    ]
    if not other:
        return ""
    recorded = earlier.rows[other[0]]["Path"]
    more = f" (and {len(other) - 1} more of the same names)" if len(other) > 1 else ""
    return (
        f"{earlier.folder}: its results are of other images of these names: {other[0]} "
        f"from {recorded}, not {sources[other[0]]}{more}; continue it with its own images, "
        "or write to another folder (or replace it: --overwrite)"
    )


def _recorded_planes(run: EarlierRun) -> list[Plane]:
    """The images of an earlier run's summary, in its order, as planes (its images' paths
    as recorded)."""
    planes = []
    for name, row in run.rows.items():
        page = str(row.get("Page") or run.record.get("page"))
        planes.append(
            Plane(Path(row.get("Path") or name), int(page) if page.isdigit() else None, name)
        )
    return planes


def _run_sequences(run: EarlierRun, planes: list[Plane], by_page: bool) -> list[tuple]:
    """The time-lapses among a run's images (``planes``: :func:`_recorded_planes`), as
    :func:`sequences` gives them: as its record names them where the window exported them
    (run.json's ``"sequences"``: each image's time-lapse and time point as followed, the
    folder's other images none, a time point closed a gap), else found from its files."""
    given = run.record.get(SEQUENCES)
    if not isinstance(given, dict):
        return sequences(planes, by_page)
    groups: dict[str, list] = {}
    for k, plane in enumerate(planes):
        entry = given.get(plane.name)
        if isinstance(entry, list) and len(entry) >= 2:
            groups.setdefault(str(entry[0]), []).append((int(entry[1]), k))
    found = []
    for name, members in groups.items():
        members.sort()
        found.append((name, [k for _, k in members], [t for t, _ in members]))
    return found


def _earlier_before(earlier: EarlierRun | None, by_page: bool) -> dict[str, str]:
    """{image: the image just before it in its time-lapse} of an earlier run that followed
    its cells (empty for none)."""
    if earlier is None or not earlier.record.get("track"):
        return {}
    planes = _recorded_planes(earlier)
    before = {}
    for _, members, times in _run_sequences(earlier, planes, by_page):
        for a, b, ta, tb in zip(members, members[1:], times, times[1:], strict=False):
            if tb == ta + 1:
                before[planes[b].name] = planes[a].name
    return before


def _follow(
    results: list[ImageResult],
    out: Path,
    by_page: bool,
    before: dict,
    channel: int | None = None,
    settings: TrackSettings | None = None,
    was: TrackSettings | None = None,
) -> list[str]:
    """Follow the cells of each time-lapse among ``results`` (:func:`sequences`) with
    ``settings``, add the track columns to their tables and ``_cells.csv`` files, number the
    cells of their overlays by track (:func:`_number_by_track`; ``channel`` as the images
    were read), and write tracks.csv (``before``: :func:`_earlier_before` of the run
    continued; ``was``: how it followed them, where otherwise than ``settings``). Returns
    the names of the images where a time-lapse started anew, a field of another size."""
    rows: list[dict] = []
    restarted: list[str] = []
    for name, members, times in sequences(results, by_page):
        followed = [results[k] for k in members]
        rows += _follow_one(name, followed, times, before, settings, was, restarted)
        for result in followed:
            if result.sequence is not None:
                _number_by_track(result, channel)
    write_rows(out / "tracks.csv", rows, overwrite=True, columns=TRACKS_CSV_COLUMNS)
    return restarted


def _grown(labels: np.ndarray, settings: Settings) -> tuple | None:
    """The labels' feature transform where a ring is measured, so that the table's rings and
    the overlay's come from one (on 16 MP, about 3 s each); None without a ring."""
    return feature_transform(labels) if settings.ring_width else None


def _number_by_track(result: ImageResult, channel: int | None) -> None:
    """Draw a followed image's overlay again with each cell's track beside it instead of its
    ``ObjectNumber``: one cell, one number at every time point, as the window colours it.
    Left as it was where the image, its labels or its table cannot say (read failing since,
    a table without tracks)."""
    target, table = result.outputs.get("overlay"), result.table
    if target is None or table is None:
        return
    tracks = table_tracks(table, len(table))
    centres = detection_centres(table)
    if not len(tracks) or centres is None:
        return
    try:
        labels = read_labels(result.outputs["labels"])
        data = read_plane(result.path, page=result.page, channel=channel)
    except (OSError, ValueError, ImageError):
        return
    if labels.shape != data.pixels.shape[:2] or int(labels.max(initial=0)) != len(tracks):
        return
    ring = int((result.settings or {}).get("ring_width") or 0)
    write_overlay(
        target, data.display_pixels, labels, centres, overwrite=True, numbers=tracks, ring=ring
    )


def _recorded_links(result: ImageResult, previous: ImageResult, before: dict) -> Links | None:
    """The links of a kept image to the one before it as its table records them, where the
    earlier run followed the two as neighbours and kept both: they may hold links mended by
    hand (the window's *Cell Before*, exported into the run's folder), never to be linked
    over. None where they must be linked."""
    if not (result.kept and previous.kept and before.get(result.name) == previous.name):
        return None
    mother, table = previous.table, result.table
    if mother is None or table is None:
        return None
    if any(not set(TRACK_COLUMNS[:2]) <= set(t.columns) for t in (mother, table)):
        return None
    source, wrong = _cells_before(table, mother)
    if wrong.all():
        return None  # no cell before that is one (another table's?): linked as labels say
    if wrong.any():  # a typing error: that cell linked as the labels say (_typed_wrong)
        columns = dict(table.columns)
        columns[TRACK_COLUMNS[1]] = np.where(wrong, 0, source)
        table = replace(table, columns=columns)
    return links_from_tables([mother, table])[1]


def _said_new(table) -> Links | None:
    """The links of a kept image that follows a time point missed (none to it) where its
    table says cells came in (``TrackObjects_GapLength`` -1, ``ParentObjectNumber`` 0, set
    by hand): no gap is closed to those; None where it says none such."""
    gaps, sources = table.columns.get(TRACK_COLUMNS[4]), table.columns.get(TRACK_COLUMNS[1])
    n = len(table)
    if gaps is None or sources is None or len(gaps) != n or len(sources) != n:
        return None
    said = (np.asarray(gaps, float) < 0) & (np.asarray(sources, float) == 0)
    if not said.any():
        return None
    none = np.zeros(n, np.int64)
    return Links(none, none.astype(bool), np.where(said, 0, 1))


def _mend_typed_wrong(
    recorded: Links,
    result: ImageResult,
    previous: ImageResult,
    before: np.ndarray,
    after: np.ndarray,
    settings: TrackSettings,
) -> Links:
    """``recorded`` (:func:`_recorded_links`) with each cell whose table names a cell before
    that is none (:func:`_typed_wrong`) linked as the labels (``before``, ``after``) say,
    the others' mends kept; ``result``'s note names them."""
    wrong = _typed_wrong(result, previous)
    if not wrong:
        return recorded
    made = link_frames(before, after, settings).source
    n_before = int(before.max(initial=0))
    for cell in wrong:
        recorded = relink(recorded, cell, int(made[cell - 1]), n_before)
    result.note = add_note(
        result.note,
        f"its table named for cell(s) {', '.join(map(str, wrong))} a cell before that "
        f"{previous.name} has not (typed wrong?): linked as the labels say",
    )
    return recorded


def _typed_wrong(result: ImageResult, previous: ImageResult) -> list[int]:
    """The cells of a kept image whose table names a cell before that the image before has
    not (a typing error in a mend by hand), where others are right: linked as the labels
    say (:func:`_recorded_links` read them as new cells)."""
    table, mother = result.table, previous.table
    if table is None or mother is None or TRACK_COLUMNS[1] not in table.columns:
        return []
    wrong = _cells_before(table, mother)[1]
    return [] if wrong.all() else [int(k) + 1 for k in np.flatnonzero(wrong)]


def _cells_before(table, mother) -> tuple[np.ndarray, np.ndarray]:
    """The cell before each cell of ``table`` as it records it (0 where a gap was closed: a
    cell further back, not of ``mother``, as :func:`links_from_tables` reads it), and where
    that is no cell of ``mother`` (a typing error)."""
    source = np.asarray(table.columns[TRACK_COLUMNS[1]], float)
    gaps = table.columns.get(TRACK_COLUMNS[4])
    if gaps is not None and len(gaps) == len(source):
        source = np.where(np.asarray(gaps, float) > 1, 0, source)
    return source, ~((source >= 0) & (source <= len(mother)) & (source % 1 == 0))


def _follow_one(
    sequence: str,
    members: list[ImageResult],
    times: list[int],
    before: dict | None = None,
    settings: TrackSettings | None = None,
    was: TrackSettings | None = None,
    restarted: list[str] | None = None,
) -> list[dict]:
    """Follow the cells of one time-lapse's images (``members`` at time points ``times``):
    their tables and ``_cells.csv`` files gain the track columns, and each its place in the
    time-lapse (``ImageResult.sequence``); returns tracks.csv's rows. An image not done (or
    whose label file cannot be read back) is a time point missed, a gap that a track may go
    on across (``TrackSettings.max_gap``); one of another size ends the tracks, those after
    it start anew. Two images a continued run kept that it followed one after the other
    (``before``: :func:`_earlier_before`) keep the links their tables record; where it
    followed them otherwise (``was``), only those mended by hand (:func:`follow_again`)."""
    settings = settings if settings is not None else TrackSettings()
    tracker = Tracker(settings)
    followed: list[int] = []  # the members in the tracker, by index
    mended: list[int] = []  # ... of those, the ones whose links their tables recorded
    keep: dict[int, np.ndarray] = {}  # ... linked anew but for these cells, mended by hand
    breaks: list[int] = []  # ... and the ones of another size than the one before
    shape = None
    previous: np.ndarray | None = None  # the labels of the member just followed
    for k, r in enumerate(members):
        if r.status != "done" or r.table is None:
            tracker.restart()  # a time point missing: a gap that may be closed
            continue
        if followed and times[k] - times[followed[-1]] > 1:  # names that skip time points:
            tracker.restart()  # missed there, a gap closed as --max-gap allows (it was
            previous = None  # linked across, whatever --max-gap)
        try:
            labels = read_labels(r.outputs["labels"])
        except (OSError, ValueError):  # gone or damaged since it was written: as if missing
            tracker.restart()
            continue
        if labels.shape != shape:
            tracker.restart()  # another size: not the same field
            previous = None
            if shape is not None:
                breaks.append(len(followed))
                if restarted is not None:
                    restarted.append(r.name)
            shape = labels.shape
        recorded = None
        if followed and followed[-1] == k - 1 and previous is not None:
            recorded = _recorded_links(r, members[k - 1], before or {})
        elif r.kept:  # after a time point missed: no links, but its cells said to have come
            said = _said_new(r.table)  # in stay so, no gap closed to them
            if said is not None:
                mended.append(len(followed))
                tracker.add(labels, said)
                followed.append(k)
                previous = labels
                continue
        if recorded is not None and previous is not None:
            recorded = _mend_typed_wrong(recorded, r, members[k - 1], previous, labels, settings)
        if recorded is not None and was is not None:  # followed otherwise: mends stay
            recorded = follow_again(recorded, previous, labels, was, settings)
            if recorded is not None:  # the rest linked anew: settled, the mended cells not
                fresh = link_frames(previous, labels, settings).source
                keep[len(followed)] = np.asarray(recorded.source) != fresh
        elif recorded is not None:
            mended.append(len(followed))
        tracker.add(labels, recorded)
        followed.append(k)
        previous = labels
    tracks = follow_tables(
        settle_divisions(tracker.tracks.links, leave=mended, keep=keep),
        [members[k].table for k in followed],
        [times[k] for k in followed],
        settings,
        breaks=breaks,
    )
    rows = track_rows(
        sequence,
        tracks,
        [members[k].table for k in followed],
        [times[k] for k in followed],
        [members[k].name for k in followed],
    )
    for k in followed:
        members[k].sequence = (sequence, times[k])
        members[k].tracking = settings.record()
        write_table(members[k].outputs["cells"], members[k].table, overwrite=True)
    return rows


def _remove_leftovers(files: list[Plane], out: Path, roi: bool) -> None:
    """Remove the temporary files of writes a killed run left in ``out`` (output.atomic_path
    names them ".<name>.<random><suffix>")."""
    targets = [out / name for name in RUN_FILES]
    for plane in files:
        targets += output_paths(plane.target, out, roi).values()
    for target in targets:
        start = glob.escape(temporary_stem(target))
        for left in out.glob(f"{start}.*{glob.escape(target.suffix)}"):
            left.unlink(missing_ok=True)


def _kept(
    files: list[Plane],
    out,
    earlier: EarlierRun,
    model,
    settings,
    roi,
    channel=None,
    anew: list[str] | None = None,
    again: dict[int, str] | None = None,
    refused: dict[int, ImageResult] | None = None,
) -> dict[int, ImageResult]:
    """The images of ``files`` the earlier run in ``out`` finished, as results taken over
    from it (by index into ``files``): those whose files are all there and agree, and those
    whose labels were changed since (:func:`_measured_again`: the labels kept, the rest made
    again from them). An image whose labels are gone or unreadable, or are the run's own with
    another of its files gone or damaged, is segmented again. ``anew``: the measurement
    settings given otherwise than the run's, in words (its :meth:`EarlierRun.measured_otherwise`):
    the cells kept are measured again with this run's (:func:`_measured_anew`). ``again``
    is given the images segmented again because their image changed since (another size,
    other pixels), by index: why, in words, for their note; ``refused`` the images whose
    label files changed since and cannot be used (:class:`_Protected`), as failed results:
    they are not segmented over."""
    kept = {}
    roi = roi and bool(earlier.record.get("roi", False))  # the files it wrote
    for i, plane in enumerate(files):
        row = earlier.rows.get(plane.name)
        if row is None or row.get("Status") != "done":
            continue
        targets = output_paths(plane.target, out, roi)
        try:
            result = _from_row(plane, row, targets, pixels=True)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            try:  # files the run wrote changed since: never segment over labels someone made
                result = _measured_again(plane, row, targets, settings, channel)
            except _Protected as protected:
                if refused is not None:
                    refused[i] = plane.result(status="failed", error=protected.advice())
                continue
            except (OSError, ValueError, ImageError):
                if isinstance(exc, _ImageChanged) and again is not None:
                    again[i] = exc.note
                continue  # damaged, or its image changed: segmented again
        else:
            otherwise = anew or _calibrated_otherwise(result, plane, settings)
            if otherwise:
                try:
                    result = _measured_anew(result, targets, settings, channel, otherwise)
                except (OSError, ValueError, ImageError):
                    continue  # its image gone or changed since: segmented again (or failed)
        given = settings
        if settings.diameter == "auto":
            given = replace(settings, diameter=result.diameter)
        result.settings = resolve_settings(model, given)
        kept[i] = result
    return kept


def _measured_again(
    plane: Plane, row: dict, targets: dict, settings: Settings, channel: int | None
) -> ImageResult:
    """An image the earlier run finished whose files no longer agree because its labels were
    changed since (cells drawn or taken out in Fiji, say: their count or mean area is not
    the one the run recorded). The labels are the user's: kept as they are (numbered 1..n
    again where cells were taken out, each cell's pixels as they are), and the other files
    made again from them and the image, as a kept result whose ``note`` says so; the
    detection centres in its table are then the cells' centroids. ValueError or OSError where
    the labels are gone or unreadable, do not fit the image, or are the run's own (another
    file of the image damaged: segmented again, as the run made it)."""
    started = time.perf_counter()
    try:
        labels = read_labels(targets["labels"])
    except NotLabels as exc:  # another image saved over it: perhaps cells drawn by hand
        raise _Protected(str(exc)) from exc
    every = np.bincount(labels.ravel())[1:]
    areas = every[every > 0]
    recorded = (row.get("Cells"), row.get("MeanArea_px"))
    rows_changed = False  # the labels as the run wrote them, rows of its table taken out
    if recorded[0] == str(len(areas)) and (
        not len(areas) or abs(float(recorded[1] or "nan") - areas.mean()) < 0.01
    ):
        try:  # as many cells, as large on average: drawn otherwise, if its table says so
            table = read_table(targets["cells"])
        except (OSError, UnicodeDecodeError, ValueError):
            table = None
        if table is None or _areas_agree(table, every):
            raise ValueError(f"{targets['labels']}: as the run wrote it")
        rows_changed = len(table) != len(areas)
    data = read_plane(plane.path, page=plane.page, channel=channel)
    if labels.shape != data.pixels.shape[:2]:  # changed since, and so is the image
        h, w = labels.shape
        raise _Protected(f"{targets['labels']}: {w} x {h} pixels, not the image's")
    ids, flat = np.unique(labels, return_inverse=True)
    numbered = flat.reshape(labels.shape).astype(labels.dtype)
    if ids[0] != 0:  # no background at all: every pixel a cell's
        numbered += 1
    n_cells = int(numbered.max(initial=0))
    centres, areas = centroids_and_areas(numbered, n_cells)  # where the user's cells are
    grown = _grown(numbered, settings)
    table = measure_image(numbered, data, centres=centres, transform=grown, **settings.measured())
    size, unit = table.pixel_size, table.unit or "um"
    if not np.array_equal(numbered, labels):
        write_labels(targets["labels"], numbered, size, unit, overwrite=True)
    write_overlay(
        targets["overlay"],
        data.display_pixels,
        numbered,
        centres,
        overwrite=True,
        ring=settings.ring_width,
        transform=grown,
    )
    write_table(targets["cells"], table, overwrite=True)
    if "roi" in targets:
        write_roi_zip(
            targets["roi"], numbered, overwrite=True, ring=settings.ring_width, transform=grown
        )
    return ImageResult(
        path=plane.path,
        name=plane.name,
        page=plane.page,
        n_pages=data.n_pages,
        n_cells=n_cells,
        mean_area=float(areas.mean()) if n_cells else float("nan"),
        seconds=time.perf_counter() - started,
        outputs=targets,
        table=table,
        image_info=data.description,
        diameter=float(row["Diameter_px"]) if row.get("Diameter_px") else None,
        channel=data.channel,
        digest=pixels_digest(data.pixels),
        kept=True,
        note=(
            f"its table has other rows than its labels' cells since the earlier run: made "
            f"again from the labels, every cell in them (to take cells out, set them to 0 in "
            f"{targets['labels'].name} or take them out in the window)"
            if rows_changed
            else "its files changed since the earlier run: its labels kept as they are, its "
            "cells measured again from them"
        ),
    )


def measure_again(
    labels: np.ndarray,
    data,
    table,
    centres: np.ndarray,
    pixel_size: float | None = None,
    neighbour_distance: int = 0,
    ring_width: int = 0,
    transform: tuple | None = None,
):
    """The cell table of a plane's cells (``labels``, detected at ``centres``) measured anew
    (:func:`measure_image`: another pixel size, neighbours found otherwise, another ring),
    keeping the track and the link to the time point before that ``table``, the one it
    replaces, records for each cell (mended links too), for the cells to be followed again
    from them (their distances and lifetimes are numbered anew: :func:`measure_tracks`);
    ``transform`` as :func:`measure_image` takes it."""
    fresh = measure_image(
        labels,
        data,
        pixel_size,
        centres=centres,
        neighbour_distance=neighbour_distance,
        ring_width=ring_width,
        transform=transform,
    )
    recorded = table.columns if table is not None else {}
    for name in LINK_COLUMNS:
        if name in recorded:
            fresh.columns[name] = recorded[name]
    return fresh


def several_series(stems: list[str]) -> bool:
    """Whether names of the images of one folder (their stems, in name order) look like
    several series rather than the time points of one: they differ otherwise than in
    numbers (posA_t0, posB_t0), or in more than one of their numbers (XY01_T001, XY02_T001;
    t001_z01, t001_z02). The time points of one time-lapse differ in one number alone."""
    varying = _varying_numbers(stems)
    return varying is None or varying.shape[1] > 1


def _varying_numbers(stems: list[str]) -> np.ndarray | None:
    """The numbers in which names (stems) differ, a row for each name and a column for each
    number that is not the same in all; None where they differ otherwise than in numbers."""
    parts = [re.split(r"(\d+)", stem) for stem in stems]
    if len({tuple(p[0::2]) for p in parts}) > 1:
        return None
    # (Python's integers: a name may hold a number of 20 digits)
    numbers = np.array([[int(n) for n in p[1::2]] for p in parts] or [[]], dtype=object)
    numbers = numbers.reshape(len(stems), -1) if stems else np.zeros((0, 0), object)
    return numbers[:, [len(set(numbers[:, i])) > 1 for i in range(numbers.shape[1])]]


def first_three(names: list[str]) -> str:
    """``names`` as a sentence shows them: the first three, and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def started_anew(names: list[str]) -> str:
    """What is said of the images where a followed time-lapse started anew, each a field of
    another size than the image before it (:attr:`BatchResult.restarted`)."""
    shown = first_three(names)
    return (
        f"tracks started anew at {shown}: a field of another size than the image before "
        "(not the same field: a stray frame in the folder?)"
    )


def replaced_left_over(names: list[str], out: str | Path) -> str:
    """What is said of the images a replaced run in ``out`` finished that are not among the
    images of the run that replaced it (:attr:`BatchResult.left_over`): their files stay."""
    shown = first_three(names)
    return (
        f"the files of {len(names)} image(s) the replaced run finished stay in {out} "
        f"({shown}), not in this run's tables; delete them if they are not wanted"
    )


def followed_again(changed: list[str]) -> str:
    """What is said of a continued run that followed the cells it kept again, following
    them otherwise (``changed``: :attr:`BatchResult.followed_again`)."""
    return (
        "the cells of the images kept followed again, "
        + "; ".join(changed)
        + " (links mended by hand kept)"
    )


def _clashing(files: list[Plane]) -> dict[int, ImageResult]:
    """The images of a batch that would write the same result files as another of it
    (``img.tif`` and ``img.png`` of one folder; ``A.tif`` and ``a.tif`` on a disk that does
    not tell case apart), as failed results by index, each naming the others: they fail, the
    rest of the batch runs (one such pair refused every image)."""
    failed = {}
    for members in clashes(files):
        for i in members:
            others = [files[j] for j in members if j != i]
            why = clash_message(
                others, files[i], "rename one, or segment them into different result folders"
            )
            failed[i] = files[i].result(status="failed", error=why)
    return failed


def _over_inputs(files: list[Plane], out: Path, roi: bool, failed: dict) -> dict[int, ImageResult]:
    """The images of a batch whose result files would be written over another of its images
    (results saved in the images' own folder, which holds ``crop0_labels.tif`` of the user's,
    a mask drawn by hand, opened as an image beside ``crop0.png``), as failed results by
    index, naming it: that image is never replaced by results (nor segmented after it was);
    the rest of the batch runs. ``failed``: those failing already."""
    # (by the files they are: a result folder reached through a link is the images' own)
    inputs = {os.path.normcase(os.path.realpath(p.path)): p for p in files}
    over = {}
    for i, plane in enumerate(files):
        if i in failed:
            continue
        for path in output_paths(plane.target, out, roi).values():
            other = inputs.get(os.path.normcase(os.path.realpath(path)))
            if other is not None:
                why = (
                    f"{plane.where}: its results would be written over {other.path}, an image "
                    "of this batch; save the results in another folder than the images'"
                )
                over[i] = plane.result(status="failed", error=why)
                break
    return over


def _replaced_images(out: Path, files: list[Plane]) -> list[str]:
    """The images the run in ``out`` (replaced now) finished that ``files`` do not hold and
    whose labels are still there: their files stay beside the new run's, not in its tables."""
    others = _finished_besides(out, {p.name for p in files}) or []
    return [name for name, _, targets in others if targets["labels"].is_file()]


def _replaced_files(out: Path, files: list[Plane]) -> dict[str, dict]:
    """The result files the run in ``out`` (replaced now) wrote for the images ``files`` give
    again, by name: {name: {kind: path}}."""
    given = {p.name for p in files}
    return {
        name: targets for name, _, targets in _finished_besides(out, set()) or [] if name in given
    }


def _remove_replaced(result: ImageResult, earlier: dict | None) -> None:
    """The files of ``result``'s image that the replaced run wrote (``earlier``) and this one
    did not write again go: all of them where the image failed now (an unusable file leaves
    no results), its ROI set where this run writes none (its cells are not the labels'). An
    image cancelled or skipped keeps them (not segmented now, as one not given)."""
    if not earlier or result.status not in ("done", "failed"):
        return
    written = set(result.outputs.values()) if result.status == "done" else set()
    for path in earlier.values():
        if path not in written:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _finished_besides(folder: str | Path, names) -> list[tuple[str, Plane, dict]] | None:
    """The images the batch run in ``folder`` finished other than ``names``: (name, plane,
    its result files), in the run's order; None where the folder holds no run (or its
    record cannot be read)."""
    try:
        run = earlier_run(folder)
    except ResumeError:
        return None
    if run is None:
        return None
    roi = bool(run.record.get("roi", False))
    return [
        (name, plane, output_paths(plane.target, Path(folder), roi))
        for plane, (name, row) in zip(_recorded_planes(run), run.rows.items(), strict=True)
        if row.get("Status") == "done" and name not in names
    ]


def _calibrated_otherwise(result: ImageResult, plane: Plane, settings: Settings) -> list[str]:
    """Where a kept image's table was measured with another pixel size than this run
    measures it with (a continued run that measured it anew was stopped half-way, and is
    continued now as the run was made): why, in words, for it to be measured again; else
    empty. Its table's calibration is its labels' (:func:`_from_row`), this run's the one
    given, else its file's."""
    was = result.table.pixel_size if result.table is not None else None
    now = settings.pixel_size
    if now is None:
        now = pixel_size_of(plane.path)[0] if plane.path.is_file() else None
    if was is None and now is None:
        return []
    if was is not None and now is not None and math.isclose(was, now, rel_tol=1e-6):
        return []
    shown = lambda size: "none" if size is None else f"{size:g}"  # noqa: E731
    return [f"pixel size: {shown(was)} in its table, {shown(now)} in this run"]


def _measured_anew(
    result: ImageResult, targets: dict, settings: Settings, channel: int | None, anew: list[str]
) -> ImageResult:
    """An image a run kept (``result``, from :func:`_from_row`) measured again with the
    measurement settings of the run continuing it (another pixel size, neighbours found
    otherwise: ``anew``, in words), its cells as they are: the same labels (written again
    with the new calibration), the same detection centres, and the links its table records
    (mended ones too) carried over for the cells to be followed again; its overlay drawn
    again (a ring measured now shows), its ROIs written again where the run wrote them (the
    rings among them). ValueError (naming the file) where the labels do not fit the image any
    more."""
    started = time.perf_counter()
    labels = read_labels(targets["labels"])
    data = read_plane(result.path, page=result.page, channel=channel)
    if labels.shape != data.pixels.shape[:2]:
        h, w = labels.shape
        raise ValueError(f"{targets['labels']}: {w} x {h} pixels, not the image's")
    old = result.table
    centres = detection_centres(old)
    if centres is None:
        centres = centroids_and_areas(labels, result.n_cells)[0]
    grown = _grown(labels, settings)
    table = measure_again(labels, data, old, centres, transform=grown, **settings.measured())
    size, unit = table.pixel_size, table.unit or "um"
    write_labels(targets["labels"], labels, size, unit, overwrite=True)
    write_table(targets["cells"], table, overwrite=True)
    write_overlay(
        targets["overlay"],
        data.display_pixels,
        labels,
        centres,
        overwrite=True,
        ring=settings.ring_width,
        transform=grown,
    )
    if "roi" in targets:  # a ring measured now, or otherwise, is in them
        write_roi_zip(
            targets["roi"], labels, overwrite=True, ring=settings.ring_width, transform=grown
        )
    return replace(
        result,
        table=table,
        image_info=data.description,
        seconds=result.seconds + time.perf_counter() - started,
        channel=data.channel,
        note=f"{MEASURED_AGAIN}, " + "; ".join(anew),
    )


class _Protected(ValueError):
    """An image's label file changed since the run, and cannot be used as it is now (no
    label image, or another size than the image): never segmented over (it may hold cells
    drawn by hand); the image fails, saying so."""

    def advice(self) -> str:
        return (
            f"{self}: not segmented over, as it may hold cells drawn by hand; save it as a "
            "16-bit label image of the image's size, or delete it to segment the image again"
        )


class _Disagree(ValueError):
    """An image's files disagree (its table and its labels count other cells)."""


class _ImageChanged(ValueError):
    """An image is not the one its results were made from (other pixels under its name)."""

    def __init__(self, where: str, how: str) -> None:
        super().__init__(f"{where}: {how}")
        self.note = f"its image changed since the earlier run ({how}): segmented again"


def _areas_agree(table, areas: np.ndarray) -> bool:
    """Whether a cell table's areas in pixels (``AreaShape_Area``) are ``areas``, its labels'
    (by label, from 1); True for a table without them."""
    recorded = table.columns.get("AreaShape_Area") if table is not None else None
    if recorded is None:
        return True
    recorded = np.asarray(recorded, float)
    return len(recorded) == len(areas) and bool(np.array_equal(recorded, areas))


def _from_row(plane: Plane, row: dict, targets: dict, pixels: bool = False) -> ImageResult:
    """An image a run finished, from its summary.csv row and its files (``targets``), as a
    kept result; ValueError (naming the file) or OSError where a file is missing or damaged,
    :class:`_ImageChanged` where the image is of another size now, or, with ``pixels`` (the
    image read again: a continued run), has other pixels than its row's ``Digest``.

    The files are the truth, not the row: cells corrected in the app and exported into the
    run's folder count as they are now."""
    for target in targets.values():
        if not target.is_file():
            raise ValueError(f"{target}: missing")
    labels = read_labels(targets["labels"])
    size = plane_size(plane.path, plane.page)  # the image as it is now (None: cannot say)
    if size is not None and size != labels.shape:  # replaced since by another image
        h, w = size
        raise _ImageChanged(plane.where, f"{w} x {h} pixels now, not its results' size")
    digest = row.get("Digest") or ""  # (a run before fingerprints: not compared)
    channel = row_channel(row)
    if pixels and digest and plane.path.is_file():  # (gone since: its results stay)
        try:
            now = pixels_digest(read_plane(plane.path, page=plane.page, channel=channel).pixels)
        except ImageError as exc:
            raise _ImageChanged(plane.where, f"it cannot be read now: {exc}") from exc
        if now != digest:
            raise _ImageChanged(plane.where, "other pixels than those its cells were found on")
    table = read_table(targets["cells"])
    if any(name.startswith("AreaShape_Area_") for name in table.columns):  # measured so
        table.pixel_size, table.unit = pixel_size_of(targets["labels"])
    areas = np.bincount(labels.ravel())[1:]
    n_cells = len(areas)
    present = int(np.count_nonzero(areas))  # fewer: cells taken out (set to 0 in Fiji)
    if len(table) != n_cells or present != n_cells:  # cut short, another run's, or edited
        raise _Disagree(f"{targets['cells']}: {len(table)} cells, the labels {present}")
    if not _areas_agree(table, areas):  # cells drawn otherwise since, as many as there were
        raise _Disagree(f"{targets['cells']}: its cells' areas are not the labels' any more")
    return ImageResult(
        path=plane.path,
        name=plane.name,
        page=plane.page,
        n_cells=n_cells,
        mean_area=float(areas.mean()) if n_cells else float("nan"),
        seconds=float(row.get("Seconds") or 0.0),
        outputs=targets,
        table=table,
        image_info=row.get("Read") or "",
        diameter=float(row["Diameter_px"]) if row.get("Diameter_px") else None,
        channel=channel,
        kept=True,
        digest=digest,
        earlier_note=row.get("Note") or "",
    )


class LeftOut(str):
    """One image of a results folder left out by :func:`saved_results`, and why (a str).
    ``gone``: where the run read the image, where it is gone from (moved since: the folder
    it is in now may be given); None where it was left out for another reason."""

    gone: Path | None = None

    @classmethod
    def of(cls, why: str, gone: Path | None = None) -> LeftOut:
        left = cls(why)
        left.gone = gone
        return left


def saved_results(
    folder: str | Path, images: str | Path | None = None
) -> tuple[EarlierRun, list[ImageResult], list[LeftOut]]:
    """The images a batch run in ``folder`` finished, read back from its files, to look at
    (and correct) them again without segmenting them again.

    Returns
    -------
    run : EarlierRun
        The run's record (its model, settings and plane: ``run.record``).
    results : list of ImageResult
        One per image it finished whose files are all there, in the run's order, as kept
        results (``kept``, ``table``, ``outputs``; ``settings``: the run's as given, with the
        image's own diameter where it was measured on each); ``path`` is the image in
        ``images`` (a folder the images were moved to since, where given), else where the
        run read it, else (moved since) beside the result folder.
    problems : list of LeftOut
        Each image left out and why (image or result file gone or damaged), by name; an
        image not found where it was looked for has its ``gone`` set.

    Raises
    ------
    ResumeError
        No run's record in ``folder`` (no run.json), or one that cannot be read.
    """
    folder = Path(folder)
    run = earlier_run(folder)
    if run is None:
        raise ResumeError(
            f"{folder}: no run.json here: not a folder of results that cellprop segment or "
            "a folder batch wrote"
        )
    # As given (None: the model's default), so that a correction resolves them as the run did;
    # a diameter measured on each image is that image's.
    given = dict(run.record.get("settings") or {})
    auto = given.get("diameter") == "auto"
    roi = bool(run.record.get("roi", False))
    results, problems = [], []
    recorded_planes = _recorded_planes(run)
    in_sequence: dict = {}  # where the run followed cells: each image's place in its time-lapse
    if run.record.get("track"):
        by_page = run.record.get("page") == "all"
        for sequence, members, times in _run_sequences(run, recorded_planes, by_page):
            in_sequence.update({members[j]: (sequence, t) for j, t in enumerate(times)})
    root = _common_folder([recorded_planes[k].path for k in range(len(run.rows))])
    opened: dict[tuple, str] = {}  # (path, page, channel) of each image opened: its name
    for k, (name, row) in enumerate(run.rows.items()):
        if row.get("Status") != "done":
            continue
        recorded = recorded_planes[k].path
        places = [recorded, folder.parent / recorded.name]
        if images is not None:  # where they were moved: by their place under the run's
            under = [Path(images) / recorded.relative_to(root)] if root else []  # folders
            places = [*under, Path(images) / recorded.name, *places]
        path = next((p for p in places if p.is_file()), None)
        if path is None:
            also = "" if images is None else f" nor in {images}"
            gone = f"{name}: the image is no longer at {recorded}{also}"
            problems.append(LeftOut.of(gone, recorded))
            continue
        page = recorded_planes[k].page
        # (two channels of one file are two images: the window exports both)
        plane_of = (path, page, row_channel(row))
        if plane_of in opened:  # found by its file name where another's is
            problems.append(
                LeftOut.of(f"{name}: not opened: {path} is the image of {opened[plane_of]}")
            )
            continue
        plane = Plane(path, page, name)
        try:  # found elsewhere than where the run read it: the pixels its cells were found on?
            result = _from_row(
                plane, row, output_paths(plane.target, folder, roi), pixels=path != recorded
            )
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, _ImageChanged):
                problems.append(LeftOut.of(f"{name}: not opened: {exc}", recorded))
                continue
            hint = ""
            if isinstance(exc, _Disagree):  # labels changed since, or the table damaged
                hint = (
                    "; continuing the run (--resume, or Continue in the window) makes its "
                    "files agree again, keeping labels changed since"
                )
            problems.append(LeftOut.of(f"{name}: its results cannot be read ({exc}){hint}"))
            continue
        result.settings = dict(given, diameter=result.diameter) if auto else dict(given)
        own = made_by(run.record, name)  # exported there since, made otherwise than the run
        if own is not None:
            result.settings = dict(own["settings"])
            model = str(own.get("model") or "")
            if ("/" in model or "\\" in model) and not Path(model).is_dir():
                model = Path(model).name  # a folder moved since: the model of its name
            result.model = model or None
        result.sequence = in_sequence.get(k)
        if result.sequence is not None:  # followed so (a run.json before: the defaults)
            entry = (run.record.get(SEQUENCES) or {}).get(name)  # (the window's: its own)
            how = entry[2] if isinstance(entry, list) and len(entry) > 2 else None
            result.tracking = TrackSettings.of(how or run.record.get("tracking")).record()
        results.append(result)
        opened[plane_of] = name
    return run, results, problems


@dataclass(frozen=True)
class RunTables:
    """The tables of all cells and images of a batch run's folder once some images are
    written into it again (:func:`run_tables`).

    Attributes
    ----------
    tables : list or None
        (name, table, page) of every image the run finished, in the run's order, each image
        written again with its table as given, then the images the run does not hold; None
        where the folder holds no run (or its record cannot be read).
    tracks : list of dict
        The rows of its tracks.csv of time-lapses other than those written again.
    unread : list of str
        Images of the run whose table could not be read (why, by name): not in ``tables``.
    new : list of str
        The names given that are none of the run's images.
    """

    tables: list | None
    tracks: list[dict]
    unread: list[str]
    new: list[str]


def run_tables(folder: str | Path, tables: list, sequences: Iterable[str] = ()) -> RunTables:
    """What the batch run in ``folder`` holds with ``tables`` (name, CellTable, page: some of
    its images, corrected in the window, written into it again by *Export* or *Export all*):
    its images in its order, those given with their tables, the others with their files'
    (closed, or not opened: the folder keeps their files, so its tables of all cells and
    images keep them); and its tracks.csv's rows of time-lapses other than ``sequences``."""
    try:
        run = earlier_run(folder)
    except ResumeError:
        run = None
    if run is None:
        return RunTables(None, [], [], [t[0] for t in tables])
    folder, sequences = Path(folder), set(sequences)
    given = {t[0]: t for t in tables}
    roi = bool(run.record.get("roi", False))
    merged, problems = [], []
    for plane, (name, row) in zip(_recorded_planes(run), run.rows.items(), strict=True):
        if name in given:
            merged.append(given[name])
        elif row.get("Status") == "done":
            cells = output_paths(plane.target, folder, roi)["cells"]
            try:
                table = read_table(cells)
                if "ObjectNumber" not in table.columns:  # (a --resume takes it: its labels')
                    raise ValueError(f"{cells}: not a cell table (no ObjectNumber column)")
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problems.append(f"{name}: {exc}")
                continue
            merged.append((name, table, plane.page))
    new = [name for name in given if name not in run.rows]
    merged += [given[name] for name in new]
    rows: list[dict] = []
    try:
        with open(folder / "tracks.csv", newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("Sequence") not in sequences]
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"tracks.csv: {exc}")
    return RunTables(merged, rows, problems, new)


def time_points_left_out(folder: str | Path, names: Iterable[str]) -> list[str]:
    """The images of the time-lapses the batch run in ``folder`` followed that writing
    ``names`` (some of its images: *Export all* of those open in the window) into it would
    leave out of their time-lapse's tracks: time points it finished, not among ``names``, of
    a time-lapse some of ``names`` belong to (the tracks of the others would be split there,
    while their files stay). Empty where the run did not follow its cells, or is none."""
    try:
        run = earlier_run(folder)
    except ResumeError:
        return []
    if run is None or not run.record.get("track"):
        return []
    planes, given, done = _recorded_planes(run), set(names), set(run.done())
    left = []
    for _, members, _ in _run_sequences(run, planes, run.record.get("page") == "all"):
        own = [planes[k].name for k in members]
        if given.intersection(own):
            left += [name for name in own if name not in given and name in done]
    return left


def _common_folder(paths: list[Path]) -> Path | None:
    """The folder every one of ``paths`` lies below (an experiment's, its wells' folders
    below it); None where there is none (different drives) or no path."""
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else None
    except ValueError:
        return None


def _one(plane: Plane, model, args: tuple, cancel: Callable[[], bool] | None) -> ImageResult:
    """One image of a batch, here or in a worker; ``args`` as process_batch packs them."""
    path, page, name = plane.path, plane.page, plane.name
    if cancel is not None and cancel():
        return plane.result(status="cancelled")
    out, settings, overwrite, roi, channel, points = args
    centres = None
    if points is not None:  # planes_points: the centres, none, or why they cannot be known
        centres = points.get(name)
        if centres is None:
            centres = f"{path}: the points file gives no cell centres for {name}"
        if isinstance(centres, str):
            return plane.result(status="failed", error=centres)
    return process_image(
        path,
        out,
        model,
        settings,
        overwrite,
        roi,
        cancel=cancel,
        page=page,
        channel=channel,
        centres=centres,
        name=name,
    )
