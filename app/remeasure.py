"""Measuring the cells of the window's images again with the pixel size and neighbour
distance the settings give now, their outlines as they are: a pixel size set, or neighbours
chosen, after images were segmented and corrected, without segmenting them again (a batch
continued into its folder does the same for its images, in the engine)."""

from __future__ import annotations

from .messages import measured_with, readable_error
from .state import Document, undo_chain
from .workers import Job


class MeasureAgainMixin:
    """The AppController's *Image ▸ Measure the cells again*."""

    def _measuring(self, settings=None) -> dict:
        """How cells are measured with the settings chosen now (default) or ``settings`` (a
        result's own, a dict; those it lacks: the engine's defaults): the engine's
        ``Settings.measured()``, keywords of ``measure_again``."""
        if settings is None:
            return self.engine.Settings(**self.settings.engine_kwargs()).measured()
        own = self.engine.Settings().measured()
        return {name: settings.get(name, value) for name, value in own.items()}

    def measure_again(self) -> bool:
        """Measure the cells of every segmented image (each of its segmented pages) again
        with the pixel size and neighbour distance the settings give now, in the background:
        the same labels and centres, a new table (and calibration, for exports); also the
        results Undo and Redo go back to, so that going back does not bring back the old
        units; a followed time-lapse's distances numbered anew in the new unit. Images whose
        files were written are marked for *Export* (their files hold the old measurements)."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        plan = [
            (doc, plane, undo_chain(result))
            for doc in self.documents
            for plane, result in sorted(doc.results.items())
        ]
        if not plan:
            self._report("Nothing to measure yet: no image has been segmented.")
            return False
        measuring = self._measuring()
        engine = self.engine

        def work(job: Job):
            measured = []
            for n, (doc, plane, results) in enumerate(plan):
                if job.is_cancelled():
                    return None  # nothing changed: all or none
                job.progress(f"Measuring {doc.name}", n / len(plan))
                image = self._image_at(doc, plane)
                tables = []
                for r in results:
                    labels = r.labels if r.labels is not None else engine.read_labels(r.labels_file)
                    again = engine.measure_again(labels, image, r.table, r.centres, **measuring)
                    tables.append(engine.as_written(again))  # as a batch's (controller)
                measured.append((doc, plane, results, tables))
            return measured

        def finished(measured):
            if measured is None:
                self.log.emit("info", "Measuring the cells again cancelled: nothing changed.")
                return
            for _doc, _plane, results, tables in measured:
                for r, table in zip(results, tables, strict=True):
                    r.table = table
                    r.settings = {
                        **(r.settings if isinstance(r.settings, dict) else {}),
                        **measuring,
                    }
                    r.measured_anew = bool(r.outputs)  # its files: the old measurements
                    r.layers = {}  # drawn again: its rings may be others
            self._number_measured_again([(doc, plane) for doc, plane, *_ in measured])
            for index, doc in enumerate(self.documents):
                if doc.results:
                    self.document_changed.emit(index)
            if self.current is not None and self.current.result is not None:
                self.result_ready.emit(self.current_index)
                # the same cells: those selected stay selected, shown so again (the table
                # and the outline were drawn anew without them, while Delete still took one)
                self.selection_changed.emit(self.selected_cell)
            self.log.emit(
                "info",
                f"Measured the cells of {len(measured)} image(s) again (pixel size, neighbours: "
                f"{measured_with(**measuring)}), their outlines as they are; Export writes them.",
            )

        def failed(exc, tb):
            self._report(
                "Measuring the cells again failed (nothing changed): "
                + readable_error(exc, self.engine),
                self._details(exc, tb),
            )

        return self._start_work(
            Job(work, name="measure again"), finished, failed, "Measuring the cells again"
        )

    def _number_measured_again(self, planes: list[tuple[Document, tuple]]) -> None:
        """Each followed time-lapse among ``planes``, its tables measured again: its tracks'
        distances numbered anew in the new unit (its links as its tables record them)."""
        done: set = set()
        for doc, plane in planes:
            followed = self._followed_with(doc, plane)
            if followed is None:
                continue
            times, results, _i, links = followed
            if id(results[0]) in done:
                continue
            done.add(id(results[0]))
            self._number_again(times, results, links, None)
