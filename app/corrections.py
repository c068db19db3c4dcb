"""Corrections of a result by the user: cells added by a click, cells taken out, cells
outlined at the points of a file, and Undo. Each correction segments the image again
from the result's centres (with the model and settings that made it), reusing what the
window's memo holds; a part of :class:`~.controller.AppController`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from pathlib import Path

import numpy as np

from .messages import count_cells, points_missed, readable_error
from .state import Document, Result
from .workers import Job

#: Corrections that Undo can take back, per image (each keeps a whole result in memory).
UNDO_DEPTH = 20


def trim_undo(result: Result, depth: int) -> None:
    """Forget the results more than ``depth`` corrections back."""
    for _ in range(depth):
        if result.previous is None:
            return
        result = result.previous
    result.previous = None


class CorrectionsMixin:
    """The controller's corrections (its state lives in ``AppController.__init__``)."""

    def _say_dropped(self, doc: Document, waiting: int, while_: str) -> None:
        """Cells clicked or removed that waited (``while_`` other work ran) and were let go
        (that work stopped, or another image shown): said where it is seen, not only in the
        Log."""
        if waiting:
            self._report(
                f"{doc.name}: {waiting} cell{'s' * (waiting > 1)} clicked or removed while "
                f"{while_} not changed (stopped, or another image shown); click them again"
            )

    def can_correct(self) -> bool:
        """True when the current image has a result that a click may correct (also while
        it is got ready for corrections: clicks then wait for that)."""
        doc = self.current
        if doc is None or doc.result is None:
            return False
        return not self.busy or (
            self._warming is doc
            and self._correcting_plane == doc.plane
            and doc.result.labels is not None
        )

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
            if doc.image is None and doc.plane == plane:  # not another page shown since
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
                self.log.emit("info", f"{doc.name}: getting ready for corrections stopped")
                self._say_dropped(doc, waiting, "it was got ready for corrections")
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
            self._correcting_plane = plane
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
        near = self._centred_at(doc.result, x, y)
        if near and near not in self._queued_removals:  # on a cell's drawn centre: a second
            # centre there would add nothing (one waiting to be removed is a cell clicked anew)
            self._on_a_centre(doc, near)
            return False
        if self.busy and self._correcting is doc and self._correcting_plane == doc.plane:
            self._queued_clicks.append((float(x), float(y)))
            self.log.emit(
                "info",
                f"{doc.name}: cell at x {x:.0f}, y {y:.0f} waits for the correction running",
            )
            return True
        if not self.can_correct():
            return False
        return self._add_cells(doc, [(float(x), float(y))])

    def _on_a_centre(self, doc: Document, cell: int) -> None:
        """Say that a click on ``cell``'s drawn centre adds nothing (a second centre there
        would give no cell)."""
        self._report(f"{doc.name}: cell {cell} has its centre there already; nothing added.")

    @staticmethod
    def _centred_at(result: Result, x: float, y: float) -> int:
        """The cell of ``result`` whose centre lies within a pixel of (x, y), else 0."""
        centres = np.reshape(result.centres, (-1, 2))
        if not len(centres):
            return 0
        distance = np.hypot(centres[:, 0] - x, centres[:, 1] - y)
        k = int(np.argmin(distance))
        return k + 1 if distance[k] < 1.0 else 0

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
        before = (doc.result.labels, np.reshape(doc.result.centres, (-1, 2)), removed)
        return self._correct(doc, centres, "; ".join(parts), added=clicks or None, before=before)

    def remove_cell(self, label: int | None = None) -> bool:
        """Take a cell out (debris, a false detection, half of a split cell); default the
        selected ones (:meth:`remove_cells`). False if nothing started."""
        return self.remove_cells(self.selected_cells if label is None else [label])

    def remove_cells(self, labels: Iterable[int]) -> bool:
        """Take these cells out in one correction (Undo brings them all back). The image is
        segmented again without their centres, so that a neighbour a cell was cut from gets
        its pixels back. False if nothing started."""
        doc = self.current
        if not self.can_correct():
            return False
        labels = sorted({int(k) for k in labels if 0 < int(k) <= doc.result.n_cells})
        if not labels:
            return False
        if self.busy:  # the image is being got ready for corrections: wait for that
            waiting = [k for k in labels if k not in self._queued_removals]
            self._queued_removals += waiting
            cells = ", ".join(map(str, labels))
            self.log.emit(
                "info", f"{doc.name}: removing cell{'s' * (len(labels) > 1)} {cells} waits a moment"
            )
            return True
        return self._add_cells(doc, [], labels)

    def _correct(
        self,
        doc: Document,
        centres,
        what: str,
        added=None,
        points_file: bool = False,
        before=None,
    ) -> bool:
        """Segment ``doc``'s plane again from ``centres``; ``before`` (labels, centres, cells
        removed): the cells the edit does not reach keep their outlines, as they are."""
        old = doc.result
        plane = doc.plane
        settings, model_key, typed_pixel_size = self._made_with(old)
        model_name, device = model_key

        def work(job: Job):
            return self._segment(
                job, doc, plane, model_key, settings, centres, typed_pixel_size, before=before
            )

        def finished(out):
            image, seg, table, layers, _model = out
            if doc.plane == plane:  # the page it ran on still shown (else that page's image)
                doc.image = image
            kept = self.engine.points_kept(centres, seg.centres)
            before = len(kept) - len(added or [])  # the cells it had (less those removed)
            missing = [tuple(p) for p, k in zip(added or [], kept[before:], strict=True) if not k]
            if missing:
                where = "; ".join(f"x {x:.0f}, y {y:.0f}" for x, y in missing)
                largest = seg.settings.get("max_size") or 0
                self._report(
                    f"{doc.name}: no cell found at {where} (its outline came out empty or "
                    f"smaller than the smallest cell, {seg.settings.get('min_size') or 0} px"
                    + (f", or larger than the largest, {largest} px)" if largest else ")")
                    + ("; nothing changed." if len(missing) == len(added) else ".")
                )
                if len(missing) == len(added):
                    return
            had = np.reshape(centres, (-1, 2))[:before]
            lost = [tuple(p) for p, k in zip(had, kept[:before], strict=True) if not k]
            missed = points_missed(self.engine, centres, seg.centres) if points_file else ""
            if missed:  # a points file's: said with the correction, below
                said = f"{what}; {missed}"
            elif lost:  # a cell the new one took the place of: said, not gone quietly
                where = "; ".join(f"x {x:.0f}, y {y:.0f}" for x, y in lost)
                why = (
                    "gave way to the one added (its outline came out empty beside it, or "
                    "outside the size or edge limits)"
                    if added
                    else "went too (its outline, given the pixels of the cells removed, came "
                    "out outside the size or edge limits, or empty)"
                )
                self._report(
                    f"{doc.name}: the cell{'s' * (len(lost) > 1)} at {where} {why}; Ctrl+Z "
                    f"brings {'them' if len(lost) > 1 else 'it'} back"
                )
            doc.results[plane] = Result.of(
                seg,
                table,
                layers,
                model=model_name,
                device=device,
                edits=old.edits + 1,
                previous=old,
                name=old.name,
                sequence=old.sequence,
                tracking=old.tracking,
            )
            old.keep_aside(doc.results[plane])
            old.undone = None  # a new correction: what was undone is gone for good
            trim_undo(doc.results[plane], UNDO_DEPTH)
            self._follow_again(doc, plane, was=old)
            self._memo_filled(doc, plane)
            index = self.documents.index(doc)
            self.document_changed.emit(index)
            self.result_ready.emit(index)
            self.log.emit(
                "warning" if missed else "info",
                f"{doc.name}: {said if missed else what}; {count_cells(seg.n_cells)} "
                "(Ctrl+Z undoes)",
            )
            if self.current is doc and doc.plane == plane:  # not a cell of another image
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
            self._correcting, self._correcting_plane = doc, plane
        return started

    def undo_correction(self) -> bool:
        """Back to the result before the last correction of the current image (Redo comes
        back to this one until another correction is made)."""
        doc = self.current
        if self.busy or doc is None or doc.result is None or doc.result.previous is None:
            return False
        undone = doc.result
        undone.previous.undone = undone
        return self._go_back(doc, undone.previous, undone, "undone", undone.link_edit)

    def redo_correction(self) -> bool:
        """The correction Undo took back, made again (no work: its result was kept)."""
        doc = self.current
        if self.busy or doc is None or doc.result is None or doc.result.undone is None:
            return False
        left = doc.result
        redone, left.undone = left.undone, None
        return self._go_back(doc, redone, left, "redone", redone.link_edit)

    def _go_back(
        self, doc: Document, result: Result, left: Result, what: str, link_edit: bool
    ) -> bool:
        """Show ``result`` in place of ``left`` (kept aside for Undo or Redo); ``link_edit``:
        the step undone or redone is a link mended by hand, not a correction."""
        doc.results[doc.plane] = result
        left.keep_aside(result)
        self._follow_again(doc, doc.plane, was=left)
        self.select_cell(0)
        index = self.documents.index(doc)
        self.document_changed.emit(index)
        self.result_ready.emit(index)
        what = f"link {what}" if link_edit else f"correction {what}"
        self.log.emit("info", f"{doc.name}: {what}, {count_cells(result.n_cells)}")
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
            return self._correct(doc, xy, f"cells outlined{what}", points_file=True)
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
        return sum(any(r.edits and not r.outputs for r in d.results.values()) for d in docs)

    def cells_in_no_file(self, docs: Iterable[Document] | None = None) -> int:
        """How many of these images (default all) show cells, not corrected, whose files
        were replaced since (``Result.in_no_file``): not corrections, but lost all the same
        when closed or segmented again."""
        docs = self.documents if docs is None else docs
        return sum(any(r.in_no_file for r in d.results.values()) for d in docs)
