"""Screenshots of the real app for the README: ``make screenshot`` (under Xvfb).

    python tools/screenshots.py docs

Starts the real window with the real engine and the shipped model on a sample image and
saves: the welcome window, a segmented image with overlays and a selected cell, its cell
centres marked for training, a batch in progress, and the shipped time-lapse with its cells
followed (tracks drawn, two cells' areas over time). Settings go to a temporary file, so the user's own settings are not touched.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = ROOT.parent / "shared" / "data" / "c2c12-phase" / "images"


def sample_paths() -> list:
    from cellprop.app.main_window import sample_images

    found = sample_images()
    if not found and SHARED_SAMPLES.is_dir():
        found = sorted(SHARED_SAMPLES.glob("*.png"))
    if not found:
        sys.exit("no sample images: resources/samples/ is empty and ../shared/data is absent")
    return found


def wait_until(app, predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


class Answers:
    """Plays the user in the window's dialogs: yes to the batch, results into ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def ask(self, title, question):
        return "Quit" not in title

    def choose_files(self, start):
        return []

    def choose_folder(self, title, start):
        return str(self.folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (docs)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--model", default="phase", help="shipped model name or model folder")
    parser.add_argument(
        "--images", nargs="*", type=Path, help="images to show (default: the shipped samples)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(["cellprop"])
    app.setApplicationName("cellprop")

    from cellprop.app.controller import AppController
    from cellprop.app.main_window import MainWindow
    from cellprop.app.settings_store import SettingsStore

    work = Path(tempfile.mkdtemp(prefix="cellprop-shots-"))
    try:
        store = SettingsStore(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
        controller = AppController(store=store)
        controller.update_settings(model=args.model)
        window = MainWindow(controller, dialogs=Answers(work / "batch-results"))
        window.resize(1500, 940)
        window.move(0, 0)
        window.show()
        wait_until(app, lambda: not controller.model_status.loading, 60, "the model")
        settle(app)
        shots = []

        def shoot(name: str) -> None:
            settle(app)
            path = args.out / name
            if not window.grab().save(str(path)):
                sys.exit(f"could not save {path}")
            shots.append(path)
            print(path)

        shoot("screenshot-welcome.png")

        # one image, segmented, with outlines, colours and a selected cell
        samples = args.images or sample_paths()
        controller.open_paths(samples[:1])
        wait_until(
            app,
            lambda: controller.current is not None and controller.current.image is not None,
            60,
            "the image",
        )
        controller.set_overlay("fills", visible=True, opacity=0.35)
        controller.set_overlay("outlines", visible=True, opacity=1.0)
        controller.set_overlay("centres", visible=False)
        controller.run_current()
        wait_until(
            app,
            lambda: (
                controller.current.result is not None
                or (controller.current.error and not controller.busy)
            ),
            args.timeout,
            "the segmentation",
        )
        if controller.current.result is None:
            sys.exit(f"segmentation failed: {controller.current.error}")
        result = controller.current.result
        # select a cell near the middle of the image, as a click on its row would
        h, w = result.labels.shape
        distances = ((result.centres - [w / 2, h / 2]) ** 2).sum(axis=1)
        window.viewer.actual_size()  # 1:1 shows the outlines pixel for pixel
        controller.select_cell(int(distances.argmin()) + 1)
        window._row_clicked(int(distances.argmin()) + 1)  # the view goes to it
        shoot("screenshot-segmented.png")

        # how the cells' areas spread over every image segmented (a second sample segmented
        # too, where there is one), the image shown outlined over them, its smallest cells
        # selected from their bars
        first = controller.current
        if len(samples) > 1:
            controller.open_paths(samples[1:2])
            controller.set_current(len(controller.documents) - 1)
            wait_until(app, lambda: controller.current.image is not None, 60, "the image")
            controller.run_current()
            wait_until(
                app,
                lambda: controller.current.result is not None and not controller.busy,
                args.timeout,
                "the second segmentation",
            )
            controller.set_current(controller.documents.index(first))
            wait_until(app, lambda: controller.current.image is not None, 60, "the image")
        window.bottom_tabs.setCurrentWidget(window.histogram)
        window.histogram.scope.setCurrentIndex(1)  # all segmented images
        window.histogram.cells_chosen.emit(
            window.histogram.cells_in_bin(0) + window.histogram.cells_in_bin(1), False
        )
        window.viewer.fit()
        shoot("screenshot-distribution.png")
        window.histogram.scope.setCurrentIndex(0)
        # the cells coloured by how many others each touches: a colony's crowded middle
        controller.select_cell(0)
        view = window.histogram
        view.measurement.setCurrentIndex(
            view.measurement.findData("Neighbors_NumberOfNeighbors_Adjacent")
        )
        view.colour_cells.setChecked(True)
        shoot("screenshot-neighbours.png")
        view.colour_cells.setChecked(False)
        view.measurement.setCurrentIndex(view.measurement.findData("AreaShape_Area"))
        window.bottom_tabs.setCurrentIndex(0)
        controller.select_cell(0)

        # cell centres marked for training, started from the detected cells
        controller.set_overlay("fills", visible=False)
        window.mark_action.trigger()
        controller.mark_detected_cells()
        shoot("screenshot-marking.png")
        window.mark_action.trigger()  # marking off again
        controller.set_overlay("fills", visible=True, opacity=0.35)

        # a batch over a folder, caught while it runs
        folder = work / "experiment"
        folder.mkdir()
        pool = (samples[1:] + samples[:1]) * 6  # start with another picture than above
        for k, src in enumerate(pool[:6]):
            shutil.copy(src, folder / f"well_{k + 1:02d}{src.suffix}")
        window.open_paths([folder])
        wait_until(app, lambda: controller.busy, 30, "the batch to start")
        wait_until(
            app,
            lambda: window.progress.value() >= 1 or not controller.busy,
            args.timeout,
            "the first batch result",
        )
        # show the first finished image of the batch, as a click in the list would
        controller.set_current(controller.index_of(folder / f"well_01{pool[0].suffix}"))
        wait_until(app, lambda: controller.current.image is not None, 60, "the batch image")
        shoot("screenshot-batch.png")
        controller.cancel()
        wait_until(app, lambda: not controller.busy, args.timeout, "the batch to stop")

        # the shipped time-lapse dropped with *Follow cells over time*: the last frame, each
        # cell's path, two cells selected and their areas frame by frame
        timelapse = ROOT / "resources" / "samples" / "c2c12-timelapse"
        if timelapse.is_dir() and args.model == "phase":
            controller.close_images(range(len(controller.documents)))
            controller.update_settings(batch_track=True)
            window.dialogs = Answers(work / "timelapse-results")
            window.open_paths([timelapse])
            wait_until(app, lambda: controller.busy, 30, "the time-lapse batch to start")
            wait_until(app, lambda: not controller.busy, args.timeout, "the time-lapse batch")
            last = controller.index_of(timelapse / "t006.png")
            controller.set_current(last)
            wait_until(
                app,
                lambda: (
                    controller.current.image is not None and controller.current.result is not None
                ),
                60,
                "the last frame",
            )
            controller.set_overlay("fills", visible=True, opacity=0.35)
            controller.set_overlay("tracks", visible=True)
            result = controller.current.result
            h, w = result.labels.shape
            distances = ((result.centres - [w / 2, h / 2]) ** 2).sum(axis=1)
            controller.select_cells(int(k) + 1 for k in distances.argsort()[:2])
            window.bottom_tabs.setCurrentWidget(window.time_course)
            view = window.time_course
            view.measurement.setCurrentIndex(view.measurement.findData("AreaShape_Area"))
            window.viewer.fit()
            shoot("screenshot-tracks.png")
        controller.shutdown()
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
