"""The *Over time* tab: a time-lapse's cell count, or the median of a measurement, page by
page, from the cell tables its segmented pages hold (a growth curve, cells rounding up,
a reporter switching on). A click on a point shows that page."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .histogram import PlotWidget, plotted_columns
from .table import friendly_name, table_columns

#: The combo's entry for the number of cells (not a column of the tables).
COUNT = "Cells"


def time_course(tables: dict, measurement: str = COUNT) -> tuple[np.ndarray, np.ndarray]:
    """``tables``: {page: cell table} of a file's segmented pages. Returns the pages in order
    and, for each, its number of cells (``measurement`` COUNT) or the median of that column
    over its cells (nan where it has none, or lacks the column)."""
    pages = np.array(sorted(tables), dtype=int)
    values = []
    for page in pages.tolist():
        columns = table_columns(tables[page])
        if measurement == COUNT:
            first = next(iter(columns.values()), [])
            values.append(float(len(first)))
            continue
        column = np.asarray(columns.get(measurement, []), dtype=float)
        column = column[np.isfinite(column)]
        values.append(float(np.median(column)) if column.size else float("nan"))
    return pages, np.array(values, dtype=float)


class TimeCoursePlot(PlotWidget):
    """Points joined by lines, one per segmented page; the page shown marked in orange."""

    page_clicked = Signal(int)

    MARGIN = (52, 10, 12, 34)  # left, top, right, bottom

    def __init__(self, parent=None):
        super().__init__("Copy the values as a table", parent)
        self.pages = np.zeros(0, dtype=int)
        self.values = np.zeros(0)
        self.n_pages = 1
        self.shown = -1  # the page shown
        self.measurement = COUNT
        self.setToolTip("Click a point to show that page; right-click to copy the values.")

    def set_course(self, pages, values, n_pages: int, shown: int, measurement: str) -> None:
        self.pages, self.values = np.asarray(pages, int), np.asarray(values, float)
        self.n_pages, self.shown, self.measurement = max(int(n_pages), 1), int(shown), measurement
        self.update()

    def table_text(self) -> str:
        """Page and value per segmented page, tab-separated."""
        name = "Cells" if self.measurement == COUNT else f"Median {self.measurement}"
        lines = [f"Page\t{name}"]
        lines += [f"{p}\t{v:.6g}" for p, v in zip(self.pages, self.values, strict=True)]
        return "\n".join(lines) + "\n" if len(self.pages) else ""

    def _range(self) -> tuple[float, float]:
        finite = self.values[np.isfinite(self.values)]
        if not finite.size:
            return 0.0, 1.0
        low = 0.0 if self.measurement == COUNT else float(finite.min())
        high = float(finite.max())
        return (low, high) if high > low else (low - 0.5, high + 0.5)

    def point(self, k: int) -> QPointF:
        """Where the value of ``self.pages[k]`` is drawn (widget pixels)."""
        area = self._area()
        low, high = self._range()
        span = max(self.n_pages - 1, 1)
        x = area.left() + area.width() * self.pages[k] / span
        value = self.values[k] if np.isfinite(self.values[k]) else low
        return QPointF(x, area.bottom() - area.height() * (value - low) / (high - low))

    def page_at(self, x: float) -> int:
        """The segmented page nearest to horizontal position ``x``, -1 for none."""
        if not len(self.pages):
            return -1
        distances = [abs(self.point(k).x() - x) for k in range(len(self.pages))]
        return int(self.pages[int(np.argmin(distances))])

    def paintEvent(self, event):  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        area = self._axes(painter)
        if not len(self.pages):
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "No page segmented yet")
            return
        low, high = self._range()
        painter.drawText(
            QRectF(0, area.top() - 6, area.left() - 4, 14),
            Qt.AlignmentFlag.AlignRight,
            f"{high:.4g}",
        )
        painter.drawText(
            QRectF(0, area.bottom() - 8, area.left() - 4, 14),
            Qt.AlignmentFlag.AlignRight,
            f"{low:.4g}",
        )
        painter.drawText(
            QRectF(area.left(), area.bottom() + 4, area.width(), 14),
            Qt.AlignmentFlag.AlignCenter,
            f"page (0 – {self.n_pages - 1})",
        )
        if 0 <= self.shown < self.n_pages:  # the page shown
            x = area.left() + area.width() * self.shown / max(self.n_pages - 1, 1)
            painter.setPen(QPen(QColor(230, 120, 20), 2))
            painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
        points = [self.point(k) for k in range(len(self.pages))]
        painter.setPen(QPen(QColor(60, 100, 180), 2))
        for k in range(1, len(points)):
            if self.pages[k] == self.pages[k - 1] + 1:  # a page not segmented: a gap
                painter.drawLine(points[k - 1], points[k])
        painter.setBrush(QColor(60, 100, 180))
        for k, p in enumerate(points):
            if np.isfinite(self.values[k]):
                painter.drawEllipse(p, 3, 3)

    def mouseReleaseEvent(self, event):  # noqa: N802 - Qt override
        page = self.page_at(event.position().x())
        if page >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.page_clicked.emit(page)


class TimeCourseView(QWidget):
    """The tab: what to follow over time, and the plot."""

    page_wanted = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.measurement = QComboBox()
        self.measurement.setToolTip(
            "The number of cells on each page, or the median of a measurement over each "
            "page's cells"
        )
        self.plot = TimeCoursePlot()
        self.note = QLabel("")
        row = QHBoxLayout()
        row.addWidget(QLabel("Over the pages:"))
        row.addWidget(self.measurement, 1)
        row.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        self._tables: dict = {}
        self._n_pages, self._shown = 1, -1
        self._chosen = COUNT  # kept from image to image
        self.measurement.currentIndexChanged.connect(self._chose)
        self.plot.page_clicked.connect(self.page_wanted.emit)

    def set_document(self, doc) -> None:
        """The image shown (a Document, or None): its segmented pages at the channel shown."""
        image = getattr(doc, "image", None)
        n_pages = image.n_pages if image is not None else 1
        tables: dict = {}
        if doc is not None and n_pages > 1:
            for (page, channel), result in doc.results.items():
                if channel == doc.channel and result.table is not None:
                    tables[page] = result.table
        self._tables, self._n_pages = tables, n_pages
        self._shown = doc.page if doc is not None else -1
        names = [COUNT]
        for table in tables.values():
            names += [n for n in plotted_columns(table_columns(table)) if n not in names]
        if names != [self.measurement.itemData(k) for k in range(self.measurement.count())]:
            self.measurement.blockSignals(True)
            self.measurement.clear()
            for name in names:
                self.measurement.addItem(
                    "Cells (count)" if name == COUNT else f"Median {friendly_name(name)}", name
                )
            self.measurement.setCurrentIndex(max(self.measurement.findData(self._chosen), 0))
            self.measurement.blockSignals(False)
        if n_pages <= 1:
            self.note.setText("for files of several pages (a time-lapse)")
        else:
            self.note.setText(f"{len(tables)} of {n_pages} pages segmented")
        self._redraw()

    def _chose(self) -> None:
        self._chosen = self.measurement.currentData() or COUNT
        self._redraw()

    def _redraw(self) -> None:
        name = self.measurement.currentData() or COUNT
        pages, values = time_course(self._tables, name)
        self.plot.set_course(pages, values, self._n_pages, self._shown, name)
