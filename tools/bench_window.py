"""What the window adds to a batch of many small images (`make bench-window`): prints
figures, asserts nothing.

A folder of N small crops of the shipped C2C12 sample (96 x 96 px, a few cells each, so the
engine's own time per image is short and the window's share shows) is segmented twice with
the shipped phase model on the CPU, one image at a time: by the engine's ``process_batch``
(what ``cellprop segment`` runs), and by the window's batch (``AppController.run_batch`` with
a ``MainWindow`` shown offscreen: the image list, the Log, the progress bar and the
Distribution all following it). The difference per image is the window's cost.

    python tools/bench_window.py [--images 1000] [--size 96]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_crops(folder: Path, n: int, size: int) -> list[Path]:
    import cv2
    from cellprop.engine import read_image
    from cellprop.resources import path as resource_path

    pixels = read_image(resource_path("samples", "c2c12_0006_crop512.png")).pixels
    h, w = pixels.shape[:2]
    paths = []
    for k in range(n):
        y = (k * 37) % (h - size)
        x = (k * 53) % (w - size)
        path = folder / f"crop{k:05d}.png"
        cv2.imwrite(str(path), pixels[y : y + size, x : x + size])
        paths.append(path)
    return paths


def engine_batch(paths: list[Path], out: Path) -> float:
    from cellprop.engine import Settings, load_model, process_batch

    model = load_model("phase", device="cpu")
    start = time.perf_counter()
    result = process_batch(paths, out, model, Settings(), workers=1)
    seconds = time.perf_counter() - start
    failed = [r for r in result.results if r.status != "done"]
    if failed:
        print(f"  {len(failed)} images failed in the engine's batch: {failed[0].error}")
    return seconds


def window_batch(paths: list[Path], out: Path, settings: Path) -> tuple[float, float]:
    """Seconds from the batch's start to its end in the window, and the longest the window
    went without handling its events (how long it seemed frozen)."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])  # kept: the window needs it alive
    from cellprop.app.controller import AppController
    from cellprop.app.main_window import MainWindow
    from cellprop.app.settings_store import SettingsStore

    store = SettingsStore(QSettings(str(settings), QSettings.Format.IniFormat))
    controller = AppController(store=store)
    controller.update_settings(model="phase", device="cpu")
    window = MainWindow(controller)
    window.show()
    loop = QEventLoop()
    done: list = []

    def finished(*_):
        done.append(time.perf_counter())
        loop.quit()

    controller.batch_finished.connect(finished)
    model_ready = QEventLoop()
    controller.model_changed.connect(lambda status: status.loading or model_ready.quit())
    if not controller.model_status.provider:  # the model loads first
        model_ready.exec()
    if controller.model_status.error:
        raise SystemExit(controller.model_status.error)
    # how long the window went without handling its events: a tick asked every 10 ms
    ticks = [time.perf_counter()]
    longest = [0.0]

    def tick():
        now = time.perf_counter()
        longest[0] = max(longest[0], now - ticks[0])
        ticks[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    start = time.perf_counter()
    if not controller.run_batch(paths, out, workers=1):
        raise SystemExit("the window's batch did not start")
    loop.exec()
    timer.stop()
    seconds = done[0] - start
    controller.shutdown()
    window.hide()  # (close() would ask about the results of the run, as for a user)
    return seconds, longest[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="cellprop-bench-window-") as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        paths = make_crops(tmp / "images", args.images, args.size)
        print(
            f"{args.images} images of {args.size} x {args.size} px, phase model, CPU, 1 at a time"
        )
        engine_s = engine_batch(paths, tmp / "engine")
        print(
            f"  engine (cellprop segment): {engine_s:.1f} s, {1000 * engine_s / len(paths):.1f} ms/image"
        )
        window_s, frozen = window_batch(paths, tmp / "window", tmp / "settings.ini")
        print(
            f"  window batch:              {window_s:.1f} s, {1000 * window_s / len(paths):.1f} ms/image"
        )
        extra = 1000 * (window_s - engine_s) / len(paths)
        print(f"  the window's share: {extra:.1f} ms/image; longest still: {1000 * frozen:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
