"""How one measurement is spread over the cells of the image shown: a histogram whose bars
are the cells themselves. A click on a bar selects its cells (with Ctrl or Shift: adds
them), to find them in the image or to remove them together (debris among the smallest
areas, two cells taken for one among the largest)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .table import LABEL_COLUMNS, friendly_name, table_columns
from .viewer import adds_to_selection

#: Columns not worth a histogram: numbers, positions and directions.
NOT_PLOTTED = ("Center", "BoundingBox", "Orientation", "TouchesBorder", *LABEL_COLUMNS)

BINS = 20


def histogram_bins(values, n_bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Equal bins from the smallest value to the largest: their ``n_bins + 1`` edges, and
    each value's bin (-1 where the value is not a number). One bin when all are equal;
    no edges when there is no number at all."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    which = np.full(values.shape, -1, dtype=int)
    if not finite.any():
        return np.zeros(0), which
    low, high = float(values[finite].min()), float(values[finite].max())
    if low == high:
        edges = np.array([low - 0.5, high + 0.5])
    else:
        edges = np.linspace(low, high, n_bins + 1)
    n = len(edges) - 1
    which[finite] = np.clip(np.searchsorted(edges, values[finite], side="right") - 1, 0, n - 1)
    return edges, which


def plotted_columns(columns: dict) -> list[str]:
    """The measurements among a cell table's columns (:func:`~.table.table_columns`) that a
    histogram shows, in the table's order."""
    return [
        name
        for name, values in columns.items()
        if not any(part in name for part in NOT_PLOTTED) and np.asarray(values).dtype.kind in "iuf"
    ]


class HistogramPlot(QWidget):
    """The bars; the cells in the selection are drawn darker within their bar."""

    bars_chosen = Signal(int, int, bool)  # first and last bar, add to the selection

    MARGIN = (44, 10, 10, 34)  # left, top, right, bottom: room for the axes' numbers

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.edges = np.zeros(0)
        self.counts = np.zeros(0, dtype=int)
        self.chosen = np.zeros(0, dtype=int)  # selected cells per bin
        self._pressed = -1  # the bar a click or drag began on
        self.setMouseTracking(True)  # each bar's tooltip says what it holds
        self.setToolTip(self.describe_bar(-1))

    def set_bins(self, edges: np.ndarray, counts: np.ndarray, chosen: np.ndarray) -> None:
        self.edges, self.counts, self.chosen = edges, counts, chosen
        self.update()

    def _area(self) -> QRectF:
        left, top, right, bottom = self.MARGIN
        return QRectF(left, top, self.width() - left - right, self.height() - top - bottom)

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
        area = self._area()
        text = self.palette().color(self.foregroundRole())
        painter.setPen(QPen(text))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        n = len(self.counts)
        if not n:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "No cells")
            return
        top = max(int(self.counts.max()), 1)
        width = area.width() / n
        for k, (count, chosen) in enumerate(zip(self.counts, self.chosen, strict=True)):
            x = area.left() + k * width
            for value, colour in ((count, QColor(110, 150, 210)), (chosen, QColor(30, 60, 140))):
                if value:
                    height = area.height() * value / top
                    bar = QRectF(x + 1, area.bottom() - height, max(width - 2, 1), height)
                    painter.fillRect(bar, colour)
        metrics = painter.fontMetrics()
        below = area.bottom() + metrics.height()
        for value, x, align in (
            (self.edges[0], area.left(), Qt.AlignmentFlag.AlignLeft),
            (
                (self.edges[0] + self.edges[-1]) / 2,
                area.center().x(),
                Qt.AlignmentFlag.AlignHCenter,
            ),
            (self.edges[-1], area.right(), Qt.AlignmentFlag.AlignRight),
        ):
            label = f"{value:.4g}"
            w = metrics.horizontalAdvance(label)
            left = {Qt.AlignmentFlag.AlignLeft: x, Qt.AlignmentFlag.AlignRight: x - w}.get(
                align, x - w / 2
            )
            painter.drawText(QPointF(left, below), label)
        painter.drawText(QPointF(4, area.top() + metrics.ascent()), str(top))
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
        return text + (f", {chosen} selected" if chosen else "")

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


class HistogramView(QWidget):
    """A measurement chooser over the plot; the bars' cells come out as ``cells_chosen``."""

    cells_chosen = Signal(object, bool)  # cell numbers, add them to the selection

    def __init__(self, parent=None):
        super().__init__(parent)
        self.measurement = QComboBox()
        self.measurement.setToolTip("The measurement whose spread over the cells is shown")
        self.summary = QLabel()
        self.plot = HistogramPlot()
        top = QHBoxLayout()
        top.addWidget(QLabel("Measurement"))
        top.addWidget(self.measurement)
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
        self.measurement.currentIndexChanged.connect(self._measurement_chosen)
        self.plot.bars_chosen.connect(self._bars_chosen)

    def set_table(self, table, selected=()) -> None:
        """Show the cells of this table (None: none), the ``selected`` ones darker."""
        self._selected = tuple(selected)
        columns = table_columns(table)
        names = plotted_columns(columns)
        label = next((c for c in LABEL_COLUMNS if c in columns), None)
        rows = len(next(iter(columns.values()))) if columns else 0
        self._labels = np.asarray(columns[label], dtype=int) if label else np.arange(1, rows + 1)
        self._columns = {name: columns[name] for name in names}
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
        values = self._columns.get(self.current_measurement())
        if values is None:
            self._which = np.zeros(0, dtype=int)
            self.summary.setText("")
            self.plot.set_bins(np.zeros(0), np.zeros(0, dtype=int), np.zeros(0, dtype=int))
            return
        edges, self._which = histogram_bins(values)
        n = max(len(edges) - 1, 0)
        inside = self._which >= 0
        counts = np.bincount(self._which[inside], minlength=n)
        chosen = np.isin(self._labels, self._selected) & inside
        picked = np.bincount(self._which[chosen], minlength=n)
        self.plot.set_bins(edges, counts, picked)
        finite = np.asarray(values, dtype=float)[inside]
        text = f"{inside.sum()} cells; median {np.median(finite):.4g}" if inside.any() else ""
        if text and picked.sum():
            text += f"; {picked.sum()} selected (Delete removes them)"
        self.summary.setText(text)

    def cells_in_bin(self, k: int, last: int | None = None) -> list[int]:
        """The numbers of the cells whose value lies in bar ``k`` (to bar ``last``)."""
        last = k if last is None else last
        return self._labels[(self._which >= k) & (self._which <= last)].tolist()

    def _bars_chosen(self, first: int, last: int, adding: bool) -> None:
        self.cells_chosen.emit(self.cells_in_bin(first, last), adding)
