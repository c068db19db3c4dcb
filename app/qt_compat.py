"""Work-around for a reference-counting bug of PySide6 6.12.0 on Python < 3.12.

PySide6 6.12.0 returns ``None`` from every void Qt method (``setText``, ``setValue``,
``processEvents``...) and ``True`` from ``Signal.emit`` without taking a reference, as
Python 3.12+ allows for its immortal singletons. On Python 3.11 each such call lowers the
reference count of ``None`` or ``True`` by one, and after a few minutes of progress updates
the interpreter aborts with "Fatal Python error: none_dealloc" (or "bool_dealloc").

:func:`protect_singletons` checks whether this Qt binding has the bug and, if so, gives
``None``, ``True`` and ``False`` what Python 3.12 gives them: a reference count so large
that it never reaches zero. It is imported (and runs) before any other Qt use in the app,
and does nothing where the binding is sound.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

# Python 3.12 marks immortal objects with a count near 2**32; 2**40 is as unreachable.
_PLENTY = 2**40
_PROBES = 64


class _Probe(QObject):
    ping = Signal()


def _leaks() -> dict:
    """References lost by None and True over ``_PROBES`` void calls and emits."""
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.setObjectName("probe")  # a void method: returns None
        probe.ping.emit()  # returns True
    return {
        "None": none_before - sys.getrefcount(None),
        "True": true_before - sys.getrefcount(True),
    }


def protect_singletons() -> bool:
    """Make None/True/False unkillable if this PySide6 drops references to them.

    Returns True when the protection was needed (and applied).
    """
    if sys.version_info >= (3, 12):
        return False  # immortal already
    lost = _leaks()
    # other threads may touch these objects meanwhile; the bug loses one per call
    if max(lost.values()) < _PROBES // 2:
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every PyObject (Include/object.h)
        ctypes.c_ssize_t.from_address(id(singleton)).value += _PLENTY
    return True


SINGLETONS_PROTECTED = protect_singletons()
