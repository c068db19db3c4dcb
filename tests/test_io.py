"""engine.io: every supported format read with its values intact; every bad file one clear error."""

from __future__ import annotations

import csv
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from cellprop.engine import (
    MAX_PIXELS,
    ImageError,
    Plane,
    PointsError,
    count_pages,
    find_images,
    planes_points,
    points_not_kept,
    read_image,
    read_points,
)
from cellprop.engine.io import plane_size, to_grey

RNG = np.random.default_rng(7)


def ramp(dtype, shape=(37, 53)) -> np.ndarray:
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    top = info.max if info else 1000.0
    return (RNG.random(shape) * top).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.float32])
@pytest.mark.parametrize("compression", [None, "lzw", "zlib", "deflate"])
def test_tiff_depths_and_compressions_round_trip(tmp_path, dtype, compression):
    data = ramp(dtype)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, data, compression=compression)
    got = read_image(path)
    assert got.pixels.dtype == data.dtype
    np.testing.assert_array_equal(got.pixels, data)
    assert (got.page, got.n_pages, got.channel, got.n_channels) == (0, 1, 0, 1)


def test_multipage_tiff_page_choice_default_first(tmp_path):
    frames = np.stack([ramp(np.uint16) for _ in range(5)])
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, frames, imagej=True, metadata={"axes": "TYX"})
    first = read_image(path)
    assert first.n_pages == 5 and first.page == 0
    np.testing.assert_array_equal(first.pixels, frames[0])
    np.testing.assert_array_equal(read_image(path, page=3).pixels, frames[3])
    # counted from 0, as page= and the app's page chooser count them
    assert "page 3 of 0-4" in read_image(path, page=3).description
    with pytest.raises(ImageError, match="page 5 does not exist"):
        read_image(path, page=5)


def test_multichannel_tiff_channel_choice(tmp_path):
    stack = np.stack([np.stack([ramp(np.uint16) for _ in range(3)]) for _ in range(2)])
    path = tmp_path / "tc.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TCYX"})
    got = read_image(path, page=1, channel=2)
    assert (got.n_pages, got.n_channels) == (2, 3)
    np.testing.assert_array_equal(got.pixels, stack[1, 2])
    np.testing.assert_array_equal(read_image(path).pixels, stack[0, 0])
    with pytest.raises(ImageError, match="channel 3 does not exist"):
        read_image(path, channel=3)


def test_three_d_stack_needs_a_slice_choice(tmp_path):
    volume = np.stack([ramp(np.uint8) for _ in range(4)])
    path = tmp_path / "volume.tif"
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert str(path) in str(err.value) and "3-D stack of 4 slices" in str(err.value)
    np.testing.assert_array_equal(read_image(path, page=2).pixels, volume[2])


def test_pages_are_counted_from_the_header_as_reading_sees_them(tmp_path):
    """count_pages (what --page all segments) agrees with read_image's n_pages: channels are
    not pages; time points, slices and positions are; a damaged file counts as one page."""
    files = {
        "tyx.tif": (np.stack([ramp(np.uint16) for _ in range(5)]), "TYX"),
        "zyx.tif": (np.stack([ramp(np.uint8) for _ in range(4)]), "ZYX"),
        "tcyx.tif": (np.zeros((3, 2, 37, 53), np.uint16), "TCYX"),
        "cyx.tif": (np.zeros((3, 37, 53), np.uint16), "CYX"),
        "yx.tif": (ramp(np.uint8), "YX"),
    }
    expected = {"tyx.tif": 5, "zyx.tif": 4, "tcyx.tif": 3, "cyx.tif": 1, "yx.tif": 1}
    for name, (data, axes) in files.items():
        tifffile.imwrite(tmp_path / name, data, imagej=True, metadata={"axes": axes})
        assert count_pages(tmp_path / name) == expected[name], name
        assert read_image(tmp_path / name, page=0).n_pages == expected[name], name
    # An OME-TIFF time-lapse of two channels, calibrated in its OME metadata.
    tcyx = np.stack([np.stack([ramp(np.uint16) for _ in range(2)]) for _ in range(3)])
    ome = tmp_path / "lapse.ome.tif"
    tifffile.imwrite(
        ome, tcyx, ome=True, metadata={"axes": "TCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
    )
    assert count_pages(ome) == 3
    got = read_image(ome, page=2, channel=1)
    np.testing.assert_array_equal(got.pixels, tcyx[2, 1])
    assert (got.n_pages, got.n_channels, got.pixel_size, got.unit) == (3, 2, 0.5, "um")
    # Written page by page (tifffile's writer once a page: each page a series of its own),
    # and pages of two sizes: every page counted and read, not only the first series'.
    by_page = tmp_path / "by_page.tif"
    pages = [ramp(np.uint8) // (k + 1) for k in range(3)] + [np.full((20, 30), 9, np.uint8)]
    with tifffile.TiffWriter(by_page) as tif:
        for plane in pages:
            tif.write(plane, photometric="minisblack")
    assert count_pages(by_page) == 4
    assert [plane_size(by_page, k) for k in (0, 3)] == [pages[0].shape, (20, 30)]  # from headers
    assert plane_size(tmp_path / "nowhere.tif") is None
    for k, plane in enumerate(pages):
        got = read_image(by_page, page=k)
        np.testing.assert_array_equal(got.pixels, plane)
        assert got.n_pages == 4
    with pytest.raises(ImageError, match="page 4 does not exist"):
        read_image(by_page, page=4)
    cv2.imwrite(str(tmp_path / "one.png"), ramp(np.uint8))
    assert count_pages(tmp_path / "one.png") == 1
    (tmp_path / "broken.tif").write_bytes(b"II*\x00" + b"\xff" * 20)
    for bad in ("broken.tif", "missing.tif"):
        assert count_pages(tmp_path / bad) == 1  # reading it says what is wrong
        with pytest.raises(ImageError, match=bad):
            read_image(tmp_path / bad)


def test_colour_image_is_its_grey_then_red_green_blue(tmp_path):
    rgb = ramp(np.uint8, (20, 30, 3))
    expected = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    np.testing.assert_array_equal(to_grey(rgb), expected)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "rgb.bmp"), rgb[..., ::-1])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])
    tifffile.imwrite(tmp_path / "time.tif", np.stack([rgb[::-1], rgb]), photometric="rgb")
    rgb16 = ramp(np.uint16, (20, 30, 3))
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])  # Pillow would make it 8-bit
    for name, page, colours in (
        ("rgb.tif", 0, rgb),
        ("rgb.png", 0, rgb),
        ("rgb.bmp", 0, rgb),
        ("rgba.png", 0, rgb),
        ("time.tif", 1, rgb),
        ("rgb16.png", 0, rgb16),
    ):
        path = tmp_path / name
        grey = read_image(path, page=page)
        assert (grey.channel, grey.n_channels, grey.channel_names) == (
            0,
            4,
            ("grey", "red", "green", "blue"),
        ), name
        np.testing.assert_array_equal(grey.pixels, to_grey(colours), err_msg=name)
        np.testing.assert_array_equal(grey.colour, colours, err_msg=name)  # for showing it
        assert grey.pixels.dtype == colours.dtype
        for channel in (1, 2, 3):
            one = read_image(path, page=page, channel=channel)
            np.testing.assert_array_equal(one.pixels, colours[..., channel - 1], err_msg=name)
            assert one.colour is None and one.n_channels == 4
        assert "channel 3 (blue) of 0-3" in read_image(path, page=page, channel=3).description
        with pytest.raises(ImageError, match=rf"{name}: channel 4 does not exist.*3 blue"):
            read_image(path, page=page, channel=4)


def test_grey_image_saved_in_colour_is_one_grey_channel(tmp_path):
    grey = ramp(np.uint8, (40, 50))
    cv2.imwrite(str(tmp_path / "grey.jpg"), np.dstack([grey] * 3), [cv2.IMWRITE_JPEG_QUALITY, 90])
    tifffile.imwrite(tmp_path / "grey.tif", np.dstack([grey] * 3), photometric="rgb")
    for name in ("grey.jpg", "grey.tif"):
        got = read_image(tmp_path / name)
        assert (got.n_channels, got.colour, got.channel_names) == (1, None, ()), name
        assert "colour" not in got.description
        with pytest.raises(ImageError, match=f"{name}: channel 1 does not exist.*grey image"):
            read_image(tmp_path / name, channel=1)
    np.testing.assert_array_equal(read_image(tmp_path / "grey.tif").pixels, grey)
    # one pixel of colour (a red scale bar burnt in) makes it a colour image
    marked = np.dstack([grey] * 3)
    marked[5, 5] = (255, 0, 0)
    tifffile.imwrite(tmp_path / "marked.tif", marked, photometric="rgb")
    assert read_image(tmp_path / "marked.tif").n_channels == 4


def test_a_dim_16_bit_colour_image_is_colour_and_its_grey_copy_grey(tmp_path):
    """A 16-bit colour image of dim 12-bit data (red 140-572, green 0, blue a flat 300):
    colour, its red its own channel, though its colours differ by less than 1% of 65535;
    the same grey in all three stays one grey channel."""
    rng = np.random.default_rng(4)
    red = rng.integers(140, 573, (30, 40)).astype(np.uint16)
    rgb = np.dstack([red, np.zeros_like(red), np.full_like(red, 300)])
    tifffile.imwrite(tmp_path / "dim.tif", rgb, photometric="rgb")
    got = read_image(tmp_path / "dim.tif", channel=1)
    assert got.n_channels == 4 and got.channel_names[1] == "red"
    np.testing.assert_array_equal(got.pixels, red)
    tifffile.imwrite(tmp_path / "grey.tif", np.dstack([red] * 3), photometric="rgb")
    assert read_image(tmp_path / "grey.tif").n_channels == 1


def test_a_white_is_zero_tiff_is_read_as_stored_as_fiji_measures_it(tmp_path):
    """A TIFF stored MinIsWhite (as Fiji saves an image shown with an inverted LUT): its
    values as stored, as Fiji measures them (a fluorescence image saved so is bright nuclei
    still), with a note saying that viewers show it inverted."""
    picture = ramp(np.uint8, (30, 40))
    tifffile.imwrite(tmp_path / "w8.tif", picture, photometric="miniswhite")
    got = read_image(tmp_path / "w8.tif")
    np.testing.assert_array_equal(got.pixels, picture)
    assert "stored white-is-zero (Fiji's inverted LUT): read as stored" in got.note
    wide = ramp(np.uint16, (30, 40))
    tifffile.imwrite(tmp_path / "w16.tif", wide, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "w16.tif").pixels, wide)
    tifffile.imwrite(tmp_path / "b8.tif", picture)  # black-is-zero, as most: no note
    assert read_image(tmp_path / "b8.tif").note == ""


def test_a_grey_tiff_with_transparency_is_one_grey_channel(tmp_path):
    """Grey + alpha saved as TIFF (GIMP's, ExtraSamples alpha): one grey channel, as the
    same picture in a PNG (its alpha was channel 1, measured in the CSV and segmentable)."""
    grey = ramp(np.uint8, (30, 40))
    both = np.dstack([grey, np.full_like(grey, 255)])
    tifffile.imwrite(
        tmp_path / "ga.tif", both, photometric="minisblack", extrasamples=["unassalpha"]
    )
    got = read_image(tmp_path / "ga.tif")
    assert got.n_channels == 1
    np.testing.assert_array_equal(got.pixels, grey)
    with pytest.raises(ImageError, match="channel 1 does not exist"):
        read_image(tmp_path / "ga.tif", channel=1)
    # two samples that are channels (no alpha said): both kept
    tifffile.imwrite(tmp_path / "two.tif", both, photometric="minisblack", planarconfig="contig")
    assert read_image(tmp_path / "two.tif").n_channels == 2


def test_png_16bit_and_jpeg(tmp_path):
    data = ramp(np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), data)
    got = read_image(tmp_path / "a.png")
    assert got.pixels.dtype == np.uint16
    np.testing.assert_array_equal(got.pixels, data)
    grey = ramp(np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), grey, [cv2.IMWRITE_JPEG_QUALITY, 100])
    jpg = read_image(tmp_path / "a.jpg").pixels
    assert jpg.shape == grey.shape and np.abs(jpg.astype(int) - grey).mean() < 3


def test_a_palette_png_is_read_as_its_indices_as_a_palette_tiff_is(tmp_path):
    """A label image (or an 8-bit image saved with a lookup table) as a palette PNG: its
    indices, as Fiji reads it and as its TIFF is read (it was read as the colours of its
    lookup table: labels 0..6 became grey levels 0..180 in four channels)."""
    from PIL import Image

    labels = (np.arange(64 * 64).reshape(64, 64) % 7).astype(np.uint8)
    image = Image.fromarray(labels, mode="L").convert("P")
    image.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, i)])
    image.save(tmp_path / "labels.png")
    image.save(tmp_path / "labels.tif")
    for name in ("labels.png", "labels.tif"):
        got = read_image(tmp_path / name)
        assert (got.n_channels, got.is_colour_file) == (1, False), name
        np.testing.assert_array_equal(got.pixels, labels)


def calibrated(path, data, size: float, unit: str) -> None:
    """``data`` written as Fiji saves a calibrated image: ``size`` ``unit`` a pixel."""
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": unit}
    )


def test_pixel_size_from_metadata(tmp_path):
    data = ramp(np.uint16)
    calibrated(tmp_path / "ij.tif", data, 0.65, "micron")
    got = read_image(tmp_path / "ij.tif")
    assert got.unit == "um" and got.pixel_size == pytest.approx(0.65, rel=1e-6)
    tifffile.imwrite(
        tmp_path / "cm.tif", data, resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER"
    )
    got = read_image(tmp_path / "cm.tif")
    assert got.unit == "um" and got.pixel_size == pytest.approx(0.5, rel=1e-6)
    # 72 dpi is what image editors write: it says nothing about the microscope.
    tifffile.imwrite(tmp_path / "dpi.tif", data, resolution=(72, 72), resolutionunit="INCH")
    assert read_image(tmp_path / "dpi.tif").pixel_size is None


def test_pixel_sizes_of_editors_units_and_images_of_one_ome_file(tmp_path):
    """The resolution an image editor or a screen writes (96 dpi written in centimetres,
    144 dpi of a Retina screen) is no calibration (it was taken for 265 and 176 um pixels);
    lengths in mm, cm, m or a spelled-out unit are measured in um, Angstrom in nm, a unit not
    known is none; each image of an OME-TIFF has its own pixel size (all had the first's)."""
    data = ramp(np.uint16)
    for name, resolution, unit in (
        ("cm96.tif", 37.7953, "CENTIMETER"),
        ("retina.tif", 144, "INCH"),
        ("scan.tif", 1200, "INCH"),
        ("1270.tif", 1270, "INCH"),  # calibrations are finer (it was taken for 20 um)
        ("500.tif", 500, "CENTIMETER"),
    ):
        tifffile.imwrite(
            tmp_path / name, data, resolution=(resolution, resolution), resolutionunit=unit
        )
        assert read_image(tmp_path / name).pixel_size is None, name
    tifffile.imwrite(
        tmp_path / "fine.tif", data, resolution=(25400 / 0.65, 25400 / 0.65), resolutionunit="INCH"
    )
    assert read_image(tmp_path / "fine.tif").pixel_size == pytest.approx(0.65)
    for unit, size, expected in (
        ("mm", 0.0005, (0.5, "um")),
        ("micrometers", 0.5, (0.5, "um")),
        ("nanometre", 80.0, (80.0, "nm")),
        ("angstrom", 800.0, (80.0, "nm")),
        ("\\u00C5", 5.0, (0.5, "nm")),  # as ImageJ writes Å (it was no calibration)
        ("\\u00B5m", 0.2, (0.2, "um")),
        ("\\u03BCm", 0.2, (0.2, "um")),
        ("furlong", 0.5, (None, None)),
    ):
        tifffile.imwrite(
            tmp_path / "ij.tif",
            data,
            imagej=True,
            resolution=(1 / size, 1 / size),
            metadata={"unit": unit},
        )
        got = read_image(tmp_path / "ij.tif")
        size, unit_read = expected
        assert (got.pixel_size, got.unit) == (size and pytest.approx(size), unit_read), unit
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tif:
        tif.write(data, metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        tif.write(
            data[:40],
            metadata={
                "axes": "YX",
                "PhysicalSizeX": 2.0,
                "PhysicalSizeY": 2.0,
                "PhysicalSizeXUnit": "mm",
                "PhysicalSizeYUnit": "mm",
            },
        )
    assert read_image(tmp_path / "two.ome.tif", page=0).pixel_size == pytest.approx(0.5)
    second = read_image(tmp_path / "two.ome.tif", page=1)
    assert (second.pixel_size, second.unit, second.pixel_height) == (
        pytest.approx(2000.0),
        "um",
        None,
    )


def test_planes_tifffile_stores_as_the_samples_of_one_page_are_its_channels_or_pages(tmp_path):
    """tifffile writes 3 or 4 planes given as CYX, TYX or ZYX as one RGB page, its series
    keeping the axes: they are 4 channels, 3 time points, 3 slices (they were one grey
    plane, the rest lost); an ImageJ hyperstack with fewer planes than its header announces
    is refused, saying so (its channels were read as time points)."""
    planes = np.stack([np.full((30, 40), 10 * k + 1, np.uint8) for k in range(4)])
    # (as tifffile up to 2026 writes such arrays unless told otherwise)
    as_rgb = {"photometric": "rgb", "planarconfig": "separate"}
    tifffile.imwrite(tmp_path / "c.tif", planes, metadata={"axes": "CYX"}, **as_rgb)
    got = read_image(tmp_path / "c.tif", channel=2)
    assert (got.n_channels, got.n_pages, got.pixels[0, 0], got.colour) == (4, 1, 21, None)
    tifffile.imwrite(tmp_path / "t.tif", planes[:3], metadata={"axes": "TYX"}, **as_rgb)
    assert [read_image(tmp_path / "t.tif", page=p).pixels[0, 0] for p in range(3)] == [1, 11, 21]
    assert read_image(tmp_path / "t.tif").n_channels == 1 and count_pages(tmp_path / "t.tif") == 3
    tifffile.imwrite(tmp_path / "z.tif", planes[:3], metadata={"axes": "ZYX"}, **as_rgb)
    with pytest.raises(ImageError, match="3-D stack of 3 slices"):
        read_image(tmp_path / "z.tif")
    tifffile.imwrite(
        tmp_path / "tc.tif",
        np.stack([planes[:3], planes[:3] + 100]),
        metadata={"axes": "TCYX"},
        **as_rgb,
    )
    assert read_image(tmp_path / "tc.tif", page=1, channel=2).pixels[0, 0] == 121
    # a colour image stays one: its grey, red, green and blue
    rgb = np.dstack([planes[0] * 9, planes[1], planes[2]])
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert read_image(tmp_path / "rgb.tif").n_channels == 4
    header = b"ImageJ=1.54f\nimages=6\nchannels=2\nframes=3\nhyperstack=true\nmode=composite\n"
    tifffile.imwrite(
        tmp_path / "stopped.tif",
        np.concatenate([planes, planes[:1]]),
        metadata=None,
        description=header,
    )
    with pytest.raises(ImageError, match="2 channels x 3 time points .6 planes. that holds 5"):
        read_image(tmp_path / "stopped.tif", page=0)


def test_a_file_no_page_of_which_can_be_read_is_one_image_and_says_why(tmp_path, capsys):
    """Files whose header promises pages that cannot be read: an ImageJ hyperstack holding
    fewer planes than announced, tifffile's YXC written as grey (each page a row of the
    image: it failed as "no pixels (256 x 0)"), planes over the size limit. With --page
    all each was failed once per page it seemed to have (261 rows for 3 files); it is one
    image, failed once, saying why. An OME-TIFF missing planes its metadata announces reads
    the pages it has and names the others as not in the file (it said "page is None")."""
    from cellprop.cli import main

    planes = np.stack([np.full((30, 40), 10 * k + 1, np.uint8) for k in range(6)])
    header = b"ImageJ=1.54f\nimages=10\nchannels=2\nframes=5\nhyperstack=true\n"
    tifffile.imwrite(tmp_path / "stopped.tif", planes, metadata=None, description=header)
    yxc = np.dstack([planes[0], planes[1], planes[2]]).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rows.tif", yxc, photometric="minisblack", metadata={"axes": "YXC"})
    # the same written as a plain imwrite of two channels writes it, without its axes (they
    # read QYX, or IYX without tifffile's metadata): 30 "images" of 40 x 2 pixels each
    tifffile.imwrite(tmp_path / "plain.tif", yxc[..., :2])
    tifffile.imwrite(tmp_path / "bare.tif", yxc, photometric="minisblack", metadata=None)
    for name in ("stopped.tif", "rows.tif", "plain.tif", "bare.tif"):
        assert count_pages(tmp_path / name) == 1
    with pytest.raises(ImageError, match=r"its pages are not image planes \(axes YXC"):
        read_image(tmp_path / "rows.tif", channel=1)
    for name, axes in (("plain.tif", "QYX"), ("bare.tif", "IYX")):
        with pytest.raises(ImageError, match=rf"not image planes \(axes {axes}, .*pages \(40, "):
            read_image(tmp_path / name)
    # a stack of narrow planes as tall as wide, or of one page, is one all the same
    tifffile.imwrite(tmp_path / "narrow.tif", np.ones((6, 5, 5), np.uint8))
    assert read_image(tmp_path / "narrow.tif", page=5).pixels.shape == (5, 5)
    tifffile.imwrite(tmp_path / "strip.tif", np.ones((40, 2), np.uint8))
    assert read_image(tmp_path / "strip.tif").pixels.shape == (40, 2)
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(tmp_path / "stopped.tif"),
                str(tmp_path / "rows.tif"),
                "--page",
                "all",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 1
    )
    capsys.readouterr()
    rows = list(csv.DictReader(open(out / "summary.csv", encoding="utf-8")))
    assert [(r["Image"], r["Status"]) for r in rows] == [
        ("stopped.tif", "failed"),
        ("rows.tif", "failed"),
    ]
    # OME: 3 time points written, 5 announced
    tifffile.imwrite(
        tmp_path / "ome.ome.tif",
        planes[:6].reshape(3, 2, 30, 40),
        ome=True,
        metadata={"axes": "TCYX"},
    )
    data = (tmp_path / "ome.ome.tif").read_bytes().replace(b'SizeT="3"', b'SizeT="5"')
    (tmp_path / "short.ome.tif").write_bytes(data)
    assert count_pages(tmp_path / "short.ome.tif") == 5
    assert read_image(tmp_path / "short.ome.tif", page=2, channel=1).pixels[0, 0] == 51
    with pytest.raises(
        ImageError,
        match="page 3 is not in the file: its metadata announces 5 "
        "pages, but 4 of its 10 planes were never written",
    ):
        read_image(tmp_path / "short.ome.tif", page=3)


def test_a_photo_that_asks_to_be_shown_turned_is_read_as_stored_and_said(tmp_path, capsys):
    """A JPEG whose EXIF asks viewers to turn it (a camera held sideways): read as stored,
    as Fiji reads it (points clicked there fit), and the batch says so, as photo viewers
    show it turned (it was silent)."""
    from PIL import Image

    from cellprop.cli import main

    pixels = (np.indices((60, 40)).sum(0) % 9 * 25).astype(np.uint8)
    photo = Image.fromarray(pixels)
    exif = photo.getexif()
    exif[0x0112] = 6
    photo.save(tmp_path / "turned.jpg", exif=exif)
    got = read_image(tmp_path / "turned.jpg")
    assert got.pixels.shape == (60, 40) and "turned 90 degrees clockwise" in got.note
    Image.fromarray(pixels).save(tmp_path / "plain.jpg")
    assert read_image(tmp_path / "plain.jpg").note == ""
    assert main(["segment", str(tmp_path / "turned.jpg"), "--out", str(tmp_path / "o")]) == 0
    assert "its EXIF asks viewers to show it turned" in capsys.readouterr().err


def test_a_16_bit_grey_and_alpha_png_keeps_its_16_bits(tmp_path):
    """A PNG of 16-bit grey and alpha (colour type 4): Pillow reads it as 8 bits (12-bit
    data came back in 7 levels); read with its 16 bits, as grey."""
    import struct
    import zlib

    grey = (np.arange(20 * 30).reshape(20, 30) * 50).astype(np.uint16)
    pixels = np.dstack([grey, np.full_like(grey, 65535)]).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 30, 20, 16, 4, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    (tmp_path / "la16.png").write_bytes(png)
    got = read_image(tmp_path / "la16.png")
    assert got.pixels.dtype == np.uint16 and got.n_channels == 1
    np.testing.assert_array_equal(got.pixels, grey)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_bad_files_give_one_clear_error_naming_the_file(tmp_path, capfd):
    cases = {}
    tifffile.imwrite(tmp_path / "trunc.tif", ramp(np.uint16, (300, 300)), compression="zlib")
    cases["trunc.tif"] = (_truncate(tmp_path / "trunc.tif"), "truncated")
    cv2.imwrite(str(tmp_path / "trunc.png"), ramp(np.uint8, (300, 300)))
    cases["trunc.png"] = (_truncate(tmp_path / "trunc.png"), "truncated")
    (tmp_path / "empty.tif").write_bytes(b"")
    cases["empty.tif"] = (tmp_path / "empty.tif", "empty")
    os.mkfifo(tmp_path / "pipe.tif")  # (found by -r in a folder: it was "empty (0 bytes)")
    cases["pipe"] = (tmp_path / "pipe.tif", "not a regular file (a pipe or a device)")
    cv2.imwrite(str(tmp_path / "real.png"), ramp(np.uint8))
    (tmp_path / "png_named.tif").write_bytes((tmp_path / "real.png").read_bytes())
    cases["wrong extension"] = (tmp_path / "png_named.tif", "holds a PNG image")
    (tmp_path / "notes.txt").write_text("hello")
    cases["unsupported"] = (tmp_path / "notes.txt", "unsupported file type")
    (tmp_path / "garbage.tif").write_bytes(b"this is not an image at all")
    cases["garbage"] = (tmp_path / "garbage.tif", "not a TIFF")
    # A TIFF header pointing past the file: tifffile logs the damage (to stderr, by default) and
    # finds no image; the reason belongs in the error, not in the terminal.
    (tmp_path / "bad_offset.tif").write_bytes(b"II*\x00garbage")
    cases["bad offset"] = (tmp_path / "bad_offset.tif", "damaged (invalid offset to first page")
    cases["missing"] = (tmp_path / "missing.tif", "no such file")
    # A 20000 x 20000 TIFF (400 MB, written sparse): refused from its header, nothing decoded.
    tifffile.imwrite(tmp_path / "huge.tif", shape=(20000, 20000), dtype=np.uint8)
    cases["huge"] = (tmp_path / "huge.tif", "larger than the 64 Mpixel limit")
    # PNGs whose headers say 14000 x 14000 and 10000 x 10000: Pillow's "decompression bomb"
    # error (a DOS attack, it said) and console warning, not the limit, spoke for them
    for side in (14000, 10000):
        png = b"\x89PNG\r\n\x1a\n"
        for kind, data in [
            (b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)),
            (b"IDAT", zlib.compress(b"")),  # (its pixels cut short: never decoded)
            (b"IEND", b""),
        ]:
            png += struct.pack(">I", len(data)) + kind + data
            png += struct.pack(">I", zlib.crc32(kind + data))
        (tmp_path / f"huge{side}.png").write_bytes(png)
        cases[f"huge png {side}"] = (tmp_path / f"huge{side}.png", "than the 64 Mpixel limit")
    for name, (path, reason) in cases.items():
        with pytest.raises(ImageError) as err, warnings.catch_warnings():
            warnings.simplefilter("error")  # (Pillow's DecompressionBombWarning: a failure)
            read_image(path)
        assert str(err.value).startswith(str(path) + ": "), name
        assert reason in err.value.reason, (name, err.value.reason)
        assert err.value.path == path
    assert capfd.readouterr().err == ""


def test_size_bound_is_64_megapixels():
    assert MAX_PIXELS == 8192 * 8192


def test_find_images_folders_natural_order_recursive_and_explicit_files(tmp_path):
    for name in ["img10.png", "img2.png", "img1.tif", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.tiff").write_bytes(b"x")
    flat = find_images([tmp_path])
    assert [p.name for p in flat] == ["img1.tif", "img2.png", "img10.png"]
    deep = find_images([tmp_path], recursive=True)
    assert [p.name for p in deep] == ["img1.tif", "img2.png", "img10.png", "deep.tiff"]
    # Explicit files are kept whatever they are, so that the run names them when they fail.
    explicit = find_images([tmp_path / "notes.txt", tmp_path / "img2.png", tmp_path])
    assert [p.name for p in explicit][:2] == ["notes.txt", "img2.png"]
    assert len(explicit) == 4  # img2.png is not listed twice


@pytest.mark.data
def test_real_images_read(shared_data):
    c2c12 = read_image(shared_data / "c2c12-phase" / "images" / "0000.png")
    assert c2c12.pixels.shape == (1040, 1392) and c2c12.pixels.dtype == np.uint8
    hela = sorted((shared_data / "hela-dic" / "images").iterdir())[0]
    got = read_image(hela)
    assert got.pixels.shape == (512, 512)
    mask = read_image(shared_data / "hela-dic" / "masks" / hela.name)
    assert mask.pixels.dtype == np.uint16 and mask.pixels.max() > 0


def test_a_folder_of_images_leaves_out_results_saved_beside_them(tmp_path):
    """Results exported into the images' folder (IMG_labels.tif, IMG_overlay.png beside
    IMG_cells.csv): the folder's images are its images, not those (they were segmented as
    images, their cells in the tables); a file named so without its table is an image."""
    for name in ("a.png", "a_labels.tif", "a_overlay.png", "b_overlay.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    (tmp_path / "a_cells.csv").write_text("ObjectNumber\n")
    assert [p.name for p in find_images([tmp_path])] == ["a.png", "b_overlay.png"]
    assert [p.name for p in find_images([tmp_path / "a_labels.tif"])] == ["a_labels.tif"]


def test_a_sub_folder_with_its_results_saved_beside_its_images_keeps_its_images(tmp_path):
    """-r over a folder one of whose sub-folders a run wrote its results into, beside the
    images (its run.json there): that sub-folder's images are inputs, its results not (the
    whole sub-folder was skipped, its images with it, without a word)."""
    exp = tmp_path / "exp1"
    exp.mkdir()
    for name in ("a.png", "a_labels.tif", "a_overlay.png"):
        cv2.imwrite(str(exp / name), np.zeros((8, 8), np.uint8))
    (exp / "a_cells.csv").write_text("ObjectNumber\n")
    (exp / "run.json").write_text("{}")
    (tmp_path / "exp2").mkdir()
    cv2.imwrite(str(tmp_path / "exp2" / "b.png"), np.zeros((8, 8), np.uint8))
    found = find_images([tmp_path], recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["exp1/a.png", "exp2/b.png"]
    (exp / "a_cells.csv").unlink()  # a run's own, its tables removed: still no inputs
    found = find_images([tmp_path], recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["exp1/a.png", "exp2/b.png"]


def test_links_in_folders_are_followed_once_and_a_broken_one_is_named(tmp_path):
    """A folder linked into the experiment (-r: searched, as its images are the
    experiment's; a link back up the tree searched once, not round and round), a link
    beside the image it names (the image, by its own name: results were named after the
    link), and a link whose image is gone (an input that fails by name: it was left out
    without a word)."""
    exp, store = tmp_path / "exp", tmp_path / "store"
    exp.mkdir()
    store.mkdir()
    for folder, name in ((exp, "top.png"), (store, "kept.png"), (exp, "zz_real.png")):
        cv2.imwrite(str(folder / name), np.zeros((8, 8), np.uint8))
    (exp / "linked").symlink_to(store)
    (exp / "linked" / "up").symlink_to(exp)  # a loop
    (tmp_path / "elsewhere").mkdir()
    cv2.imwrite(str(tmp_path / "elsewhere" / "not_mine.png"), np.zeros((8, 8), np.uint8))
    (exp / "parent").symlink_to(tmp_path)  # above the folder searched: not followed
    (exp / "again").symlink_to(exp / "sub")  # a folder and a link to it: the folder
    (exp / "sub").mkdir()
    cv2.imwrite(str(exp / "sub" / "s.png"), np.zeros((8, 8), np.uint8))
    (exp / "aa_link.png").symlink_to(exp / "zz_real.png")
    (exp / "gone.png").symlink_to(tmp_path / "moved" / "gone.png")
    deep = find_images([exp], recursive=True)
    assert [p.relative_to(exp).as_posix() for p in deep] == [
        "gone.png",
        "linked/kept.png",
        "sub/s.png",
        "top.png",
        "zz_real.png",
    ]
    # a link in one folder given and the image it names in another given: as found first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "A01.png").symlink_to(store / "kept.png")
    both = find_images([tmp_path / "mine", store])
    assert both == [tmp_path / "mine" / "A01.png"]
    flat = find_images([exp])
    assert [p.name for p in flat] == ["gone.png", "top.png", "zz_real.png"]
    with pytest.raises(ImageError, match="gone.png: a link to .*moved.*, which is not there"):
        read_image(exp / "gone.png")


def test_a_folder_that_cannot_be_read_is_an_input_that_fails_by_name(tmp_path, monkeypatch):
    """A folder without read permission (a shared drive), given or met below one with -r:
    it was a PermissionError traceback that stopped the whole run; now it is an input of its
    own that fails, saying why, beside the images that can be read."""
    locked = tmp_path / "exp" / "locked"
    locked.mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "exp" / "x.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(locked / "y.png"), np.zeros((8, 8), np.uint8))
    denied = lambda path: PermissionError(13, "Permission denied", str(path))  # noqa: E731
    real_iterdir, real_scandir = Path.iterdir, os.scandir

    def iterdir(self):
        if self.name == "locked":
            raise denied(self)
        return real_iterdir(self)

    def scandir(path="."):
        if Path(path).name == "locked":
            raise denied(path)
        return real_scandir(path)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "locked")
    assert find_images([locked]) == [locked]
    assert find_images([tmp_path / "exp"], recursive=True) == [locked, tmp_path / "exp" / "x.png"]
    with pytest.raises(ImageError, match=r"locked: a folder that cannot be read \(permission"):
        read_image(locked)


def test_points_tables_as_spreadsheets_and_fiji_leave_them(tmp_path):
    """Messages name the file's own line (blank lines counted); a spreadsheet's rows of
    separators only are skipped (they refused the file); an empty image cell is named (it
    was dropped, or the file refused as having no image column); Excel's "Unicode Text"
    (UTF-16, tabs) reads; an image given as the points file is no table; a Fiji table whose
    Slice column puts an image's points on several planes is refused, saying so (they were
    all outlined on one page)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x,y\n\na.tif,1,2\n\n\na.tif,3,abc\n")
    with pytest.raises(PointsError, match="line 6: y is not a number: 'abc'"):
        read_points(bad)
    empty_rows = tmp_path / "rows.csv"
    empty_rows.write_text("image,x,y\na.tif,1,2\n,,\n;;\n")
    assert read_points(empty_rows)["a.tif"].tolist() == [[1.0, 2.0]]
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("image,x,y\na.tif,1,2\n,3,4\n")
    with pytest.raises(PointsError, match="line 3: the image is empty"):
        read_points(unnamed)
    utf16 = tmp_path / "unicode.txt"
    utf16.write_text("X\tY\n42.5\t150.5\n", encoding="utf-16")
    assert read_points(utf16)[""].tolist() == [[42.5, 150.5]]
    picture = tmp_path / "img.png"
    cv2.imwrite(str(picture), np.zeros((8, 8), np.uint8))
    with pytest.raises(PointsError, match="img.png: cannot read: not a table of points"):
        read_points(picture)
    fiji = tmp_path / "fiji.csv"
    fiji.write_text(" ,X,Y,Slice\n1,10,20,2\n2,30,40,3\n")
    with pytest.raises(PointsError, match=r"lie on 2 planes of a stack \(its Slice column: 2, 3\)"):
        read_points(fiji)
    fiji.write_text(" ,X,Y,Slice\n1,10,20,3\n2,30,40,3.0\n")  # one plane's: its points
    assert read_points(fiji)[""].tolist() == [[10.0, 20.0], [30.0, 40.0]]
    fiji.write_text(" ,X,Y,Ch,Slice\n1,10,20,1,3\n2,30,40,2,3\n")  # channels: one plane
    assert read_points(fiji)[""].tolist() == [[10.0, 20.0], [30.0, 40.0]]
    noted = tmp_path / "noted.csv"  # a comment typed over two lines (Alt+Enter in Excel)
    noted.write_text('image,x,y,comment\na.tif,1,2,"two\nlines"\na.tif,3,abc,\n')
    with pytest.raises(PointsError, match="line 4: y is not a number"):
        read_points(noted)


def test_a_page_segmented_alone_takes_its_own_rows(tmp_path):
    """--page 2 of stack.tif, with a points file naming the first page stack.tif and page 2
    stack_p2c0.tif (as a training set and --page all name them): page 2's rows (it took the
    first page's); with rows for stack.tif only, those."""
    stack = tmp_path / "stack.tif"
    planes = [Plane(stack, 2, "stack.tif")]
    first, own = np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]])
    assert planes_points({"stack.tif": first, "stack_p2c0.tif": own}, planes)["stack.tif"] is own
    assert planes_points({"stack.tif": first}, planes)["stack.tif"] is first
    # an image named without its extension (t000, as training and evaluate read it): its rows
    frame = [Plane(tmp_path / "frame1.png", None, "frame1.png")]
    assert planes_points({"frame1": own}, frame)["frame1.png"] is own
    assert planes_points({"frame2": own}, frame)["frame1.png"] is None


def test_every_page_of_a_file_is_named_after_the_channel_read(tmp_path):
    """--page all --channel 1: the pages of a file of two channels are named _p<page>c1;
    those of a file of one channel, read whole whatever the channel, _p<page>c0 (they were
    named after channel 1, which summary.csv said was not read)."""
    from cellprop.engine import batch_planes

    plane = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    grey = tmp_path / "grey.tif"
    tifffile.imwrite(grey, np.stack([plane] * 3), imagej=True, metadata={"axes": "TYX"})
    two = tmp_path / "two.tif"
    tifffile.imwrite(
        two, np.stack([[plane, plane + 1]] * 2), imagej=True, metadata={"axes": "TCYX"}
    )
    names = [p.name for p in batch_planes([grey, two], "all", 1)]
    assert names == [
        "grey_p0c0.tif",
        "grey_p1c0.tif",
        "grey_p2c0.tif",
        "two_p0c1.tif",
        "two_p1c1.tif",
    ]
    assert [p.name for p in batch_planes([two], "all", None)] == ["two_p0c0.tif", "two_p1c0.tif"]


def test_points_find_images_of_one_name_by_folder_page_or_whole_path(tmp_path):
    """planes_points over an experiment saved well by well, and a time-lapse's pages: a
    whole path, a folder path, a results name, a page's own name, a file's first page by the
    file's name; a bare name several wells share is a message, a name nobody has is None."""
    from cellprop.engine import batch_planes

    for well in ("A01", "A02"):
        (tmp_path / well).mkdir()
        (tmp_path / well / "f.tif").write_bytes(b"")
    movie = tmp_path / "A01" / "movie.tif"
    planes = batch_planes([tmp_path / "A01" / "f.tif", tmp_path / "A02" / "f.tif"])
    planes += [Plane(movie, 0, "movie_p0c0.tif"), Plane(movie, 1, "movie_p1c0.tif")]
    assert [p.name for p in planes] == [
        "A01_f.tif",
        "A02_f.tif",
        "movie_p0c0.tif",
        "movie_p1c0.tif",
    ]
    one, two, three = np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]]), np.array([[3.0, 3.0]])
    got = planes_points({str(tmp_path / "A02" / "f.tif"): two, "movie.tif": one}, planes)
    assert got["A01_f.tif"] is None and got["A02_f.tif"] is two
    assert got["movie_p0c0.tif"] is one and got["movie_p1c0.tif"] is None  # the first page's
    got = planes_points({"A01_f.tif": one, "movie_p1c0.tif": three, "f.tif": two}, planes)
    assert got["A01_f.tif"] is one and got["movie_p1c0.tif"] is three
    assert got["A02_f.tif"] == (
        f"{tmp_path / 'A02' / 'f.tif'}: the points file names f.tif, the name of images in 2 "
        "folders; name this one by its folder (A02/f.tif) or as its results are named "
        "(A02_f.tif)"
    )


def test_points_that_did_not_become_cells_are_named():
    """A point (a click in the window, a row of --points) whose cell was not kept: it does
    not come back among the result's centres."""
    centres = np.array([[10.0, 20.0], [30.5, 40.25]])
    got = points_not_kept([(10.0, 20.0), (30.5, 40.25), (50.0, 60.0)], centres)
    assert got == [(50.0, 60.0)]
    assert points_not_kept([(10.0, 20.0), (50.0, 60.0), (30.5, 40.25)], centres) == [(50.0, 60.0)]
    assert points_not_kept([(1.0, 2.0)], np.zeros((0, 2))) == [(1.0, 2.0)]
    assert points_not_kept([], centres) == []
    # Of two points at one place only the first can be a cell; the cells keep the points'
    # order, so the second is the one not kept (by place alone, both looked kept).
    from cellprop.engine import points_kept

    given = [(30.5, 40.25), (5.0, 5.0), (30.5, 40.25)]
    assert points_kept(given, centres[1:]).tolist() == [True, False, False]
    assert points_not_kept(given, centres[1:]) == [(5.0, 5.0), (30.5, 40.25)]


def test_points_files_give_each_image_its_centres(tmp_path):
    """image,x,y rows go to their image only; an x,y file (one image's centres, e.g. Fiji's
    Multi-point Measure table: X, Y) goes to whichever image it is used with."""
    named = tmp_path / "named.csv"
    named.write_text("image,x,y\na.tif,1,2\nb.png,3.5,4\na.tif,5,6\n")
    points = read_points(named)
    planes = [Plane(Path(name), None, name) for name in ("a.tif", "b.png", "c.tif")]
    got = planes_points(points, planes)
    assert got["a.tif"].tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert got["b.png"].tolist() == [[3.5, 4.0]]
    assert got["c.tif"] is None
    fiji = tmp_path / "Results.csv"
    fiji.write_text(" ,X,Y,Ch\n1,10,20,1\n2,30.5,40,1\n")
    points = read_points(fiji)
    for centres in planes_points(points, planes[:2]).values():
        assert centres.tolist() == [[10.0, 20.0], [30.5, 40.0]]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,oops\n")
    with pytest.raises(PointsError, match=r"bad\.csv: line 2: y is not a number"):
        read_points(bad)
    # a header of other names (file,col,row), or none before image,x,y rows: the first line
    # is read as a point, and the message says which names a header needs
    for text in ("file,col,row\na.png,1,2\n", "a.png,1,2\n", "image,x,row\na.png,1,2\n"):
        bad.write_text(text)
        with pytest.raises(PointsError, match="line 1: x is not a number") as e:
            read_points(bad)
        assert "name the columns image,x,y (a folder's points) or x,y" in str(e.value)
    bad.write_text("x,y\n1,oops\n")
    with pytest.raises(PointsError, match="y is not a number: 'oops'$"):
        read_points(bad)  # (a header it knows: no such hint)
    # the same table as a spreadsheet in German writes it (semicolons, decimal commas, its
    # Windows code page), and as Fiji saves it as text (tabs)
    excel = tmp_path / "excel.csv"
    excel.write_bytes(
        "image;X;Y;Länge µm\nMüller.tif;10;20;1,5\nMüller.tif;30,5;40;2\n".encode("cp1252")
    )
    assert read_points(excel)["Müller.tif"].tolist() == [[10.0, 20.0], [30.5, 40.0]]
    huge = tmp_path / "huge.csv"  # a field past the csv module's limit: said, not raised
    huge.write_text("x,y\n" + "1" * 200_000 + ",2\n")
    with pytest.raises(PointsError, match=r"huge\.csv: cannot read: not a table of points"):
        read_points(huge)
    tabs = tmp_path / "Results.txt"
    tabs.write_text(" \tX\tY\n1\t10\t20\n2\t30.5\t40\n")
    assert read_points(tabs)[""].tolist() == [[10.0, 20.0], [30.5, 40.0]]


def _summary_rows(folder):
    import csv

    with open(folder / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_pixels_taller_than_wide_are_read_and_said(tmp_path, capsys):
    """A file whose pixels are 0.5 um wide and 0.6 um tall (ImageJ's resolution, OME's
    PhysicalSizeY): its pixel height is read, and a batch says the cells were measured as
    if the pixels were square (they were, without a word, 17% off in area)."""
    from cellprop.cli import main

    plane = (np.indices((60, 80)).sum(0) % 7 * 30).astype(np.uint8)
    tifffile.imwrite(
        tmp_path / "tall.tif",
        plane,
        imagej=True,
        resolution=(2.0, 1 / 0.6),
        metadata={"unit": "um"},
    )
    tifffile.imwrite(
        tmp_path / "tall.ome.tif",
        plane,
        ome=True,
        metadata={"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.6},
    )
    tifffile.imwrite(
        tmp_path / "square.tif", plane, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "um"}
    )
    for name in ("tall.tif", "tall.ome.tif"):
        got = read_image(tmp_path / name)
        assert (got.pixel_size, got.pixel_height, got.unit) == (0.5, pytest.approx(0.6), "um")
    assert read_image(tmp_path / "square.tif").pixel_height is None
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "tall.tif"), "--out", str(out), "--quiet"]) == 0
    said = "its pixels are not square (0.5 x 0.6 um): measured as 0.5 um square"
    assert said in capsys.readouterr().err
    # ... and summary.csv keeps it (a --quiet run's, or a log nobody kept), a continued run too
    note = lambda folder: _summary_rows(folder)[0]["Note"]  # noqa: E731
    assert note(out) == said
    assert main(["segment", str(tmp_path / "tall.tif"), "--out", str(out), "--resume"]) == 0
    assert note(out) == said
    # A pixel size given where the file has another: measured at the one given, and said.
    for given, expected in (
        ("0.3", "measured at 0.3 um/px as given, not the file's 0.5 um/px"),
        ("0.5", ""),
    ):
        run = tmp_path / f"given{given}"
        args = ["segment", str(tmp_path / "square.tif"), "--out", str(run), "--pixel-size", given]
        assert main(args) == 0
        assert note(run) == expected
        err = capsys.readouterr().err
        assert expected in err if expected else "as given" not in err
    # A calibrated file beside one that is not: the run ends saying so (cells.csv then holds
    # their sizes in columns of different names).
    cv2.imwrite(str(tmp_path / "plain.png"), plane)
    mixed = tmp_path / "mixed"
    files = [str(tmp_path / "square.tif"), str(tmp_path / "plain.png")]
    assert main(["segment", *files, "--out", str(mixed)]) == 0
    assert (
        "the images' cells were measured in different units, 1 in um (square.tif); 1 in "
        "pixels (plain.png): cells.csv and images.csv hold their sizes in columns of "
        "different names (AreaShape_Area_um2 beside AreaShape_Area)"
    ) in capsys.readouterr().err
    # one in nm names its own column (it said _um2 of every unit)
    calibrated(tmp_path / "nm.tif", plane, 650, "nm")
    files = [str(tmp_path / "nm.tif"), str(tmp_path / "plain.png")]
    assert main(["segment", *files, "--out", str(tmp_path / "nm")]) == 0
    assert "(AreaShape_Area_nm2 beside AreaShape_Area)" in capsys.readouterr().err
    assert main(["segment", *files, "--out", str(tmp_path / "alike"), "--pixel-size", "0.5"]) == 0
    assert "different units" not in capsys.readouterr().err
