"""The app's behaviour: open, run, cancel, batch, export, settings.

No widgets here. The window calls these methods and listens to the signals; tests do the
same without a window (and may pass a fake engine). All engine work runs in background
jobs (:mod:`.workers`); results come back as signals on the GUI thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from . import render
from .settings_store import SettingsStore
from .state import DEFAULT_OVERLAYS, Document, Overlay, Result, Status, UserSettings
from .training_run import TrainingRun, training_unavailable
from .workers import Job, make_pool

# Confirm callback: given the files that exist already, return True to replace them.
ConfirmOverwrite = Callable[[list], bool]


@dataclass
class ModelStatus:
    """What the settings panel shows about the chosen model."""

    name: str
    path: str = ""
    description: str = ""
    provider: str = ""  # "CPU" / "CUDA" once loaded
    modality: str = ""  # model.json "modality": phase, dic, fluorescence, ...
    defaults: dict = field(default_factory=dict)  # threshold, smoothness, min_size, diameter
    error: str = ""
    loading: bool = False


@dataclass
class BatchSummary:
    out_dir: Path
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    kept: int = 0  # of ``done``: finished by the earlier run of a continued batch
    cancelled: bool = False
    seconds: float = 0.0
    errors: list = field(default_factory=list)  # (path, message)
    # multi-page files of which only the first page was segmented ("movie.tif (14 pages)")
    first_pages: list = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.done} of {self.total} images segmented"
        if self.kept:
            text += f" ({self.kept} by the earlier run)"
        if self.failed:
            text += f", {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped (results existed)"
        if self.cancelled:
            text += " (stopped by you)"
        text += f"; results in {self.out_dir}"
        if self.first_pages:
            more = f" and {len(self.first_pages) - 1} more" if len(self.first_pages) > 1 else ""
            text += (
                f". Only the first page of {self.first_pages[0]}{more} was segmented: tick "
                "Each page as an image (Settings) to segment every page"
            )
        return text


@dataclass(frozen=True)
class BatchItem:
    """One finished image of a batch, copied on the worker thread.

    The engine drops an image's arrays right after reporting it (so a long batch does not
    fill the memory), so the app takes what it shows before that happens.
    """

    path: Path
    status: str
    n_cells: int
    error: str | None
    outputs: dict
    name: str = ""  # the name its results go by: the file's, or a page's (movie_p3c0.tif)
    page: int | None = None  # the page it is (a batch of every page), None: the first
    channel: int = 0  # the channel the batch segmented
    n_pages: int = 1  # pages its file holds
    labels: object = None
    centres: object = None
    table: object = None
    settings: object = None
    timings: dict = field(default_factory=dict)
    kept: bool = False  # done by the earlier run of a continued batch

    @classmethod
    def of(cls, image_result, read_labels=None, channel: int | None = None) -> BatchItem:
        """``read_labels(path)``: reads the labels of an image an earlier run finished back
        from its file now; without it they are read when the image is shown. ``channel``:
        the one the batch segmented (None: the first)."""
        seg = getattr(image_result, "segmentation", None)
        kept = bool(getattr(image_result, "kept", False))
        table = getattr(image_result, "table", None)
        labels = centres = None
        if seg is not None:
            labels, centres = seg.labels, seg.centres
        elif kept and table is not None and "labels" in (image_result.outputs or {}):
            columns = table.columns
            if "Detection_Center_X" in columns and "Detection_Center_Y" in columns:
                centres = np.column_stack(
                    [columns["Detection_Center_X"], columns["Detection_Center_Y"]]
                ).astype(float)
            if read_labels is not None:
                try:
                    labels = read_labels(image_result.outputs["labels"])
                except (OSError, ValueError):  # read back when the image is shown
                    labels = None
        path = Path(image_result.path)
        return cls(
            path=path,
            status=str(image_result.status),
            n_cells=int(image_result.n_cells or 0),
            error=image_result.error,
            outputs=dict(image_result.outputs or {}),
            name=getattr(image_result, "name", "") or path.name,
            page=getattr(image_result, "page", None),
            channel=channel or 0,
            n_pages=int(getattr(image_result, "n_pages", 1) or 1),
            labels=labels,
            centres=centres,
            table=table,
            settings=getattr(image_result, "settings", None) if seg is None else seg.settings,
            timings={} if seg is None else dict(seg.timings or {}),
            kept=kept,
        )

    @property
    def plane(self) -> tuple:
        """The (page, channel) of its file it is the cells of."""
        return (self.page or 0, self.channel)

    @property
    def usable(self) -> bool:
        """Done, with cells the window can show (in memory, or in the labels file)."""
        has_file = "labels" in self.outputs
        return (
            self.status == "done"
            and (self.labels is not None or has_file)
            and (self.centres is not None)
        )

    def result(self, model: str, device: str) -> Result:
        """The image's result as the window keeps it: its labels file holds these labels."""
        return Result(
            labels=self.labels,
            centres=self.centres,
            table=self.table,
            n_cells=self.n_cells,
            settings=self.settings,
            timings=self.timings,
            outputs=self.outputs,
            model=model,
            device=device,
            labels_file=self.outputs.get("labels"),
            name=self.name or self.path.name,
        )


def _not_kept(clicks, centres) -> list:
    """The clicked centres that did not become cells (the size or border filters dropped
    them): a kept centre comes back among the result's centres, to rounding."""
    centres = np.reshape(centres, (-1, 2))
    return [
        (x, y)
        for x, y in clicks
        if not len(centres) or np.hypot(centres[:, 0] - x, centres[:, 1] - y).min() > 1e-3
    ]


#: Corrections that Undo can take back, per image (each keeps a whole result in memory).
UNDO_DEPTH = 20
#: Changes to the training marks of one image plane that Undo can take back.
MARKS_UNDO_DEPTH = 200


def _trim_undo(result: Result, depth: int) -> None:
    """Forget the results more than ``depth`` corrections back."""
    for _ in range(depth):
        if result.previous is None:
            return
        result = result.previous
    result.previous = None


def readable_error(exc: BaseException, engine) -> str:
    """A sentence a biologist can act on, for any exception the engine may raise."""
    if isinstance(exc, MemoryError):
        return (
            "Not enough memory for this image. Close other programs, choose the CPU, or "
            "split the image into smaller pieces."
        )
    model_error = getattr(engine, "ModelError", ())
    if model_error and isinstance(exc, model_error):
        return f"The model could not be used: {exc}"
    image_error = getattr(engine, "ImageError", ())
    if image_error and isinstance(exc, image_error):
        return f"This image could not be read: {exc}"
    points_error = getattr(engine, "PointsError", ())
    if points_error and isinstance(exc, points_error):
        return str(exc)  # names the file and the line
    resume_error = getattr(engine, "ResumeError", ())
    if resume_error and isinstance(exc, resume_error):
        return f"The earlier run cannot be continued: {exc}"  # names the folder and why
    if isinstance(exc, FileExistsError):
        return f"Not overwritten: {exc}"
    if isinstance(exc, OSError):
        return f"A file could not be read or written: {exc}"
    text = str(exc) or type(exc).__name__
    # onnxruntime reports allocation failures as generic runtime errors
    if "memory" in text.lower() or "bad_alloc" in text.lower():
        return "Not enough memory for this image (" + text.splitlines()[0][:200] + ")."
    return f"Something went wrong ({type(exc).__name__}): {text.splitlines()[0][:300]}"


def _training_summary(model_dir: Path) -> str:
    """For the log: "; held-out images: detection F1 0.930" from a trained model's
    model.json, or "" where it does not say."""
    try:
        training = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["training"]
        detection = training["val_detection"]
        return f"; held-out images: detection F1 {float(detection['f1']):.3f}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _size_note(settings) -> str:
    """For the log: "; cell diameter estimated at 62 px (...)" where the engine measured the
    diameter on the image itself (``diameter="auto"``), else ""."""
    note = (settings or {}).get("diameter_estimate")
    return f"; {note}" if note else ""


# The engine's stage names, as the progress text tells them to a biologist.
STAGE_WORDS = {
    "size": "measuring the cell size",
    "normalise": "preparing the image",
    "detect": "finding cell centres",
    "propagate": "tracing each cell back from its centre",
    "graph cut": "drawing the outlines",
    "done": "measuring the cells",
}


def _default_engine():
    from cellprop import engine

    return engine


class AppController(QObject):
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
    exported = Signal(object)  # list of written paths
    log = Signal(str, str)  # level ("info", "warning", "error"), message
    error = Signal(str)  # a readable message to show in the window
    selection_changed = Signal(int)  # cell id, 0 for none
    settings_changed = Signal(object)  # UserSettings
    model_changed = Signal(object)  # ModelStatus
    hint = Signal(str)  # advice worth showing above the image (not an error)
    overlays_changed = Signal(object)  # {name: Overlay}
    marks_changed = Signal(int)  # the centres marked for training on this image changed
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
        self.current_index = -1
        self.selected_cell = 0
        self.settings = self.store.load_settings()
        self.overlays = self.store.load_overlays()
        self.model_status = ModelStatus(name=self.settings.model)
        self._work_pool = work_pool if work_pool is not None else make_pool(1)
        self._load_pool = load_pool if load_pool is not None else make_pool(1)
        self._job: Job | None = None  # the one heavy job (run, batch, export)
        self._loads: set = set()  # image/model loads in flight (kept alive until done)
        self._model_lock = threading.Lock()
        self._model_cache: dict = {}
        self._recently_viewed: list = []
        # (path, model) pairs whose light was compared: each is said once, not on every re-read
        self._modality_checked: set = set()
        self._batch: BatchSummary | None = None
        self._batch_queue: list = []
        self._batch_left: dict = {}
        self._batch_user = self.settings  # the settings the running batch was started with
        self._correcting: Document | None = None  # the image whose correction is running
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

    # ------------------------------------------------------------------ documents
    @property
    def current(self) -> Document | None:
        if 0 <= self.current_index < len(self.documents):
            return self.documents[self.current_index]
        return None

    def index_of(self, path: str | Path) -> int:
        """Position of an open image in the list, -1 if it is not open."""
        return self._index_by_path.get(Path(path).resolve(), -1)

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
                # a model folder (trained here, or from a colleague): segment with it
                self.update_settings(model=str(path))
                self.log.emit("info", f"Model chosen: the folder {path}")
            elif path.is_dir() and self.earlier_run(path) is not None:
                self.open_results(path)  # a batch's results: its images and their cells
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
                if not found:
                    self._report(f"No images found in the folder {path} nor below it.")
                    continue
                self.log.emit("info", f"{len(found)} images found in {path}{inside}")
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

    def images_found_in(self, folder: str | Path) -> list[Path]:
        """The images opening ``folder`` found (in it, or in its sub-folders where it held
        none itself) that are still open, in their order."""
        return [p for p in self._found_in.get(str(folder), []) if self.index_of(p) >= 0]

    def earlier_run(self, folder: str | Path):
        """The record of the cellprop run in ``folder`` (engine ``earlier_run``), or None where
        there is none or it cannot be read (another program's run.json does not make a folder
        of images a run's)."""
        try:
            return self.engine.earlier_run(folder)
        except self.engine.ResumeError:
            return None

    def open_results(self, folder: str | Path) -> None:
        """Open the images a batch run wrote into ``folder`` with their cells read back from
        its files (engine ``saved_results``), to look at, correct and export them again
        without segmenting them again. Images open already keep the results they have."""
        folder = Path(folder)
        engine = self.engine

        def read(job: Job):
            run, results, problems = engine.saved_results(folder)
            return run, [BatchItem.of(r) for r in results], problems  # labels read when shown

        def finished(out):
            run, items, problems = out
            for problem in problems:
                self._report(f"{folder}: {problem}")
            record = run.record
            model = record.get("model") or {}
            # a correction re-runs the model that made the cells: its folder, or its name
            chosen = model.get("path") if Path(model.get("path") or "").is_dir() else None
            chosen = chosen or model.get("name") or self.settings.model
            page = record.get("page") if isinstance(record.get("page"), int) else 0
            items = [i for i in items if i.usable]
            self._add_documents([i.path for i in items])
            busy = {
                id(d) for d in self.documents if d.results or d.running
            }  # never replace what this window made or corrected
            shown = []
            for item in items:
                i = self.index_of(item.path)
                doc = self.documents[i]
                if id(doc) in busy:
                    continue
                plane = (page if item.page is None else item.page, record.get("channel") or 0)
                if not doc.results:  # the first of its planes opened is the one shown
                    doc.page, doc.channel = plane
                doc.error = None
                doc.results[plane] = item.result(chosen, self.settings.device)
                if i not in shown:
                    shown.append(i)
                self.document_changed.emit(i)
            self.log.emit(
                "info",
                f"Opened the results of {len(shown)} images from {folder} (model "
                f"{model.get('name', '?')}, {record.get('created', 'date not recorded')})",
            )
            if self.current is None and shown:
                self.set_current(shown[0])
            elif self.current_index in shown:
                self._load_image(self.current_index)  # its plane may be another one

        def failed(exc, tb):
            if isinstance(exc, engine.ResumeError):  # no run here: says so, naming the folder
                self._report(str(exc))
            else:
                self._report(readable_error(exc, engine), self._details(exc, tb))

        self._start_side_job(Job(read, name=f"open results {folder.name}"), finished, failed)

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
                self._index_by_path[doc.path.resolve()] = first + n
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
        self._index_by_path = {d.path.resolve(): n for n, d in enumerate(self.documents)}
        self._recently_viewed = [d for d in self._recently_viewed if id(d) not in gone]
        self.documents_removed.emit(closing)
        self.log.emit("info", f"{len(closing)} image(s) closed")
        if shown is not None and id(shown) not in gone:
            self.current_index = self.documents.index(shown)  # still shown, now here
            self.current_changed.emit(self.current_index)
        else:
            self.current_index = -1
            self.selected_cell = 0
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
        marked = self.unsaved_marks(docs)
        parts = []
        if corrected:
            parts.append(f"corrections not exported on {corrected} image(s)")
        if marked:
            parts.append(f"cell centres marked for training and not saved on {marked} image(s)")
        return " and ".join(parts)

    def _new_memo(self):
        memo = getattr(self.engine, "Memo", None)
        return memo() if memo is not None else None

    def set_current(self, index: int) -> None:
        if not (0 <= index < len(self.documents)) or index == self.current_index:
            return
        if self._warming is not None and self._job is not None:
            self._job.cancel()  # what it gets ready is let go with the memo below
        self._memo = self._new_memo()  # a correction of the image shown next starts afresh
        self._memo_holds = self._memo_tried = None
        self.current_index = index
        self.selected_cell = 0
        self.current_changed.emit(index)
        self.selection_changed.emit(0)
        doc = self.documents[index]
        parked = doc.result is not None and doc.result.labels is None
        if parked or doc.image is None or (doc.image.page, doc.image.channel) != doc.plane:
            self._load_image(index)
        else:
            self.image_ready.emit(index)

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
        doc.page, doc.channel = page, channel
        self.selected_cell = 0
        self.document_changed.emit(self.current_index)
        self._load_image(self.current_index)

    def _load_image(self, index: int) -> None:
        doc = self.documents[index]
        page, channel = doc.plane

        result = doc.results.get((page, channel))
        parked = result.labels_file if result is not None and result.labels is None else None

        def read(job: Job):
            image = self.engine.read_image(doc.path, page=page, channel=channel)
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
            doc.image = image
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
            self._forget_old_images(doc)
            self.document_changed.emit(self.documents.index(doc))
            if self.current is doc:
                self.image_ready.emit(self.current_index)

        def failed(exc, tb):
            if doc not in self.documents:  # closed meanwhile
                return
            doc.error = readable_error(exc, self.engine)
            self.document_changed.emit(self.documents.index(doc))
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
                old.image = None
                for result in old.results.values():
                    result.park()  # labels a file holds too are read back when shown

    # ------------------------------------------------------------------ selection
    def select_cell(self, label: int) -> None:
        result = self.current.result if self.current else None
        if result is None or not (0 <= label <= result.n_cells):
            label = 0
        if label != self.selected_cell:
            self.selected_cell = label
            self.selection_changed.emit(label)

    def select_cell_at(self, x: int, y: int) -> int:
        result = self.current.result if self.current else None
        label = result.label_at(x, y) if result is not None else 0
        self.select_cell(label)
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
        value = pixels[y, x]
        shown = f"{value:.4g}" if pixels.dtype.kind == "f" else f"{int(value)}"
        text = f"x {x}, y {y}   value {shown}"
        if doc.result is not None:
            label = doc.result.label_at(x, y)
            text += f"   cell {label}" if label else "   background"
        return text

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
        self.settings = new
        self.store.save_settings(new)
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
            edge_fraction=None,
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
            self.store.save_overlays(self.overlays)
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
        dark = self.engine.background_level(doc.image.pixels) < self.engine.DARK_BACKGROUND
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

        def work(job: Job):
            models = engine.load_models(device=device)
            return engine.suggest_model(pixels, models)

        def finished(suggestion):
            self.log.emit("info", f"{name}: {suggestion.describe()}")
            self.update_settings(model=suggestion.model.name)

        def failed(exc, tb):
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
            "edge_fraction": float(defaults.get("edge_fraction", 0.0)),
            # the network's typical diameter, in the original image's pixels
            "diameter": float(diameter) / scale if diameter else None,
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
            doc.image = image
            doc.results[plane] = Result.of(
                seg, table, layers, model=user.model, device=user.device, edits=int(given)
            )
            self._memo_filled(doc, plane)
            self.document_changed.emit(self.documents.index(doc))
            self.result_ready.emit(self.documents.index(doc))
            self.log.emit(
                "info",
                f"{doc.name}: {seg.n_cells} cells{what} in {seconds:.1f} s "
                f"({getattr(model, 'provider', '')}){_size_note(seg.settings)}",
            )
            if self.model_status.provider != getattr(model, "provider", ""):
                self.model_status = self._status_of(model)
                self.model_changed.emit(self.model_status)

        def failed(exc, tb):
            doc.running = False
            if isinstance(exc, self.engine.Cancelled):
                self.log.emit("info", f"{doc.name}: stopped; nothing changed.")
            else:
                doc.error = readable_error(exc, self.engine)
                self._report(f"{doc.name}: {doc.error}", self._details(exc, tb))
            self.document_changed.emit(self.documents.index(doc))

        return self._start_work(
            Job(work, name=f"segment {doc.name}"), finished, failed, f"Segmenting {doc.name}"
        )

    def _segment(
        self, job: Job, doc, plane, model_key, settings, centres, typed_pixel_size, layers=True
    ):
        """On the worker thread: the model, the image plane (read if not at hand), its
        segmentation (at ``centres`` if given), the cell table and the overlay layers (None
        without ``layers``)."""
        job.progress("Loading the model", 0.0)
        model = self._model_for(*model_key)
        image = doc.image
        if image is None or (image.page, image.channel) != plane:
            job.progress("Reading the image", 0.0)
            image = self.engine.read_image(doc.path, page=plane[0], channel=plane[1])
        seg = self.engine.segment(
            image.pixels,
            model,
            settings,
            progress=job.progress,
            cancel=job.is_cancelled,
            centres=centres,
            memo=self._memo,
        )
        job.progress("Measuring the cells", 1.0)
        # as engine.batch does (a pixel size typed by the user is in micrometres)
        rows = self._memo.rows if self._memo is not None else None
        table = self.engine.measure_image(
            seg.labels, image, typed_pixel_size, seg.centres, memo=rows
        )
        overlays = None
        if layers:
            overlays = render.result_layers(seg.labels, seg.likelihood, seg.contribution)
        return image, seg, table, overlays, model

    def _memo_filled(self, doc: Document, plane) -> None:
        """The memo now holds what segmenting this image plane computed (if it is shown)."""
        if doc is self.current:
            self._memo_holds = (doc, plane)

    # ------------------------------------------------------------------ corrections
    def can_correct(self) -> bool:
        """True when the current image has a result that a click may correct (also while
        it is got ready for corrections: clicks then wait for that)."""
        doc = self.current
        if doc is None or doc.result is None:
            return False
        return not self.busy or (self._warming is doc and doc.result.labels is not None)

    def prepare_corrections(self, again: bool = True) -> bool:
        """Get the image shown ready for quick corrections, in the background: when a batch
        or *Open results* gave its cells, the window's memo is empty and a first correction
        would segment the whole image again; this runs that segmentation (from the result's
        centres, with the model and settings that made it, its outcome let go) so that the
        first click is as quick as the next. The window calls it when the user turns on
        *Add cells by clicking*. Meanwhile the app is busy (*Cancel* stops it); cells clicked
        or removed meanwhile wait and are corrected together when it ends. Without ``again``,
        an image it ran on already (stopped, or failed) is left as it is: the window asks so
        whenever work ends or an image is shown with the mode on. False if nothing started
        (nothing to get ready, ready already, or other work running)."""
        doc = self.current
        if (
            doc is None
            or self.busy
            or self._memo is None
            or doc.result is None
            or doc.result.labels is None
            or self._memo_holds == (doc, doc.plane)
            or (not again and self._memo_tried == (doc, doc.plane))
        ):
            return False
        plane = doc.plane
        settings, model_key, typed_pixel_size = self._made_with(doc.result)
        centres = np.reshape(doc.result.centres, (-1, 2))
        started_at = time.monotonic()

        def work(job: Job):
            return self._segment(
                job, doc, plane, model_key, settings, centres, typed_pixel_size, layers=False
            )

        def finished(out):
            if doc.image is None:
                doc.image = out[0]
            self._memo_filled(doc, plane)
            self.log.emit(
                "info",
                f"{doc.name}: ready for quick corrections ({time.monotonic() - started_at:.1f} s)",
            )

        def failed(exc, tb):
            waiting = len(self._queued_clicks) + len(self._queued_removals)
            if isinstance(exc, self.engine.Cancelled):
                # Cancel meant the edits waiting too; another image shown lets them go anyway
                self._queued_clicks, self._queued_removals = [], []
                self.log.emit(
                    "info",
                    f"{doc.name}: getting ready for corrections stopped"
                    + (f"; {waiting} waiting edits dropped" if waiting else ""),
                )
            else:  # the edits waiting are tried all the same, and report their own failure
                self.log.emit(
                    "warning",
                    f"{doc.name}: getting ready for corrections failed: "
                    f"{readable_error(exc, self.engine)}",
                )

        started = self._start_work(
            Job(work, name=f"prepare {doc.name}"),
            finished,
            failed,
            f"Getting {doc.name} ready for corrections",
        )
        if started:
            self._correcting = self._warming = doc
            self._memo_tried = (doc, plane)
        return started

    def _made_with(self, result: Result):
        """The engine settings, (model, device) and typed pixel size that made a result
        (a diameter measured on the image included): a correction of it uses the same."""
        engine = self.engine
        cfg = result.settings if isinstance(result.settings, dict) else {}
        names = {f.name for f in dataclass_fields(engine.Settings)}
        settings = engine.Settings(**{k: v for k, v in cfg.items() if k in names})
        model_name = result.model or self.settings.model
        device = result.device if result.model else self.settings.device
        return settings, (model_name, device), cfg.get("pixel_size")

    def add_cell_at(self, x: float, y: float) -> bool:
        """Add a cell the network missed: its outline from a centre clicked at (x, y).

        The image is segmented again from the result's centres plus this one, with the
        model and settings that made the result, so the other cells keep their outlines
        (a click inside a cell adds a centre there and splits it). Clicks made while a
        correction of the same image runs wait for it and are added together when it ends.
        False if nothing started or waits.
        """
        doc = self.current
        if doc is None or doc.result is None or doc.result.labels is None:
            return False  # its cells are still being read back
        h, w = doc.result.labels.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return False
        if self.busy and self._correcting is doc:
            self._queued_clicks.append((float(x), float(y)))
            self.log.emit(
                "info",
                f"{doc.name}: cell at x {x:.0f}, y {y:.0f} waits for the correction running",
            )
            return True
        if not self.can_correct():
            return False
        return self._add_cells(doc, [(float(x), float(y))])

    def _add_cells(self, doc: Document, clicks: list, removed: Iterable[int] = ()) -> bool:
        """One correction: cells clicked added, cells numbered ``removed`` taken out."""
        removed = sorted(set(removed))
        kept = np.delete(np.reshape(doc.result.centres, (-1, 2)), [k - 1 for k in removed], 0)
        centres = np.vstack([kept, np.reshape(clicks, (-1, 2))])
        parts = []
        if len(clicks) == 1:
            parts.append(f"cell added at x {clicks[0][0]:.0f}, y {clicks[0][1]:.0f}")
        elif clicks:
            parts.append(f"{len(clicks)} cells added")
        if removed:
            parts.append(f"cell{'s' * (len(removed) > 1)} {', '.join(map(str, removed))} removed")
        return self._correct(doc, centres, "; ".join(parts), added=clicks or None)

    def remove_cell(self, label: int | None = None) -> bool:
        """Take a cell out (debris, a false detection, half of a split cell); default the
        selected one. The image is segmented again without its centre, so that a neighbour it
        was cut from gets its pixels back. False if nothing started."""
        doc = self.current
        label = self.selected_cell if label is None else int(label)
        if not self.can_correct() or not 0 < label <= doc.result.n_cells:
            return False
        if self.busy:  # the image is being got ready for corrections: wait for that
            if label not in self._queued_removals:
                self._queued_removals.append(label)
            self.log.emit("info", f"{doc.name}: removing cell {label} waits a moment")
            return True
        centres = np.delete(np.reshape(doc.result.centres, (-1, 2)), label - 1, axis=0)
        return self._correct(doc, centres, f"cell {label} removed")

    def _correct(self, doc: Document, centres, what: str, added=None) -> bool:
        old = doc.result
        plane = doc.plane
        settings, model_key, typed_pixel_size = self._made_with(old)
        model_name, device = model_key

        def work(job: Job):
            return self._segment(job, doc, plane, model_key, settings, centres, typed_pixel_size)

        def finished(out):
            image, seg, table, layers, _model = out
            doc.image = image
            missing = _not_kept(added or [], seg.centres)
            if missing:
                where = "; ".join(f"x {x:.0f}, y {y:.0f}" for x, y in missing)
                self._report(
                    f"{doc.name}: no cell found at {where} (its outline came out empty or "
                    f"smaller than the smallest cell, {seg.settings.get('min_size') or 0} px)"
                    + ("; nothing changed." if len(missing) == len(added) else ".")
                )
                if len(missing) == len(added):
                    return
            doc.results[plane] = Result.of(
                seg,
                table,
                layers,
                model=model_name,
                device=device,
                edits=old.edits + 1,
                previous=old,
                name=old.name,
            )
            old.keep_for_undo(doc.results[plane])
            _trim_undo(doc.results[plane], UNDO_DEPTH)
            self._memo_filled(doc, plane)
            index = self.documents.index(doc)
            self.document_changed.emit(index)
            self.result_ready.emit(index)
            self.log.emit("info", f"{doc.name}: {what}; {seg.n_cells} cells (Ctrl+Z undoes)")
            self.select_cell(int(seg.n_cells) if added else 0)

        def failed(exc, tb):
            if self._queued_clicks:
                self.log.emit(
                    "info", f"{doc.name}: {len(self._queued_clicks)} waiting clicks dropped"
                )
                self._queued_clicks = []
            if isinstance(exc, self.engine.Cancelled):
                self.log.emit("info", f"{doc.name}: correction stopped; nothing changed.")
            else:
                self._report(
                    f"{doc.name}: the correction failed: {readable_error(exc, self.engine)}",
                    self._details(exc, tb),
                )

        started = self._start_work(
            Job(work, name=f"correct {doc.name}"), finished, failed, f"Correcting {doc.name}"
        )
        if started:
            self._correcting = doc
        return started

    def undo_correction(self) -> bool:
        """Back to the result before the last correction of the current image."""
        doc = self.current
        if self.busy or doc is None or doc.result is None or doc.result.previous is None:
            return False
        doc.results[doc.plane] = doc.result.previous
        self.select_cell(0)
        index = self.documents.index(doc)
        self.document_changed.emit(index)
        self.result_ready.emit(index)
        self.log.emit("info", f"{doc.name}: correction undone, {doc.result.n_cells} cells")
        return True

    def outline_points(self, csv_path: str | Path) -> bool:
        """Outline the cells at the centres a CSV file gives for the current image (the
        files ``cellprop segment --points`` reads: cells counted by hand in Fiji, or a cell
        table cellprop wrote). With a result already there this is a correction (Undo goes
        back); otherwise the image is segmented from these centres. False if nothing started.
        """
        doc = self.current
        if doc is None:
            self._report("Open an image first.")
            return False
        if doc.image is None:
            self._report(f"{doc.name}: {doc.error or 'still being read; try again in a moment'}")
            return False
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        csv_path = Path(csv_path)
        points = self._read_points_file(csv_path)
        if points is None:
            return False
        # the rows of the image's name (its page's, or the one a batch gave it), of its path
        # (A01/field1.tif), else the file's x,y rows: as a batch given the file finds them
        name = self._export_target(doc, doc.plane).name
        plane = self.engine.Plane(doc.path, doc.page or None, name)
        centres = self.engine.planes_points(points, [plane], doc.channel)[name]
        if centres is None or isinstance(centres, str) or not len(centres):
            self._report(f"{csv_path}: no cell centres for {name} in this file")
            return False
        xy = np.reshape(centres, (-1, 2))
        if not self._points_on_image(csv_path, doc, xy):
            return False
        what = f" at the {len(xy)} points of {csv_path.name}"
        if doc.result is not None:
            return self._correct(doc, xy, f"cells outlined{what}")
        return self.run_current(centres=xy, what=what)

    def _read_points_file(self, csv_path: Path) -> dict | None:
        """The points file's centres by image name, or None (reported) if it cannot be read."""
        try:
            return self.engine.read_points(csv_path)
        except (OSError, ValueError) as exc:
            self._report(str(exc))
            return None

    def _points_on_image(self, csv_path: Path, doc: Document, xy: np.ndarray) -> bool:
        """True if every point lies on the image shown; else says so (e.g. micrometres where
        pixels were meant)."""
        h, w = doc.image.pixels.shape[:2]
        off = self.engine.points_outside(xy, (h, w))
        if off:
            self._report(
                f"{csv_path}: {off} of the {len(xy)} points for {doc.name} lie outside the "
                f"image ({w} x {h} pixels); points must be in pixels of this image"
            )
        return not off

    def unexported_corrections(self, docs: Iterable[Document] | None = None) -> int:
        """How many of these images (default all) have corrections not exported yet."""
        docs = self.documents if docs is None else docs
        return sum(any(r.unsaved_edits for r in d.results.values()) for d in docs)

    # ------------------------------------------------------------------ centres for training
    def can_mark(self) -> bool:
        """True when the current image is shown, so that its cell centres can be clicked."""
        doc = self.current
        return doc is not None and doc.image is not None

    def marks(self, doc: Document | None = None) -> list:
        """The centres marked for training on the plane shown, [(x, y), ...]."""
        doc = self.current if doc is None else doc
        return list(doc.marks.get(doc.plane, ())) if doc is not None else []

    def _set_marks(self, doc: Document, plane: tuple, marks: list, what: str) -> None:
        history = doc.marks_undo.setdefault(plane, [])
        history.append(list(doc.marks.get(plane, ())))
        del history[:-MARKS_UNDO_DEPTH]
        doc.marks[plane] = marks
        doc.marks_unsaved.add(plane)
        if what:
            self.log.emit("info", f"{doc.name}: {what}, {len(marks)} centres marked")
        self.marks_changed.emit(self.documents.index(doc))

    def mark_at(self, x: float, y: float, radius: float = 3.0) -> str:
        """Mark a cell centre for training at (x, y), or take away the mark within ``radius``
        pixels of it (a click on a mark). Returns "added", "removed" or "" (nothing done)."""
        if not self.can_mark():
            return ""
        doc = self.current
        h, w = doc.image.pixels.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return ""
        marks = self.marks(doc)
        if marks:
            distance = np.hypot(*(np.asarray(marks, float) - (x, y)).T)
            nearest = int(np.argmin(distance))
            if distance[nearest] <= radius:
                del marks[nearest]
                self._set_marks(doc, doc.plane, marks, "")
                return "removed"
        marks.append((float(x), float(y)))
        self._set_marks(doc, doc.plane, marks, "")
        return "added"

    def mark_detected_cells(self, radius: float = 3.0) -> int:
        """Mark the centre of every cell the segmentation found (then correct the marks by
        hand), except where a mark already is. Returns how many were added."""
        doc = self.current
        if not self.can_mark() or doc.result is None or doc.result.labels is None:
            return 0
        ids = np.unique(doc.result.labels)
        ids = ids[(ids > 0) & (ids <= len(doc.result.centres))]
        found = np.reshape(doc.result.centres, (-1, 2))[ids - 1]
        marks = self.marks(doc)
        if marks:
            near = np.hypot(
                found[:, None, 0] - np.asarray(marks)[None, :, 0],
                found[:, None, 1] - np.asarray(marks)[None, :, 1],
            ).min(axis=1)
            found = found[near > radius]
        if not len(found):
            return 0
        marks += [(float(x), float(y)) for x, y in found]
        self._set_marks(doc, doc.plane, marks, f"{len(found)} detected cells marked")
        return len(found)

    def clear_marks(self) -> bool:
        """Take away every mark on the plane shown (Undo brings them back)."""
        doc = self.current
        if doc is None or not self.marks(doc):
            return False
        self._set_marks(doc, doc.plane, [], "marks cleared")
        return True

    def undo_mark(self) -> bool:
        """Back to the marks before the last change on the plane shown."""
        doc = self.current
        history = doc.marks_undo.get(doc.plane) if doc is not None else None
        if not history:
            return False
        doc.marks[doc.plane] = history.pop()
        doc.marks_unsaved.add(doc.plane)
        self.marks_changed.emit(self.documents.index(doc))
        return True

    def unsaved_marks(self, docs: Iterable[Document] | None = None) -> int:
        """How many image planes (of these images, default all) have marks changed since
        they were last saved."""
        docs = self.documents if docs is None else docs
        return sum(bool(d.marks.get(plane)) for d in docs for plane in d.marks_unsaved)

    def training_name(self, doc: Document, plane: tuple) -> str:
        """The name a marked plane gets in a training set's images/: always a TIFF (the plane
        as shown), another plane than the first with _p<page>c<channel>."""
        return self.training_names([(doc, plane)])[0]

    def training_names(self, items: list) -> list[str]:
        """:meth:`training_name` of each (document, plane), images of one name in different
        folders (an experiment saved well by well) named after their folders too, as a batch
        names their results (``A01_field1.tif``)."""
        planes = []
        for doc, plane in items:
            name = doc.path.name if plane == (0, 0) else self.engine.plane_name(doc.path, *plane)
            planes.append(self.engine.Plane(doc.path, plane[0], f"{Path(name).stem}.tif"))
        return [p.name for p in self.engine.batch_planes(planes)]

    def save_training_set(self, folder: str | Path, confirm_overwrite: ConfirmOverwrite) -> bool:
        """Write every marked plane and its centres into a dataset folder for cellprop-train
        (images/ and points.csv; a points.csv already there keeps its other images' rows).
        Images of the same name there are replaced only if ``confirm_overwrite`` agrees."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        folder = Path(folder)
        marked = [(d, plane) for d in self.documents for plane, m in d.marks.items() if m]
        plan = [
            (doc, plane, name, list(doc.marks[plane]))
            for (doc, plane), name in zip(marked, self.training_names(marked), strict=True)
        ]
        if not plan:
            self._report(
                "No cell centres marked yet: choose Edit > Mark cell centres for training and "
                "click the centre of every cell in an image."
            )
            return False
        names = [name for _, _, name, _ in plan]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            sources = [str(d.path) for d, _, n, _ in plan if n == twice[0]]
            self._report(
                f"{' and '.join(sources)} would both be saved as {twice[0]}: rename one of them"
            )
            return False
        existing = [folder / "images" / n for n in names if (folder / "images" / n).exists()]
        if existing and not confirm_overwrite(existing):
            self.log.emit("info", "Training set not saved: images of those names exist.")
            return False
        engine = self.engine
        overwrite = bool(existing)

        def work(job: Job):
            planes = []
            for n, (doc, plane, name, marks) in enumerate(plan):
                job.progress(f"Saving {doc.name}", n / len(plan))
                image = doc.image
                if image is None or (image.page, image.channel) != plane:
                    image = engine.read_image(doc.path, page=plane[0], channel=plane[1])
                off = engine.points_outside(np.asarray(marks, float), image.pixels.shape[:2])
                if off:  # marks read from a file for an image not shown then
                    raise engine.PointsError(
                        f"{doc.path}: {off} of its {len(marks)} marked centres lie outside the "
                        "image; take them away (Clear the marks on this image) and save again"
                    )
                planes.append((name, image.pixels, np.asarray(marks, float)))
            return engine.write_training_set(folder, planes, overwrite=overwrite)

        def finished(paths):
            for doc, plane, _, marks in plan:
                if doc.marks.get(plane) == marks:  # not changed while it was being written
                    doc.marks_unsaved.discard(plane)
            total = sum(len(m) for *_, m in plan)
            self.log.emit(
                "info",
                f"Saved {total} cell centres on {len(plan)} images to {folder} "
                f"(train a model on it: cellprop-train {folder} --out MODEL_FOLDER)",
            )
            self.exported.emit(list(paths))

        def failed(exc, tb):
            self._report(
                "Saving the training set failed: " + readable_error(exc, self.engine),
                self._details(exc, tb),
            )

        return self._start_work(
            Job(work, name="training set"), finished, failed, "Saving the training set"
        )

    def open_marks(self, csv_path: str | Path) -> int:
        """Marks from a points file (a training set's points.csv, or any file
        ``--points`` reads) for the open images it names: each image's own rows, by its
        name (or path, as a batch finds them: engine ``planes_points``) or the name it has in
        a training set; an x,y file's rows go to the image shown. Replaces their marks on the
        first plane (Undo brings them back). Returns how many images got marks."""
        csv_path = Path(csv_path)
        points = self._read_points_file(csv_path)
        if points is None:
            return 0
        changed = refused = 0
        docs = self.documents
        names = self.training_names([(doc, (0, 0)) for doc in docs])
        planes = self.engine.batch_planes([doc.path for doc in docs])  # named apart
        named = {k: v for k, v in points.items() if k}  # x,y rows: the image shown's only
        found = self.engine.planes_points(named, planes)
        for doc, name, plane in zip(docs, names, planes, strict=True):
            xy = found[plane.name]
            if xy is None or isinstance(xy, str):
                xy = points.get(name, xy)  # as a training set names it, else why not
            if xy is None and doc is self.current:
                xy = points.get("")
            if isinstance(xy, str):  # a name several folders' images share
                self._report(f"{csv_path}: {xy}")
                refused += 1
                continue
            if xy is None:
                continue
            xy = np.reshape(xy, (-1, 2))
            # an image not shown is checked when the training set is saved
            shown = doc.image is not None and (doc.image.page, doc.image.channel) == (0, 0)
            if shown and not self._points_on_image(csv_path, doc, xy):
                refused += 1
                continue
            marks = [(float(x), float(y)) for x, y in xy]
            self._set_marks(doc, (0, 0), marks, f"centres read from {csv_path.name}")
            doc.marks_unsaved.discard((0, 0))  # the file holds them: nothing to lose
            changed += 1
        if not changed and not refused:
            self._report(f"{csv_path}: no cell centres for the open images in this file")
        return changed

    # ------------------------------------------------------------------ training a model
    @staticmethod
    def training_unavailable() -> str:
        """Why this app cannot train models (no training extra installed), or ""."""
        return training_unavailable()

    @property
    def training(self) -> bool:
        """A model is being trained (the app stays usable meanwhile)."""
        return self._training is not None

    def train_model(self, dataset: str | Path, out: str | Path, modality: str, options=()) -> bool:
        """Train a model on a training set (``cellprop-train DATASET --out OUT --modality
        MODALITY [options]``) in a child process; progress and the end come as signals.
        False if it did not start."""
        reason = self.training_unavailable()
        if reason:
            self._report(reason)
            return False
        if self._training is not None:
            self._report("A model is being trained already; wait for it or stop it first.")
            return False
        run = TrainingRun([dataset], Path(out), ["--modality", modality, *options], parent=self)
        run.progress.connect(self.training_progress)
        run.finished.connect(self._training_done)
        self._training = run
        self.log.emit("info", f"Training a model: {run.command}")
        run.start()
        return True

    def stop_training(self) -> None:
        if self._training is not None:
            self._training.stop()

    def _training_done(self, ok: bool, message: str) -> None:
        run, self._training = self._training, None
        if ok:
            self.log.emit("info", f"Model trained: {message}{_training_summary(Path(message))}")
        elif run is not None and run.stopped:
            self.log.emit("info", message[0].upper() + message[1:])
        else:
            self._report(message[0].upper() + message[1:])
        if run is not None:
            run.deleteLater()
        self.training_finished.emit(ok, message)

    # ------------------------------------------------------------------ folder batches
    def cannot_continue(self, earlier) -> list[str]:
        """Why a batch started now could not continue the ``earlier`` run (engine
        ``earlier_run``): how its model or settings differ from the ones chosen, in words;
        empty when it could, or while the chosen model is not loaded yet to tell."""
        status = self.model_status
        if status.loading or status.error or not status.path:
            return []
        user = self.settings
        settings = self.engine.Settings(**user.engine_kwargs())
        record = self.engine.run_record(
            status, settings, user.roi_zip, user.batch_page, user.batch_channel, None
        )
        return earlier.differences(record)

    def batch_names(self, paths: Iterable[Path]) -> list[str]:
        """The names the images of a folder batch of ``paths`` go by, with the settings
        chosen: the files' names, or with *Each page as an image* each page's."""
        user = self.settings
        planes = self.engine.batch_planes(paths, user.batch_page, user.batch_channel)
        return [plane.name for plane in planes]

    def run_batch(
        self,
        paths: Iterable[str | Path],
        out_dir: str | Path,
        overwrite: bool = False,
        workers: int | None = None,
        resume: bool = False,
    ) -> bool:
        """Segment many images into ``out_dir`` (same files as ``cellprop segment``),
        ``workers`` at once (default: the settings' choice, else the engine's automatic one).
        ``resume``: continue the earlier run there (engine ``process_batch(resume=True)``)."""
        paths = [Path(p) for p in paths]
        out_dir = Path(out_dir)
        if not paths:
            self._report("No images to process.")
            return False
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        self._add_documents([p for p in paths if self.index_of(p) < 0])
        user = self.settings
        engine = self.engine
        page, channel = user.batch_page, user.batch_channel
        planes = engine.batch_planes(paths, page, channel)
        clash = engine.name_clash(planes)
        if clash is not None:
            self._report(engine.clash_message(*clash) + "; nothing was started.")
            return False
        if resume:  # what the earlier run finished of other images stays in its tables
            planes = engine.continued_planes(planes, out_dir)
        summary = BatchSummary(out_dir=out_dir, total=len(planes))
        at_once = workers or user.batch_workers or engine.auto_workers(len(planes))

        def work(job: Job):
            job.progress("Loading the model", 0.0)
            model = self._model_for(user.model, user.device)
            out_dir.mkdir(parents=True, exist_ok=True)
            settings = engine.Settings(**user.engine_kwargs())
            return engine.process_batch(
                planes,
                out_dir,
                model,
                settings,
                overwrite=overwrite,
                roi=user.roi_zip,
                workers=at_once,
                progress=job.progress,
                cancel=job.is_cancelled,
                on_result=lambda r: job.partial(BatchItem.of(r, engine.read_labels, channel)),
                page=page,
                channel=channel,
                resume=resume,
            )

        self._batch = summary
        self._batch_user = user
        # What is still to come, in the order the engine starts it: (file, page) per image,
        # and per file how many of its images (a file of many pages is running until its
        # last page ends).
        self._batch_queue = [(p.path, p.page) for p in planes]
        self._batch_left = {}
        for p in planes:
            self._batch_left[p.path] = self._batch_left.get(p.path, 0) + 1
        self._batch_at_once = at_once
        self._batch_started_at = time.monotonic()

        def finished(batch_result):
            finished_all = summary.done + summary.failed + summary.skipped >= summary.total
            summary.cancelled = summary.cancelled or (job.is_cancelled() and not finished_all)
            self._end_batch(paths, summary, batch_result)

        def failed(exc, tb):
            if not isinstance(exc, self.engine.Cancelled):
                self._report(readable_error(exc, self.engine), self._details(exc, tb))
            else:
                summary.cancelled = True
            self._end_batch(paths, summary, None)

        job = Job(work, name="batch")
        job.signals.partial.connect(self._on_batch_result)
        total = len(planes)
        started = self._start_work(job, finished, failed, f"Processing {total} images")
        if not started:
            self._batch = None
            return False
        # Images start in order, ``at_once`` at a time: those are working, the rest wait.
        starting = {path for path, _ in self._batch_queue[:at_once]}
        for p in paths:
            i = self.index_of(p)
            self.documents[i].running = True
            self.documents[i].waiting = p not in starting
            self.document_changed.emit(i)
        self.batch_started.emit(total)
        self.batch_progress.emit(0, total, -1.0)
        at_a_time = f", {at_once} at a time" if at_once > 1 and total > 1 else ""
        pages = f" (every page of {len(paths)} files)" if total > len(paths) else ""
        pages += f", channel {channel}" if channel else ""
        self.log.emit("info", f"Batch of {total} images{pages} into {out_dir}{at_a_time}")
        return started

    def _on_batch_result(self, item: BatchItem) -> None:
        summary = self._batch
        if summary is None:
            return
        i = self.index_of(item.path)
        doc = self.documents[i] if i >= 0 else None
        if (item.path, item.page) in self._batch_queue:
            self._batch_queue.remove((item.path, item.page))
            self._batch_left[item.path] -= 1
        if doc is not None:
            doc.running = self._batch_left.get(item.path, 0) > 0 and item.status != "cancelled"
            doc.waiting = False
        if item.status != "cancelled":  # the next queued image takes the free place
            for path, _ in self._batch_queue[: self._batch_at_once]:
                following = self.index_of(path)
                if following >= 0 and self.documents[following].waiting:
                    self.documents[following].waiting = False
                    self.document_changed.emit(following)
        if item.status == "done":
            summary.done += 1
            summary.kept += item.kept
            if item.n_pages > 1 and item.page is None:  # a time-lapse gave one image: said
                summary.first_pages.append(f"{item.name} ({item.n_pages} pages)")
            if doc is not None:
                doc.error = None
                if item.usable:
                    result = item.result(self._batch_user.model, self._batch_user.device)
                    doc.results[item.plane] = result
                    if doc.result is None and doc.channel != item.channel:
                        # shown: another channel, without cells; show the one segmented
                        doc.page, doc.channel = item.plane
                        if doc is self.current:
                            self._load_image(i)
                    if doc is not self.current or doc.plane != item.plane:
                        result.park()  # a batch of a thousand images keeps tables, not labels
            how = ", done by the earlier run" if item.kept else _size_note(item.settings)
            self.log.emit("info", f"{item.name}: {item.n_cells} cells{how}")
        elif item.status == "cancelled":
            summary.cancelled = True
        elif item.status == "skipped":
            summary.skipped += 1
            self.log.emit("info", f"{item.name}: skipped, {item.error}")
        else:
            summary.failed += 1
            message = item.error or item.status
            summary.errors.append((item.path, message))
            if doc is not None:
                doc.error = message
            self._report(f"{item.name}: {message}")
        if doc is not None:
            self.document_changed.emit(i)
            if doc is self.current:
                self.result_ready.emit(i)
        finished = summary.done + summary.failed + summary.skipped
        elapsed = time.monotonic() - self._batch_started_at
        eta = elapsed / finished * (summary.total - finished) if finished else -1.0
        self.batch_progress.emit(finished, summary.total, eta)

    def _end_batch(self, paths, summary: BatchSummary, batch_result) -> None:
        for p in paths:
            i = self.index_of(p)
            if i >= 0 and self.documents[i].running:
                self.documents[i].running = self.documents[i].waiting = False
                self.document_changed.emit(i)
        self._batch_queue, self._batch_left = [], {}
        if batch_result is not None:
            statuses = [getattr(r, "status", "") for r in getattr(batch_result, "results", [])]
            summary.cancelled = summary.cancelled or "cancelled" in statuses
        summary.seconds = time.monotonic() - self._batch_started_at
        self._batch = None
        self.log.emit("info", "Batch finished: " + summary.describe())
        self.batch_finished.emit(summary)

    # ------------------------------------------------------------------ export
    def export_paths(self, doc: Document, out_dir: Path, roi: bool, plane=None) -> dict:
        """Where export writes the files of one image (its plane shown, or ``plane``): the
        names ``cellprop segment`` uses (see :meth:`_export_target`)."""
        target = self._export_target(doc, plane or doc.plane)
        return dict(self.engine.output_paths(target, out_dir, roi=roi))

    def _export_target(self, doc: Document, plane: tuple) -> Path:
        """The image plane as export names it: as the batch that made its cells named it
        (``Result.name``: a page of a time-lapse, movie_p3c0.tif), else the file's name for
        its first plane and ``<stem>_p<page>c<channel>`` for another one."""
        result = doc.results.get(plane)
        if result is not None and result.name:
            return doc.path.with_name(result.name)
        if plane == (0, 0):
            return doc.path
        return doc.path.with_name(self.engine.plane_name(doc.path, *plane))

    def export_current(self, out_dir: str | Path, confirm_overwrite: ConfirmOverwrite) -> bool:
        doc = self.current
        if doc is None or doc.result is None:
            self._report("Nothing to export yet: run the segmentation first.")
            return False
        return self._export([(doc, doc.plane)], Path(out_dir), confirm_overwrite)

    def export_all(self, out_dir: str | Path, confirm_overwrite: ConfirmOverwrite) -> bool:
        """Every segmented image, each of its segmented pages and channels."""
        planes = [(d, plane) for d in self.documents for plane in sorted(d.results)]
        if not planes:
            self._report("Nothing to export yet: no image has been segmented.")
            return False
        return self._export(planes, Path(out_dir), confirm_overwrite, combined=True)

    def _export(
        self, planes: list, out_dir: Path, confirm_overwrite: ConfirmOverwrite, combined=False
    ) -> bool:
        """Write the files of each (document, plane); ``combined``: also ``cells.csv`` with
        every image's cells and ``images.csv`` with each image's count and means (as a batch
        writes them), so that a folder a batch wrote, its images corrected and exported again,
        does not keep stale tables of all cells."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        roi = self.settings.roi_zip
        plan = [
            (doc, plane, doc.results[plane], self.export_paths(doc, out_dir, roi, plane))
            for doc, plane in planes
        ]
        gathered = [out_dir / "cells.csv", out_dir / "images.csv"] if combined else []
        existing = [p for *_, paths in plan for p in paths.values() if p.exists()]
        existing += [p for p in gathered if p.exists()]
        if existing and not confirm_overwrite(existing):
            self.log.emit("info", "Export cancelled: files exist and were kept.")
            return False
        engine = self.engine
        overwrite = bool(existing)  # only reached when the user agreed to replace them

        def work(job: Job):
            out_dir.mkdir(parents=True, exist_ok=True)
            written, tables = [], []
            for n, (doc, plane, result, paths) in enumerate(plan):
                if job.is_cancelled():
                    break
                job.progress(f"Writing {paths['labels'].name}", n / len(plan))
                image = doc.image
                if image is None or (image.page, image.channel) != plane:
                    image = engine.read_image(doc.path, page=plane[0], channel=plane[1])
                # the calibration the cells were measured with, not the one chosen now
                made = result.settings if isinstance(result.settings, dict) else {}
                pixel_size, unit = engine.calibration(image, made.get("pixel_size"))
                labels = result.labels  # parked (not shown): read back from its file
                if labels is None:
                    labels = engine.read_labels(result.labels_file)
                engine.write_labels(
                    paths["labels"],
                    labels,
                    pixel_size=pixel_size,
                    unit=unit or "um",
                    overwrite=overwrite,
                )
                engine.write_overlay(
                    paths["overlay"], image.pixels, labels, result.centres, overwrite=overwrite
                )
                # no image-name column: the same per-image CSV as `cellprop segment`
                engine.write_table(paths["cells"], result.table, overwrite=overwrite)
                if "roi" in paths:
                    engine.write_roi_zip(paths["roi"], labels, overwrite=overwrite)
                written.append((doc, plane, result, paths))
                # a page of a time-lapse carries its page, as the batch's cells.csv does
                page = plane[0] if getattr(image, "n_pages", 1) > 1 else None
                tables.append((self._export_target(doc, plane).name, result.table, page))
            if gathered and written:
                engine.write_tables(gathered[0], tables, overwrite=overwrite)
                engine.write_image_table(gathered[1], tables, overwrite=overwrite)
                return written, gathered
            return written, []

        def finished(out):
            written, files = out
            files = list(files)
            for *_, result, paths in written:
                result.outputs.update(paths)
                result.labels_file = paths["labels"]  # the same labels: may be parked now
                files += list(paths.values())
            self.log.emit("info", f"Exported {len(files)} files to {out_dir}")
            self.exported.emit(files)

        def failed(exc, tb):
            self._report(
                "Export failed: " + readable_error(exc, self.engine), self._details(exc, tb)
            )

        return self._start_work(Job(work, name="export"), finished, failed, "Exporting")

    def has_unsaved_results(self) -> bool:
        return any(not r.outputs for d in self.documents for r in d.results.values())

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
        clicks, self._queued_clicks = self._queued_clicks, []
        removed, self._queued_removals = self._queued_removals, []
        # Clicks (and removals, while the image was got ready) that came while a correction
        # ran: one more correction does them all, and the app stays busy meanwhile.
        waiting = len(clicks) + len(removed)
        if waiting and doc is self.current and doc.result is not None:
            if self._add_cells(doc, clicks, removed):
                return
        if waiting:
            self.log.emit("info", f"{doc.name}: {waiting} waiting edits dropped")
        self.progress.emit("", 1.0)
        self.busy_changed.emit(False)

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


__all__ = ["AppController", "BatchItem", "BatchSummary", "ModelStatus", "Status"]
