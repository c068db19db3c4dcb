"""What the app knows: the open images, their results, and the user's choices.

Plain dataclasses, no Qt. The controller changes them and announces changes with signals.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

#: ``neighbour_distance`` for the cells' neighbours grown until they meet: the engine's
#: ``features.EXPANDED`` (CellProfiler's *Expand until adjacent*), without loading the engine.
EXPANDED = -1


class Status(str, enum.Enum):
    """Where an image stands, as the side list shows it."""

    NOT_RUN = "not run"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Result:
    """One segmentation of one image plane, as the viewer and table need it.

    ``likelihood`` and ``contribution`` are None for batch results: a batch keeps only
    labels, centres and the table so that a thousand images do not fill the memory; and
    labels that are also in a file (``labels_file``) are let go while their image is not
    shown (:meth:`park`) and read back when it is.
    """

    labels: np.ndarray | None  # None: parked, in ``labels_file``
    centres: np.ndarray  # (N, 2) of (x, y) for labels 1..N
    table: Any  # engine CellTable
    n_cells: int
    likelihood: np.ndarray | None = None
    contribution: np.ndarray | None = None
    settings: Any = None  # the resolved engine settings actually used
    timings: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # {kind: Path} files a batch wrote
    # overlay images drawn on the worker thread ({name: RGBA array}); dropped when the image
    # leaves the screen, redrawn on demand
    layers: dict = field(default_factory=dict)
    # where it came from, so that a correction re-runs it the same way: the model as chosen
    # (a shipped model's name or a folder) and the device
    model: str = ""
    device: str = "auto"
    # corrections by hand (cells added at a click, cells removed): how many, the result
    # before the last one (Undo) and the one Undo came back from (Redo)
    edits: int = 0
    previous: Result | None = None
    undone: Result | None = None
    # a file that holds exactly these labels (written by a batch or an export, or read back)
    labels_file: Path | None = None
    # the name its files go by where a batch or a run named them (the file's, or for one page
    # of a multi-page file segmented page by page "movie_p3c0.tif"), so that an export into
    # that folder replaces them; None: the app's own naming (Controller._export_target)
    name: str | None = None
    # where its cells were followed over time (a batch's *Follow cells over time*): the
    # time-lapse's name and its time point there (engine ``ImageResult.sequence``); a
    # correction links it again to the time points beside it (TimeLapseMixin._follow_again)
    sequence: tuple | None = None
    # how its cells were followed there (engine ``TrackSettings.record()``): a correction
    # links them again so, whatever the settings chosen since
    tracking: dict | None = None
    # its track columns changed (a correction of another time point followed again) since
    # its files were written: *Export all* writes them, and quitting asks first
    tracks_changed: bool = False
    # its cells measured again (another pixel size or neighbour distance) since its files
    # were written (*Image ▸ Measure the cells again*): *Export* writes them, and quitting asks
    measured_anew: bool = False
    # it differs from ``previous`` only by a link mended by hand (its outlines are those)
    link_edit: bool = False
    # its files were replaced by another result's (a correction of it exported over them,
    # then undone): it is in no file now, as a correction not exported
    files_replaced: bool = False
    # where its cells were followed: a weak reference to the result at the time point before
    # that its table's links are into (TimeLapseMixin._follow_again), and for going back to
    # it (Undo, Redo), the links into the time point after as they were when it left the
    # screen (a weak reference to the result there then, and those links)
    linked_to: Any = field(default=None, repr=False, compare=False)
    beside: tuple | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, seg, table, layers: dict, **more) -> Result:
        """From an engine Segmentation, its cell table and its overlay layers."""
        return cls(
            labels=seg.labels,
            centres=seg.centres,
            table=table,
            n_cells=int(seg.n_cells),
            likelihood=seg.likelihood,
            contribution=seg.contribution,
            settings=seg.settings,
            timings=dict(seg.timings or {}),
            layers=layers,
            **more,
        )

    @property
    def unsaved_edits(self) -> bool:
        """Corrected by hand (or outlined at given points) and not exported since."""
        return (bool(self.edits) or self.files_replaced) and not self.outputs

    @property
    def in_no_file(self) -> bool:
        """Not corrected, but in no file any more: the files it was read from or exported
        to were replaced since (a batch of other images saved over them, a correction of it
        exported over them and then undone). Export saves it; closing asks first."""
        return self.files_replaced and not self.edits and not self.outputs

    def park(self) -> None:
        """Let go of the labels and layers while the image is not shown, if a file holds
        the labels (the window reads them back before it shows the image again)."""
        self.layers = {}
        if self.labels_file is not None:
            self.labels = None

    def keep_aside(self, shown: Result) -> None:
        """This result is now one that Undo (or Redo) goes back to while ``shown``, a
        correction of it (or what it corrects), is on the screen: keep what going back
        needs, not its overlay images (redrawn when it is shown again) nor a second copy of
        the likelihood (a correction does not change the network's view of the image), and
        the propagation map, shown only, at half precision. Twenty corrections of a
        1040 x 1392 frame then hold about 120 MB instead of some 750 MB."""
        self.layers = {}
        mine, theirs = self.likelihood, shown.likelihood
        if mine is not None and theirs is not None and mine.shape == theirs.shape:
            if mine is theirs or np.array_equal(mine, theirs):
                self.likelihood = theirs
        if self.contribution is not None and self.contribution.dtype != np.float16:
            self.contribution = self.contribution.astype(np.float16)

    def label_at(self, x: int, y: int) -> int:
        if self.labels is None:
            return 0
        h, w = self.labels.shape[:2]
        if 0 <= x < w and 0 <= y < h:
            return int(self.labels[y, x])
        return 0


def undo_chain(result: Result) -> list[Result]:
    """``result`` and every result Undo and Redo go back to from it, each once."""
    seen: dict[int, Result] = {}
    todo: list[Result | None] = [result]
    while todo:
        r = todo.pop()
        if r is None or id(r) in seen:
            continue
        seen[id(r)] = r
        todo += [r.previous, r.undone]
    return list(seen.values())


def files_in(results: Iterable[Result], folder: Path) -> bool:
    """Whether any of these results has a file in ``folder``: the labels it is read back
    from, or those it was exported to."""
    where = Path(folder).resolve()
    return any(
        f is not None and Path(f).parent.resolve() == where
        for r in results
        for f in (r.labels_file, *r.outputs.values())
    )


def sequence_key(doc: Document, plane: tuple, result: Result) -> tuple | None:
    """Which time-lapse a result whose cells were followed belongs to: its name, the folder
    of its file (a file's pages, or a folder's images) and the channel (None: not followed)."""
    if result.sequence is None:
        return None
    return (result.sequence[0], doc.path.parent, plane[1])


def time_lapses(planes) -> dict:
    """The time-lapses among results (``planes``: (document, plane, result) triples) whose
    cells were followed: {:func:`sequence_key`: {time point: (document, plane, result)}}; of
    two results that claim one time point, the first."""
    found: dict = {}
    for doc, plane, result in planes:
        key = sequence_key(doc, plane, result)
        if key is not None:
            found.setdefault(key, {}).setdefault(result.sequence[1], (doc, plane, result))
    return found


@dataclass(eq=False)  # one object per open file: compared by identity, never by pixels
class Document:
    """One open image file. Results are kept per (page, channel) so nothing is lost."""

    path: Path
    page: int = 0
    channel: int = 0
    image: Any = None  # engine ImageData once read, else None
    running: bool = False
    waiting: bool = False  # queued in a batch, not started yet (shown as running)
    error: str | None = None
    results: dict = field(default_factory=dict)  # {(page, channel): Result}
    # cell centres clicked for training, per plane: {(page, channel): [(x, y), ...]}; the
    # lists before each change (Undo) and those undone (Redo); the planes changed since they
    # were last saved
    marks: dict = field(default_factory=dict)
    marks_undo: dict = field(default_factory=dict)
    marks_redo: dict = field(default_factory=dict)
    marks_unsaved: set = field(default_factory=set)
    # where each plane's marks are kept in files: the training sets they were saved into and
    # the folders of the points files they were read from ({plane: {folder, ...}}); a plane
    # whose every mark is cleared loses its rows there when the set is saved again
    marks_in: dict = field(default_factory=dict)
    # read once at least: the page and channel shown are the user's from then on (before,
    # the first look may turn to the channel the model segments)
    seen: bool = False
    # how many pages its file had when its pixels were last let go (0: not known): an
    # export of it once the file is gone still gives a page of a multi-page file its Page
    pages_seen: int = 0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def plane(self) -> tuple:
        return (self.page, self.channel)

    @property
    def result(self) -> Result | None:
        return self.results.get(self.plane)

    @property
    def status(self) -> Status:
        if self.running:
            return Status.RUNNING
        if self.result is not None:
            return Status.DONE
        if self.error:
            return Status.FAILED
        return Status.NOT_RUN

    @property
    def n_cells(self) -> int | None:
        return self.result.n_cells if self.result is not None else None


@dataclass(frozen=True)
class UserSettings:
    """The settings panel's choices. None means "use the model's default"."""

    model: str = "phase"  # a shipped model's name or a model folder
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    threshold: float | None = None
    diameter: float | None = None
    # Measure the diameter on every image before segmenting it (the engine's "auto", the CLI's
    # --diameter auto) instead of using ``diameter``: for folders that mix magnifications.
    diameter_each_image: bool = False
    smoothness: float | None = None
    min_size: int | None = None
    # Cells larger than this many pixels are left out (None: the model's, no limit).
    max_size: int | None = None
    exclude_border: bool = False
    # Cells cut by the image edge below this fraction of a typical cell are left out.
    edge_fraction: float | None = None
    pixel_size: float | None = None
    # The cells' neighbours: 0, the cells each touches; EXPANDED, those it would touch were
    # every cell grown until it met others; else those within this many pixels.
    neighbour_distance: int = 0
    # Each cell's ring of this many pixels (the cytoplasm around a nucleus) measured too; 0:
    # none (the engine's ``ring_width``).
    ring_width: int = 0
    roi_zip: bool = True  # also write ImageJ ROI zips on export and in batches
    # A folder batch segments every page of a multi-page file (a time-lapse, a stack) as an
    # image of its own (the engine's page="all"), not only the first.
    batch_pages: bool = False
    # A folder batch follows the cells of each time-lapse from time point to time point (the
    # pages of a file with batch_pages, the images of a folder in name order): the engine's
    # track=True, track columns in the cell tables and tracks.csv.
    batch_track: bool = False
    # How a batch follows them (the engine's ``TrackSettings``): how far a cell may move from
    # one time point to the next, in cell diameters, and at how many time points in a row a
    # track may miss its cell and go on (gap closing).
    track_max_move: float = 0.5
    track_max_gap: int = 1
    # The channel of each file a folder batch segments (counted from 0, as the Channel box
    # under the image counts them): the DIC or phase channel of a file that holds a
    # fluorescent reporter too, whose channels are measured in each cell all the same. None:
    # the one the model was trained on (the engine's ``Model.channel``; the first for the
    # shipped models).
    batch_channel_index: int | None = None
    # Images a folder batch segments at once, each in its own process; None: the engine's
    # ``auto_workers`` (one per core, up to four, within the memory).
    batch_workers: int | None = None

    def with_changes(self, **changes) -> UserSettings:
        return replace(self, **changes)

    @property
    def batch_page(self) -> str | None:
        """The engine's ``page`` for a folder batch: "all" (each page as an image) or None
        (the first page of each file)."""
        return "all" if self.batch_pages else None

    @property
    def batch_tracking(self) -> dict | None:
        """How a folder batch follows cells (the engine's ``TrackSettings.record()``); None
        where it does not."""
        if not self.batch_track:
            return None
        return {"max_move": self.track_max_move, "max_gap": self.track_max_gap}

    def batch_channel(self, model_channel: int = 0) -> int | None:
        """The engine's ``channel`` for a folder batch: the one chosen, else the model's own
        (``model_channel``); None for the first, as before there was a choice, so that a run
        made then continues."""
        chosen = self.batch_channel_index
        return (model_channel if chosen is None else chosen) or None

    def engine_kwargs(self) -> dict:
        """Keyword arguments for ``cellprop.engine.Settings``."""
        return {
            "threshold": self.threshold,
            "diameter": "auto" if self.diameter_each_image else self.diameter,
            "smoothness": self.smoothness,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "exclude_border": self.exclude_border,
            "edge_fraction": self.edge_fraction,
            "pixel_size": self.pixel_size,
            "neighbour_distance": self.neighbour_distance,
            "ring_width": self.ring_width,
        }

    @classmethod
    def field_names(cls) -> list:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Overlay:
    """One overlay layer's visibility and opacity (0..1)."""

    visible: bool
    opacity: float


OVERLAY_NAMES = ("fills", "outlines", "centres", "tracks", "rings", "likelihood", "contribution")

OVERLAY_TITLES = {
    "fills": "Cell colours",
    "outlines": "Outlines",
    "centres": "Centres and numbers",
    "tracks": "Tracks",
    "rings": "Rings around cells",
    "likelihood": "Cell-centre likelihood",
    "contribution": "Propagation map",
}

DEFAULT_OVERLAYS = {
    "fills": Overlay(True, 0.35),
    "outlines": Overlay(True, 1.0),
    "centres": Overlay(False, 1.0),
    "tracks": Overlay(True, 0.9),
    "rings": Overlay(True, 0.35),
    "likelihood": Overlay(False, 0.6),
    "contribution": Overlay(False, 0.6),
}
