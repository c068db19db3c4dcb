"""Cell centres marked by hand for training, the training set they are saved as, and
a model trained on it in a child process; a part of :class:`~.controller.AppController`."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .export import ConfirmOverwrite
from .messages import first_three, readable_error, training_summary
from .state import Document
from .training_run import TrainingRun, training_unavailable
from .workers import Job

#: Changes to the training marks of one image plane that Undo can take back.
MARKS_UNDO_DEPTH = 200


def _folder_key(folder: Path) -> str:
    """A folder as :attr:`Document.marks_in` keeps it (one folder however it is reached)."""
    try:
        return str(Path(folder).resolve())
    except OSError:
        return str(Path(folder).absolute())


class MarksMixin:
    """The controller's training marks and model training (state in ``AppController``)."""

    def can_mark(self) -> bool:
        """True when the current image is shown, so that its cell centres can be clicked: the
        plane the marks go to, not the one shown while the next is read (a click there went
        to the next page)."""
        doc = self.current
        return (
            doc is not None
            and doc.image is not None
            and (doc.image.page, doc.image.channel) == doc.plane
        )

    def marks(self, doc: Document | None = None) -> list:
        """The centres marked for training on the plane shown, [(x, y), ...]."""
        doc = self.current if doc is None else doc
        return list(doc.marks.get(doc.plane, ())) if doc is not None else []

    def _set_marks(self, doc: Document, plane: tuple, marks: list, what: str) -> None:
        history = doc.marks_undo.setdefault(plane, [])
        history.append(list(doc.marks.get(plane, ())))
        del history[:-MARKS_UNDO_DEPTH]
        doc.marks_redo.pop(plane, None)  # a new change: what was undone is gone for good
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
        labels = doc.result.labels
        ids = np.unique(labels)
        ids = ids[(ids > 0) & (ids <= len(doc.result.centres))]
        marks = self.marks(doc)
        if marks:
            # a cell marked already: a mark on its outline's pixels (clicked anywhere on
            # it, not only within a few pixels of where the network put its centre: it was
            # marked twice, and trained as two cells)
            xy = np.rint(np.asarray(marks, float)).astype(int)
            h, w = labels.shape[:2]
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            taken = labels[xy[inside, 1], xy[inside, 0]]
            ids = ids[~np.isin(ids, taken)]
        found = np.reshape(doc.result.centres, (-1, 2))[ids - 1]
        if marks and len(found):  # and one near its centre (a mark just off its outline)
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
        return self._step_marks(back=True)

    def redo_mark(self) -> bool:
        """The change of marks Undo took back, made again."""
        return self._step_marks(back=False)

    def _step_marks(self, back: bool) -> bool:
        doc = self.current
        if doc is None:
            return False
        source, other = (
            (doc.marks_undo, doc.marks_redo) if back else (doc.marks_redo, doc.marks_undo)
        )
        history = source.get(doc.plane)
        if not history:
            return False
        other.setdefault(doc.plane, []).append(list(doc.marks.get(doc.plane, ())))
        doc.marks[doc.plane] = history.pop()
        doc.marks_unsaved.add(doc.plane)
        self.marks_changed.emit(self.documents.index(doc))
        return True

    def unsaved_marks(self, docs: Iterable[Document] | None = None) -> int:
        """How many image planes (of these images, default all) have marks changed since
        they were last saved, or every mark cleared where a file still holds them."""
        docs = self.documents if docs is None else docs
        return sum(
            bool(d.marks.get(plane)) or bool(d.marks_in.get(plane))
            for d in docs
            for plane in d.marks_unsaved
        )

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
            # a file name's bytes that are not UTF-8 (Latin-1 café.tif) as _: points.csv and
            # sources.csv, UTF-8, name the image as its file is named
            stem = "".join("_" if "\udc80" <= c <= "\udcff" else c for c in Path(name).stem)
            planes.append(self.engine.Plane(doc.path, plane[0], f"{stem}.tif"))
        return [p.name for p in self.engine.batch_planes(planes)]

    @staticmethod
    def _of_set(doc: Document, folder: Path) -> bool:
        """Whether ``doc`` is an image of the training set in ``folder`` (its images/), opened
        there to correct its centres."""
        try:
            return doc.path.parent.resolve() == (folder / "images").resolve()
        except OSError:
            return False

    def _names_in(self, folder: Path, marked: list) -> tuple[list[str], set[str]]:
        """The names the marked planes (document, plane) get in the training set in
        ``folder``: a set's own image keeps its file's; a plane saved there before keeps the
        name it got then (its sources.csv says which: one of two files of one name saved
        from two folders, saved again alone, would otherwise get a name of its own and be
        in the set twice); else :meth:`training_names`'. And the names of the images whose
        files stay as they are: the set's own, and those a plane saved there before wrote
        (the same plane of the same file: not asked about again, as if another's)."""
        names, own = self.training_names(marked), set()
        recorded = {}
        for name, source in self.engine.read_training_sources(folder).items():
            try:
                where = str(Path(source["file"]).resolve())
            except OSError:
                continue
            recorded[where, source["page"], source["channel"]] = name
        for k, (doc, plane) in enumerate(marked):
            if self._of_set(doc, folder) and plane == (0, 0):
                names[k] = doc.path.name
                own.add(names[k])
                continue
            try:
                key = (str(doc.path.resolve()), *plane)
            except OSError:
                continue
            names[k] = recorded.get(key, names[k])
            saved = folder / "images" / names[k]
            # (a file changed since it was saved there: its image there is not of these marks,
            # and is replaced only if the user agrees)
            if key in recorded and saved.is_file() and self._saved_alike(saved, doc, plane):
                own.add(names[k])
        return names, own

    def _saved_alike(self, saved: Path, doc: Document, plane: tuple) -> bool:
        """Whether the image a training set holds at ``saved`` has the pixels of ``doc``'s
        ``plane`` as they are now (the ones its marks were clicked on)."""
        try:
            image = self._image_at(doc, plane)
            there = self.engine.read_image(saved).pixels
        except (OSError, ValueError):
            return False
        return there.shape == image.pixels.shape and bool(np.array_equal(there, image.pixels))

    def save_training_set(self, folder: str | Path, confirm_overwrite: ConfirmOverwrite) -> bool:
        """Write every marked plane and its centres into a dataset folder for cellprop-train
        (images/ and points.csv; a points.csv already there keeps its other images' rows).
        A plane whose every mark was cleared since it was saved into this folder or read
        from it loses its rows there (its image stays; training leaves it out); one never
        there changes nothing. Images of the same name there are replaced only if ``confirm_overwrite`` agrees."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        folder = Path(folder)
        here = _folder_key(folder)
        # Planes whose every mark was taken away since they were saved into this set or read
        # from it: their rows there go too (saved as no centres), else training would still
        # use them. (Not those never in it: another image would lose the rows of its name.)
        marked = [
            (d, plane)
            for d in self.documents
            for plane, m in d.marks.items()
            if m or here in d.marks_in.get(plane, ())
        ]
        names, own = self._names_in(folder, marked)
        plan = [
            (doc, plane, name, list(doc.marks[plane]))
            for (doc, plane), name in zip(marked, names, strict=True)
        ]
        cleared = [name for *_, name, marks in plan if not marks]
        cleared_there = [n for n in cleared if (folder / "images" / n).is_file()]
        if not any(marks for *_, marks in plan) and not cleared_there:
            self._report(
                "No cell centres marked yet: choose Edit > Mark cell centres for training and "
                "click the centre of every cell in an image."
            )
            return False
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            sources = [str(d.path) for d, _, n, _ in plan if n == twice[0]]
            self._report(
                f"{' and '.join(sources)} would both be saved as {twice[0]}: rename one of them"
            )
            return False
        existing = [
            folder / "images" / n
            for *_, n, marks in plan
            if marks and n not in own and (folder / "images" / n).exists()
        ]
        if existing and not confirm_overwrite(existing):
            self.log.emit("info", "Training set not saved: images of those names exist.")
            return False
        engine = self.engine
        overwrite = bool(existing)

        def work(job: Job):
            planes = []
            for n, (doc, plane, name, marks) in enumerate(plan):
                job.progress(f"Saving {doc.name}", n / len(plan))
                if not marks:  # cleared: its rows go, its image stays (none is written)
                    planes.append((name, None, np.zeros((0, 2))))
                    continue
                image = self._image_at(doc, plane)
                mine = name in own  # the set's own image, its centres corrected: it stays
                off = engine.points_outside(np.asarray(marks, float), image.pixels.shape[:2])
                if off:  # marks read from a file for an image not shown then
                    raise engine.PointsError(
                        f"{doc.path}: {off} of its {len(marks)} marked centres lie outside the "
                        "image; take them away (Clear the marks on this image) and save again"
                    )
                planes.append((name, None if mine else image.pixels, np.asarray(marks, float)))
            sources = [(doc.path, *plane) for doc, plane, _, _ in plan]
            return engine.write_training_set(folder, planes, overwrite=overwrite, sources=sources)

        def finished(paths):
            for doc, plane, _, marks in plan:
                if doc.marks.get(plane) != marks:  # changed while it was being written
                    continue
                kept_in = doc.marks_in.setdefault(plane, set())
                if marks:
                    kept_in.add(here)
                else:  # its rows are gone from this set (other sets may still hold them)
                    kept_in.discard(here)
                if marks or not kept_in:
                    doc.marks_unsaved.discard(plane)
            total = sum(len(m) for *_, m in plan)
            saved = sum(bool(m) for *_, m in plan)
            gone = (
                f"; the centres of {len(cleared_there)} images whose marks were cleared taken "
                "away (their files stay, and training leaves them out)"
                if cleared_there
                else ""
            )
            self.log.emit(
                "info",
                f"Saved {total} cell centres on {saved} images to {folder}{gone} "
                f"(train a model on it: cellprop-train {shlex.quote(str(folder))} --out "
                "MODEL_FOLDER)",
            )
            # the set's own files first: the banner names (and opens) the folder of the first
            paths = sorted(paths, key=lambda p: Path(p).parent != Path(folder))
            self.exported.emit(list(paths))

        def failed(exc, tb):
            self._report(
                "Saving the training set failed: " + readable_error(exc, self.engine),
                self._details(exc, tb),
            )

        return self._start_work(
            Job(work, name="training set"), finished, failed, "Saving the training set"
        )

    def open_marks(
        self, csv_path: str | Path, confirm_replace: Callable[[str], bool] | None = None
    ) -> int:
        """Marks from a points file (a training set's points.csv, or any file
        ``--points`` reads) for the open images it names: each image's own rows, by its
        name (or path, as a batch finds them: engine ``planes_points``) or the name it has in
        a training set, on their first plane; an x,y file's rows go to the image and page
        shown. Replaces their marks (Undo brings them back); where marks clicked and not
        saved would be replaced, ``confirm_replace`` is asked first (the question; False:
        nothing is changed). Returns how many images got marks."""
        csv_path = Path(csv_path)
        points = self._read_points_file(csv_path)
        if points is None:
            return 0
        refused = 0
        plan: list = []  # (document, plane, marks, what), replaced only once all are read
        docs = self.documents
        names = self.training_names([(doc, (0, 0)) for doc in docs])
        planes = self.engine.batch_planes([doc.path for doc in docs])  # named apart
        named = {k: v for k, v in points.items() if k}  # x,y rows: the image shown's only
        found = self.engine.planes_points(named, planes)
        # a training set's record of where each image was taken from first: a file saved
        # there under another name (src_crop_0000.tif, beside src2's crop_0000) gets its own
        recorded = self._recorded_planes_marks(csv_path, points)
        by_record = {id(doc) for doc, plane, *_ in recorded if plane == (0, 0)}
        for doc, name, plane in zip(docs, names, planes, strict=True):
            if id(doc) in by_record:
                continue
            xy = found[plane.name]
            if xy is None or isinstance(xy, str):
                xy = points.get(name, xy)  # as a training set names it, else why not
            target = (0, 0)
            if xy is None and doc is self.current:
                xy, target = points.get(""), doc.plane  # the page shown
            if isinstance(xy, str):  # a name several folders' images share
                self._report(f"{csv_path}: {xy}")
                refused += 1
                continue
            if xy is None:
                continue
            xy = np.reshape(xy, (-1, 2))
            # an image not shown is checked when the training set is saved
            shown = doc.image is not None and (doc.image.page, doc.image.channel) == target
            if shown and not self._points_on_image(csv_path, doc, xy):
                refused += 1
                continue
            marks = [(float(x), float(y)) for x, y in xy]
            what = f"centres read from {csv_path.name}"
            if target != (0, 0):
                what = f"centres of page {target[0]} channel {target[1]} read from {csv_path.name}"
            plan.append((doc, target, marks, what))
        plan += recorded
        clicked = [
            (doc, plane)
            for doc, plane, marks, _ in plan
            if plane in doc.marks_unsaved and doc.marks.get(plane) and doc.marks[plane] != marks
        ]
        if clicked and confirm_replace is not None:
            which = first_three(
                [
                    doc.name
                    if plane == (0, 0)
                    else f"{doc.name} page {plane[0]} channel {plane[1]}"
                    for doc, plane in clicked
                ]
            )
            question = (
                f"The centres marked on {which} are not saved. Replace them with those of "
                f"{csv_path.name}? (Edit > Undo brings them back while the image is open.)"
            )
            if not confirm_replace(question):
                self.log.emit("info", f"{csv_path.name} not opened: the centres marked kept")
                return 0
        # a training set's points file (not a cell table, nor a file of x,y rows): clearing
        # these marks is saved by saving into that set again
        a_set = csv_path.name == "points.csv" and (csv_path.parent / "images").is_dir()
        for doc, plane, marks, what in plan:
            self._set_marks(doc, plane, marks, what)
            doc.marks_unsaved.discard(plane)  # the file holds them: nothing to lose
            if a_set:
                doc.marks_in.setdefault(plane, set()).add(_folder_key(csv_path.parent))
        if not plan and not refused:
            self._report(f"{csv_path}: no cell centres for the open images in this file")
        return len(plan)

    def _recorded_planes_marks(self, csv_path: Path, points: dict) -> list:
        """Marks of a training set's points file for the planes of the open files they were
        taken from, as its sources.csv records them (``movie_p2c0.tif``, ``two_p0c1.tif``,
        and a first page saved under another name than its file's, ``src_crop_0000.tif``):
        (document, plane, marks, what) for each. (They were left out: the marking of a
        time-lapse or of a nuclei channel came back on its first plane only, and a file
        saved beside another of its name got none back.)"""
        by_file: dict = {}
        for doc in self.documents:
            try:
                by_file[doc.path.resolve()] = doc
            except OSError:
                continue
        found = []
        for name, source in self.engine.read_training_sources(csv_path.parent).items():
            plane = (source["page"], source["channel"])
            xy = points.get(name)
            if xy is None:
                continue
            try:
                doc = by_file.get(Path(source["file"]).resolve())
            except OSError:
                continue
            if doc is None:
                continue
            marks = [(float(x), float(y)) for x, y in np.reshape(xy, (-1, 2))]
            what = f"centres read from {csv_path.name}"
            if plane != (0, 0):
                what = f"centres of page {plane[0]} channel {plane[1]} read from {csv_path.name}"
            found.append((doc, plane, marks, what))
        return found

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
        run.note.connect(lambda said: self.log.emit("warning", said[0].upper() + said[1:]))
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
            self.log.emit("info", f"Model trained: {message}{training_summary(Path(message))}")
            self._model_replaced(Path(message))
        elif run is not None and run.stopped:
            self.log.emit("info", message[0].upper() + message[1:])
        else:
            self._report(message[0].upper() + message[1:])
        if run is not None:
            run.deleteLater()
        self.training_finished.emit(ok, message)

    def _model_replaced(self, folder: Path) -> None:
        """A model was trained into ``folder``: the network kept in memory is let go, and
        where it is the model in use (trained again into its own folder) that is loaded anew,
        its defaults with it (it went on segmenting with the network it had replaced)."""
        with self._model_lock:
            self._model_cache = {}
        in_use = self.model_status.path
        if in_use and Path(in_use).resolve() == folder.resolve():
            self.load_model()
