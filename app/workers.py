"""Run engine calls off the GUI thread and report back through Qt signals.

A :class:`Job` wraps a plain function ``fn(job)``. The function calls ``job.progress(...)``,
``job.partial(...)`` and ``job.is_cancelled()``; the job turns these into queued signals, so
slots run on the GUI thread and the window keeps painting while the engine works.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class JobSignals(QObject):
    progress = Signal(str, float)  # stage text, fraction 0..1
    partial = Signal(object)  # an intermediate result (one image of a batch)
    finished = Signal(object)  # fn's return value
    failed = Signal(object, str)  # the exception, its formatted traceback
    done = Signal()  # always last, after finished or failed


class Job(QRunnable):
    """One background task. Cancel is cooperative: ``fn`` checks ``is_cancelled()``."""

    # Progress is throttled: the engine may report per cell, the bar needs ~20 updates/s.
    PROGRESS_INTERVAL_S = 0.05

    def __init__(self, fn: Callable[[Job], object], name: str = "job"):
        super().__init__()
        self.setAutoDelete(False)  # the controller holds it until `done`
        self.fn = fn
        self.name = name
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self._last_progress = 0.0
        self._finished = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def progress(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= self.PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.signals.progress.emit(str(stage), float(fraction))

    def partial(self, item: object) -> None:
        self.signals.partial.emit(item)

    def run(self) -> None:  # called on a pool thread
        try:
            result = self.fn(self)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the window
            self.signals.failed.emit(exc, traceback.format_exc())
        else:
            self.signals.finished.emit(result)
        finally:
            self._finished.set()
            self.signals.done.emit()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)


def make_pool(threads: int = 1) -> QThreadPool:
    pool = QThreadPool()
    pool.setMaxThreadCount(threads)
    return pool
