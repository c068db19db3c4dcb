"""How one measurement is spread over the cells of the image shown: a histogram whose bars
are the cells themselves. A click on a bar selects its cells (with Ctrl or Shift: adds
them), to find them in the image or to remove them together (debris among the smallest
areas, two cells taken for one among the largest).

Over *all segmented images* the bars pool the cells of every image open (each segmented
page of a file), and the image shown is drawn over them as an outline, scaled to the same
number of cells, so that an image that differs from the rest of its experiment shows."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from . import render
from .messages import count_cells
from .table import LABEL_COLUMNS, friendly_name, table_columns
from .viewer import adds_to_selection

#: Parts of the names of columns not worth a histogram: numbers, positions and directions
#: (a cell's own number: a name of LABEL_COLUMNS, whole).
NOT_PLOTTED = (
    "Center",
    "BoundingBox",
    "Orientation",
    "TouchesBorder",
    "ObjectNumber",
    "TrackObjects_Label",
)

BINS = 20


def histogram_bins(values, n_bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Equal bins from the smallest value to the largest: their ``n_bins + 1`` edges, and
    each value's bin (-1 where the value is not a number). Whole numbers spanning fewer
    than ``n_bins`` (a count of neighbours, a track's lifetime): one bin each (edges half
    way between), so that no bar holds two of them and none falls between; one bin when all
    are equal; no edges when there is no number at all."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(0), np.full(values.shape, -1, dtype=int)
    low, high = float(values[finite].min()), float(values[finite].max())
    if low == high or (high - low < n_bins and (values[finite] % 1 == 0).all()):
        edges = np.arange(low - 0.5, high + 1.0)
    else:
        edges = np.linspace(low, high, n_bins + 1)
    return edges, bins_of(values, edges)


def whole_bins(edges: np.ndarray) -> bool:
    """Whether ``edges`` are one bin per whole number (:func:`histogram_bins`)."""
    return len(edges) > 1 and float(edges[0]) % 1 == 0.5 and bool(np.allclose(np.diff(edges), 1.0))


def bins_of(values, edges: np.ndarray) -> np.ndarray:
    """Each value's bin among ``edges`` (-1 where it is not a number or lies outside)."""
    values = np.asarray(values, dtype=float)
    which = np.full(values.shape, -1, dtype=int)
    n = len(edges) - 1
    if n < 1:
        return which
    inside = np.isfinite(values) & (values >= edges[0]) & (values <= edges[-1])
    which[inside] = np.clip(np.searchsorted(edges, values[inside], side="right") - 1, 0, n - 1)
    return which


def plotted_columns(columns: dict) -> list[str]:
    """The measurements among a cell table's columns (:func:`~.table.table_columns`) that a
    histogram shows, in the table's order."""
    return [
        name
        for name, values in columns.items()
        if name not in LABEL_COLUMNS
        and not any(part in name for part in NOT_PLOTTED)
        and np.asarray(values).dtype.kind in "iuf"
    ]


class PlotWidget(QWidget):
    """A plot of the bottom tabs: drawn inside ``MARGIN`` (room for the axes' numbers), with
    a right-click menu that copies its figures as a table (:meth:`table_text`, for a
    spreadsheet) or the plot as a picture (for a slide)."""

    MARGIN = (44, 10, 10, 34)  # left, top, right, bottom

    def __init__(self, table_action: str, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(140)
        copy_table = QAction(table_action, self)
        copy_table.triggered.connect(self.copy_table)
        copy_plot = QAction("Copy the plot as a picture", self)
        copy_plot.triggered.connect(lambda: QGuiApplication.clipboard().setPixmap(self.grab()))
        self.addActions([copy_table, copy_plot])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def table_text(self) -> str:
        """The plot's figures as tab-separated rows (what a spreadsheet pastes into
        columns); empty without any."""
        raise NotImplementedError

    def copy_table(self) -> str:
        """Put :meth:`table_text` on the clipboard; returns it."""
        text = self.table_text()
        QGuiApplication.clipboard().setText(text)
        return text

    def _area(self) -> QRectF:
        left, top, right, bottom = self.MARGIN
        return QRectF(left, top, self.width() - left - right, self.height() - top - bottom)

    def _axes(self, painter: QPainter) -> QRectF:
        """Draw the two axes in the text colour (the pen stays so); returns the area."""
        area = self._area()
        painter.setPen(QPen(self.palette().color(self.foregroundRole())))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        return area


class HistogramPlot(PlotWidget):
    """The bars; the cells in the selection are drawn darker within their bar. Over several
    images (``shown`` given) the bars are all their cells and the image shown is an outline
    over them, multiplied by ``scale`` (all cells / its cells) to compare shapes."""

    bars_chosen = Signal(int, int, bool)  # first and last bar, add to the selection
    bar_opened = Signal(int)  # a bar double-clicked

    def __init__(self, parent=None):
        super().__init__("Copy the bars as a table", parent)
        self.edges = np.zeros(0)
        self.counts = np.zeros(0, dtype=int)
        self.chosen = np.zeros(0, dtype=int)  # selected cells per bin
        self.shown: np.ndarray | None = None  # the image shown's cells per bin (pooled view)
        self.scale = 1.0  # the pooled view's factor from the image shown to all images
        self.images = 1  # how many images the bars hold
        self.where: list = []  # pooled: (image name, its cells per bar) for the tooltips
        self.coloured = False  # bars in the colours the cells are drawn in (their legend)
        self._pressed = -1  # the bar a click or drag began on
        self.setMouseTracking(True)  # each bar's tooltip says what it holds
        self.setToolTip(self.describe_bar(-1))
        self.measurement = ""  # the CSV name of what the bars count (the copied table's)

    def set_bins(
        self,
        edges: np.ndarray,
        counts: np.ndarray,
        chosen: np.ndarray,
        shown: np.ndarray | None = None,
        images: int = 1,
    ) -> None:
        """Bars of ``counts`` cells, ``chosen`` of them selected; over several ``images``,
        ``shown`` are the image shown's cells per bar (its selected cells among them)."""
        self.edges, self.counts, self.chosen, self.shown = edges, counts, chosen, shown
        self.images = images
        total = int(shown.sum()) if shown is not None else 0
        self.scale = float(counts.sum()) / total if total else 1.0
        self.update()

    def table_text(self) -> str:
        """The bars as tab-separated rows: each bar's range of the measurement, its cells,
        and over several images the image shown's cells and selected ones."""
        name = self.measurement or "Value"
        head = [f"{name} from", f"{name} to"]
        if self.shown is None:
            head += ["Cells", "Selected"]
        else:
            head += [f"Cells in {self.images} images", "Cells in the image shown", "Selected"]
        lines = ["\t".join(head)]
        for k, count in enumerate(self.counts):
            row = [f"{self.edges[k]:.6g}", f"{self.edges[k + 1]:.6g}", str(int(count))]
            if self.shown is not None:
                row.append(str(int(self.shown[k])))
            lines.append("\t".join([*row, str(int(self.chosen[k]))]))
        return "\n".join(lines) + "\n" if len(self.counts) else ""

    def bin_at(self, x: float) -> int:
        """The bar under horizontal position ``x`` (widget pixels), -1 for none."""
        area, n = self._area(), len(self.counts)
        if not n or not area.left() <= x < area.right():
            return -1
        return min(int((x - area.left()) / area.width() * n), n - 1)

    def bar_centre(self, k: int) -> QPointF:
        """Where bar ``k`` is drawn (for tests and tooltips)."""
        area = self._area()
        return QPointF(area.left() + (k + 0.5) * area.width() / len(self.counts), area.bottom() - 2)

    def paintEvent(self, event):  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        area = self._axes(painter)
        n = len(self.counts)
        if not n:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "No cells")
            return
        scale = self.scale if self.shown is not None else 1.0
        highest = (
            self.counts.max()
            if self.shown is None
            else max(self.counts.max(), self.shown.max() * scale)
        )
        top = max(float(highest), 1.0)
        width = area.width() / n
        fills = [QColor(110, 150, 210)] * n
        if self.coloured:  # each bar in the colour of its cells in the image: the legend
            mids = (self.edges[:-1] + self.edges[1:]) / 2
            fills = [QColor(*rgb) for rgb in render.value_colours(mids, *self.edges[[0, -1]])]
        for k, (count, chosen) in enumerate(zip(self.counts, self.chosen, strict=True)):
            x = area.left() + k * width
            for value, colour in (
                (count, fills[k]),
                (chosen * scale, fills[k].darker(250) if self.coloured else QColor(30, 60, 140)),
            ):
                if value:
                    height = area.height() * value / top
                    bar = QRectF(x + 1, area.bottom() - height, max(width - 2, 1), height)
                    painter.fillRect(bar, colour)
        if self.shown is not None:  # the image shown, as an outline over all images' bars
            painter.setPen(QPen(QColor(230, 120, 20), 2))
            y = area.bottom()
            for k, count in enumerate(self.shown):
                x = area.left() + k * width
                height = area.bottom() - area.height() * count * scale / top
                painter.drawLine(QPointF(x, y), QPointF(x, height))
                painter.drawLine(QPointF(x, height), QPointF(x + width, height))
                y = height
            painter.drawLine(QPointF(area.right(), y), QPointF(area.right(), area.bottom()))
            painter.setPen(QPen(self.palette().color(self.foregroundRole())))
        metrics = painter.fontMetrics()
        below = area.bottom() + metrics.height()
        labels = (
            (self.edges[0], area.left(), Qt.AlignmentFlag.AlignLeft),
            (
                (self.edges[0] + self.edges[-1]) / 2,
                area.center().x(),
                Qt.AlignmentFlag.AlignHCenter,
            ),
            (self.edges[-1], area.right(), Qt.AlignmentFlag.AlignRight),
        )
        if whole_bins(self.edges):  # each bar's own number under it, as room allows
            room = max(1, int(np.ceil(metrics.horizontalAdvance("0000") / width)))
            labels = tuple(
                (
                    self.edges[k] + 0.5,
                    area.left() + (k + 0.5) * width,
                    Qt.AlignmentFlag.AlignHCenter,
                )
                for k in range(0, n, room)
            )
        for value, x, align in labels:
            label = f"{value:.4g}"
            w = metrics.horizontalAdvance(label)
            left = {Qt.AlignmentFlag.AlignLeft: x, Qt.AlignmentFlag.AlignRight: x - w}.get(
                align, x - w / 2
            )
            painter.drawText(QPointF(left, below), label)
        painter.drawText(QPointF(4, area.top() + metrics.ascent()), f"{top:.0f}")
        painter.drawText(QPointF(4, area.bottom()), "0")

    def describe_bar(self, k: int) -> str:
        """What bar ``k`` holds, in words (its tooltip)."""
        if not 0 <= k < len(self.counts):
            return (
                "Click a bar to select its cells, drag across bars for a range of values; "
                "Ctrl- or Shift-click adds them."
            )
        low, high = self.edges[k], self.edges[k + 1]
        count, chosen = int(self.counts[k]), int(self.chosen[k])
        text = f"{low:.4g} to {high:.4g}: {count} cell{'s' * (count != 1)}"
        if self.shown is not None:
            text += (
                f" of {self.images} image{'s' * (self.images != 1)}, "
                f"{int(self.shown[k])} in the image shown"
            )
        text += f", {chosen} selected" if chosen else ""
        most = sorted(
            ((int(counts[k]), name) for name, counts in self.where if counts[k]),
            key=lambda pair: -pair[0],
        )
        if most:
            listed = ", ".join(f"{name} ({count})" for count, name in most[:3])
            text += f"\nMost in {listed}" + (" …" if len(most) > 3 else "")
            text += f"\nDouble-click: show {most[0][1]} with these cells selected"
        return text

    def mouseMoveEvent(self, event):  # noqa: N802 - Qt override
        self.setToolTip(self.describe_bar(self.bin_at(event.position().x())))
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event):  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressed = self.bin_at(event.position().x())

    def mouseReleaseEvent(self, event):  # noqa: N802 - Qt override
        """A click chooses a bar, a drag across bars all of them (a range of values)."""
        first, self._pressed = self._pressed, -1
        if event.button() != Qt.MouseButton.LeftButton or first < 0:
            return
        x = min(max(event.position().x(), self._area().left()), self._area().right() - 1)
        last = self.bin_at(x)
        self.bars_chosen.emit(min(first, last), max(first, last), adds_to_selection(event))

    def mouseDoubleClickEvent(self, event):  # noqa: N802 - Qt override
        k = self.bin_at(event.position().x())
        if event.button() == Qt.MouseButton.LeftButton and k >= 0:
            self.bar_opened.emit(k)


class HistogramView(QWidget):
    """A measurement chooser over the plot; the bars' cells come out as ``cells_chosen``.

    *Cells of* chooses the image shown or all segmented images (``set_pool_source`` names
    where their cell tables come from; ``pool_changed`` says when they changed). A bar
    clicked over all images selects the image shown's cells in it; double-clicked, it asks
    for the image with most cells in it (``image_wanted``: that image's key and the bar).
    """

    cells_chosen = Signal(object, bool)  # cell numbers, add them to the selection
    # cells coloured by a measurement: its name and the values of the darkest and the
    # brightest colour ("" when the cells keep their own colours)
    colouring = Signal(str, float, float)
    image_wanted = Signal(object, int)  # pooled: the key of the image with most cells in a bar

    def __init__(self, parent=None):
        super().__init__(parent)
        self.measurement = QComboBox()
        self.measurement.setToolTip("The measurement whose spread over the cells is shown")
        self.scope = QComboBox()
        self.scope.addItem("This image", "image")
        self.scope.addItem("All segmented images", "all")
        self.scope.setToolTip(
            "All segmented images: the cells of every image open, the image shown drawn over "
            "them as an outline (scaled to the same number of cells)"
        )
        self.summary = QLabel()
        self.plot = HistogramPlot()
        top = QHBoxLayout()
        top.addWidget(QLabel("Measurement"))
        top.addWidget(self.measurement)
        top.addWidget(QLabel("Cells of"))
        top.addWidget(self.scope)
        self.colour_cells = QCheckBox("Colour the cells by it")
        self.colour_cells.setToolTip(
            "Fill each cell in the image with the colour of its value (dark blue: lowest, "
            "yellow: highest; the bars are the legend), to see where the big, bright or round "
            "cells lie"
        )
        top.addWidget(self.colour_cells)
        top.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        self._columns: dict = {}
        self._labels = np.zeros(0, dtype=int)
        self._which = np.zeros(0, dtype=int)
        self._selected: tuple = ()
        self._wanted = ""  # the measurement chosen last: kept from image to image
        self._pool = lambda: []  # (key, name, cell table) of every segmented image
        self._keys: list = []  # pooled: the images' keys, in the order of ``plot.where``
        self._stale = False  # the pooled view waits to be shown to be drawn anew
        # a batch reports each image as it ends: one redraw for those of a quarter second
        # (pooling a thousand images' cells takes some 30 ms)
        self._pool_timer = QTimer(self)
        self._pool_timer.setSingleShot(True)
        self._pool_timer.setInterval(250)
        self._pool_timer.timeout.connect(self._fill_measurements)
        # The count in "All segmented images (N)" likewise: counting every image at every
        # image's change made a batch or Open results of thousands of images quadratic
        # (4,000 images: the window frozen 8.5 s).
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(250)
        self._count_timer.timeout.connect(self._count_pool)
        self.measurement.currentIndexChanged.connect(self._measurement_chosen)
        self.scope.currentIndexChanged.connect(lambda _: self._fill_measurements())
        self.colour_cells.toggled.connect(lambda _: self._redraw())
        self.plot.bars_chosen.connect(self._bars_chosen)
        self.plot.bar_opened.connect(self._bar_opened)

    def set_pool_source(self, images) -> None:
        """``images()`` gives (key, name, cell table) of every segmented image (the pooled
        view; the key comes back with ``image_wanted``)."""
        self._pool = images
        self.pool_changed()

    def pool_changed(self) -> None:
        """Some image's cells changed: the pooled view follows (when next shown, if hidden:
        a batch reports every image), and its count a quarter second later."""
        if not self._count_timer.isActive():
            self._count_timer.start()
        self._stale = self.pooled() and not self.isVisible()
        if self.pooled() and not self._stale and not self._pool_timer.isActive():
            self._pool_timer.start()

    def _count_pool(self) -> None:
        self.scope.setItemText(1, f"All segmented images ({len(self._pool())})")

    def showEvent(self, event):  # noqa: N802 - Qt override
        if self._stale:
            self._stale = False
            self._fill_measurements()
        super().showEvent(event)

    def pooled(self) -> bool:
        return self.scope.currentData() == "all"

    def set_table(self, table, selected=()) -> None:
        """Show the cells of this table (None: none), the ``selected`` ones darker."""
        self._selected = tuple(selected)
        columns = table_columns(table)
        label = next((c for c in LABEL_COLUMNS if c in columns), None)
        rows = len(next(iter(columns.values()))) if columns else 0
        self._labels = np.asarray(columns[label], dtype=int) if label else np.arange(1, rows + 1)
        self._columns = {name: columns[name] for name in plotted_columns(columns)}
        self._fill_measurements()

    def _fill_measurements(self) -> None:
        """The measurements offered: the image shown's (over all images, without cells of
        its own: the first segmented image's), the one chosen last kept."""
        names = list(self._columns)
        if not names and self.pooled():
            first = next((table for _, _, table in self._pool() if table is not None), None)
            names = plotted_columns(table_columns(first))
        area = next((name for name in names if name.startswith("AreaShape_Area")), "")
        wanted = self._wanted or area
        self.measurement.blockSignals(True)
        self.measurement.clear()
        for name in names:
            self.measurement.addItem(friendly_name(name), name)
        index = self.measurement.findData(wanted)
        self.measurement.setCurrentIndex(max(index, 0) if names else -1)
        self.measurement.blockSignals(False)
        self._redraw()

    def set_selected(self, labels) -> None:
        """Darken the selected cells within their bars."""
        self._selected = tuple(labels)
        self._redraw()

    def _measurement_chosen(self, index: int) -> None:
        self._wanted = self.measurement.itemData(index) or self._wanted
        self._redraw()

    def current_measurement(self) -> str:
        return self.measurement.currentData() or ""

    def _redraw(self) -> None:
        name = self.current_measurement()
        values = self._columns.get(name)
        mine = np.asarray(values if values is not None else [], dtype=float)
        pooled, left_out, names, self._keys = [], 0, [], []
        if self.pooled():
            for key, image, table in self._pool():
                columns = table_columns(table)
                if name in columns:
                    pooled.append(np.asarray(columns[name], dtype=float))
                    names.append(image)
                    self._keys.append(key)
                else:  # measured in other units (no pixel size), or not at all
                    left_out += 1
        every = np.concatenate(pooled) if pooled else mine
        edges, _ = histogram_bins(every)
        n = max(len(edges) - 1, 0)
        self._which = bins_of(mine, edges)
        inside = self._which >= 0
        shown = np.bincount(self._which[inside], minlength=n)
        chosen = np.isin(self._labels, self._selected) & inside
        picked = np.bincount(self._which[chosen], minlength=n)
        self.plot.measurement = name
        self.plot.where = []
        for image, values in zip(names, pooled, strict=True):
            which = bins_of(values, edges)
            self.plot.where.append((image, np.bincount(which[which >= 0], minlength=n)))
        if pooled:
            counts = np.sum([c for _, c in self.plot.where], axis=0).astype(int)
            self.plot.set_bins(edges, counts, picked, shown, images=len(pooled))
        else:
            self.plot.set_bins(edges, shown, picked)
        self.summary.setText(self._describe(every, mine[inside], len(pooled), left_out, picked))
        self.plot.coloured = self.colour_cells.isChecked() and n > 0
        if self.plot.coloured:
            self.colouring.emit(name, float(edges[0]), float(edges[-1]))
        else:
            self.colouring.emit("", 0.0, 0.0)

    def values_by_label(self, name: str) -> np.ndarray:
        """The image shown's values of a measurement, indexed by cell number (NaN where a
        number has no cell), as :func:`~.render.fills_by_value_rgba` takes them."""
        values = np.asarray(self._columns.get(name, []), dtype=float)
        out = np.full(int(self._labels.max()) + 1 if len(self._labels) else 1, np.nan)
        if len(values) == len(self._labels):
            out[self._labels] = values
        return out

    @staticmethod
    def _describe(every, mine, images: int, left_out: int, picked) -> str:
        """The summary line: how many cells, their median; the selection."""
        every, mine = every[np.isfinite(every)], mine[np.isfinite(mine)]  # measured ones
        parts = []
        if images:
            parts.append(
                f"{count_cells(len(every))} in {images} image{'s' * (images != 1)}"
                + (f"; median {np.median(every):.4g}" if len(every) else "")
            )
            if left_out:
                parts.append(f"{left_out} without this measurement left out")
            if len(mine):
                parts.append(
                    f"the image shown (orange outline): {len(mine)}, median {np.median(mine):.4g}"
                )
        elif len(mine):
            parts.append(f"{count_cells(len(mine))}; median {np.median(mine):.4g}")
        if parts and picked.sum():
            parts.append(f"{picked.sum()} selected (Delete removes them)")
        return "; ".join(parts)

    def cells_in_bin(self, k: int, last: int | None = None) -> list[int]:
        """The numbers of the cells of the image shown whose value lies in bar ``k`` (to bar
        ``last``)."""
        last = k if last is None else last
        return self._labels[(self._which >= k) & (self._which <= last)].tolist()

    def _bars_chosen(self, first: int, last: int, adding: bool) -> None:
        self.cells_chosen.emit(self.cells_in_bin(first, last), adding)

    def image_with_most(self, k: int):
        """Pooled: the key of the image with most cells in bar ``k`` (None: not pooled)."""
        counts = [int(c[k]) for _, c in self.plot.where]
        if not counts or max(counts) == 0:
            return None
        return self._keys[int(np.argmax(counts))]

    def _bar_opened(self, k: int) -> None:
        key = self.image_with_most(k)
        if key is not None:
            self.image_wanted.emit(key, k)
