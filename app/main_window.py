"""The main window: puts the panels together and wires them to the controller.

No decisions are taken here beyond asking the user (through :class:`~.dialogs.Dialogs`, which tests
replace); everything else is a controller call or a controller signal shown on screen.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import cellprop

from . import render
from .controller import AppController
from .dialogs import Dialogs
from .histogram import HistogramView
from .icon import app_icon
from .menus import build_actions
from .messages import count_cells, counted, first_three, plane_label
from .panels import (
    DisplayPanel,
    DocumentList,
    ErrorBanner,
    LogPanel,
    OverlayPanel,
    SettingsPanel,
    WelcomeView,
    show_fraction,
)
from .table import CELL_BEFORE, CellTableView
from .timecourse import TimeCourseView
from .viewer import ImageViewer
from .window_display import DisplayWindowMixin
from .window_results import ResultsWindowMixin
from .window_tracks import TracksWindowMixin
from .window_training import TrainingWindowMixin


def sample_images() -> list:
    """The example images shipped in cellprop.resources.samples (may be empty)."""
    try:
        import cellprop.resources as resources
    except ImportError:
        return []
    folder = Path(resources.__file__).parent / "samples"
    suffixes = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"}
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in suffixes)


def _row(*widgets: QWidget) -> QWidget:
    """The widgets side by side, without margins (a group in the status bar)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row


class MainWindow(
    DisplayWindowMixin, ResultsWindowMixin, TrainingWindowMixin, TracksWindowMixin, QMainWindow
):
    def __init__(self, controller: AppController | None = None, dialogs=None):
        super().__init__()
        self.controller = controller if controller is not None else AppController()
        self.dialogs = dialogs if dialogs is not None else Dialogs(self)
        self._contrast = (0.0, 255.0)
        # (file, channel) whose black and white levels the user set by hand: kept on its
        # other pages; automatic levels follow each page
        self._levels_set_for: tuple | None = None
        self._centre_on_selection = False
        self._bar_wanted: tuple | None = None  # (image, plane, bar) whose cells to select
        # (image, plane, cell) waiting for a click on the cell it came from (Link to the cell
        # before), and the one to select once its image is shown again
        self._linking: tuple | None = None
        self._cell_wanted: tuple | None = None
        self._coloured_by: tuple | None = None  # what the cells shown are coloured by
        # the channel in colour: its levels per (file, channel), set on the first page it is
        # shown on and kept for the others (its brightness then compares over time), and how
        # much brighter than them it is drawn
        self._colour_levels: dict = {}
        self._colour_gain = 1.0
        self.setWindowTitle("cellprop")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._build_central()
        self._build_docks()
        self._build_status_bar()
        build_actions(self)
        self._escape_key = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._escape)
        self._escape_key.setEnabled(False)  # while work runs (_set_busy)
        self.scale_bar_action.setChecked(self.controller.store.flag("scale_bar"))
        self._connect()
        self._restore_state()
        self._set_busy(False)
        QTimer.singleShot(0, self.controller.load_model)

    # ------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        self.welcome = WelcomeView(has_samples=bool(sample_images()))
        self.viewer = ImageViewer()
        self.banner = ErrorBanner()
        viewer_page = QWidget()
        layout = QVBoxLayout(viewer_page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(self.viewer, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(viewer_page)
        self.setCentralWidget(self.stack)

    def _build_docks(self) -> None:
        self.documents = DocumentList(self.controller)
        self.images_dock = self._dock(
            "Images", self.documents, Qt.DockWidgetArea.LeftDockWidgetArea
        )

        self.settings_panel = SettingsPanel(
            self.controller,
            choose_folder=lambda title, start: self.dialogs.choose_folder(title, start),
        )
        self.overlay_panel = OverlayPanel(self.controller)
        self.display_panel = DisplayPanel()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.settings_panel)
        side_layout.addWidget(self.overlay_panel)
        side_layout.addWidget(self.display_panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(350)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_dock = self._dock("Settings", scroll, Qt.DockWidgetArea.RightDockWidgetArea)

        self.table = CellTableView()
        # Ctrl+C on the image copies the rows of the cells chosen there, as on the table
        self.viewer.addAction(self.table.copy_action)
        self.cells_summary = QLabel("No cells yet: open an image and press Segment.")
        cells = QWidget()
        cells_layout = QVBoxLayout(cells)
        cells_layout.setContentsMargins(4, 4, 4, 4)
        cells_layout.addWidget(self.cells_summary)
        cells_layout.addWidget(self.table, 1)
        self.log_panel = LogPanel()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(cells, "Cells")
        self.histogram = HistogramView()
        self.bottom_tabs.addTab(self.histogram, "Distribution")
        self.time_course = TimeCourseView()
        self.bottom_tabs.addTab(self.time_course, "Over time")
        self.bottom_tabs.addTab(self.log_panel, "Log")
        self.bottom_dock = self._dock(
            "Measurements", self.bottom_tabs, Qt.DockWidgetArea.BottomDockWidgetArea
        )

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.pixel_info = QLabel()
        self.pixel_info.setMinimumWidth(320)
        self.progress_text = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setRange(0, 1000)
        # a batch's progress drawn at most ten times a second (the bar repaints at once, 1-3 ms
        # each: a folder of thousands of images kept or failing fast spent seconds on it); the
        # last figure is drawn when the timer ends
        self._batch_figures: tuple | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(100)
        self._progress_timer.timeout.connect(self._batch_progress_due)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the work in progress. Finished images are kept.")
        self.zoom_label = QLabel()
        bar.addWidget(self.pixel_info, 1)
        busy = _row(self.progress_text, self.progress, self.cancel_button)
        bar.addPermanentWidget(busy)
        # a model being trained: its own progress, since the window stays usable meanwhile
        self.training_text = QLabel()
        self.training_progress = QProgressBar()
        self.training_progress.setMaximumWidth(160)
        self.training_progress.setRange(0, 1000)
        self.stop_training_button = QPushButton("Stop training")
        self.stop_training_button.setToolTip(
            "Stop the training; the epochs done so far are kept (cellprop-train --resume)"
        )
        training = _row(self.training_text, self.training_progress, self.stop_training_button)
        training.hide()
        bar.addPermanentWidget(training)
        self.training_widgets = training
        bar.addPermanentWidget(self.zoom_label)
        self.busy_widgets = busy

    def _connect(self) -> None:
        c = self.controller
        c.documents_added.connect(lambda *_: self.stack.setCurrentIndex(1))
        c.current_changed.connect(self._current_changed)
        c.image_ready.connect(self._image_ready)
        c.result_ready.connect(self._result_ready)
        c.document_changed.connect(self._document_changed)
        c.busy_changed.connect(self._set_busy)
        c.progress.connect(self._progress)
        c.batch_started.connect(self._batch_started)
        c.batch_progress.connect(self._batch_progress)
        c.batch_finished.connect(self._batch_finished)
        c.folder_opened.connect(
            lambda folder, n: QTimer.singleShot(0, lambda: self.offer_batch(folder, n))
        )
        c.images_missing.connect(
            lambda folder, gone: QTimer.singleShot(0, lambda: self.find_moved_images(folder, gone))
        )
        c.log.connect(self.log_panel.add)
        for note in c.store.set_aside:  # the settings file edited by hand, say
            self.log_panel.add("warning", f"Setting not used: {note}")
        c.hint.connect(lambda message: self.banner.show_message(message, "hint"))
        c.model_changed.connect(self._model_changed)
        c.error.connect(self._show_error)
        c.selection_changed.connect(self._selection_changed)
        c.overlays_changed.connect(self._overlays_changed)
        self._overlays_changed(c.overlays)
        c.exported.connect(self._exported)
        c.marks_changed.connect(self._marks_changed)
        c.training_progress.connect(self._training_progress)
        c.training_finished.connect(self._training_finished)
        self.stop_training_button.clicked.connect(c.stop_training)
        reason = c.training_unavailable()
        if reason:
            self.train_action.setEnabled(False)
            self.train_action.setToolTip(reason)
            self.train_action.setStatusTip(reason)
        self.viewer.apply_overlays(c.overlays)
        self.viewer.mouse_moved.connect(
            lambda x, y: self.pixel_info.setText(c.describe_pixel(x, y))
        )
        self.viewer.pixel_clicked.connect(self._viewer_clicked)
        self.viewer.pixel_ctrl_clicked.connect(self._viewer_ctrl_clicked)
        self.viewer.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.table.cell_clicked.connect(self._row_clicked)
        self.table.cells_selected.connect(self.controller.select_cells)
        self.table.cell_before_edited.connect(self.controller.link_cell)
        self.table.set_hidden_columns(c.store.hidden_columns())  # as the user left them
        self.table.hidden_changed.connect(c.store.set_hidden_columns)
        self.histogram.cells_chosen.connect(
            lambda cells, adding: c.select_cells([*c.selected_cells, *cells] if adding else cells)
        )
        self.histogram.set_pool_source(
            lambda: [
                ((d, plane), plane_label(d, plane), r.table)
                for d in c.documents
                for plane, r in d.results.items()
                if r.table is not None
            ]
        )
        self.histogram.image_wanted.connect(self._show_bar_in)
        self.time_course.page_wanted.connect(c.show_time_point)
        self.histogram.colouring.connect(self._colour_cells)
        self.histogram.colour_cells.toggled.connect(
            lambda on: on and c.set_overlay("fills", visible=True)
        )
        c.documents_removed.connect(lambda _: self.histogram.pool_changed())
        self.display_panel.contrast_changed.connect(self._set_contrast)
        self.display_panel.auto_contrast_requested.connect(self._auto_contrast)
        self.display_panel.plane_changed.connect(c.set_plane)
        self.display_panel.colour_channel_changed.connect(c.set_colour_channel)
        self.display_panel.colour_changed.connect(
            lambda name: self._show_colour_channel(c.colour_pixels, render.CHANNEL_COLOURS[name])
        )
        self.display_panel.colour_gain_changed.connect(self._colour_gain_changed)
        c.colour_ready.connect(self._show_colour_channel)
        c.settings_changed.connect(lambda _: self._draw_scale_bar())  # a pixel size typed
        self.welcome.open_files.connect(self.ask_open_files)
        self.welcome.open_folder.connect(self.ask_open_folder)
        self.welcome.open_sample.connect(lambda: self.open_paths(sample_images()[:1]))

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths) -> None:
        """Open images and folders; a table of cell centres among them (Fiji's Results.csv,
        a training set's points.csv) is used for the images open (:meth:`use_points_file`)."""
        from cellprop.engine.io import POINTS_SUFFIXES  # (loaded: the images are read so)

        paths = [Path(p) for p in paths]
        tables = [p for p in paths if p.is_file() and p.suffix.lower() in POINTS_SUFFIXES]
        others = [p for p in paths if p not in tables]
        if others:
            c = self.controller
            c.open_paths(others)
            # what opened: a file, a folder with images, a run's folder (not one without)
            c.store.add_recent(
                [
                    p
                    for p in others
                    if p.is_file()
                    or (p.is_dir() and (c.images_found_in(p) or c.earlier_run(p) is not None))
                ]
            )
        for table in tables:
            self.use_points_file(table)

    def use_points_file(self, path: Path) -> None:
        """A points file dropped on the window: outline the cells at its points in the image
        shown (*Outline cells at points*) or mark them for training (*Open marked centres*),
        as the user chooses."""
        c = self.controller
        if c.current is None:
            self._show_error(
                f"{path.name} is a table of cell centres, not an image: open the images it "
                "is for first, then drop it again."
            )
            return
        doc = c.current
        if doc.image is None and not doc.error:  # dropped with its image, still being read

            def ready(index: int) -> None:
                c.image_ready.disconnect(ready)
                if c.current is doc:
                    self.use_points_file(path)

            c.image_ready.connect(ready)
            return
        outline = f"Outline the cells at its points in {doc.name}"
        mark = "Mark its centres for training"
        answer = self.dialogs.choose(
            "A table of cell centres",
            f"{path.name} is a table of cell centres, not an image. What should it do?",
            [outline, mark],
        )
        if answer == outline:
            self.banner.hide()
            c.outline_points(path)
        elif answer == mark:
            c.open_marks(path, self._confirm_marks_replaced)

    def _fill_recent_menu(self) -> None:
        """File > Open recent: an item per entry, the latest first, and one to clear them."""
        menu = self.recent_menu
        menu.clear()
        entries = self.controller.store.recent()
        for k, entry in enumerate(entries):
            first = Path(entry[0])
            label = first.name + (f" and {len(entry) - 1} more" if len(entry) > 1 else "")
            if os.path.isfile(first / "run.json"):  # (False where it cannot be reached)
                label += " (results)"
            action = menu.addAction(f"&{(k + 1) % 10}  {label}  —  {first.parent}")
            action.setToolTip("\n".join(entry[:10]) + ("\n…" if len(entry) > 10 else ""))
            action.triggered.connect(lambda _=False, e=entry: self.open_recent(e))
        if not entries:
            menu.addAction("Nothing opened yet").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear the list", self.controller.store.forget_recent)
        clear.setEnabled(bool(entries))

    def close_images(self, indices) -> bool:
        """Close images from the list, asking first where that loses work not saved."""
        c = self.controller
        indices = [i for i in indices if 0 <= i < len(c.documents)]
        if not indices:
            return False
        unsaved = c.unsaved_work(indices)
        if unsaved and not self.dialogs.ask(
            "Close without saving?",
            f"Closing loses the {unsaved}.\n\nClose anyway?",
        ):
            return False
        if not c.close_images(indices):
            return False
        if not c.documents:  # back to the start: nothing to show
            self.stack.setCurrentIndex(0)
            self.viewer.set_image(None, 0.0, 1.0)
            self.viewer.set_result(None)
            self.viewer.set_marks([])
            self.table.set_table(None)
            self.histogram.set_table(None)
            self.time_course.set_time_lapse({}, 1, -1, True)
            self.cells_summary.setText("")
            self.setWindowTitle("cellprop")
            self.banner.hide()
        self._set_busy(c.busy)
        return True

    def open_recent(self, entry: list) -> None:
        """Open an entry of File > Open recent again: what of it is still there, saying what
        is not (an entry with nothing left leaves the list)."""
        there = [p for p in entry if os.path.exists(p)]  # (unreachable: as gone)
        gone = [p for p in entry if p not in there]
        if gone:
            more = f" (and {len(gone) - 1} more of that entry)" if len(gone) > 1 else ""
            self._show_error(f"{gone[0]} is no longer there{more}.")
        self.controller.store.forget_recent(entry)
        if there:
            self.open_paths(there)

    def ask_open_files(self) -> None:
        files = self.dialogs.choose_files(self.controller.store.folder("open"))
        if files:
            self.controller.store.set_folder("open", str(Path(files[0]).parent))
            self.open_paths(files)

    def ask_open_folder(self) -> None:
        folder = self.dialogs.choose_folder(
            "Open a folder of images", self.controller.store.folder("open")
        )
        if folder:
            self.controller.store.set_folder("open", folder)
            self.open_paths([folder])

    def ask_open_results(self) -> None:
        c = self.controller
        folder = self.dialogs.choose_folder(
            "Open the results of an earlier run",
            c.store.folder("batch_results") or c.store.folder("batch_parent"),
        )
        if folder:
            c.open_results(folder)
            if c.earlier_run(folder) is not None:  # a run's folder (else it says why not)
                c.store.add_recent([folder])

    def find_moved_images(self, folder: str, gone: list) -> None:
        """Results opened whose images are no longer where the run read them (an
        experiment's folder moved or copied to another disk): asks where they are now, and
        opens the results again with the images found there (by their file names)."""
        c = self.controller
        n = len(gone)
        folders = list(dict.fromkeys(str(Path(p).parent) for p in gone))
        where = first_three(folders)
        question = (
            f"{counted(n, 'image')} of the results in {folder} "
            f"{'are' if n != 1 else 'is'} no longer where the run read "
            f"{'them' if n != 1 else 'it'} ({where}). Find the folder that holds "
            f"{'them' if n != 1 else 'it'} now? (Images of several folders: the folder "
            "that holds those folders.)"
        )
        if not self.dialogs.ask("Images moved", question):
            return
        chosen = self.dialogs.choose_folder(
            f"Where are the images of {Path(folder).name} now?", c.store.folder("open")
        )
        if chosen:
            c.open_results(folder, images=chosen)

    def dragEnterEvent(self, event):  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ------------------------------------------------------------------ running
    def run_current(self) -> None:
        doc = self.controller.current
        result = doc.result if doc is not None else None
        if result is not None and result.unsaved_edits:
            if result.edits:
                why = (
                    f"You corrected the cells of {doc.name} ({result.edits} corrections) and "
                    "have not exported them."
                )
            else:
                why = (
                    f"The cells of {doc.name} are in no file now (their files were replaced "
                    "since) and have not been exported."
                )
            if not self.dialogs.ask(
                "Segment again?",
                f"{why}\n\nSegmenting again replaces them with the network's cells. Segment again?",
            ):
                return
        self.banner.hide()
        self.controller.run_current()

    def _set_busy(self, busy: bool) -> None:
        if not busy and getattr(self, "_waiting_offers", None):
            QTimer.singleShot(0, self._offer_waiting)  # a folder dropped meanwhile
        has_docs = bool(self.controller.documents)
        self.run_action.setEnabled(not busy and has_docs)
        self.batch_action.setEnabled(not busy and has_docs)
        self.suggest_action.setEnabled(not busy and has_docs)
        self.estimate_action.setEnabled(not busy and has_docs)
        current = self.controller.current
        self.export_action.setEnabled(
            not busy and current is not None and current.result is not None
        )
        # not looked for while work runs (a batch changes a document per image: thousands of
        # documents walked thousands of times), when both actions are off anyway
        segmented = not busy and any(d.result is not None for d in self.controller.documents)
        self.export_all_action.setEnabled(not busy and segmented)
        self.measure_again_action.setEnabled(not busy and segmented)
        self.cancel_action.setEnabled(busy)
        self._escape_key.setEnabled(busy)  # (else a box, the table, keyPressEvent take Esc)
        self.close_image_action.setEnabled(not busy and current is not None)
        self.close_all_action.setEnabled(not busy and has_docs)
        if not busy:
            self.viewer.clear_pending()  # the clicked cells are outlined (or said not to be)
        self._update_correction_actions()
        self.busy_widgets.setVisible(busy)
        if not busy:
            self.progress_text.setText("")
            # once this has run: it may start work, which says so through here again
            QTimer.singleShot(0, self._prepare_if_adding)

    def ask_outline_points(self) -> None:
        doc = self.controller.current
        if doc is None:
            self._show_error("Open an image first.")
            return
        start = self.controller.store.folder("points") or str(doc.path.parent)
        path = self.dialogs.choose_points_file(start)
        if path:
            self.controller.store.set_folder("points", str(Path(path).parent))
            self.banner.hide()
            self.controller.outline_points(path)

    def _update_correction_actions(self) -> None:
        c = self.controller
        current = c.current
        self.next_page_action.setEnabled(c.can_step_page(1))
        self.previous_page_action.setEnabled(c.can_step_page(-1))
        self.points_action.setEnabled(not c.busy and current is not None)
        self.save_view_action.setEnabled(current is not None and current.image is not None)
        can = c.can_correct()
        self.add_cells_action.setEnabled(can)
        if not can and self.add_cells_action.isChecked() and not c.busy:
            self.add_cells_action.setChecked(False)  # another image, or no result any more
            self._add_mode_toggled(False)
        self.remove_cell_action.setEnabled(can and c.selected_cell > 0)
        self.link_action.setEnabled(
            not c.busy and len(c.selected_cells) == 1 and c.links_mendable()
        )
        several = len(c.selected_cells) > 1
        self.remove_cell_action.setText(
            f"Remove {len(c.selected_cells)} selected cells" if several else "Remove selected cell"
        )
        self.remove_cell_action.setIconText("Remove cells" if several else "Remove cell")
        result = c.current.result if c.current is not None else None
        marking = self.mark_action.isChecked()
        # The next image still being read is no reason to stop: marking image after image,
        # the mode went off at each new one, and the clicks on it selected cells instead.
        # (a page or channel of its file too: the one shown until the next is read)
        loading = current is not None and not current.error and not c.can_mark()
        if not c.can_mark() and marking and not loading:
            self._mark_mode_toggled(False)  # nothing shown to mark
            marking = False
        self.mark_action.setEnabled(c.can_mark() or marking)
        self.mark_detected_action.setEnabled(c.can_mark() and result is not None)
        self.clear_marks_action.setEnabled(bool(c.marks()))
        self.save_marks_action.setEnabled(not c.busy)
        if marking:
            plane = current.plane if current is not None else None
            self.undo_action.setText("Undo mark")
            self.undo_action.setEnabled(bool(current and current.marks_undo.get(plane)))
            self.redo_action.setText("Redo mark")
            self.redo_action.setEnabled(bool(current and current.marks_redo.get(plane)))
        else:
            self.undo_action.setText("Undo correction")
            self.undo_action.setEnabled(
                not c.busy and result is not None and result.previous is not None
            )
            self.redo_action.setText("Redo correction")
            self.redo_action.setEnabled(
                not c.busy and result is not None and result.undone is not None
            )

    def _undo(self) -> None:
        if self.mark_action.isChecked():
            self.controller.undo_mark()
        else:
            self.controller.undo_correction()

    def _redo(self) -> None:
        if self.mark_action.isChecked():
            self.controller.redo_mark()
        else:
            self.controller.redo_correction()

    def _click_mode(self, action: QAction, on: bool, other: QAction, other_off) -> None:
        """Turn one of the two click modes (add cells, mark centres) on or off; turning one on
        turns the other off. The cursor is a cross while either is on."""
        if on and other.isChecked():
            other_off(False)
        action.setChecked(on)
        self.viewer.viewport().setCursor(
            Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor
        )

    def _add_mode_toggled(self, on: bool) -> None:
        on = bool(on) and self.controller.can_correct()
        self._click_mode(self.add_cells_action, on, self.mark_action, self._mark_mode_toggled)
        if on:
            self.statusBar().showMessage(
                "Click the centre of each cell to add; A or Esc when done", 0
            )
            # cells a batch or Open results gave: compute now what the first click reuses
            self.controller.prepare_corrections()
        else:
            self.statusBar().clearMessage()

    def _progress(self, text: str, fraction: float) -> None:
        if self.controller.in_batch:  # the batch bar counts images instead
            return
        self.progress_text.setText(text)
        show_fraction(self.progress, fraction)

    # ------------------------------------------------------------------ showing
    def _current_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(1)
        self._set_busy(self.controller.busy)
        doc = self.controller.current
        self.setWindowTitle(f"{doc.name} — cellprop" if doc else "cellprop")
        self.pixel_info.setText("")
        if doc is not None and doc.image is None:  # never show another file's pixels
            self.viewer.set_image(None, 0.0, 1.0)
            self.viewer.set_marks([])
            self.table.set_table(None)
            self.histogram.set_table(None)
            self.time_course.set_time_lapse({}, 1, -1, True)
            self.cells_summary.setText("")
        if doc is not None and doc.error and doc.image is None:
            self._show_error(doc.error)
            self._unread_said = self.banner.text.text()  # (it goes once the image is read)
        else:
            self.banner.hide()

    def _model_changed(self, status) -> None:
        # A note about the previous model's fit is stale; the controller says anew if needed.
        if self.banner.isVisible() and self.banner.kind == "hint":
            self.banner.hide()

    def _image_ready(self, index: int) -> None:
        doc = self.controller.current
        if doc is None or doc.image is None:
            return
        said = getattr(self, "_unread_said", None)  # "could not be read", shown as it loaded
        if said and self.banner.isVisible() and self.banner.text.text() == said:
            self.banner.hide()  # read now (the file mended since): not true any more
        pixels = doc.image.pixels
        same_shape = self.viewer._pixels is not None and self.viewer._pixels.shape == pixels.shape
        # another page of a file whose levels the user set (a time-lapse stepped through)
        # keeps them, so that brightness compares across time points
        colour = doc.image.colour
        if self._levels_set_for != (doc.path, doc.channel):
            self._levels_set_for = None
            # a colour image as it looks (a stained section, a camera's picture); a grey one
            # stretched, as microscopy cameras use a fraction of their range
            # (a colour image's levels from its colours: a 16-bit one's grey is not as bright)
            self._contrast = (
                render.value_range(colour) if colour is not None else render.auto_contrast(pixels)
            )
        self.viewer.set_image(pixels, *self._contrast, keep_view=same_shape, colour=colour)
        shown = colour if colour is not None else pixels
        self.display_panel.set_range(*render.value_range(shown), *self._contrast)
        self.display_panel.set_planes(
            doc.image.n_pages,
            doc.image.n_channels,
            doc.page,
            doc.channel,
            self.controller.colour_channel,
            doc.image.channel_names,
        )
        self.controller.load_colour_channel()  # another channel in colour, if one is chosen
        self._draw_scale_bar()
        self._show_result(doc)
        self._show_marks()
        self._update_correction_actions()
        self._select_wanted_cell()
        self._describe_hovered()

    def _describe_hovered(self) -> None:
        """The status bar's pixel value and cell under a cursor that has not moved, for what
        is shown now (another page, channel or result): it kept the last one's."""
        hovered = self.viewer.hovered
        if hovered is not None:
            self.pixel_info.setText(self.controller.describe_pixel(*hovered))

    def _result_ready(self, index: int) -> None:
        if index == self.controller.current_index:
            doc = self.controller.current
            self._show_result(doc)
            self._describe_hovered()
            # "Saved 3 files in ..." is not true of cells corrected since: it goes (other
            # banners, a model trained, a batch finished, stay)
            saved = getattr(self, "_saved_said", None)
            shown = self.banner.isVisible() and self.banner.text.text() == saved
            if shown and doc.result is not None and not doc.result.outputs:
                self.banner.hide()

    def _document_changed(self, index: int) -> None:
        self._set_busy(self.controller.busy)
        self.histogram.pool_changed()  # its cells may have changed (a batch's image, ...)

    def _prepare_if_adding(self) -> None:
        """With *Add cells by clicking* on, the image shown gets ready for corrections (once:
        not again after Cancel stopped it)."""
        if self.add_cells_action.isChecked():
            self.controller.prepare_corrections(again=False)

    def _show_result(self, doc) -> None:
        self._prepare_if_adding()
        result = doc.result if doc is not None else None
        self.viewer.set_result(result)
        self._coloured_by = None  # drawn in their own colours again
        mendable = CELL_BEFORE if self.controller.links_mendable() else ""
        self.table.set_table(result.table if result is not None else None, mendable)
        self.histogram.set_table(
            result.table if result is not None else None, self.controller.selected_cells
        )
        time_lapse = self.controller.time_lapse()
        self.time_course.set_time_lapse(*time_lapse)
        self.time_course.set_tracks(self.controller.selected_lineage())
        wanted, self._bar_wanted = self._bar_wanted, None
        if wanted is not None and wanted[:2] == (doc, getattr(doc, "plane", None)):
            self._select_bar(wanted[2])
        paths = self._track_paths(*time_lapse[::2], self.controller.track_settings().max_gap)
        self.viewer.set_tracks(paths)
        available = {"fills", "outlines", "centres"} if result is not None else set()
        if paths:
            available.add("tracks")
        if render.ring_width(result):
            available.add("rings")
        if result is not None and result.likelihood is not None:
            available.add("likelihood")
        if result is not None and result.contribution is not None:
            available.add("contribution")
        self.overlay_panel.set_available(available)
        for name, action in self.overlay_actions.items():
            action.setEnabled(name in available)
        if result is None:
            self.cells_summary.setText("Not segmented yet: press Segment (F5).")
            return
        text = count_cells(result.n_cells)
        area_name, areas = self._area_column(result.table)
        if areas is not None and len(areas):
            suffix = area_name.removeprefix("AreaShape_Area").lstrip("_")  # "", "um2", "nm2"
            unit = (suffix[:-1].replace("um", "µm") + "²") if suffix else "px"
            text += f", median area {np.median(areas):.4g} {unit}"
        self.cells_summary.setText(
            text + ". Click a cell or a row to find it (Ctrl-click: several); click a heading "
            "to sort. Missed or false cells: Edit ▸ Add cells by clicking (A), Remove selected "
            "cell (Delete)."
        )

    @staticmethod
    def _track_paths(tables: dict, shown: int, max_gap: int) -> dict:
        """Where the cells of the time point shown, followed over time, have been at the
        time points before it (``render.track_paths`` over the segmented time points of its
        time-lapse, ``tables`` as ``AppController.time_lapse`` gives them, back to more than
        ``max_gap`` not segmented in a row: fewer are a gap its tracks go on across)."""
        consecutive: list = []
        missing = 0  # time points not segmented in a row, back from the last one taken
        while shown >= 0 and missing <= max_gap and (consecutive or shown in tables):
            consecutive.append(tables.get(shown))  # None: a time point not segmented
            missing = missing + 1 if consecutive[-1] is None else 0
            shown -= 1
        while consecutive and consecutive[-1] is None:
            consecutive.pop()
        return render.track_paths(consecutive[::-1], max_gap)

    @staticmethod
    def _area_column(table) -> tuple:
        columns = getattr(table, "columns", None) or {}
        for name in columns:
            if name.startswith("AreaShape_Area") or name == "area":
                return name, np.asarray(columns[name], float)
        return "", None

    def _viewer_clicked(self, x: int, y: int) -> None:
        self._centre_on_selection = False
        if self._link_clicked(x, y):
            return
        if self.mark_action.isChecked():
            # a click within 6 screen pixels of a mark takes it away
            self.controller.mark_at(x, y, radius=max(1.5, 6.0 / max(self.viewer.zoom, 1e-6)))
            return
        if self.add_cells_action.isChecked():
            if self.controller.add_cell_at(x, y):
                self.viewer.mark_pending(x, y)
            return
        self.controller.select_cell_at(x, y)

    def _viewer_ctrl_clicked(self, x: int, y: int) -> None:
        """Ctrl-click (or Shift-click): a cell added to the selection, or taken out of it; in
        the click modes, a click like any other."""
        if self.mark_action.isChecked() or self.add_cells_action.isChecked() or self._linking:
            self._viewer_clicked(x, y)
            return
        self._centre_on_selection = False
        self.controller.toggle_cell_at(x, y)

    def _row_clicked(self, label: int) -> None:
        """A row clicked: the view goes to its cell (the table has told the controller what
        is selected, a Ctrl-click's whole selection included)."""
        if label in self.controller.selected_cells:
            self._centre_on_selection = True
            self._selection_changed(label)

    def _show_bar_in(self, key, bar: int) -> None:
        """A bar of the pooled Distribution double-clicked: show the image with most cells
        in it (``key``: the image and plane), those cells selected."""
        doc, plane = key
        if doc is self.controller.current and plane == doc.plane and doc.image is not None:
            self._select_bar(bar)
        else:
            self._bar_wanted = (doc, plane, bar)
            # the bar's cells, not those of the tracks selected here carried over there
            self.controller.select_cells(())
            self.controller.show_plane_of(doc, plane)

    def _select_bar(self, bar: int) -> None:
        """Select the image shown's cells in a bar of the Distribution; the view goes there."""
        self._centre_on_selection = True
        self.controller.select_cells(self.histogram.cells_in_bin(bar))

    def _selection_changed(self, label: int) -> None:
        self._update_correction_actions()
        doc = self.controller.current
        result = doc.result if doc is not None else None
        centre = None
        if self._centre_on_selection and result is not None and 0 < label <= len(result.centres):
            centre = tuple(result.centres[label - 1])
        self._centre_on_selection = False
        self.viewer.show_selection(self.controller.selected_cells, centre)
        self.table.select_labels(self.controller.selected_cells)
        self.histogram.set_selected(self.controller.selected_cells)
        self.time_course.set_tracks(self.controller.selected_lineage())

    def _show_error(self, message: str, action=None) -> None:
        if self.controller.documents:
            self.stack.setCurrentIndex(1)
        self.banner.show_message(message, action=action)
        if self.stack.currentIndex() == 0:
            self.statusBar().showMessage(message, 15000)

    # ------------------------------------------------------------------ about, closing
    def about_text(self) -> str:
        return (
            f"<h3>cellprop {html.escape(cellprop.__version__)}</h3>"
            "<p>Finds and outlines every cell in microscopy images, from a network "
            "trained on clicked cell centres only.</p>"
            "<p>Licence: GPL-3.0-or-later.</p>"
            f"<p>If cellprop helps your research, please cite:<br>"
            f"<i>{html.escape(cellprop.CITATION)}</i></p>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About cellprop", self.about_text())

    def shortcuts_text(self) -> str:
        """Every keyboard shortcut of the window, from its actions (so never out of date),
        with the keys the viewer and the click modes take too."""
        rows = []
        for action in self.actions():
            native = QKeySequence.SequenceFormat.NativeText
            keys = " or ".join(k.toString(native) for k in action.shortcuts() if not k.isEmpty())
            if keys:
                rows.append((action.text().replace("&", ""), keys))
        rows += [
            ("Zoom", "Mouse wheel"),
            ("Move the image", "Drag"),
            (
                "Stop adding cells, marking centres or linking; else let go of the selected "
                "cells; else stop the work in progress",
                "Esc",
            ),
            ("Copy the selected rows of the cells table", "Ctrl+C"),
            ("Select several cells (then Delete removes them together)", "Ctrl+click"),
        ]
        body = "".join(
            f"<tr><td>{html.escape(what)}</td><td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>"
            for what, keys in rows
        )
        return f"<table>{body}</table>"

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_text())

    def _restore_state(self) -> None:
        geometry, state = self.controller.store.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is None or not self.restoreState(state):
            # first start: most of the window for the image
            self.resizeDocks([self.bottom_dock], [220], Qt.Orientation.Vertical)
            self.resizeDocks(
                [self.images_dock, self.settings_dock], [230, 340], Qt.Orientation.Horizontal
            )

    def keyPressEvent(self, event):  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape and self._escape_mode():
            return
        super().keyPressEvent(event)

    def _escape_mode(self) -> bool:
        """Esc: end linking, adding cells or marking, else let go of the cells selected, as
        the shortcuts list says; False where there was none of them."""
        if self._linking is not None:
            self.end_linking()
        elif self.add_cells_action.isChecked():
            self._add_mode_toggled(False)
        elif self.mark_action.isChecked():
            self._mark_mode_toggled(False)
        elif self.controller.selected_cells:
            self.controller.select_cells([])
        else:
            return False
        return True

    def _escape(self) -> None:
        """Esc while work runs: what it does otherwise first (marking is allowed during a
        batch: a reflexive Esc to end it stopped a long batch without a word), else Cancel."""
        if not self._escape_mode():
            self.cancel_action.trigger()

    def closeEvent(self, event):  # noqa: N802
        c = self.controller
        unexported = c.has_unsaved_results()
        if c.busy and not self.dialogs.ask(
            "Stop and quit?",
            "Work is still running, and some results have not been exported yet. Stop the "
            "work and quit without saving them?"
            if unexported
            else "Work is still running. Stop it and quit?",
        ):
            event.ignore()
            return
        if c.training and not self.dialogs.ask(
            "Stop training and quit?",
            "A model is being trained. Stop it and quit? (The epochs done so far are kept: "
            "cellprop-train --resume goes on with them.)",
        ):
            event.ignore()
            return
        if (
            not c.busy  # asked above
            and unexported
            and not self.dialogs.ask(
                "Quit without saving?", "Some results have not been exported yet. Quit anyway?"
            )
        ):
            event.ignore()
            return
        unsaved = c.unsaved_marks()
        if unsaved and not self.dialogs.ask(
            "Quit without saving the marks?",
            f"Cell centres marked on {unsaved} image(s) have not been saved as a training set "
            "(File > Save marked centres as a training set). Quit anyway?",
        ):
            event.ignore()
            return
        c.store.save_window_state(self.saveGeometry(), self.saveState())
        c.shutdown()
        event.accept()
