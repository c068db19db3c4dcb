"""(No tests here.) A stand-in for ``cellprop.engine``: the app's logic tested fast, exactly.

It follows the API in docs/ARCHITECTURE.md: images are .npy files (a file that does not load
is "corrupt"), segmentation labels the connected bright blobs. Tests of the real engine live
in tests/test_app_engine.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

# The engine's own errors and value types: the fake replaces only the work (reading, models,
# segmentation), so a change to these types reaches the app's tests too.
from cellprop.engine import (
    OUTPUT_SUFFIXES,
    RUN_FILES,
    Cancelled,
    ImageData,
    ImageError,
    ModelError,
    OutputExists,
    Plane,
    PointsError,
    ResumeError,
    Settings,
    TrackSettings,
    calibration,
    clash_message,
    continued_planes,
    earlier_run,
    keep_unreached,
    lineage,
    name_clash,
    named_as_run,
    pixels_digest,
    plane_name,
    planes_points,
    points_kept,
    points_not_kept,
    points_outside,
    read_points,
    read_training_sources,
    record_export,
    recount,
    relatives,
    replaced_left_over,
    run_record,
    run_tables,
    saved_results,
    table_tracks,
    time_points_left_out,
    write_training_set,
    written_result,
)
from cellprop.engine.planes import _apart as apart_names
from scipy import ndimage

__all__ = ["Cancelled", "ImageData", "ImageError", "ModelError", "OutputExists", "Settings"]


@dataclass
class ModelInfo:
    name: str
    path: Path
    description: str = ""
    modality: str = "phase"
    channel: int = 0

    def facts(self) -> str:
        return "cells about 32 px across"


@dataclass
class Model:
    name: str
    path: Path
    device: str = "cpu"
    provider: str = "CPU"
    info: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    channel: int = 0  # of a file, segmented when none is chosen


@dataclass
class Segmentation:
    labels: np.ndarray
    likelihood: np.ndarray
    contribution: np.ndarray
    centres: np.ndarray
    timings: dict
    n_cells: int
    settings: dict  # the values used, as the engine's Segmentation.settings


class CellTable:
    def __init__(self, columns: dict):
        self.columns = columns

    def __len__(self):
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def rows(self):
        return [{k: v[i] for k, v in self.columns.items()} for i in range(len(self))]


@dataclass
class ImageResult:
    path: Path
    status: str
    name: str = ""
    page: int | None = None
    n_pages: int = 1
    n_cells: int = 0
    mean_area: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    outputs: dict = field(default_factory=dict)
    segmentation: Segmentation | None = None
    table: CellTable | None = None
    sequence: tuple | None = None  # the fake follows no cells


@dataclass
class BatchResult:
    results: list
    out_dir: Path


def make_blob_image(path: Path, n_cells: int = 3, size: int = 64, seed: int = 0) -> Path:
    """A dark image with ``n_cells`` bright squares, saved as .npy."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 20, (size, size)).astype(np.uint16)
    for k in range(n_cells):
        y, x = 6 + (k // 4) * 14, 6 + (k % 4) * 14
        image[y : y + 8, x : x + 8] = 1000 + 100 * k
    np.save(path, image)
    return path


class FakeEngine:
    """Namespace with the engine's functions. ``delay`` slows segment (per stage)."""

    ImageError = ImageError
    ModelError = ModelError
    Cancelled = Cancelled
    OutputExists = OutputExists
    PointsError = PointsError
    Settings = Settings
    TrackSettings = TrackSettings  # how cells are followed: the engine's
    read_points = staticmethod(read_points)  # plain CSV reading: the engine's own
    Plane = Plane
    planes_points = staticmethod(planes_points)  # name matching: the engine's
    points_outside = staticmethod(points_outside)
    points_kept = staticmethod(points_kept)
    time_points_left_out = staticmethod(time_points_left_out)
    recount = staticmethod(recount)
    RUN_FILES = RUN_FILES  # the result files' names: the engine's
    OUTPUT_SUFFIXES = OUTPUT_SUFFIXES
    written_result = staticmethod(written_result)
    record_export = staticmethod(record_export)  # the window's exports' record: the engine's
    pixels_digest = staticmethod(pixels_digest)
    points_not_kept = staticmethod(points_not_kept)
    read_training_sources = staticmethod(read_training_sources)
    write_training_set = staticmethod(write_training_set)  # plain file writing: the engine's
    ResumeError = ResumeError
    earlier_run = staticmethod(earlier_run)  # reads a run's record: the engine's
    saved_results = staticmethod(saved_results)  # ... and its results (refuses a non-run)
    continued_planes = staticmethod(continued_planes)  # ... and the images it finished
    name_clash = staticmethod(name_clash)  # plain name comparisons: the engine's
    named_as_run = staticmethod(named_as_run)
    clash_message = staticmethod(clash_message)
    run_record = staticmethod(run_record)
    plane_name = staticmethod(plane_name)
    lineage = staticmethod(lineage)
    relatives = staticmethod(relatives)
    calibration = staticmethod(calibration)
    table_tracks = staticmethod(table_tracks)  # a table's track column: the engine's
    run_tables = staticmethod(run_tables)  # a run folder's tables: the engine's
    replaced_left_over = staticmethod(replaced_left_over)  # wording: the engine's

    def __init__(self, delay: float = 0.0, stages: int = 10):
        self.delay = delay
        self.stages = stages
        self.loaded_models: list = []
        self.segment_calls: list = []
        self.segment_started = threading.Event()
        self.given_centres: list = []  # the ``centres`` of each segment call (None: detect)
        self.batch_workers: list = []  # the ``workers`` of each process_batch call
        self.batch_resumed: list = []  # the ``resume`` of each process_batch call
        self.batch_tracked: list = []  # the ``track`` of each process_batch call
        self.cores = 3  # what auto_workers answers
        self.model_channel = 0  # the channel the fake model was trained on

    def auto_workers(self, images=None):
        return self.cores

    # --- io
    def read_image(self, path, page=0, channel=0):
        path = Path(path)
        try:
            pixels = np.load(path)
        except Exception:
            try:  # a TIFF the engine wrote (a training set's image)
                import tifffile

                pixels = tifffile.imread(path)
            except Exception as exc:
                raise ImageError(path, "not an image file") from exc
        if pixels.ndim == 4:  # pages, channels
            n_pages, n_channels = pixels.shape[:2]
            if not (0 <= page < n_pages and 0 <= channel < n_channels):
                raise ImageError(path, f"page {page} or channel {channel} out of range")
            return ImageData(
                pixels[page, channel],
                path,
                page=page,
                n_pages=n_pages,
                channel=channel,
                n_channels=n_channels,
            )
        if pixels.ndim == 3:
            n_pages = pixels.shape[0]
            if not 0 <= page < n_pages:
                raise ImageError(path, f"page {page} out of range")
            return ImageData(pixels[page], path, page=page, n_pages=n_pages)
        return ImageData(pixels, path, pixel_size=0.5, unit="um")

    def find_images(self, inputs, recursive=False):
        found = []
        for p in map(Path, inputs):
            found += sorted(p.glob("**/*.npy" if recursive else "*.npy")) if p.is_dir() else [p]
        return found

    # --- models
    def list_models(self):
        return [ModelInfo("phase", Path("/models/phase"), "Phase contrast")]

    def available_devices(self):
        return ["cpu"]

    def load_model(self, name_or_path, device="auto"):
        if str(name_or_path) not in ("phase",) and not Path(name_or_path).is_dir():
            raise ModelError(f"{name_or_path}: no model.json in this folder")
        self.loaded_models.append((str(name_or_path), device))
        info = {
            "description": "fake",
            "input": {"scale": 0.5},
            "cell_diameter_px": 8.0,
            "defaults": {
                "threshold": 0.5,
                "graphcut_weight": 20.0,
                "min_size_px": 4,
                "edge_fraction": 0.35,
            },
        }
        return Model(
            str(name_or_path),
            Path("/models/phase"),
            info=info,
            defaults=info["defaults"],
            channel=self.model_channel,
        )

    def model_info(self, name_or_path):
        if str(name_or_path) not in ("phase",) and not Path(name_or_path).is_dir():
            raise ModelError(f"{name_or_path}: no model.json in this folder")
        folder = Path(name_or_path) if Path(name_or_path).is_dir() else Path("/models/phase")
        return ModelInfo(folder.name, folder, channel=self.model_channel)

    # --- segmentation
    @staticmethod
    def keep_unreached(labels, centres, removed, given, before, after):
        """The engine's own, on the fake's cells (whose count is a field of their own)."""
        kept = keep_unreached(labels, centres, removed, given, before, after)
        return replace(kept, n_cells=len(kept.centres))

    def segment(
        self, image, model, settings=None, progress=None, cancel=None, centres=None, memo=None
    ):
        settings = settings if settings is not None else Settings()
        self.segment_calls.append(settings)
        self.given_centres.append(None if centres is None else np.array(centres))
        self.segment_started.set()
        for k in range(self.stages):
            if cancel is not None and cancel():
                raise Cancelled()
            if progress is not None:
                progress("propagating", k / self.stages)
            time.sleep(self.delay)
        bright = image > image.mean() + image.std()
        labels, n = ndimage.label(bright)
        if centres is None:
            centres = np.array(ndimage.center_of_mass(bright, labels, range(1, n + 1)))[:, ::-1]
        else:  # each centre's blob, in the centres' order; in the background a 5 x 5 square
            labels, centres = self._cells_at(labels, np.reshape(centres, (-1, 2)), settings)
            n = len(centres)
        likelihood = bright.astype(np.float32)
        return Segmentation(
            labels.astype(np.uint16),
            likelihood,
            likelihood * 0.5,
            centres.reshape(-1, 2),
            {"total": 0.01},
            n,
            asdict(settings),
        )

    @staticmethod
    def _cells_at(blobs, centres, settings):
        out = np.zeros_like(blobs)
        kept = []
        for x, y in centres:
            r, c = int(round(y)), int(round(x))
            blob = blobs[r, c]
            cell = blobs == blob if blob else np.zeros(blobs.shape, bool)
            if not blob or (out[cell] > 0).any():  # background, or a blob already taken
                cell = np.zeros(blobs.shape, bool)
                cell[max(0, r - 2) : r + 3, max(0, c - 2) : c + 3] = True
            if cell.sum() < (settings.min_size or 0):
                continue
            kept.append((x, y))
            out[cell] = len(kept)
        return out, np.array(kept, float).reshape(-1, 2)

    def measure_image(
        self,
        labels,
        data,
        pixel_size=None,
        centres=None,
        memo=None,
        neighbour_distance=0,
        ring_width=0,
        transform=None,
    ):
        return self.measure(labels, data.pixels, pixel_size or data.pixel_size, "um", centres)

    def feature_transform(self, labels):
        from cellprop.engine.features import feature_transform

        return feature_transform(labels)

    def measure(self, labels, image, pixel_size=None, unit="um", centres=None):
        ids = np.arange(1, int(labels.max()) + 1)
        area = ndimage.sum(np.ones_like(labels), labels, ids)
        total = ndimage.sum(image.astype(float), labels, ids)
        # a label no pixel has any more (a cell taken out) measures nan, without dividing by 0
        mean = np.divide(total, area, out=np.full(len(ids), np.nan), where=area > 0)
        return CellTable(
            {"label": ids, "area": area.astype(float), "mean_intensity": np.asarray(mean, float)}
        )

    # --- writers
    def output_paths(self, path, out_dir, roi=False):
        suffixes = {
            "labels": "_labels.tif",
            "overlay": "_overlay.png",
            "cells": "_cells.csv",
            "roi": "_rois.zip",
        }
        return {
            k: Path(out_dir) / f"{Path(path).stem}{v}"
            for k, v in suffixes.items()
            if roi or k != "roi"
        }

    @staticmethod
    def _check(path, overwrite):
        if Path(path).exists() and not overwrite:
            raise OutputExists(f"{path}: exists already")

    def write_labels(self, path, labels, pixel_size=None, unit="um", overwrite=False):
        self._check(path, overwrite)
        np.save(Path(path).with_suffix(".npy"), labels)
        Path(path).write_bytes(b"labels")

    def read_labels(self, path):
        return np.load(Path(path).with_suffix(".npy"))

    def write_overlay(
        self,
        path,
        image,
        labels,
        centres=None,
        overwrite=False,
        numbers=None,
        ring=0,
        transform=None,
    ):
        self._check(path, overwrite)
        Path(path).write_bytes(b"png")

    def write_tables(self, path, tables, overwrite=False):
        self._check(path, overwrite)
        lines = [f"{name},{row}" for name, table, *_ in tables for row in table.rows()]
        Path(path).write_text("\n".join(lines))

    def write_image_table(self, path, tables, overwrite=False):
        self._check(path, overwrite)
        Path(path).write_text("\n".join(f"{name},{len(table)}" for name, table, *_ in tables))

    def write_table(self, path, table, overwrite=False):
        self._check(path, overwrite)
        rows = table.rows()
        Path(path).write_text("\n".join(str(r) for r in rows))

    def as_written(self, table):
        return table  # the fake tables' numbers are written as they are

    def write_roi_zip(self, path, labels, overwrite=False, ring=0, transform=None):
        self._check(path, overwrite)
        Path(path).write_bytes(b"zip")

    def batch_planes(self, paths, page=None, channel=None):
        """The engine's rule, with the pages of a 3-D .npy array."""
        planes = []
        for p in paths:
            if isinstance(p, Plane):
                planes.append(p)
                continue
            p = Path(p)
            try:
                shape = np.load(p, mmap_mode="r").shape if page == "all" else ()
            except Exception:
                shape = ()
            n = shape[0] if len(shape) == 3 else 1
            if n > 1:
                planes += [Plane(p, k, plane_name(p, k, channel)) for k in range(n)]
            else:
                planes.append(Plane(p, None if page == "all" else page, p.name))
        return apart_names(planes)  # files of one name in several folders: the engine's rule

    def process_image(
        self,
        path,
        out_dir,
        model,
        settings,
        overwrite=False,
        roi=False,
        progress=None,
        cancel=None,
        page=None,
        name=None,
    ):
        path = Path(path)
        name = name or path.name
        started = time.monotonic()
        try:
            image = self.read_image(path, page=page or 0)
        except ImageError as exc:
            return ImageResult(path, "failed", name, page, error=str(exc))
        try:
            seg = self.segment(image.pixels, model, settings, progress, cancel)
        except Cancelled:
            return ImageResult(path, "cancelled", name, page)
        table = self.measure(seg.labels, image.pixels)
        out = Path(out_dir) / f"{Path(name).stem}_labels.tif"
        if out.exists() and not overwrite:
            return ImageResult(path, "skipped", name, page, error=f"{out}: exists already")
        self.write_labels(out, seg.labels, overwrite=overwrite)
        return ImageResult(
            path,
            "done",
            name,
            page,
            n_pages=image.n_pages,
            n_cells=seg.n_cells,
            seconds=time.monotonic() - started,
            outputs={"labels": out},
            segmentation=seg,
            table=table,
        )

    def process_batch(
        self,
        paths,
        out_dir,
        model,
        settings,
        overwrite=False,
        roi=False,
        workers=1,
        progress=None,
        cancel=None,
        on_result=None,
        page=None,
        channel=None,
        resume=False,
        track=False,
    ):
        """Like the engine's, except that a continued run (``resume``) does every image again
        (and ``channel`` is not read: the fake's images have one; ``track`` is only noted)."""
        self.batch_tracked.append(track)
        self.batch_workers.append(workers)
        self.batch_resumed.append(resume)
        overwrite = overwrite or resume
        results = []
        for plane in self.batch_planes(paths, page):
            if cancel is not None and cancel():
                break
            result = self.process_image(
                plane.path,
                out_dir,
                model,
                settings,
                overwrite,
                roi,
                progress,
                cancel,
                page=plane.page,
                name=plane.name,
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
        return BatchResult(results, Path(out_dir))


def qimage_rgba(picture) -> np.ndarray:
    """A pixmap's or an image's pixels as an (h, w, 4) RGBA array (for the app's tests)."""
    from PySide6.QtGui import QImage

    image = picture.toImage() if hasattr(picture, "toImage") else picture
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    array = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    # a copy: the array must not outlive the QImage whose memory it reads
    return array.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()].copy()
