"""Work-arounds for bugs in the Qt binding, each detected at run time and inert once fixed.

PySide6 6.12.0: every ``SignalInstance.emit()`` called from Python returns ``True`` without
taking a reference to it, so each emit lowers ``True``'s reference count by one. After a few
hundred emits (one progress report each) the interpreter dies with "Fatal Python error:
bool_dealloc". :func:`emit` gives the reference back when, and only when, the probe below
shows the leak. Every emit in the app goes through it.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_drops_a_reference_to_true() -> bool:
    probe = _Probe()
    rounds = 32
    before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost >= rounds // 2:  # other threads may touch True meanwhile; the leak is one per emit
        for _ in range(rounds):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
        return True
    return False


EMIT_LEAKS_TRUE = _emit_drops_a_reference_to_true()


def emit(signal, *args) -> None:
    """``signal.emit(*args)``, safe on PySide6 builds whose emit drops a reference to True."""
    signal.emit(*args)
    if EMIT_LEAKS_TRUE:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
