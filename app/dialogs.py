"""Questions the window asks the user: yes or no, one of several answers, files, folders,
a number. Behind one small class so that tests answer them instead (the window takes any
object with these methods)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

IMAGE_FILTER = "Images (*.tif *.tiff *.png *.jpg *.jpeg *.bmp);;All files (*)"
PICTURE_FILTER = "PNG (*.png);;TIFF (*.tif *.tiff);;JPEG (*.jpg *.jpeg)"


class _StepsFromShown:
    """A box whose lowest value stands for another number it shows (the model's diameter,
    "32 px"; "automatic (2)"): a step up or down goes on from the number shown
    (``shown_at_minimum``), not from the lowest value (one step made 32 px 1 px)."""

    shown_at_minimum: float | None = None

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        if self.shown_at_minimum is not None and self.value() == self.minimum():
            self.setValue(self.shown_at_minimum)
        super().stepBy(steps)


class IntBox(_StepsFromShown, QSpinBox):
    """A box for a whole number (:class:`_StepsFromShown`)."""


class DecimalBox(_StepsFromShown, QDoubleSpinBox):
    """A box for a number with decimals that reads either mark as the decimal point: "0,325"
    and "0.325" are 0.325 whatever the language the computer is set to. Qt's box reads the
    other mark as a thousands separator, so that a pixel size typed with a decimal comma on
    an English system (or a point on a German one) was taken as 325 µm, every area 10**6
    times too large, without a word (QA); no pixel size, diameter or weight is typed with
    thousands separators."""

    def _as_decimal(self, text: str) -> str:
        point = self.locale().decimalPoint()
        return text.replace("," if point == "." else ".", point)

    def validate(self, text: str, pos: int):
        return super().validate(self._as_decimal(text), pos)

    def valueFromText(self, text: str) -> float:
        return super().valueFromText(self._as_decimal(text))


class Dialogs:
    """Questions to the user. Tests pass an object with the same methods and set answers."""

    def __init__(self, parent: QWidget):
        self.parent = parent

    def ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(
            self.parent,
            title,
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def choose(self, title: str, text: str, options: list) -> str:
        """One of ``options`` (button texts, the first the default), or "" if the user closes
        the question."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self.parent)
        buttons = [box.addButton(o, QMessageBox.ButtonRole.AcceptRole) for o in options]
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(buttons[0])
        box.exec()
        clicked = box.clickedButton()
        return options[buttons.index(clicked)] if clicked in buttons else ""

    def choose_files(self, start: str) -> list:
        files, _ = QFileDialog.getOpenFileNames(self.parent, "Open images", start, IMAGE_FILTER)
        return files

    def choose_folder(self, title: str, start: str) -> str:
        """A folder ("" if the user cancels). ``start`` that does not exist yet (the results
        folder suggested beside the images) is made for the dialog to open in, and taken
        away again, still empty, where another folder is chosen: Qt's own dialog (used
        where the desktop offers none) showed it as a name to type, and choosing it said
        "Directory not found" every time."""
        made = None
        folder = Path(start) if start else None
        # (os.path: False where it cannot be looked at, a folder of another user or a name
        # too long, where Path raised, and the dialog never opened again)
        if folder is not None and not os.path.exists(folder) and os.path.isdir(folder.parent):
            try:
                folder.mkdir()
                made = folder
            except OSError:  # (a folder of images on a disk that cannot be written: its own)
                start = str(folder.parent)
        chosen = QFileDialog.getExistingDirectory(self.parent, title, start)
        if made is not None and (not chosen or Path(chosen) != made):
            with contextlib.suppress(OSError):  # (something put there meanwhile: kept)
                made.rmdir()
        return chosen

    def choose_points_file(self, start: str) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self.parent,
            "Cell centres (CSV)",
            start,
            "Tables of centres (*.csv *.txt *.tsv);;All files (*)",
        )
        return path

    def choose_picture_file(self, start: str) -> str:
        """A file to save a picture in ("" if the user cancels); the dialog asks before
        replacing a file that exists."""
        path, _ = QFileDialog.getSaveFileName(
            self.parent, "Save the view as a picture", start, PICTURE_FILTER
        )
        return path

    def choose_number(
        self, title: str, label: str, value: float, minimum: float, maximum: float
    ) -> float | None:
        """A number typed by the user (whole pixels or one decimal; either decimal mark, as
        the settings' boxes read it: Qt's own number dialog took "27,5" for 275 on an
        English system), or None if they cancel."""
        dialog = QDialog(self.parent)
        dialog.setWindowTitle(title)
        box = DecimalBox()
        box.setRange(minimum, maximum)
        box.setDecimals(1)
        box.setValue(value)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(label))
        layout.addWidget(box)
        layout.addWidget(buttons)
        box.selectAll()
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        box.interpretText()
        return box.value()

    def choose_item(self, title: str, label: str, items: list, current: int = 0) -> str:
        """One of ``items``, or "" if the user cancels."""
        item, ok = QInputDialog.getItem(self.parent, title, label, items, current, False)
        return item if ok else ""

    def open_folder(self, folder: str) -> None:
        """Show ``folder`` in the system's file manager."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
