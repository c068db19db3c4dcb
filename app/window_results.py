"""The window's side of getting results out: a folder batch (the questions before it, its
progress and the message at its end), exports, and a picture of the view. Part of
:class:`~.main_window.MainWindow`, in a module of its own as the controller's tasks are in
theirs; what is done is the controller's."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from .messages import counted, first_three, format_seconds


class ResultsWindowMixin:
    """Batch, export and picture commands of :class:`~.main_window.MainWindow`."""

    def offer_batch(self, folder: str, n_images: int) -> None:
        if self.controller.busy:  # asked once the work under way ends (_offer_waiting)
            self._waiting_offers = [*getattr(self, "_waiting_offers", []), (folder, n_images)]
            self.banner.show_message(
                f"{counted(n_images, 'image')} of {folder} added; "
                "processing the whole folder is "
                "offered when the work under way ends.",
                "hint",
            )
            return
        if not self.dialogs.ask(
            "Process the whole folder?",
            f"{counted(n_images, 'image')} {'was' if n_images == 1 else 'were'} found in\n"
            f"{folder}\n\n"
            "Segment all of them now and save the results?",
        ):
            return
        paths = self.controller.images_found_in(folder)
        self._start_batch(paths, Path(folder) / "cellprop-results")

    def _offer_waiting(self) -> None:
        """Offer the batches of folders dropped while other work ran, now that it ended (one
        at a time: those after a batch started wait for it)."""
        waiting = getattr(self, "_waiting_offers", [])
        while waiting and not self.controller.busy:
            folder, n_images = waiting.pop(0)
            self.offer_batch(folder, n_images)

    def ask_batch_all(self) -> None:
        paths = [d.path for d in self.controller.documents]
        if not paths:
            self._show_error("Open some images first.")
            return
        self._start_batch(paths, paths[0].parent / "cellprop-results")

    def _start_batch(self, paths: list, suggested: Path) -> None:
        self.settings_panel.take_typed()  # (a folder dropped: no command took it)
        self._model_loaded()  # (whether a run in the folder can be continued rests on it too)
        if self.controller.batch_refused():  # said before any question, not after them all
            return
        chosen = set(paths)
        docs = [d for d in self.controller.documents if d.path in chosen]
        corrected = self.controller.unexported_corrections(docs)
        replaced = self.controller.cells_in_no_file(docs)
        said = []
        if corrected:
            said.append(
                f"{corrected} of these images have cells you corrected and have not exported."
            )
        if replaced:
            said.append(
                f"{replaced} of these images show cells that are in no file now (their files "
                "were replaced since) and have not been exported."
            )
        if said and not self.dialogs.ask(
            "Replace your corrections?" if corrected else "Replace cells in no file?",
            "\n".join(said) + "\n\nProcessing them replaces those cells with the network's. Go on?",
        ):
            return
        # Beside the images (their folder's cellprop-results), unless the user keeps results
        # elsewhere: then in the folder the last batch's results went into, to make this
        # one's beside them. Never the last batch's own folder: a new folder of images saved
        # there, as it was suggested, replaced another experiment's results.
        # (A run's own folder there: kept so before this version, never offered.)
        elsewhere = Path(self.controller.store.folder("batch_parent") or suggested)
        usable = os.path.isdir(elsewhere) and not os.path.isfile(elsewhere / "run.json")
        start = elsewhere if usable else suggested
        out = self.dialogs.choose_folder("Where should the results be saved?", str(start))
        if not out:
            return
        out = Path(out)
        overwrite = resume = False
        sources = self.controller.batch_sources(paths)
        names = list(sources)
        earlier = self._earlier_run(out, names)
        other = earlier.of_other_files(sources) if earlier is not None else []
        if other:  # another experiment's images of these names: neither "these images"
            folder = Path((earlier.rows[other[0]] or {}).get("Path", "")).parent
            if not self.dialogs.ask(
                "Replace another run's results?",
                f"{out} holds the results of a run of other images: "
                f"{counted(len(other), 'image')} of the same names from {folder}, "
                f"not from {Path(sources[other[0]]).parent}.\n\n"
                "Replace them? That run's results of images of these names are lost. (No: "
                "nothing is started; choose another folder.)"
                + self._open_ones_lost(paths, names, out),
            ):
                return
            overwrite, earlier = True, None
        if earlier is not None:
            done = len(earlier.done(set(names)))
            others = len(earlier.done()) - done
            stopped = "" if earlier.finished else " It stopped before its end."
            if earlier.finished and earlier.record.get("cancelled"):  # (Cancel, or quit)
                stopped = " It was cancelled before its end."
            text = (
                f"{out} holds the results of an earlier run of these images: "
                f"{done} of {counted(len(names), 'image')} done.{stopped}"
            )
            if others:
                text += (
                    f" It also finished {counted(others, 'other image')}: continued, the run "
                    "keeps them in its tables; replaced, its tables hold only these."
                )
            text += "\n\n"
            other = self.controller.cannot_continue(earlier)
            if other:  # continuing would mix results made two ways in one folder
                text += (
                    "It was made with other settings than those chosen now ("
                    + "; ".join(other)
                    + "), so it cannot be continued.\n"
                )
                options = ["Replace"]
            else:
                follow = self.controller.settings.batch_track and not earlier.record.get("track")
                again = self.controller.follows_otherwise(earlier)
                rest = len(names) - done
                text += (
                    (
                        f"Continue: keep those and segment the other {rest}, with the same "
                        "model and settings as then"
                        if rest
                        else "Continue: keep them all, nothing segmented again"
                    )
                    + (", then follow the cells of all of them over time" if follow else "")
                    + (
                        ", then follow the cells of all of them again ("
                        + "; ".join(again)
                        + "; links mended by hand kept)"
                        if again
                        else ""
                    )
                    + ".\n"
                )
                options = ["Continue", "Replace"]
            text += "Replace: segment all of them again."
            answer = self.dialogs.choose("Continue the earlier run?", text, options)
            if not answer:
                return
            resume, overwrite = answer == "Continue", answer == "Replace"
        elif not overwrite and out.is_dir():  # (asked just above)
            replaced, own, over = self.controller.files_a_batch_replaces(paths, names, out)
            if replaced:  # (an image of the batch's written over: it fails, naming it)
                overwrite = self.dialogs.ask(
                    "Replace earlier results?",
                    self._replace_question(out, replaced, own, over)
                    + self._open_ones_lost(paths, names, out),
                )
                if not overwrite:
                    return
        beside = out == suggested.parent or out.parent == suggested.parent
        self.controller.store.set_folder("batch_parent", "" if beside else str(out.parent))
        self.controller.store.set_folder("batch_results", str(out))
        self.controller.run_batch(paths, out, overwrite=overwrite, resume=resume)

    def _model_loaded(self, seconds: float = 120.0) -> None:
        """Wait for the model chosen to be loaded (or to fail to), the window answering
        meanwhile: Continue was offered for a run made with the model before, the model
        chosen not loaded yet to tell, and then refused as made with another model."""
        if not self.controller.model_status.loading:
            return
        loop = QEventLoop()

        def changed(status) -> None:
            if not status.loading:
                loop.quit()

        self.controller.model_changed.connect(changed)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        self.statusBar().showMessage("Waiting for the model to load…")
        try:
            loop.exec()
        finally:
            self.controller.model_changed.disconnect(changed)
            self.statusBar().clearMessage()

    def _replace_question(self, out: Path, replaced: list, own: list, over: list) -> str:
        """The question before a batch replaces files in ``out`` (the controller's
        ``files_a_batch_replaces``), naming them: a folder of the user's own files (the
        images' folder) is not replaced on a word that names none."""
        names = first_three([p.name for p in replaced])
        text = f"{out} holds files this batch would replace: {names}."
        if own:
            text += (
                f"\n\n{first_three([p.name for p in own])} "
                f"{'were' if len(own) > 1 else 'was'} not written by cellprop (a mask drawn "
                "by hand, perhaps): replaced, lost."
            )
        if over:
            text += (
                f"\n\n{first_three([p.name for p in over])}, among the images to process, "
                "is where another image's results would go: that other image fails instead "
                "(its results are not saved), and the image there is kept as it is."
            )
        return text + "\n\nReplace them? (No: nothing is started; choose another folder.)"

    def _open_ones_lost(self, paths: list, names: list, out: Path) -> str:
        """What replacing the files in ``out`` would do to other open images whose cells are
        in them (another run's, an export's), in words for the question ("" where none)."""
        gone, kept = self.controller.open_images_a_batch_replaces(paths, names, out)
        text = ""
        if gone:
            text += (
                f"\n\n{counted(len(gone), 'other open image')} ({first_three(gone)}) show "
                "cells read from files there: they would show none (Segment finds them again)."
            )
        if kept:
            text += (
                f"\n\n{counted(len(kept), 'other open image')} ({first_three(kept)}) have "
                "cells from files there: those shown stay in the window, in no file (Export "
                "saves them)."
            )
        return text

    def _earlier_run(self, out: Path, names: list):
        """The record of a batch run in ``out`` that processed some of the images ``names``,
        or None (no run there, or one of other images, or a record that cannot be read)."""
        earlier = self.controller.earlier_run(out)
        if earlier is None or not set(earlier.rows) & set(names):
            return None
        return earlier

    def _batch_started(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m images")

    def _batch_progress(self, done: int, total: int, eta: float) -> None:
        self._batch_figures = (done, total, eta)
        if done >= total or not self._progress_timer.isActive():
            self._draw_batch_progress()
            self._progress_timer.start()  # the figures until it ends: drawn then

    def _batch_progress_due(self) -> None:
        if self._batch_figures is not None:  # figures came meanwhile: drawn, and the next wait
            self._draw_batch_progress()
            self._progress_timer.start()

    def _draw_batch_progress(self) -> None:
        if self._batch_figures is None:
            return
        (done, total, eta), self._batch_figures = self._batch_figures, None
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress_text.setText(
            f"Batch: {done} of {total} images — {format_seconds(eta)}"
            if done < total
            else "Batch: finishing…"
        )

    def _batch_finished(self, summary) -> None:
        self._progress_timer.stop()
        self._batch_figures = None
        self.progress.setFormat("%p%")
        self.progress.setRange(0, 1000)
        text = summary.describe()
        self.statusBar().showMessage(text, 20000)
        folder = self._open_folder_action(summary.out_dir)
        if summary.done and Path(summary.out_dir, "run.json").is_file():
            # the run's results, to open with their cells another day
            self.controller.store.add_recent([summary.out_dir])
        if summary.stopped:  # (a disk full, the folder deleted): not a run that ended
            goes_on = Path(summary.out_dir, "run.json").is_file() and (summary.done > 0)
            self._show_error(
                f"The batch stopped before its end: {summary.stopped}. {text}."
                + (
                    " Once that is mended, Process all into the same folder and Continue "
                    "goes on from there."
                    if goes_on
                    else ""
                ),
                folder,
            )
        elif summary.failed:
            names = ", ".join(Path(p).name for p, _ in summary.errors[:5])
            self._show_error(
                f"Batch finished{' (stopped by you)' * summary.cancelled}: "
                f"{summary.failed} image(s) failed ({names}). "
                "See the Log tab for details.",
                folder,
            )
        elif summary.done:
            self.banner.show_message(
                f"Batch finished: {text}.", "hint" if summary.cancelled else "done", folder
            )

    def _exported(self, files: list) -> None:
        self.statusBar().showMessage(f"Saved {len(files)} files", 8000)
        if files:
            folder = Path(files[0]).parent
            note = getattr(self.controller, "export_note", "")  # measured otherwise than now
            said = f"Saved {counted(len(files), 'file')} in {folder}." + (
                f" {note}" if note else ""
            )
            self.banner.show_message(
                said, "hint" if note else "done", self._open_folder_action(folder)
            )
            self._saved_said = said  # (a correction since makes it untrue: it goes then)

    def _open_folder_action(self, folder) -> tuple | None:
        """The banner's "Open folder" button for ``folder``, if it exists."""
        if not Path(folder).is_dir():
            return None
        return ("Open folder", lambda: self.dialogs.open_folder(str(folder)))

    def _confirm_overwrite(self, existing: list) -> bool:
        names = "\n".join(str(p.name) for p in existing[:8])
        more = f"\n… and {len(existing) - 8} more" if len(existing) > 8 else ""
        return self.dialogs.ask(
            "Replace existing files?",
            f"These files exist already in {existing[0].parent}:\n\n{names}{more}\n\nReplace them?",
        )

    def ask_export_current(self) -> None:
        doc = self.controller.current
        if doc is None or doc.result is None:
            self._show_error("Nothing to export yet: segment the image first (F5).")
            return
        out = self.dialogs.choose_folder("Save the results in…", self._export_start(doc))
        if out:
            self.controller.store.set_folder("export", out)
            self.controller.export_current(out, self._confirm_overwrite)

    def ask_export_all(self) -> None:
        docs = [d for d in self.controller.documents if d.result is not None]
        if not docs:
            self._show_error("Nothing to export yet: no image has been segmented.")
            return
        out = self.dialogs.choose_folder(
            "Save the results of all images in…", self._export_start(docs[0])
        )
        if out:
            self.controller.store.set_folder("export", out)
            self.controller.export_all(out, self._confirm_overwrite)

    def ask_save_view(self) -> None:
        """Save the image shown as it is shown (File ▸ Save the view as a picture)."""
        doc = self.controller.current
        if doc is None or doc.image is None:
            self._show_error("Open an image first.")
            return
        start = str(doc.path.with_name(f"{doc.path.stem}_view.png"))
        chosen = self.dialogs.choose_picture_file(start)
        if not chosen:
            return
        path = Path(chosen)
        if path.suffix.lower() not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
            path = path.with_name(path.name + ".png")  # a name typed without its kind
            if path.exists() and not self.dialogs.ask(
                "Replace the file?", f"{path} exists. Replace it?"
            ):
                return
        if self.viewer.picture().save(str(path)):
            self.controller.log.emit("info", f"{doc.name}: the view saved as {path}")
            self.statusBar().showMessage(f"Saved {path}", 5000)
        else:
            self._show_error(f"{path}: the picture could not be written (no permission?)")

    def _export_start(self, doc) -> str:
        """The folder an export offers: that of the run whose results it writes again (a
        batch's, or one opened: its tables brought up to date), else the last one chosen,
        else the image's (never, for a run's results, the images' own folder: dropped again,
        it would offer their labels and overlays as images). A correction's result has no
        files yet: those of the result it corrects (Undo's) say where it belongs."""
        result = getattr(doc, "result", None)
        while result is not None:
            made = getattr(result, "outputs", None) or {}
            if made.get("labels") is not None:
                return str(Path(made["labels"]).parent)
            result = getattr(result, "previous", None)
        return self.controller.store.folder("export") or str(doc.path.parent)
