"""The engine's exceptions: one class per thing a front end reports differently."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "Cancelled",
    "ImageError",
    "ModelError",
    "OutputExists",
    "PointsError",
    "ResumeError",
]


class ImageError(ValueError):
    """An input image could not be used.

    ``str(error)`` is ``"<file>: <reason>"`` so that a front end can show it as is.

    Attributes
    ----------
    path : pathlib.Path or None
        The offending file (None for an in-memory array).
    reason : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path if self.path is not None else '<array>'}: {reason}")


class ModelError(RuntimeError):
    """A model folder is missing, incomplete or broken; the message names the folder."""


class Cancelled(Exception):  # noqa: N818 - the name a front end expects to catch
    """Raised inside :func:`cellprop.engine.segment` when its ``cancel`` callback returns True."""


class OutputExists(FileExistsError):
    """A result file already exists and overwriting was not asked for; names the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: exists already (use --overwrite to replace it)")


class PointsError(ValueError):
    """A file of cell centres (points CSV) cannot be used; the message names the file and line."""


class ResumeError(ValueError):
    """An earlier run in a result folder cannot be continued (none there, or other settings);
    the message names the folder and what differs."""


class FolderInUse(ResumeError):
    """A result folder another run is writing into now: a run there cannot start (nor
    continue the other) until it ends."""
