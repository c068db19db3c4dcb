"""Remember the user's choices between sessions (QSettings).

Tests pass their own ``QSettings(path, IniFormat)`` so they never touch the user's file.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from .state import DEFAULT_OVERLAYS, EXPANDED, OVERLAY_NAMES, Overlay, UserSettings

ORGANISATION = "cellprop"
APPLICATION = "cellprop"

_FLOATS = ("threshold", "diameter", "smoothness", "edge_fraction", "pixel_size", "track_max_move")
#: The values the settings panel's boxes can take: an entry outside them (hand-edited or
#: corrupt; nan and inf too), which the engine would refuse or the scale bar could not
#: draw, falls back to the default.
_FLOAT_RANGES = {
    "threshold": (0.01, 0.99),
    "diameter": (1.0, 2000.0),
    "smoothness": (0.0, 500.0),
    "edge_fraction": (0.0, 1.0),
    "pixel_size": (1e-4, 1000.0),  # the box's 4 decimals: below, it would show none
    "track_max_move": (0.1, 20.0),
}
_INTS = (
    "min_size",
    "max_size",
    "batch_workers",
    "batch_channel_index",
    "neighbour_distance",
    "ring_width",
    "track_max_gap",
)
#: The whole numbers' ranges, as the settings panel's boxes take them (the neighbour
#: distance's lowest: "expanded until adjacent"): an entry outside them, which the engine
#: would refuse or the panel would show otherwise than it is used, falls back to the default.
_INT_RANGES = {
    "min_size": (0, 1_000_000),
    "max_size": (0, 100_000_000),
    "batch_workers": (1, 64),
    "batch_channel_index": (0, 63),
    "neighbour_distance": (EXPANDED, 500),
    "ring_width": (0, 200),
    "track_max_gap": (0, 10),
}
_BOOLS = ("exclude_border", "roi_zip", "diameter_each_image", "batch_pages", "batch_track")
_STRINGS = ("model", "device")
#: Settings kept under another key than their name: the folder channel's meaning changed (its
#: default became the model's own channel, "default" in the file), so the old key's 0, which
#: was the default then, is not read as a choice (see ``load_settings``).
_KEYS = {"batch_channel_index": "batch_channel"}
#: Entries of File > Open recent.
RECENT_MAX = 10


def default_qsettings() -> QSettings:
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


#: How a settings file may say yes and no (Qt writes true and false).
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _to_bool(value, default: bool = False) -> bool:
    """A yes or no as the settings file says it (any of ``_TRUE`` and ``_FALSE``, in any
    case); ``default`` where it says neither (an entry edited by hand to something else)."""
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else default
    return bool(value)


class SettingsStore:
    """Reads and writes :class:`UserSettings`, overlays and recent folders."""

    def __init__(self, qsettings: QSettings | None = None):
        self._qs = qsettings if qsettings is not None else default_qsettings()
        #: What the last :meth:`load_settings` could not use, in words (an entry edited by
        #: hand to a number the boxes cannot take): the window's Log says so at start.
        self.set_aside: list[str] = []

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def load_settings(self) -> UserSettings:
        defaults = UserSettings()
        values: dict = {}
        raws: dict = {}  # each number as the file has it, for a message
        keys: dict = {}  # the key each was read under (an older version's, for one)
        self.set_aside = []

        def aside(name: str, raw, why: str) -> None:
            key = keys.get(name, f"segmentation/{_KEYS.get(name, name)}")
            if isinstance(raw, (list, tuple)):  # "0,5": a list to QSettings
                raw = ",".join(map(str, raw))
            raw = str(raw) if len(str(raw)) <= 40 else f"{str(raw)[:37]}..."
            self.set_aside.append(f"{key} = {raw} in {self.file_name}: {why}; the default is used")

        for name in _STRINGS:
            raw = self._qs.value(f"segmentation/{name}")
            if raw:
                values[name] = str(raw)
        for name in _FLOATS + _INTS:
            keys[name] = f"segmentation/{_KEYS.get(name, name)}"
            raw = self._qs.value(keys[name])
            if raw is None and name == "batch_channel_index":  # kept by an earlier version
                keys[name] = f"segmentation/{name}"
                raw = self._qs.value(keys[name])
                raw = None if str(raw) == "0" else raw
            if raw in (None, "", "default"):
                continue
            try:
                number = float(raw)
                if name in _INTS:
                    if not number.is_integer():  # (12.0 is twelve, 1e30 a whole number)
                        raise ValueError(raw)
                    number = int(number)
                values[name], raws[name] = number, raw
            except (TypeError, ValueError, OverflowError):  # a hand-edited or corrupt entry
                why = "not a whole number" if name in _INTS else "not a number"
                if isinstance(raw, (list, tuple)) and name in _FLOATS:
                    why += " (a decimal point, not a comma)"
                aside(name, raw, why)
        for name in _BOOLS:
            raw = self._qs.value(f"segmentation/{name}")
            if raw is None or raw in ("", "default"):
                continue
            word = str(raw).strip().lower()
            if isinstance(raw, bool) or word in _TRUE + _FALSE:
                values[name] = raw if isinstance(raw, bool) else word in _TRUE
            else:
                aside(name, raw, "not true or false")
        if values.get("device") not in (None, "auto", "cpu", "cuda"):
            aside("device", values.pop("device"), "not auto, cpu or cuda")
        for name, (lowest, highest) in {**_INT_RANGES, **_FLOAT_RANGES}.items():
            if name in values and not lowest <= values[name] <= highest:
                values.pop(name)
                aside(name, raws[name], f"outside {lowest:g} to {highest:g}")
        return defaults.with_changes(**values)

    def save_settings(self, settings: UserSettings, names=None) -> None:
        """Keep ``settings``, or only those of ``names`` (the ones changed: a second window
        open beside the first wrote all of its own, older ones over those the first kept)."""
        for name in _STRINGS + _FLOATS + _INTS + _BOOLS:
            if names is not None and name not in names:
                continue
            value = getattr(settings, name)
            key = f"segmentation/{_KEYS.get(name, name)}"
            self._qs.setValue(key, "default" if value is None else value)
        self._qs.sync()

    def load_overlays(self) -> dict:
        overlays = dict(DEFAULT_OVERLAYS)
        for name in OVERLAY_NAMES:
            visible = self._qs.value(f"overlays/{name}_visible")
            opacity = self._qs.value(f"overlays/{name}_opacity")
            if visible is None or opacity is None:
                continue
            try:
                shown = _to_bool(visible, overlays[name].visible)
                opaque = float(opacity)
            except (TypeError, ValueError):
                continue
            if opaque == opaque:  # (nan: its default; it was 0, a layer ticked and unseen)
                overlays[name] = Overlay(shown, min(1.0, max(0.0, opaque)))
        return overlays

    def save_overlays(self, overlays: dict, names=None) -> None:
        """Keep the overlays, or only those of ``names`` (as :meth:`save_settings`)."""
        for name, overlay in overlays.items():
            if names is not None and name not in names:
                continue
            self._qs.setValue(f"overlays/{name}_visible", overlay.visible)
            self._qs.setValue(f"overlays/{name}_opacity", overlay.opacity)
        self._qs.sync()

    def flag(self, key: str, default: bool = False) -> bool:
        """A choice of the View menu kept between sessions (``"scale_bar"``)."""
        value = self._qs.value(f"view/{key}")
        return default if value is None else _to_bool(value, default)

    def set_flag(self, key: str, value: bool) -> None:
        self._qs.setValue(f"view/{key}", bool(value))
        self._qs.sync()

    def hidden_columns(self) -> list[str]:
        """The cell table's columns hidden (right-click on its headings), by name."""
        try:
            names = json.loads(str(self._qs.value("view/hidden_columns", "[]") or "[]"))
        except ValueError:  # a hand-edited or corrupt entry: every column shown
            return []
        return [str(n) for n in names] if isinstance(names, list) else []

    def set_hidden_columns(self, names) -> None:
        self._qs.setValue("view/hidden_columns", json.dumps(sorted(str(n) for n in names)))
        self._qs.sync()

    def folder(self, key: str) -> str:
        return str(self._qs.value(f"folders/{key}", "") or "")

    def set_folder(self, key: str, path: str) -> None:
        self._qs.setValue(f"folders/{key}", str(path))
        self._qs.sync()

    def recent(self) -> list[list[str]]:
        """What was opened lately, the latest first: each entry the paths opened together
        (images, a folder, a run's results)."""
        try:
            entries = json.loads(str(self._qs.value("recent/entries", "[]") or "[]"))
        except ValueError:  # a hand-edited or corrupt entry: start the list afresh
            return []
        if not isinstance(entries, list):
            return []
        return [
            [str(p) for p in e]
            for e in entries
            if isinstance(e, list) and e and all(isinstance(p, str) for p in e)
        ][:RECENT_MAX]

    def add_recent(self, paths) -> None:
        """Put the paths opened together first in the list (once: opened again, an entry
        moves up), keeping the latest :data:`RECENT_MAX`."""
        entry = [str(Path(p).absolute()) for p in paths]
        if entry:
            self._save_recent([entry, *(e for e in self.recent() if e != entry)])

    def forget_recent(self, entry: list | None = None) -> None:
        """Take ``entry`` out of the list (all of them without one)."""
        self._save_recent([] if entry is None else [e for e in self.recent() if e != entry])

    def _save_recent(self, entries: list) -> None:
        self._qs.setValue("recent/entries", json.dumps(entries[:RECENT_MAX]))
        self._qs.sync()

    def window_state(self) -> tuple:
        """The window's saved geometry and dock layout (QByteArray), each None where none was
        saved or what the file holds is not one (cut short, edited by hand): the window then
        starts with its first-start layout instead of failing to start."""
        return tuple(
            value if isinstance(value, QByteArray | bytes) else None
            for value in (self._qs.value("window/geometry"), self._qs.value("window/state"))
        )

    def save_window_state(self, geometry, state) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)
        self._qs.sync()
