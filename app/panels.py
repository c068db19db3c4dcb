"""The side panels: settings, overlays, display, the image list, the log, the welcome page.

Each panel shows state it is given and turns user input into one controller call.
Tooltips speak to biologists, not to programmers.
"""

from __future__ import annotations

import functools
import html
import time
from collections import Counter
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QValidator
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyledItemDelegate,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import render
from .dialogs import DecimalBox, IntBox
from .messages import count_cells
from .state import EXPANDED, OVERLAY_NAMES, OVERLAY_TITLES, Status

CHOOSE_FOLDER = "__choose_folder__"

#: How a measurement setting changed after segmenting reaches the cells already found.
_MEASURED_FROM_NOW = (
    "Applies to images segmented from now on; Image > Measure the cells again measures the "
    "cells of the images segmented already with it, their outlines as they are (and a "
    "folder's batch continued into its results folder does so too)."
)

TIPS = {
    "model": "The trained network to use. Pick the one made for your kind of microscopy "
    "(phase contrast, DIC, fluorescence), or choose a model folder you trained yourself. "
    "Image > Suggest a model picks the installed one that suits the image shown.",
    "device": "Where the computation runs. 'Automatic' uses the graphics card (CUDA) when one "
    "works and the processor (CPU) otherwise.",
    "batch_workers": "When many images are processed (Process all, or a dropped folder), how "
    "many are segmented at the same time, each in its own process. 'Automatic' is one per "
    "processor core, up to four, within the computer's memory (each takes up to about 1 GB for "
    "a 1.4-megapixel image), with at least two images for each (a small folder runs fewer at "
    "once). Use 1 to keep the computer free for other work.",
    "batch_pages": "When many images are processed (Process all, or a dropped folder), segment "
    "every page of a multi-page file (each time point of a time-lapse, each slice or position "
    "of a stack) as an image of its own, named <name>_p<page>c<channel>, instead of only the "
    "page shown (the first). Each page's cells are shown on that page.",
    "batch_track": "When many images are processed (Process all, or a dropped folder), follow "
    "the cells of each time-lapse from time point to time point: the pages of a multi-page "
    "file (with Each page as an image) or the images of one folder in name order. Each cell "
    "gets its track's number (TrackObjects_Label), the cell it came from and how far it moved; "
    "a cell that divides starts two tracks whose parent is its own. The run folder gets "
    "tracks.csv: where each track starts and ends, its parent, distance and speed.",
    "track_max_move": "How far a cell may move from one time point to the next and still be "
    "followed, in cell diameters (the median of both time points' cells): a cell that overlaps "
    "where it was is followed whatever the distance. Raise it for cells that move fast or lie "
    "far apart between time points; too far, and neighbours may be taken for each other. "
    "Applies to batches started from now on; to follow a finished batch's cells again with it "
    "(nothing segmented again), process the same images into its folder and Continue.",
    "track_max_gap": "A track whose cell is missed at up to this many time points in a row (not "
    "outlined, or a time point that failed) goes on with a new cell near where it was last "
    "seen, instead of ending (gap closing; 'none': it ends, and the new cell starts a track). "
    "Applies to batches started from now on, and to a finished batch continued into its folder.",
    "batch_channel_index": "When many images are processed (Process all, or a dropped "
    "folder), which colour channel of each file is segmented, counted from 0 as the Channel "
    "box under the image counts them: the phase contrast or DIC channel of files that hold a "
    "fluorescent reporter too; of colour (RGB) images, 0 is their grey and 1, 2, 3 their "
    "red, green and blue. Every channel is measured in each cell all the same. In plain type "
    "it is the model's own: the channel its training images were read from (the first for the "
    "shipped models).",
    "threshold": "How sure the network must be that a spot is a cell centre (0 to 1). Lower it "
    "if faint cells are missed; raise it if background specks become cells.",
    "diameter": "Typical cell diameter in pixels of your image. Set it when your cells are much "
    "larger or smaller than the model's training cells; at zero the model's own cell size is "
    "used (shown in plain type). Estimate measures it on the image shown.",
    "estimate": "Measure the typical cell diameter in the image shown, with the chosen model, "
    "and use it (Image ▸ Estimate cell diameter).",
    "diameter_each_image": "Measure the cell diameter on every image before segmenting it, "
    "for folders that mix magnifications (as --diameter auto on the command line; about a "
    "second more per image). The Log tab says what each image measured.",
    "smoothness": "How smooth the outlines are. Higher values give rounder, simpler outlines; "
    "lower values follow the image edges more closely.",
    "min_size": "Objects smaller than this many pixels are dropped (debris, noise).",
    "max_size": "Objects larger than this many pixels are dropped: clumps of cells taken for "
    "one, or outlines grown over the background. 'no limit' keeps them all; the Distribution "
    "tab's largest bars show how large the cells of an image are.",
    "exclude_border": "Leave out cells that touch the image edge: they are only partly visible, "
    "so their size and shape would be wrong.",
    "edge_fraction": "Leave out cells cut by the image edge that show less than this share of "
    "a typical cell (of the cell diameter in use): fragments of cells that lie mostly outside "
    "the image. How much shows is judged by the outline's area, or with the DIC model by how "
    "near the edge the network placed the cell's centre. 'keep all' keeps every cut cell; "
    "'Leave out edge cells' above drops them all.",
    "pixel_size": "Size of one pixel in micrometres, for areas and lengths in µm. 'From the file' "
    "uses the calibration stored in the image, if any; otherwise results are in pixels. "
    + _MEASURED_FROM_NOW,
    "neighbour_distance": "Which cells count as a cell's neighbours in its measurements "
    "(Number Of Neighbors, Percent Touching): 'touching' counts the cells it touches; "
    "'within' a distance counts the cells within that many pixels of it, for cells that lie "
    "close without touching (CellProfiler's 'Within a specified distance'; the columns then "
    "end in the distance, Neighbors_NumberOfNeighbors_5); 'expanded until adjacent' counts "
    "the cells it would touch were every cell grown over the background until it met others, "
    "for cells that never touch, such as nuclei (CellProfiler's 'Expand until adjacent'; "
    "the columns end in _Expanded). " + _MEASURED_FROM_NOW,
    "ring_width": "Also measure a ring this many pixels wide around each cell: the background "
    "nearer to it than to any other cell, the cytoplasm around a nucleus. Its area, and in "
    "every channel its mean and integrated intensity and the cell's mean over the ring's "
    "(Cell To Ring Ratio: a reporter's nuclear to cytoplasmic ratio, as in a translocation "
    "assay). 'none' measures no ring. " + _MEASURED_FROM_NOW,
    "roi_zip": "Also save the outlines as an ImageJ/Fiji ROI set (.zip) you can open in Fiji's "
    "ROI Manager (cell-1, cell-2, ...), and where a ring is measured each cell's ring after "
    "them (ring-1, ...), to measure or check in Fiji.",
    "reset": "Go back to the values recommended by the chosen model.",
}

OVERLAY_TIPS = {
    "fills": "Each cell filled with its own colour, to see where one cell ends and the next "
    "begins.",
    "outlines": "The outline of every cell found.",
    "centres": "A dot on each cell's centre with the cell's number (the same number as in the "
    "table).",
    "tracks": "Where each cell of a time-lapse whose cells were followed over time has been: "
    "its path from page to page up to the page shown, in its track's colour (T).",
    "rings": "The ring around each cell whose intensity is measured (Ring around cells in the "
    "settings): the background nearer to it than to any other cell, the cytoplasm around a "
    "nucleus.",
    "likelihood": "What the network sees: bright where it thinks a cell centre is.",
    "contribution": "For each pixel, how strongly it belongs to the cell it was given to "
    "(the propagation from each detected centre).",
}

STATUS_COLOURS = {
    Status.NOT_RUN: QColor(150, 150, 150),
    Status.RUNNING: QColor(60, 140, 230),
    Status.DONE: QColor(60, 180, 90),
    Status.FAILED: QColor(220, 60, 60),
}


@functools.cache  # four icons, drawn once (lists can hold thousands of images)
def _status_icon(status: Status) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(STATUS_COLOURS[status])
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 12, 12)
    painter.end()
    return QIcon(pixmap)


def show_fraction(bar: QProgressBar, fraction: float) -> None:
    """A progress bar at ``fraction`` (0..1), or busy without an end when it is negative."""
    if fraction < 0:
        bar.setRange(0, 0)
    else:
        bar.setRange(0, 1000)
        bar.setValue(round(min(1.0, fraction) * 1000))


class _WheelWhenFocused(QObject):
    """Wheel events over a box that has not the keyboard's focus scroll what holds it (the
    settings' scroll area), not the box's value."""

    def eventFilter(self, watched, event):  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.Wheel or watched.hasFocus():
            return False
        holder = watched.parentWidget()
        while holder is not None and not isinstance(holder, QAbstractScrollArea):
            holder = holder.parentWidget()
        if holder is not None:
            QApplication.sendEvent(holder.verticalScrollBar(), event)
        return True


class SettingsPanel(QGroupBox):
    """Model, device and segmentation settings. Calls ``controller.update_settings``."""

    def __init__(self, controller, choose_folder=None, parent=None):
        super().__init__("Segmentation settings", parent)
        self.controller = controller
        # asks for a model folder: (title, start) -> path or ""; the window passes its dialogs
        self.choose_folder = choose_folder or (
            lambda title, start: QFileDialog.getExistingDirectory(self, title, start)
        )
        self._refreshing = False
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.model = QComboBox()
        self.device = QComboBox()
        self.provider = QLabel()
        self.provider.setWordWrap(True)
        self.batch_workers = IntBox()
        self.batch_workers.setRange(0, 64)
        self.batch_workers.setSuffix(" at once")
        self.batch_workers.setKeyboardTracking(False)
        self.batch_pages = QCheckBox("Each page as an image")
        self.batch_track = QCheckBox("Follow cells over time")
        self.track_max_move = self._double(0.1, 20.0, 0.1, 1, suffix=" cell diameters")
        self.track_max_move.setPrefix("up to ")
        self.track_max_gap = QSpinBox()
        self.track_max_gap.setRange(0, 10)
        self.track_max_gap.setPrefix("up to ")
        self.track_max_gap.setSuffix(" time points")
        self.track_max_gap.setSpecialValueText("none")
        self.track_max_gap.setKeyboardTracking(False)
        self.batch_channel_index = QSpinBox()
        self.batch_channel_index.setRange(0, 63)
        self.batch_channel_index.setSpecialValueText("0 (the first)")
        self.batch_channel_index.setKeyboardTracking(False)
        self.threshold = self._double(0.01, 0.99, 0.05, 2)
        self.diameter = self._double(0.0, 2000.0, 1.0, 1, special="model's", suffix=" px")
        self.estimate = QToolButton()
        self.estimate.setText("Estimate")
        self.estimate.setToolTip(TIPS["estimate"])
        self.diameter.setToolTip(TIPS["diameter"])
        diameter_row = QWidget()
        row = QHBoxLayout(diameter_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.diameter, 1)
        row.addWidget(self.estimate)
        self.diameter_each_image = QCheckBox("Measure on each image")
        self.smoothness = self._double(0.0, 500.0, 1.0, 1)
        self.min_size = QSpinBox()
        self.min_size.setRange(0, 1_000_000)
        self.min_size.setSuffix(" px")
        self.min_size.setKeyboardTracking(False)
        self.max_size = QSpinBox()
        self.max_size.setRange(0, 100_000_000)
        self.max_size.setSingleStep(100)
        self.max_size.setSuffix(" px")
        self.max_size.setSpecialValueText("no limit")
        self.max_size.setKeyboardTracking(False)
        self.exclude_border = QCheckBox("Leave out edge cells")
        self.edge_fraction = QSpinBox()
        self.edge_fraction.setRange(0, 100)
        self.edge_fraction.setSingleStep(5)
        self.edge_fraction.setPrefix("below ")
        self.edge_fraction.setSuffix(" % of a cell")
        self.edge_fraction.setSpecialValueText("keep all")
        self.edge_fraction.setKeyboardTracking(False)
        self.pixel_size = self._double(0.0, 1000.0, 0.01, 4, special="from the file", suffix=" µm")
        # How neighbours are found (CellProfiler's three methods), and the distance of one.
        self.neighbours = QComboBox()
        for title, key in [
            ("touching", "touching"),
            ("within", "within"),
            ("expanded until adjacent", "expanded"),
        ]:
            self.neighbours.addItem(title, key)
        # as narrow as the row needs beside the distance (the longest item fits alone)
        self.neighbours.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.neighbours.setMinimumContentsLength(6)
        self.neighbour_distance = QSpinBox()
        self.neighbour_distance.setRange(1, 500)
        self.neighbour_distance.setValue(5)  # CellProfiler's, until one is chosen
        self.neighbour_distance.setSuffix(" px")
        self.neighbour_distance.setKeyboardTracking(False)
        neighbours_row = QWidget()
        row = QHBoxLayout(neighbours_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.neighbours, 1)
        row.addWidget(self.neighbour_distance)
        self.neighbours.setToolTip(TIPS["neighbour_distance"])
        self.neighbour_distance.setToolTip(TIPS["neighbour_distance"])
        self.ring_width = QSpinBox()
        self.ring_width.setRange(0, 200)
        self.ring_width.setSuffix(" px wide")
        self.ring_width.setSpecialValueText("none")
        self.ring_width.setKeyboardTracking(False)
        self.roi_zip = QCheckBox("Also save Fiji ROIs")
        self.reset = QPushButton("Reset to model defaults")

        self.labels = {}
        for name, title, widget in [
            ("model", "Model", self.model),
            ("device", "Run on", self.device),
            ("provider", "", self.provider),
            ("batch_workers", "Folder images", self.batch_workers),
            ("batch_pages", "", self.batch_pages),
            ("batch_track", "", self.batch_track),
            ("track_max_move", "Cells move", self.track_max_move),
            ("track_max_gap", "Gaps closed", self.track_max_gap),
            ("batch_channel_index", "Folder channel", self.batch_channel_index),
            ("threshold", "Detection threshold", self.threshold),
            ("diameter", "Cell diameter", diameter_row),
            ("diameter_each_image", "", self.diameter_each_image),
            ("smoothness", "Outline smoothness", self.smoothness),
            ("min_size", "Smallest cell", self.min_size),
            ("max_size", "Largest cell", self.max_size),
            ("exclude_border", "Border cells", self.exclude_border),
            ("edge_fraction", "Edge fragments", self.edge_fraction),
            ("pixel_size", "Pixel size", self.pixel_size),
            ("neighbour_distance", "Neighbours", neighbours_row),
            ("ring_width", "Ring around cells", self.ring_width),
            ("roi_zip", "Export", self.roi_zip),
        ]:
            label = QLabel(title)
            tip = TIPS.get(name, "")
            label.setToolTip(tip)
            widget.setToolTip(tip)
            form.addRow(label, widget)
            self.labels[name] = label
        form.addRow(self.reset)
        self.reset.setToolTip(TIPS["reset"])

        for key, title in [
            ("auto", "Automatic"),
            ("cpu", "Processor (CPU)"),
            ("cuda", "Graphics card (CUDA)"),
        ]:
            self.device.addItem(title, key)
        self._fill_models()

        self.model.activated.connect(self._model_chosen)
        self.device.activated.connect(
            lambda i: controller.update_settings(device=self.device.itemData(i))
        )
        self.batch_workers.valueChanged.connect(
            lambda v: self._edited("batch_workers", int(v) or None)
        )
        self.batch_pages.toggled.connect(lambda b: self._edited("batch_pages", bool(b)))
        self.batch_track.toggled.connect(lambda b: self._edited("batch_track", bool(b)))
        self.track_max_move.valueChanged.connect(lambda v: self._edited("track_max_move", v))
        self.track_max_gap.valueChanged.connect(lambda v: self._edited("track_max_gap", int(v)))
        self.batch_channel_index.valueChanged.connect(
            lambda v: self._edited("batch_channel_index", int(v))
        )  # a value of yours, also the model's own (as the other boxes)
        self.threshold.valueChanged.connect(lambda v: self._edited("threshold", v))
        self.diameter.valueChanged.connect(  # 0: the model's; else a pixel at the least
            lambda v: self._edited("diameter", max(v, 1.0) if v else None)
        )
        self.estimate.clicked.connect(controller.estimate_diameter)
        self.diameter_each_image.toggled.connect(
            lambda b: self._edited("diameter_each_image", bool(b))
        )
        self.smoothness.valueChanged.connect(lambda v: self._edited("smoothness", v))
        self.min_size.valueChanged.connect(lambda v: self._edited("min_size", int(v)))
        self.max_size.valueChanged.connect(lambda v: self._edited("max_size", int(v)))
        self.pixel_size.valueChanged.connect(lambda v: self._edited("pixel_size", v or None))
        self.ring_width.valueChanged.connect(lambda v: self._edited("ring_width", int(v)))
        self.neighbours.activated.connect(lambda _i: self._neighbours_chosen())
        self.neighbour_distance.valueChanged.connect(lambda _v: self._neighbours_chosen())
        self.exclude_border.toggled.connect(lambda b: self._edited("exclude_border", bool(b)))
        self.edge_fraction.valueChanged.connect(lambda v: self._edited("edge_fraction", v / 100))
        self.roi_zip.toggled.connect(lambda b: self._edited("roi_zip", bool(b)))
        self.reset.clicked.connect(controller.reset_to_model_defaults)
        controller.settings_changed.connect(self.refresh)
        controller.model_changed.connect(self.refresh)
        # The wheel over a box changes it only once it is clicked into: scrolling the panel
        # past a box changed the setting (Largest cell from no limit to 100 px) unnoticed.
        self._wheel_guard = _WheelWhenFocused(self)
        for box in [*self.findChildren(QAbstractSpinBox), *self.findChildren(QComboBox)]:
            box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            box.installEventFilter(self._wheel_guard)
        self.refresh()

    def take_typed(self) -> None:
        """Take a number typed into a box and not confirmed yet (no Enter, no Tab) as its
        setting. The boxes send their value only then, so as not to act on every digit; the
        toolbar and the keys (F5) take no focus from the box, and Segment ran with the value
        before, the box showing the one typed."""
        for box in self.findChildren(QAbstractSpinBox):
            box.interpretText()  # a box whose text is its value: nothing happens

    @staticmethod
    def _double(lo, hi, step, decimals, special="", suffix=""):
        box = DecimalBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        box.setKeyboardTracking(False)
        if special:
            box.setSpecialValueText(special)
        if suffix:
            box.setSuffix(suffix)
        return box

    def _fill_models(self) -> None:
        self.model.clear()
        for info in self.controller.available_models():
            self.model.addItem(str(info.name), str(info.name))
            facts = info.facts()
            tip = f"{info.description}\n{facts}" if facts else str(info.description)
            self.model.setItemData(self.model.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        current = self.controller.settings.model
        if self.model.findData(current) < 0:
            self.model.addItem(Path(current).name or current, current)
        self.model.addItem("Choose a model folder…", CHOOSE_FOLDER)

    def _model_chosen(self, index: int) -> None:
        value = self.model.itemData(index)
        if value == CHOOSE_FOLDER:
            folder = self.choose_folder("Choose a model folder (with model.json)", "")
            if not folder:
                self.refresh()
                return
            value = folder
            if self.model.findData(value) < 0:
                self.model.insertItem(self.model.count() - 1, Path(value).name, value)
        self.controller.update_settings(model=value)

    def _neighbours_chosen(self) -> None:
        """The neighbour distance the two boxes say: 0 touching, the distance, or EXPANDED."""
        how = self.neighbours.currentData()
        within = int(self.neighbour_distance.value())
        self._edited("neighbour_distance", {"touching": 0, "expanded": EXPANDED}.get(how, within))

    def _edited(self, name: str, value) -> None:
        if not self._refreshing:
            self.controller.update_settings(**{name: value})

    def refresh(self, *_ignored) -> None:
        """Show the controller's settings; None values show the model's default."""
        self._refreshing = True
        try:
            s = self.controller.settings
            status = self.controller.model_status
            defaults = status.defaults
            d = s.engine_kwargs()["diameter"]  # None (the model's), yours, or "auto"
            index = self.model.findData(s.model)
            if index < 0:
                self._fill_models()
                index = self.model.findData(s.model)
            self.model.setCurrentIndex(index)
            self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
            cuda = "cuda" in self.controller.available_devices()
            self.device.model().item(2).setEnabled(cuda)
            if status.loading:
                self.provider.setText("Loading the model…")
                self.provider.setStyleSheet("")
            elif status.error:
                self.provider.setText(status.error)
                self.provider.setStyleSheet("color: #c62828;")
            elif status.provider:
                self.provider.setText(f"In use: {status.provider}")
                self.provider.setToolTip(
                    f"{status.description}\n{status.path}" if status.description else status.path
                )
                self.provider.setStyleSheet("color: #2e7d32;")
            else:
                self.provider.setText("")
            # At zero the box shows the number "automatic" stands for on this computer.
            automatic = self.controller.engine.auto_workers()
            self.batch_workers.setSpecialValueText(f"automatic ({automatic})")
            self.batch_workers.shown_at_minimum = automatic  # a step goes on from it
            self.batch_workers.setValue(s.batch_workers or 0)
            self.batch_pages.setChecked(s.batch_pages)
            self.batch_track.setChecked(s.batch_track)
            self.track_max_move.setValue(s.track_max_move)
            self.track_max_gap.setSuffix(" time point" if s.track_max_gap == 1 else " time points")
            self.track_max_gap.setValue(s.track_max_gap)
            for box in (self.track_max_move, self.track_max_gap):  # how cells are followed
                box.setEnabled(s.batch_track)
            # None: the model's own channel (the first for the shipped models)
            own_channel = int(defaults.get("channel") or 0)
            chosen = s.batch_channel_index
            self.batch_channel_index.setValue(own_channel if chosen is None else chosen)
            self._mark("batch_channel_index", chosen is not None, own_channel)
            for name, box in [
                ("threshold", self.threshold),
                ("smoothness", self.smoothness),
                ("min_size", self.min_size),
                ("max_size", self.max_size),
            ]:
                value = getattr(s, name)
                shown = value if value is not None else defaults.get(name)
                sized = name in ("min_size", "max_size")
                if sized and value is None and shown and d not in (None, "auto"):
                    # The engine scales the model's sizes to the diameter you give.
                    from cellprop.engine.pipeline import scaled_min_size

                    model_diameter = defaults.get("diameter")
                    if model_diameter:
                        shown = scaled_min_size(shown, d / model_diameter)
                # the model's value where it cannot be told (a model that cannot be
                # loaded): said so, not the box's minimum or the last model's value (yours,
                # just reset); the largest cell's 0 is otherwise its own "no limit"
                if name == "max_size":
                    box.setSpecialValueText("no limit" if defaults else "model's")
                else:
                    box.setSpecialValueText("" if shown is not None else "model's")
                box.setValue(shown if shown is not None else box.minimum())
                own_value = defaults.get(name)
                if name == "max_size" and not own_value:
                    own_value = None  # no limit: nothing to tell
                self._mark(name, value is not None, own_value)
            own = defaults.get("diameter")
            # At zero the box shows the size used, the model's own, as the other boxes show
            # the model's values (the label is bold only for a value of yours).
            self.diameter.setSpecialValueText(f"{own:.0f} px" if own else "model's")
            self.diameter.shown_at_minimum = round(own) if own else None  # (a step: from it)
            self.diameter.setValue(s.diameter or 0.0)
            self.diameter_each_image.setChecked(s.diameter_each_image)
            # Measured on each image: the box's value and its Estimate do not apply.
            self.diameter.setEnabled(not s.diameter_each_image)
            self.estimate.setEnabled(not s.diameter_each_image)
            self._mark("diameter", d is not None, defaults.get("diameter"))
            self.pixel_size.setValue(s.pixel_size or 0.0)
            near = s.neighbour_distance
            how = "expanded" if near == EXPANDED else "within" if near else "touching"
            self.neighbours.setCurrentIndex(self.neighbours.findData(how))
            if near > 0:
                self.neighbour_distance.setValue(near)
            self.neighbour_distance.setVisible(how == "within")
            self.ring_width.setValue(s.ring_width)
            self.exclude_border.setChecked(s.exclude_border)
            # Shown in percent; None shows the model's fraction (0: keep all).
            own_edge = 100 * float(defaults.get("edge_fraction") or 0.0)
            edge = 100 * s.edge_fraction if s.edge_fraction is not None else own_edge
            self.edge_fraction.setValue(round(edge))
            self.edge_fraction.setEnabled(not s.exclude_border)  # all edge cells go anyway
            self._mark("edge_fraction", s.edge_fraction is not None, own_edge, " %")
            self.roi_zip.setChecked(s.roi_zip)
        finally:
            self._refreshing = False

    def _mark(self, name: str, overridden: bool, default, unit: str = "") -> None:
        """Bold label = your own value; the tooltip tells the model's default."""
        label = self.labels[name]
        font = label.font()
        font.setBold(overridden)
        label.setFont(font)
        suffix = (
            f"\n\nModel default: {default:g}{unit}" if isinstance(default, (int, float)) else ""
        )
        label.setToolTip(TIPS[name] + suffix)


class OverlayPanel(QGroupBox):
    """One row per overlay: a check box to show it and a slider for its opacity."""

    def __init__(self, controller, parent=None):
        super().__init__("Show on the image", parent)
        self.controller = controller
        layout = QFormLayout(self)
        self.checks: dict[str, QCheckBox] = {}
        self.sliders: dict[str, QSlider] = {}
        for name in OVERLAY_NAMES:
            check = QCheckBox(OVERLAY_TITLES[name])
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setMaximumWidth(110)
            tip = OVERLAY_TIPS[name]
            check.setToolTip(tip)
            slider.setToolTip("Opacity: left is see-through, right is solid.")
            check.toggled.connect(lambda b, n=name: controller.set_overlay(n, visible=b))
            slider.valueChanged.connect(
                lambda v, n=name: controller.set_overlay(n, opacity=v / 100.0)
            )
            layout.addRow(check, slider)
            self.checks[name], self.sliders[name] = check, slider
        controller.overlays_changed.connect(self.refresh)
        self.refresh(controller.overlays)

    def refresh(self, overlays) -> None:
        for name, overlay in overlays.items():
            for widget in (self.checks[name], self.sliders[name]):
                widget.blockSignals(True)
            self.checks[name].setChecked(overlay.visible)
            self.sliders[name].setValue(round(overlay.opacity * 100))
            for widget in (self.checks[name], self.sliders[name]):
                widget.blockSignals(False)

    def set_available(self, names: set) -> None:
        """Grey out overlays the current result does not have (batch results keep fewer)."""
        for name in OVERLAY_NAMES:
            ok = name in names
            self.checks[name].setEnabled(ok)
            self.sliders[name].setEnabled(ok)
            tip = OVERLAY_TIPS[name]
            if not ok and name in ("likelihood", "contribution"):
                tip += "\n\nNot kept for batch results: press Segment to see it."
            if not ok and name == "tracks":
                tip += "\n\nFor time-lapses processed with Follow cells over time."
            if not ok and name == "rings":
                tip += (
                    "\n\nSet Ring around cells in the settings, then Segment or Image > "
                    "Measure the cells again."
                )
            self.checks[name].setToolTip(tip)


class NamedSpinBox(QSpinBox):
    """A spin box whose values may have names (a colour image's channels: "3 blue"); typing
    either the number or the name chooses it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.names: tuple[str, ...] = ()

    def textFromValue(self, value: int) -> str:  # noqa: N802 - Qt override
        if 0 <= value < len(self.names):
            return f"{value} {self.names[value]}"
        return super().textFromValue(value)

    def _word(self, text: str) -> str:
        return text.removesuffix(self.suffix()).strip().split(" ")[0].lower()

    def valueFromText(self, text: str) -> int:  # noqa: N802 - Qt override
        word = self._word(text)
        if word in self.names:
            return self.names.index(word)
        return int(word) if word.isdigit() else self.value()

    def validate(self, text: str, pos: int):  # names as well as numbers
        word = self._word(text)
        if word in self.names or word.isdigit() and self.minimum() <= int(word) <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        if not word or any(name.startswith(word) for name in self.names):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos


class DisplayPanel(QGroupBox):
    """Brightness/contrast of the image, and which page or channel of the file is shown."""

    contrast_changed = Signal(float, float)
    auto_contrast_requested = Signal()
    plane_changed = Signal(int, int)
    colour_channel_changed = Signal(int)  # -1: none
    colour_changed = Signal(str)  # a name of render.CHANNEL_COLOURS
    colour_gain_changed = Signal(float)  # how much brighter the colour channel is drawn (x1)

    STEPS = 1000

    def __init__(self, parent=None):
        super().__init__("Image display", parent)
        layout = QFormLayout(self)
        self.black = QSlider(Qt.Orientation.Horizontal)
        self.white = QSlider(Qt.Orientation.Horizontal)
        for slider in (self.black, self.white):
            slider.setRange(0, self.STEPS)
        self.black.setToolTip("Values at or below this are shown black.")
        self.white.setToolTip("Values at or above this are shown white.")
        self.auto = QPushButton("Auto contrast")
        self.auto.setToolTip(
            "Stretch the contrast so that the faintest and brightest 0.5% of "
            "pixels just reach black and white."
        )
        self.range_label = QLabel()
        self.range_label.setToolTip("Shown range, in the image's own pixel values.")
        self.page = QSpinBox()
        self.channel = NamedSpinBox()
        self.page.setToolTip(
            "Which page (plane or time point) of a multi-page file to show and segment."
        )
        self.channel.setToolTip(
            "Which channel of the file to show and segment. A colour image's are its grey "
            "(0, shown in colour), red, green and blue: the blue of a composite whose nuclei "
            "are blue, say."
        )
        layout.addRow("Black", self.black)
        layout.addRow("White", self.white)
        layout.addRow(self.range_label, self.auto)
        self._page_label, self._channel_label = QLabel("Page"), QLabel("Channel")
        layout.addRow(self._page_label, self.page)
        layout.addRow(self._channel_label, self.channel)
        # another channel (a fluorescent reporter) in colour over the one shown
        self.colour_channel = QComboBox()
        self.colour_channel.setToolTip(
            "Draw another channel of the file in colour over the one shown (a fluorescent "
            "reporter over phase contrast), to see it in the outlined cells; the cells table "
            "measures every channel all the same."
        )
        self.colour = QComboBox()
        self.colour.addItems(list(render.CHANNEL_COLOURS))
        self.colour.setToolTip("The colour of that channel")
        self._colour_label = QLabel("In colour")
        pair = QWidget()
        row = QHBoxLayout(pair)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.colour_channel, 1)
        row.addWidget(self.colour)
        layout.addRow(self._colour_label, pair)
        # its brightness: x1/4 .. x4 on a log scale, x1 in the middle
        self.colour_gain = QSlider(Qt.Orientation.Horizontal)
        self.colour_gain.setRange(-100, 100)
        self.colour_gain.setToolTip(
            "How bright the channel in colour is drawn: to the right, faint signal shows; to "
            "the left, only the brightest. Its levels are those of the first page it was "
            "shown on, kept for the file's other pages (time points), so that its brightness "
            "compares over time."
        )
        self._colour_gain_label = QLabel("Its brightness")
        layout.addRow(self._colour_gain_label, self.colour_gain)
        self._lo, self._hi = 0.0, 255.0
        self._levels = (0.0, 255.0)  # the black and white points shown
        self.black.valueChanged.connect(self._slid)
        self.white.valueChanged.connect(self._slid)
        self.auto.clicked.connect(lambda: self.auto_contrast_requested.emit())
        self.page.valueChanged.connect(self._plane)
        self.channel.valueChanged.connect(self._plane)
        self.colour_channel.currentIndexChanged.connect(self._colour_channel_chosen)
        self.colour.currentTextChanged.connect(self.colour_changed.emit)
        self.colour_gain.valueChanged.connect(
            lambda v: self.colour_gain_changed.emit(2.0 ** (v / 50.0))
        )
        self.set_planes(1, 1, 0, 0)

    def set_range(self, lo: float, hi: float, low: float, high: float) -> None:
        """Value range of the image (lo..hi) and the shown black/white points; the sliders'
        range takes in the points too (levels kept from a brighter page of a time-lapse stay
        as they are, not cut to this page's brightest pixel)."""
        lo, hi = min(lo, low), max(hi, high)
        self._lo, self._hi = lo, hi if hi > lo else lo + 1
        self._levels = (low, high)
        for slider, value in ((self.black, low), (self.white, high)):
            slider.blockSignals(True)
            slider.setValue(round((value - self._lo) / (self._hi - self._lo) * self.STEPS))
            slider.blockSignals(False)
        self.range_label.setText(levels_text(low, high))

    def _value(self, slider) -> float:
        return self._lo + slider.value() / self.STEPS * (self._hi - self._lo)

    def _slid(self) -> None:
        """One slider moved: its level changes, the other stays exactly as it was (read back
        from its slider, it moved by a step's rounding)."""
        low, high = self._levels
        if self.sender() is self.white:
            high = self._value(self.white)
        else:
            low = self._value(self.black)
        if high <= low:
            high = low + (self._hi - self._lo) / self.STEPS
        self._levels = (low, high)
        self.range_label.setText(levels_text(low, high))
        self.contrast_changed.emit(low, high)

    def set_planes(
        self,
        n_pages: int,
        n_channels: int,
        page: int,
        channel: int,
        colour_channel: int = -1,
        channel_names: tuple = (),
    ) -> None:
        """Show the page and channel choosers for a file of ``n_pages`` and ``n_channels``
        (``channel_names``: what its channels are, a colour image's grey, red, green, blue)."""
        self.channel.names = tuple(channel_names)
        for box, n, value, label in (
            (self.page, n_pages, page, self._page_label),
            (self.channel, n_channels, channel, self._channel_label),
        ):
            box.blockSignals(True)
            box.setRange(0, max(0, n - 1))
            box.setValue(value)
            box.setSuffix(f" of {n} (first is 0)")
            box.blockSignals(False)
            box.setVisible(n > 1)
            label.setVisible(n > 1)
        self.colour_channel.blockSignals(True)
        self.colour_channel.clear()
        self.colour_channel.addItem("none", -1)
        for k in range(n_channels):
            if k != channel:
                named = f" ({channel_names[k]})" if k < len(channel_names) else ""
                self.colour_channel.addItem(f"channel {k}{named}", k)
        self.colour_channel.setCurrentIndex(max(self.colour_channel.findData(colour_channel), 0))
        self.colour_channel.blockSignals(False)
        for widget in (self._colour_label, self.colour_channel, self.colour):
            widget.setVisible(n_channels > 1)
        self._show_gain()

    def _show_gain(self) -> None:
        """The brightness slider, where a channel is drawn in colour."""
        chosen = self.colour_channel.currentData()
        shown = self.colour_channel.isVisibleTo(self) and chosen is not None and chosen >= 0
        for widget in (self._colour_gain_label, self.colour_gain):
            widget.setVisible(shown)

    def _colour_channel_chosen(self, _index: int) -> None:
        self._show_gain()
        self.colour_channel_changed.emit(self.colour_channel.currentData())

    def _plane(self) -> None:
        self.plane_changed.emit(self.page.value(), self.channel.value())


def levels_text(low: float, high: float) -> str:
    """The black and white levels in words: whole numbers whole (65535, not 6.554e+04), else
    with as many digits as tell the two apart (1000.000001 – 1000.000002, not 1000 – 1000)."""

    def whole(v: float) -> bool:
        return float(v).is_integer() and abs(v) < 1e15

    if whole(low) and whole(high):
        return f"{low:.0f} – {high:.0f}"
    for digits in range(4, 17):
        a, b = f"{low:.{digits}g}", f"{high:.{digits}g}"
        if a != b:
            break
    return f"{a} – {b}"


#: What follows an image's name in its row of the image list: its status, its marks.
_STATUS_MARKS = ("  —  ", "  ·  ")
#: Where a row of the image list keeps the status its icon shows.
_STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
_NAME_ROLE = Qt.ItemDataRole.UserRole + 2  # the file name of its image (the list counts them)


class _RowsOfTheListsWidth(QStyledItemDelegate):
    """Rows that ask for no width of their own: laid out alike (the first row's size for
    all), each is the list's width, whatever the first name's length, and a long name is
    shortened in its middle to fit it, never what follows it (" —  3 cells · 5 marked")."""

    def sizeHint(self, option, index):  # noqa: N802 - Qt override
        return QSize(1, super().sizeHint(option, index).height())

    def initStyleOption(self, option, index):  # noqa: N802 - Qt override
        super().initStyleOption(option, index)
        room = option.rect.width() - option.decorationSize.width() - 16
        metrics = option.fontMetrics
        if room <= 0 or metrics.horizontalAdvance(option.text) <= room:
            return
        cut = min((i for i in map(option.text.find, _STATUS_MARKS) if i >= 0), default=-1)
        if cut < 0:
            return  # a name alone: the list shortens it
        name, status = option.text[:cut], option.text[cut:]
        left = max(room - metrics.horizontalAdvance(status), metrics.averageCharWidth() * 6)
        option.text = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, left) + status


class DocumentList(QListWidget):
    """The open images with their status and cell count."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.setToolTip(
            "Your open images. Grey: not segmented yet, blue: working, "
            "green: done, red: failed (hover for the reason)."
        )
        self.setAlternatingRowColors(True)
        # Rows one line each, laid out all alike: a change of one does not make the list
        # measure thousands again (a batch changes one per image). Each row is the list's
        # width, a long name shortened in its middle, so its status at the end stays in
        # sight (its tip names the whole path).
        self.setUniformItemSizes(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setItemDelegate(_RowsOfTheListsWidth(self))
        # how many open images have each file name: those of one name (a plate's wells'
        # A01/img.png, A02/img.png) are shown with their folder's, else they read alike
        self._names: Counter = Counter()
        # the folders shown before each such name, by its images' paths (made when first
        # asked; forgotten when an image of that name comes or goes)
        self._folders: dict[str, dict] = {}
        controller.documents_added.connect(self._added)
        controller.documents_removed.connect(self._removed)
        controller.document_changed.connect(self.update_row)
        controller.marks_changed.connect(self.update_row)
        controller.current_changed.connect(self._select)
        self.currentRowChanged.connect(self._row_changed)

    def paintEvent(self, event):  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self.count() == 0:  # say what belongs here instead of an empty white box
            painter = QPainter(self.viewport())
            painter.setPen(QColor(140, 140, 140))
            painter.drawText(
                self.viewport().rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignTop
                | Qt.AlignmentFlag.AlignHCenter
                | Qt.TextFlag.TextWordWrap,
                "No images open yet.\n\nDrop image files or a folder onto the window.",
            )
            painter.end()

    def _added(self, first: int, count: int) -> None:
        docs = self.controller.documents
        for i in range(first, first + count):
            self._names[docs[i].name] += 1
            self._folders.pop(docs[i].name, None)
            self.addItem(QListWidgetItem())
        for i in range(first, first + count):  # each row once every name is counted
            self.update_row(i)
        # the others of their names show their folders (anew)
        alike = {d.name for d in docs[first : first + count] if self._names[d.name] > 1}
        for i in range(first):
            if docs[i].name in alike:
                self.update_row(i)

    def _removed(self, indices: list) -> None:
        self.blockSignals(True)  # the controller says which image is shown next
        again = set()  # names whose other images' rows show their folders otherwise now
        for i in reversed(indices):
            name = self.item(i).data(_NAME_ROLE) if self.item(i) is not None else None
            self.takeItem(i)
            if name is not None:
                self._names[name] -= 1
                self._folders.pop(name, None)
                again.add(name)
        self.blockSignals(False)
        for i, doc in enumerate(self.controller.documents):  # one of its name left: plain
            if doc.name in again:
                self.update_row(i)

    def update_row(self, index: int) -> None:
        item = self.item(index)
        if item is None:
            return
        doc = self.controller.documents[index]
        status = doc.status
        text = doc.name
        if self._names[doc.name] > 1:  # another open image of that name: its folder's too
            text = f"{self._folders_of(doc.name).get(doc.path, doc.path.parent.name)}/{text}"
        if item.data(_NAME_ROLE) != doc.name:
            item.setData(_NAME_ROLE, doc.name)
        if status == Status.DONE:
            text += f"  —  {count_cells(doc.n_cells)}"
        elif status == Status.RUNNING:
            text += "  —  waiting…" if doc.waiting else "  —  working…"
        elif status == Status.FAILED:
            text += "  —  failed"
        marked = sum(len(m) for m in doc.marks.values())
        if marked:  # cell centres clicked for training
            text += f"  ·  {marked} marked"
        tip = f"{doc.path}\nStatus: {status.value}"
        if doc.error:
            tip += f"\n{doc.error}"
        # A batch asks several times an image, mostly for the row as it is: set only what
        # changed (each setting is a repaint).
        if item.text() != text:
            item.setText(text)
        if item.data(_STATUS_ROLE) != status.value:
            item.setData(_STATUS_ROLE, status.value)
            item.setIcon(_status_icon(status))
        if item.toolTip() != tip:
            item.setToolTip(tip)

    def _folders_of(self, name: str) -> dict:
        """The folders to show before the open images of ``name``, by path: as many of the
        last folders as tell them apart (plate1/A01/img.png and plate2/A01/img.png, not
        A01/img.png twice), the same number for all of them."""
        if name not in self._folders:
            parents = {
                d.path: d.path.parent.parts for d in self.controller.documents if d.name == name
            }
            longest = max(map(len, parents.values()), default=1)
            for depth in range(1, longest + 1):
                shown = {p: "/".join(parts[-depth:]) for p, parts in parents.items()}
                if len(set(shown.values())) == len(set(parents.values())):
                    break
            self._folders[name] = shown
        return self._folders[name]

    def _select(self, index: int) -> None:
        if self.currentRow() != index:
            self.blockSignals(True)
            self.setCurrentRow(index)
            self.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.controller.set_current(row)


class LogPanel(QPlainTextEdit):
    """Everything the app did and every error, with times, for the user and for support."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setToolTip("What the program did, and full details of any error.")

    def add(self, level: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        colour = {"error": "#c62828", "warning": "#ef6c00"}.get(level, "")
        body = html.escape(message).replace("\n", "<br>")
        if colour:
            body = f'<span style="color:{colour}">{body}</span>'
        self.appendHtml(f"<span style='color:#888'>{stamp}</span> {body}")


class ErrorBanner(QFrame):
    """A dismissible message above the image: errors are seen, never modal, never fatal."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.kind = "error"
        self.setStyleSheet(self._STYLES["error"])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # One optional button for what the message invites (e.g. opening the results folder).
        self.action = QPushButton()
        self.action.hide()
        self.action.clicked.connect(lambda: self._act and self._act())
        self._act = None
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this message (it stays in the log).")
        close.clicked.connect(self.hide)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action)
        layout.addWidget(close)
        self.hide()

    _STYLES = {
        "error": "#errorBanner { background: #fdecea; border: 1px solid #f5c2c0; "
        "border-radius: 4px; } QLabel { color: #8a1c1c; }",
        "hint": "#errorBanner { background: #e8f1fb; border: 1px solid #b6d0ee; "
        "border-radius: 4px; } QLabel { color: #174a7c; }",
        "done": "#errorBanner { background: #e9f6ec; border: 1px solid #b9e0c2; "
        "border-radius: 4px; } QLabel { color: #1e5e2e; }",
    }

    def show_message(self, message: str, kind: str = "error", action=None) -> None:
        """Show ``message``; ``kind`` "hint" is advice (blue), "done" a finished job (green),
        "error" an error (red). ``action``: (button text, callable) for a button beside it."""
        self.setStyleSheet(self._STYLES[kind])
        self.kind = kind
        self.text.setText(message)
        self._act = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        self.show()


class WelcomeView(QWidget):
    """The first thing a user sees: what to do, in one sentence, and two buttons."""

    open_files = Signal()
    open_folder = Signal()
    open_sample = Signal()

    def __init__(self, has_samples: bool, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        title = QLabel("Drop images or a folder here")
        font = title.font()
        font.setPointSize(font.pointSize() + 10)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "cellprop finds and outlines every cell in your microscopy images.<br>"
            "Open one image to check the result, or a whole folder to process an experiment.<br>"
            "Then press <b>Segment</b> (F5) and export the table of cell measurements.<br>"
            "A folder of results from an earlier run opens with its cells."
        )
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setStyleSheet("color: #555; font-size: 11pt;")
        formats = QLabel("TIFF (8/16-bit, multi-page), PNG, JPEG, BMP")
        formats.setAlignment(Qt.AlignmentFlag.AlignCenter)
        formats.setStyleSheet("color: #888;")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for label, signal, tip in [
            ("Open images…", self.open_files, "Choose one or more image files (Ctrl+O)."),
            (
                "Open folder…",
                self.open_folder,
                "Choose a folder: all its images are listed and can be processed in one go.",
            ),
        ] + (
            [("Try a sample image", self.open_sample, "Open an example phase-contrast image.")]
            if has_samples
            else []
        ):
            button = QPushButton(label)
            button.setMinimumHeight(36)
            button.setMinimumWidth(150)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=signal: s.emit())
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addWidget(title)
        layout.addSpacing(12)
        layout.addWidget(text)
        layout.addSpacing(18)
        layout.addLayout(buttons)
        layout.addSpacing(8)
        layout.addWidget(formats)
        layout.addStretch(3)
