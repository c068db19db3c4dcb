"""The window's side of training a model: cell centres marked by clicking (drawn, counted),
saved or opened as a training set, and a model trained from one, its progress shown. Part of
:class:`~.main_window.MainWindow`, in a module of its own as the controller's tasks are in
theirs; what is done is the controller's."""

from __future__ import annotations

from pathlib import Path

from .messages import counted
from .panels import show_fraction
from .training_run import MODALITIES, training_folder


class TrainingWindowMixin:
    """Marking and training commands of :class:`~.main_window.MainWindow`."""

    def _mark_mode_toggled(self, on: bool) -> None:
        on = bool(on) and self.controller.can_mark()
        self._click_mode(self.mark_action, on, self.add_cells_action, self._add_mode_toggled)
        self._show_marks()
        self._update_correction_actions()

    def _marks_changed(self, index: int) -> None:
        if index == self.controller.current_index:
            self._show_marks()
            self._update_correction_actions()

    def _show_marks(self) -> None:
        """The current image's marks, drawn whenever it has some (marking or not), and the
        count in the status bar while marking."""
        marks = self.controller.marks()
        self.viewer.set_marks(marks)
        if self.mark_action.isChecked():
            images = sum(bool(m) for d in self.controller.documents for m in d.marks.values())
            self.statusBar().showMessage(
                f"{counted(len(marks), 'centre')} marked on this image "
                f"({counted(images, 'image')} marked). Click the centre of every cell; click a "
                "mark to take it away; M or Esc when done",
                0,
            )
        elif not self.add_cells_action.isChecked():
            self.statusBar().clearMessage()

    def ask_save_training_set(self) -> None:
        c = self.controller
        start = c.store.folder("training") or (
            str(c.current.path.parent) if c.current is not None else str(Path.home())
        )
        folder = self.dialogs.choose_folder("Save the training set in…", start)
        if folder:
            c.store.set_folder("training", folder)
            c.save_training_set(folder, self._confirm_overwrite)

    def ask_open_marks(self) -> None:
        c = self.controller
        if not c.documents:
            self._show_error("Open the images first, then their marked centres.")
            return
        start = c.store.folder("training") or str(c.documents[0].path.parent)
        path = self.dialogs.choose_points_file(start)
        if path:
            c.store.set_folder("training", str(Path(path).parent))
            c.open_marks(path, self._confirm_marks_replaced)

    def _confirm_marks_replaced(self, question: str) -> bool:
        return self.dialogs.ask("Replace the centres marked?", question)

    def ask_train_model(self) -> None:
        c = self.controller
        reason = c.training_unavailable()
        if reason:
            self._show_error(reason)
            return
        if c.training:
            self._show_error("A model is being trained already; wait for it or stop it first.")
            return
        start = c.store.folder("training") or str(Path.home())
        dataset = self.dialogs.choose_folder("Train on the training set in…", start)
        if not dataset:
            return
        if not (Path(dataset) / "images").is_dir():
            self._show_error(
                f"{dataset} is not a training set (it has no images/ folder): save marked "
                "centres as a training set first (File menu)"
            )
            return
        chosen = self.dialogs.choose_folder("Save the new model in…", str(Path(dataset).parent))
        if not chosen:
            return
        out = training_folder(Path(chosen), Path(dataset))
        replace = out.is_dir() and any(out.iterdir())  # cellprop-train refuses it unasked
        held = (
            "a model"
            if (out / "model.json").is_file()
            else "a training that was stopped"
            if (out / "checkpoints" / "checkpoint.pt").is_file()
            else "files (an earlier training?)"
        )
        if replace and not self.dialogs.ask(
            "Replace the model?", f"{out} holds {held} already. Replace it with the new one?"
        ):
            return
        # the kind of microscopy sets the new model's segmentation defaults; start from the
        # chosen model's kind
        kinds = list(MODALITIES)
        current = getattr(c.model_status, "modality", "") or "phase"
        modality = self.dialogs.choose_item(
            "Kind of microscopy",
            "The training images are:",
            kinds,
            kinds.index(current) if current in kinds else 0,
        )
        if not modality:
            return
        # the cells' size sets the network's scale: the spacing of the marks tells it where
        # cells touch, and overstates it where they are sparse (cellprop-train --cell-diameter)
        typed = c.settings.diameter
        diameter = self.dialogs.choose_number(
            "Cell diameter",
            "Typical cell diameter in the training images, in pixels.\n"
            "0: measured from the spacing of the marked centres, right where cells touch\n"
            "(fluorescence: from the bright nuclei themselves); give it where cells lie apart.",
            float(typed) if isinstance(typed, (int, float)) else 0.0,
            0.0,
            5000.0,
        )
        if diameter is None:
            return
        options = ["--cell-diameter", f"{diameter:g}"] if diameter > 0 else []
        options += ["--overwrite"] if replace else []
        start = self._ask_starting_model(modality)
        if start is None:
            return
        if start:  # a model's network adapted: cellprop-train --from runs a shorter training
            options += ["--from", start]
        c.store.set_folder("training", str(Path(dataset).parent))
        c.train_model(dataset, out, modality, options)

    def _ask_starting_model(self, modality: str) -> str | None:
        """What the training starts from: "" a new network, or a model of the images' kind
        of microscopy (its folder) whose network it adapts, the model chosen offered first;
        None: the user cancelled. No question where no model is of that kind: a network
        trained on another kind of microscopy was a worse start than a new one (README)."""
        c = self.controller
        models = list(c.available_models())
        try:  # the model chosen, a folder of its own maybe (not among those installed)
            chosen = c.engine.model_info(c.settings.model)
        except c.engine.ModelError:
            chosen = None
        if chosen is not None and all(m.path != chosen.path for m in models):
            models.append(chosen)
        models = [m for m in models if m.modality == modality and m.path]
        if not models:
            return ""
        labels = ["A new network (more marked cells, a longer run)"] + [
            f"The {m.name} model's network, adapted to these cells (fewer marked cells, a "
            "shorter run)"
            for m in models
        ]
        mine = chosen.path if chosen is not None else None
        offered = next((k for k, m in enumerate(models, start=1) if m.path == mine), 1)
        answer = self.dialogs.choose_item("Start from", "Train:", labels, offered)
        if not answer:
            return None
        k = labels.index(answer)
        return str(models[k - 1].path) if k else ""

    def _training_progress(self, text: str, fraction: float) -> None:
        self.training_widgets.show()
        self.training_text.setText(text)
        show_fraction(self.training_progress, fraction)
        self.train_action.setEnabled(False)

    def _training_finished(self, ok: bool, message: str) -> None:
        self.training_widgets.hide()
        self.train_action.setEnabled(not self.controller.training_unavailable())
        if ok:
            folder = message
            self.banner.show_message(
                f"Model trained: {folder}.",
                "done",
                ("Use this model", lambda: self.controller.update_settings(model=folder)),
            )
        elif message.startswith("training stopped"):
            self.statusBar().showMessage("Training stopped", 8000)
