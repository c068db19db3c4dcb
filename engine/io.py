"""Reading microscopy images: TIFF (8/16/32-bit, compressed, multi-page, multi-channel), PNG, JPEG, BMP.

Every failure is one :class:`~cellprop.engine.errors.ImageError` naming the file and the reason,
so that a batch can report it and go on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageError, PointsError
from .output import OUTPUT_SUFFIXES

__all__ = [
    "COLOUR_CHANNELS",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageData",
    "count_pages",
    "find_images",
    "pixels_digest",
    "read_image",
    "points_outside",
    "read_points",
    "to_grey",
]

#: File name endings read by :func:`read_image` and picked up from folders by :func:`find_images`.
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
#: The kinds of file read as tables of cell centres (:func:`read_points`): CSV, and the
#: tab-separated text Fiji saves (*File ▸ Save As ▸ XY Coordinates*, results saved as .txt).
POINTS_SUFFIXES = (".csv", ".txt", ".tsv")

#: Largest image (one plane) accepted: 64 Mpixel, e.g. 8192 x 8192. Segmentation needs about
#: 60 bytes per pixel at the network's scale plus the image itself, so this keeps one image well
#: inside a desktop's memory; larger images are refused before any pixel is decoded.
MAX_PIXELS = 8192 * 8192

_KIND_BY_EXTENSION = {
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
}

# ITU-R BT.601 luma weights, the ones OpenCV, Pillow and ImageJ ("weighted") use.
_RGB_WEIGHTS = np.array([0.299, 0.587, 0.114])

#: The channels of a colour (RGB) file, as ``read_image``'s ``channel`` counts them: its grey
#: (BT.601 luma, the default) and then its red, green and blue, so that a stain or a
#: fluorescence composite saved in colour can be segmented on the one colour that shows the
#: cells (Fiji's *Split Channels* numbers red, green and blue 1, 2, 3 too).
COLOUR_CHANNELS = ("grey", "red", "green", "blue")

# Resolutions that image editors write by default; they say nothing about the microscope.
#: The baseline resolution tags (pixels an inch or a centimetre) are a calibration only
#: finer than this many pixels an inch (a pixel under 20 µm): coarser, they are what image
#: editors, screens and printers write (72, 96, 144, 300 dpi; a 600 or 1200 dpi scan), and a
#: microscope's pixel is never so large.
_MIN_CALIBRATED_DPI = 1270.0

#: Units of length as files name them (lower case), by the unit they are measured in here
#: (µm, or nm for a file calibrated in nm) and how many of it one is: mm, cm and m in µm
#: (one column of areas in µm² for a batch of them), Å in nm.
_LENGTH_UNITS = {
    **dict.fromkeys(
        (
            "um",
            "micron",
            "microns",
            "micrometer",
            "micrometers",
            "micrometre",
            "micrometres",
            "\u00b5m",
            "\u03bcm",
            "u",
        ),
        ("um", 1.0),
    ),
    **dict.fromkeys(("nm", "nanometer", "nanometers", "nanometre", "nanometres"), ("nm", 1.0)),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), ("um", 1e3)),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), ("um", 1e4)),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), ("um", 1e6)),
    **dict.fromkeys(
        ("\u00e5", "\u212b", "angstrom", "angstroms", "\u00e5ngstr\u00f6m"), ("nm", 0.1)
    ),
    **dict.fromkeys(("pm", "picometer", "picometers", "picometre", "picometres"), ("nm", 1e-3)),
}


@dataclass(frozen=True)
class ImageData:
    """One plane of an image file, as the engine uses it.

    Attributes
    ----------
    pixels : numpy.ndarray
        2-D array, original dtype and values (chosen page and channel; a colour file's channel 0
        is its grey).
    path : pathlib.Path or None
        The file it came from.
    page, n_pages : int
        The plane used and how many planes (time points, slices, ...) the file holds.
    channel, n_channels : int
        The channel used and how many channels the file holds. A colour (RGB) file has four:
        its grey, red, green and blue (``COLOUR_CHANNELS``); one whose red, green and blue are
        the same everywhere (a grey image saved in colour) has one.
    pixel_size : float or None
        Physical size of a pixel from the file's metadata, in ``unit``; None when not recorded.
    unit : str or None
        Unit of ``pixel_size`` (``"um"``, ``"nm"``, ...).
    colour : numpy.ndarray or None
        The plane in colour, (H, W, 3) red, green, blue in the file's dtype, where the file is a
        colour image and its grey (channel 0) was read: for showing it as it looks. None
        otherwise.
    pixel_height : float or None
        A pixel's height where the file records it other than its width (``pixel_size``):
        cells are measured as if pixels were square, ``pixel_size`` wide (a batch says so).
    note : str
        What a user should know about how it was read, or "" (a batch says it).
    """

    pixels: np.ndarray
    path: Path | None = None
    page: int = 0
    n_pages: int = 1
    channel: int = 0
    n_channels: int = 1
    pixel_size: float | None = None
    unit: str | None = None
    colour: np.ndarray | None = None
    is_colour_file: bool = False
    pixel_height: float | None = None
    #: What a user should know about how the file was read (a photo's EXIF rotation not
    #: applied); "" for nothing.
    note: str = ""

    @property
    def display_pixels(self) -> np.ndarray:
        """The plane as it looks: in colour (H, W, 3) where it is a colour image's grey, else
        ``pixels`` (overlays and the app show this)."""
        return self.colour if self.colour is not None else self.pixels

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The names of the file's channels where they have names (a colour file's
        ``COLOUR_CHANNELS``); empty where channels are only numbered."""
        return COLOUR_CHANNELS if self.is_colour_file else ()

    def channel_name(self, channel: int | None = None) -> str:
        """``"channel 3 (blue)"``, ``"channel 1"``: a channel (default: the one read), counted
        from 0 as ``channel`` and the app's chooser count them."""
        channel = self.channel if channel is None else channel
        names = self.channel_names
        named = f" ({names[channel]})" if 0 <= channel < len(names) else ""
        return f"channel {channel}{named}"

    @property
    def description(self) -> str:
        """A one-line summary for logs and status bars (pages and channels counted from 0, as
        ``read_image`` and the app's choosers count them)."""
        h, w = self.pixels.shape
        parts = [f"{w} x {h}", str(self.pixels.dtype)]
        if self.is_colour_file:
            parts[1] += " colour"
        if self.n_pages > 1:
            parts.append(f"page {self.page} of 0-{self.n_pages - 1}")
        if self.n_channels > 1:
            parts.append(f"{self.channel_name()} of 0-{self.n_channels - 1}")
        if self.pixel_size is not None:
            parts.append(f"{self.pixel_size:g} {self.unit or ''}/px".replace(" /", "/"))
        return ", ".join(parts)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Convert an (H, W, 3|4) colour array to grey with BT.601 weights, keeping the dtype.

    An alpha channel is ignored; a (H, W, 2) grey+alpha array gives its grey channel.
    """
    if rgb.ndim != 3:
        return rgb
    if rgb.shape[2] < 3:
        return rgb[..., 0]
    grey = rgb[..., :3].astype(np.float64) @ _RGB_WEIGHTS
    if np.issubdtype(rgb.dtype, np.integer):
        info = np.iinfo(rgb.dtype)
        return np.clip(np.rint(grey), info.min, info.max).astype(rgb.dtype)
    return grey.astype(rgb.dtype)


def _is_grey(rgb: np.ndarray) -> bool:
    """Whether red, green and blue agree everywhere, to 1% of the range (the rounding of a
    grey image saved in colour, JPEG's included): of the type's range, or where smaller the
    values' (but 2 levels at least), so that a dim 16-bit colour image is not taken for grey."""
    if rgb.dtype.kind in "ui":
        tolerance = float(np.iinfo(rgb.dtype).max // 100)
        if rgb.size:
            spanned = float(rgb.max()) - float(rgb.min())
            tolerance = min(tolerance, max(2.0, 0.01 * spanned))
    else:
        finite = rgb[np.isfinite(rgb)]
        tolerance = 0.01 * float(np.ptp(finite)) if finite.size else 0.0
    # every pixel's spread of colours, in the file's own type where it cannot wrap round, a few
    # million at a time so that a large image is not copied whole; NaN left out
    flat = rgb.reshape(-1, 3)
    step = 1 << 22
    for begin in range(0, len(flat), step):
        part = flat[begin : begin + step]
        if part.dtype.kind == "i":  # signed: a difference could wrap round
            part = part.astype(np.int64)
        r, g, b = part[:, 0], part[:, 1], part[:, 2]
        spread = np.fmax(np.fmax(r, g), b) - np.fmin(np.fmin(r, g), b)
        if spread.dtype.kind == "f":
            spread = spread[np.isfinite(spread)]
        if spread.size and float(spread.max()) > tolerance:
            return False
    return True


def _colour_plane(
    path: Path, rgb: np.ndarray, channel: int
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """One channel of a decoded colour plane (H, W, 3|4; alpha dropped): ``(pixels, colour,
    is_colour_file)``. Channel 0 is the grey, with the plane in colour beside it for showing;
    1, 2, 3 are red, green and blue. A plane whose colours agree is a grey image saved in
    colour: one channel, no colour."""
    rgb = np.ascontiguousarray(rgb[..., :3])
    if _is_grey(rgb):
        if channel:
            raise ImageError(
                path,
                f"channel {channel} does not exist (the file has 1: a grey image saved in colour)",
            )
        return to_grey(rgb), None, False
    if channel >= len(COLOUR_CHANNELS):
        names = ", ".join(f"{k} {name}" for k, name in enumerate(COLOUR_CHANNELS))
        raise ImageError(
            path, f"channel {channel} does not exist (a colour image has 4 channels: {names})"
        )
    if channel == 0:
        return to_grey(rgb), rgb, True
    return np.ascontiguousarray(rgb[..., channel - 1]), None, True


def _sniff(head: bytes) -> str | None:
    """The file kind from its first bytes, whatever its name says."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:2] == b"BM":
        return "BMP"
    return None


def _check_size(path: Path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(path, f"the image has no pixels ({width} x {height})")
    if height * width > MAX_PIXELS:
        raise ImageError(
            path,
            f"{width} x {height} pixels is larger than the {MAX_PIXELS // 2**20} Mpixel limit "
            f"(e.g. 8192 x 8192); crop or downscale the image first",
        )


def read_image(path: str | Path, page: int | None = None, channel: int | None = None) -> ImageData:
    """Read one 2-D plane of an image file.

    Parameters
    ----------
    path : str or pathlib.Path
        A TIFF, PNG, JPEG or BMP file.
    page : int, optional
        Which plane of a multi-page file (time point, position, ...), from 0. Default: the first.
        A 3-D stack (a Z axis with more than one slice) needs an explicit choice, because
        segmenting its first slice silently is rarely what was meant.
    channel : int, optional
        Which channel of a multi-channel file, from 0. Default: the first. A colour (RGB) image
        has four: 0 its grey (BT.601 luma, with the plane in colour as ``ImageData.colour``),
        1 red, 2 green, 3 blue.

    Returns
    -------
    ImageData
        The plane with its original dtype, what was chosen, and the pixel size if recorded.

    Raises
    ------
    ImageError
        The file is missing, empty, truncated, of an unsupported kind, too large, or the page or
        channel asked for does not exist. The message names the file and the reason.
    """
    path = Path(path)
    try:
        if not path.exists():
            if path.is_symlink():  # its image moved or deleted since the link was made
                raise ImageError(path, f"a link to {os.readlink(path)}, which is not there")
            raise ImageError(path, "no such file")
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):  # (a batch names such a folder)
                raise ImageError(path, "a folder that cannot be read (permission denied)")
            raise ImageError(path, "is a folder, not an image file")
        if not path.is_file():  # a named pipe, a device: reading it could wait for ever
            raise ImageError(path, "not a regular file (a pipe or a device), not an image")
        size = path.stat().st_size
    except PermissionError:
        raise ImageError(path, "cannot be opened (permission denied)") from None
    if size == 0:
        raise ImageError(path, "the file is empty (0 bytes)")
    ext = path.suffix.lower()
    expected = _KIND_BY_EXTENSION.get(ext)
    if expected is None:
        raise ImageError(
            path,
            f"unsupported file type '{ext or '(no extension)'}' "
            f"(supported: {', '.join(IMAGE_EXTENSIONS)})",
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ImageError(path, f"cannot be opened ({exc.strerror or exc})") from exc
    actual = _sniff(head)
    if actual is None:
        raise ImageError(path, f"not a {expected} file (unrecognised content)")
    if actual != expected:
        raise ImageError(
            path, f"the file holds a {actual} image but its name ends in '{ext}'; rename it"
        )
    if page is not None and page < 0:
        raise ImageError(path, f"page {page} does not exist (pages count from 0)")
    if channel is not None and channel < 0:
        raise ImageError(path, f"channel {channel} does not exist (channels count from 0)")
    if actual == "TIFF":
        return _read_tiff(path, page, channel)
    return _read_other(path, actual, page, channel)


# --- TIFF --------------------------------------------------------------------------------------


@contextmanager
def _tifffile_warnings() -> Iterator[list[str]]:
    """Collect what tifffile logs about the file being read on this thread.

    tifffile reports damage it works around (e.g. "invalid offset to first page") through the
    ``tifffile`` logger, which without a handler prints to stderr, in the middle of a batch's
    progress lines. The messages are kept here instead, for the error that names the file.
    """
    logger = logging.getLogger("tifffile")
    thread = threading.get_ident()
    found: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == thread:
                # "<tifffile.TiffPages @8> invalid offset ...": the object is of no use to a user.
                found.append(re.sub(r"^<[^>]*>\s*", "", record.getMessage()))

    handler = _Keep(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _read_tiff(path: Path, page: int | None, channel: int | None) -> ImageData:
    with _tifffile_warnings() as warnings:
        return _read_tiff_quietly(path, page, channel, warnings)


def _read_tiff_quietly(
    path: Path, page: int | None, channel: int | None, warnings: list[str]
) -> ImageData:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                if warnings:
                    raise ImageError(path, f"the TIFF file is damaged ({warnings[0]})")
                raise ImageError(path, "the TIFF file holds no image")
            series, local, n_pages = _series_of(tif, page or 0)
            _check_series(path, tif, series)
            axes, shape = series.axes, tuple(series.shape)
            keyframe = series.keyframe
            in_page, outer_axes, page_dims, _ = _tiff_layout(series)
            outer_shape = shape[: len(outer_axes)]
            page_shape = shape[len(outer_axes) :]
            named = _samples_named(series)  # samples that are channels, or planes
            rgb = (
                not named
                and "S" in in_page
                and keyframe.photometric
                in (
                    tifffile.PHOTOMETRIC.RGB,
                    tifffile.PHOTOMETRIC.YCBCR,
                    tifffile.PHOTOMETRIC.PALETTE,
                )
            )
            n_samples = page_shape[in_page.index("S")] if "S" in in_page else 1
            if named and named != "C":  # time points or slices: planes, not channels
                n_samples = 1
            elif not (named or rgb) and n_samples > 1:  # grey + alpha: the alpha is no channel
                n_samples -= _alpha_samples(keyframe)
            n_outer_channels = outer_shape[outer_axes.index("C")] if "C" in outer_axes else 1
            n_channels = n_outer_channels if n_outer_channels > 1 or rgb else n_samples
            # a colour image (not a colour one per channel of a multi-channel file, read as
            # grey): its grey, red, green and blue, unless its pixels show it to be grey;
            # which it is, and so its channels, is known once decoded (_colour_plane)
            colour_file = rgb and n_outer_channels <= 1

            z = dict(page_dims).get("Z", 1)
            if page is None:
                if z > 1:
                    raise ImageError(
                        path,
                        f"a 3-D stack of {z} slices (axes {axes}, shape {shape}); "
                        "choose one slice (--page N; in the app, the page chooser), or "
                        "segment each slice on its own (--page all; in the app, Each page "
                        "as an image)",
                    )
                page = 0
            channel = 0 if channel is None else channel
            if page >= n_pages:
                raise ImageError(path, f"page {page} does not exist (the file has {n_pages})")
            if channel >= n_channels and not colour_file:  # a colour file's: _colour_plane
                raise ImageError(
                    path, f"channel {channel} does not exist (the file has {n_channels})"
                )

            # Flat index of the TIFF page to decode: only that page is read from disk.
            index = []
            rest = local
            page_sizes = [n for _, n in page_dims]
            page_idx = np.unravel_index(rest, page_sizes) if page_sizes else ()
            it = iter(page_idx)
            for a in outer_axes:
                index.append((0 if colour_file else channel) if a == "C" else int(next(it)))
            sample = int(next(it, channel))  # the plane among a page's samples named so
            flat = int(np.ravel_multi_index(index, outer_shape, order="C")) if outer_shape else 0
            at = tif.series.index(series)
            if outer_shape and series.pages[flat] is None:  # announced, never written
                held = sum(p is not None for p in series.pages)
                raise ImageError(
                    path,
                    f"page {page} is not in the file: its metadata announces {n_pages} "
                    f"pages, but {len(series.pages) - held} of its {len(series.pages)} planes "
                    "were never written (an acquisition stopped early?); choose another page",
                )
            data = tif.asarray(key=flat, series=at) if outer_shape else series.asarray()
            pixels = _plane_from_page(np.asarray(data), in_page, rgb, sample, n_outer_channels)
            colour, is_colour_file = None, False
            if pixels.ndim == 3 and colour_file:
                pixels, colour, is_colour_file = _colour_plane(path, pixels, channel)
                n_channels = len(COLOUR_CHANNELS) if is_colour_file else 1
            elif pixels.ndim == 3:
                pixels = to_grey(pixels)
            pixels, note = _white_is_zero(pixels, keyframe)
            pixel_size, unit, pixel_height = _tiff_calibration(tif, keyframe, at)
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(path, "too large to read into memory") from exc
    except Exception as exc:  # tifffile raises many kinds; the user needs only the reason
        if _tiff_data_past_end(path):
            raise ImageError(
                path, "the TIFF file is truncated (its image data ends early)"
            ) from exc
        raise ImageError(path, _tiff_reason(exc)) from exc
    pixels = _check_pixels(path, pixels)
    return ImageData(
        pixels=pixels,
        path=path,
        page=page,
        n_pages=n_pages,
        channel=channel,
        n_channels=n_channels,
        pixel_size=pixel_size,
        unit=unit,
        colour=colour,
        is_colour_file=is_colour_file,
        pixel_height=pixel_height,
        note=note,
    )


def _alpha_samples(keyframe) -> int:
    """How many of a TIFF page's extra samples are alpha (transparency), not channels."""
    import tifffile

    alpha = (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
    return sum(1 for kind in keyframe.extrasamples or () if kind in alpha)


def _white_is_zero(pixels: np.ndarray, keyframe) -> tuple[np.ndarray, str]:
    """A grey TIFF page stored white-is-zero (MinIsWhite: what Fiji writes for an image shown
    with an inverted LUT, dark on white): read as stored, as Fiji reads and measures it (its
    values are the data; the LUT only showed them inverted), with a note saying so, since
    viewers show it inverted; else "" (the pixels as they are either way)."""
    import tifffile

    if keyframe.photometric != tifffile.PHOTOMETRIC.MINISWHITE or pixels.ndim != 2:
        return pixels, ""
    return pixels, (
        "stored white-is-zero (Fiji's inverted LUT): read as stored, as Fiji measures it "
        "(other viewers show it inverted)"
    )


def _check_series(path: Path, tif, series) -> None:
    """Refuse a TIFF series that cannot be read plane by plane, as its header tells: an
    ImageJ hyperstack holding fewer planes than announced, pages that are not planes (rows
    of an image: tifffile's YXC written as grey, one page a row), planes with no pixels or
    over the size limit. :func:`count_pages` asks the same, so that such a file is one
    failed image, not one per page it seems to have."""
    _check_imagej(path, tif, series)
    in_page, outer_axes, _, _ = _tiff_layout(series)
    page_shape = tuple(series.shape)[len(outer_axes) :]
    # (tifffile's axes say so only where the file does: written without them, YXC is a
    # stack of pages each a row of the image, its channels its few columns)
    rows = "Y" in in_page and "X" in in_page and len(series.pages) > 1
    if rows and page_shape[in_page.index("X")] <= 5 < page_shape[in_page.index("Y")]:
        in_page = ""
    if "Y" not in in_page or "X" not in in_page:
        raise ImageError(
            path,
            f"its pages are not image planes (axes {series.axes}, shape "
            f"{tuple(series.shape)}, each of its {len(series.pages)} pages "
            f"{tuple(series.keyframe.shape)}): save it with one plane per page (the "
            "channels first, CYX) or as RGB",
        )
    _check_size(path, page_shape[in_page.index("Y")], page_shape[in_page.index("X")])


def _check_imagej(path: Path, tif, series) -> None:
    """Refuse an ImageJ hyperstack that holds fewer planes than its header announces (an
    acquisition stopped early): tifffile then reads its planes as one list, and which is a
    channel and which a time point or slice could only be guessed."""
    ij = tif.imagej_metadata or {}
    dims = {k: int(ij.get(k) or 1) for k in ("channels", "slices", "frames")}
    announced = dims["channels"] * dims["slices"] * dims["frames"]
    if announced <= 1 or series.kind == "imagej":
        return
    held = int(np.prod(series.shape[: len(series.axes) - len(series.keyframe.axes)]))
    if held >= announced:
        return
    names = {"channels": "channels", "slices": "slices", "frames": "time points"}
    said = " x ".join(f"{n} {names[k]}" for k, n in dims.items() if n > 1)
    raise ImageError(
        path,
        f"an ImageJ hyperstack of {said} ({announced} planes) that holds {held}: an "
        "acquisition stopped early? Which plane is which channel, slice or time point cannot "
        "be told; open it in Fiji and save the planes it has again (Image > Hyperstacks > "
        "Reduce Dimensionality, or Duplicate the whole time points)",
    )


def _tiff_series(tif) -> list:
    """The series of a TIFF file whose planes are its pages, one after the other: every
    series but reduced-resolution ones (a thumbnail). A file written page by page (tifffile's
    writer called once a page, each page a series of its own) or of pages of several sizes
    has them all as pages, not only its first series'."""
    found = [s for s in tif.series if not s.keyframe.is_reduced]
    return found or list(tif.series[:1])


def _series_of(tif, page: int) -> tuple:
    """The series of a TIFF file that holds ``page`` (counted over every series'
    pages: :func:`_tiff_series`), the page's number within it, and the file's number of
    pages (the last series, and a page past its own, where ``page`` is past the file's)."""
    every = _tiff_series(tif)
    counts = [_tiff_layout(s)[3] for s in every]
    k, local = 0, page
    while k < len(every) - 1 and local >= counts[k]:
        local, k = local - counts[k], k + 1
    return every[k], local, sum(counts)


def _samples_named(series) -> str:
    """The axis a series names the samples of its pages where that is not "S": "C", "T",
    "Z", ... (tifffile writes an array of 3 or 4 planes, its axes given as CYX, TYX or ZYX,
    as the samples of one RGB page, and its series keeps the axes given: channels, time
    points or slices, not colours); "" where the samples are samples."""
    key, axes = series.keyframe.axes, series.axes
    if "S" not in key or axes.endswith(key) or len(axes) < len(key):
        return ""
    named, s = axes[len(axes) - len(key) :], key.index("S")
    alike = all(a == b for k, (a, b) in enumerate(zip(named, key, strict=True)) if k != s)
    return named[s] if alike and named[s] not in "YXS" else ""


def _tiff_layout(series) -> tuple[str, str, list, int]:
    """How a TIFF series divides into planes: the axes inside one TIFF page, the axes outside
    it, the page axes ((axis, length) of everything outside a plane that is not a channel:
    time, slice, position) and how many planes (pages, in this module's sense) they make. A
    page's samples that the series names time points or slices (:func:`_samples_named`) are
    a page axis too, the last."""
    axes, shape = series.axes, tuple(series.shape)
    in_page = series.keyframe.axes
    named = _samples_named(series)
    if not axes.endswith(in_page) and not named:  # pages tifffile could not shape: a list
        in_page = axes[-len(series.keyframe.shape) :]
    outer_axes = axes[: len(axes) - len(in_page)]
    outer_shape = shape[: len(outer_axes)]
    page_dims = [(a, n) for a, n in zip(outer_axes, outer_shape, strict=True) if a != "C"]
    if named and named != "C":
        page_dims.append((named, int(series.keyframe.shape[in_page.index("S")])))
    return in_page, outer_axes, page_dims, int(np.prod([n for _, n in page_dims], dtype=np.int64))


def _from_header(path: str | Path, of_tiff, of_other, otherwise):
    """What ``of_tiff`` (given the tifffile.TiffFile) or ``of_other`` (given the PIL image)
    says of an image file from its header, no pixel decoded; ``otherwise`` where the file
    cannot say (gone, damaged: reading it then says what is wrong with it)."""
    try:
        with open(path, "rb") as fh:
            kind = _sniff(fh.read(16))
        if kind == "TIFF":
            import tifffile

            with _tifffile_warnings(), tifffile.TiffFile(path) as tif:
                return of_tiff(tif)
        if kind is not None:
            with _open_pil(path) as im:
                return of_other(im)
    except Exception:  # noqa: BLE001 - any damage: not known from the header
        return otherwise
    return otherwise


def plane_size(path: str | Path, page: int | None = None) -> tuple[int, int] | None:
    """(rows, columns) of one page of an image file, from its header: no pixel is decoded.
    None where the file cannot say (gone, damaged: reading it says what is wrong)."""

    def of_tiff(tif) -> tuple[int, int]:
        series = _series_of(tif, page or 0)[0]
        in_page = _tiff_layout(series)[0]
        inner = tuple(series.shape)[len(series.shape) - len(in_page) :]
        return int(inner[in_page.index("Y")]), int(inner[in_page.index("X")])

    return _from_header(path, of_tiff, lambda im: (int(im.size[1]), int(im.size[0])), None)


def pixels_digest(pixels: np.ndarray) -> str:
    """A fingerprint of a plane's pixels (their size, type and values; 16 hex digits): the
    same for the same pixels read again, whatever the file's compression or metadata."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{pixels.shape}{pixels.dtype.str}".encode())
    digest.update(np.ascontiguousarray(pixels).data)
    return digest.hexdigest()


def pixel_size_of(path: str | Path) -> tuple[float | None, str | None]:
    """A TIFF's pixel size and unit from its header (a label image cellprop wrote carries the
    one its cells were measured with), no pixel decoded; (None, None) where it records none
    or cannot be read."""
    return _from_header(
        path,
        lambda tif: _tiff_calibration(tif, tif.pages.first)[:2],
        lambda im: (None, None),
        (None, None),
    )


def page_axes(path: str | Path) -> tuple[tuple[str, int], ...]:
    """What the pages of a multi-page file are, from its header: their axes other than
    channels, outermost first, with their lengths (``(("T", 5), ("Z", 3))``: 5 time points of
    3 slices, page ``t * 3 + z``); () where the file names none (not a TIFF, several series,
    one page) or cannot be read."""

    def of_tiff(tif) -> tuple:
        every = _tiff_series(tif)
        if len(every) != 1:
            return ()
        return tuple((str(a), int(n)) for a, n in _tiff_layout(every[0])[2])

    return _from_header(path, of_tiff, lambda im: (), ())


def count_pages(path: str | Path) -> int:
    """How many pages (time points, slices, positions) an image file holds, from its header:
    no pixel is decoded. A file that cannot be read counts as one page (reading it then says
    what is wrong with it)."""

    def of_tiff(tif) -> int:
        every = _tiff_series(tif)
        refused = 0
        for series in every:  # what reading it would refuse
            try:
                _check_series(Path(path), tif, series)
            except ImageError:
                refused += 1
        if refused == len(every):  # no page of it can be read: one image, failed once
            return 1
        return max(1, sum(_tiff_layout(s)[3] for s in every))

    return _from_header(path, of_tiff, lambda im: max(1, int(getattr(im, "n_frames", 1))), 1)


def _plane_from_page(
    data: np.ndarray, in_page: str, rgb: bool, channel: int, n_outer: int
) -> np.ndarray:
    """Reduce one decoded TIFF page (axes ``in_page``) to a 2-D plane, or to (Y, X, S) where
    the samples are colours (``rgb``)."""
    if data.ndim != len(in_page):
        data = np.squeeze(data)
        in_page = "".join(a for a, n in zip(in_page, data.shape, strict=False) if n != 1)
    # Any axis other than Y, X, S inside one page (rare: volumetric tiles) keeps its first index.
    keep = [a for a in in_page if a in "YXS"]
    data = data[tuple(slice(None) if a in keep else 0 for a in in_page)]
    target = "YXS" if "S" in keep else "YX"
    data = np.transpose(data, [keep.index(a) for a in target])  # planar or chunky: (Y, X[, S])
    if data.ndim == 3 and not rgb:  # separate channels stored as samples of one page
        data = data[..., channel if n_outer <= 1 else 0]
    return np.ascontiguousarray(data)


def _check_pixels(path: Path, pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim != 2:
        raise ImageError(path, f"could not reduce the image to one plane (shape {pixels.shape})")
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    if np.iscomplexobj(pixels):
        raise ImageError(path, "complex-valued images are not supported")
    if pixels.dtype.kind not in "uif":
        raise ImageError(path, f"unsupported pixel type {pixels.dtype}")
    if pixels.dtype == np.float16:
        pixels = pixels.astype(np.float32)
    return pixels


def _tiff_data_past_end(path: Path) -> bool:
    """Whether the first page's strips or tiles point beyond the end of the file."""
    import tifffile

    try:
        size = path.stat().st_size
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)]
            return bool(ends) and max(ends) > size
    except Exception:
        return False


def _tiff_reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    if "truncat" in low or "unexpected end" in low or "read" in low and "bytes" in low:
        return f"the TIFF file is truncated or damaged ({text})"
    if "compression" in low or "codec" in low or "decode" in low:
        return f"the TIFF data cannot be decoded ({text})"
    if "not a tiff" in low or "invalid tiff" in low:
        return f"not a valid TIFF file ({text})"
    return f"cannot read the TIFF file ({text})"


def _length_unit(unit: str | None) -> tuple[str, float] | None:
    """What a file's unit of length stands for: the unit measured in here ("um" or "nm") and
    how many of it one is. None for no length (pixel, inch: then the resolution tags say) or
    a unit not known: no calibration rather than a column named after it."""
    if not unit:
        return None
    # ImageJ writes a unit's letters beyond ASCII as Java escapes (\u00B5m, \u00C5): read
    # them as the letters they stand for
    unit = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), str(unit))
    return _LENGTH_UNITS.get(unit.strip().lower())


def _ome_pixels(tif, at: int) -> dict:
    """The attributes of the OME ``Pixels`` element of the ``at``-th image of an OME-TIFF
    (its series ``at``; each image of a file has its own pixel size), or {} where not there."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return {}
    images = [e for e in root if e.tag.rsplit("}", 1)[-1] == "Image"]
    if not images:
        return {}
    image = images[min(at, len(images) - 1)]
    pixels = next((e for e in image if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    return dict(pixels.attrib) if pixels is not None else {}


def _tiff_calibration(tif, page, at: int = 0) -> tuple[float | None, str | None, float | None]:
    """A TIFF's pixel size, its unit ("um" or "nm"), and a pixel's height (in that unit)
    where the file records one more than 1% other than its width, else None; from ImageJ's
    metadata, the OME ``Pixels`` of its series ``at`` (each image of an OME-TIFF has its
    own), or the baseline resolution tags, in that order of trust."""

    def ratio(tag) -> float | None:  # pixels a unit, as the rational the tag holds
        if tag is None:
            return None
        value = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
        return value[0] / value[1] if value[0] and value[1] else None

    across = ratio(page.tags.get("XResolution"))
    down = ratio(page.tags.get("YResolution"))
    tall = across / down if across and down else 1.0  # a pixel's height over its width

    def taller(size: float) -> float | None:
        return size * tall if abs(tall - 1) > 0.01 else None

    length = _length_unit((tif.imagej_metadata or {}).get("unit"))
    if length is not None and across:
        unit, factor = length
        return factor / across, unit, taller(factor / across)

    ome = _ome_pixels(tif, at) if tif.is_ome and tif.ome_metadata else {}
    size, length = (
        _positive(ome.get("PhysicalSizeX")),
        _length_unit(ome.get("PhysicalSizeXUnit", "um")),
    )
    if size and length is not None:
        unit, factor = length
        size *= factor
        height = _positive(ome.get("PhysicalSizeY"))
        height_unit = _length_unit(ome.get("PhysicalSizeYUnit", "um"))
        if height and height_unit is not None and height_unit[0] == unit:
            height *= height_unit[1]
            return size, unit, height if abs(height / size - 1) > 0.01 else None
        return size, unit, None

    resunit = page.tags.get("ResolutionUnit")
    code = int(resunit.value) if resunit is not None else 2  # TIFF default is inch
    per_um = {2: 1 / 25400.0, 3: 1e-4, 4: 1e-3, 5: 1.0}.get(code)  # (4, 5: tifffile's)
    if not across or per_um is None:
        return None, None, None
    size = 1.0 / (across * per_um)
    # an editor's dpi (1270 itself among them: a calibration is finer; a rational's rounding
    # allowed for)
    if code in (2, 3) and size >= 25400.0 / _MIN_CALIBRATED_DPI * (1 - 1e-9):
        return None, None, None
    return size, "um", taller(size)


def _positive(text) -> float:
    """A positive finite number from a metadata attribute's text; 0.0 where it is none."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return 0.0
    return value if np.isfinite(value) and value > 0 else 0.0


# --- PNG, JPEG, BMP ----------------------------------------------------------------------------


def _open_pil(path: str | Path):
    """``PIL.Image.open(path)`` without Pillow's "decompression bomb" check: it spoke of a
    DOS attack (an error past 179 Mpixel, a warning on the console past 89), where
    cellprop's own limit (:data:`MAX_PIXELS`) is checked on the header before any pixel is
    decoded and says what to do."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image.open(path)


def _read_other(path: Path, kind: str, page: int | None, channel: int | None) -> ImageData:
    from PIL import UnidentifiedImageError

    try:
        with _open_pil(path) as im:
            width, height = im.size
            _check_size(path, height, width)
            n_pages = getattr(im, "n_frames", 1)
            page = 0 if page is None else page
            if page >= n_pages:
                raise ImageError(path, f"page {page} does not exist (the file has {n_pages})")
            if page:
                im.seek(page)
            im.load()  # decodes now, so truncation is reported here
            pixels = _pil_to_array(im)
            turned = _exif_rotation(im)
        if kind == "PNG" and _png_is_16bit_colour(path):
            pixels = _read_png16_colour(path)
        colour, is_colour_file = None, False
        if pixels.ndim == 3:
            pixels, colour, is_colour_file = _colour_plane(path, pixels, channel or 0)
        elif channel:
            raise ImageError(path, f"channel {channel} does not exist (the file has 1)")
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(path, f"not a readable {kind} file") from exc
    except MemoryError as exc:
        raise ImageError(path, "too large to read into memory") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        text = str(exc).strip() or type(exc).__name__
        if "truncated" in text.lower():
            reason = f"the {kind} file is truncated ({text})"
        else:
            reason = f"cannot read the {kind} file ({text})"
        raise ImageError(path, reason) from exc
    pixels = _check_pixels(path, pixels)
    return ImageData(
        pixels=pixels,
        path=path,
        page=page,
        n_pages=n_pages,
        n_channels=len(COLOUR_CHANNELS) if is_colour_file else 1,
        channel=channel or 0,
        colour=colour,
        is_colour_file=is_colour_file,
        note=turned,
    )


#: EXIF orientations (tag 274) that show a photo otherwise than it is stored.
_EXIF_TURNS = {
    2: "mirrored",
    3: "turned 180 degrees",
    4: "flipped upside down",
    5: "mirrored and turned",
    6: "turned 90 degrees clockwise",
    7: "mirrored and turned",
    8: "turned 90 degrees anticlockwise",
}


def _exif_rotation(im) -> str:
    """A note where a photo's EXIF asks viewers to show it turned or mirrored (a camera held
    sideways): cellprop reads its pixels as stored, as Fiji and microscopy software do, so
    that points clicked there fit; a photo viewer shows it otherwise. "" where it asks
    nothing."""
    try:
        turn = int(im.getexif().get(274, 1))
    except Exception:  # noqa: BLE001 - no EXIF, or damaged: nothing to say
        return ""
    if turn not in _EXIF_TURNS:
        return ""
    return (
        f"its EXIF asks viewers to show it {_EXIF_TURNS[turn]}: read as stored, as Fiji reads "
        "it (results and coordinates fit the stored image, not the photo viewer's)"
    )


def _pil_to_array(im) -> np.ndarray:
    """The decoded frame: 2-D where it is grey, (H, W, 3|4) where it is in colour."""
    mode = im.mode
    if mode in ("1", "L", "I", "F", "I;16", "I;16B", "I;16L"):
        return np.array(im)
    if mode in ("LA", "La"):
        return np.array(im)[..., 0]
    if mode in ("RGB", "RGBA", "RGBa", "RGBX"):
        return np.array(im)
    if mode == "P":  # a palette's indices (a label image's numbers, an 8-bit image saved
        # with a lookup table), as Fiji reads it and as a TIFF of one is read here
        return np.array(im)
    if mode == "PA":  # ... with transparency: the indices alone
        return np.array(im)[..., 0]
    # CMYK, YCbCr, ...: Pillow knows how to make them RGB.
    return np.array(im.convert("RGB"))


def _png_is_16bit_colour(path: Path) -> bool:
    # IHDR: bit depth at byte 24, colour type at byte 25 (2 = RGB, 4 = grey and alpha,
    # 6 = RGBA: Pillow reads each of them as 8 bits).
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16_colour(path: Path) -> np.ndarray:
    # Pillow reduces 16-bit colour PNGs to 8 bits; OpenCV keeps the full depth.
    import cv2

    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ImageError(path, "cannot decode the 16-bit PNG")
    return cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)


# --- finding files -----------------------------------------------------------------------------


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def find_images(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Expand files and folders into the list of image files to process.

    Parameters
    ----------
    inputs : iterable of str or pathlib.Path
        Files are kept as given (even with an unsupported ending or missing, so that the run
        reports them by name); folders contribute their image files (see ``IMAGE_EXTENSIONS``),
        hidden files and cellprop's own label images and overlays (beside their tables)
        excepted, in natural order (``img2`` before ``img10``).
    recursive : bool
        Also look into sub-folders, except hidden ones (in cellprop's own result folders, as
        in any, the label images and overlays beside their tables are left out: a folder of
        images with its results saved beside them keeps its images).

    Returns
    -------
    list of pathlib.Path
        Without duplicates, in the order found.
    """
    found: list[Path | None] = []
    seen: dict[Path, int] = {}  # each file (links resolved): its place in found

    def add(p: Path) -> None:
        try:
            key = p.resolve() if p.exists() else p
        except OSError:  # behind a folder that cannot be read: the run names it
            key = p
        earlier = seen.get(key)
        if earlier is not None:
            shown = found[earlier]
            if shown is None or shown.parent != p.parent:
                return
            if not shown.is_symlink() or p.is_symlink():
                return
            found[earlier] = None  # a link beside the file it names: the file, by its name
        seen[key] = len(found)
        found.append(p)

    for item in inputs:
        item = Path(item)
        if _is(item, Path.is_dir):
            unreadable: list[Path] = []  # folders that cannot be listed: they fail by name
            if recursive:
                candidates = []
                top = resolved(item)
                walked: set = {top}  # folders met (links followed: each once, no loop)
                for root, dirs, files in os.walk(
                    item, onerror=_unreadable_into(unreadable), followlinks=True
                ):
                    dirs[:] = _subfolders(Path(root), dirs, top, walked)
                    candidates += [Path(root) / f for f in files]
            else:
                try:
                    candidates = [p for p in item.iterdir() if _is(p, Path.is_file) or _dangling(p)]
                except OSError:
                    candidates, unreadable = [], [item]
            candidates += unreadable
            for p in sorted(candidates, key=_natural_key):
                if p in unreadable:
                    add(p)
                    continue
                if (
                    not p.name.startswith(".")
                    and p.suffix.lower() in IMAGE_EXTENSIONS
                    and not written_result(p)
                ):
                    add(p)
        else:
            add(item)
    return [p for p in found if p is not None]


def _subfolders(root: Path, names: list, top: Path, walked: set) -> list:
    """The sub-folders of ``root`` a recursive search goes on into, in name order: not hidden
    ones, nor one met already (a folder and a link to it: the folder, by its own name; a
    link to a folder walked), nor a link leading above the folder searched (a link to a
    parent would search its other folders too). Those kept are added to ``walked``."""
    real = [d for d in names if not (root / d).is_symlink()]
    kept = []
    for d in sorted(names, key=lambda d: (d not in real, d)):  # the folders before links
        where = resolved(root / d)
        if d.startswith(".") or where in walked or top.is_relative_to(where):
            continue
        walked.add(where)
        kept.append(d)
    return sorted(kept)


def resolved(path: Path) -> Path:
    """``path`` made absolute, its links followed where they lead somewhere (a link that
    loops, or a folder that cannot be read, is left as it is: reading it then says what is
    wrong with it)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return path.absolute()


def _dangling(path: Path) -> bool:
    """Whether ``path`` is a link to a file that is not there (an input that fails by name:
    the image it named was moved or deleted)."""
    return path.is_symlink() and not path.exists()


def _unreadable_into(folders: list[Path]) -> Callable[[OSError], None]:
    """An ``os.walk`` ``onerror`` that adds each folder it cannot list to ``folders``."""

    def unreadable(error: OSError) -> None:
        folders.append(Path(error.filename))

    return unreadable


def _is(path: Path, kind) -> bool:
    """``kind(path)`` (``Path.is_dir``, ``Path.is_file``), False where it cannot be told (a
    folder that cannot be read on the way)."""
    try:
        return kind(path)
    except OSError:
        return False


def written_result(path: Path) -> bool:
    """Whether ``path`` is a label image or overlay cellprop wrote (``IMG_labels.tif`` beside
    its ``IMG_cells.csv``, or in a run's folder, beside its run.json), where results were
    saved beside the images (an export into the images' folder): a folder's images leave
    them out."""
    for kind in ("labels", "overlay"):
        end = OUTPUT_SUFFIXES[kind]
        if path.name.endswith(end):
            table = path.name[: -len(end)] + OUTPUT_SUFFIXES["cells"]
            # (in a run's folder, its run.json beside: its own, its tables removed or not)
            return path.with_name(table).is_file() or path.with_name("run.json").is_file()
    return False


def _number(value: str, path: Path, line: int, column: str, comma: bool = False) -> float:
    """``value`` as a number (``comma``: a decimal comma allowed, 12,5) or PointsError."""
    try:
        number = float(value.replace(",", ".") if comma else value)
    except (TypeError, ValueError):
        raise PointsError(f"{path}: line {line}: {column} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise PointsError(f"{path}: line {line}: {column} is not finite: {value!r}")
    return number


def points_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], bool] | None:
    """A table of points as :func:`read_points` reads it: its header's names (lower case;
    a cellprop cell table's ``Detection_Center_X/Y`` as ``x``, ``y``), its rows, each with
    the line of the file it ends on (a cell typed over two lines, Alt+Enter in Excel, keeps
    the count right), blank rows and rows of separators only (a spreadsheet's ``,,``) left
    out, the header among them; and whether its numbers are written with decimal commas (a
    file of semicolons or tabs). None for an empty file; PointsError where it is no table."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PointsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text": UTF-16
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # Excel's CSV on Windows: its code page, not UTF-8
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise PointsError(f"{path}: cannot read: not a table of points (binary data)")
    first = next((line for line in text.splitlines() if line.strip(" \t,;")), None)
    if first is None:
        return None
    # Fiji's .txt and .xls tables are tab-separated; a spreadsheet in a language that writes
    # 12,5 separates its CSV columns with semicolons, its numbers then with decimal commas
    delimiter = "\t" if "\t" in first else ";" if ";" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    numbered = []
    try:
        for row in reader:
            if "".join(row).strip(" \t,;"):
                numbered.append((reader.line_num, row))
    except csv.Error as exc:  # a field of more than 128 kB: no table of points
        raise PointsError(f"{path}: cannot read: not a table of points ({exc})") from None
    header = [cell.strip().lower() for cell in numbered[0][1]]
    if "x" not in header and "detection_center_x" in header:  # cellprop's own cell tables
        header = [{"detection_center_x": "x", "detection_center_y": "y"}.get(h, h) for h in header]
    return header, numbered, delimiter != ","


def read_points(path: str | Path) -> dict[str, np.ndarray]:
    """Read cell centres (pixels) from a CSV file.

    Two layouts are understood (columns separated by commas, or by tabs as Fiji saves a
    table as text, or by semicolons with decimal commas as a spreadsheet in French or German
    writes CSV; UTF-8, else Windows' code page):
    ``image,x,y`` (one file for many images; the result keyed by
    image file name) and ``x,y`` (one image's centres, header optional; keyed by ``""``). Column
    names are matched without regard to case and other columns are ignored, so a results table
    of Fiji's Multi-point tool (Analyze > Measure: ``X``, ``Y``, in pixels when the image is not
    calibrated) reads as it is, and so do cellprop's own cell tables (``IMG_cells.csv``, and a
    batch's ``cells.csv`` with its ``Image`` column): their ``Detection_Center_X/Y`` are the
    centres the cells were outlined from.

    Returns
    -------
    dict
        ``{image name: array [N, 2] of (x, y)}``.

    Raises
    ------
    PointsError
        The file cannot be read, or a row has too few columns or a value that is not a number.
    """
    path = Path(path)
    table = points_table(path)
    if table is None:
        return {}
    header, numbered, comma = table
    if "x" in header and "y" in header:
        ix, iy = header.index("x"), header.index("y")
        iimage = header.index("image") if "image" in header else None
        body = numbered[1:]
    else:  # no header: x,y per line
        if len(numbered[0][1]) < 2 and len(numbered) > 1:  # one column: no table of points
            raise PointsError(
                f"{path}: line {numbered[0][0]}: not a table of points (x,y or image,x,y; "
                f"one column here)"
            )
        ix, iy, iimage = 0, 1, None
        body = numbered
    points: dict[str, list[tuple[float, float]]] = {}
    for k, (line, row) in enumerate(body):
        need = max(ix, iy, iimage if iimage is not None else 0)
        if len(row) <= need:
            raise PointsError(f"{path}: line {line}: expected {need + 1} columns, got {len(row)}")
        key = row[iimage].strip() if iimage is not None else ""
        if iimage is not None and not key:
            raise PointsError(f"{path}: line {line}: the image is empty (which image's is it?)")
        try:
            xy = (
                _number(row[ix], path, line, "x", comma),
                _number(row[iy], path, line, "y", comma),
            )
        except PointsError as exc:
            if k == 0 and body is numbered:  # the first line: a header it does not know?
                raise PointsError(
                    f"{exc}; no x and y columns were found, so the first line was read as a "
                    "point: name the columns image,x,y (a folder's points) or x,y (one "
                    "image's) in the first line"
                ) from None
            raise
        points.setdefault(key, []).append(xy)
    _one_plane_each(path, header, [row for _, row in body], iimage)
    return {key: np.asarray(value, dtype=np.float64) for key, value in points.items()}


#: Columns of Fiji's results tables that say which slice or time point of a stack a point
#: was clicked on (its channel, Ch, is of no matter: channels share their geometry).
_PLANE_COLUMNS = ("slice", "frame")


def _one_plane_each(path: Path, header: list, rows: list, iimage: int | None) -> None:
    """PointsError where a Fiji table's Slice or Frame column puts one image's points on
    several planes of a stack (1 and 1.0 one plane): a table of points gives one plane its
    centres (they were all outlined on one page, most of them where no cell was clicked)."""
    for column in _PLANE_COLUMNS:
        if column not in header:
            continue
        at = header.index(column)
        planes: dict[str, set] = {}
        for row in rows:
            if len(row) > at and row[at].strip():
                key = row[iimage].strip() if iimage is not None else ""
                value = row[at].strip()
                try:
                    value = f"{float(value.replace(',', '.')):g}"
                except ValueError:
                    pass
                planes.setdefault(key, set()).add(value)
        for key, found in planes.items():
            if len(found) > 1:
                shown = ", ".join(sorted(found, key=lambda v: (len(v), v))[:5])
                whose = f"{key}'s points" if key else "its points"
                raise PointsError(
                    f"{path}: {whose} lie on {len(found)} planes of a stack (its "
                    f"{header[at].title()} column: {shown}): a table of points gives one "
                    "plane of an image its centres; give each page its own rows, with an "
                    "image column naming the page as its results are named (movie_p1c0.tif "
                    "for the second), or one plane's points"
                )


def points_kept(given, centres) -> np.ndarray:
    """Which points of ``given`` ((x, y) rows: all those a segmentation was made from) became
    its cells, which lie at ``centres``: a cell keeps its point's place, to rounding, and the
    cells keep the points' order, so a point kept is the next cell's. Of two points at one place (a click
    on a cell's centre) only the first can be a cell: the second is not kept."""
    given = np.reshape(np.asarray(given, float), (-1, 2))
    centres = np.reshape(np.asarray(centres, float), (-1, 2))
    kept = np.zeros(len(given), bool)
    j = 0
    for i, point in enumerate(given):
        if j < len(centres) and np.abs(centres[j] - point).max() <= 1e-3:
            kept[i], j = True, j + 1
    return kept


def points_not_kept(given, centres) -> list[tuple[float, float]]:
    """The points of ``given`` ((x, y) rows) that did not become cells of a segmentation whose
    cells lie at ``centres`` (its outline empty, or left out by the size or edge filters;
    :func:`points_kept`)."""
    given = np.reshape(np.asarray(given, float), (-1, 2))
    return [
        (float(x), float(y))
        for (x, y), k in zip(given, points_kept(given, centres), strict=True)
        if not k
    ]


def points_outside(centres, shape: tuple) -> int:
    """How many (x, y) centres lie off an image of this (rows, cols) shape: points in
    micrometres (a calibrated Fiji table) or of another image would otherwise be outlined at the
    edge, or nowhere, without a word."""
    xy = np.asarray(centres, float).reshape(-1, 2)
    h, w = shape[:2]
    return int(((xy < -0.5) | (xy > np.array([w, h]) - 0.5)).any(axis=1).sum())
