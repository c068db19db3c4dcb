"""Data shipped with cellprop: trained models, icons and small sample images.

Locate files with :func:`path` so that the same code works from a source tree,
an installed wheel and a frozen (PyInstaller) bundle.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """Return the path of a shipped resource, e.g. ``path("models", "phase")``."""
    return ROOT.joinpath(*parts)
