"""The image viewer: zoom, pan, contrast, and the overlay layers over the image.

The viewer only draws what it is given and reports where the mouse is; it never decides
anything about documents or results.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsItemGroup,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from . import render
from .state import DEFAULT_OVERLAYS, OVERLAY_NAMES

# Cell ids are drawn only up to this many cells: beyond it they hide the image; the centres'
# dots up to the second (beyond it, tens of thousands of items slow every redraw).
MAX_CELL_IDS = 3000
MAX_CELL_DOTS = 20000


def adds_to_selection(event) -> bool:
    """A click with Ctrl or Shift held adds to a selection (of cells, of histogram bars)
    rather than replacing it."""
    held = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    return bool(event.modifiers() & held)


def qimage_from_array(array: np.ndarray) -> QImage:
    """A QImage that owns a copy of a (H, W) uint8 grey, (H, W, 3) RGB or (H, W, 4) RGBA
    array."""
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    if array.ndim == 2:
        image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Grayscale8)
    elif array.shape[2] == 3:
        image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
    else:
        image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGBA8888)
    return image.copy()  # detach from the numpy buffer


class ImageViewer(QGraphicsView):
    """Shows one image with overlays. Wheel zooms, dragging pans, a click picks a cell."""

    mouse_moved = Signal(int, int)  # image pixel under the cursor
    pixel_clicked = Signal(int, int)
    pixel_ctrl_clicked = Signal(int, int)  # a click with Ctrl (or Shift) held: adds to a selection
    zoom_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(32, 32, 36))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.hovered: tuple | None = None  # the image pixel under the cursor, while over it
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setZValue(0)
        self.scene().addItem(self._image_item)
        self._layers: dict[str, QGraphicsItem] = {}
        for z, name in enumerate(OVERLAY_NAMES, start=1):
            grouped = name in ("centres", "tracks")  # drawn items, not an image
            item = QGraphicsItemGroup() if grouped else QGraphicsPixmapItem()
            item.setZValue({"likelihood": 1, "contribution": 2}.get(name, z + 2))
            self.scene().addItem(item)
            self._layers[name] = item
        self._selection_item = QGraphicsPixmapItem()
        self._selection_item.setZValue(20)
        self.scene().addItem(self._selection_item)
        # another channel in colour, over the image and under everything the method drew
        self._colour_item = QGraphicsPixmapItem()
        self._colour_item.setZValue(0.5)
        self.scene().addItem(self._colour_item)
        self._colour_pixels: np.ndarray | None = None
        self.colour = render.CHANNEL_COLOURS["Green"]
        self.layers_hidden = False  # everything over the image hidden for a moment (H)
        self._own_fills: np.ndarray | None = None  # the cells' own colours (not by a value)
        # clicked centres of cells being added, until the correction's result arrives
        self._pending = QGraphicsItemGroup()
        self._pending.setZValue(21)
        self.scene().addItem(self._pending)
        # cell centres marked for training: crosses above everything, {(x, y): items}, so that
        # a click adds or removes one cross instead of redrawing hundreds
        self._marks: dict[tuple, list] = {}
        self._cross = QPainterPath()
        self._cross.moveTo(-5, 0)
        self._cross.lineTo(5, 0)
        self._cross.moveTo(0, -5)
        self._cross.lineTo(0, 5)
        self._cross_pens = []
        for colour, width in ((QColor(0, 0, 0, 200), 4), (QColor(255, 60, 220), 2)):
            pen = QPen(colour, width)
            pen.setCosmetic(True)
            self._cross_pens.append(pen)
        # a scale bar at the bottom right, in image pixels (so a picture of the view has it)
        self._scale_bar = QGraphicsItemGroup()
        self._scale_bar.setZValue(19)
        self.scene().addItem(self._scale_bar)
        self.scale_bar_label = ""  # what the bar drawn says ("50 µm"); empty: none drawn
        self._pixels: np.ndarray | None = None
        self._shown: np.ndarray | None = None  # _pixels, or a colour image's colours
        self._labels: np.ndarray | None = None
        self._press_pos = None
        self._fit_on_resize = True
        self.overlays = dict(DEFAULT_OVERLAYS)

    # ------------------------------------------------------------------ content
    def set_image(
        self,
        pixels: np.ndarray | None,
        low: float,
        high: float,
        keep_view: bool = False,
        colour: np.ndarray | None = None,
    ) -> None:
        """Show ``pixels`` (2-D) between the levels ``low`` (black) and ``high`` (white); a
        colour image's grey comes with its ``colour`` (H, W, 3), shown instead at the same
        levels."""
        self._pixels = pixels
        self._shown = colour if colour is not None and pixels is not None else pixels
        colour = self._colour_pixels
        if colour is not None and (pixels is None or colour.shape != pixels.shape):
            self.set_colour_channel(None)  # another image's: its own comes when read
        if pixels is None:
            self._image_item.setPixmap(QPixmap())
            self.clear_result()
            self.set_scale_bar(None)
            return
        self.set_contrast(low, high)
        self.scene().setSceneRect(QRectF(0, 0, pixels.shape[1], pixels.shape[0]))
        if not keep_view:
            self.fit()

    def set_contrast(self, low: float, high: float) -> None:
        if self._shown is None:
            return
        shown = render.to_display(self._shown, low, high)
        self._image_item.setPixmap(QPixmap.fromImage(qimage_from_array(shown)))

    def set_result(self, result) -> None:
        """Draw the layers of a segmentation result (state.Result) or clear them (None, or
        a result whose labels are still being read back from their file)."""
        if result is None or result.labels is None:
            self.clear_result()
            return
        self._labels = result.labels
        if not result.layers:
            result.layers = render.result_layers(
                result.labels,
                result.likelihood,
                result.contribution,
                # followed over time: each cell in its track's colour
                render.track_numbers(result.table, result.n_cells),
                render.ring_width(result),
            )
        for name in ("fills", "outlines", "rings", "likelihood", "contribution"):
            self._set_pixmap(name, result.layers.get(name))
        self._own_fills = result.layers.get("fills")
        self._draw_centres(result.centres)
        self._selection_item.setPixmap(QPixmap())
        self.apply_overlays(self.overlays)

    def colour_cells(self, rgba: np.ndarray | None) -> None:
        """Fill the cells with these colours (a measurement map: ``render.fills_by_value_rgba``)
        instead of their own; None gives them their own again."""
        self._set_pixmap("fills", rgba if rgba is not None else self._own_fills)

    def clear_result(self) -> None:
        self._labels = None
        self._own_fills = None
        for name in OVERLAY_NAMES:
            if name == "centres":
                self._draw_centres(np.zeros((0, 2)))
            elif name == "tracks":
                self.set_tracks({})
            else:
                self._set_pixmap(name, None)
        self._selection_item.setPixmap(QPixmap())

    def _set_pixmap(self, name: str, rgba: np.ndarray | None) -> None:
        item = self._layers[name]
        item.setPixmap(QPixmap() if rgba is None else QPixmap.fromImage(qimage_from_array(rgba)))

    def set_tracks(self, paths: dict) -> None:
        """Draw where cells followed over time have been: {track: (k, 2) centres (x, y)}
        (``render.track_paths``), each a line in its track's colour ending at the cell."""
        group = self._layers["tracks"]
        for child in group.childItems():
            group.removeFromGroup(child)
            self.scene().removeItem(child)
        longest = [t for t, points in paths.items() if len(points) > 1]
        if not longest:
            return
        colours = render.label_colours(max(longest))
        for track in longest:
            path = QPainterPath()
            points = paths[track] + 0.5  # pixel centres
            path.moveTo(QPointF(*points[0]))
            for x, y in points[1:]:
                path.lineTo(QPointF(x, y))
            for colour, width in ((QColor(0, 0, 0, 160), 4), (QColor(*colours[track]), 2)):
                pen = QPen(colour, width)
                pen.setCosmetic(True)
                item = QGraphicsPathItem(path)
                item.setPen(pen)
                group.addToGroup(item)

    def tracks_drawn(self) -> int:
        """How many tracks' paths are drawn (tests)."""
        return len(self._layers["tracks"].childItems()) // 2

    def _draw_centres(self, centres: np.ndarray) -> None:
        group = self._layers["centres"]
        for child in group.childItems():
            group.removeFromGroup(child)
            self.scene().removeItem(child)
        if centres is None or len(centres) == 0 or len(centres) > MAX_CELL_DOTS:
            return
        numbered = len(centres) <= MAX_CELL_IDS  # more: the dots without their numbers
        pen = QPen(QColor(0, 0, 0), 1)
        pen.setCosmetic(True)
        brush = QBrush(QColor(255, 64, 64))
        font = QFont()
        font.setPointSize(8)
        font.setBold(True)
        for label, (x, y) in enumerate(np.asarray(centres, float), start=1):
            dot = QGraphicsEllipseItem(-3, -3, 6, 6)
            dot.setPos(QPointF(x + 0.5, y + 0.5))
            dot.setBrush(brush)
            dot.setPen(pen)
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            group.addToGroup(dot)
            if not numbered:
                continue
            text = QGraphicsSimpleTextItem(str(label))
            text.setFont(font)
            text.setBrush(QBrush(QColor(255, 255, 255)))
            text.setPen(QPen(QColor(0, 0, 0), 0.6))
            text.setPos(QPointF(x + 0.5, y + 0.5))
            text.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            group.addToGroup(text)

    def mark_pending(self, x: int, y: int) -> None:
        """A ring where a cell was clicked to be added, shown while it is being outlined."""
        pen = QPen(QColor(80, 220, 255), 2)
        pen.setCosmetic(True)
        ring = QGraphicsEllipseItem(-6, -6, 12, 12)
        ring.setPos(QPointF(x + 0.5, y + 0.5))
        ring.setPen(pen)
        ring.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._pending.addToGroup(ring)

    def pending_marks(self) -> int:
        return len(self._pending.childItems())

    def clear_pending(self) -> None:
        for child in self._pending.childItems():
            self._pending.removeFromGroup(child)
            self.scene().removeItem(child)

    def set_marks(self, marks) -> None:
        """Draw the centres marked for training, [(x, y), ...], as crosses (magenta on a dark
        rim, so that they show on bright and dark images alike)."""
        wanted = {(float(x), float(y)) for x, y in marks}
        for key in set(self._marks) - wanted:
            for item in self._marks.pop(key):
                self.scene().removeItem(item)
        for key in wanted - set(self._marks):
            items = []
            for pen in self._cross_pens:
                item = QGraphicsPathItem(self._cross)
                item.setPen(pen)
                item.setZValue(22)
                item.setPos(QPointF(key[0] + 0.5, key[1] + 0.5))
                item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
                item.setVisible(not self.layers_hidden)  # H: everything over the image hidden
                self.scene().addItem(item)
                items.append(item)
            self._marks[key] = items

    def marks_drawn(self) -> int:
        return len(self._marks)

    def apply_overlays(self, overlays: dict) -> None:
        self.overlays = dict(overlays)
        for name, overlay in overlays.items():
            item = self._layers.get(name)
            if item is not None:
                item.setVisible(overlay.visible and not self.layers_hidden)
                item.setOpacity(overlay.opacity)
        for item in (self._selection_item, self._colour_item, self._scale_bar, self._pending):
            item.setVisible(not self.layers_hidden)
        for item in (item for items in self._marks.values() for item in items):
            item.setVisible(not self.layers_hidden)

    def set_scale_bar(self, bar: tuple | None) -> None:
        """Draw a scale bar, ``(length in image pixels, label)`` (``render.scale_bar``), at
        the image's bottom right: a white bar with its length written above it, on a dark
        box that keeps both legible on a bright image; None: no bar. Its size follows the
        image's, so a picture of the view has it as the screen shows it."""
        for item in self._scale_bar.childItems():
            self._scale_bar.removeFromGroup(item)
            self.scene().removeItem(item)
        self.scale_bar_label = ""
        if bar is None or self._pixels is None:
            return
        length, label = bar
        h, w = self._pixels.shape[:2]
        unit = max(1.0, min(w, h) / 100)  # the bar's proportions, in image pixels
        thickness, pad = max(2.0, 0.8 * unit), max(2.0, 0.8 * unit)
        text = QGraphicsSimpleTextItem(label)
        font = QFont()
        font.setPixelSize(max(6, round(2.4 * unit)))
        font.setBold(True)
        text.setFont(font)
        text.setBrush(QColor(255, 255, 255))
        size = text.boundingRect()
        box_w = max(length, size.width()) + 2 * pad
        box_h = size.height() + thickness + 2.5 * pad
        left, top = w - 2 * unit - box_w, h - 2 * unit - box_h
        if left < 0 or top < 0:  # an image too small for it (20 px): none, not one over it
            return
        box = self.scene().addRect(
            QRectF(left, top, box_w, box_h), QPen(Qt.PenStyle.NoPen), QColor(0, 0, 0, 150)
        )
        text.setPos(left + (box_w - size.width()) / 2, top + pad)
        self.scene().addItem(text)
        bar_item = self.scene().addRect(
            QRectF(left + (box_w - length) / 2, top + box_h - pad - thickness, length, thickness),
            QPen(Qt.PenStyle.NoPen),
            QColor(255, 255, 255),
        )
        for item in (box, text, bar_item):
            self._scale_bar.addToGroup(item)
        self.scale_bar_label = label

    def scale_bar_length(self) -> float:
        """The length of the bar drawn, in image pixels (0: none; tests)."""
        bars = [i for i in self._scale_bar.childItems() if hasattr(i, "rect")]
        return bars[-1].rect().width() if self.scale_bar_label and bars else 0.0

    def set_colour_channel(
        self, pixels: np.ndarray | None, colour=None, levels: tuple | None = None
    ) -> None:
        """Draw another channel's ``pixels`` (None: none) in ``colour`` (default: the one
        drawn last) over the image, transparent at ``levels[0]`` and opaque from ``levels[1]``
        (default: its own automatic contrast)."""
        self.colour = self.colour if colour is None else colour
        if pixels is not None and self._pixels is not None and pixels.shape != self._pixels.shape:
            pixels = None  # another image's, arrived late
        self._colour_pixels = pixels
        rgba = None if pixels is None else render.channel_rgba(pixels, self.colour, levels)
        self._colour_item.setPixmap(
            QPixmap() if rgba is None else QPixmap.fromImage(qimage_from_array(rgba))
        )

    def picture(self) -> QImage:
        """The whole image as shown, with everything drawn over it, one pixel per image
        pixel (not the zoom or the part in view)."""
        rect = self.sceneRect()
        picture = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_RGB32)
        picture.fill(QColor(0, 0, 0))
        painter = QPainter(picture)
        self.scene().render(painter, QRectF(picture.rect()), rect)
        painter.end()
        return picture

    def colour_layer(self) -> QGraphicsPixmapItem:
        """The item of the channel drawn in colour (tests read its pixmap)."""
        return self._colour_item

    def hide_layers(self, hidden: bool) -> None:
        """Hide the result's overlays and the selection (the image alone), or show what the
        overlays' settings show again; the settings themselves stay as they are."""
        self.layers_hidden = bool(hidden)
        self.apply_overlays(self.overlays)

    def layer(self, name: str) -> QGraphicsItem:
        """The graphics item of one overlay (tests read its pixmap, visibility, opacity)."""
        return self._layers[name]

    def show_selection(self, labels, centre: tuple | None = None) -> None:
        """Outline the selected cells (numbers; none: no outline) in white; centre the view
        on ``centre`` when it is given."""
        labels = [int(k) for k in labels if k]
        if self._labels is None or not labels:
            self._selection_item.setPixmap(QPixmap())
            return
        rgba = render.cell_outline_rgba(self._labels, labels)
        self._selection_item.setPixmap(QPixmap.fromImage(qimage_from_array(rgba)))
        if centre is not None:
            self.centerOn(QPointF(centre[0] + 0.5, centre[1] + 0.5))

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        return float(self.transform().m11())

    def fit(self) -> None:
        if self._pixels is None:
            return
        self._fit_on_resize = True
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        self._fit_on_resize = False
        self.resetTransform()
        self.zoom_changed.emit(self.zoom)

    def zoom_by(self, factor: float) -> None:
        # (a tiny image fitted past 64x: zooming in goes on from there, never out; a long
        # strip fitted under 2%: zooming out stops there, never in)
        new = min(max(64.0, self.zoom), max(min(0.02, self.zoom), self.zoom * factor))
        self._fit_on_resize = False
        self.scale(new / self.zoom, new / self.zoom)
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event):  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps)
        event.accept()

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        if self._fit_on_resize:
            self.fit()

    # ------------------------------------------------------------------ mouse
    def _pixel_at(self, pos) -> tuple:
        point = self.mapToScene(pos)
        return int(np.floor(point.x())), int(np.floor(point.y()))

    def mouseMoveEvent(self, event):  # noqa: N802
        super().mouseMoveEvent(event)
        if self._pixels is not None:
            self.hovered = self._pixel_at(event.position().toPoint())
            self.mouse_moved.emit(*self.hovered)

    def leaveEvent(self, event):  # noqa: N802
        self.hovered = None
        super().leaveEvent(event)

    def mousePressEvent(self, event):  # noqa: N802
        self._press_pos = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event):  # noqa: N802
        """A double click is one click, the first: its second press clicked again (a
        training mark just added taken away, a cell added by it clicked on)."""
        super().mouseDoubleClickEvent(event)
        self._press_pos = None

    def mouseReleaseEvent(self, event):  # noqa: N802
        super().mouseReleaseEvent(event)
        pos = event.position().toPoint()
        if self._press_pos is not None and self._pixels is not None:
            moved = (pos - self._press_pos).manhattanLength()
            if moved <= 3 and event.button() == Qt.MouseButton.LeftButton:
                clicked = (
                    self.pixel_ctrl_clicked if adds_to_selection(event) else self.pixel_clicked
                )
                clicked.emit(*self._pixel_at(pos))
        self._press_pos = None
