"""The app's behaviour, driven through the controller without a window (fake engine)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tifffile  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_app_fakes as fakes  # noqa: E402
from cellprop.app.controller import AppController  # noqa: E402
from cellprop.app.settings_store import SettingsStore  # noqa: E402
from cellprop.app.state import DEFAULT_OVERLAYS, Status, UserSettings  # noqa: E402
from cellprop.engine import output as engine_output  # noqa: E402

WAIT_MS = 10_000


@pytest.fixture
def settings_file(tmp_path):
    return tmp_path / "settings" / "cellprop.ini"


def make_store(settings_file) -> SettingsStore:
    return SettingsStore(QSettings(str(settings_file), QSettings.Format.IniFormat))


@pytest.fixture
def controller(qtbot, settings_file):
    ctl = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    yield ctl
    ctl.shutdown()


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "experiment"
    folder.mkdir()
    return [fakes.make_blob_image(folder / f"img{k}.npy", n_cells=k + 2, seed=k) for k in range(3)]


def open_and_wait(qtbot, ctl, paths):
    with qtbot.waitSignal(ctl.image_ready, timeout=WAIT_MS):
        ctl.open_paths(paths)


def run_and_wait(qtbot, ctl):
    with qtbot.waitSignal(ctl.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b):
        assert ctl.run_current()


def test_open_files_lists_them_not_run_and_shows_the_first(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    assert [d.path for d in controller.documents] == images
    assert [d.status for d in controller.documents] == [Status.NOT_RUN] * 3
    assert controller.current_index == 0
    assert controller.current.image.pixels.shape == (64, 64)


def test_opening_the_same_file_twice_keeps_one_entry(qtbot, controller, images):
    open_and_wait(qtbot, controller, images[:1])
    controller.open_paths(images[:1])
    assert len(controller.documents) == 1


def test_opening_a_folder_offers_a_batch(qtbot, controller, images):
    with qtbot.waitSignal(controller.folder_opened, timeout=WAIT_MS) as sig:
        controller.open_paths([images[0].parent])
    assert sig.args == [str(images[0].parent), 3]
    assert len(controller.documents) == 3


def test_missing_path_is_reported_not_raised(qtbot, controller, tmp_path):
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS) as sig:
        controller.open_paths([tmp_path / "nope.tif"])
    assert "no such file" in sig.args[0]
    assert controller.documents == []


def test_corrupt_file_is_marked_failed_with_a_readable_message(qtbot, controller, tmp_path):
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not an image")
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS) as sig:
        controller.open_paths([bad])
    assert "could not be read" in sig.args[0] and "broken.npy" in sig.args[0]
    assert controller.documents[0].status == Status.FAILED


def test_the_time_left_of_a_continued_batch_counts_the_images_it_segments():
    """900 of 1,000 images kept by the earlier run (they arrive at once), 10 segmented in
    20 s: 90 left at 2 s each (it said about 2 s, counting the kept ones as segmented)."""
    from cellprop.app.batches import BatchSummary, time_left

    summary = BatchSummary(Path("out"), total=1000, done=910, kept=900)
    assert time_left(summary, 20.0) == pytest.approx(180.0)
    summary = BatchSummary(Path("out"), total=1000, done=900, kept=900)
    assert time_left(summary, 0.5) == -1.0  # only kept ones yet: cannot tell
    assert time_left(BatchSummary(Path("out"), total=4, done=2, failed=2), 9.0) == 0.0
    assert time_left(BatchSummary(Path("out"), total=4, done=1), 3.0) == pytest.approx(9.0)


def test_a_batch_summary_names_its_folder_only_where_it_wrote_one(tmp_path):
    """A batch stopped before writing anything (a model that cannot be used) does not
    point the user to a results folder that was never made."""
    from cellprop.app.batches import BatchSummary

    summary = BatchSummary(tmp_path / "never made", total=2, cancelled=True)
    assert summary.describe() == "0 of 2 images segmented (stopped by you); nothing written"
    # a folder there, but nothing written into it (read-only: every image failed there)
    summary = BatchSummary(tmp_path, total=2, failed=2)
    assert summary.describe() == "0 of 2 images segmented, 2 failed; nothing written"
    (tmp_path / "summary.csv").write_text("Image,Path,Status\n")  # the failures, said there
    assert summary.describe().endswith(f"; results in {tmp_path}")
    summary = BatchSummary(tmp_path / "never made", total=2, done=1)
    (tmp_path / "never made").mkdir()
    assert summary.describe().endswith(f"; results in {tmp_path / 'never made'}")


def test_a_folder_that_cannot_be_written_is_named_not_its_hidden_temporary_file(
    tmp_path, monkeypatch
):
    """Results written into a read-only folder failed naming a hidden temporary file
    (.img_labels.x1y2.tif) the user never saw; the file wanted is named."""
    import tempfile

    from cellprop.engine.output import atomic_path

    def refused(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x1y2{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as err, atomic_path(tmp_path / "img_labels.tif"):
        pass
    assert err.value.filename == str(tmp_path / "img_labels.tif")
    assert str(tmp_path / "img_labels.tif") in str(err.value)


def test_next_and_previous_step_through_images_and_stop_at_the_ends(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    controller.previous_image()
    assert controller.current_index == 0
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.next_image()
    controller.next_image()
    controller.next_image()
    assert controller.current_index == 2


def test_run_segments_the_current_image_in_the_background(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    with qtbot.waitSignal(controller.result_ready, timeout=WAIT_MS):
        controller.run_current()
        assert controller.busy
        assert controller.current.status == Status.RUNNING
    doc = controller.current
    assert doc.status == Status.DONE
    assert doc.n_cells == 2
    assert doc.result.labels.max() == 2
    assert len(doc.result.table) == 2
    assert doc.result.likelihood is not None
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_run_reports_progress(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    seen = []
    controller.progress.connect(lambda text, frac: seen.append((text, frac)))
    controller.engine.delay = 0.06
    run_and_wait(qtbot, controller)
    assert any("propagating" in text for text, _ in seen)


def test_settings_reach_the_engine(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    controller.update_settings(threshold=0.3, min_size=12, exclude_border=True)
    run_and_wait(qtbot, controller)
    used = controller.engine.segment_calls[-1]
    assert (used.threshold, used.min_size, used.exclude_border) == (0.3, 12, True)
    assert used.smoothness is None  # left at the model's default


def test_cancel_stops_a_run_and_keeps_the_earlier_result(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    run_and_wait(qtbot, controller)
    first = controller.current.result
    controller.engine.delay = 0.05
    controller.engine.stages = 200
    controller.engine.segment_started.clear()
    assert controller.run_current()
    assert controller.engine.segment_started.wait(5)
    with qtbot.waitSignal(controller.busy_changed, timeout=WAIT_MS):
        controller.cancel()
    assert controller.current.result is first
    assert controller.current.status == Status.DONE


def test_second_run_while_busy_is_refused_with_a_message(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    controller.engine.delay = 0.05
    messages = []
    controller.error.connect(messages.append)
    assert controller.run_current()
    assert not controller.run_current()
    assert "Already working" in messages[-1]
    controller.cancel()
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_settings_no_image_could_be_segmented_with_start_nothing_and_say_why(
    qtbot, controller, images, tmp_path
):
    """The smallest cell set larger than the largest: Segment and Process all start
    nothing, say why, and mark no image failed; the batch's Continue check does not raise."""
    open_and_wait(qtbot, controller, images)
    controller.update_settings(min_size=500, max_size=100)
    said: list = []
    controller.error.connect(said.append)
    assert not controller.run_current()
    assert not controller.run_batch(images, tmp_path / "out")
    assert len(said) == 2 and all("smallest cell (500 px) is larger" in t for t in said)
    assert all(d.status == Status.NOT_RUN for d in controller.documents)
    assert not (tmp_path / "out").exists()
    assert controller.cannot_continue(None) == []
    controller.update_settings(max_size=0)
    run_and_wait(qtbot, controller)
    assert controller.current.status == Status.DONE


def test_missing_model_is_a_readable_error_and_the_app_goes_on(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    with qtbot.waitSignal(
        controller.model_changed, timeout=WAIT_MS, check_params_cb=lambda s: bool(s.error)
    ):
        controller.update_settings(model="/nowhere/model")
    assert "could not be used" in controller.model_status.error
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS) as sig:
        controller.run_current()
    assert "/nowhere/model" in sig.args[0]
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    # the model's fault, not the image's: the image is not marked failed (red in the list)
    assert controller.current.status == Status.NOT_RUN and controller.current.error is None
    controller.update_settings(model="phase")
    run_and_wait(qtbot, controller)
    assert controller.current.status == Status.DONE


def test_out_of_memory_becomes_a_readable_message(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)

    def no_memory(*args, **kwargs):
        raise MemoryError()

    controller.engine.segment = no_memory
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS) as sig:
        controller.run_current()
    assert "Not enough memory" in sig.args[0]
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_model_defaults_and_provider_are_published(qtbot, controller):
    with qtbot.waitSignal(
        controller.model_changed, timeout=WAIT_MS, check_params_cb=lambda s: not s.loading
    ):
        controller.load_model()
    status = controller.model_status
    assert status.provider == "CPU"
    assert status.defaults == {
        "threshold": 0.5,
        "smoothness": 20.0,
        "min_size": 4,
        "max_size": 0,  # no limit
        "edge_fraction": 0.35,
        "diameter": 16.0,
        "channel": 0,
    }


def test_clicking_a_cell_selects_it_and_background_clears(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    run_and_wait(qtbot, controller)
    labels = controller.current.result.labels
    y, x = np.argwhere(labels == 2)[0]
    with qtbot.waitSignal(controller.selection_changed, timeout=WAIT_MS) as sig:
        assert controller.select_cell_at(int(x), int(y)) == 2
    assert sig.args == [2]
    assert "cell 2" in controller.describe_pixel(int(x), int(y))
    controller.select_cell_at(0, 63)
    assert controller.selected_cell == 0
    assert "background" in controller.describe_pixel(0, 63)


def test_settings_persist_across_a_restart(qtbot, settings_file):
    first = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    chosen = dict(
        threshold=0.42,
        diameter=25.0,
        diameter_each_image=True,
        exclude_border=True,
        edge_fraction=0.2,
        device="cpu",
        pixel_size=0.65,
        neighbour_distance=7,
        ring_width=5,
        max_size=5000,
        batch_workers=3,
        batch_pages=True,
        batch_track=True,
        track_max_move=1.5,
        track_max_gap=2,
        batch_channel_index=2,
    )
    first.update_settings(**chosen)
    first.set_overlay("likelihood", visible=True, opacity=0.3)
    first.shutdown()
    second = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    assert second.settings == UserSettings(**chosen)
    # Measured on each image: the engine gets "auto", not the 25 px kept in the box.
    assert second.settings.engine_kwargs()["diameter"] == "auto"
    assert second.overlays["likelihood"].visible
    assert second.overlays["likelihood"].opacity == pytest.approx(0.3)
    second.reset_to_model_defaults()
    third = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    assert third.settings.threshold is None and third.settings.exclude_border
    assert third.settings.diameter is None and not third.settings.diameter_each_image
    assert third.settings.edge_fraction is None and third.settings.max_size is None
    assert third.settings.batch_workers == 3  # not a model default: the reset keeps it
    assert third.settings.neighbour_distance == 7  # how cells are measured: kept too
    assert third.settings.ring_width == 5
    assert third.settings.batch_pages and third.settings.batch_channel_index is None  # model's
    assert third.settings.batch_track
    assert third.settings.batch_tracking == {"max_move": 1.5, "max_gap": 2}  # kept
    second.shutdown()
    third.shutdown()


@pytest.mark.parametrize(
    "kept, chosen",
    [
        ("batch_channel_index=0\n", None),  # an earlier version's default: now the model's
        ("batch_channel_index=2\n", 2),  # ... and its choice
        ("batch_channel=default\nbatch_channel_index=2\n", None),
        ("batch_channel=0\n", 0),  # the first, chosen although the model's is another
    ],
)
def test_the_folder_channel_kept_is_a_choice_only_where_one_was_made(settings_file, kept, chosen):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("[segmentation]\n" + kept)
    store = make_store(settings_file)
    settings = store.load_settings()
    assert settings.batch_channel_index == chosen
    store.save_settings(settings)
    assert make_store(settings_file).load_settings() == settings


def test_two_windows_open_together_keep_each_others_settings(qtbot, settings_file):
    """Two copies of the app open at once: each keeps what it changes, not all its settings
    as they were when it started over the other's (the first's threshold was lost when the
    second changed the smallest cell); overlays alike."""
    first = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    second = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    first.update_settings(threshold=0.3)
    first.set_overlay("outlines", opacity=0.2)
    second.update_settings(min_size=40)
    second.set_overlay("centres", visible=False)
    kept = make_store(settings_file)
    assert kept.load_settings().threshold == 0.3 and kept.load_settings().min_size == 40
    overlays = kept.load_overlays()
    assert overlays["outlines"].opacity == 0.2 and not overlays["centres"].visible
    first.shutdown()
    second.shutdown()
    # an opacity kept as nan: the layer's default, not 0 (ticked, and never seen)
    other = settings_file.with_name("other.ini")  # (a file of its own: Qt caches the first)
    other.write_text("[overlays]\noutlines_visible=true\noutlines_opacity=nan\n")
    assert make_store(other).load_overlays()["outlines"] == DEFAULT_OVERLAYS["outlines"]


def test_corrupt_settings_file_falls_back_to_defaults(settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(
        "[segmentation]\nthreshold=banana\ndevice=quantum\nbatch_workers=0\n"
        "batch_channel_index=-1\nbatch_channel=banana\nmin_size=-3\nmax_size=-1\n"
        "neighbour_distance=-2\ntrack_max_move=0\ntrack_max_gap=-1\nring_width=-3\n"
    )
    store = make_store(settings_file)
    assert store.load_settings() == UserSettings()
    # each entry set aside is said (the window's Log shows them at start), file and all
    said = {note.split(" = ")[0]: note for note in store.set_aside}
    assert len(said) == len(store.set_aside) == 10, store.set_aside  # (batch_channel_index: an
    # older key, read only where batch_channel is not there)
    assert said["segmentation/threshold"] == (
        f"segmentation/threshold = banana in {settings_file}: not a number; the default is used"
    )
    assert said["segmentation/device"].startswith("segmentation/device = quantum in ")
    assert "not auto, cpu or cuda" in said["segmentation/device"]
    assert (
        "= -3 in " in said["segmentation/min_size"]
        and "outside 0 to 1e+06" in said["segmentation/min_size"]
    )
    assert "not a whole number" in said["segmentation/batch_channel"]
    assert make_store(settings_file).set_aside == []  # nothing read yet
    # numbers no box of the panel can show (the scale bar raised with a pixel size of nan;
    # every Segment was refused with a threshold of nan)
    settings_file.write_text(
        "[segmentation]\npixel_size=nan\nthreshold=nan\ndiameter=-5\nsmoothness=inf\n"
        "edge_fraction=7\ntrack_max_move=inf\n"
    )
    assert make_store(settings_file).load_settings() == UserSettings()
    settings_file.write_text("[segmentation]\npixel_size=0.65\nthreshold=0.3\n")
    store = make_store(settings_file)
    assert store.load_settings().pixel_size == 0.65 and store.set_aside == []
    settings_file.write_text("[segmentation]\nneighbour_distance=-1\n")  # grown until adjacent
    assert make_store(settings_file).load_settings().neighbour_distance == -1
    # whole numbers past what the panel's boxes take: used as they were, shown otherwise
    settings_file.write_text(
        "[segmentation]\nmin_size=5000000\nmax_size=200000000\nbatch_workers=1000\n"
        "batch_channel=99\nneighbour_distance=100000\nring_width=100000\ntrack_max_gap=500\n"
    )
    assert make_store(settings_file).load_settings() == UserSettings()
    settings_file.write_text("[segmentation]\nmin_size=1000000\nring_width=200\n")  # the most
    kept = make_store(settings_file).load_settings()
    assert (kept.min_size, kept.ring_width) == (1_000_000, 200)
    # QA: yes and no said otherwise, or "default" (became False: roi_zip's default is True),
    # an infinity Qt stored for a whole number (the window did not start), a decimal comma
    # (said as a Python list), an older version's key (named as the new one), 5,000 digits
    # (all in the Log), 12.0 for twelve (not a whole number)
    settings_file.write_text(
        "[segmentation]\nroi_zip=default\nbatch_pages=on\nexclude_border=yes please\n"
        "diameter_each_image=No\nmin_size=@Variant(\\0\\0\\0\\x87\\x7f\\x80\\0\\0)\n"
        "threshold=0,5\nbatch_channel_index=99\nmax_size=" + "9" * 5000 + "\nring_width=12.0\n"
        "track_max_gap=1e30\n"
    )
    store = make_store(settings_file)
    loaded = store.load_settings()
    assert loaded.roi_zip is UserSettings().roi_zip is True
    assert (loaded.batch_pages, loaded.diameter_each_image, loaded.ring_width) == (True, False, 12)
    assert loaded.exclude_border == UserSettings().exclude_border
    assert (loaded.min_size, loaded.threshold, loaded.max_size) == (None, None, None)
    said = {note.split(" = ")[0]: note for note in store.set_aside}
    assert sorted(said) == [
        "segmentation/batch_channel_index",
        "segmentation/exclude_border",
        "segmentation/max_size",
        "segmentation/min_size",
        "segmentation/threshold",
        "segmentation/track_max_gap",
    ], store.set_aside
    assert "= 1e30 in " in said["segmentation/track_max_gap"]
    assert "outside 0 to 10" in said["segmentation/track_max_gap"]
    assert "= yes please in " in said["segmentation/exclude_border"]
    assert "not true or false" in said["segmentation/exclude_border"]
    assert "segmentation/threshold = 0,5 in " in said["segmentation/threshold"]
    assert "(a decimal point, not a comma)" in said["segmentation/threshold"]
    assert "= 99 in " in said["segmentation/batch_channel_index"]
    assert (
        "= 9999999999" in said["segmentation/max_size"] and len(said["segmentation/max_size"]) < 300
    )


def test_view_choices_and_overlays_read_yes_and_no_as_the_settings_do(settings_file):
    """The View menu's choices and the overlays' visibility take yes and no as the
    segmentation settings do (on/off, any case, spaces): "on" hid an overlay and "off" or a
    word of nothing turned a choice off whatever its default was."""
    settings_file.parent.mkdir()
    settings_file.write_text(
        "[view]\nscale_bar=On\nlegend=off\nruler=maybe\n"
        "[overlays]\ncentres_visible= YES \ncentres_opacity=0.5\nfills_visible=off\n"
        "fills_opacity=0.2\noutlines_visible=sometimes\noutlines_opacity=0.7\n"
    )
    store = make_store(settings_file)
    assert store.flag("scale_bar") is True and store.flag("legend", True) is False
    assert store.flag("ruler", True) is True and store.flag("ruler") is False  # its default
    overlays = store.load_overlays()
    assert overlays["centres"].visible is True and overlays["centres"].opacity == 0.5
    assert overlays["fills"].visible is False and overlays["fills"].opacity == 0.2
    assert overlays["outlines"].visible is True and overlays["outlines"].opacity == 0.7


def test_a_folder_with_another_programs_run_json_opens_as_images(qtbot, controller, images):
    (images[0].parent / "run.json").write_text('{"acquisition": "microscope software"}')
    with qtbot.waitSignal(controller.folder_opened, timeout=WAIT_MS) as sig:
        controller.open_paths([images[0].parent])
    assert sig.args == [str(images[0].parent), 3]
    assert [d.path for d in controller.documents] == images


def test_batch_writes_results_reports_the_corrupt_file_and_finishes(
    qtbot, controller, images, tmp_path
):
    images[1].write_bytes(b"corrupt")
    out = tmp_path / "results"
    errors = []
    controller.error.connect(errors.append)
    controller.open_paths([images[0].parent])
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS) as sig:
        assert controller.run_batch(images, out)
    summary = sig.args[0]
    assert (summary.done, summary.failed, summary.cancelled) == (2, 1, False)
    assert sorted(p.name for p in out.glob("*_labels.tif")) == [
        "img0_labels.tif",
        "img2_labels.tif",
    ]
    assert any("img1.npy" in e for e in errors)
    statuses = [d.status for d in controller.documents]
    assert statuses == [Status.DONE, Status.FAILED, Status.DONE]
    assert controller.documents[2].n_cells == 4
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_a_batchs_cells_wait_in_their_files_until_their_image_is_shown(
    qtbot, controller, images, tmp_path
):
    # A batch of a thousand images must not hold a thousand label images in memory.
    open_and_wait(qtbot, controller, images)  # img0 is shown
    out = tmp_path / "batch"
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        controller.run_batch(images, out)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    docs = controller.documents
    assert docs[0].result.labels is not None  # the image shown keeps its cells at hand
    assert [d.result.labels for d in docs[1:]] == [None, None]  # the others: in their files
    assert [d.result.labels_file for d in docs] == [out / f"img{k}_labels.tif" for k in range(3)]
    assert [d.status for d in docs] == [Status.DONE] * 3 and docs[2].n_cells == 4
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(2)
    np.testing.assert_array_equal(docs[2].result.labels, np.load(out / "img2_labels.npy"))
    assert docs[2].result.labels.max() == 4

    # Export all writes the cells of images not shown too, read from their files.
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        controller.export_all(tmp_path / "all", lambda existing: False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    np.testing.assert_array_equal(
        np.load(tmp_path / "all" / "img1_labels.npy"), np.load(out / "img1_labels.npy")
    )
    # Their file gone since: shown, the image says so, to be segmented again.
    assert docs[1].result.labels_file == tmp_path / "all" / "img1_labels.tif"
    (tmp_path / "all" / "img1_labels.npy").unlink()
    errors = []
    controller.error.connect(errors.append)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(1)
    assert docs[1].result is None and docs[1].status == Status.FAILED
    assert "img1.npy: its cells could not be read back" in errors[-1]


def _time_lapse(folder: Path) -> Path:
    """A 3-page .npy time-lapse: page k has k + 2 cells."""
    pages = [np.load(fakes.make_blob_image(folder / f"t{k}.npy", n_cells=k + 2)) for k in range(3)]
    for k in range(3):
        (folder / f"t{k}.npy").unlink()
    np.save(folder / "movie.npy", np.stack(pages))
    return folder / "movie.npy"


def test_a_batch_of_every_page_shows_each_pages_cells_on_its_page(
    qtbot, controller, images, tmp_path
):
    movie = _time_lapse(images[0].parent)
    paths = [movie, images[0]]
    open_and_wait(qtbot, controller, paths)
    # Without the choice, a multi-page file is one image: its first page.
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS) as sig:
        controller.run_batch(paths, tmp_path / "first")
    assert sig.args[0].total == 2 and list(controller.documents[0].results) == [(0, 0)]
    assert (
        sig.args[0]
        .describe()
        .endswith(  # and says so, with what segments every page
            ". Only the first page of movie.npy (3 pages) was segmented: tick Each page as an "
            "image (Settings) to segment every page"
        )
    )
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)

    controller.update_settings(batch_pages=True)
    assert controller.batch_names(paths) == [
        "movie_p0c0.npy",
        "movie_p1c0.npy",
        "movie_p2c0.npy",
        "img0.npy",
    ]
    out = tmp_path / "pages"
    log = []
    controller.log.connect(lambda level, text: log.append(text))
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS) as sig:
        controller.run_batch(paths, out, overwrite=True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert (sig.args[0].total, sig.args[0].done) == (4, 4)
    assert "Only the first page" not in sig.args[0].describe()
    assert any("Batch of 4 images (every page of 2 files)" in t for t in log)
    doc = controller.documents[0]
    assert sorted(doc.results) == [(0, 0), (1, 0), (2, 0)]
    assert [doc.results[(k, 0)].n_cells for k in range(3)] == [2, 3, 4]
    assert [doc.results[(k, 0)].name for k in range(3)] == [f"movie_p{k}c0.npy" for k in range(3)]
    assert controller.documents[1].result.name == "img0.npy"  # a file of one page: its name
    # The page shown keeps its cells at hand; the other pages wait in their files.
    assert doc.results[(0, 0)].labels is not None
    assert doc.results[(1, 0)].labels is None and doc.results[(2, 0)].labels is None
    assert not doc.running and doc.status == Status.DONE
    # another image opened at a page chosen for it (the pooled Distribution's double-click)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        assert controller.show_plane_of(controller.documents[1], (0, 0))
    assert controller.current is controller.documents[1]
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        assert controller.show_plane_of(doc, (1, 0))
    assert controller.current is doc and doc.plane == (1, 0) and doc.n_cells == 3
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        assert controller.show_plane_of(doc, (2, 0))  # the image shown: another page of it
    assert controller.current.n_cells == 4
    np.testing.assert_array_equal(doc.result.labels, np.load(out / "movie_p2c0_labels.npy"))

    # Export all writes every segmented page under the batch's names, so that exporting a
    # corrected page into the batch's folder replaces that page's files.
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_all(tmp_path / "all", lambda existing: False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    written = {p.name for p in sig.args[0]}
    assert {f"movie_p{k}c0_labels.tif" for k in range(3)} | {"img0_labels.tif"} <= written
    rows = (tmp_path / "all" / "cells.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == (
        ["movie_p0c0.npy"] * 2 + ["movie_p1c0.npy"] * 3 + ["movie_p2c0.npy"] * 4 + ["img0.npy"] * 2
    )
    # Export of the page shown alone, and a page segmented here: the app's own names.
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_current(tmp_path / "one", lambda existing: False)
    assert {p.name for p in sig.args[0]} >= {"movie_p2c0_labels.tif"}
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    del doc.results[(0, 0)]
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_plane(0, 0)
    run_and_wait(qtbot, controller)
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_current(tmp_path / "page0", lambda existing: False)
    assert "movie_labels.tif" in {p.name for p in sig.args[0]}
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_batch_runs_the_chosen_number_of_images_at_once(qtbot, controller, images, tmp_path):
    controller.engine.delay = 0.02
    waiting = []
    controller.batch_started.connect(
        lambda total: waiting.append([d.waiting for d in controller.documents])
    )
    controller.open_paths(images)
    # Automatic: the engine's number for this computer (the fake says 3; 2 images wait less).
    controller.update_settings(batch_workers=None)
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        assert controller.run_batch(images, tmp_path / "auto")
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)  # the job ends after
    controller.update_settings(batch_workers=2)
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        assert controller.run_batch(images, tmp_path / "two")
    assert controller.engine.batch_workers == [3, 2]
    # Two at once: the first two images are working from the start, the third waits.
    assert waiting == [[False, False, False], [False, False, True]]
    assert [d.status for d in controller.documents] == [Status.DONE] * 3
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_batch_reports_eta(qtbot, controller, images, tmp_path):
    seen = []
    controller.batch_progress.connect(lambda done, total, eta: seen.append((done, total, eta)))
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        controller.run_batch(images, tmp_path / "out")
    assert [s[:2] for s in seen] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert seen[1][2] >= 0 and seen[-1][2] == 0


def test_cancelling_a_batch_stops_and_keeps_what_finished(qtbot, controller, images, tmp_path):
    controller.engine.delay = 0.05
    out = tmp_path / "out"
    finished_one = []

    def cancel_after_first(done, total, eta):
        if done == 1 and not finished_one:
            finished_one.append(done)
            controller.cancel()

    controller.batch_progress.connect(cancel_after_first)
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS) as sig:
        controller.run_batch(images, out)
    summary = sig.args[0]
    assert summary.cancelled
    assert summary.done == 1
    assert [p.name for p in out.glob("*_labels.tif")] == ["img0_labels.tif"]
    assert controller.documents[0].status == Status.DONE
    assert [d.status for d in controller.documents[1:]] == [Status.NOT_RUN] * 2
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


def test_export_writes_all_files_and_never_overwrites_without_asking(
    qtbot, controller, images, tmp_path
):
    open_and_wait(qtbot, controller, images)
    run_and_wait(qtbot, controller)
    out = tmp_path / "export"
    asked = []
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_current(out, lambda existing: asked.append(existing) or False)
    assert asked == []
    names = sorted(p.name for p in sig.args[0])
    assert names == ["img0_cells.csv", "img0_labels.tif", "img0_overlay.png", "img0_rois.zip"]
    assert not controller.has_unsaved_results()
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    (out / "img0_cells.csv").write_text("mine")
    assert not controller.export_current(out, lambda existing: asked.append(existing) or False)
    assert len(asked[0]) == 4
    assert (out / "img0_cells.csv").read_text() == "mine"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_current(out, lambda existing: True)
    assert (out / "img0_cells.csv").read_text() != "mine"
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    # *Also save Fiji ROIs* unticked since: the ROI set there is replaced with the labels
    # (it was left, outlining the cells exported before), and asked about with them
    controller.update_settings(roi_zip=False)
    (out / "img0_rois.zip").write_bytes(b"the cells exported before")
    asked.clear()
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_current(out, lambda existing: asked.append(existing) or True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert out / "img0_rois.zip" in asked[0] and len(asked[0]) == 4
    assert (out / "img0_rois.zip").read_bytes() == b"zip"  # the fake engine's ROI set
    elsewhere = tmp_path / "elsewhere"
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        assert controller.export_current(elsewhere, lambda existing: False)
    assert sorted(p.name for p in sig.args[0]) == names[:3]  # none asked for, none there


def test_export_all_writes_every_segmented_image(qtbot, controller, images, tmp_path):
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        controller.run_batch(images, tmp_path / "batch")
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_all(tmp_path / "all", lambda existing: False)
    # 4 files per image, cells.csv with every image's cells and images.csv with their counts
    assert len(sig.args[0]) == 14
    rows = (tmp_path / "all" / "cells.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["img0.npy"] * 2 + ["img1.npy"] * 3 + ["img2.npy"] * 4
    counts = (tmp_path / "all" / "images.csv").read_text().splitlines()
    assert counts == ["img0.npy,2", "img1.npy,3", "img2.npy,4"]


def test_a_channel_segmented_beside_a_batchs_other_channel_exports_apart(
    qtbot, controller, tmp_path
):
    """A batch on channel 1 names its results after the file (two_labels.tif); channel 0
    then segmented in the window exports as two_p0c0 (both were named two_: Export all
    refused, and Export wrote channel 0's cells over the batch's channel 1 files)."""
    planes = [np.load(fakes.make_blob_image(tmp_path / f"c{k}.npy", n_cells=k + 1)) for k in (0, 1)]
    np.save(tmp_path / "two.npy", np.stack(planes)[None])  # one page of two channels
    open_and_wait(qtbot, controller, [tmp_path / "two.npy"])
    assert controller.current.image.n_channels == 2
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_plane(0, 1)
    run_and_wait(qtbot, controller)
    controller.current.results[(0, 1)].name = "two.npy"  # as a batch on channel 1 names it
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_plane(0, 0)
    run_and_wait(qtbot, controller)
    out = tmp_path / "all"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_all(out, lambda existing: False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert (out / "two_labels.tif").is_file() and (out / "two_p0c0_labels.tif").is_file()
    rows = (out / "images.csv").read_text().splitlines()  # the fake engine's: name, count
    assert sorted(rows) == ["two.npy,2", "two_p0c0.npy,1"]  # channel 1: two cells, 0: one


def test_results_are_kept_per_page(qtbot, controller, tmp_path):
    stack = np.stack(
        [np.load(fakes.make_blob_image(tmp_path / f"p{k}.npy", n_cells=k + 1)) for k in range(2)]
    )
    np.save(tmp_path / "stack.npy", stack)
    open_and_wait(qtbot, controller, [tmp_path / "stack.npy"])
    assert controller.current.image.n_pages == 2
    run_and_wait(qtbot, controller)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_plane(1, 0)
    assert controller.current.status == Status.NOT_RUN
    run_and_wait(qtbot, controller)
    assert controller.current.n_cells == 2
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_plane(0, 0)
    assert controller.current.n_cells == 1


def test_long_sessions_do_not_exhaust_none_or_true(qtbot):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every void Qt call and
    to True on every emit: without the repair in qt_compat the interpreter aborts after some
    ten thousand calls (a few minutes of progress updates)."""
    from cellprop.app import qt_compat
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    probe = qt_compat._Probe()
    for _ in range(40_000):  # more than None's and True's whole reference counts
        label.setText("x")
        probe.ping.emit()
    assert sys.getrefcount(None) > 1000 and sys.getrefcount(True) > 100
    if sys.version_info < (3, 12):
        lost = qt_compat._leaks()
        assert qt_compat.SINGLETONS_PROTECTED == (max(lost.values()) >= qt_compat._PROBES // 2)


def test_log_keeps_tracebacks_for_bugs_only(qtbot, controller, images, tmp_path):
    logged = []
    controller.log.connect(lambda level, text: logged.append(text))
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"junk")
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS):
        controller.open_paths([bad])
    assert "Traceback" not in logged[-1]  # a bad file is explained by its message
    controller.open_paths(images[:1])
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(1)

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    controller.engine.segment = bug
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS):
        controller.run_current()
    assert "Traceback" in logged[-1] and "ZeroDivisionError" in logged[-1]
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)


# ---------------------------------------------------------------------- corrections


def correct_and_wait(qtbot, ctl, start):
    with qtbot.waitSignal(ctl.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b):
        assert start()


def background_pixel(result) -> tuple:
    ys, xs = np.nonzero(result.labels == 0)
    far = [(x, y) for x, y in zip(xs, ys, strict=True) if 4 <= x < 60 and 4 <= y < 60]
    return far[len(far) // 2]


def _click_twice_then(qtbot, controller, x, y, leave) -> list:
    """A cell clicked at (x, y), another beside it while that correction runs (it waits),
    then ``leave()`` (another image or page shown) before it ends; what was said."""
    controller.engine.delay = 0.05
    said: list = []
    controller.error.connect(said.append)
    with qtbot.waitSignal(
        controller.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b
    ):
        assert controller.add_cell_at(x, y)
        assert controller.add_cell_at(x + 1, y)  # waits for the correction running
        leave()
    return said


def test_a_double_click_adds_one_cell_and_says_the_second_is_on_its_centre(
    qtbot, controller, images
):
    """Two clicks on one pixel, the second while the first's correction runs: one cell is
    added, and the second is said to be on its centre (it ran a second correction, which
    reported 'no cell found at ...' as an error)."""
    open_and_wait(qtbot, controller, images[:1])
    run_and_wait(qtbot, controller)
    result = controller.current.result
    x, y = background_pixel(result)
    controller.engine.delay = 0.05
    said: list = []
    controller.error.connect(said.append)
    calls = len(controller.engine.segment_calls)
    with qtbot.waitSignal(
        controller.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b
    ):
        assert controller.add_cell_at(x, y)
        assert controller.add_cell_at(x, y)  # waits for the correction running
    added = controller.current.result
    assert added.n_cells == result.n_cells + 1 and added.edits == 1
    assert len(controller.engine.segment_calls) == calls + 2  # one correction's two runs
    assert said == [
        f"{images[0].name}: cell {added.n_cells} has its centre there already; nothing added."
    ]


def test_a_correction_that_ends_on_another_image_selects_nothing_there(qtbot, controller, images):
    """A cell added to one image while the user has gone on to the next: the new cell is
    added to its own image, and no cell of the image shown is selected (a Delete then would
    take out a cell nobody chose)."""
    open_and_wait(qtbot, controller, images[1:])
    run_and_wait(qtbot, controller)
    controller.set_current(1)
    run_and_wait(qtbot, controller)
    controller.set_current(0)
    qtbot.waitUntil(lambda: controller.current.image is not None, timeout=WAIT_MS)
    first = controller.current
    x, y = background_pixel(first.result)
    said = _click_twice_then(qtbot, controller, x, y, lambda: controller.set_current(1))
    assert first.result.n_cells == 4 and first.result.label_at(x, y) == 4
    assert controller.current is not first and controller.current.result.n_cells == 4
    assert controller.selected_cells == ()
    # the click that waited is let go with the image, and said so
    assert said == [
        f"{first.name}: 1 cell clicked or removed while a correction ran not changed "
        "(stopped, or another image shown); click them again"
    ]


def test_a_click_waiting_when_another_page_is_shown_is_not_added_to_that_page(
    qtbot, controller, images
):
    """Cells clicked on one time point while a correction runs, then '.' to the next one:
    the waiting click is let go with its page, and said so, not added to the page shown
    (a false cell at another time point)."""
    movie = _time_lapse(images[0].parent)
    open_and_wait(qtbot, controller, [movie])
    run_and_wait(qtbot, controller)
    controller.set_plane(1, 0)
    qtbot.waitUntil(lambda: controller.current.image is not None, timeout=WAIT_MS)
    run_and_wait(qtbot, controller)
    controller.set_plane(0, 0)
    qtbot.waitUntil(lambda: controller.current.image is not None, timeout=WAIT_MS)
    doc = controller.current
    first, second = doc.results[(0, 0)], doc.results[(1, 0)]
    x, y = background_pixel(first)
    said = _click_twice_then(qtbot, controller, x, y, lambda: controller.set_plane(1, 0))
    assert doc.results[(0, 0)].n_cells == first.n_cells + 1  # the first click, on its page
    assert doc.results[(1, 0)] is second and second.edits == 0  # nothing added there
    assert said == [
        f"{doc.name}: 1 cell clicked or removed while a correction ran not changed "
        "(stopped, or another image shown); click them again"
    ]
    # nor does a click on the page shown now wait for page 0's correction: it is its own
    assert not controller.busy and controller.can_correct()


def test_a_correction_exported_over_an_earlier_export_leaves_undo_its_own_cells(
    qtbot, controller, images, tmp_path
):
    """Corrected, exported; corrected again, exported into the same folder (replacing the
    files); then Undo: the result shown again keeps its own outlines even once its image
    left the memory (they were read back from the files, which hold the later cells: a
    table of one count beside labels of another), and it counts as not exported (quitting
    asks)."""
    open_and_wait(qtbot, controller, images[:1])
    run_and_wait(qtbot, controller)
    out = tmp_path / "x"

    def correct_and_export(replace: bool):
        x, y = background_pixel(controller.current.result)
        edits = controller.current.result.edits
        assert controller.add_cell_at(x, y)
        qtbot.waitUntil(
            lambda: controller.current.result.edits == edits + 1 and not controller.busy,
            timeout=WAIT_MS,
        )
        with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
            assert controller.export_current(out, lambda existing: replace)
        qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
        return controller.current.result

    first = correct_and_export(False)
    second = correct_and_export(True)
    assert second.previous is first and second.n_cells == first.n_cells + 1
    own = first.labels.copy()
    assert not controller.has_unsaved_results()
    assert controller.undo_correction()
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert controller.current.result is first
    first.park()  # its image left the memory (as after a look at other images)
    assert first.labels is not None  # nothing to read back: its files are not its own now
    np.testing.assert_array_equal(first.labels, own)
    assert int(first.labels.max()) == first.n_cells == len(first.table)
    assert first.unsaved_edits and controller.has_unsaved_results()
    assert second.outputs and second.labels_file == out / f"{images[0].stem}_labels.tif"
    # back to the network's own result, whose files a batch might have written: the same
    assert controller.undo_correction()
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    network = controller.current.result
    assert network.edits == 0 and network.outputs == {}  # (exported into x: none before)
    network.outputs = {"labels": out / "elsewhere_labels.tif"}  # as a batch's, not replaced
    assert not network.unsaved_edits
    redone = [controller.redo_correction(), controller.redo_correction()]
    assert redone == [True, True] and controller.current.result is second
    network.outputs = {"labels": second.labels_file}  # a batch's files, replaced by "second"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_current(out, lambda existing: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert network.files_replaced and network.unsaved_edits
    assert controller.undo_correction() and controller.undo_correction()
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert controller.current.result is network  # in no file now: closing it asks
    unsaved = controller.unsaved_work([0])  # not called a correction: it is none
    assert "cells whose files were replaced since, in no file now, on 1 image(s)" in unsaved
    assert "corrections" not in unsaved and controller.unexported_corrections() == 0


def test_a_click_on_a_cells_centre_adds_nothing_and_a_cell_lost_to_a_new_one_is_said(
    qtbot, controller, images, monkeypatch
):
    """A click on a drawn centre: a second centre there would give no cell, yet it was
    logged 'cell added' with an Undo step and unsaved work; it is said and nothing happens.
    A cell that comes out empty beside the one added (a click inside it, near its centre)
    is said too, not lost quietly with the count unchanged."""
    open_and_wait(qtbot, controller, images[:1])
    run_and_wait(qtbot, controller)
    said: list = []
    controller.error.connect(said.append)
    result = controller.current.result
    x, y = result.centres[1]
    assert not controller.add_cell_at(x + 0.4, y - 0.3)
    assert said == [f"{images[0].name}: cell 2 has its centre there already; nothing added."]
    assert controller.current.result is result and not controller.busy

    segment = controller.engine.segment

    def losing_the_first(
        image, model, settings=None, progress=None, cancel=None, centres=None, memo=None
    ):
        given = None if centres is None else np.reshape(centres, (-1, 2))
        if given is not None and len(given) > result.n_cells:  # (the cell added's run)
            given = given[1:]
        return segment(image, model, settings, progress, cancel, given, memo)

    monkeypatch.setattr(controller.engine, "segment", losing_the_first)
    bx, by = background_pixel(result)
    assert controller.add_cell_at(bx, by)
    qtbot.waitUntil(
        lambda: controller.current.result.edits == 1 and not controller.busy, timeout=WAIT_MS
    )
    assert controller.current.result.n_cells == result.n_cells  # one lost, one added
    x, y = result.centres[0]
    assert said[-1] == (
        f"{images[0].name}: the cell at x {x:.0f}, y {y:.0f} gave way to the one added (its "
        "outline came out empty beside it, or outside the size or edge limits); Ctrl+Z brings "
        "it back"
    )


def test_a_page_shown_while_its_file_is_segmented_keeps_its_own_pixels(qtbot, controller, images):
    """Another page of a time-lapse shown while the first is segmented: the page shown keeps
    its own image when the segmentation ends (it took the segmented page's pixels)."""
    movie = _time_lapse(images[0].parent)
    open_and_wait(qtbot, controller, [movie])
    controller.engine.delay = 0.05
    with qtbot.waitSignal(
        controller.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b
    ):
        assert controller.run_current()
        controller.set_plane(2, 0)
    qtbot.waitUntil(lambda: not controller._loads, timeout=WAIT_MS)
    doc = controller.current
    assert doc.plane == (2, 0) and list(doc.results) == [(0, 0)]
    np.testing.assert_array_equal(doc.image.pixels, np.load(movie)[2])


def test_export_all_names_images_of_one_name_after_their_folders(
    qtbot, controller, images, tmp_path
):
    """Two images of one file name in two folders (well A and well B) exported together get
    their folder's name in front (as a batch names them), nothing of one written over the
    other's; two that would still write the same files are refused before any is written."""
    wells = []
    for well in ("A01", "B01"):
        (tmp_path / well).mkdir()
        wells.append(fakes.make_blob_image(tmp_path / well / "field1.npy", n_cells=3))
    open_and_wait(qtbot, controller, wells)
    for k in range(2):
        controller.set_current(k)
        run_and_wait(qtbot, controller)
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        controller.export_all(tmp_path / "out", lambda existing: False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    written = {p.name for p in sig.args[0]}
    assert {"A01_field1_labels.tif", "B01_field1_labels.tif"} <= written
    rows = (tmp_path / "out" / "cells.csv").read_text().splitlines()
    assert {r.split(",")[0] for r in rows} == {"A01_field1.npy", "B01_field1.npy"}
    # the same name in one folder (.npy beside .tif): refused, nothing written
    twin = fakes.make_blob_image(tmp_path / "A01" / "field1.tif.npy", n_cells=2)
    twin = twin.rename(tmp_path / "A01" / "field1.tif")
    said: list = []
    controller.error.connect(said.append)
    controller.open_paths([twin])
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(2)
    run_and_wait(qtbot, controller)
    assert not controller.export_all(tmp_path / "again", lambda existing: False)
    assert "would write the same result files" in said[-1] and "Nothing exported" in said[-1]
    assert not (tmp_path / "again").exists()


def test_a_cell_added_at_a_click_removed_and_undone(qtbot, controller, images, tmp_path):
    open_and_wait(qtbot, controller, images[2:])
    run_and_wait(qtbot, controller)
    engine, doc = controller.engine, controller.current
    first = doc.result
    assert first.n_cells == 4
    x, y = background_pixel(first)
    correct_and_wait(qtbot, controller, lambda: controller.add_cell_at(x, y))
    # the image is segmented again from the old centres plus the click, nothing detected anew
    np.testing.assert_allclose(engine.given_centres[-1], np.vstack([first.centres, [[x, y]]]))
    added = doc.result
    assert added.n_cells == 5 and added.label_at(x, y) == 5
    assert controller.selected_cell == 5  # the new cell is shown selected
    assert len(added.table) == 5 and added.previous is first and added.edits == 1
    assert controller.has_unsaved_results()  # a corrected result is not saved yet

    correct_and_wait(qtbot, controller, lambda: controller.remove_cell(2))
    removed = doc.result
    np.testing.assert_allclose(engine.given_centres[-1], np.delete(added.centres, 1, axis=0))
    assert removed.n_cells == 4 and removed.edits == 2
    gone = added.labels == 2
    assert (removed.labels[gone] == 0).all()  # in the fake, nothing else claims its pixels
    assert removed.label_at(x, y) == 4  # the added cell is number 4 now

    out = tmp_path / "corrected"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        controller.export_current(out, lambda existing: False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    np.testing.assert_array_equal(np.load(out / "img2_labels.npy"), removed.labels)

    assert controller.undo_correction() and doc.result is added
    assert controller.undo_correction() and doc.result is first
    assert not controller.undo_correction()  # nothing before the network's own result
    calls = len(engine.segment_calls)
    # Redo makes the undone corrections again, from what was kept: nothing is segmented
    assert controller.redo_correction() and doc.result is added
    assert controller.redo_correction() and doc.result is removed
    assert not controller.redo_correction() and len(engine.segment_calls) == calls
    assert controller.undo_correction() and doc.result is added and added.undone is removed
    assert removed.layers == {}  # kept aside without its overlay images
    x2, y2 = background_pixel(added)  # (a click at x, y now: on the added cell's centre)
    correct_and_wait(qtbot, controller, lambda: controller.add_cell_at(x2, y2))
    # a new correction after Undo: what was undone is gone, Undo still goes back
    assert doc.result.previous is added and added.undone is None
    assert not controller.redo_correction()
    assert controller.undo_correction() and controller.undo_correction()
    assert doc.result is first
    calls = len(engine.segment_calls)
    assert not controller.remove_cell(0) and not controller.remove_cell(9)
    assert not controller.remove_cells([0, 9]) and not controller.remove_cell()  # none selected
    controller.select_cells([9, 3, 0, 3])  # only cells of the image, each once
    assert controller.selected_cells == (3,)
    assert not controller.add_cell_at(-1, 3) and not controller.add_cell_at(3, 64)
    assert len(engine.segment_calls) == calls
    controller.select_cells([4, 1])
    correct_and_wait(qtbot, controller, lambda: controller.remove_cell())  # both selected
    np.testing.assert_allclose(engine.given_centres[-1], first.centres[1:3])
    assert doc.result.n_cells == 2 and doc.result.previous is first
    assert controller.selected_cells == ()


def test_a_correction_reuses_the_model_and_settings_of_the_result(qtbot, controller, images):
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        controller.run_batch(images[:2], images[0].parent / "out")
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    engine = controller.engine
    batch_settings = engine.segment_calls[-1]
    # settings changed after the batch do not leak into its results' corrections
    controller.update_settings(threshold=0.8, min_size=1)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(1)
    doc = controller.current
    assert doc.result is not None and doc.result.likelihood is None  # a batch result
    x, y = background_pixel(doc.result)
    correct_and_wait(qtbot, controller, lambda: controller.add_cell_at(x, y))
    assert engine.segment_calls[-1] == batch_settings
    assert engine.loaded_models[-1] == ("phase", "auto")
    assert doc.result.n_cells == doc.result.previous.n_cells + 1
    assert not doc.result.outputs  # the batch's files no longer match: unsaved


def test_a_click_where_no_cell_is_found_changes_nothing_and_says_why(qtbot, controller, images):
    controller.update_settings(min_size=30)  # the fake's blobs have 64 px, a click 25
    open_and_wait(qtbot, controller, images[:1])
    run_and_wait(qtbot, controller)
    before = controller.current.result
    x, y = background_pixel(before)
    with qtbot.waitSignal(controller.error, timeout=WAIT_MS) as sig:
        assert controller.add_cell_at(x, y)
    assert f"no cell found at x {x}, y {y}" in sig.args[0] and "30 px" in sig.args[0]
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert controller.current.result is before


def test_undo_keeps_a_bounded_number_of_corrections():
    from cellprop.app.corrections import UNDO_DEPTH, trim_undo
    from cellprop.app.state import Result

    result = None
    for k in range(UNDO_DEPTH + 5):  # a chain of corrections, newest last
        result = Result(
            np.zeros((2, 2), np.uint16), np.zeros((0, 2)), None, 0, edits=k, previous=result
        )
    trim_undo(result, UNDO_DEPTH)
    chain = []
    while result is not None:
        chain.append(result.edits)
        result = result.previous
    assert chain == list(range(UNDO_DEPTH + 4, 3, -1))  # the newest and UNDO_DEPTH before it


def test_clicks_during_a_correction_wait_and_are_added_together(qtbot, settings_file, images):
    ctl = AppController(engine=fakes.FakeEngine(delay=0.05), store=make_store(settings_file))
    try:
        open_and_wait(qtbot, ctl, images[2:])
        run_and_wait(qtbot, ctl)
        first = ctl.current.result
        ys, xs = np.nonzero(first.labels == 0)
        clicks = [(int(xs[k]), int(ys[k])) for k in (len(xs) // 4, len(xs) // 2, 3 * len(xs) // 4)]
        assert ctl.add_cell_at(*clicks[0])
        assert ctl.busy
        assert ctl.add_cell_at(*clicks[1]) and ctl.add_cell_at(*clicks[2])  # they wait
        idle = []
        ctl.busy_changed.connect(lambda busy: idle.append(not busy))
        qtbot.waitUntil(lambda: ctl.current.result.edits == 2 and not ctl.busy, timeout=WAIT_MS)
        assert idle.count(True) == 1 and idle[-1]  # idle once, at the end: no gap between
        result = ctl.current.result
        assert result.n_cells == first.n_cells + 3
        # the second correction added both waiting clicks, after the first one's cell
        np.testing.assert_allclose(ctl.engine.given_centres[-1][-2:], clicks[1:])
        assert all(result.label_at(x, y) > first.n_cells for x, y in clicks)
        assert ctl.undo_correction() and ctl.current.result.n_cells == first.n_cells + 1
    finally:
        ctl.shutdown()


def test_a_corrected_batch_exported_again_gets_a_fresh_table_of_all_cells(
    qtbot, controller, images
):
    out = images[0].parent / "results"
    with qtbot.waitSignal(controller.batch_finished, timeout=WAIT_MS):
        controller.run_batch(images, out)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(2)
    correct_and_wait(qtbot, controller, lambda: controller.remove_cell(1))
    assert controller.unexported_corrections() == 1
    (out / "cells.csv").write_text("the batch's table")  # the fake's batch writes none
    asked = []
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        controller.export_all(out, lambda existing: asked.append(existing) or True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert out / "cells.csv" in asked[0]  # the batch's table is replaced only when agreed
    rows = (out / "cells.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows].count("img2.npy") == 3  # 4 found, 1 removed
    assert controller.unexported_corrections() == 0


def test_one_image_exported_into_an_export_all_folder_says_its_tables_are_as_they_were(
    qtbot, controller, images, tmp_path
):
    """*Export all* of two images (as a version before the window's exports kept a record
    wrote it: no run.json nor summary.csv), a cell of one taken out, then *Export* of it
    alone into the same folder: its own files are its cells now, cells.csv and images.csv
    still hold them as they were (which images they hold cannot be told), and the Log says
    so and how to bring them up to date (it said only "Exported 4 files")."""
    open_and_wait(qtbot, controller, images[:2])
    for k in (0, 1):
        if controller.current_index != k:
            with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
                controller.set_current(k)
        correct_and_wait(qtbot, controller, controller.run_current)
    out = tmp_path / "exported"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_all(out, lambda existing: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    for name in ("run.json", "summary.csv"):
        (out / name).unlink()
    tables = {n: (out / n).read_bytes() for n in ("cells.csv", "images.csv")}
    said: list = []
    controller.log.connect(lambda level, text: said.append((level, text)))
    correct_and_wait(qtbot, controller, lambda: controller.remove_cell(1))
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_current(out, lambda existing: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert {n: (out / n).read_bytes() for n in tables} == tables
    assert (
        "warning",
        f"{out}: cells.csv and images.csv left as they were, with the cells of an earlier "
        "Export all; Export all brings them up to date",
    ) in said, said
    # no record of that one image alone, which would speak for the folder: the next export
    # of another image rewrote the tables from it, the third image's rows gone (QA)
    assert not (out / "run.json").exists() and not (out / "summary.csv").exists()
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(0)
    correct_and_wait(qtbot, controller, lambda: controller.remove_cell(1))
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.export_current(out, lambda existing: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert {n: (out / n).read_bytes() for n in tables} == tables


# --- centres marked for training ---------------------------------------------------------------


def test_cell_centres_marked_for_training_are_added_taken_away_and_undone(
    qtbot, controller, images
):
    open_and_wait(qtbot, controller, images)
    assert controller.can_mark()
    assert controller.mark_at(10, 12) == "added"
    assert controller.mark_at(40.0, 20.0) == "added"
    assert controller.mark_at(64, 5) == ""  # off the image
    assert controller.marks() == [(10.0, 12.0), (40.0, 20.0)]
    assert controller.unsaved_marks() == 1
    assert controller.mark_at(11, 13, radius=3) == "removed"  # a click on a mark
    assert controller.marks() == [(40.0, 20.0)]
    assert controller.undo_mark()
    assert controller.marks() == [(10.0, 12.0), (40.0, 20.0)]
    assert controller.clear_marks() and controller.marks() == []
    assert controller.undo_mark() and len(controller.marks()) == 2
    assert controller.redo_mark() and controller.marks() == []  # cleared again
    assert not controller.redo_mark()
    assert controller.undo_mark() and controller.undo_mark()
    assert controller.marks() == [(10.0, 12.0)]  # before the second mark ...
    assert controller.redo_mark() and len(controller.marks()) == 2  # ... and after it
    assert controller.mark_at(50, 50) == "added"  # a new change: nothing left to redo
    assert not controller.redo_mark() and controller.undo_mark()
    assert controller.marks() == [(10.0, 12.0), (40.0, 20.0)]
    # marks belong to their image: the next one has none, and coming back finds them
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.next_image()
    assert controller.marks() == []
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.previous_image()
    assert controller.marks() == [(10.0, 12.0), (40.0, 20.0)]


def test_the_detected_cells_become_marks_once(qtbot, controller, images):
    open_and_wait(qtbot, controller, images[2:])  # 4 cells
    run_and_wait(qtbot, controller)
    controller.mark_at(1, 1)
    assert controller.mark_detected_cells() == 4
    marks = controller.marks()
    assert marks[0] == (1.0, 1.0)
    assert np.allclose(marks[1:], controller.current.result.centres)
    assert controller.mark_detected_cells() == 0  # each is marked already
    # a cell clicked by hand off its detected centre (on its outline, 4 px away): not
    # marked a second time (QA: it was, and trained as two cells)
    assert controller.clear_marks()
    result = controller.current.result
    cx, cy = result.centres[0]
    x, y = next(
        (cx + dx, cy + dy)
        for dx in (4, -4, 0)
        for dy in (0, 4, -4)
        if result.labels[int(round(cy + dy)), int(round(cx + dx))] == 1
    )
    controller.mark_at(x, y)
    assert controller.mark_detected_cells() == 3
    assert controller.marks()[0] == (x, y) and len(controller.marks()) == 4


def test_marked_centres_save_as_a_training_set_that_training_reads(
    qtbot, controller, images, tmp_path
):
    from cellprop.training.data import load_dataset

    open_and_wait(qtbot, controller, images)
    controller.mark_at(10, 10)
    controller.mark_at(24, 10)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.next_image()
    controller.mark_at(38, 11)
    folder = tmp_path / "my-cells"
    # a dataset of an earlier session: its rows stay
    (folder / "images").mkdir(parents=True)
    tifffile.imwrite(folder / "images" / "old.tif", np.zeros((20, 20), np.uint8))
    (folder / "points.csv").write_text("image,x,y\nold.tif,5,6\n")
    asked = []
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS) as sig:
        assert controller.save_training_set(folder, lambda e: asked.append(e) or False)
    assert asked == []  # nothing of the same name was there
    written = sorted(p.name for p in sig.args[0])
    assert written == ["img0.tif", "img1.tif", "points.csv", "sources.csv"]
    # where each plane came from: its file, page and channel
    assert engine_output.read_training_sources(folder) == {
        "img0.tif": {"file": str(images[0]), "page": 0, "channel": 0},
        "img1.tif": {"file": str(images[1]), "page": 0, "channel": 0},
    }
    assert controller.unsaved_marks() == 0
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    samples = {s.path.name: s for s in load_dataset(folder)}
    assert sorted(samples) == ["img0.tif", "img1.tif", "old.tif"]
    assert samples["img0.tif"].points.tolist() == [[10.0, 10.0], [24.0, 10.0]]
    assert samples["img1.tif"].points.tolist() == [[38.0, 11.0]]
    assert samples["old.tif"].points.tolist() == [[5.0, 6.0]]
    # the very pixels that were clicked on
    assert np.array_equal(samples["img1.tif"].pixels, np.load(images[1]))

    # saving again: img0.tif and img1.tif are these files' own planes, saved there before:
    # not asked about as if another image's (QA: asked, and No saved nothing at all)
    controller.mark_at(50, 50)
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.save_training_set(folder, lambda e: asked.append(e) or False)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert asked == [] and controller.unsaved_marks() == 0
    samples = {s.path.name: s for s in load_dataset(folder)}
    assert samples["img1.tif"].points.tolist() == [[38.0, 11.0], [50.0, 50.0]]
    assert samples["old.tif"].points.tolist() == [[5.0, 6.0]]
    # img1.tif another file's (an earlier session's image of that name): asked, and
    # declined, nothing changes; agreed, replaced
    sources = (folder / "sources.csv").read_text()
    (folder / "sources.csv").write_text(sources.replace(str(images[1]), "/elsewhere/img1.npy"))
    controller.mark_at(52, 30)
    before = (folder / "points.csv").read_text()
    assert not controller.save_training_set(folder, lambda e: asked.append(e) or False)
    assert sorted(p.name for p in asked[0]) == ["img1.tif"]
    assert (folder / "points.csv").read_text() == before
    assert controller.unsaved_marks() == 1
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.save_training_set(folder, lambda e: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    samples = {s.path.name: s for s in load_dataset(folder)}
    assert samples["img1.tif"].points.tolist() == [[38.0, 11.0], [50.0, 50.0], [52.0, 30.0]]
    assert engine_output.read_training_sources(folder)["img1.tif"]["file"] == str(images[1])


def test_an_image_named_otherwise_than_utf8_saves_into_a_training_set(
    qtbot, controller, images, tmp_path
):
    """A file named in Latin-1 bytes (caf\\xe9) marked and saved into a training set: its
    plane is named caf_.tif, as points.csv names it (saving stopped at points.csv with a
    UnicodeEncodeError, the image written and no points for it)."""
    from cellprop.training.data import load_dataset

    odd = images[0].with_name(os.fsdecode(b"caf\xe9.npy"))
    try:
        shutil.copy(images[0], odd)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    open_and_wait(qtbot, controller, [odd])
    controller.mark_at(10, 10)
    folder = tmp_path / "set"
    with qtbot.waitSignal(controller.exported, timeout=WAIT_MS):
        assert controller.save_training_set(folder, lambda e: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    samples = {s.path.name: s for s in load_dataset(folder)}
    assert samples["caf_.tif"].points.tolist() == [[10.0, 10.0]]


def test_a_saved_training_set_opens_again_to_go_on_marking(qtbot, settings_file, images, tmp_path):
    first = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    try:
        open_and_wait(qtbot, first, images[:2])
        first.mark_at(10, 10)
        first.mark_at(30, 20)
        with qtbot.waitSignal(first.exported, timeout=WAIT_MS):
            first.save_training_set(tmp_path / "set", lambda e: False)
        qtbot.waitUntil(lambda: not first.busy, timeout=WAIT_MS)
    finally:
        first.shutdown()
    second = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    try:
        open_and_wait(qtbot, second, images)  # the original files: marks found by image name
        assert second.open_marks(tmp_path / "set" / "points.csv") == 1
        assert second.marks() == [(10.0, 10.0), (30.0, 20.0)]
        assert second.unsaved_marks() == 0  # what the file holds: nothing to lose
        errors = []
        second.error.connect(errors.append)
        bad = tmp_path / "bad.csv"
        bad.write_text("image,x,y\nimg0.npy,1,oops\n")
        assert second.open_marks(bad) == 0
        assert "bad.csv: line 2" in errors[-1]
        assert second.marks() == [(10.0, 10.0), (30.0, 20.0)]
    finally:
        second.shutdown()


def test_closing_images_keeps_the_rest_and_says_what_it_would_lose(qtbot, controller, images):
    open_and_wait(qtbot, controller, images)
    controller.mark_at(5, 5)  # marked for training, not saved
    assert controller.unsaved_work([0]) == (
        "cell centres marked for training and not saved on 1 image(s)"
    )
    assert controller.unsaved_work([1, 2]) == ""
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.set_current(2)
    assert controller.close_images([0, 1])  # the image shown stays shown, now first
    assert controller.current_index == 0 and controller.current.path == images[2]
    assert controller.index_of(images[2]) == 0 and controller.index_of(images[0]) == -1
    assert not controller.close_images([5])  # no such image
    controller.open_paths(images[:1])  # opened again: a fresh image, no marks
    assert controller.index_of(images[0]) == 1 and controller.documents[1].marks == {}


def test_nothing_marked_or_two_images_of_one_name_say_so(qtbot, controller, tmp_path):
    errors = []
    controller.error.connect(errors.append)
    a = fakes.make_blob_image(tmp_path / "img.npy")
    b = fakes.make_blob_image(tmp_path / "b.npy").rename(tmp_path / "img.NPY")  # both img.tif
    open_and_wait(qtbot, controller, [a, b])
    assert not controller.save_training_set(tmp_path / "set", lambda e: True)
    assert "No cell centres marked yet" in errors[-1]
    controller.mark_at(5, 5)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.next_image()
    controller.mark_at(6, 6)
    assert not controller.save_training_set(tmp_path / "set", lambda e: True)
    assert "would both be saved as img.tif" in errors[-1]
    assert not (tmp_path / "set").exists()


def test_marked_wells_of_one_file_name_are_saved_apart_and_read_back(
    qtbot, controller, tmp_path, settings_file
):
    """An experiment saved well by well (A01/field.npy, A02/field.npy): the training set names
    the marked images after their folders, as a batch names their results, and reading its
    points.csv back gives each image its own marks."""
    wells = []
    for k, well in enumerate(("A01", "A02")):
        (tmp_path / well).mkdir()
        wells.append(fakes.make_blob_image(tmp_path / well / "field.npy", seed=k))
    open_and_wait(qtbot, controller, wells)
    controller.mark_at(5, 5)
    with qtbot.waitSignal(controller.image_ready, timeout=WAIT_MS):
        controller.next_image()
    controller.mark_at(6, 6)
    controller.mark_at(20, 30)
    assert controller.save_training_set(tmp_path / "set", lambda e: True)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert sorted(p.name for p in (tmp_path / "set" / "images").iterdir()) == [
        "A01_field.tif",
        "A02_field.tif",
    ]
    second = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    try:
        open_and_wait(qtbot, second, wells)
        assert second.open_marks(tmp_path / "set" / "points.csv") == 2
        assert [d.marks[(0, 0)] for d in second.documents] == [
            [(5.0, 5.0)],
            [(6.0, 6.0), (20.0, 30.0)],
        ]
        # a file naming one well by its folder marks that well only; a bare file name,
        # which could mean either, marks neither and says how to name them
        errors: list = []
        second.error.connect(errors.append)
        by_folder = tmp_path / "by_folder.csv"
        by_folder.write_text("image,x,y\nA02/field.npy,7,8\n")
        assert second.open_marks(by_folder) == 1
        assert [d.marks[(0, 0)] for d in second.documents] == [[(5.0, 5.0)], [(7.0, 8.0)]]
        bare = tmp_path / "bare.csv"
        bare.write_text("image,x,y\nfield.npy,9,9\n")
        assert second.open_marks(bare) == 0
        assert [d.marks[(0, 0)] for d in second.documents] == [[(5.0, 5.0)], [(7.0, 8.0)]]
        assert len(errors) == 2 and "name this one by its folder (A01/field.npy)" in errors[0]
    finally:
        second.shutdown()
    # one well opened alone: its marks back, by the set's record of where A02_field.tif was
    # taken from (QA: by name only, field.tif, which the set does not hold: none back)
    third = AppController(engine=fakes.FakeEngine(), store=make_store(settings_file))
    try:
        open_and_wait(qtbot, third, wells[1:])
        assert third.open_marks(tmp_path / "set" / "points.csv") == 1
        assert third.documents[0].marks[(0, 0)] == [(6.0, 6.0), (20.0, 30.0)]
    finally:
        third.shutdown()


def test_marks_from_a_file_that_lie_off_the_image_are_refused_by_name(
    qtbot, controller, images, tmp_path
):
    """Points in micrometres where pixels were meant: the image shown refuses them at once;
    an image not shown then gets them, and saving the training set names it and writes
    nothing."""
    errors = []
    controller.error.connect(errors.append)
    open_and_wait(qtbot, controller, images[:2])  # 64 x 64 pixels each
    points = tmp_path / "um.csv"
    points.write_text("image,x,y\nimg0.npy,100,20\nimg0.npy,10,10\nimg1.npy,10,300\n")
    assert controller.open_marks(points) == 1  # img1, not shown, cannot be checked yet
    assert controller.marks() == []
    assert "um.csv: 1 of the 2 points for img0.npy lie outside the image" in errors[0]
    assert len(errors) == 1
    with qtbot.waitSignal(controller.busy_changed, check_params_cb=lambda b: not b):
        assert controller.save_training_set(tmp_path / "set", lambda e: True)
    assert "img1.npy: 1 of its 1 marked centres lie outside the image" in errors[-1]
    assert not (tmp_path / "set" / "points.csv").exists()


class HeldReads(fakes.FakeEngine):
    """Image reads wait until the test lets them go; ``fail`` makes them fail then."""

    def __init__(self):
        super().__init__()
        import threading

        self.go = threading.Event()
        self.reading = threading.Event()
        self.fail = False

    def read_image(self, path, page=0, channel=0):
        self.reading.set()
        self.go.wait(10)
        if self.fail:
            raise fakes.ImageError(Path(path), "unreadable after all")
        return super().read_image(path, page, channel)


@pytest.mark.parametrize("fail", [False, True])
def test_an_image_closed_while_it_is_read_is_left_alone_when_the_read_ends(
    qtbot, settings_file, images, fail
):
    """The read of an image closed meanwhile ends quietly: nothing shown, nothing reported,
    the other image's state untouched."""
    engine = HeldReads()
    ctl = AppController(engine=engine, store=make_store(settings_file))
    try:
        engine.go.set()
        with qtbot.waitSignal(ctl.image_ready, timeout=WAIT_MS):
            ctl.open_paths(images[:1])  # shown, read
        engine.go.clear()
        engine.reading.clear()
        engine.fail = fail
        ctl.open_paths(images[1:2])
        ctl.set_current(1)  # its read starts and waits
        assert engine.reading.wait(5)
        errors, ready, changed = [], [], []
        ctl.error.connect(errors.append)
        ctl.image_ready.connect(ready.append)
        ctl.document_changed.connect(changed.append)
        assert ctl.close_images([1])
        engine.go.set()  # the read ends after its image has gone
        assert ctl.wait_idle()
        qtbot.wait(50)  # its signals are delivered
        assert errors == [] and ready == [0]  # the image left is shown again, from memory
        assert [d.path for d in ctl.documents] == [images[0]] and ctl.documents[0].error is None
        assert all(i == 0 for i in changed)
    finally:
        ctl.shutdown()


def test_an_image_is_found_by_any_path_to_it_after_others_are_closed(qtbot, controller, images):
    """An image opened through a link (a folder linked into the user's home) is the same
    image by its real path and by the path it was opened as, once looked up and again after
    other images were closed (the paths as given are remembered resolved, not resolved at
    each look-up); an image closed is not found by either, nor opened twice by the other."""
    link = images[0].parent.parent / "linked"
    link.symlink_to(images[0].parent)
    via_link = [link / p.name for p in images]
    open_and_wait(qtbot, controller, via_link)
    for k in range(3):
        assert controller.index_of(via_link[k]) == controller.index_of(images[k]) == k
    assert controller.open_paths([images[1]]) == []  # the same file: not a second image
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    assert controller.close_images([0])
    assert controller.index_of(via_link[0]) == controller.index_of(images[0]) == -1
    assert controller.index_of(via_link[2]) == controller.index_of(images[2]) == 1
    assert controller.index_of(str(link / ".." / "linked" / images[2].name)) == 1
