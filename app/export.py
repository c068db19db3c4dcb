"""Export from the app: the files ``cellprop segment`` writes, for the image shown or
every segmented image (then with the gathered ``cells.csv`` and ``images.csv``); a part of
:class:`~.controller.AppController`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .messages import first_three, measured_with, plane_label, readable_error
from .render import ring_width
from .state import Document, Result, files_in, sequence_key, time_lapses, undo_chain
from .timelapse import field_breaks, followed_links
from .workers import Job

# Confirm callback: given the files that exist already, return True to replace them.
ConfirmOverwrite = Callable[[list], bool]


class ExportMixin:
    """The controller's export (state in ``AppController.__init__``)."""

    def _export_target(self, doc: Document, plane: tuple) -> Path:
        """The image plane as export names it: as the batch that made its cells named it
        (``Result.name``: a page of a time-lapse, movie_p3c0.tif), else the file's name for
        its first plane and ``<stem>_p<page>c<channel>`` for another one."""
        result = doc.results.get(plane)
        if result is not None and result.name:
            return doc.path.with_name(result.name)
        # the file's own name, unless a batch's result of another plane of it has it (a run
        # on channel 1 names its results after the file): then this plane's own name
        taken = any(r.name == doc.path.name for other, r in doc.results.items() if other != plane)
        if plane == (0, 0) and not taken:
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
        writes them), and ``tracks.csv`` where cells were followed over time, so that a folder
        a batch wrote, its images corrected and exported again, does not keep stale tables of
        all cells or tracks."""
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        roi = self.settings.roi_zip
        engine = self.engine
        # named as a batch of them would be: images of one name in other folders (A01/img1.tif,
        # A02/img1.tif) after their folders too, A01_img1; two that would still write the
        # same files (img.tif and img.png of one folder) refused before anything is written
        named = engine.batch_planes(
            [
                engine.Plane(doc.path, plane[0], self._export_target(doc, plane).name)
                for doc, plane in planes
            ]
        )
        # an image the run in that folder holds (page 0 of its time-lapse, a well's image
        # opened alone) named as it named it: its files replaced, its rows in the tables once
        named = engine.named_as_run(named, out_dir, [plane[1] for _, plane in planes])
        clash = engine.name_clash(named)
        if clash is not None:
            self._report(f"Nothing exported: {engine.clash_message(*clash)}.")
            return False
        plan = [
            (
                doc,
                plane,
                doc.results[plane],
                dict(engine.output_paths(at.target, out_dir, roi or self._has_roi(at, out_dir))),
                at.target.name,
            )
            for (doc, plane), at in zip(planes, named, strict=True)
        ]
        try:  # the run (or the record of the window's exports) in that folder, read once
            there = engine.earlier_run(out_dir)
        except engine.ResumeError:  # (said when its tables are left as they were)
            there = None
        other = self._another_images_results(plan, out_dir, there)
        if other:
            self._report(f"Nothing exported: {other}")
            return False
        # one image exported into a run's folder: the run's tables of all cells and images
        # brought up to date too, its other images kept (they kept its cells as they were);
        # where the run followed its cells, Export all (tracks.csv too) does, as said below
        into_run = (out_dir / "summary.csv").is_file() and (out_dir / "cells.csv").is_file()
        followed_run = (out_dir / "tracks.csv").is_file()
        gathered = (
            [out_dir / "cells.csv", out_dir / "images.csv"]
            if combined or (into_run and not followed_run)
            else []
        )
        followed = self._time_lapses(plan) if combined else []
        if followed:
            gathered.append(out_dir / "tracks.csv")
        if any(result.sequence is not None for _, _, result, *_ in plan):
            # a time point of a followed time-lapse of the run there, closed: the tracks of
            # those written would be split at it (its files stay; a continued run keeps that)
            shown = {r.name for d in self.documents for r in d.results.values() if r.name}
            shown.update(named_as for *_, named_as in plan)
            left = engine.time_points_left_out(out_dir, sorted(shown))
            if left:
                self._report(
                    f"Nothing exported: {first_three(left)}, of the time-lapse followed in "
                    f"{out_dir}, {'are' if len(left) > 1 else 'is'} not open, and the tracks of "
                    "the other time points would be split there. Open the run's results again "
                    "(File > Open results) and export all of them; one that does not open so "
                    "(its labels edited since its table was written) is measured as its labels "
                    "are by continuing the run first (Process all, then Continue; or cellprop "
                    "segment --resume). Or export into another folder."
                )
                return False
        relinked = [] if combined else self._neighbours_relinked(plan, out_dir, there)
        if relinked:
            # its files written alone, the next time point's would still link to its cells
            # as they were numbered: a run opened or continued then followed them wrongly
            self._report(
                f"Nothing exported: the correction changed how {first_three(relinked)} of the "
                f"time-lapse followed in {out_dir} link{'' if len(relinked) > 1 else 's'} to its "
                "cells, and their files would go on linking to the cells as they were. Export "
                "all writes them together (or export into another folder)."
            )
            return False
        existing = [p for *_, paths, _ in plan for p in paths.values() if p.exists()]
        existing += [p for p in gathered if p.exists()]
        if existing and not confirm_overwrite(existing):
            self.log.emit("info", "Export cancelled: files exist and were kept.")
            return False
        overwrite = bool(existing)  # only reached when the user agreed to replace them
        # tables of all cells an earlier version's Export all left, with no record of which
        # images they hold: one image exported alone there keeps them, and makes none
        unrecorded_tables = (
            not combined
            and not (out_dir / "run.json").exists()
            and any((out_dir / n).is_file() for n in ("cells.csv", "images.csv"))
        )
        stale = self._replaced_results(plan, set(existing))

        def work(job: Job):
            out_dir.mkdir(parents=True, exist_ok=True)
            rows = []  # tracks.csv's, first: the tables written below are the ones it numbers
            numbered: dict = {}  # id(result): its table, its tracks as followed across these
            for name, members in followed:
                times, results, names = zip(*members, strict=True)
                # each table as its file holds it, as a batch's (a run continued reads them so)
                lapse = [engine.as_written(r.table) for r in results]
                settings = self.track_settings(results[-1])  # as its cells were followed
                # a time point closed: the tracks go on across it, a gap closed, in tracks.csv
                # and the tables alike (they were linked to it, and tracks.csv as if it were
                # the one before)
                links = followed_links(engine, lapse, times)
                breaks = field_breaks(engine, results)  # a field of another size: anew
                tracks = engine.follow_tables(links, lapse, times, settings, breaks=breaks)
                engine.measure_tracks(tracks, lapse, times)
                numbered.update({id(r): t for r, t in zip(results, lapse, strict=True)})
                rows += engine.track_rows(name, tracks, lapse, times, names)
            written, tables, counts, makers = [], [], {}, {}
            exported, sequences = [], {}  # the record's rows, and where cells were followed
            unread: list = []  # what the Log says of the images not read
            for n, (doc, plane, result, paths, named_as) in enumerate(plan):
                if job.is_cancelled():
                    break
                job.progress(f"Writing {paths['labels'].name}", n / len(plan))
                table = numbered.get(id(result), result.table)
                labels = result.labels  # parked (not shown): read back from its file
                if labels is None:
                    labels = engine.read_labels(result.labels_file)
                try:
                    image = self._image_at(doc, plane)
                except (engine.ImageError, OSError) as exc:
                    # deleted or moved since it was segmented: its cells, table and ROIs
                    # are in the window still, and written; the overlay has no image to
                    # draw on (the outlines over black), and the Log says so
                    image = None
                    unread.append(
                        f"{paths['overlay'].name}: the outlines drawn over black, since "
                        f"the image could not be read ({readable_error(exc, engine)}); the "
                        "labels, table and ROIs are those shown"
                    )
                # the calibration the cells were measured with, not the one chosen now
                made = result.settings if isinstance(result.settings, dict) else {}
                if image is not None:
                    pixel_size, unit = engine.calibration(image, made.get("pixel_size"))
                else:  # the table's, measured when the image was there
                    pixel_size, unit = table.pixel_size, table.unit
                engine.write_labels(
                    paths["labels"],
                    labels,
                    pixel_size=pixel_size,
                    unit=unit or "um",
                    overwrite=overwrite,
                )
                # cells followed over time are numbered by track, as `segment --track` does
                tracks = engine.table_tracks(table, len(result.centres))
                ring = ring_width(result)  # the overlay's rings and the ROIs' from one transform
                grown = engine.feature_transform(labels) if ring and "roi" in paths else None
                engine.write_overlay(
                    paths["overlay"],
                    image.display_pixels if image is not None else np.zeros_like(labels, np.uint8),
                    labels,
                    result.centres,
                    overwrite=overwrite,
                    numbers=tracks if len(tracks) else None,
                    ring=ring,
                    transform=grown,
                )
                # no image-name column: the same per-image CSV as `cellprop segment`
                engine.write_table(paths["cells"], table, overwrite=overwrite)
                if "roi" in paths:
                    engine.write_roi_zip(
                        paths["roi"], labels, overwrite=overwrite, ring=ring, transform=grown
                    )
                written.append((doc, plane, result, paths, table))
                areas = np.bincount(np.asarray(labels).ravel())[1:]
                areas = areas[areas > 0]
                counts[named_as] = (len(areas), float(areas.mean()) if len(areas) else np.nan)
                makers[named_as] = self._made_record(result)
                # a page of a time-lapse carries its page, as the batch's cells.csv does
                if image is not None:
                    pages = getattr(image, "n_pages", 1)
                else:  # its file gone: as many as it had when last read, else those segmented
                    pages = doc.pages_seen or len({at[0] for at in doc.results})
                page = plane[0] if pages > 1 or plane[0] else None
                tables.append((named_as, table, page))  # (as its file holds it already)
                row = self._summary_row(doc, plane, result, named_as, image, page, counts[named_as])
                exported.append((row, makers[named_as]))
                if result.sequence is not None:
                    sequences[named_as] = (*result.sequence, self.track_settings(result).record())
            # a run's folder: its summary.csv says so too, and its run.json what made each
            # (opened again, a correction re-runs the model that made it, measured so)
            # a folder of the window's own exports: their record, as a run's, so that Open
            # results reads them back another day (a run's folder: its summary's counts)
            every_roi = all("roi" in paths for *_, paths, _ in written)
            # (tables an earlier version's Export all left and no record of which images
            # they hold: a record of one image alone would speak for the folder, and the next
            # export would rewrite the tables from it alone)
            recorded = not unrecorded_tables and engine.record_export(
                out_dir,
                exported,
                self._model_entry(exported[0][1]["model"]) if exported else {},
                every_roi,
                sequences,
            )
            if not recorded:
                engine.recount(out_dir, counts, makers)
            if not (gathered and written):
                return written, [], unread
            run = engine.run_tables(out_dir, tables, [name for name, _ in followed])
            if combined:  # a run's folder: its other images (closed, not opened) stay in them
                every = tables if run.tables is None else run.tables
                engine.write_tables(gathered[0], every, overwrite=overwrite)
                engine.write_image_table(gathered[1], every, overwrite=overwrite)
                if followed:
                    engine.write_rows(
                        gathered[2],
                        rows + run.tracks,
                        overwrite=overwrite,
                        columns=engine.TRACKS_CSV_COLUMNS,
                    )
                kept = [f"{out_dir}: the run's tables could not keep {p}" for p in run.unread]
                return written, gathered, unread + kept
            # one image into a run's folder: the run's tables only where they stay whole
            why = _run_tables_kept(run, out_dir)
            if why:
                return (
                    written,
                    [],
                    [*unread, f"{out_dir}: cells.csv and images.csv left as they were: {why}"],
                )
            try:
                engine.write_tables(gathered[0], run.tables, overwrite=overwrite)
                engine.write_image_table(gathered[1], run.tables, overwrite=overwrite)
            except OSError as exc:
                return (
                    written,
                    [],
                    [
                        *unread,
                        f"{out_dir}: cells.csv and images.csv could not be brought up to date "
                        f"({exc}); close them where they are open and export again",
                    ],
                )
            return written, gathered, unread

        def finished(out):
            written, files, unread = out
            files = list(files)
            gone = {p for *_, paths, _ in written for p in paths.values()}
            for result in stale:  # its files hold another result now
                if result.labels_file in gone:
                    result.labels_file = None
                if gone.intersection(result.outputs.values()):
                    result.outputs, result.files_replaced = {}, True
            for *_, result, paths, table in written:
                result.table = table  # (its tracks as written, followed across those exported)
                result.outputs.update(paths)
                result.labels_file = paths["labels"]  # the same labels: may be parked now
                result.tracks_changed = result.measured_anew = False
                files += list(paths.values())
            self.log.emit("info", f"Exported {len(files)} files to {out_dir}")
            for problem in unread:
                self.log.emit("warning", problem)
            tables_of_all = [n for n in ("cells.csv", "images.csv") if (out_dir / n).is_file()]
            if tables_of_all and not into_run and not combined:  # an Export all's, not a run's
                self.log.emit(
                    "warning",
                    f"{out_dir}: {' and '.join(tables_of_all)} left as they were, with the "
                    "cells of an earlier Export all; Export all brings them up to date",
                )
            if into_run and followed_run and not combined:
                self.log.emit(
                    "info",
                    f"{out_dir}: the run's cells.csv, images.csv and tracks.csv still hold "
                    "the cells as they were; Export all brings them up to date",
                )
            measured = self._measured_otherwise([result for *_, result, _, _ in written])
            self.export_note = measured  # said with the export, not only in the Log
            if measured:
                self.log.emit("info", measured)
            retracked = self.unexported_tracks()
            if retracked and not combined:
                self.log.emit(
                    "info",
                    f"The tracks of {retracked} other image(s) changed with the corrections of "
                    "their time-lapse since their files were written: Export all writes them, "
                    "and tracks.csv, anew.",
                )
            self.exported.emit(files)

        def failed(exc, tb):
            self._report(
                "Export failed: " + readable_error(exc, self.engine), self._details(exc, tb)
            )

        return self._start_work(Job(work, name="export"), finished, failed, "Exporting")

    def _neighbours_relinked(self, plan: list, out_dir: Path, run) -> list[str]:
        """The names of other time points of a time-lapse of ``plan`` whose links a
        correction changed (``Result.tracks_changed``) and which the followed run in
        ``out_dir`` holds (a run's tracks.csv, or time points the window exported there one
        by one, its record ``run`` says so): their files link to the cells of ``plan``'s as
        they were."""
        followed = run is not None and bool(run.record.get("track"))
        if not (followed or (out_dir / "tracks.csv").is_file()):
            return []
        lapses = {
            sequence_key(doc, plane, result)
            for doc, plane, result, *_ in plan
            if result.sequence is not None
        }
        planned = {id(result) for _, _, result, *_ in plan}
        return [
            plane_label(doc, plane)
            for doc in self.documents
            for plane, result in doc.results.items()
            if result.tracks_changed
            and id(result) not in planned
            and sequence_key(doc, plane, result) in lapses
            and files_in([result], out_dir)  # (its files in that run's folder)
        ]

    def _another_images_results(self, plan: list, out_dir: Path, run) -> str:
        """Why ``plan`` must not be exported into the run in ``out_dir``, in words ("" where
        it may): an image it names as the run named another file's (``other/b.png`` into the
        folder of a run of ``img4/b.png``), whose cells would take that image's place in the
        run's files and tables (*Open results* then drew them over that image). An image
        whose cells came from that folder (its results opened, the images moved since) is
        the run's own. ``run``: its record (None: none there, or one that cannot be read)."""
        if run is None:
            return ""
        for doc, _, result, _, named_as in plan:
            mine = files_in(undo_chain(result), out_dir)  # its cells came from that folder
            if run.of_other_files({named_as: doc.path}) and not mine:
                recorded = (run.rows.get(named_as) or {}).get("Path")
                return (
                    f"{out_dir} holds the results of a run whose {named_as} is {recorded}, "
                    f"another image than {doc.path}: its cells would take that image's place "
                    "in the run's files and tables. Export into another folder."
                )
        return ""

    def _has_roi(self, plane, out_dir: Path) -> bool:
        """Whether ``out_dir`` holds a ROI set of ``plane`` (a run's, exported with *Also save
        Fiji ROIs*): replaced with the labels written, even with that unticked now, so that
        it never outlines other cells than they hold."""
        return bool(self.engine.output_paths(plane.target, out_dir, True)["roi"].is_file())

    def _made_record(self, result: Result) -> dict:
        """What made ``result`` as a run's record keeps it (engine ``recount``'s ``made``):
        the model as chosen and the engine settings it was segmented and measured with."""
        settings, (model, _), _ = self._made_with(result)
        return {"model": model, "settings": asdict(settings)}

    def _summary_row(
        self, doc: Document, plane: tuple, result: Result, name: str, image, page, count
    ) -> dict:
        """The summary.csv row of one image exported (engine ``record_export``), as a batch
        writes it: where its file is, the plane, its cells; and, its image read, what was
        read and the fingerprint of its pixels (*Open results* of images moved since tells
        them by it)."""
        settings = result.settings if isinstance(result.settings, dict) else {}
        diameter = settings.get("diameter_px")
        n, area = count
        return {
            "Image": name,
            "Path": str(Path(doc.path).absolute()),
            "Page": "" if page is None else page,
            "Channel": plane[1],
            "Status": "done",
            "Cells": n,
            "MeanArea_px": "" if area != area else f"{area:.2f}",
            "Diameter_px": f"{diameter:.1f}" if isinstance(diameter, (int, float)) else "",
            "Read": image.description if image is not None else "",
            "Digest": self.engine.pixels_digest(image.pixels) if image is not None else "",
            "Note": "exported from the window",
        }

    def _model_entry(self, chosen: str) -> dict:
        """run.json's ``"model"`` of the model the window names ``chosen`` (a name or a
        folder), as a batch records it; by the name alone where it cannot be found now."""
        try:
            info = self.engine.model_info(chosen)
        except self.engine.ModelError:
            return {"name": str(chosen), "path": "", "description": ""}
        return {"name": info.name, "path": str(info.path), "description": info.description}

    def _replaced_results(self, plan: list, replaced: set) -> list[Result]:
        """The results not exported now whose files an export ``plan`` replaces (``replaced``):
        one that Undo goes back to, exported into the same folder before the correction
        exported now, or another image's. Their labels are read now, while the files still
        hold them (parked, they would be read back from files holding the new ones); once
        the export is done their files are no longer theirs (unsaved again: quitting asks)."""
        if not replaced:
            return []
        exporting = {id(result) for _, _, result, *_ in plan}
        stale = [
            r
            for doc in self.documents
            for shown in doc.results.values()
            for r in undo_chain(shown)
            if id(r) not in exporting
            and (r.labels_file in replaced or replaced.intersection(r.outputs.values()))
        ]
        for r in stale:
            if r.labels is None and r.labels_file is not None:
                try:
                    r.labels = self.engine.read_labels(r.labels_file)
                except (OSError, ValueError) as exc:
                    self.log.emit("warning", f"{r.labels_file}: {exc}")
        return stale

    def _measured_otherwise(self, results: list) -> str:
        """Where some of ``results`` were measured with another pixel size or neighbour
        distance than the settings give now (changed after segmenting): what the export
        wrote, and how to measure them so; else ""."""
        now = self._measuring()
        otherwise = sum(
            1
            for r in results
            if isinstance(r.settings, dict) and self._measuring(r.settings) != now
        )
        if not otherwise:
            return ""
        return (
            f"{otherwise} of the {len(results)} image(s) exported were measured with another "
            "pixel size, neighbours or ring than the settings give now "
            f"({measured_with(**now)}): their "
            "files keep the measurements they were made with. Image > Measure the cells again "
            "measures them so, their outlines as they are."
        )

    def _time_lapses(self, plan: list) -> list:
        """The time-lapses whose cells were followed among the planes to export
        (:func:`~.state.time_lapses`): [(name, [(time point, result, the name its files go
        by)])], each in time order."""
        found = time_lapses([(doc, plane, result) for doc, plane, result, *_ in plan])
        names = {id(result): named_as for *_, result, _, named_as in plan}
        return [
            (key[0], [(t, r, names[id(r)]) for t, (_, _, r) in sorted(by_time.items())])
            for key, by_time in found.items()
        ]

    def has_unsaved_results(self) -> bool:
        return any(
            not r.outputs or r.tracks_changed or r.measured_anew
            for d in self.documents
            for r in d.results.values()
        )


def _run_tables_kept(run, out_dir: Path) -> str:
    """Why one image exported into a folder cannot bring the run's cells.csv and images.csv
    there up to date (:func:`~cellprop.engine.run_tables` says what they would hold), in
    words; "" where it can. They are left as they were rather than lose a row."""
    if run.tables is None:
        return f"{out_dir / 'run.json'} is missing or cannot be read, so which images they hold cannot be told"
    if run.new:
        return f"{run.new[0]} is not one of the run's images"
    if run.unread:
        more = f" and {len(run.unread) - 1} more" if len(run.unread) > 1 else ""
        return f"the table of {run.unread[0]}{more} could not be read"
    return ""
