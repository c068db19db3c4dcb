"""``cellprop-gui [FILES/FOLDERS]`` (also ``cellprop gui``): start the desktop app.

``--self-test SAMPLE`` opens SAMPLE in the real window, segments it and exits 0 on success
and 1 on failure (installers use it to check that a bundle really works).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellprop-gui",
        description="Find and outline every cell in microscopy images, in a window.",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="FILE_OR_FOLDER", help="images or folders of images to open"
    )
    parser.add_argument(
        "--self-test",
        metavar="SAMPLE",
        help="open SAMPLE, segment it, print the result and exit (0 = success)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds --self-test waits for the segmentation (default 600)",
    )
    return parser


def _headless() -> bool:
    return sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _application(argv: list):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "cellprop-gui", *argv])
    app.setApplicationName("cellprop")
    app.setOrganizationName("cellprop")
    app.setApplicationDisplayName("cellprop")
    app.setDesktopFileName("cellprop")
    return app


def _install_excepthook(window) -> None:
    """An unexpected error in a slot is logged and shown; the app keeps running."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            window.controller.log.emit("error", "Unexpected error (please report it):\n" + text)
            window.banner.show_message(f"Unexpected error: {exc}. Details are in the Log tab.")
        except Exception:  # noqa: BLE001 - never fail while reporting a failure
            previous(exc_type, exc, tb)

    sys.excepthook = hook


def self_test(sample: str, timeout_s: float) -> int:
    """Open ``sample`` in a window, segment it, then segment two copies of it as a folder
    batch in two worker processes (a frozen app must start those as workers, not as second
    windows); report. Returns the exit status."""
    import shutil
    import tempfile
    from pathlib import Path

    from PySide6.QtCore import QEventLoop, QTimer

    from .main_window import MainWindow

    window = MainWindow()
    window.dialogs.ask = lambda *args: False  # never block on a question
    window.show()
    controller = window.controller
    outcome: dict = {}
    loop = QEventLoop()
    started = time.monotonic()

    scratch = Path(tempfile.mkdtemp(prefix="cellprop-self-test-"))
    copies = [scratch / f"{name}{Path(sample).suffix}" for name in ("a", "b")]

    def finished(index: int) -> None:
        outcome.setdefault("cells", controller.documents[index].n_cells)

    def idle(busy: bool) -> None:  # the image's own run is over: the batch
        if busy or "cells" not in outcome or "batch" in outcome:
            return
        outcome["batch"] = True
        for copy in copies:
            shutil.copyfile(sample, copy)
        if not controller.run_batch(copies, scratch / "results", workers=2):
            outcome.setdefault("error", "the batch did not start")
            loop.quit()

    def batch_finished(summary) -> None:
        found = [controller.documents[controller.index_of(p)].n_cells for p in copies]
        if summary.done != 2 or found != [outcome["cells"]] * 2:
            outcome.setdefault(
                "error",
                f"two-process batch: {summary.describe()}, cells {found} "
                f"(expected {outcome['cells']} each)",
            )
        loop.quit()

    def failed(message: str) -> None:
        outcome["error"] = message
        loop.quit()

    def image_ready(index: int) -> None:
        if "started" not in outcome:  # segment once, as soon as the image is shown
            outcome["started"] = True
            controller.run_current()

    def too_slow() -> None:
        outcome.setdefault("error", f"no result after {timeout_s:.0f} s")
        loop.quit()

    controller.result_ready.connect(finished)
    controller.busy_changed.connect(idle)
    controller.batch_finished.connect(batch_finished)
    controller.error.connect(failed)
    controller.image_ready.connect(image_ready)
    QTimer.singleShot(int(timeout_s * 1000), too_slow)
    controller.open_paths([sample])
    if "error" not in outcome:
        loop.exec()
    seconds = time.monotonic() - started
    provider = controller.model_status.provider or "?"
    controller.shutdown()
    window.close()
    shutil.rmtree(scratch, ignore_errors=True)
    if "error" in outcome:
        print(f"cellprop-gui self-test FAILED: {outcome['error']}", file=sys.stderr)
        return 1
    print(
        f"cellprop-gui self-test ok: {outcome['cells']} cells in {sample}, and in each of two "
        f"copies segmented in two worker processes ({seconds:.1f} s, {provider})"
    )
    return 0


def main(argv: list | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.self_test and _headless():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif _headless() and not os.environ.get("QT_QPA_PLATFORM"):
        # Qt would abort, blaming a missing libxcb-cursor0: say what is really missing
        print(
            "cellprop-gui: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are "
            "not set): start it from a desktop session, or over ssh with -X; the command "
            "line (cellprop segment ...) needs none",
            file=sys.stderr,
        )
        return 2
    app = _application([])
    if args.self_test:
        return self_test(args.self_test, args.timeout)

    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    _install_excepthook(window)
    _close_on_ctrl_c(window)
    if args.paths:
        window.open_paths(args.paths)
    return app.exec()


def _close_on_ctrl_c(window) -> None:
    """Ctrl-C in the terminal the window was started from closes it as its close button
    does (asking first where results are not saved): Qt's event loop never gave Python the
    signal, and the window went on. A timer lets Python look for it five times a second."""
    import signal

    from PySide6.QtCore import QTimer

    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)  # (back in Python: its signal handlers run)
    timer.start(200)


if __name__ == "__main__":
    sys.exit(main())
