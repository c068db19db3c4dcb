"""The *Over time* tab: a time-lapse's cell count, or the median of a measurement, time
point by time point, from the cell tables its segmented pages hold (a growth curve, cells
rounding up, a reporter switching on); where its cells were followed, the measurement of
each selected cell's track too (one cell growing until it divides). The time points are the
pages of a file or, where a batch followed the cells of a folder's images, those images
(``AppController.time_lapse``; "pages" below stands for either). A click on a point shows
that time point."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .histogram import PlotWidget, plotted_columns
from .render import label_colours
from .table import friendly_name, table_columns

#: The combo's entry for the number of cells (not a column of the tables).
COUNT = "Cells"

#: The most tracks drawn at once (a selection of every cell would draw a thicket).
MAX_TRACKS = 12


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


def track_course(tables: dict, track: int, measurement: str) -> tuple[np.ndarray, np.ndarray]:
    """The pages (in order) on which cells followed over time have ``track`` (their
    ``TrackObjects_Label``), and its cell's ``measurement`` on each (nan where the table lacks
    it)."""
    pages, values = [], []
    for page in sorted(tables):
        columns = table_columns(tables[page])
        tracks = np.asarray(columns.get("TrackObjects_Label", []), dtype=float)
        rows = np.flatnonzero(tracks == track)
        if not rows.size:
            continue
        column = columns.get(measurement)
        pages.append(page)
        values.append(float(column[rows[0]]) if column is not None else float("nan"))
    return np.array(pages, dtype=int), np.array(values, dtype=float)


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
        self.axis = "page"  # what a time point is: a "page" of a file, an "image" of a folder
        self.measurement = COUNT
        self.tracks: dict = {}  # track -> (pages, values): the selected cells' tracks
        self.setToolTip(
            "Click a point to show that page; right-click to copy the values. Where the "
            "cells were followed over time, a measurement of each selected cell's track is "
            "drawn in its colour."
        )

    def set_course(
        self, pages, values, n_pages: int, shown: int, measurement: str, tracks=None, axis="page"
    ) -> None:
        """``tracks``: {track: (pages, values)} drawn beside the median, in their colours;
        ``axis``: what a time point is, "page" or "image"."""
        self.axis = axis
        # room on the right for the tracks' numbers at the ends of their lines
        self.MARGIN = (*type(self).MARGIN[:2], 56 if tracks else 12, type(self).MARGIN[3])
        self.pages, self.values = np.asarray(pages, int), np.asarray(values, float)
        self.n_pages, self.shown, self.measurement = max(int(n_pages), 1), int(shown), measurement
        self.tracks = dict(tracks or {})
        self.update()

    def table_text(self) -> str:
        """Page and value per segmented page, and each track's, tab-separated."""
        name = "Cells" if self.measurement == COUNT else f"Median {self.measurement}"
        header = [f"{self.axis.title()}\t{name}", *(f"\tTrack {t}" for t in self.tracks)]
        lines = ["".join(header)]
        for p, v in zip(self.pages.tolist(), self.values.tolist(), strict=True):
            cells = [f"{p}\t{v:.6g}"]
            for pages, values in self.tracks.values():
                at = np.flatnonzero(pages == p)
                cells.append(f"\t{values[at[0]]:.6g}" if at.size else "\t")
            lines.append("".join(cells))
        return "\n".join(lines) + "\n" if len(self.pages) else ""

    def _range(self) -> tuple[float, float]:
        every = [self.values, *(values for _, values in self.tracks.values())]
        finite = np.concatenate(every)
        finite = finite[np.isfinite(finite)]
        if not finite.size:
            return 0.0, 1.0
        low = 0.0 if self.measurement == COUNT else float(finite.min())
        high = float(finite.max())
        return (low, high) if high > low else (low - 0.5, high + 0.5)

    def point(self, k: int, track: int | None = None) -> QPointF:
        """Where the value of ``self.pages[k]`` is drawn (widget pixels); with ``track``,
        the ``k``-th value of that track's."""
        pages, values = self.tracks[track] if track is not None else (self.pages, self.values)
        area = self._area()
        low, high = self._range()
        span = max(self.n_pages - 1, 1)
        x = area.left() + area.width() * pages[k] / span
        value = values[k] if np.isfinite(values[k]) else low
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
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, f"No {self.axis} segmented yet")
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
            f"{self.axis} (0 – {self.n_pages - 1})",
        )
        if 0 <= self.shown < self.n_pages:  # the page shown
            x = area.left() + area.width() * self.shown / max(self.n_pages - 1, 1)
            painter.setPen(QPen(QColor(230, 120, 20), 2))
            painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
        median = QColor(60, 100, 180)
        self._line(painter, None, median)
        if not self.tracks:
            return
        ends = [(self.point(len(self.pages) - 1), "median", median)]  # which line is which
        colours = label_colours(max(self.tracks))
        for track, (pages, _) in self.tracks.items():
            colour = QColor(*(int(v) for v in colours[track]))
            self._line(painter, track, colour)
            ends.append((self.point(len(pages) - 1, track), f"#{track}", colour.darker(130)))
        below = -1e9  # each name at the end of its line, moved down clear of the one above
        for end, text, colour in sorted(ends, key=lambda e: e[0].y()):
            below = max(end.y() + 4, below + 13)
            painter.setPen(QPen(colour))
            painter.drawText(QPointF(end.x() + 5, below), text)

    def _line(self, painter: QPainter, track: int | None, colour: QColor) -> None:
        """The median's points (``track`` None) or a track's, joined where pages follow."""
        pages, values = self.tracks[track] if track is not None else (self.pages, self.values)
        points = [self.point(k, track) for k in range(len(pages))]
        painter.setPen(QPen(colour, 2))
        for k in range(1, len(points)):
            if pages[k] == pages[k - 1] + 1:  # a page not segmented: a gap
                painter.drawLine(points[k - 1], points[k])
        painter.setBrush(colour)
        for k, p in enumerate(points):
            if np.isfinite(values[k]):
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
        row.addWidget(QLabel("Over time:"))
        row.addWidget(self.measurement, 1)
        row.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        self._tables: dict = {}
        self._n_pages, self._shown = 1, -1
        self._by_page = True
        self._chosen = COUNT  # kept from image to image
        self._tracks: list = []  # the selected cells' tracks
        self.measurement.currentIndexChanged.connect(self._chose)
        self.plot.page_clicked.connect(self.page_wanted.emit)

    def set_time_lapse(self, tables: dict, n_points: int, shown: int, by_page: bool) -> None:
        """The time-lapse of the image shown (``AppController.time_lapse``): {time point:
        cell table} of its segmented time points, how many it has, the one shown, and
        whether they are pages of a file (else images of a folder)."""
        self._tables, self._n_pages, self._shown = dict(tables), max(int(n_points), 1), shown
        self._by_page = by_page
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
        self._redraw()

    def set_tracks(self, tracks) -> None:
        """The tracks of the cells selected (their ``TrackObjects_Label``; none where the
        cells were not followed), their mothers' and daughters': each drawn with the
        measurement chosen."""
        tracks = sorted({int(t) for t in tracks})
        if tracks != self._tracks:
            self._tracks = tracks
            self._redraw()

    def _chose(self) -> None:
        self._chosen = self.measurement.currentData() or COUNT
        self._redraw()

    def _redraw(self) -> None:
        name = self.measurement.currentData() or COUNT
        pages, values = time_course(self._tables, name)
        tracks = {}
        for track in self._tracks[:MAX_TRACKS]:
            course = track_course(self._tables, track, name)
            if len(course[0]):
                tracks[track] = course
        # a cell is not counted: its tracks are drawn with a measurement
        drawn = tracks if name != COUNT else {}
        axis = "page" if self._by_page else "image"
        self.plot.set_course(pages, values, self._n_pages, self._shown, name, drawn, axis)
        if self._n_pages <= 1:
            self.note.setText(
                "for a time-lapse: a file of several pages, or a folder's images whose cells "
                "a batch followed"
            )
            return
        how = "segmented" if self._by_page else "followed"
        text = f"{len(self._tables)} of {self._n_pages} {axis}s {how}"
        if tracks and not drawn:
            text += "; choose a measurement to follow the selected cells"
        elif tracks:
            text += f"; {len(tracks)} track{'s' if len(tracks) > 1 else ''} of the selected cells"
            more = len(self._tracks) - MAX_TRACKS
            text += f" (the first {MAX_TRACKS}; {more} more)" if more > 0 else ""
        self.note.setText(text)
