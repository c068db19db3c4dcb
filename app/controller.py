"""The app's behaviour: open, run, cancel, batch, export, settings.

No widgets here. The window calls these methods and listens to the signals; tests do the
same without a window (and may pass a fake engine). All engine work runs in background
jobs (:mod:`.workers`); results come back as signals on the GUI thread.

:class:`AppController` holds the state and the signals; this module does the images
open, the settings, the model and the background work, and each larger task lives in
its own module as a part of the class: :mod:`.corrections` (clicks that add or take out
cells, Undo), :mod:`.marks` (centres marked for training, training a model),
:mod:`.batches` (folder batches, a batch's results opened again), :mod:`.export` and
:mod:`.timelapse` (the time points of a followed time-lapse, corrections followed again).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from . import render
from .batches import BatchItem, BatchMixin, BatchSummary
from .corrections import CorrectionsMixin
from .export import ConfirmOverwrite, ExportMixin
from .marks import MarksMixin
from .messages import (
    STAGE_WORDS,
    count_cells,
    counted,
    first_three,
    points_missed,
    readable_error,
    size_note,
)
from .remeasure import MeasureAgainMixin
from .settings_store import SettingsStore
from .state import (
    DEFAULT_OVERLAYS,
    Document,
    Overlay,
    Result,
    Status,
    UserSettings,
    sequence_key,
)
from .timelapse import TimeLapseMixin, track_column
from .training_run import TrainingRun
from .workers import Job, make_pool

#: Microscopes' own file formats (Zeiss, Nikon, Leica, Olympus, Imaris, DeltaVision), which
#: cellprop does not read: a folder's files of them are named, not left out without a word.
VENDOR_FORMATS = (".czi", ".nd2", ".lif", ".lof", ".oib", ".oir", ".vsi", ".ims", ".dv", ".lsm")


@dataclass
class ModelStatus:
    """What the settings panel shows about the chosen model."""

    name: str
    path: str = ""
    description: str = ""
    provider: str = ""  # "CPU" / "CUDA" once loaded
    modality: str = ""  # model.json "modality": phase, dic, fluorescence, ...
    # threshold, smoothness, min_size, diameter, edge_fraction, channel (of a file to segment)
    defaults: dict = field(default_factory=dict)
    error: str = ""
    loading: bool = False


def _default_engine():
    from cellprop import engine

    return engine


class AppController(
    CorrectionsMixin,
    MarksMixin,
    BatchMixin,
    ExportMixin,
    TimeLapseMixin,
    MeasureAgainMixin,
    QObject,
):
    """Owns the open documents, the settings and the background work."""

    documents_added = Signal(int, int)  # first index, count
    documents_removed = Signal(object)  # the indices (ascending) of the images closed
    document_changed = Signal(int)  # status, cell count or error of one image changed
    current_changed = Signal(int)  # -1 when nothing is open
    image_ready = Signal(int)  # the current image's pixels are loaded (or its plane changed)
    result_ready = Signal(int)  # a result for this image arrived
    busy_changed = Signal(bool)
    progress = Signal(str, float)  # text, fraction 0..1 (-1: unknown)
    batch_started = Signal(int)  # number of images
    batch_progress = Signal(int, int, float)  # finished, total, seconds left (-1 unknown)
    batch_finished = Signal(object)  # BatchSummary
    folder_opened = Signal(str, int)  # folder, images found in it: the window offers a batch
    # a results folder whose images moved since the run: the folder, where they were (the
    # window asks where they are now, and opens the results again with that folder)
    images_missing = Signal(str, object)
    exported = Signal(object)  # list of written paths
    log = Signal(str, str)  # level ("info", "warning", "error"), message
    error = Signal(str)  # a readable message to show in the window
    selection_changed = Signal(int)  # the cell selected last, 0 for none (all: selected_cells)
    settings_changed = Signal(object)  # UserSettings
    model_changed = Signal(object)  # ModelStatus
    hint = Signal(str)  # advice worth showing above the image (not an error)
    overlays_changed = Signal(object)  # {name: Overlay}
    marks_changed = Signal(int)  # the centres marked for training on this image changed
    colour_ready = Signal(object)  # pixels of the channel drawn in colour (None: none)
    training_progress = Signal(str, float)  # a model being trained: what it does, fraction
    training_finished = Signal(bool, str)  # True and the model folder, or False and why not

    MAX_IMAGES_IN_MEMORY = 4

    def __init__(
        self,
        engine=None,
        store: SettingsStore | None = None,
        work_pool: QThreadPool | None = None,
        load_pool: QThreadPool | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.engine = engine if engine is not None else _default_engine()
        self.store = store if store is not None else SettingsStore()
        self.documents: list[Document] = []
        self._index_by_path: dict = {}  # resolved path -> index in documents
        # each open image's path as given -> resolved: a batch of thousands asks the index of
        # its images' own paths a few times an image, and resolving asks the disk each time
        self._resolved: dict = {}
        self.current_index = -1
        self.selected_cells: tuple = ()  # cell numbers, in the order they were selected
        self._selected_tracks: set = set()  # their tracks, while another page is read
        # tracks selected at an earlier time point that the one shown missed: the selection
        # goes on with them, to the time point where they are found again
        self._held_tracks: set = set()
        self.settings = self.store.load_settings()
        self.overlays = self.store.load_overlays()
        self.model_status = ModelStatus(name=self.settings.model)
        self._work_pool = work_pool if work_pool is not None else make_pool(1)
        self._load_pool = load_pool if load_pool is not None else make_pool(1)
        self._job: Job | None = None  # the one heavy job (run, batch, export)
        self._loads: set = set()  # image/model loads in flight (kept alive until done)
        self._suggesting = 0  # Suggest a model choosing, how many (segmenting waits for them)
        self._model_lock = threading.Lock()
        self._model_cache: dict = {}
        self._recently_viewed: list = []
        # (path, model) pairs whose light was compared: each is said once, not on every re-read
        self._modality_checked: set = set()
        self._notes_said: set = set()  # (file, note) of how each was read, said once
        self._batch: BatchSummary | None = None
        self._batch_queue: list = []
        self._batch_left: dict = {}
        self._batch_user = self.settings  # the settings the running batch was started with
        self._batch_channel: int | None = None  # ... and the channel it segments
        self._correcting: Document | None = None  # the image whose correction is running
        self._correcting_plane: tuple | None = None  # and its plane (page, channel)
        self._queued_clicks: list = []  # cells clicked meanwhile, (x, y)
        # the image being got ready for corrections (prepare_corrections), and the cells
        # removed meanwhile (their numbers in its result, which that does not change)
        self._warming: Document | None = None
        self._queued_removals: list = []
        self._batch_at_once = 1  # images the running batch segments at the same time
        self._devices: list | None = None  # batch images not reported yet, in processing order
        self._batch_started_at = 0.0
        self._training: TrainingRun | None = None  # a model being trained (a child process)
        # What segmenting the image shown computed, so that a correction of it redoes only
        # what the edit changes (engine Memo); let go when another image is shown.
        self._memo = self._new_memo()
        self._memo_holds: tuple | None = None  # (document, plane) the memo was filled on
        self._memo_tried: tuple | None = None  # ... and the last one prepare_corrections ran on
        self._found_in: dict[str, list] = {}  # the images found in each folder opened
        # a second channel drawn in colour over the image shown (-1: none), kept from image
        # to image and page to page while they have it; its pixels once read
        self.colour_channel = -1
        self.colour_pixels = None
        self._colour_of: tuple = ()  # (file, page, channel) colour_pixels are of

    # ------------------------------------------------------------------ documents
    @property
    def current(self) -> Document | None:
        if 0 <= self.current_index < len(self.documents):
            return self.documents[self.current_index]
        return None

    def index_of(self, path: str | Path) -> int:
        """Position of an open image in the list, -1 if it is not open."""
        path = Path(path)
        key = self._resolved.get(path)
        return self._index_by_path.get(path.resolve() if key is None else key, -1)

    def open_paths(self, paths: Iterable[str | Path]) -> list:
        """Open image files and every image inside folders. Returns the new indices.

        Unreadable files are listed too (marked failed) so the user sees what went wrong. A
        batch's result folder opens its images with their cells (:meth:`open_results`); a
        model folder (``model.json``) becomes the model in use.
        """
        new_docs: list[Document] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir() and (path / "model.json").is_file():
                # a model folder (trained here, or from a colleague): segment with it, by its
                # whole path (./phase given: that folder, not the installed phase; kept as
                # said from wherever the window is started next)
                self.update_settings(model=str(path.resolve()))
                self.log.emit("info", f"Model chosen: the folder {path}")
            elif path.is_dir() and (run := self.earlier_run(path)) is not None:
                self.open_results(path)  # a batch's results: its images and their cells
                # the images beside them that it does not hold (results saved into the
                # images' own folder): opened too, not hidden behind the results
                added = self._add_documents(self._beside_results(path, run))
                if added:  # (open already, the batch writing there: none)
                    new_docs += added
                    self.log.emit(
                        "info",
                        f"{counted(len(added), 'image')} of {path} that its results do not "
                        "hold opened too",
                    )
            elif path.is_dir():
                try:
                    found = list(self.engine.find_images([path]))
                    inside = ""
                    if not found:  # an experiment saved folder by folder (wells, positions)
                        found = list(self.engine.find_images([path], recursive=True))
                        inside = " and its sub-folders"
                except Exception as exc:  # noqa: BLE001
                    self._report(readable_error(exc, self.engine))
                    continue
                if not found and (path / "cells.csv").is_file():  # what an export writes
                    self._report(
                        f"No images found in the folder {path} nor below it: it holds "
                        "cellprop's results (cells.csv, label images, overlays), not the images "
                        "they were made from. Open those images; a batch's result folder (with "
                        "its run.json) opens with its cells: File > Open results."
                    )
                    continue
                if not found:
                    self._report(
                        f"No images found in the folder {path} nor below it."
                        + self._files_not_read(path)
                    )
                    continue
                self.log.emit("info", f"{counted(len(found), 'image')} found in {path}{inside}")
                left = self._left_in_folder(path, found, below=not inside)
                if left:
                    self.hint.emit(left)
                    self.log.emit("warning", left)
                new_docs += self._add_documents(found)
                self._found_in[str(path)] = found
                self.folder_opened.emit(str(path), len(found))
            elif path.is_file():
                new_docs += self._add_documents([path])
            else:
                self._report(f"{path}: no such file or folder.")
        indices = [self.documents.index(d) for d in new_docs]
        if indices and self.current is None:
            self.set_current(indices[0])
        return indices

    def _beside_results(self, folder: Path, run) -> list[Path]:
        """The images in ``folder`` (itself, not below) that the run recorded there (``run``:
        its record) does not hold: a folder of images the window exported into, or a batch
        wrote into."""
        try:
            found = list(self.engine.find_images([folder]))
        except Exception:  # noqa: BLE001 (said when its results are opened)
            return []
        held = {
            Path(row.get("Path") or "").resolve() for row in run.rows.values() if row.get("Path")
        }
        return [p for p in found if p.resolve() not in held]

    def _left_in_folder(self, folder: Path, found: list, below: bool) -> str:
        """What opening ``folder`` left out, in words ("" where nothing): images in its
        sub-folders where it holds images of its own (``below``: a plate's overview beside
        its well folders opened alone, the wells' images without a word), and files of
        microscopes' own formats that cellprop cannot read (.czi, .nd2, ...)."""
        said = []
        if below:
            try:
                deeper = [
                    p for p in self.engine.find_images([folder], recursive=True) if p not in found
                ]
            except Exception:  # noqa: BLE001 (a sub-folder that cannot be read: as before)
                deeper = []
            if deeper:
                where = sorted({p.parent.relative_to(folder).as_posix() for p in deeper})
                said.append(
                    f"{counted(len(deeper), 'more image')} in its sub-folders "
                    f"({first_three(where)}) {'were' if len(deeper) > 1 else 'was'} not "
                    "opened: open those folders (or a folder that holds only them) to "
                    "process them"
                )
        note = self._files_not_read(folder).strip()
        if note:
            said.append(note)
        return f"{folder}: " + "; ".join(said) + "." if said else ""

    def _files_not_read(self, folder: Path) -> str:
        """ " N files ..." of microscopes' own formats in ``folder`` that cellprop cannot read,
        and what to do ("" where none): they were left out without a word."""
        try:
            kinds = [  # (in it and below it: a plate's wells)
                p.suffix.lower()
                for p in Path(folder).rglob("*")
                if p.suffix.lower() in VENDOR_FORMATS and not p.name.startswith(".")
            ]
        except OSError:
            return ""
        n, kinds = len(kinds), sorted(set(kinds))
        if not n:
            return ""
        return (
            f" {counted(n, 'file')} of a microscope's own format ({', '.join(kinds)}) "
            f"{'were' if n > 1 else 'was'} left out: cellprop reads TIFF, PNG, JPEG and BMP; "
            "save them as TIFF (Fiji: File > Save As > Tiff, with Bio-Formats)"
        )

    def images_found_in(self, folder: str | Path) -> list[Path]:
        """The images opening ``folder`` found (in it, or in its sub-folders where it held
        none itself) that are still open, in their order."""
        return [p for p in self._found_in.get(str(folder), []) if self.index_of(p) >= 0]

    def _add_documents(self, paths: Iterable[Path]) -> list:
        added, seen = [], set()
        for p in paths:
            key = Path(p).resolve()
            if key in seen or self.index_of(key) >= 0:
                continue
            seen.add(key)
            added.append(Document(path=Path(p)))
        if added:
            first = len(self.documents)
            for n, doc in enumerate(added):  # a dict: batches of thousands look up often
                self._resolved[doc.path] = doc.path.resolve()
                self._index_by_path[self._resolved[doc.path]] = first + n
            self.documents.extend(added)
            self.documents_added.emit(first, len(added))
        return added

    def close_images(self, indices: Iterable[int]) -> bool:
        """Take images out of the list, with their results, corrections and marks (the
        window asks first where any is not saved: :meth:`unsaved_work`). The image shown
        stays shown if it is not among them; else the next one is shown. Not while work
        runs. False if nothing was closed."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        closing = sorted({int(i) for i in indices if 0 <= int(i) < len(self.documents)})
        if not closing:
            return False
        shown = self.current
        gone = {id(self.documents[i]) for i in closing}
        self.documents = [d for d in self.documents if id(d) not in gone]
        self._resolved = {d.path: self._resolved[d.path] for d in self.documents}
        self._index_by_path = {self._resolved[d.path]: n for n, d in enumerate(self.documents)}
        self._recently_viewed = [d for d in self._recently_viewed if id(d) not in gone]
        self.documents_removed.emit(closing)
        self.log.emit("info", f"{len(closing)} image(s) closed")
        if shown is not None and id(shown) not in gone:
            self.current_index = self.documents.index(shown)  # still shown, now here
            self.current_changed.emit(self.current_index)
        else:
            self.current_index = -1
            self.selected_cells, self._held_tracks = (), set()
            if self.documents:
                self.set_current(min(closing[0], len(self.documents) - 1))
            else:
                self._memo = self._new_memo()
                self._memo_holds = self._memo_tried = None
                self.current_changed.emit(-1)
                self.selection_changed.emit(0)
        return True

    def unsaved_work(self, indices: Iterable[int]) -> str:
        """What closing these images would lose, in words ("" when nothing): corrections
        not exported, centres marked for training and not saved."""
        docs = [self.documents[i] for i in indices if 0 <= i < len(self.documents)]
        corrected = self.unexported_corrections(docs)
        replaced = self.cells_in_no_file(docs)
        retracked = self.unexported_tracks(docs)
        measured = sum(any(r.measured_anew for r in d.results.values()) for d in docs)
        marked = self.unsaved_marks(docs)
        parts = []
        if corrected:
            parts.append(f"corrections not exported on {corrected} image(s)")
        if replaced:
            parts.append(
                f"cells whose files were replaced since, in no file now, on {replaced} image(s)"
            )
        if retracked:
            parts.append(f"tracks changed by a correction and not exported on {retracked} image(s)")
        if measured:
            parts.append(f"cells measured again and not exported on {measured} image(s)")
        if marked:
            parts.append(f"cell centres marked for training and not saved on {marked} image(s)")
        return " and ".join(parts)

    def _new_memo(self):
        memo = getattr(self.engine, "Memo", None)
        return memo() if memo is not None else None

    def set_current(self, index: int) -> None:
        """Show another image; from one time point of a time-lapse whose cells a batch
        followed to another (a folder's images), the cells selected stay selected by their
        tracks."""
        if not (0 <= index < len(self.documents)) or index == self.current_index:
            return
        shown, doc = self.current, self.documents[index]
        carried = set()
        if shown is not None and shown.result is not None and doc.result is not None:
            if sequence_key(shown, shown.plane, shown.result) == sequence_key(
                doc, doc.plane, doc.result
            ):
                carried = self.selected_tracks  # (no tracks: not followed)
        if self._warming is not None and self._job is not None:
            self._job.cancel()  # what it gets ready is let go with the memo below
        self._memo = self._new_memo()  # a correction of the image shown next starts afresh
        self._memo_holds = self._memo_tried = None
        self.current_index = index
        self.selected_cells, self._held_tracks = (), set()
        self.current_changed.emit(index)
        self.selection_changed.emit(0)
        parked = doc.result is not None and doc.result.labels is None
        if parked or doc.image is None or (doc.image.page, doc.image.channel) != doc.plane:
            self._selected_tracks = carried
            self._load_image(index)
        else:
            self.image_ready.emit(index)
            self._select_tracks(carried, doc, doc.plane)

    def next_image(self) -> None:
        if self.documents:
            self.set_current(min(self.current_index + 1, len(self.documents) - 1))

    def previous_image(self) -> None:
        if self.documents:
            self.set_current(max(self.current_index - 1, 0))

    def set_plane(self, page: int, channel: int) -> None:
        """Show another page or channel of the current image (results are kept per plane)."""
        doc = self.current
        if doc is None or (page, channel) == doc.plane:
            return
        # cells followed over time stay selected: at the next page, the cells of their tracks
        # (not at a page of another time-lapse: a hyperstack's other slice, its own tracks)
        now, then = doc.result, doc.results.get((page, channel))
        alike = now is None or then is None or now.sequence is None or then.sequence is None
        alike = alike or now.sequence[0] == then.sequence[0]
        self._selected_tracks = self.selected_tracks if alike else set()
        doc.page, doc.channel = page, channel
        self.selected_cells, self._held_tracks = (), set()
        self.document_changed.emit(self.current_index)
        self._load_image(self.current_index)

    def show_plane_of(self, doc: Document, plane: tuple) -> bool:
        """Show this page and channel of an open image (another image than the one shown
        opens at that plane). False if it is not open any more."""
        if doc not in self.documents:
            return False
        index = self.documents.index(doc)
        if index == self.current_index:
            self.set_plane(*plane)
        else:
            doc.page, doc.channel = plane
            self.set_current(index)
        return True

    def step_page(self, step: int) -> bool:
        """Show the page ``step`` pages on (1: the next time point of a time-lapse, -1: the
        one before) of a multi-page image; of a folder's images whose cells a batch followed
        over time, the image of the next (or previous) time point segmented. False at either
        end, or with one page only."""
        target = self._step_target(step)
        if target is None:
            return False
        kind, where = target
        if kind == "page":
            self.set_plane(where, self.current.channel)
        else:
            self.set_current(where)
        return True

    def can_step_page(self, step: int) -> bool:
        """Whether :meth:`step_page` has somewhere to go (the window's . and , keys)."""
        return self._step_target(step) is not None

    def _step_target(self, step: int) -> tuple | None:
        """("page", page) of the image shown, or ("image", index) of the time point of its
        followed folder ``step`` on; None where there is none."""
        doc = self.current
        if doc is None or doc.image is None:
            return None
        if doc.image.n_pages > 1:
            page = doc.page + step
            return ("page", page) if 0 <= page < doc.image.n_pages else None
        members = self._sequence_members(doc, doc.plane)
        if doc.result is None or len({id(d) for d, _, _ in members.values()}) < 2:
            return None
        now = doc.result.sequence[1]
        beyond = sorted(t for t in members if (t - now) * step > 0)
        if not beyond:
            return None
        target = members[beyond[0] if step > 0 else beyond[-1]][0]
        return ("image", self.documents.index(target))

    def _load_image(self, index: int) -> None:
        doc = self.documents[index]
        page, channel = doc.plane

        result = doc.results.get((page, channel))
        parked = result.labels_file if result is not None and result.labels is None else None
        # A file looked at for the first time shows the channel the model segments (the one
        # it was trained on), where the file has it; the first for the shipped models.
        fresh = not (doc.seen or doc.results or doc.marks) and channel == 0
        own = self.model_channel() if fresh else 0

        def read(job: Job):
            image = self.engine.read_image(doc.path, page=page, channel=channel)
            if 0 < own < image.n_channels:
                image = self.engine.read_image(doc.path, page=page, channel=own)
            if parked is None:
                return image, None
            try:
                return image, self.engine.read_labels(parked)
            except (OSError, ValueError) as exc:
                return image, exc

        job = Job(read, name=f"read {doc.name}")

        def finished(out):
            if doc not in self.documents:  # closed meanwhile
                return
            image, labels = out
            doc.image, doc.seen = image, True
            if image.channel != channel and doc.plane == (page, channel):  # the model's
                doc.channel = image.channel
            if doc.error and doc.result is None and not doc.running:
                doc.error = None
            if parked is not None and result is doc.results.get((page, channel)):
                result.labels = None if isinstance(labels, Exception) else labels
            problem = ""
            if result is not None and result.labels is None and parked is not None:
                problem = f"its cells could not be read back from {parked} ({labels})"
            elif result is not None and result.labels.shape != image.pixels.shape[:2]:
                # cells read back from files (Open results) of an image changed since
                h, w = result.labels.shape[:2]
                problem = (
                    f"its saved cells ({w} x {h} pixels) do not fit the image as it is now "
                    f"({image.description})"
                )
            if problem:
                del doc.results[(page, channel)]
                doc.error = f"{doc.name}: {problem}; segment it again"
                self._report(doc.error)
            self._check_modality(doc)
            note = getattr(image, "note", "")  # how it was read (a photo's EXIF turn): once
            if note and (doc.path, note) not in self._notes_said:
                self._notes_said.add((doc.path, note))
                self.log.emit("info", f"{doc.name}: {note}")
            self._forget_old_images(doc)
            self.document_changed.emit(self.documents.index(doc))
            if self.current is doc:
                self.image_ready.emit(self.current_index)
                tracks, self._selected_tracks = self._selected_tracks, set()
                if tracks and doc.result is not None and doc.plane == (page, channel):
                    self._select_tracks(tracks, doc, (page, channel))

        def failed(exc, tb):
            if doc not in self.documents:  # closed meanwhile
                return
            doc.error = readable_error(exc, self.engine)
            shown = doc.image
            if shown is not None and (shown.page, shown.channel) != (page, channel):
                # another page or channel of a file read before: its page is said, and the
                # one read before is not shown for it any more
                doc.error += f" (page {page}, channel {channel})"
                if doc.plane == (page, channel):
                    doc.image = None
            index = self.documents.index(doc)
            self.document_changed.emit(index)
            if doc.image is None and self.current is doc:
                self.current_changed.emit(index)  # the window shows none of its pixels
            self._report(doc.error, self._details(exc, tb))

        self._start_side_job(job, finished, failed)

    def _forget_old_images(self, keep: Document) -> None:
        """Only a few images stay in memory; results are kept regardless."""
        if keep in self._recently_viewed:
            self._recently_viewed.remove(keep)
        self._recently_viewed.append(keep)
        while len(self._recently_viewed) > self.MAX_IMAGES_IN_MEMORY:
            old = self._recently_viewed.pop(0)
            if old is not self.current and not old.running:
                if old.image is not None:
                    old.pages_seen = int(getattr(old.image, "n_pages", 1) or 1)
                old.image = None
                for result in old.results.values():
                    result.park()  # labels a file holds too are read back when shown

    # ------------------------------------------------------------------ selection
    @property
    def selected_cell(self) -> int:
        """The cell selected last (0: none): the one the table and the view go to."""
        return self.selected_cells[-1] if self.selected_cells else 0

    def select_cells(self, labels: Iterable[int], keep_held: bool = False) -> None:
        """Select these cells of the image shown (rows chosen with Ctrl or Shift in the
        table, cells Ctrl-clicked in the image): *Remove* takes them all out at once.
        ``keep_held``: the tracks held across a time point that missed them stay selected
        (a cell added to the selection), else they go (a choice of its own)."""
        result = self.current.result if self.current else None
        n_cells = result.n_cells if result is not None else 0
        chosen = tuple(dict.fromkeys(int(k) for k in labels if 0 < int(k) <= n_cells))
        held = set() if keep_held else self._held_tracks
        if not keep_held:
            self._held_tracks = set()
        if chosen != self.selected_cells or held:
            self.selected_cells = chosen
            self.selection_changed.emit(self.selected_cell)

    def select_cell(self, label: int) -> None:
        """Select this cell alone (0: none)."""
        self.select_cells([label])

    def _cell_at(self, x: int, y: int) -> int:
        """The number of the cell at (x, y) in the image shown (0: background, no result)."""
        result = self.current.result if self.current else None
        return result.label_at(x, y) if result is not None else 0

    def select_cell_at(self, x: int, y: int) -> int:
        label = self._cell_at(x, y)
        self.select_cell(label)
        return label

    def toggle_cell_at(self, x: int, y: int) -> int:
        """Add the cell at (x, y) to the selection, or take it out of it if it is there (a
        Ctrl-click). Returns its number (0: background)."""
        label = self._cell_at(x, y)
        if label in self.selected_cells:
            self.select_cells((k for k in self.selected_cells if k != label), keep_held=True)
        elif label:
            self.select_cells([*self.selected_cells, label], keep_held=True)
        return label

    def describe_pixel(self, x: int, y: int) -> str:
        """Status-bar text for the pixel under the cursor."""
        doc = self.current
        if doc is None or doc.image is None:
            return ""
        pixels = doc.image.pixels
        h, w = pixels.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return ""
        text = f"x {x}, y {y}   value {_value_text(pixels[y, x])}"
        rgb = doc.image.colour
        if rgb is not None and rgb.shape[:2] == (h, w):
            text += "   RGB " + ", ".join(_value_text(v) for v in rgb[y, x])
        colour = self.colour_pixels
        shown = (doc.path, doc.page, self.colour_channel) == self._colour_of  # (not the last's)
        if colour is not None and shown and colour.shape[:2] == (h, w):
            name = doc.image.channel_name(self.colour_channel)
            text += f"   {name} {_value_text(colour[y, x])}"
        if doc.result is not None:
            label = doc.result.label_at(x, y)
            text += f"   cell {label}" if label else "   background"
            tracks = track_column(doc.result)
            if 0 < label <= len(tracks):
                text += f", track {tracks[label - 1]}"
        return text

    def set_colour_channel(self, channel: int) -> None:
        """Draw this channel of the image shown in colour over it (-1: none)."""
        self.colour_channel = int(channel)
        self.load_colour_channel()

    def load_colour_channel(self) -> None:
        """Read the colour channel at the page shown (``colour_ready`` brings its pixels;
        None where there is none: not chosen, the channel shown, or the file lacks it)."""
        doc, channel = self.current, self.colour_channel
        image = doc.image if doc is not None else None
        if image is None or not 0 <= channel < image.n_channels or channel == doc.channel:
            self.colour_pixels = None
            self.colour_ready.emit(None)
            return
        plane = (doc.page, channel)

        def finished(colour):
            if self.current is doc and (doc.page, self.colour_channel) == plane:
                self.colour_pixels = colour.pixels
                self._colour_of = (doc.path, *plane)
                self.colour_ready.emit(colour.pixels)

        def failed(exc, tb):
            self._report(
                f"{doc.name}: channel {channel} could not be read: "
                f"{readable_error(exc, self.engine)}",
                self._details(exc, tb),
            )

        read = Job(
            lambda job: self.engine.read_image(doc.path, page=plane[0], channel=channel),
            name=f"read channel {channel} of {doc.name}",
        )
        self._start_side_job(read, finished, failed)

    # ------------------------------------------------------------------ settings
    def available_models(self) -> list:
        try:
            return list(self.engine.list_models())
        except Exception as exc:  # noqa: BLE001
            self._report(readable_error(exc, self.engine))
            return []

    def available_devices(self) -> list:
        """Devices that really work here (asked once: probing CUDA takes a while)."""
        if self._devices is None:
            try:
                self._devices = list(self.engine.available_devices())
            except Exception:  # noqa: BLE001 - a broken GPU stack must not stop the app
                self._devices = ["cpu"]
        return self._devices

    def update_settings(self, **changes) -> None:
        unknown = set(changes) - set(UserSettings.field_names())
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        new = self.settings.with_changes(**changes)
        if new == self.settings:
            return
        model_changed = (new.model, new.device) != (self.settings.model, self.settings.device)
        changed = [
            n for n in UserSettings.field_names() if getattr(new, n) != getattr(self.settings, n)
        ]
        self.settings = new
        self.store.save_settings(new, changed)
        self.settings_changed.emit(new)
        if model_changed:
            self.load_model()

    def reset_to_model_defaults(self) -> None:
        self.update_settings(
            threshold=None,
            diameter=None,
            diameter_each_image=False,
            smoothness=None,
            min_size=None,
            max_size=None,
            edge_fraction=None,
            batch_channel_index=None,
        )

    def set_overlay(
        self, name: str, visible: bool | None = None, opacity: float | None = None
    ) -> None:
        old = self.overlays.get(name, DEFAULT_OVERLAYS[name])
        new = Overlay(
            old.visible if visible is None else bool(visible),
            old.opacity if opacity is None else min(1.0, max(0.0, float(opacity))),
        )
        if new != old:
            self.overlays = {**self.overlays, name: new}
            self.store.save_overlays(self.overlays, [name])
            self.overlays_changed.emit(self.overlays)

    # ------------------------------------------------------------------ model
    def load_model(self) -> None:
        """Load the chosen model in the background; ``model_changed`` tells the outcome."""
        name, device = self.settings.model, self.settings.device
        self.model_status = ModelStatus(name=name, loading=True)
        self.model_changed.emit(self.model_status)
        job = Job(lambda job: self._model_for(name, device), name=f"load model {name}")

        def finished(model):
            if (name, device) == (self.settings.model, self.settings.device):
                self.model_status = self._status_of(model)
                self.model_changed.emit(self.model_status)
                self.log.emit(
                    "info",
                    f"Model '{self.model_status.name}' ready on {self.model_status.provider}",
                )
                doc = self.current
                if doc is not None and doc.image is not None:  # the image shown, new model
                    self._check_modality(doc)

        def failed(exc, tb):
            if (name, device) == (self.settings.model, self.settings.device):
                message = readable_error(exc, self.engine)
                self.model_status = ModelStatus(name=name, error=message)
                self.model_changed.emit(self.model_status)
                self._report(message, self._details(exc, tb))

        self._start_side_job(job, finished, failed)

    def _check_modality(self, doc: Document) -> None:
        """Say so when the image's light does not fit the chosen model's kind of microscopy.

        Fluorescence has a dark background, transmitted light (phase contrast, DIC) a lit one
        (engine ``background_level``); only the median is looked at, no network is run. Said
        once per file and model: checked when an image is read and when a model has loaded.
        """
        modality = self.model_status.modality
        if not modality:
            return
        key = (doc.path, self.model_status.name)
        if key in self._modality_checked:
            return
        self._modality_checked.add(key)
        level = self.engine.background_level(doc.image.pixels)
        if level != level:  # NaN: an image of one value, whose light tells nothing
            return
        dark = level < self.engine.DARK_BACKGROUND
        if self.engine.light_fits(modality, dark):
            return
        light = "a dark background, like fluorescence" if dark else "a lit background"
        message = (
            f"{doc.name} has {light}, but the model '{self.model_status.name}' is for "
            f"{modality} images. Image ▸ Suggest a model picks an installed model that suits it."
        )
        self.log.emit("warning", message)
        self.hint.emit(message)

    def suggest_model(self) -> bool:
        """Switch to the installed model that suits the current image, in the background.

        The engine's ``suggest_model`` (lit or dark background, then which network is most
        confident); the log says what was chosen and why. False if there is no image yet.
        """
        doc = self.current
        if doc is None or doc.image is None:
            self._report("Open an image first; the model is chosen from what it shows.")
            return False
        pixels, device, name = doc.image.pixels, self.settings.device, doc.name
        engine = self.engine

        self._suggesting += 1  # until it has chosen: segmenting now would use the model before

        def work(job: Job):
            left_out: list = []
            models = engine.load_models(device=device, left_out=left_out)
            if not models:
                raise engine.ModelError(
                    "no model could be loaded to choose from"
                    + "".join(f"; {folder}: {why}" for folder, why in left_out)
                )
            return engine.suggest_model(pixels, models), left_out

        def finished(out):
            self._suggesting -= 1
            suggestion, left_out = out
            for folder, why in left_out:
                self.log.emit("warning", f"Suggest a model left out {folder}: {why}")
            if not suggestion.found:  # nothing to choose by: the model stays as it is
                said = f"{name}: {suggestion.describe()}; the model stays {self.settings.model}"
                self.log.emit("warning", said)
                self.hint.emit(said)
                return
            self.log.emit("info", f"{name}: {suggestion.describe()}")
            self.update_settings(model=suggestion.model.name)

        def failed(exc, tb):
            self._suggesting -= 1
            self._report(readable_error(exc, self.engine), self._details(exc, tb))

        self._start_side_job(Job(work, name="suggest a model"), finished, failed)
        return True

    def estimate_diameter(self) -> bool:
        """Estimate the typical cell diameter of the current image and use it, in the background.

        The engine's ``estimate_diameter`` with the chosen model (the trial scale where the
        model's centres are most confident); the log says the figure. False if no image is open.
        """
        doc = self.current
        if doc is None or doc.image is None:
            self._report("Open an image first; the cell diameter is measured on what it shows.")
            return False
        pixels, name = doc.image.pixels, doc.name
        model_name, device = self.settings.model, self.settings.device
        engine = self.engine

        def work(job: Job):
            return engine.estimate_diameter(pixels, self._model_for(model_name, device))

        def finished(estimate):
            if estimate.diameter is None:
                self.log.emit("warning", f"{name}: {estimate.describe()}")
                self.hint.emit(f"{name}: {estimate.describe()}")
                return
            self.log.emit("info", f"{name}: {estimate.describe()}")
            # This image's figure, for every image: no longer measured on each one.
            self.update_settings(
                diameter=round(float(estimate.diameter), 1), diameter_each_image=False
            )

        def failed(exc, tb):
            self._report(readable_error(exc, self.engine), self._details(exc, tb))

        self._start_side_job(Job(work, name="estimate the cell diameter"), finished, failed)
        return True

    def _model_for(self, name: str, device: str):
        """The loaded model (cached); runs on worker threads only."""
        with self._model_lock:
            key = (name, device)
            if key not in self._model_cache:
                model = self.engine.load_model(name, device=device)
                self._model_cache = {key: model}  # one model in memory at a time
            return self._model_cache[key]

    @staticmethod
    def _status_of(model) -> ModelStatus:
        info = dict(getattr(model, "info", {}) or {})
        defaults = dict(getattr(model, "defaults", {}) or info.get("defaults", {}))
        scale = float(info.get("input", {}).get("scale", 1.0) or 1.0)
        diameter = info.get("cell_diameter_px")
        shown = {
            "threshold": defaults.get("threshold"),
            "smoothness": defaults.get("graphcut_weight"),
            "min_size": defaults.get("min_size_px"),
            "max_size": defaults.get("max_size_px") or 0,
            "edge_fraction": float(defaults.get("edge_fraction", 0.0)),
            # the network's typical diameter, in the original image's pixels
            "diameter": float(diameter) / scale if diameter else None,
            "channel": int(getattr(model, "channel", 0) or 0),
        }
        return ModelStatus(
            name=str(getattr(model, "name", "")),
            path=str(model.path),
            description=str(info.get("description", "")),
            provider=str(getattr(model, "provider", "")),
            modality=str(info.get("modality", "")),
            defaults=shown,
        )

    # ------------------------------------------------------------------ running
    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def in_batch(self) -> bool:
        return self._batch is not None

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.progress.emit("Stopping after the current step…", -1.0)
            self.log.emit("info", "Cancel requested")

    def _settings_refused(self) -> bool:
        """Whether the settings chosen are ones no image can be segmented with (the smallest
        cell larger than the largest): said, and then nothing starts (it is not the image
        that is at fault)."""
        try:
            self.engine.Settings(**self.settings.engine_kwargs())
        except ValueError as exc:
            self._report(f"Nothing was started: {exc}.")
            return True
        return False

    def batch_refused(self) -> bool:
        """Whether a batch would be refused before its first image, said now (the window
        asks this before it asks where the results go): *Suggest a model* still choosing,
        settings no image can be segmented with, or a model that cannot be used."""
        if self._choosing_model() or self._settings_refused():
            return True
        status = self.model_status
        if status.error:
            self._report(f"Nothing was started: the model cannot be used: {status.error}")
            return True
        return False

    def _choosing_model(self) -> bool:
        """Whether *Suggest a model* is still choosing (said): segmenting now would use the
        model before it, and the model shown would then not be the one that made the cells."""
        if self._suggesting:
            self._report("Suggest a model is choosing the model; segment once it has.")
        return self._suggesting > 0

    def run_current(self, centres=None, what: str = "") -> bool:
        """Segment the current image in the background. False if nothing could start.

        ``centres`` ((x, y) rows): outline the cells there instead of detecting them; the
        result then counts as the user's work (``what`` says where they came from)."""
        doc = self.current
        if doc is None:
            self._report("Open an image first.")
            return False
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        if self._choosing_model():
            return False
        if self._settings_refused():
            return False
        index = self.current_index
        plane = doc.plane
        user = self.settings
        engine = self.engine
        given = centres is not None

        def work(job: Job):
            started = time.monotonic()
            settings = engine.Settings(**user.engine_kwargs())
            out = self._segment(
                job, doc, plane, (user.model, user.device), settings, centres, user.pixel_size
            )
            return (*out, time.monotonic() - started)

        doc.running = True
        self.document_changed.emit(index)

        def finished(out):
            image, seg, table, layers, model, seconds = out
            doc.running = False
            doc.error = None
            unseen = doc.image is None  # (a file that could not be read, mended since)
            if doc.plane == plane:  # the page it ran on still shown (else that page's image)
                doc.image = image
            old = doc.results.get(plane)  # a time point of a time-lapse stays one
            doc.results[plane] = Result.of(
                seg,
                table,
                layers,
                model=user.model,
                device=user.device,
                edits=int(given),
                sequence=old.sequence if old is not None else None,
                tracking=old.tracking if old is not None else None,
            )
            # cells found again at the same centres keep their links (mended ones too)
            self._follow_again(doc, plane, was=old)
            self._memo_filled(doc, plane)
            self.document_changed.emit(self.documents.index(doc))
            if unseen and doc is self.current and doc.plane == plane:
                self.image_ready.emit(self.current_index)  # its pixels, drawn at last
            self.result_ready.emit(self.documents.index(doc))
            missed = points_missed(self.engine, centres, seg.centres) if given else ""
            self.log.emit(
                "warning" if missed else "info",
                f"{doc.name}: {count_cells(seg.n_cells)}{what} in {seconds:.1f} s "
                f"({getattr(model, 'provider', '')}){size_note(seg.settings)}"
                + (f"; {missed}" if missed else ""),
            )
            if self.model_status.provider != getattr(model, "provider", ""):
                self.model_status = self._status_of(model)
                self.model_changed.emit(self.model_status)

        def failed(exc, tb):
            doc.running = False
            if isinstance(exc, self.engine.Cancelled):
                self.log.emit("info", f"{doc.name}: stopped; nothing changed.")
            elif isinstance(exc, self.engine.ModelError) or (
                isinstance(exc, self.engine.ImageError) and exc.path is None
            ):  # the model's fault, or the settings' (a diameter too small), not the image's
                self._report(readable_error(exc, self.engine), self._details(exc, tb))
            else:
                doc.error = readable_error(exc, self.engine)
                self._report(f"{doc.name}: {doc.error}", self._details(exc, tb))
            self.document_changed.emit(self.documents.index(doc))

        return self._start_work(
            Job(work, name=f"segment {doc.name}"), finished, failed, f"Segmenting {doc.name}"
        )

    def _segment(
        self,
        job: Job,
        doc,
        plane,
        model_key,
        settings,
        centres,
        typed_pixel_size,
        layers=True,
        before=None,
    ):
        """On the worker thread: the model, the image plane (read if not at hand), its
        segmentation (at ``centres`` if given), the cell table and the overlay layers (None
        without ``layers``). ``before``: (labels, their centres, the cells removed) of a
        correction, whose labels where they are not the method's own stay as they are
        (engine ``keep_unreached``)."""
        job.progress("Loading the model", 0.0)
        model = self._model_for(*model_key)
        image = self._image_at(doc, plane, job.progress)

        def run(at, share=(0.0, 1.0)):
            low, width = share
            return self.engine.segment(
                image.pixels,
                model,
                settings,
                progress=lambda stage, f: job.progress(stage, low + width * f),
                cancel=job.is_cancelled,
                centres=at,
                memo=self._memo,
            )

        if before is None:
            seg = run(centres)
        else:  # the method from the cells' own centres first: what the edit changes of it
            labels, old_centres, removed = before
            was = run(old_centres, (0.0, 0.3))
            seg = self.engine.keep_unreached(
                labels, old_centres, removed, centres, was, run(centres, (0.3, 0.7))
            )
        job.progress("Measuring the cells", 1.0)
        # as engine.batch does (a pixel size typed by the user is in micrometres)
        rows = self._memo.rows if self._memo is not None else None
        measured = {**settings.measured(), "pixel_size": typed_pixel_size}
        # the rings the table measures and the layer draws, from one transform of the labels
        grown = self.engine.feature_transform(seg.labels) if settings.ring_width else None
        # its numbers as its file will hold them, as a batch keeps its tables (what is
        # computed from them, a time-lapse's distances, comes out as a run's)
        table = self.engine.as_written(
            self.engine.measure_image(
                seg.labels, image, centres=seg.centres, memo=rows, transform=grown, **measured
            )
        )
        overlays = None
        if layers:
            overlays = render.result_layers(
                seg.labels,
                seg.likelihood,
                seg.contribution,
                ring=settings.ring_width,
                transform=grown,
            )
        return image, seg, table, overlays, model

    def _memo_filled(self, doc: Document, plane) -> None:
        """The memo now holds what segmenting this image plane computed (if it is shown)."""
        if doc is self.current:
            self._memo_holds = (doc, plane)

    # ------------------------------------------------------------------ plumbing
    def _details(self, exc: BaseException, tb: str) -> str | None:
        """The traceback for the log, only when the error was not foreseen.

        A bad file, a broken model, a full memory or an existing output are explained by
        their message; anything else is a bug whose traceback helps whoever fixes it.
        """
        foreseen = tuple(
            getattr(self.engine, name)
            for name in (
                "ImageError",
                "ModelError",
                "OutputExists",
                "PointsError",
                "ResumeError",
                "Cancelled",
            )
            if isinstance(getattr(self.engine, name, None), type)
        )
        return None if isinstance(exc, (*foreseen, MemoryError)) else tb

    def _report(self, message: str, details: str | None = None) -> None:
        self.log.emit("error", message if not details else f"{message}\n{details.rstrip()}")
        self.error.emit(message)

    def _image_at(self, doc, plane: tuple, progress=None):
        """The image of ``doc`` at ``plane`` (page, channel): the one shown where it is that
        plane, else read from its file (in a worker: it may take a while; ``progress`` is
        told so)."""
        image = doc.image
        if image is None or (image.page, image.channel) != plane:
            if progress is not None:
                progress("Reading the image", 0.0)
            image = self.engine.read_image(doc.path, page=plane[0], channel=plane[1])
        return image

    def _start_work(self, job: Job, finished, failed, title: str) -> bool:
        if self._job is not None:
            return False
        self._job = job
        job.signals.progress.connect(
            lambda stage, frac: self.progress.emit(
                f"{title}: {STAGE_WORDS.get(stage, stage)}", frac
            )
        )
        job.signals.finished.connect(finished)
        job.signals.failed.connect(failed)
        job.signals.done.connect(self._work_done)
        self.busy_changed.emit(True)
        self.progress.emit(title, 0.0)
        self._work_pool.start(job)
        return True

    def _work_done(self) -> None:
        self._job = None
        doc, self._correcting, self._warming = self._correcting, None, None
        plane, self._correcting_plane = self._correcting_plane, None
        clicks, self._queued_clicks = self._queued_clicks, []
        removed, self._queued_removals = self._queued_removals, []
        # Clicks (and removals, while the image was got ready) that came while a correction
        # ran: one more correction does them all, and the app stays busy meanwhile.
        # (on the page they were made on: another page shown since lets them go)
        waiting = len(clicks) + len(removed)
        if waiting and doc is self.current and doc.plane == plane and doc.result is not None:
            clicks = self._clicks_anew(doc, clicks, removed)
            if (clicks or removed) and self._add_cells(doc, clicks, removed):
                return
            waiting = 0 if not (clicks or removed) else waiting
        self._say_dropped(doc, waiting, "a correction ran")
        self.progress.emit("", 1.0)
        self.busy_changed.emit(False)

    def _clicks_anew(self, doc, clicks: list, removed: list) -> list:
        """The clicks that waited for a correction, less those on the centre of a cell now
        (a double click: the first one's cell is there; not one ``removed`` with them, a
        cell clicked anew) or on another of them, which are said as a click on a centre is."""
        anew: list = []
        for x, y in clicks:
            near = self._centred_at(doc.result, x, y)
            if near and near not in removed:
                self._on_a_centre(doc, near)
            elif all(math.hypot(x - a, y - b) >= 1.0 for a, b in anew):
                anew.append((x, y))
        return anew

    def _start_side_job(self, job: Job, finished, failed) -> None:
        self._loads.add(job)
        job.signals.finished.connect(finished)
        job.signals.failed.connect(failed)
        job.signals.done.connect(lambda: self._loads.discard(job))
        self._load_pool.start(job)

    def wait_idle(self, timeout_ms: int = 30000) -> bool:
        """Block until background work ends (shutdown and tests)."""
        ok = self._work_pool.waitForDone(timeout_ms)
        return self._load_pool.waitForDone(timeout_ms) and ok

    def shutdown(self, timeout_ms: int = 10000) -> None:
        if self._job is not None:
            self._job.cancel()
        self.stop_training()
        self.wait_idle(timeout_ms)


def _value_text(value) -> str:
    """A pixel value as the status bar shows it: integers whole, floats to 4 digits."""
    floating = isinstance(value, float) or getattr(getattr(value, "dtype", None), "kind", "") == "f"
    return f"{value:.4g}" if floating else f"{int(value)}"


__all__ = [
    "AppController",
    "BatchItem",
    "BatchSummary",
    "ConfirmOverwrite",
    "ModelStatus",
    "Status",
]
