"""The application icon, drawn with QPainter (no image files to download or license).

Three cells with coloured fills and light outlines, one with its detected centre marked,
on a dark rounded square. ``python -m cellprop.app.icon resources/icons`` writes the PNG,
ICO and ICNS files that installers use; the app draws the icon itself when they are missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPainterPath, QPen, QPixmap

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

# (centre x, centre y, radius x, radius y, rotation degrees, fill colour), on a 100x100 grid
_CELLS = [
    (32, 38, 20, 14, -25, "#4fc3a1"),
    (71, 32, 15, 12, 20, "#f2b134"),
    (57, 70, 22, 15, 10, "#e8607a"),
]


def draw_icon(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 100.0, size / 100.0)
    background = QPainterPath()
    background.addRoundedRect(QRectF(2, 2, 96, 96), 20, 20)
    painter.fillPath(background, QBrush(QColor("#1d2b36")))
    for cx, cy, rx, ry, angle, colour in _CELLS:
        painter.save()
        painter.translate(cx, cy)
        painter.rotate(angle)
        fill = QColor(colour)
        fill.setAlpha(200)
        painter.setBrush(fill)
        painter.setPen(QPen(QColor("#f4f8fb"), 3.2))
        painter.drawEllipse(QPointF(0, 0), rx, ry)
        painter.restore()
    painter.setPen(QPen(QColor("#1d2b36"), 1.5))
    painter.setBrush(QColor("#ffffff"))
    painter.drawEllipse(QPointF(32, 38), 4.5, 4.5)
    painter.end()
    return image


def _icon_file() -> Path | None:
    try:
        import cellprop.resources as resources
    except ImportError:
        return None
    path = Path(resources.__file__).parent / "icons" / "cellprop.png"
    return path if path.is_file() else None


def app_icon() -> QIcon:
    icon = QIcon()
    path = _icon_file()
    if path is not None:
        icon.addFile(str(path))
    for size in (16, 32, 64, 256):
        icon.addPixmap(QPixmap.fromImage(draw_icon(size)))
    return icon


def write_icons(folder: str | Path) -> list:
    """Write cellprop.png (512 px), cellprop-<size>.png, cellprop.ico and cellprop.icns."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    big = draw_icon(512)
    for name, image in [("cellprop.png", big)] + [
        (f"cellprop-{s}.png", draw_icon(s)) for s in (16, 32, 48, 256)
    ]:
        if image.save(str(folder / name)):
            written.append(folder / name)
    for name, fmt, size in [("cellprop.ico", "ICO", 256), ("cellprop.icns", "ICNS", 512)]:
        if draw_icon(size).save(str(folder / name), fmt):
            written.append(folder / name)
    return written


if __name__ == "__main__":
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    for path in write_icons(sys.argv[1] if len(sys.argv) > 1 else "resources/icons"):
        print(path)
