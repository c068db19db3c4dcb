"""The window's side of how the image and its cells look: the image's contrast, another
channel in colour (its levels kept over a file's pages, its brightness), the overlays shown
or hidden (H), the scale bar (B) and cells coloured by a measurement. Part of
:class:`~.main_window.MainWindow`, as its batches, exports, training and tracks are."""

from __future__ import annotations

from . import render


class DisplayWindowMixin:
    """Display commands of :class:`~.main_window.MainWindow` (its state lives in
    ``MainWindow.__init__``)."""

    def _show_colour_channel(self, pixels, colour=None) -> None:
        """Draw the channel in colour (``pixels``; None: none) at its file's levels and the
        brightness chosen."""
        doc, channel = self.controller.current, self.controller.colour_channel
        levels = None
        if pixels is not None and doc is not None:
            key = (doc.path, channel)
            if key not in self._colour_levels:
                self._colour_levels[key] = render.auto_contrast(pixels)
            low, high = self._colour_levels[key]
            levels = (low, low + max(high - low, 1e-9) / self._colour_gain)
        self.viewer.set_colour_channel(pixels, colour, levels)
        self._describe_hovered()  # its value under a cursor at rest: this page's, this image's

    def _colour_gain_changed(self, gain: float) -> None:
        self._colour_gain = gain
        self._show_colour_channel(self.controller.colour_pixels)

    def _set_contrast(self, low: float, high: float) -> None:
        doc = self.controller.current
        self._levels_set_for = (doc.path, doc.channel) if doc is not None else None
        self._contrast = (low, high)
        self.viewer.set_contrast(low, high)

    def _auto_contrast(self) -> None:
        doc = self.controller.current
        if doc is None or doc.image is None:
            return
        self._levels_set_for = None  # automatic again: they follow each page
        shown = doc.image.colour if doc.image.colour is not None else doc.image.pixels
        self._contrast = render.auto_contrast(shown)
        self.viewer.set_contrast(*self._contrast)
        self.display_panel.set_range(*render.value_range(shown), *self._contrast)

    def _overlays_changed(self, overlays: dict) -> None:
        """The overlays' settings changed (a check box, a slider, a key): the View menu's
        items follow, and anything hidden with H is shown again (the user is adjusting it)."""
        for name, action in self.overlay_actions.items():
            overlay = overlays.get(name)
            action.setChecked(bool(overlay and overlay.visible))
        self.viewer.apply_overlays(overlays)
        if self.hide_overlays_action.isChecked():
            self.hide_overlays(False)

    def show_scale_bar(self, shown: bool) -> None:
        """B: a scale bar over the image, or none; kept between sessions."""
        self.scale_bar_action.setChecked(shown)
        self.controller.store.set_flag("scale_bar", shown)
        bar = self._draw_scale_bar()
        if shown and self.controller.current is not None and not self.viewer.scale_bar_label:
            self.statusBar().showMessage(
                "No scale bar: this image is too small for one."
                if bar is not None
                else "No scale bar: this image has no pixel size. Give one in the settings "
                "(Pixel size), or open a calibrated file.",
                6000,
            )

    def _draw_scale_bar(self):
        """The scale bar of the image shown, at the pixel size its cells are measured with:
        the one in the settings, else the file's (``render.scale_bar``'s, or None: none)."""
        doc, bar = self.controller.current, None
        if self.scale_bar_action.isChecked() and doc is not None and doc.image is not None:
            size, unit = self.controller.engine.calibration(
                doc.image, self.controller.settings.pixel_size
            )
            bar = render.scale_bar(doc.image.pixels.shape[1], size, unit)
        self.viewer.set_scale_bar(bar)
        return bar

    def hide_overlays(self, hidden: bool) -> None:
        """H: the image alone, or what was shown over it back again."""
        self.hide_overlays_action.setChecked(hidden)
        self.viewer.hide_layers(hidden)
        self.statusBar().showMessage(
            "Everything over the image hidden: H shows it again" if hidden else "", 4000
        )

    def _colour_cells(self, name: str, low: float, high: float) -> None:
        """The Distribution asks for the cells shown coloured by a measurement between
        ``low`` and ``high`` (its bars' range), or ("") in their own colours."""
        doc = self.controller.current
        result = doc.result if doc is not None else None
        key = (id(result), name, low, high) if name and result is not None else None
        if key == self._coloured_by or (key is not None and result.labels is None):
            return
        self._coloured_by = key
        if key is None:
            self.viewer.colour_cells(None)
            return
        values = self.histogram.values_by_label(name)
        self.viewer.colour_cells(render.fills_by_value_rgba(result.labels, values, low, high))
