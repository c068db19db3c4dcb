"""A batch run's record in its result folder, kept up to date so that the run can be continued.

:func:`cellprop.engine.process_batch` writes ``run.json`` (the model, settings and planes that
make the results; its ``state`` stays "running" until the run ends) before the first image,
adds a row to ``summary.csv`` as each image ends, and at the end rewrites both, in input
order, beside ``cells.csv``. A run that is cancelled, interrupted (Ctrl-C) or killed (a crash,
a power cut) thus leaves a record of every image it finished; :func:`earlier_run` reads it
back, and ``process_batch(resume=True)`` (``cellprop segment --resume``) keeps those images
and segments the rest, once it has checked that the same model and settings are asked for:
one folder never mixes results made two ways.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ResumeError
from .features import MEASURES, neighbours_in_words
from .output import atomic_path, read_csv_rows, write_image_table, write_tables
from .pipeline import MEASURED
from .track import TrackSettings

__all__ = ["EarlierRun", "Journal", "earlier_run", "record_export", "run_record"]

SUMMARY_COLUMNS = (
    "Image",
    "Path",
    "Page",
    "Channel",
    "Status",
    "Cells",
    "MeanArea_px",
    "Diameter_px",
    "Seconds",
    "Read",
    "Error",
    "Digest",
    "Note",
)

#: Settings that change no result (how much memory one network call may take).
_NOT_COMPARED = ("memory_mb",)

#: Settings added since runs were first recorded, with the value a run made before them used:
#: a run.json without them is continued as that value.
_ADDED = {"neighbour_distance": 0, "max_size": None, "ring_width": 0}

#: What a user calls each thing that must match for a run to be continued.
_WORDS = {
    "threshold": "detection threshold",
    "diameter": "cell diameter",
    "smoothness": "smoothness",
    "min_size": "smallest cell",
    "max_size": "largest cell",
    "exclude_border": "cells touching the border left out",
    "edge_fraction": "edge fragments left out below",
    "pixel_size": "pixel size",
    "neighbour_distance": "neighbours",
    "ring_width": "ring around each cell",
    "propagation": "propagation",
    "roi": "ImageJ ROI sets",
    "page": "page",
    "channel": "channel",
    "centres": "cell centres from",
    "points_digest": "points file (its contents)",
    "track": "cells followed over time",
    "track_max_move": "how far a cell may move (cell diameters a time point)",
    "track_max_gap": "gaps closed (time points)",
    "measures": "the cell tables' measurements",
}


#: The start of the note of an image a continued run kept and measured again with other
#: measurement settings (batch ``_measured_anew``).
MEASURED_AGAIN = "its cells measured again"


def _digest(points: dict) -> str:
    """A fingerprint of a points dict ({image name: [N, 2] (x, y)}), to 1/1000 pixel."""
    plain = {k: np.round(np.asarray(v, float), 3).tolist() for k, v in sorted(points.items())}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


def run_record(model, settings, roi: bool, page, channel, points, track=False) -> dict:
    """What made a run's results: run.json's first fields, compared when a run is continued.
    ``track``: True, or the :class:`~cellprop.engine.track.TrackSettings`, where the run
    follows its cells (recorded as ``"tracking"``)."""
    following = TrackSettings.following(track)
    return {
        "settings": asdict(settings),
        "model": {
            "name": model.name,
            "path": str(model.path),
            "description": getattr(model, "description", ""),
        },
        "roi": bool(roi),
        "page": page,
        "channel": channel,
        # Where the cells' centres came from: "network" or "points file".
        "centres": "network" if points is None else "points file",
        "points_digest": None if points is None else _digest(points),
        "track": following is not None,
        "tracking": None if following is None else following.record(),
        "measures": MEASURES,
    }


#: Settings whose None means the model's default: compared as the value it stood for (the
#: run's ``"resolved"``), so that a run given the default by name (--threshold 0.5) continues
#: one that was not, and the other way round.
_DEFAULTED = ("threshold", "smoothness", "min_size", "max_size", "edge_fraction")


def _compared(record: dict, resolved: dict | None = None) -> dict:
    """The values of a run record (or an older run.json) that must match to continue it;
    a default (None) as the value ``resolved`` gives it."""
    model = record.get("model") or {}
    settings = record.get("settings") or {}
    values = {**_ADDED, **{k: v for k, v in settings.items() if k not in _NOT_COMPARED}}
    for key in _DEFAULTED:
        stood_for = (resolved or {}).get(key)
        if values.get(key) is None and stood_for is not None:
            values[key] = stood_for
    values.update(
        model=(model.get("name"), model.get("path")),
        roi=bool(record.get("roi", False)),
        page=record.get("page"),
        channel=record.get("channel"),
        centres=record.get("centres", "network"),
        points_digest=record.get("points_digest"),
        track=bool(record.get("track", False)),
        measures=record.get("measures", 1),  # (a run.json before they were recorded: the first)
    )
    if values["track"]:  # how, where it followed (a run.json before: the defaults)
        chosen = TrackSettings.of(record.get("tracking")).record()
        values.update({f"track_{name}": value for name, value in chosen.items()})
    return values


#: What None stands for, where it is not the model's default.
_NONE = {
    "page": "the first",
    "channel": "the first",
    "pixel_size": "the file's",
    "diameter": "the model's",
    "points_digest": "none",
}


def _shown(value, key: str = "") -> str:
    if value is None:
        return _NONE.get(key, "the model's default")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):  # (model name, folder)
        return f"{value[0]} ({value[1]})"
    if key == "neighbour_distance":
        return neighbours_in_words(value)
    if key == "ring_width":
        return f"{value} px" if value else "none"
    if key == "measures":
        return _MEASURES_SHOWN.get(value, f"edition {value}")
    return str(value)


#: What each edition of the measurements (:data:`~cellprop.engine.features.MEASURES`) is.
_MEASURES_SHOWN = {
    1: "cellprop's first (Compactness of the pixels' spread)",
    2: "CellProfiler 4's Compactness",
    3: "CellProfiler 4's Compactness; no ring total where no ring pixel is a number",
}


@dataclass(frozen=True)
class EarlierRun:
    """The record a batch run left in its folder.

    Attributes
    ----------
    folder : pathlib.Path
    record : dict
        Its run.json.
    rows : dict of str to dict
        Its summary.csv rows (columns as ``SUMMARY_COLUMNS``) by image name (the file's, or
        a page's: ``ImageResult.name``).
    """

    folder: Path
    record: dict
    rows: dict

    @property
    def finished(self) -> bool:
        """False for a run that was interrupted or killed before its end."""
        return self.record.get("state", "finished") != "running"

    def done(self, names=None) -> list[str]:
        """The images (names; only those in ``names`` if given) it finished."""
        return [
            n
            for n, row in self.rows.items()
            if row.get("Status") == "done" and (names is None or n in names)
        ]

    def of_other_files(self, sources: dict) -> list[str]:
        """The images of ``sources`` ({image name: the file it is read from now}) that this
        run read from another file under the same name: another experiment's images named
        alike (``day1/t000.tif`` and ``day2/t000.tif``), whose results continuing or
        replacing this run would take the place of. Images it has no file for, or only a
        relative path (not written by a run: relative to what cannot be known), are none."""
        other = []
        for name, path in sources.items():
            recorded = (self.rows.get(name) or {}).get("Path") or ""
            if os.path.isabs(recorded) and not _same_file(recorded, path):
                other.append(name)
        return other

    def differences(self, record: dict) -> list[str]:
        """What a run with ``record`` (:func:`run_record`) would do otherwise than this one,
        in words ("detection threshold: 0.5 there, 0.4 now"); empty if nothing. Following
        cells over time where this run did not is no difference: the cells segmented stay
        as they are and are followed at the end (not the other way round: a run that
        followed them continued without would leave its tracks half out of date); nor ROI
        sets asked where this run wrote none: the images kept get theirs. Nor are
        the settings that change only the measurements (:data:`MEASURED`,
        :meth:`measured_otherwise`): the cells kept are measured again; nor how cells are
        followed, where both follow them (:meth:`followed_otherwise`): they are followed
        again."""
        changed = self._changed(
            record, lambda key: not _measures(key) and not key.startswith("track_")
        )
        if self.record.get(SEQUENCES):  # (a batch would follow them again from its files)
            changed.append(
                "cells followed over time: by time-lapse and time point as the window "
                "exported them there, which a batch cannot go on with"
            )
        return changed

    def measured_otherwise(self, record: dict) -> list[str]:
        """The settings that change only the measurements (:data:`MEASURED`: the pixel size,
        how neighbours are found, the ring; and the edition of the measurements themselves,
        :data:`~cellprop.engine.features.MEASURES`) that a run with ``record`` gives otherwise
        than this one, in words ("pixel size: the file's there, 0.65 now"); empty if none."""
        return self._changed(record, _measures)

    def followed_otherwise(self, record: dict) -> list[str]:
        """How a run with ``record`` follows cells otherwise than this one, where both
        follow them (how far a cell may move, the gaps closed), in words ("how far a cell
        may move (cell diameters a time point): 0.5 there, 1.5 now"); empty if alike."""
        return self._changed(record, lambda key: key.startswith("track_"))

    def _changed(self, record: dict, among) -> list[str]:
        # the defaults as each run resolved them (a run stopped before it recorded its own:
        # as this one does, with the same model); as given where ``record`` does not say
        now = record.get("resolved") or None
        was = (self.record.get("resolved") or now) if now else None
        old, new = _compared(self.record, was), _compared(record, now)
        changed = []
        for key in dict.fromkeys([*old, *new]):
            if not among(key):
                continue
            if key in ("track", "roi") and new.get(key) and not old.get(key):
                continue  # followed, or ROI sets, where it did not: added to the cells kept
            if key.startswith("track_") and not (old.get("track") and new.get("track")):
                continue  # how it follows, where both do
            if old.get(key) != new.get(key):
                word = _WORDS.get(key, key.replace("_", " "))
                if key == "points_digest" and old.get(key) and new.get(key):
                    changed.append(f"{word}: other cell centres than the run's")  # (no hashes)
                    continue
                was, now = _shown(old.get(key), key), _shown(new.get(key), key)
                changed.append(f"{word}: {was} there, {now} now")
        return changed

    def difference(self, record: dict) -> str | None:
        """Why a run with ``record`` (:func:`run_record`) cannot continue this one, or None."""
        changed = self.differences(record)
        if not changed:
            return None
        return (
            f"{self.folder}: its results were made with other settings ("
            + "; ".join(changed)
            + "); continue it with the same ones, or write to another folder"
        )


def _measures(key: str) -> bool:
    """Whether a run record's ``key`` changes only how the cells kept are measured."""
    return key in MEASURED or key == "measures"


def _file_key(path: str | Path) -> str:
    """A file's path as compared between runs: absolute, and in the case the system compares."""
    return os.path.normcase(os.path.abspath(path))


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: spelled alike (:func:`_file_key`), or where both
    are there, the same file reached another way (a linked folder, another mount's path)."""
    if _file_key(a) == _file_key(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one of them gone: not known to be the same)
        return False


def earlier_run(folder: str | Path) -> EarlierRun | None:
    """The record of the batch run in ``folder``; None where there is none (no run.json).

    Raises
    ------
    ResumeError
        run.json is there but cannot be read (names the file).
    """
    folder = Path(folder)
    path = folder / "run.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not {"model", "settings"} <= set(record):
            raise ValueError("no model and settings in it")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResumeError(f"{path}: not the record of a cellprop run ({exc})") from exc
    rows: dict = {}
    summary = folder / "summary.csv"
    if summary.is_file():  # written with run.json; process_batch refuses to continue without it
        rows = _summary_rows(summary)
    return EarlierRun(folder=folder, record=record, rows=rows)


def name_as_written(text: str) -> str:
    """``text`` as the tables write it: a file name's bytes that are not UTF-8 (a Latin-1
    name copied from an old disk or share, which Python holds as lone surrogates) as ``?``,
    as ``ls`` shows them, so that every table stays UTF-8 that spreadsheets and pandas read
    (writing them stopped the batch); the name on disk is kept."""
    return text.encode("utf-8", "replace").decode("utf-8")


#: summary.csv's columns of numbers (a spreadsheet saving it may write them with a comma).
_SUMMARY_NUMBERS = ("MeanArea_px", "Diameter_px", "Seconds")


def _summary_rows(summary: Path) -> dict:
    """summary.csv's rows by image name, as cellprop wrote it or as a spreadsheet saved it
    again (Excel's "CSV UTF-8" with its byte-order mark, or a European Excel's semicolons
    and decimal commas). ResumeError where it cannot be read or lacks the columns that say
    which images the run finished: never taken for a run that finished none (its images
    would be segmented over labels drawn since)."""
    try:
        table, comma = read_csv_rows(summary)
    except (OSError, csv.Error) as exc:
        raise ResumeError(f"{summary}: cannot be read ({exc})") from exc
    header = table[0] if table else []
    found = [dict(zip(header, row, strict=False)) for row in table[1:]]
    if not {"Image", "Status"} <= set(header):
        raise ResumeError(
            f"{summary}: no Image and Status columns, so which images the run finished "
            "cannot be told (saved again otherwise than cellprop writes it?); put back the one "
            "the run wrote, or replace the run (--overwrite; in the window, Replace)"
        )
    rows: dict = {}
    for row in found:
        if comma:  # decimal commas
            for key in _SUMMARY_NUMBERS:
                if row.get(key):
                    row[key] = row[key].replace(",", ".")
        _named_as_on_disk(row)
        if row.get("Image"):
            rows[row["Image"]] = row
    return rows


def _named_as_on_disk(row: dict) -> None:
    """A summary.csv row of an image whose file name is not UTF-8 (its bytes written as
    ``?``: :func:`name_as_written`) given the name its file and result files have on disk
    again, in ``Path`` and ``Image``, where one file beside the path written is named so: its
    run is opened, continued and exported into as any other (its path, written so, is none)."""
    path = row.get("Path") or ""
    if "?" not in path:
        return
    where = Path(path)
    try:
        if where.exists():
            return
        found = [p for p in where.parent.iterdir() if name_as_written(p.name) == where.name]
    except OSError:
        return
    if len(found) != 1:
        return
    row["Path"] = str(found[0])
    shown, own = name_as_written(found[0].stem), found[0].stem
    row["Image"] = (row.get("Image") or "").replace(shown, own)


def recount(folder: str | Path, counts: dict, made: dict | None = None) -> None:
    """Bring the ``Cells`` and ``MeanArea_px`` of the batch run's summary.csv in ``folder`` up
    to date for images whose results were written there again (*Export* of corrections into
    a run's folder): ``counts`` {image name: (cells, mean area in pixels)}; and where ``made``
    gives what made each ({image name: {"model": the model as the window names it,
    "settings": the engine settings}}: segmented again with another model or measured with
    another pixel size since the run), record it in run.json's ``"made"``, so that its results
    opened again (:func:`~cellprop.engine.batch.saved_results`) are corrected and measured
    so. Nothing where the folder holds no summary.csv that can be read, or it names none of
    them."""
    folder = Path(folder)
    summary = folder / "summary.csv"
    if not summary.is_file():
        return
    try:
        rows = _summary_rows(summary)
    except ResumeError:
        return
    changed = []
    for name, (cells, area) in counts.items():
        row = rows.get(name)
        if row is not None and row.get("Status") == "done":
            row["Cells"] = str(int(cells))
            row["MeanArea_px"] = "" if area != area else f"{area:.2f}"
            changed.append(name)
    if not changed:
        return
    if made:
        _record_made(folder, {name: made[name] for name in changed if name in made})
    _write_summary(folder, rows.values(), replace=True)


def _write_summary(folder: Path, rows: Iterable[dict], replace: bool) -> None:
    """Write a run's summary.csv from its rows (dicts by column: :data:`SUMMARY_COLUMNS`,
    and any a row has besides, kept)."""
    rows = list(rows)
    names = list(dict.fromkeys([*SUMMARY_COLUMNS, *(k for row in rows for k in row)]))
    with atomic_path(folder / "summary.csv", replace) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.DictWriter(fh, names, restval="")
            writer.writeheader()
            writer.writerows(rows)


#: run.json's mark of a record the window's exports keep (:func:`record_export`), not a
#: batch run's.
EXPORTED = "exported"

#: run.json's {image name: [time-lapse, time point, how its cells were followed]} of the
#: images the window exported whose cells were followed (:func:`record_export`): as written,
#: where a batch's are found again from its images' files (``batch.sequences``).
SEQUENCES = "sequences"


def record_export(
    folder: str | Path,
    exported: list[tuple[dict, dict]],
    model: dict,
    roi: bool,
    followed: dict | None = None,
) -> bool:
    """Keep the record of the images the window exported into ``folder`` (*Export*, *Export
    all*) where no batch run holds it: run.json and summary.csv as a run writes them, so that
    *Open results* reads the images back with their cells another day, as it does a batch's,
    and another export there keeps each image's row. ``exported``: (summary row, what made
    it: {"model", "settings"}) of each image written now; ``model``: run.json's ``"model"``
    entry of the first's model, used where the folder holds no record yet; ``roi``: whether
    each of them has its ROI set there; ``followed``: of those that are time points of a
    time-lapse whose cells were followed, {image name: (time-lapse, time point, how they
    were followed: ``TrackSettings.record()``)}, kept as run.json's ``"sequences"`` (each
    image's time-lapse and time point as written, whatever else the folder holds, and a
    time point closed a gap; :func:`~cellprop.engine.batch.saved_results` reads them) and
    ``"tracking"``. The images of an earlier export there keep their rows and time points,
    and each image made otherwise than the record's first is recorded in ``"made"``.

    Returns False, writing nothing, where the folder holds a batch run's record (its summary's
    counts are :func:`recount`'s), a record that cannot be read, or a summary.csv without a
    run.json (not cellprop's, or a run's whose record is gone)."""
    folder = Path(folder)
    try:
        run = earlier_run(folder)
    except ResumeError:
        return False
    if run is None and (folder / "summary.csv").exists():
        return False
    if run is not None and not run.record.get(EXPORTED):
        return False
    if not exported:
        return True
    rows = dict(run.rows) if run is not None else {}
    rows.update({row["Image"]: row for row, _ in exported})
    first = exported[0][1]
    if run is not None:
        record = dict(run.record)
    else:
        record = {
            "settings": dict(first["settings"]),
            "model": model,
            "roi": True,
            "page": None,
            "channel": None,
            "centres": "network",
            "points_digest": None,
            "track": False,
            "tracking": None,
            "measures": MEASURES,
            EXPORTED: True,
            "created": _now(),
        }
    record["roi"] = bool(record.get("roi")) and roi
    # the pages of multi-page files: each row says its own (a single-page image's: none)
    record["page"] = "all" if any(str(r.get("Page") or "") for r in rows.values()) else None
    # each image's time-lapse, time point and how its cells were followed, as written now
    # or by an earlier export; two time-lapses of one name (two days' "frames" folders)
    # named apart, by where their files lie and the channel
    earlier = record.get(SEQUENCES)
    sequences = dict(earlier) if isinstance(earlier, dict) else {}
    for row, _ in exported:
        sequences.pop(row["Image"], None)

    def lapse_of(name: str) -> tuple:
        row = rows.get(name) or {}
        return (str(Path(row.get("Path") or "").parent), str(row.get("Channel") or ""))

    owners = {entry[0]: lapse_of(name) for name, entry in sequences.items()}
    tracking = record.get("tracking")
    for name, (lapse, time_point, how) in (followed or {}).items():
        own, label, n = lapse_of(name), lapse, 1
        while owners.get(label, own) != own:
            n += 1
            label = f"{lapse} ({n})"
        owners[label] = own
        sequences[name] = [label, int(time_point), how]
        tracking = how
    record[SEQUENCES] = sequences
    record["track"] = bool(sequences)
    record["tracking"] = tracking if sequences else None
    _add_made(record, {row["Image"]: own for row, own in exported})
    record.update(
        state="finished",
        images=len(rows),
        done=len(rows),
        cells=sum(int(r.get("Cells") or 0) for r in rows.values()),
        ended=_now(),
    )
    write_record(folder, record, replace=run is not None)
    _write_summary(folder, rows.values(), replace=run is not None)
    return True


def _record_made(folder: Path, made: dict) -> None:
    """Add ``made`` ({image name: {"model", "settings"}}) to run.json's ``"made"`` in
    ``folder`` (nothing where run.json cannot be read: the run's own record stays)."""
    try:
        run = earlier_run(folder)
    except ResumeError:
        return
    if run is None or not made:
        return
    record = dict(run.record)
    _add_made(record, made)
    if record != run.record:
        write_record(folder, record, replace=True)


def _add_made(record: dict, made: dict) -> None:
    """Add ``made`` ({image name: {"model", "settings"}}) to ``record``'s ``"made"``: an
    image made as the run made it (again) has no entry."""
    earlier = record.get("made")
    kept = dict(earlier) if isinstance(earlier, dict) else {}
    for name, own in made.items():
        if _as_the_run(record, own):
            kept.pop(name, None)
        else:
            kept[name] = own
    if kept:
        record["made"] = kept
    else:
        record.pop("made", None)


def write_record(folder: Path, record: dict, replace: bool) -> None:
    """Write a run's record, ``folder``/run.json (whole or not at all)."""
    with atomic_path(folder / "run.json", replace) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", "utf-8")


def _as_the_run(record: dict, own: dict) -> bool:
    """Whether ``own`` ({"model", "settings"}) is what the run whose record is ``record``
    made its images with: its model (by name or folder), and each setting as given or as it
    resolved it (a window's result keeps the values resolved)."""
    model = record.get("model") or {}
    if own.get("model") not in (model.get("name"), model.get("path")):
        return False
    given = record.get("settings") or {}
    found = record.get("resolved")
    resolved: dict = found if isinstance(found, dict) else {}
    settings = own.get("settings") or {}
    return all(
        value == given.get(key) or (key in resolved and value == resolved[key])
        for key, value in settings.items()
    )


def made_by(record: dict, name: str) -> dict | None:
    """What made the image ``name`` of a run whose record (run.json) is ``record``, where that
    is not the run's model and settings ({"model", "settings"}: exported there from the window
    since); None: the run's."""
    made = record.get("made")
    own = made.get(name) if isinstance(made, dict) else None
    if not isinstance(own, dict) or not isinstance(own.get("settings"), dict):
        return None
    return own


def row_channel(row: dict) -> int | None:
    """The channel a summary.csv row says its image was read from; None where it says none."""
    return int(row["Channel"]) if (row.get("Channel") or "").isdigit() else None


def _row(result) -> list:
    """One image's summary.csv row (an ImageResult)."""
    return [
        result.name,
        os.path.abspath(result.path),  # where a later look at the results finds the image
        "" if result.page is None else result.page,
        "" if getattr(result, "channel", None) is None else result.channel,
        result.status,
        result.n_cells,
        "" if np.isnan(result.mean_area) else f"{result.mean_area:.2f}",
        "" if result.diameter is None else f"{result.diameter:.1f}",
        f"{result.seconds:.2f}",
        result.image_info,
        result.error or "",
        getattr(result, "digest", ""),
        add_note(getattr(result, "earlier_note", ""), getattr(result, "note", "")),
    ]


def add_note(note: str, more: str) -> str:
    """A note with ``more`` after what it said already."""
    return f"{note}; {more}" if note and more else note or more


class Journal:
    """Writes a run's record while it runs (see the module's docstring).

    ``replace``: run.json and summary.csv may be replaced (overwrite, or a run continued);
    otherwise they must not exist yet. ``kept``: ImageResults of the earlier run taken over.
    """

    def __init__(self, folder: Path, record: dict, replace: bool, kept: Iterable = ()) -> None:
        self.folder = Path(folder)
        kept = list(kept)
        self.record = dict(record, state="running", created=_now())
        if replace and kept:  # continued: what made the images it keeps, where not the run
            try:
                earlier = earlier_run(self.folder)
            except ResumeError:
                earlier = None
            made = {}
            before = earlier.record if earlier is not None else {}
            for r in kept:
                own = made_by(before, r.name)
                if own is not None and r.note.startswith(MEASURED_AGAIN):  # as measured now
                    measured = {k: record["settings"].get(k) for k in MEASURED}
                    own = {**own, "settings": {**own["settings"], **measured}}
                if own is not None:
                    made[r.name] = own
            if made:
                self.record["made"] = made
        self._write_json(replace)
        with atomic_path(self.folder / "summary.csv", replace) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
                writer = csv.writer(fh)
                writer.writerow(SUMMARY_COLUMNS)
                writer.writerows(_row(r) for r in kept)

    def add(self, result) -> None:
        """Record one finished image (appended, so that a killed run keeps every row).
        OSError where the run's record is gone (its folder removed, or emptied, while the run
        wrote to it): the run stops, saying so, rather than end "done" with files missing."""
        if not (self.folder / "run.json").is_file():
            raise OSError(
                errno.ENOENT,
                "the result folder was removed or emptied while the run wrote to it (its "
                "run.json is gone); run it again",
                str(self.folder),
            )
        with open(
            self.folder / "summary.csv", "a", newline="", encoding="utf-8", errors="replace"
        ) as fh:
            csv.writer(fh).writerow(_row(result))

    def close(self, results: list, extra: dict, replace_cells: bool) -> None:
        """Write cells.csv and images.csv, and summary.csv and run.json once more, in input
        order."""
        tables = [(r.name, r.table, r.page) for r in results if r.table is not None]
        write_tables(self.folder / "cells.csv", tables, replace_cells)
        write_image_table(self.folder / "images.csv", tables, replace_cells)
        with atomic_path(self.folder / "summary.csv", True) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as fh:
                writer = csv.writer(fh)
                writer.writerow(SUMMARY_COLUMNS)
                writer.writerows(_row(r) for r in results)
        statuses = [r.status for r in results]
        self.record.update(extra)
        self.record.update(
            state="finished",
            images=len(results),
            done=statuses.count("done"),
            kept=sum(bool(getattr(r, "kept", False)) for r in results),
            failed=statuses.count("failed"),
            skipped=statuses.count("skipped"),
            cancelled=statuses.count("cancelled"),
            cells=sum(r.n_cells for r in results),
            ended=_now(),
        )
        self._write_json(True)

    def _write_json(self, replace: bool) -> None:
        write_record(self.folder, self.record, replace)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
