"""What a batch is over and what became of each image.

A batch segments *planes*: a file, or one page of a multi-page file (``page="all"``). Each
goes by a name its result files are named after (``movie_p3c0.tif``; ``A01_img1.tif`` where
files of one name lie in different folders); a points file gives each its centres by that
name or its path (:func:`planes_points`); a continued run keeps the images it finished
(:func:`continued_planes`). :class:`ImageResult` says what happened to one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from .errors import ImageError, ResumeError
from .features import CellTable
from .io import count_pages, read_image, resolved
from .journal import EarlierRun, earlier_run, name_as_written, row_channel
from .pipeline import Segmentation

__all__ = [
    "ImageResult",
    "Plane",
    "batch_planes",
    "clash_message",
    "continued_planes",
    "named_as_run",
    "name_clash",
    "plane_name",
    "planes_points",
]


@dataclass
class ImageResult:
    """What happened to one image.

    Attributes
    ----------
    path : pathlib.Path
        The input file.
    name : str
        The name its results go by: the file's name, or for one page of a multi-page file
        segmented page by page (``process_batch(page="all")``) :func:`plane_name`'s. Its files
        are ``DIR/<stem of name>_labels.tif`` and so on; summary.csv and cells.csv name it so.
    page : int or None
        The page read, as asked (None: the file's first).
    n_pages : int
        How many pages the file holds (1 where it was not read).
    status : {"done", "failed", "skipped", "cancelled"}
    kept : bool
        Done by an earlier run of the same folder and taken over as it was (a continued run,
        ``process_batch(resume=True)``): its files were not written again.
    n_cells : int
    mean_area : float
        Mean cell area in pixels (nan without cells).
    seconds : float
    error : str or None
        Why it failed or was skipped, naming the file.
    outputs : dict of str to pathlib.Path
        Files written, by kind (see ``OUTPUT_SUFFIXES``).
    segmentation, table
        The in-memory results (None unless done).
    image_info : str
        What was read: size, dtype, page and channel chosen, pixel size (``ImageData.description``).
    diameter : float or None
        The cell diameter (pixels) the image was segmented for: the model's, the one given, or
        the one estimated on this image (``Settings(diameter="auto")``).
    settings : dict or None
        The values it was segmented with (``Segmentation.settings``; for a kept image, the
        run's settings resolved for its diameter).
    note : str
        What was done otherwise than segmenting it, where it matters to the user (a kept
        image whose labels changed since the earlier run, measured again from them).
    sequence : tuple or None
        Where its cells were followed over time (``process_batch(track=True)``): the
        time-lapse's name, as tracks.csv gives it, and the image's time point in it.
    tracking : dict or None
        How its cells were followed (``TrackSettings.record()``: how far a cell may move,
        the gaps closed), where they were: a correction links them again so.
    channel : int or None
        The channel of its file it was read from (the one asked, or a file's only one:
        :func:`~cellprop.engine.batch.read_plane`); None where not read here (kept).
    digest : str
        A fingerprint of the pixels it was segmented from (:func:`pixels_digest`), recorded
        in summary.csv: a continued run segments again an image whose pixels changed since
        (another image saved under its name). Empty where not known (a run before it).
    earlier_note : str
        A kept image's note from the earlier run's summary.csv (its ``Note``: pixels not
        square, a blank image, ...), written there again.
    model : str or None
        The model that made its cells where that is not the run's (an image segmented again
        in the window with another model, exported into the run's folder: run.json's
        ``"made"``), as the window names it (a shipped model's name or a folder); None: the
        run's.
    """

    path: Path
    status: str = "done"
    name: str = ""
    page: int | None = None
    n_pages: int = 1
    n_cells: int = 0
    mean_area: float = float("nan")
    seconds: float = 0.0
    error: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    segmentation: Segmentation | None = None
    table: CellTable | None = None
    image_info: str = ""
    diameter: float | None = None
    settings: dict | None = None
    kept: bool = False
    note: str = ""
    sequence: tuple | None = None
    tracking: dict | None = None
    channel: int | None = None
    digest: str = ""
    earlier_note: str = ""
    model: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = self.name or self.path.name


@dataclass(frozen=True)
class Plane:
    """One image of a batch: a file, or one page of a multi-page file (``page="all"``).

    ``page``: the page to read (None: the file's first); ``name``: the name its results go by
    (see ``ImageResult.name``)."""

    path: Path
    page: int | None = None
    name: str = ""

    @property
    def target(self) -> Path:
        """The path whose stem names its result files (:func:`output_paths`)."""
        return self.path.with_name(self.name or self.path.name)

    @property
    def where(self) -> str:
        """The file, and the page where it is one page of many, for messages."""
        if self.page is None or self.name in ("", self.path.name):  # (renamed: A01_img1.tif)
            return str(self.path)
        return f"{self.path} page {self.page}"

    def result(self, **more) -> ImageResult:
        """An ImageResult of this image that needed no segmentation (cancelled, failed)."""
        return ImageResult(path=self.path, name=self.name, page=self.page, **more)


def plane_name(path: str | Path, page: int, channel: int | None = None) -> str:
    """The name of one page (and channel) of an image file as its own image:
    ``movie.tif`` page 3 -> ``movie_p3c0.tif``, the names the app gives the planes it exports
    or saves for training."""
    path = Path(path)
    return f"{path.stem}_p{page}c{channel or 0}{path.suffix}"


def batch_planes(
    paths: Iterable[str | Path], page: int | str | None = None, channel: int | None = None
) -> list[Plane]:
    """The images a batch over ``paths`` segments, in order.

    ``page``: one page of every file (None: the first), or ``"all"``: every page of a
    multi-page file (a time-lapse, a stack of slices or positions) as an image of its own,
    named by :func:`plane_name`; a file of one page (or one that cannot be read: the batch then
    says why) stays one image under its own name. Each slice of a 3-D stack is segmented on
    its own, in 2-D.
    """
    planes: list[Plane] = []
    for given in paths:
        if isinstance(given, Plane):  # made already
            planes.append(given)
            continue
        p = Path(given)
        if page != "all":  # one page of each file (an int or None)
            planes.append(Plane(p, cast("int | None", page), p.name))
            continue
        n = count_pages(p)
        if n == 1:
            planes.append(Plane(p, None, p.name))
        else:
            read = _channel_read(p, channel)
            planes += [Plane(p, k, plane_name(p, k, read)) for k in range(n)]
    return _apart(planes)


def _channel_read(path: Path, channel: int | None) -> int | None:
    """The channel a batch reads of the multi-page file ``path`` when ``channel`` is asked:
    0 where the file has one channel (read whole, whatever the channel: its pages are named
    ``_p3c0``, not after a channel it lacks), else ``channel``."""
    if not channel:
        return channel
    try:  # (one page decoded: a header does not tell a grey image saved in colour)
        return channel if read_image(path, page=0).n_channels > 1 else 0
    except (ImageError, OSError, ValueError):  # (its pages fail by name when read)
        return channel


def _folder_of(path: Path) -> Path:
    """The folder ``path`` lies in, made absolute, its links followed: the folder given,
    not the one a linked file points into (an annex of files: each in a folder of its own)."""
    return resolved(Path(path).parent)


def _apart(planes: list[Plane]) -> list[Plane]:
    """Images of files in different folders whose names would write the same result files
    (``A01/img1.tif`` and ``A02/img1.tif``, an experiment saved well by well) are named after
    their folders too: ``A01_img1.tif``, ``A02_img1.tif`` (as many folder names as tell them
    apart; one in the folder the others lie below keeps its name). Clashes within one folder
    (``movie_p1c0.png`` beside page 1 of ``movie.tif``) stay: :func:`name_clash` finds them,
    and only them (``A01/img1.png`` beside ``A01/img1.tif`` leaves ``A02/img1.tif`` apart).

    Named so again until no name clashes across folders (``A01/f.png`` named ``A01_f.png``
    beside a ``flat/A01_f.png``: ``A01_A01_f.png``, ``flat_A01_f.png``), so that images named
    once keep their names when named again (the command line names them, then the run)."""
    for _ in range(8):
        named = _apart_once(planes)
        if named == list(planes):
            break
        planes = named
    return list(planes)


def _apart_once(planes: list[Plane]) -> list[Plane]:
    """One pass of :func:`_apart`."""
    groups: dict[str, list[int]] = {}
    for i, plane in enumerate(planes):
        groups.setdefault(plane.target.stem.lower(), []).append(i)
    planes = list(planes)
    for members in groups.values():
        folders = [_folder_of(planes[i].path) for i in members]
        if len(set(folders)) < 2:
            continue
        try:
            common = Path(os.path.commonpath(folders))
        except ValueError:  # on different drives: every folder name tells them apart
            common = Path()
        for i, folder in zip(members, folders, strict=True):
            below = folder.relative_to(common).parts if common.parts else folder.parts[1:]
            if below:
                plane = planes[i]
                planes[i] = Plane(
                    plane.path, plane.page, "_".join([*below, plane.name or plane.path.name])
                )
    return planes


def _own_name(plane: Plane, channel: int | None) -> str:
    """The name ``plane`` had before :func:`_apart` put its folders in front of it: the file's
    name, or its page's (``movie_p3c0.tif``)."""
    for name in (plane.path.name, plane_name(plane.path, plane.page or 0, channel)):
        if plane.name in ("", name) or plane.name.endswith("_" + name):
            return name
    return plane.name


def _path_matches(key: str, plane: Plane, own: str) -> bool:
    """Whether a points file's image ``key`` written as a path (``A01/field1.tif``,
    ``A01\\field1.tif``, or a whole path) is this image: its folders are the last of the
    image's folders, its file name the image's own name."""
    given = Path(key.replace("\\", "/"))
    given = _folder_of(given) / given.name if given.is_absolute() else given
    if len(given.parts) < 2 or given.name not in (own, own if plane.page else plane.path.name):
        return False
    folders, where = given.parts[:-1], _folder_of(plane.path).parts
    return len(folders) <= len(where) and where[len(where) - len(folders) :] == folders


def planes_points(
    points: dict[str, np.ndarray], planes: list[Plane], channel: int | None = None
) -> dict[str, np.ndarray | str | None]:
    """The centres a points file (:func:`cellprop.engine.read_points`) gives each image of a
    batch, by the image's name: the rows of its name (as its results are named:
    ``A01_field1.tif``, ``movie_p3c0.tif``; a page other than the first segmented alone,
    ``--page 3``, by its page's name first), else of its path (``A01/field1.tif``, the
    folders as many as tell it apart), else of its file name (a file's first page too), else
    the file's ``x,y`` rows without an image column; None where none of these gives it
    centres. Where only its file name does and images in different folders share that name
    (which of them it meant cannot be known), the value is the reason, a message naming the
    image and how to name it instead."""
    owns = [_own_name(plane, channel) for plane in planes]
    shared: dict[str, set] = {}
    for plane, own in zip(planes, owns, strict=True):
        shared.setdefault(own, set()).add(_folder_of(plane.path))
    paths = [k for k in points if "/" in k or "\\" in k]
    out: dict[str, np.ndarray | str | None] = {}
    for plane, own in zip(planes, owns, strict=True):
        centres = None
        if plane.page is not None and plane.name == plane.path.name:  # --page N (0 too):
            centres = points.get(plane_name(plane.path, plane.page, channel))  # its page's
        if centres is None:
            centres = points.get(plane.name)
        if centres is None:  # a name whose bytes are not UTF-8, as cellprop's tables write it
            centres = points.get(name_as_written(plane.name))
        if centres is None:
            centres = next((points[k] for k in paths if _path_matches(k, plane, own)), None)
        if centres is None:
            # ... or its name without extension (t000, as a training set's points.csv may
            # name it, which training and evaluate read: the outlines were refused it)
            stems = (Path(own).stem,) + (() if plane.page else (plane.path.stem,))
            bare = (own, own if plane.page else plane.path.name, *stems)
            named = next((n for n in bare if n in points), None)
            if named is not None and len(shared[own]) > 1:
                where = Path(plane.path.parent.name, own).as_posix()
                out[plane.name] = (
                    f"{plane.where}: the points file names {named}, the name of images in "
                    f"{len(shared[own])} folders; name this one by its folder ({where}) or as "
                    f"its results are named ({plane.name})"
                )
                continue
            centres = points.get(named) if named is not None else points.get("")
        out[plane.name] = centres
    return out


def clash_message(
    a: Plane | list[Plane], b: Plane, advice: str = "write them into different result folders"
) -> str:
    """What is wrong with images whose result files would be the same (name_clash): ``b``'s
    with ``a``'s, or with each of a list's (``img.tif``, ``img.png`` and ``img.jpg``), and
    what to do."""
    named = [b.where, *(o.where for o in (a if isinstance(a, list) else [a]))]
    together = ", ".join(named[:-1]) + " and " + named[-1]
    return f"{together} would write the same result files ({b.target.stem}_*); {advice}"


def clashes(planes: list[Plane]) -> list[list[int]]:
    """The groups of ``planes`` (indexes, two or more each) whose result files would be the
    same ones (one file on a disk that does not tell case apart, too)."""
    groups: dict[str, list[int]] = {}
    for i, plane in enumerate(planes):
        groups.setdefault(plane.target.stem.lower(), []).append(i)
    return [members for members in groups.values() if len(members) > 1]


def name_clash(planes: list[Plane]) -> tuple[Plane, Plane] | None:
    """Two of ``planes`` whose result files would be the same ones (the first such pair in
    their order), or None."""
    found = clashes(planes)
    if not found:
        return None
    first = min(found, key=lambda members: members[1])
    return planes[first[0]], planes[first[1]]


def _row_plane(name: str, row: dict) -> Plane:
    """The image a summary.csv row (with a ``Path``) names: its file and page, as named."""
    page = (row.get("Page") or "").strip()
    return Plane(Path(row["Path"]), int(page) if page.isdigit() else None, name)


def _as_recorded(planes: list[Plane], earlier: EarlierRun) -> list[Plane]:
    """``planes`` named as the run ``earlier`` named the same images (file and page), where
    that name is not another's here: images of a plate's wells named after their wells
    (``A02_f.png``) keep that name when one well is given again alone (named ``f.png``, it was
    segmented again, and in the tables twice)."""
    keys = [(resolved(p.path), p.page) for p in planes]
    return _named_by(planes, keys, earlier, lambda plane, row: (resolved(plane.path), plane.page))


def named_as_run(
    planes: list[Plane], folder: str | Path, channels: Iterable[int | None] = ()
) -> list[Plane]:
    """``planes`` (images written into ``folder``: the window's export), each read from
    ``channels`` (0 where not given), named as the batch run in ``folder`` named the same
    image (file, page and channel), where that name is not another's here: page 0 of a
    time-lapse segmented in the window goes by the run's ``movie_p0c0.tif``, a well's image
    opened alone by ``A01_img.png``, so that its files replace the run's of it and its
    tables hold it once. ``planes`` as they are where the folder holds no run."""
    try:
        run = earlier_run(folder)
    except ResumeError:
        return list(planes)
    if run is None:
        return list(planes)
    given = list(channels)
    given += [0] * (len(planes) - len(given))
    keys = [(resolved(p.path), p.page or 0, c or 0) for p, c in zip(planes, given, strict=False)]
    return _named_by(
        planes,
        keys,
        run,
        lambda plane, row: (resolved(plane.path), plane.page or 0, row_channel(row) or 0),
    )


def _named_by(planes: list[Plane], keys: list, run: EarlierRun, key_of) -> list[Plane]:
    """``planes`` (``keys``: what tells each image) named as ``run`` named the image its
    row's ``key_of(plane, row)`` tells alike, where that name is not another's here."""
    recorded: dict[tuple, str] = {}
    for name, row in run.rows.items():
        if row.get("Path"):
            recorded.setdefault(key_of(_row_plane(name, row), row), name)
    taken = {p.name for p in planes}
    named = []
    for plane, key in zip(planes, keys, strict=True):
        was = recorded.get(key)
        if was and was != plane.name and was not in taken:
            taken.discard(plane.name)
            taken.add(was)
            plane = Plane(plane.path, plane.page, was)
        named.append(plane)
    return named


def continued_planes(planes: list[Plane], earlier: EarlierRun | str | Path | None) -> list[Plane]:
    """The images a run continuing ``earlier`` (a run's record, or its folder) is over:
    ``planes``, then the images it finished that are not among them (by name; not one whose
    result files ``planes`` would write), from its summary.csv. A folder without a readable
    run adds nothing (:func:`process_batch` says what is wrong with it).

    A run continued over fewer images than it had keeps the others in its ``cells.csv`` and
    ``summary.csv``, as their files stay in its folder: the tables describe the folder.
    """
    if isinstance(earlier, (str, Path)):
        try:
            earlier = earlier_run(earlier)
        except ResumeError:
            earlier = None
    if earlier is None:
        return list(planes)
    planes = _as_recorded(planes, earlier)
    names = {p.name for p in planes}
    stems = {p.target.stem for p in planes}
    more = []
    for name, row in earlier.rows.items():
        if row.get("Status") != "done" or name in names or not row.get("Path"):
            continue
        plane = _row_plane(name, row)
        if plane.target.stem not in stems:
            more.append(plane)
            stems.add(plane.target.stem)
    return list(planes) + more
