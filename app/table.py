"""The per-cell feature table: a Qt model over the engine's CellTable, and its view."""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView

# Column names that hold the cell id, in the order they are looked for.
LABEL_COLUMNS = ("label", "ObjectNumber", "cell", "id")

#: Headings said otherwise than their words: a cell's track, the cell it was (or divided
#: from) at the time point before, and how many time points back that is (2 and more: its
#: track was missed in between, a gap closed).
HEADINGS = {
    "TrackObjects_Label": "Track",
    "TrackObjects_ParentObjectNumber": "Cell Before",
    "TrackObjects_GapLength": "Time Points Back",
}
#: The column whose values may be mended by hand where the time point before is there.
CELL_BEFORE = "TrackObjects_ParentObjectNumber"


#: The families of columns the header's menu groups, by the start of their names (the
#: others: "Other"), in the order the menu lists them.
COLUMN_GROUPS = (
    ("Shape and position", ("AreaShape_", "Detection_", "TouchesBorder")),
    ("Intensity", ("Intensity_",)),
    ("Ring around the cell", ("Ring_",)),
    ("Neighbours", ("Neighbors_",)),
    ("Over time", ("TrackObjects_",)),
)


def column_group(column: str) -> str:
    """The family of a column in the header's menu (:data:`COLUMN_GROUPS`)."""
    for group, starts in COLUMN_GROUPS:
        if column.startswith(starts):
            return group
    return "Other"


#: The neighbour measurements that the distance neighbours are found within changes.
_WITHIN = ("Neighbors_NumberOfNeighbors", "Neighbors_PercentTouching")


def friendly_name(column: str) -> str:
    """A short heading for a CellProfiler-style column name (the CSV keeps the full name)."""
    if column in LABEL_COLUMNS:
        return "Cell"
    if column in HEADINGS:
        return HEADINGS[column]
    within = ""
    ring = ""
    if column.startswith("Ring_"):  # the ring around the cell (engine ``rings``)
        column = column.removeprefix("Ring_")
        ring = "" if "CellToRingRatio" in column else "Ring "
    if column.startswith("Neighbors_"):  # how neighbours were found: touching, a distance,
        # or grown until they meet
        found = re.fullmatch(r"(Neighbors_[A-Za-z]+)_(Adjacent|Expanded|\d+)(_.*)?", column)
        if found:
            column = found.group(1) + (found.group(3) or "")
            # the count and the touching share depend on it; the nearest cells do not
            if found.group(2) == "Expanded" and found.group(1) in _WITHIN:
                within = " (expanded)"
            elif found.group(2) != "Adjacent" and found.group(1) in _WITHIN:
                within = f" (within {found.group(2)} px)"
    for prefix in ("AreaShape_", "Intensity_", "TrackObjects_", "Neighbors_"):
        if column.startswith(prefix):
            column = column[len(prefix) :]
    column = column.replace("_um2", " (µm²)").replace("_um", " (µm)")
    # split CamelCase words: "MaxFeretDiameter" -> "Max Feret Diameter"
    words, current = [], ""
    for ch in column.replace("_", " "):
        if ch.isupper() and current and not current.endswith(" ") and not current[-1].isupper():
            words.append(current)
            current = ""
        current += ch
    words.append(current)
    return ring + " ".join(w.strip() for w in words if w.strip()) + within


def table_columns(table) -> dict:
    """A cell table's columns, {name: values} (none for None)."""
    if table is None:
        return {}
    columns = getattr(table, "columns", None)
    if isinstance(columns, dict):
        return columns
    rows = table.rows()
    if not rows:
        return {}
    return {name: np.array([r[name] for r in rows]) for name in rows[0]}


def column_kind(name: str) -> str:
    """A column's name without what only says how it was measured: its unit
    (``AreaShape_Area_um2``: ``AreaShape_Area``) and for neighbours their method
    (``Neighbors_NumberOfNeighbors_5``, ``_Adjacent``, ``_Expanded``): a column hidden stays
    hidden once the cells are measured otherwise."""
    name = re.sub(r"_(?:um|nm|mm)2?$", "", name)
    return re.sub(r"^(Neighbors_[A-Za-z]+)_(?:Adjacent|Expanded|\d+)$", r"\1", name)


def shown_number(value: float) -> str:
    """A measurement as the table shows it: four significant digits, but a large one whole
    (an integrated intensity of 96873, not 9.687e+04); "" for no number."""
    if value != value:
        return ""
    if 1e4 <= abs(value) < 1e15:
        return f"{value:.0f}"
    return f"{value:.4g}"


class CellTableModel(QAbstractTableModel):
    """Rows = cells, columns = the engine's features, in the engine's order. Values are not
    changed here: a value of the editable column typed in is told (``edited``), and the
    table comes back measured anew."""

    edited = Signal(int, int)  # the cell (its label) and the value typed in its editable column

    def __init__(self, parent=None):
        super().__init__(parent)
        self._editable = ""  # the column whose values may be typed in (none: "")
        self._names: list[str] = []
        self._columns: list[np.ndarray] = []
        self._n_rows = 0
        self._label_column: np.ndarray | None = None

    def set_table(self, table) -> None:
        self.beginResetModel()
        columns = table_columns(table)
        self._names = list(columns)
        self._columns = [np.asarray(v) for v in columns.values()]
        self._n_rows = len(self._columns[0]) if self._columns else 0
        self._label_column = None
        for name in LABEL_COLUMNS:
            if name in columns:
                self._label_column = np.asarray(columns[name]).astype(np.int64)
                break
        if self._label_column is None and self._n_rows:
            self._label_column = np.arange(1, self._n_rows + 1)
        self.endResetModel()

    def set_editable(self, name: str) -> None:
        """Let the values of column ``name`` be typed in ("": none)."""
        self._editable = name

    # --- lookup between cell ids and rows
    def label_of_row(self, row: int) -> int:
        if self._label_column is None or not 0 <= row < self._n_rows:
            return 0
        return int(self._label_column[row])

    def row_of_label(self, label: int) -> int:
        if self._label_column is None:
            return -1
        hits = np.flatnonzero(self._label_column == label)
        return int(hits[0]) if hits.size else -1

    def column_names(self) -> list:
        return list(self._names)

    def row_text(self, row: int, columns: list | None = None) -> list[str]:
        """A row's values as the exported CSV writes them (of ``columns``, their indices:
        default every column)."""
        from cellprop.engine.output import format_value  # loaded: a table was measured

        chosen = range(len(self._columns)) if columns is None else columns
        return [format_value(self._columns[c][row]) for c in chosen]

    # --- Qt model interface
    def rowCount(self, parent=QModelIndex()):  # noqa: B008, N802 - Qt's signature
        return 0 if parent.isValid() else self._n_rows

    def columnCount(self, parent=QModelIndex()):  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._names)

    def _is_editable(self, index) -> bool:
        return bool(self._editable) and self._names[index.column()] == self._editable

    def flags(self, index):
        flags = super().flags(index)
        if index.isValid() and self._is_editable(index):
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole):  # noqa: N802 - Qt's
        if not (index.isValid() and role == Qt.ItemDataRole.EditRole and self._is_editable(index)):
            return False
        try:
            number = int(value)
        except (TypeError, ValueError):
            return False
        label = self.label_of_row(index.row())
        shown = int(self._columns[index.column()][index.row()])
        # the number typed is a cell of the time point before; the one shown may be of one
        # further back (a gap closed: Time Points Back 2), where the same number is a link
        gap = self._column_named("TrackObjects_GapLength")
        further = gap is not None and gap[index.row()] > 1
        if label and (number != shown or further):
            self.edited.emit(label, number)
        return False  # the table comes back from the controller, measured anew

    def _column_named(self, name: str):
        """The values of the column ``name``, or None where the table has none."""
        return self._columns[self._names.index(name)] if name in self._names else None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self._columns[index.column()][index.row()]
        if role == Qt.ItemDataRole.EditRole and self._is_editable(index):
            return int(value)
        if role == Qt.ItemDataRole.DisplayRole:
            if isinstance(value, (float, np.floating)):
                return shown_number(float(value))
            return str(value.item() if hasattr(value, "item") else value)
        if role == Qt.ItemDataRole.UserRole:  # the raw value, for sorting
            return value.item() if hasattr(value, "item") else value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if isinstance(value, (int, float, np.number)):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        horizontal = orientation == Qt.Orientation.Horizontal and 0 <= section < len(self._names)
        if role == Qt.ItemDataRole.ToolTipRole and horizontal:
            tip = f"{self._names[section]} (the column's name in the exported CSV)"
            if self._names[section] == self._editable:
                tip += (
                    ".\nWrong? Double-click a cell's value and type the number of the cell it "
                    "was at the time point before (0: none, a cell that came in); two cells "
                    "from one are its daughters. Ctrl+Z undoes."
                )
            return tip
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if horizontal:
            return friendly_name(self._names[section])
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        return None


class CellTableView(QTableView):
    """Sortable table; a clicked row reports its cell id, rows chosen with Ctrl or Shift
    report all their cells; ``select_labels`` highlights cells."""

    cell_clicked = Signal(int)
    cells_selected = Signal(object)  # the cells of the rows the user selected, the current last
    cell_before_edited = Signal(int, int)  # a cell, and the cell before it was, typed in
    hidden_changed = Signal(list)  # the names of the columns hidden, once the user changed them

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cells = CellTableModel(self)
        # told once the editor has closed: the table is then replaced by one measured anew
        self.cells.edited.connect(
            lambda cell, value: QTimer.singleShot(
                0, lambda: self.cell_before_edited.emit(cell, value)
            )
        )
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.cells)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # engine order until a click
        self.setEditTriggers(  # only the editable column's values, where there is one
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setDefaultSectionSize(90)
        self.setToolTip(
            "One row per cell. Click a row to show the cell (Ctrl- or Shift-click: several, "
            "to remove together); click a heading to sort, right-click the headings to choose "
            "the columns shown; Ctrl+C copies the selected rows (the whole table when none is "
            "selected) to paste into a spreadsheet."
        )
        self.clicked.connect(self._row_clicked)
        self.selectionModel().selectionChanged.connect(self._rows_selected)
        self._updating = False
        self._order: list = []  # the selected cells, in the order they were chosen
        # Copying for a spreadsheet: the keyboard's Copy, and the right-click menu.
        copy = QAction("Copy the selected rows", self)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(lambda: self.copy_rows(selected_only=True))
        self.copy_action = copy  # (the window gives it to the image too: cells chosen there)
        copy_all = QAction("Copy the whole table", self)
        copy_all.triggered.connect(lambda: self.copy_rows(selected_only=False))
        self.addActions([copy, copy_all])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        # Right-click on the headings: which columns are shown.
        self._hidden: set[str] = set()
        header = self.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)

    def _header_menu(self, at) -> None:
        menu = self.column_menu()
        menu.exec(self.horizontalHeader().mapToGlobal(at))
        menu.deleteLater()  # made anew at each right-click

    def shown_columns(self) -> list[int]:
        """The indices of the columns shown, in the table's order."""
        return [c for c in range(self.cells.columnCount()) if not self.isColumnHidden(c)]

    def set_hidden_columns(self, names) -> None:
        """Hide the columns of these names, in this table and every one shown after it (a
        name no table has is kept for one that has it; one measured otherwise since, in
        another unit or with neighbours found otherwise, is hidden as it was: its
        :func:`column_kind`); the cell's number always shows."""
        self._hidden = {str(n) for n in names} - set(LABEL_COLUMNS)
        for column, name in enumerate(self.cells.column_names()):
            self.setColumnHidden(column, self._is_hidden(name))

    def _is_hidden(self, name: str) -> bool:
        return column_kind(name) in {column_kind(n) for n in self._hidden}

    def hidden_columns(self) -> list[str]:
        return sorted(self._hidden)

    def _show_columns(self, names, shown: bool) -> None:
        names = set(names)
        if shown:  # (hidden under another unit or neighbour method too)
            kinds = {column_kind(n) for n in names}
            hidden = {n for n in self._hidden if column_kind(n) not in kinds}
        else:
            hidden = self._hidden | names
        self.set_hidden_columns(hidden)
        self.hidden_changed.emit(self.hidden_columns())

    def column_menu(self) -> QMenu:
        """The headings' right-click menu: each family of columns (shape, intensity,
        neighbours, ...) a submenu of its columns to tick, with *Show all* and *Hide all*,
        and *Show every column*."""
        menu = QMenu(self)
        names = [n for n in self.cells.column_names() if n not in LABEL_COLUMNS]
        groups: dict[str, list] = {}
        for name in names:
            groups.setdefault(column_group(name), []).append(name)
        order = [g for g, _ in COLUMN_GROUPS] + ["Other"]
        for group in sorted(groups, key=order.index):
            members = groups[group]
            sub = menu.addMenu(group)
            sub.setToolTipsVisible(True)
            sub.addAction("Show all", lambda m=members: self._show_columns(m, True))
            sub.addAction("Hide all", lambda m=members: self._show_columns(m, False))
            sub.addSeparator()
            for name in members:
                action = sub.addAction(friendly_name(name))
                action.setToolTip(name)
                action.setCheckable(True)
                action.setChecked(not self._is_hidden(name))
                action.toggled.connect(lambda on, n=name: self._show_columns([n], on))
        menu.addSeparator()
        every = menu.addAction("Show every column", lambda: self._show_columns(names, True))
        every.setEnabled(any(self._is_hidden(n) for n in names))
        return menu

    def copy_rows(self, selected_only: bool = True) -> str:
        """Put rows on the clipboard as tab-separated text under the CSV's column names
        (what a spreadsheet pastes into columns), in the order shown: the selected rows, or
        every row when none is selected or ``selected_only`` is off; the columns shown.
        Returns the text."""
        selected = self.selectionModel().selectedRows() if selected_only else []
        rows = sorted(i.row() for i in selected)
        rows = rows or list(range(self.proxy.rowCount()))
        shown = self.shown_columns()
        names = self.cells.column_names()
        lines = ["\t".join(names[c] for c in shown)]
        for row in rows:
            source = self.proxy.mapToSource(self.proxy.index(row, 0)).row()
            lines.append("\t".join(self.cells.row_text(source, shown)))
        text = "\n".join(lines) + "\n" if self.cells.rowCount() else ""
        QGuiApplication.clipboard().setText(text)
        return text

    def set_table(self, table, editable: str = "") -> None:
        """Show a cell table; ``editable``: the column whose values may be typed in (the
        cell before, where it can be mended)."""
        self.cells.set_editable(editable)
        self.cells.set_table(table)
        self.set_hidden_columns(self._hidden)
        # headings readable without dragging column borders (measuring every cell is slow)
        metrics = self.horizontalHeader().fontMetrics()
        for column in range(self.cells.columnCount()):
            heading = self.cells.headerData(column, Qt.Orientation.Horizontal)
            self.setColumnWidth(column, max(70, metrics.horizontalAdvance(heading) + 28))
        self.scrollToTop()

    def _row_clicked(self, proxy_index) -> None:
        if self._updating:
            return
        row = self.proxy.mapToSource(proxy_index).row()
        label = self.cells.label_of_row(row)
        if label:
            self.cell_clicked.emit(label)

    def _rows_selected(self, *_) -> None:
        if self._updating:
            return
        # in the order they were chosen: those selected before, then the new ones (the row
        # clicked last at the end: the one the view goes to)
        now = self.selected_labels()
        current = self.selected_label()
        added = sorted((k for k in now if k not in self._order), key=lambda k: k == current)
        self._order = [k for k in self._order if k in now] + added
        self.cells_selected.emit(list(self._order))

    def select_labels(self, labels) -> None:
        """Highlight the rows of these cells (none: clear), the last one current and
        scrolled into view."""
        self._updating = True
        self._order = [int(k) for k in labels if k]
        try:
            rows = [self.cells.row_of_label(k) for k in labels if k]
            indices = [self.proxy.mapFromSource(self.cells.index(r, 0)) for r in rows if r >= 0]
            if not indices:
                self.clearSelection()
                return
            selection = QItemSelection()
            for index in indices:
                selection.select(index, index)
            self.selectionModel().select(
                selection,
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            self.selectionModel().setCurrentIndex(
                indices[-1], QItemSelectionModel.SelectionFlag.NoUpdate
            )
            self.scrollTo(indices[-1], QAbstractItemView.ScrollHint.PositionAtCenter)
        finally:
            self._updating = False

    def selected_label(self) -> int:
        """The cell of the current row if it is selected, else of the first selected row (0:
        none)."""
        rows = self.selectionModel().selectedRows()
        if not rows:
            return 0
        current = self.currentIndex()
        row = current if any(r.row() == current.row() for r in rows) else rows[0]
        return self.cells.label_of_row(self.proxy.mapToSource(row).row())

    def selected_labels(self) -> list:
        """The cells of the selected rows, in the order shown."""
        rows = sorted(i.row() for i in self.selectionModel().selectedRows())
        labels = [
            self.cells.label_of_row(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
            for r in rows
        ]
        return [k for k in labels if k]
