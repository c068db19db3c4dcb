"""The window's side of cells followed over time: a link mended by clicking, at the time
point before, the cell that the selected cell came from. Part of
:class:`~.main_window.MainWindow`, as its batches, exports and training are; what is done is
the controller's (``TimeLapseMixin.link_cell``)."""

from __future__ import annotations

from PySide6.QtCore import Qt


class TracksWindowMixin:
    """The *Link to the cell before* command of :class:`~.main_window.MainWindow`."""

    def start_linking(self) -> None:
        """Show the time point before the one shown; a click on a cell there says that the
        cell selected came from it (the time point shown again then, that cell selected);
        Esc stops."""
        c = self.controller
        before = c.time_point_before()
        if before is None or len(c.selected_cells) != 1:
            self._show_error(
                "Select one cell of a time point whose cells were followed from the one "
                "before it (Process all with Follow cells over time), then choose Link to the "
                "cell before."
            )
            return
        if self.add_cells_action.isChecked():
            self._add_mode_toggled(False)
        if self.mark_action.isChecked():
            self._mark_mode_toggled(False)
        doc, cell = c.current, c.selected_cells[0]
        self._linking = (doc, doc.plane, cell)
        self.viewer.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        self.statusBar().showMessage(
            f"Click the cell that cell {cell} of {doc.name} came from (it is shown at the time "
            "point before); Esc stops",
            0,
        )
        c.select_cells([])  # a selection would follow its own track back
        c.show_plane_of(*before)

    def _link_clicked(self, x: int, y: int) -> bool:
        """A click while linking: the cell under it is the one the cell chosen came from.
        False when not linking (the click is another command's)."""
        if self._linking is None:
            return False
        c = self.controller
        result = c.current.result if c.current is not None else None
        came_from = result.label_at(x, y) if result is not None else 0
        if not came_from:
            self.statusBar().showMessage("Click a cell, the one it came from; Esc stops", 0)
            return True
        doc, plane, cell = self._linking
        self.end_linking()
        if c.link_cell(cell, came_from, doc, plane):
            self._cell_wanted = (doc, plane, cell)
            c.show_plane_of(doc, plane)
        return True

    def end_linking(self) -> None:
        """Stop waiting for the click of :meth:`start_linking`."""
        if self._linking is not None:
            self._linking = None
            self.viewer.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            self.statusBar().clearMessage()

    def _select_wanted_cell(self) -> None:
        """The image shown is ready: select the cell a link was mended for, if it is its."""
        wanted, self._cell_wanted = self._cell_wanted, None
        doc = self.controller.current
        if wanted is not None and wanted[:2] == (doc, getattr(doc, "plane", None)):
            self.controller.select_cells([wanted[2]])
        elif wanted is not None:
            self._cell_wanted = wanted  # another image shown first: wait for it
