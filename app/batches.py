"""Folder batches in the app: a batch run (engine ``process_batch``) with each image's
outcome shown as it comes, and a batch's result folder opened again; a part of
:class:`~.controller.AppController`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .messages import (
    count_cells,
    counted,
    first_three,
    plane_label,
    readable_error,
    size_note,
)
from .state import Result, files_in, undo_chain
from .workers import Job


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
    # why the run stopped before its end, where it did (a disk full, its folder deleted)
    stopped: str = ""

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
        elif self.stopped:
            text += " before the run stopped"
        # a batch stopped before it wrote anything (a model that cannot be used, a folder
        # that cannot be written) made none
        out = Path(self.out_dir)
        wrote = out.is_dir() and (self.done or self.kept or (out / "summary.csv").is_file())
        text += f"; results in {out}" if wrote else "; nothing written"
        if self.first_pages:
            more = f" and {len(self.first_pages) - 1} more" if len(self.first_pages) > 1 else ""
            text += (
                f". Only the first page of {self.first_pages[0]}{more} was segmented: tick "
                "Each page as an image (Settings) to segment every page"
            )
        return text


def time_left(summary: BatchSummary, elapsed: float) -> float:
    """Seconds a batch still needs, ``elapsed`` seconds in (-1: cannot tell yet), from the
    images it segmented: those a continued run kept arrive at once and take no time (with
    900 of 1,000 kept it said "about 1 s left" for minutes)."""
    finished = summary.done + summary.failed + summary.skipped
    segmented, left = finished - summary.kept, summary.total - finished
    if not left:
        return 0.0
    return elapsed / segmented * left if segmented > 0 else -1.0


def _holds(result, item: BatchItem) -> bool:
    """Whether the window's ``result`` is the cells a continued run kept (``item``): exported
    into the files the run kept them from, not corrected since."""
    if result is None or result.labels_file is None or result.unsaved_edits:
        return False
    labels = item.outputs.get("labels")
    return labels is not None and Path(labels) == Path(result.labels_file)


def _read_channel(image_result, channel: int | None) -> int:
    """The channel of its file a batch's image was segmented on: the one it says it read
    (a file of one channel is read whole, whatever the batch's channel), else the batch's."""
    read = getattr(image_result, "channel", None)
    return int(read) if read is not None else int(channel or 0)


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
    note: str = ""  # what was done otherwise (engine ImageResult.note)
    sequence: tuple | None = None  # (time-lapse, time point) where its cells were followed
    tracking: dict | None = None  # how they were followed there (TrackSettings.record())
    model: str | None = None  # the model that made it where not the batch's (run.json "made")

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
            from cellprop.engine.features import detection_centres  # loaded: a table was read

            centres = detection_centres(table)
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
            channel=_read_channel(image_result, channel),
            n_pages=int(getattr(image_result, "n_pages", 1) or 1),
            labels=labels,
            centres=centres,
            table=table,
            settings=getattr(image_result, "settings", None) if seg is None else seg.settings,
            timings={} if seg is None else dict(seg.timings or {}),
            kept=kept,
            note=getattr(image_result, "note", "") or "",
            sequence=getattr(image_result, "sequence", None),
            tracking=getattr(image_result, "tracking", None),
            model=getattr(image_result, "model", None),
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
            model=self.model or model,
            device=device,
            labels_file=self.outputs.get("labels"),
            name=self.name or self.path.name,
            sequence=self.sequence,
            tracking=self.tracking,
        )


class BatchMixin:
    """The controller's folder batches (state in ``AppController.__init__``)."""

    def earlier_run(self, folder: str | Path):
        """The record of the cellprop run in ``folder`` (engine ``earlier_run``), or None where
        there is none or it cannot be read (another program's run.json does not make a folder
        of images a run's)."""
        try:
            return self.engine.earlier_run(folder)
        except self.engine.ResumeError:
            return None

    def open_results(self, folder: str | Path, images: str | Path | None = None) -> None:
        """Open the images a batch run wrote into ``folder`` with their cells read back from
        its files (engine ``saved_results``), to look at, correct and export them again
        without segmenting them again. Images open already with cells of this window's own
        not exported (or being segmented) keep them, and the window is told so; those whose
        cells are in files (another run's) take this run's.
        ``images``: the folder the images were moved to since the run; where some are not
        found and none was given, ``images_missing`` asks the window for it."""
        folder = Path(folder)
        engine = self.engine
        batch = self._batch
        if batch is not None and Path(batch.out_dir).resolve() == folder.resolve():
            self._report(
                f"{folder}: the batch running now is writing its results there; its images "
                "show their cells as they are done, and the folder opens once it has ended."
            )
            return

        def read(job: Job):
            run, results, problems = engine.saved_results(folder, images)
            channel = run.record.get("channel")  # the run's; each image's where it says
            channel = channel if isinstance(channel, int) else None
            items = [BatchItem.of(r, channel=channel) for r in results]
            return run, items, problems  # labels read when shown

        def finished(out):
            run, items, problems = out
            for problem in problems:
                self._report(f"{folder}: {problem}")
            gone = [p.gone for p in problems if getattr(p, "gone", None)]
            if gone and images is None:  # moved since: the window asks where to
                self.images_missing.emit(str(folder), gone)
            record = run.record
            model = record.get("model") or {}
            # a correction re-runs the model that made the cells: its folder, or its name
            chosen = model.get("path") if Path(model.get("path") or "").is_dir() else None
            chosen = chosen or model.get("name") or self.settings.model
            page = record.get("page") if isinstance(record.get("page"), int) else 0
            items = [i for i in items if i.usable]
            self._add_documents([i.path for i in items])
            # never replace what this window made or corrected and did not export: cells of
            # another run's folder (its files hold them) make way for this run's
            busy = {id(d) for d in self.documents if d.running or self._own_cells(d)}
            # (this run's cells already, corrected and exported there maybe: kept, with Undo)
            ours = {id(d) for d in self.documents if self._cells_in(d, folder)}
            shown, kept = [], []
            for item in items:
                i = self.index_of(item.path)
                doc = self.documents[i]
                if id(doc) in ours and id(doc) not in busy:
                    continue
                if id(doc) in busy:
                    if doc not in kept:
                        kept.append(doc)
                    continue
                if self._memo_holds is not None and self._memo_holds[0] is doc:
                    self._memo_holds = None  # other cells now: got ready for them anew
                plane = (page if item.page is None else item.page, item.channel)
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
            if kept:
                self._report(
                    f"{folder}: {len(kept)} image(s) kept the cells they have in this window "
                    f"({kept[0].name}{', ...' if len(kept) > 1 else ''}: segmented, corrected "
                    "or being segmented, and not exported); close them (File > Close image) "
                    "and open the results again for this run's cells on them."
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

    @staticmethod
    def _cells_in(doc, folder: Path) -> bool:
        """Whether ``doc`` shows cells of the run in ``folder`` already (opened from it, or
        corrected and exported there): kept, with their Undo, not read back again."""
        try:
            where = folder.resolve()
            return any(
                Path(path).parent.resolve() == where
                for r in doc.results.values()
                for path in r.outputs.values()
            )
        except OSError:
            return False

    def _own_cells(self, doc) -> bool:
        """Whether ``doc`` holds cells made in this window and in no file (segmented,
        corrected, measured again or followed anew, and not exported) or centres marked and
        not saved: what opening a run's results on it must not replace."""
        return bool(self.unsaved_marks([doc])) or any(
            not r.outputs or r.tracks_changed or r.measured_anew or r.unsaved_edits
            for r in doc.results.values()
        )

    @property
    def batch_channel(self) -> int | None:
        """The channel of each file a folder batch segments (the engine's ``channel``): the
        one chosen (*Folder channel*), else the chosen model's own, read from its model.json
        while it loads."""
        return self.settings.batch_channel(self.model_channel())

    def model_channel(self) -> int:
        """The channel of a file the chosen model segments when none is chosen (0: the
        first; also for a model that cannot be read, which the batch then reports)."""
        status = self.model_status
        if status.path and not status.loading and not status.error:
            return int(status.defaults.get("channel") or 0)
        try:
            return self.engine.model_info(self.settings.model).channel
        except self.engine.ModelError:
            return 0

    def cannot_continue(self, earlier) -> list[str]:
        """Why a batch started now could not continue the ``earlier`` run (engine
        ``earlier_run``): how its model or settings differ from the ones chosen, in words;
        empty when it could, or while the chosen model is not loaded yet to tell."""
        record = self._batch_record()
        return [] if record is None else earlier.differences(record)

    def follows_otherwise(self, earlier) -> list[str]:
        """How a batch started now would follow the cells otherwise than the ``earlier`` run
        did, where both follow them (another reach, other gaps), in words: continued, it
        follows the cells it kept again. Empty where alike, or not known yet."""
        record = self._batch_record()
        return [] if record is None else earlier.followed_otherwise(record)

    def _batch_record(self) -> dict | None:
        """The run record (engine ``run_record``) of a batch started now with the settings
        chosen; None while the chosen model is not loaded yet to tell."""
        status = self.model_status
        if status.loading or status.error or not status.path:
            return None
        user = self.settings
        try:
            settings = self.engine.Settings(**user.engine_kwargs())
        except ValueError:  # none a batch could start with (run_batch says why)
            return None
        record = self.engine.run_record(
            status,
            settings,
            user.roi_zip,
            user.batch_page,
            self.batch_channel,
            None,
            self._tracking(user),
        )
        # what each default stands for with this model, as a batch records it: compared with
        # a record that gives the values themselves (the window's exports keep the values
        # their cells were made with), the same values are no difference
        given = asdict(settings)
        record["resolved"] = {
            key: given[key] if given.get(key) is not None else status.defaults.get(key)
            for key in ("threshold", "smoothness", "min_size", "max_size", "edge_fraction")
        }
        return record

    def _tracking(self, user):
        """The engine's ``track`` for a batch with the settings ``user``: False, or how it
        follows the cells (``TrackSettings``)."""
        return self.engine.TrackSettings.of(user.batch_tracking) if user.batch_track else False

    def batch_names(self, paths: Iterable[Path]) -> list[str]:
        """The names the images of a folder batch of ``paths`` go by, with the settings
        chosen: the files' names, or with *Each page as an image* each page's."""
        return list(self.batch_sources(paths))

    def batch_sources(self, paths: Iterable[Path]) -> dict[str, Path]:
        """{name: the file it is read from} of the images of a folder batch of ``paths``
        (:meth:`batch_names`)."""
        user = self.settings
        planes = self.engine.batch_planes(paths, user.batch_page, self.batch_channel)
        return {plane.name: plane.path for plane in planes}

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
        if self._choosing_model():
            return False
        if self._settings_refused():
            return False
        self._add_documents([p for p in paths if self.index_of(p) < 0])
        user = self.settings
        engine = self.engine
        page, channel = user.batch_page, self.batch_channel
        # Images whose result files would be the same ones (img.tif and img.png of one
        # folder) fail by name in the run, as with cellprop segment; the others run.
        planes = engine.batch_planes(paths, page, channel)
        own = len(planes)  # these files' images; a continued run's other images join them
        if resume:  # what the earlier run finished of other images stays in its tables
            planes = engine.continued_planes(planes, out_dir)
        summary = BatchSummary(out_dir=out_dir, total=len(planes))
        at_once = workers or user.batch_workers or engine.auto_workers(len(planes))
        tracking = self._tracking(user)

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
                track=tracking,
            )

        self._batch = summary
        self._batch_user, self._batch_channel = user, channel
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
                summary.stopped = readable_error(exc, self.engine)
                self._report(summary.stopped, self._details(exc, tb))
            else:
                summary.cancelled = True
            self._end_batch(paths, summary, None)

        if overwrite and not resume:
            self._keep_what_the_batch_replaces(paths, planes, out_dir, user.roi_zip)
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
        pages = f" (every page of {len(paths)} files)" if own > len(paths) else ""
        pages += f", channel {channel}" if channel else ""
        kept = (
            f"; {counted(total - own, 'other image')} the earlier run finished kept in its tables"
            if total > own
            else ""
        )
        self.log.emit(
            "info", f"Batch of {counted(own, 'image')}{pages} into {out_dir}{at_a_time}{kept}"
        )
        return started

    def _replaced_elsewhere(self, paths, names, out_dir: Path, roi: bool) -> list:
        """Other open images whose results are in files a batch of ``paths`` (its images
        named ``names``) into
        ``out_dir`` would replace (a run of other images of these names, or an export
        there): (document, plane, its undo chain, goes, replaced), ``goes`` where its cells
        are only in such a file (parked), else they are held in the window (shown,
        corrected); ``replaced(file)``: whether the batch replaces that file."""
        batch = {id(self.documents[i]) for i in map(self.index_of, paths) if i >= 0}
        chains = [
            (doc, plane, undo_chain(shown))
            for doc in self.documents
            if id(doc) not in batch
            for plane, shown in doc.results.items()
        ]
        candidates = [
            (doc, plane, chain) for doc, plane, chain in chains if files_in(chain, out_dir)
        ]
        if not candidates:
            return []
        written = {
            p.resolve()
            for name in names
            for p in self.engine.output_paths(name, out_dir, roi).values()
        }

        def replaced(file) -> bool:
            return file is not None and Path(file).resolve() in written

        found = []
        for doc, plane, chain in candidates:
            goes = any(r.labels is None and replaced(r.labels_file) for r in chain)
            if goes or any(
                replaced(r.labels_file) or any(map(replaced, r.outputs.values())) for r in chain
            ):
                found.append((doc, plane, chain, goes, replaced))
        return found

    def files_a_batch_replaces(
        self, paths, names: list[str], out_dir: str | Path
    ) -> tuple[list[Path], list[Path], list[Path]]:
        """What a batch of ``paths`` (its images named ``names``) into ``out_dir`` would do to
        the files there, for the question before it: the files it would replace (its
        images' result files, the tables of all cells); those of them that no cellprop run
        or export made (a label image or overlay of the user's, a mask drawn by hand named
        so); and its own images that another's results would be written over (that one
        fails instead, engine ``process_batch``: not among those replaced)."""
        out_dir, engine = Path(out_dir), self.engine
        planned = [out_dir / name for name in engine.RUN_FILES]
        roi = self.settings.roi_zip
        planned += [p for n in names for p in engine.output_paths(n, out_dir, roi).values()]
        images = {Path(p).resolve() for p in paths}
        existing = [p for p in dict.fromkeys(planned) if p.is_file()]
        over = [p for p in existing if p.resolve() in images]
        replaced = [p for p in existing if p.resolve() not in images]
        run = (out_dir / "run.json").is_file()
        ends = tuple(engine.OUTPUT_SUFFIXES[kind] for kind in ("labels", "overlay"))
        own = [
            p
            for p in replaced
            if not run and p.name.endswith(ends) and not engine.written_result(p)
        ]
        return replaced, own, over

    def open_images_a_batch_replaces(
        self, paths, names: list[str], out_dir: str | Path
    ) -> tuple[list, list]:
        """The names (with their page where a file has several) of other open images whose
        cells are in files a batch of ``paths`` (its images named ``names``, as
        :meth:`batch_names` gives them) into ``out_dir`` would replace: those that would show
        no cells then, and those that would keep theirs in the window only (the question
        before replacing names them)."""
        found = self._replaced_elsewhere(paths, names, Path(out_dir), self.settings.roi_zip)
        return (
            [plane_label(doc, plane) for doc, plane, _, goes, _ in found if goes],
            [plane_label(doc, plane) for doc, plane, _, goes, _ in found if not goes],
        )

    def _keep_what_the_batch_replaces(self, paths, planes, out_dir: Path, roi: bool) -> None:
        """Other open images whose results are in files this batch replaces (a run of other
        images of these names, replaced when asked). Those whose cells are only in the files
        (parked) let them go: they were read back from files holding this run's cells and
        drawn over the wrong image. (Reading them all first froze the window and kept
        gigabytes for a day of frames, to save results the user had agreed to lose.) Those
        held in the window (shown, corrected) stay there, in no file now: unsaved, so that
        quitting asks first and Export saves them. The Log names both, each with its page
        where a file has several (one page's cells may go, another's stay)."""
        found = self._replaced_elsewhere(paths, [p.name for p in planes], out_dir, roi)
        named = {(id(doc), plane): plane_label(doc, plane) for doc, plane, *_ in found}
        gone: dict = {}  # (id(doc), plane): doc
        kept: dict = {}
        for doc, plane, chain, goes, replaced in found:
            key = (id(doc), plane)
            if goes:
                del doc.results[plane]  # its cells only in a file that is this run's now
                gone[key] = doc
                continue
            for r in chain:
                if replaced(r.labels_file):
                    r.labels_file = None
                if any(map(replaced, r.outputs.values())):
                    r.outputs, r.files_replaced = {}, True
            kept[key] = doc
        for planes_of, what in (
            (
                gone,
                f"showed cells from files of {out_dir} that this run replaces: no longer "
                "shown (Segment shows them again, or open the results they came from)",
            ),
            (
                kept,
                f"had their cells in files of {out_dir} that this run replaces: the cells "
                "shown stay in the window, in no file now (Export saves them; quitting asks "
                "first)",
            ),
        ):
            if planes_of:
                names = [named[key] for key in planes_of]
                self.log.emit(
                    "warning",
                    f"{counted(len(names), 'other open image')} ({first_three(names)}) {what}",
                )
        for doc in {id(doc): doc for doc in [*gone.values(), *kept.values()]}.values():
            self.document_changed.emit(self.documents.index(doc))

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
                    result = doc.results.get(item.plane)
                    if not (item.kept and not item.note and _holds(result, item)):
                        result = item.result(self._batch_user.model, self._batch_user.device)
                        doc.results[item.plane] = result
                    # (else: its cells, kept by the run from the files the window exported
                    # them to, as they are; Undo goes on: it went)
                    if doc.result is None and doc.channel != item.channel:
                        # shown: another channel, without cells; show the one segmented
                        doc.page, doc.channel = item.plane
                        if doc is self.current:
                            self._load_image(i)
                    if doc is not self.current or doc.plane != item.plane:
                        result.park()  # a batch of a thousand images keeps tables, not labels
            how = ", done by the earlier run" if item.kept else size_note(item.settings)
            how = f" ({item.note})" if item.note else how
            self.log.emit("info", f"{item.name}: {count_cells(item.n_cells)}{how}")
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
        eta = time_left(summary, time.monotonic() - self._batch_started_at)
        self.batch_progress.emit(finished, summary.total, eta)

    def _take_tracks(self, results, channel: int) -> None:
        """Cells followed over time get their track columns once the whole batch is done:
        the tables the window shows take them from the batch's final results, and each its
        place in its time-lapse; then the image shown is shown again (its time-lapse whole)."""
        for r in results:
            i = self.index_of(r.path)
            if i < 0 or r.status != "done" or r.table is None:
                continue
            result = self.documents[i].results.get((r.page or 0, _read_channel(r, channel)))
            if result is not None:
                result.table, result.sequence = r.table, r.sequence
                result.tracking = getattr(r, "tracking", None)
                result.layers = {}  # drawn again: each cell in its track's colour
        if self.current is not None and self.current.result is not None:
            self.result_ready.emit(self.current_index)

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
            if self._batch_user is not None and self._batch_user.batch_track:
                self._take_tracks(batch_result.results, self._batch_channel or 0)
        summary.seconds = time.monotonic() - self._batch_started_at
        self._batch = None
        self.log.emit("info", "Batch finished: " + summary.describe())
        changed = getattr(batch_result, "followed_again", None)
        if changed:  # continued with another reach or gaps: kept cells followed again
            said = self.engine.followed_again(changed)
            self.log.emit("info", said[0].upper() + said[1:])
        left = getattr(batch_result, "left_over", None)
        if left:  # a replaced run's other images: their files stay, out of the tables
            said = self.engine.replaced_left_over(left, summary.out_dir)
            self.log.emit("warning", said[0].upper() + said[1:])
        mixed = getattr(batch_result, "mixed_units", "")
        if mixed:  # files calibrated and not: sizes in two sets of columns
            self.log.emit("warning", mixed[0].upper() + mixed[1:])
        series = getattr(batch_result, "mixed_series", "")
        if series:  # positions saved side by side in one followed folder
            self.log.emit("warning", series[0].upper() + series[1:])
        skipped = getattr(batch_result, "skipped_times", "")
        if skipped:  # t001, t003: a time point missing from the folder
            self.log.emit("warning", skipped[0].upper() + skipped[1:])
        restarted = getattr(batch_result, "restarted", None)
        if restarted:  # a stray frame of another size in a followed folder
            said = self.engine.started_anew(restarted)
            self.log.emit("warning", said[0].upper() + said[1:])
        tracks = summary.out_dir / "tracks.csv"
        if self._batch_user is not None and self._batch_user.batch_track and tracks.is_file():
            try:
                self.log.emit(
                    "info", "Cells followed over time: " + self.engine.tracks_summary(tracks)
                )
            except (OSError, ValueError) as exc:
                self._report(f"{tracks}: cannot be read ({exc})")
        self.batch_finished.emit(summary)
