"""cellprop.app: the PySide6 desktop front end over :mod:`cellprop.engine`.

``qt_compat`` is imported first: it repairs a PySide6 6.12.0 reference-counting bug before
any other Qt call is made.
"""

from . import qt_compat  # noqa: F401
