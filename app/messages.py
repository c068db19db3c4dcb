"""What the app says: errors in words a biologist can act on, and progress in the
engine's stages. Plain functions, no Qt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def count_cells(n: int) -> str:
    """A count of cells in words: "1 cell", "0 cells", "12 cells" (as the engine's, which
    this module does not import: the window starts before the engine is loaded)."""
    return f"{n} cell{'s' * (n != 1)}"


def readable_error(exc: BaseException, engine) -> str:
    """A sentence a biologist can act on, for any exception the engine may raise."""
    if isinstance(exc, MemoryError):
        return (
            "Not enough memory for this image. Close other programs, choose the CPU, or "
            "split the image into smaller pieces."
        )
    model_error = getattr(engine, "ModelError", ())
    if model_error and isinstance(exc, model_error):
        return f"The model could not be used: {exc}"
    image_error = getattr(engine, "ImageError", ())
    if image_error and isinstance(exc, image_error):
        if getattr(exc, "path", "") is None:  # read, but too large for the settings chosen
            return f"This image cannot be segmented with these settings: {exc.reason}"
        return f"This image could not be read: {exc}"
    points_error = getattr(engine, "PointsError", ())
    if points_error and isinstance(exc, points_error):
        return str(exc)  # names the file and the line
    resume_error = getattr(engine, "ResumeError", ())
    if resume_error and isinstance(exc, resume_error):
        return f"The earlier run cannot be continued: {exc}"  # names the folder and why
    if isinstance(exc, FileExistsError):
        return f"Not overwritten: {exc}"
    if isinstance(exc, OSError):
        return f"A file could not be read or written: {exc}"
    text = str(exc) or type(exc).__name__
    # onnxruntime reports allocation failures as generic runtime errors
    if "memory" in text.lower() or "bad_alloc" in text.lower():
        return "Not enough memory for this image (" + text.splitlines()[0][:200] + ")."
    return f"Something went wrong ({type(exc).__name__}): {text.splitlines()[0][:300]}"


def training_summary(model_dir: Path) -> str:
    """For the log: "; adapted from dic; held-out images: detection F1 0.930" from a trained
    model's model.json (what it started from, where it started from a model), or "" where it
    says neither."""
    try:
        training = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["training"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    said = ""
    started = training.get("started_from") if isinstance(training, dict) else None
    if isinstance(started, dict) and started.get("name"):
        said += f"; adapted from {started['name']}"
    try:
        detection = training["val_detection"]
        said += f"; held-out images: detection F1 {float(detection['f1']):.3f}"
    except (KeyError, TypeError, ValueError):
        pass
    return said


def measured_with(pixel_size: float | None, neighbour_distance: int, ring_width: int = 0) -> str:
    """How cells are measured (the engine's ``Settings.measured()``), in words: "0.5 µm; within 3 px",
    "from the file; touching", "0.5 µm; expanded until adjacent; a ring of 4 px"."""
    size = f"{pixel_size:g} µm" if pixel_size else "from the file"
    from cellprop.engine.features import neighbours_in_words  # loaded: cells were measured

    ring = f"; a ring of {ring_width} px" if ring_width else ""
    return f"{size}; {neighbours_in_words(neighbour_distance)}{ring}"


def size_note(settings) -> str:
    """For the log: "; cell diameter estimated at 62 px (...)" where the engine measured the
    diameter on the image itself (``diameter="auto"``), and "; 3 cells cut by the image edge
    left out (...)" where the edge rule left cells out (the engine's ``left_out_note``, as the
    command line says it); else ""."""
    from cellprop.engine.pipeline import left_out_note

    note = (settings or {}).get("diameter_estimate")
    return (f"; {note}" if note else "") + left_out_note(settings)


# The engine's stage names, as the progress text tells them to a biologist.
STAGE_WORDS = {
    "size": "measuring the cell size",
    "normalise": "preparing the image",
    "detect": "finding cell centres",
    "propagate": "tracing each cell back from its centre",
    "graph cut": "drawing the outlines",
    "done": "measuring the cells",
}


def format_seconds(seconds: float) -> str:
    """Time left, as a person says it."""
    if seconds < 0:
        return "estimating time left…"
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def counted(n: int, noun: str) -> str:
    """The count with its noun: 1 centre, 2 centres."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def first_three(names: list[str]) -> str:
    """``names`` as a sentence shows them: the first three, and how many more (worded as the
    engine's run messages word them)."""
    from cellprop.engine.batch import first_three as in_words  # loaded: there are names

    return in_words(names)


def plane_label(doc, plane: tuple) -> str:
    """An image's name (the pooled Distribution's tooltips, the Log): with its page and
    channel where it is not a file's first plane or the file has several segmented."""
    page, channel = plane
    if plane == (0, 0) and len(doc.results) < 2:
        return doc.name
    return f"{doc.name} page {page}" + (f" channel {channel}" if channel else "")


def points_missed(engine, centres, found) -> str:
    """The points given (a points file's) that gave no cell among the cells ``found``
    (their centres), in words as ``cellprop segment --points`` says them; "" where each
    gave one."""
    given = np.reshape(np.asarray(centres, float), (-1, 2))
    kept = engine.points_kept(given, found)
    missed = [tuple(p) for p, k in zip(given, kept, strict=True) if not k]
    if not missed:
        return ""
    at = "; ".join(f"x {x:.0f}, y {y:.0f}" for x, y in missed[:3])
    more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
    return (
        f"{len(missed)} of the {len(given)} points gave no cell ({at}{more}: nothing there to "
        "outline, or left out by the size or edge rules)"
    )
