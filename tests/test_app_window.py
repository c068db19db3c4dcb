"""The window shows the controller's state and forwards input (offscreen, fake engine)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage, QKeySequence, QMouseEvent  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_app_fakes as fakes  # noqa: E402
from cellprop.app import render  # noqa: E402
from cellprop.app.controller import AppController  # noqa: E402
from cellprop.app.dialogs import Dialogs  # noqa: E402
from cellprop.app.main_window import MainWindow  # noqa: E402
from cellprop.app.messages import format_seconds  # noqa: E402
from cellprop.app.settings_store import SettingsStore  # noqa: E402
from cellprop.app.state import Status  # noqa: E402
from cellprop.app.timecourse import COUNT  # noqa: E402

import cellprop  # noqa: E402

WAIT_MS = 10_000


class ScriptedDialogs:
    """Answers the window's questions like a user would, and records them."""

    def __init__(self):
        self.answers: list = []  # answers to ask(), in order; default yes
        self.folder = ""
        self.folders: list = []  # answers to choose_folder, in order; then ``folder``
        self.item = None  # the answer to choose_item (None: the one offered)
        self.items: list = []  # answers to choose_item, in order; then ``item``
        self.items_offered: list = []  # (items, the one offered) of each choose_item
        self.number = None  # the answer to choose_number (None: the value offered)
        self.numbers_offered: list = []
        self.choice = None  # the answer to choose (None: the first option)
        self.offered: list = []  # the options of each choose()
        self.files: list = []
        self.points_file = ""
        self.picture_file = ""
        self.questions: list = []
        self.opened: list = []  # folders shown in the file manager

    def ask(self, title, question):
        self.questions.append(question)
        return self.answers.pop(0) if self.answers else True

    def choose(self, title, text, options):
        self.questions.append(text)
        self.offered.append(options)
        return self.choice if self.choice is not None else options[0]

    def choose_files(self, start):
        return self.files

    def choose_folder(self, title, start):
        return self.folders.pop(0) if self.folders else self.folder

    def choose_number(self, title, label, value, minimum, maximum):
        self.questions.append(label)
        self.numbers_offered.append(value)
        return self.number if self.number is not None else value

    def choose_item(self, title, label, items, current=0):
        self.questions.append(label)
        self.items_offered.append((list(items), items[current]))
        if self.items:
            return self.items.pop(0)
        return self.item if self.item is not None else items[current]

    def choose_points_file(self, start):
        return self.points_file

    def choose_picture_file(self, start):
        self.picture_offered = start
        return self.picture_file

    def open_folder(self, folder):
        self.opened.append(folder)


@pytest.fixture
def window(qtbot, tmp_path):
    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    controller = AppController(engine=fakes.FakeEngine(), store=store)
    dialogs = ScriptedDialogs()
    win = MainWindow(controller, dialogs=dialogs)
    qtbot.addWidget(win)
    win.show()
    yield win
    controller.shutdown()


def test_a_window_layout_cut_short_in_the_settings_file_starts_the_window_as_at_first(
    qtbot, tmp_path
):
    """The [window] entries cut short by a power cut, or edited by hand (not a byte array):
    the window starts with its first layout (it failed to start, at every start, with a
    TypeError from restoreGeometry)."""
    settings_file = tmp_path / "settings.ini"
    settings_file.write_text("[window]\ngeometry=@ByteArray(\\x1\\xd9\nstate=42\n")
    store = SettingsStore(QSettings(str(settings_file), QSettings.Format.IniFormat))
    assert store.window_state() == (None, None)
    controller = AppController(engine=fakes.FakeEngine(), store=store)
    win = MainWindow(controller, dialogs=ScriptedDialogs())
    qtbot.addWidget(win)
    win.show()
    assert win.isVisible()
    win.close()  # saves a layout it reads back as one
    geometry, state = store.window_state()
    assert geometry is not None and state is not None and win.restoreState(state)
    controller.shutdown()


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "experiment"
    folder.mkdir()
    return [fakes.make_blob_image(folder / f"img{k}.npy", n_cells=k + 2, seed=k) for k in range(3)]


def open_and_run(qtbot, win, paths):
    with qtbot.waitSignal(win.controller.image_ready, timeout=WAIT_MS):
        win.open_paths(paths)
    with qtbot.waitSignal(win.controller.result_ready, timeout=WAIT_MS):
        win.run_action.trigger()
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=WAIT_MS)


def test_starts_on_the_welcome_view_that_says_what_to_do(window):
    assert window.stack.currentWidget() is window.welcome
    texts = " ".join(w.text() for w in window.welcome.findChildren(type(window.pixel_info)))
    assert "Drop images or a folder here" in texts
    assert not window.run_action.isEnabled()
    assert not window.export_action.isEnabled()  # nothing to export yet


def test_dropping_files_opens_them_and_lists_them(qtbot, window, images):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in images[:2]])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.dropEvent(event)
    assert window.stack.currentIndex() == 1
    assert window.documents.count() == 2
    assert "img0.npy" in window.documents.item(0).text()
    assert window.run_action.isEnabled()


def test_run_fills_overlays_and_table_and_marks_the_list(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    result = window.controller.current.result
    assert not window.viewer.layer("fills").pixmap().isNull()
    assert not window.viewer.layer("outlines").pixmap().isNull()
    assert window.viewer.layer("fills").pixmap().width() == 64
    assert window.table.model().rowCount() == result.n_cells == 2
    assert "2 cells" in window.documents.item(0).text()
    assert "2 cells" in window.cells_summary.text()
    centres = window.viewer.layer("centres").childItems()
    assert len(centres) == 2 * 2  # a dot and a number per cell


def test_the_rings_measured_are_drawn_where_they_lie(qtbot, window, images):
    """Without a ring the *Rings around cells* layer is not offered; with *Ring around cells*
    set, the cells segmented from then on show their rings (the engine's) in their layer,
    and the picture saved of the view has them too."""
    from cellprop.app.state import OVERLAY_TITLES
    from cellprop.engine.features import rings

    open_and_run(qtbot, window, images[:1])
    assert not window.overlay_actions["rings"].isEnabled()
    assert window.viewer.layer("rings").pixmap().isNull()
    window.controller.update_settings(ring_width=3)
    with qtbot.waitSignal(window.controller.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    result = window.controller.current.result
    assert window.overlay_actions["rings"].isEnabled()
    assert window.overlay_actions["rings"].text().replace("&", "") == OVERLAY_TITLES["rings"]
    drawn = fakes.qimage_rgba(window.viewer.layer("rings").pixmap())[..., 3] > 0
    expected = rings(result.labels, 3) > 0
    assert expected.any() and np.array_equal(drawn, expected)
    assert window.viewer.layer("rings").isVisible()
    window.overlay_actions["rings"].trigger()  # hidden: the picture has no rings
    plain = fakes.qimage_rgba(window.viewer.picture())
    window.overlay_actions["rings"].trigger()
    shown = fakes.qimage_rgba(window.viewer.picture())
    changed = (plain != shown).any(axis=2)
    assert changed.any() and not changed[~expected].any()


def test_overlay_controls_toggle_and_fade_the_layers(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    window.overlay_panel.checks["likelihood"].setChecked(True)
    window.overlay_panel.sliders["likelihood"].setValue(25)
    layer = window.viewer.layer("likelihood")
    assert layer.isVisible() and layer.opacity() == pytest.approx(0.25)
    window.overlay_panel.checks["fills"].setChecked(False)
    assert not window.viewer.layer("fills").isVisible()
    assert window.controller.overlays["fills"].visible is False


def test_clicking_a_cell_selects_its_row_and_a_row_selects_the_cell(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    labels = window.controller.current.result.labels
    y, x = np.argwhere(labels == 2)[3]
    window.viewer.pixel_clicked.emit(int(x), int(y))
    assert window.table.selected_label() == 2
    assert not window.viewer._selection_item.pixmap().isNull()
    click_row(qtbot, window.table, 1)
    assert window.controller.selected_cell == 1
    assert window.table.selected_label() == 1


def click_row(qtbot, table, label, modifier=Qt.KeyboardModifier.NoModifier):
    """A real mouse click on the row of cell ``label``."""
    row = table.cells.row_of_label(label)
    index = table.proxy.mapFromSource(table.cells.index(row, 0))
    centre = table.visualRect(index).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, centre)


def test_cells_selected_together_are_removed_in_one_correction(qtbot, window, images):
    """Ctrl-click in the image or the table selects several cells (outlined together);
    Delete takes them all out in one correction, which one Undo brings back."""
    open_and_run(qtbot, window, images[2:3])  # four cells
    c = window.controller
    labels = c.current.result.labels
    ctrl = Qt.KeyboardModifier.ControlModifier
    y, x = np.argwhere(labels == 1)[5]
    window.viewer.pixel_clicked.emit(int(x), int(y))
    y, x = np.argwhere(labels == 3)[5]
    window.viewer.pixel_ctrl_clicked.emit(int(x), int(y))
    assert c.selected_cells == (1, 3) and window.table.selected_labels() == [1, 3]
    assert window.remove_cell_action.text() == "Remove 2 selected cells"
    assert window.remove_cell_action.iconText() == "Remove cells"  # the toolbar's name
    outlined = qimage_alpha(window.viewer._selection_item.pixmap())
    assert outlined[labels == 1].any() and outlined[labels == 3].any()
    assert not outlined[labels == 2].any()
    click_row(qtbot, window.table, 4, ctrl)  # a row added in the table
    assert c.selected_cells == (1, 3, 4)
    click_row(qtbot, window.table, 1, ctrl)  # ... and one taken out again
    assert c.selected_cells == (3, 4)
    window.viewer.pixel_ctrl_clicked.emit(int(x), int(y))  # cell 3 out, from the image
    assert c.selected_cells == (4,) and window.remove_cell_action.text() == "Remove selected cell"
    window.viewer.pixel_ctrl_clicked.emit(int(x), int(y))
    assert c.selected_cells == (4, 3)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)  # lets go of them
    assert c.selected_cells == () and window.table.selected_labels() == []
    c.select_cells([4, 3])
    before = c.current.result
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.remove_cell_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    after = c.current.result
    assert after.n_cells == 2 and after.previous is before and c.selected_cells == ()
    np.testing.assert_allclose(c.engine.given_centres[-1], np.delete(before.centres, [2, 3], 0))
    assert "cells 3, 4 removed; 2 cells" in window.log_panel.toPlainText()
    window.undo_action.trigger()
    assert c.current.result is before


def test_the_distribution_tab_selects_the_cells_of_a_bar(qtbot, window, images):
    """The Distribution tab shows how a measurement is spread over the cells (area first); a
    click on a bar selects its cells, Ctrl-click adds another bar's, Delete removes them."""
    open_and_run(qtbot, window, images[2:3])  # four squares of one size, unequally bright
    c, view, plot = window.controller, window.histogram, window.histogram.plot
    window.bottom_tabs.setCurrentWidget(view)
    assert view.current_measurement() == "area"  # the fake engine's area
    assert plot.counts.tolist() == [4]  # all of one size: one bar
    view.measurement.setCurrentIndex(view.measurement.findData("mean_intensity"))
    columns = c.current.result.table.columns
    brightness = dict(zip(columns["label"].tolist(), columns["mean_intensity"], strict=True))
    assert plot.counts.sum() == 4 and len(plot.counts) == 20
    dimmest = min(brightness, key=brightness.get)

    def click_bar(k, modifier=Qt.KeyboardModifier.NoModifier):
        qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, modifier, plot.bar_centre(k).toPoint())

    brightest = max(brightness, key=brightness.get)
    click_bar(0)
    assert c.selected_cells == (dimmest,) == tuple(view.cells_in_bin(0))
    assert plot.chosen.tolist() == [1] + [0] * 19  # drawn darker within its bar
    low = brightness[dimmest]
    assert plot.describe_bar(0).startswith(f"{low:.4g} to ") and "1 cell, 1 selected" in (
        plot.describe_bar(0)
    )
    assert "1 selected" in view.summary.text()
    click_bar(19, Qt.KeyboardModifier.ControlModifier)
    assert c.selected_cells == (dimmest, brightest)
    assert window.table.selected_labels() == sorted(c.selected_cells)
    assert "drag across bars" in plot.describe_bar(-1)  # the tooltip away from the bars
    # a drag across bars selects the cells of all of them: here every cell but the dimmest
    qtbot.mousePress(plot, Qt.MouseButton.LeftButton, pos=plot.bar_centre(19).toPoint())
    qtbot.mouseRelease(plot, Qt.MouseButton.LeftButton, pos=plot.bar_centre(1).toPoint())
    assert sorted(c.selected_cells) == sorted(set(brightness) - {dimmest})
    click_bar(0)
    click_bar(19, Qt.KeyboardModifier.ControlModifier)
    assert c.selected_cells == (dimmest, brightest)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.remove_cell_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert c.current.result.n_cells == 2 and plot.counts.sum() == 2  # it follows corrections
    assert view.current_measurement() == "mean_intensity"  # the choice is kept


def test_the_distribution_over_all_images_outlines_the_image_shown(qtbot, window, images, tmp_path):
    """*Cells of: All segmented images* pools the cells of every segmented image (a batch's
    included) into the bars and outlines the image shown over them; a bar clicked selects
    the image shown's cells in it, and the pool follows a correction and a closed image."""
    window.dialogs.folder = str(tmp_path / "results")
    with qtbot.waitSignal(window.controller.batch_finished, timeout=WAIT_MS):
        window.open_paths([images[0].parent])  # 2, 3 and 4 cells, brighter by cell number
    c, view, plot = window.controller, window.histogram, window.histogram.plot
    window.bottom_tabs.setCurrentWidget(view)
    c.set_current(2)
    qtbot.waitUntil(lambda: window.table.model().rowCount() == 4, timeout=WAIT_MS)
    view.measurement.setCurrentIndex(view.measurement.findData("mean_intensity"))
    assert plot.counts.sum() == 4
    qtbot.waitUntil(lambda: view.scope.itemText(1) == "All segmented images (3)", timeout=WAIT_MS)
    view.scope.setCurrentIndex(1)
    pooled = np.concatenate([d.result.table.columns["mean_intensity"] for d in c.documents])
    assert plot.counts.sum() == 9 and plot.shown.sum() == 4 and plot.scale == 9 / 4
    edges = np.linspace(pooled.min(), pooled.max(), 21)
    assert np.allclose(plot.edges, edges)  # bins over every image's cells
    mine = c.current.result.table.columns["mean_intensity"]
    assert (
        plot.shown.tolist()
        == np.bincount(
            np.clip(np.searchsorted(edges, mine, side="right") - 1, 0, 19), minlength=20
        ).tolist()
    )
    assert "9 cells in 3 images" in view.summary.text()
    assert "the image shown (orange outline): 4" in view.summary.text()
    brightest = int(np.argmax(mine)) + 1  # the top bar holds only this image's brightest
    assert "of 3 images, 1 in the image shown" in plot.describe_bar(19)
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=plot.bar_centre(19).toPoint())
    assert c.selected_cells == (brightest,) and plot.chosen[19] == 1
    # the right-click menu copies the bars for a spreadsheet
    rows = [line.split("\t") for line in plot.copy_table().splitlines()]
    assert QGuiApplication.clipboard().text().splitlines()[0] == "\t".join(rows[0])
    assert rows[0] == [
        "mean_intensity from",
        "mean_intensity to",
        "Cells in 3 images",
        "Cells in the image shown",
        "Selected",
    ]
    assert len(rows) == 21 and float(rows[1][0]) == pytest.approx(pooled.min(), rel=1e-5)
    assert [sum(int(r[k]) for r in rows[1:]) for k in (2, 3, 4)] == [9, 4, 1]
    assert rows[20][2:] == ["1", "1", "1"]
    picture = next(a for a in plot.actions() if a.text() == "Copy the plot as a picture")
    picture.trigger()
    assert QGuiApplication.clipboard().image().width() == plot.width()
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.remove_cell_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert plot.counts.sum() == 8 and plot.shown.sum() == 3  # follows the correction
    c.close_images([0])
    qtbot.waitUntil(lambda: plot.counts.sum() == 6, timeout=WAIT_MS)  # ... and a closed image
    qtbot.waitUntil(lambda: view.scope.itemText(1) == "All segmented images (2)", timeout=WAIT_MS)
    # a bar's tooltip names the images with most cells in it; a double-click shows the
    # first of them with those cells selected
    assert "Most in img1.npy (1), img2.npy (1)" in plot.describe_bar(0)
    assert "Double-click: show img1.npy" in plot.describe_bar(0)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.mouseDClick(plot, Qt.MouseButton.LeftButton, pos=plot.bar_centre(0).toPoint())
    qtbot.waitUntil(lambda: c.selected_cells == (1,), timeout=WAIT_MS)
    assert c.current.name == "img1.npy" and view.pooled()
    view.scope.setCurrentIndex(0)
    assert plot.shown is None and plot.counts.sum() == 3


def test_the_pooled_distribution_leaves_out_images_measured_in_other_units(qtbot):
    """Areas in µm² and in pixels do not go into one histogram: images without the chosen
    measurement (no pixel size) are left out of the pool, and the summary says so."""
    from cellprop.app.histogram import HistogramView

    def table(**columns):
        return fakes.CellTable({k: np.asarray(v, float) for k, v in columns.items()})

    shown = table(ObjectNumber=[1, 2], AreaShape_Area_um2=[10.0, 30.0])
    other = table(ObjectNumber=[1, 2, 3], AreaShape_Area_um2=[20.0, 20.0, 50.0])
    in_pixels = table(ObjectNumber=[1], AreaShape_Area=[400.0])
    view = HistogramView()
    qtbot.addWidget(view)
    view.show()
    view.set_pool_source(
        lambda: [(1, "shown.tif", shown), (2, "other.tif", other), (3, "pixels.tif", in_pixels)]
    )
    view.set_table(shown)
    view.scope.setCurrentIndex(1)
    assert view.current_measurement() == "AreaShape_Area_um2"
    assert view.plot.counts.sum() == 5 and view.plot.shown.sum() == 2
    assert view.plot.edges[0] == 10.0 and view.plot.edges[-1] == 50.0
    text = view.summary.text()
    assert "5 cells in 2 images; median 20" in text and "1 without this measurement" in text
    assert view.cells_in_bin(0, 9) == [1]  # the image shown's cells in the lower half
    view.set_table(None)  # an image not segmented yet: the others' cells all the same
    assert view.current_measurement() == "AreaShape_Area_um2" and view.plot.counts.sum() == 5
    assert view.plot.shown.sum() == 0 and "image shown" not in view.summary.text()
    view.set_table(shown)
    # bars of 2 µm²: 20 (twice, other.tif) in bar 5, 30 (shown.tif) in 10, 50 in 19
    assert [view.image_with_most(k) for k in (5, 10, 19, 2)] == [2, 1, 2, None]
    assert view.plot.describe_bar(5).endswith(
        "2 cells of 2 images, 0 in the image shown\nMost in other.tif (2)"
        "\nDouble-click: show other.tif with these cells selected"
    )


def test_the_pooled_distribution_names_pages_of_a_time_lapse():
    from types import SimpleNamespace

    from cellprop.app.main_window import plane_label

    movie = SimpleNamespace(name="movie.tif", results={(0, 0): 1, (3, 0): 2})
    single = SimpleNamespace(name="field.tif", results={(0, 0): 1})
    assert plane_label(movie, (0, 0)) == "movie.tif page 0"
    assert plane_label(movie, (3, 1)) == "movie.tif page 3 channel 1"
    assert plane_label(single, (0, 0)) == "field.tif"


def test_keys_show_and_hide_what_is_drawn_over_the_image(qtbot, window, images):
    """O, C and N switch outlines, cell colours and centres as the settings panel's boxes do
    (the View menu lists them); H hides everything over the image and brings it back,
    leaving the settings as they were."""
    open_and_run(qtbot, window, images[:1])
    c, viewer, panel = window.controller, window.viewer, window.overlay_panel
    window.viewer.setFocus()
    assert c.overlays["outlines"].visible and window.overlay_actions["outlines"].isChecked()
    qtbot.keyClick(viewer, Qt.Key.Key_O)
    assert not c.overlays["outlines"].visible and not viewer.layer("outlines").isVisible()
    assert not panel.checks["outlines"].isChecked()
    assert not window.overlay_actions["outlines"].isChecked()
    panel.checks["outlines"].setChecked(True)  # the box, and the menu item follows
    assert window.overlay_actions["outlines"].isChecked() and viewer.layer("outlines").isVisible()
    shown = {name for name, o in c.overlays.items() if o.visible}
    c.select_cell(1)
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    assert window.hide_overlays_action.isChecked()
    assert not any(viewer.layer(name).isVisible() for name in shown)
    assert not viewer._selection_item.isVisible()
    assert {name for name, o in c.overlays.items() if o.visible} == shown  # settings kept
    viewer.set_marks([(10, 12)])  # centres marked for training and a cell being added too
    viewer.mark_pending(20, 22)
    crosses = viewer._marks[(10.0, 12.0)]
    assert not any(item.isVisible() for item in crosses) and not viewer._pending.isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    assert all(viewer.layer(name).isVisible() for name in shown)
    assert viewer._selection_item.isVisible()
    assert all(item.isVisible() for item in crosses) and viewer._pending.isVisible()
    viewer.set_marks([])
    viewer.clear_pending()
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    qtbot.keyClick(viewer, Qt.Key.Key_C)  # an overlay switched while hidden: all shown again
    assert not window.hide_overlays_action.isChecked()
    assert viewer.layer("outlines").isVisible() and not viewer.layer("fills").isVisible()
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.overlay_actions["centres"] in view_menu.actions()
    assert "Outlines</td><td>&nbsp;&nbsp;<b>O</b>" in window.shortcuts_text()


def test_the_centres_of_thousands_of_cells_are_drawn_without_their_numbers(window):
    """Past MAX_CELL_IDS cells the numbers would hide the image: the dots are drawn alone
    (nothing was drawn, the box ticked)."""
    from cellprop.app.viewer import MAX_CELL_IDS

    viewer = window.viewer
    group = viewer.layer("centres")
    viewer._draw_centres(np.array([[5.0, 6.0], [7.0, 8.0]]))
    assert len(group.childItems()) == 4  # dots and numbers
    many = np.random.default_rng(0).uniform(0, 500, (MAX_CELL_IDS + 1, 2))
    viewer._draw_centres(many)
    assert len(group.childItems()) == MAX_CELL_IDS + 1  # the dots


def test_another_channel_is_drawn_in_colour_over_the_one_shown(qtbot, window, tmp_path):
    """A fluorescent reporter beside phase contrast: *In colour* draws the chosen channel
    over the image, as opaque as it is bright; it follows the pages of a time-lapse, and the
    status bar gives its value under the cursor."""
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 50, (2, 3, 32, 40)).astype(np.uint16)  # 2 pages, 3 channels
    stack[:, 1, 8:16, 10:20] = 4000  # the reporter lights one patch
    stack[1, 1, 20:28, 10:20] = 4000  # ... and another one on the second page
    path = tmp_path / "reporter.npy"
    np.save(path, stack)
    c, panel, viewer = window.controller, window.display_panel, window.viewer
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([path])
    assert panel.colour_channel.isVisibleTo(window) and panel.colour.isVisibleTo(window)
    assert [panel.colour_channel.itemText(k) for k in range(3)] == [
        "none",
        "channel 1",
        "channel 2",
    ]
    assert viewer.colour_layer().pixmap().isNull()
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        panel.colour_channel.setCurrentIndex(1)
    np.testing.assert_array_equal(c.colour_pixels, stack[0, 1])
    drawn = fakes.qimage_rgba(viewer.colour_layer().pixmap())
    assert (drawn[12, 15] == [0, 255, 0, 255]).all()  # the bright patch: solid green
    assert drawn[4, 4, 3] < 16  # the dark background: the image shows through
    assert "channel 1 4000" in c.describe_pixel(15, 12)
    panel.colour.setCurrentText("Magenta")
    assert (fakes.qimage_rgba(viewer.colour_layer().pixmap())[12, 15] == [255, 0, 255, 255]).all()
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            c.step_page(1)  # the next time point: its own reporter image
    np.testing.assert_array_equal(c.colour_pixels, stack[1, 1])
    assert fakes.qimage_rgba(viewer.colour_layer().pixmap())[24, 15, 3] == 255
    # the reporter itself shown: nothing over it; back on channel 0 it comes back
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(1, 1)
    assert c.colour_pixels is None and viewer.colour_layer().pixmap().isNull()
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            c.set_plane(1, 0)
    assert panel.colour_channel.currentData() == 1 and c.colour_pixels is not None
    qtbot.keyClick(viewer, Qt.Key.Key_H)  # hidden with everything else over the image
    assert not viewer.colour_layer().isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    panel.colour_channel.setCurrentIndex(0)
    assert viewer.colour_layer().pixmap().isNull() and c.colour_pixels is None


def test_a_reporter_in_colour_keeps_its_levels_over_time_and_its_brightness_is_chosen(
    qtbot, window, tmp_path
):
    """A reporter that fades over a time-lapse: drawn at the levels of the first page it
    was shown on, its second page's half as bright patch shows half as opaque (each page's
    own contrast would have made it solid again); *Its brightness* draws it brighter or
    fainter, on every page."""
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 50, (2, 2, 32, 40)).astype(np.uint16)
    stack[0, 1, 8:16, 10:20] = 4000
    stack[1, 1, 8:16, 10:20] = 2000  # the reporter fades
    path = tmp_path / "fading.npy"
    np.save(path, stack)
    c, panel, viewer = window.controller, window.display_panel, window.viewer

    def alpha() -> int:
        return int(fakes.qimage_rgba(viewer.colour_layer().pixmap())[12, 15, 3])

    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([path])
    assert not panel.colour_gain.isVisibleTo(window)  # no channel in colour yet
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        panel.colour_channel.setCurrentIndex(1)
    assert panel.colour_gain.isVisibleTo(window) and alpha() == 255
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            c.step_page(1)
    faded = alpha()
    assert 100 < faded < 160  # about half: the first page's levels
    panel.colour_gain.setValue(50)  # twice as bright: the faded patch solid again
    assert alpha() == 255
    panel.colour_gain.setValue(-50)  # half as bright
    assert alpha() < faded * 0.6
    with qtbot.waitSignal(c.colour_ready, timeout=WAIT_MS):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            c.step_page(-1)
    assert 100 < alpha() < 160  # the first page, half as bright too
    # the status bar under a cursor at rest: the colour channel's value of the page shown,
    # once its pixels come (it gave the page before's, until the mouse moved)
    viewer.hovered = (12, 10)
    window._describe_hovered()
    assert "channel 1 4000" in window.pixel_info.text()
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.step_page(1)
    assert "channel 1 4000" not in window.pixel_info.text()  # not the page before's
    qtbot.waitUntil(lambda: "channel 1 2000" in window.pixel_info.text(), timeout=WAIT_MS)
    panel.colour_channel.setCurrentIndex(0)
    assert not panel.colour_gain.isVisibleTo(window)


def test_cells_are_coloured_by_a_measurement_with_the_bars_as_legend(qtbot, window, images):
    """*Colour the cells by it* fills each cell with the viridis colour of its value (a
    measurement map), the Distribution's bars in the same colours; unticked, the cells get
    their own colours back."""
    open_and_run(qtbot, window, images[2:3])  # four squares, unequally bright
    c, view, viewer = window.controller, window.histogram, window.viewer
    window.bottom_tabs.setCurrentWidget(view)
    c.set_overlay("fills", visible=False)
    view.measurement.setCurrentIndex(view.measurement.findData("mean_intensity"))
    own = fakes.qimage_rgba(viewer.layer("fills").pixmap())
    view.colour_cells.setChecked(True)
    assert c.overlays["fills"].visible and view.plot.coloured
    labels = c.current.result.labels
    columns = c.current.result.table.columns
    brightness = dict(zip(columns["label"].tolist(), columns["mean_intensity"], strict=True))
    dimmest, brightest = min(brightness, key=brightness.get), max(brightness, key=brightness.get)
    drawn = fakes.qimage_rgba(viewer.layer("fills").pixmap())
    assert (drawn[labels == dimmest][:, :3] == [68, 1, 84]).all()  # viridis' darkest
    assert (drawn[labels == brightest][:, :3] == [253, 231, 37]).all()  # ... and brightest
    assert (drawn[labels == 0][:, 3] == 0).all()
    view.measurement.setCurrentIndex(view.measurement.findData("area"))  # all one size
    drawn = fakes.qimage_rgba(viewer.layer("fills").pixmap())
    assert len({tuple(p) for p in drawn[labels > 0][:, :3]}) == 1
    view.colour_cells.setChecked(False)
    np.testing.assert_array_equal(fakes.qimage_rgba(viewer.layer("fills").pixmap()), own)


def test_the_view_is_saved_as_a_picture_at_full_resolution(qtbot, window, images, tmp_path):
    """File ▸ Save the view as a picture: the whole image as shown (its contrast, outlines
    over it), one pixel per image pixel whatever the zoom; a name typed without a kind gets
    .png, and an existing file of that name is replaced only if the user agrees; with no
    image shown there is nothing to save, and the action is off."""
    assert not window.save_view_action.isEnabled()
    open_and_run(qtbot, window, images[:1])
    assert window.save_view_action.isEnabled()
    c, viewer = window.controller, window.viewer
    viewer.zoom_by(3.0)  # the zoom does not matter
    window.dialogs.picture_file = str(tmp_path / "figure.png")
    window.save_view_action.trigger()
    assert window.dialogs.picture_offered.endswith("img0_view.png")
    pixels = fakes.qimage_rgba(QImage(str(tmp_path / "figure.png")))
    assert pixels.shape == (64, 64, 4)
    labels = c.current.result.labels
    edge = render.outline_mask(labels)
    assert (pixels[edge][:, :3] == [255, 255, 0]).all()  # the outlines, solid yellow
    grey = render.to_display(c.current.image.pixels, *window._contrast)
    far = ndi.distance_transform_edt(labels == 0) > 3  # background, away from the overlays
    assert (pixels[far][:, 0] == grey[far]).all() and (pixels[far][:, 1] == grey[far]).all()
    window.dialogs.picture_file = str(tmp_path / "figure")  # no kind: .png, exists: asked
    window.dialogs.answers = [False]
    before = (tmp_path / "figure.png").read_bytes()
    window.hide_overlays(True)
    window.save_view_action.trigger()
    assert "figure.png exists. Replace it?" in window.dialogs.questions[-1]
    assert (tmp_path / "figure.png").read_bytes() == before
    window.save_view_action.trigger()  # agreed: the image alone now
    assert (fakes.qimage_rgba(QImage(str(tmp_path / "figure.png")))[..., 0] == grey).all()
    window.close_all_action.trigger()
    assert not window.save_view_action.isEnabled()


def test_a_scale_bar_follows_the_pixel_size_and_is_in_the_picture(qtbot, window, images, tmp_path):
    """B draws a scale bar of a round length at the image's bottom right, at the pixel size
    the cells are measured with (the settings', else the file's); a picture of the view has
    it; an image without a pixel size has none and the status bar says why."""
    c, viewer = window.controller, window.viewer
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:1])  # 64 x 64 pixels of 0.5 µm
    assert not window.scale_bar_action.isChecked() and viewer.scale_bar_label == ""

    def white_in_corner() -> int:
        picture = fakes.qimage_rgba(viewer.picture())
        return int((picture[48:, 32:, :3] == 255).all(axis=-1).sum())

    assert white_in_corner() == 0  # the fake's background is dark
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    assert window.scale_bar_action.isChecked() and c.store.flag("scale_bar")
    assert viewer.scale_bar_label == "5 µm" and viewer.scale_bar_length() == pytest.approx(10)
    assert white_in_corner() >= 2 * 10  # the bar (two pixels thick) and its label
    c.update_settings(pixel_size=0.1)  # typed in the settings: it wins over the file's
    assert viewer.scale_bar_label == "1 µm" and viewer.scale_bar_length() == pytest.approx(10)
    c.update_settings(pixel_size=None)
    assert viewer.scale_bar_label == "5 µm"
    window.hide_overlays(True)
    assert white_in_corner() == 0
    window.hide_overlays(False)

    pages = tmp_path / "pages.npy"  # the fake reads a stack of pages without a pixel size
    np.save(pages, np.stack([np.load(images[0])] * 2))
    window.open_paths([pages])
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(c.index_of(pages))
    assert viewer.scale_bar_label == "" and white_in_corner() == 0
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    assert "no pixel size" in window.statusBar().currentMessage()
    # an image too small for the bar (16 px): none, not one over it, and said so (its box
    # reached past the image's top left, over its cells)
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, np.load(images[0])[:16, :16])
    window.open_paths([tiny])
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(c.index_of(tiny))
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    assert viewer.scale_bar_label == "" and not viewer._scale_bar.childItems()
    assert "too small for one" in window.statusBar().currentMessage()
    qtbot.keyClick(viewer, Qt.Key.Key_B)
    assert not c.store.flag("scale_bar")  # kept off for the next session


def qimage_alpha(pixmap) -> np.ndarray:
    """Where a pixmap is not clear, as a bool array."""
    return fakes.qimage_rgba(pixmap)[..., 3] > 0


def test_table_columns_sort(qtbot, window, images):
    open_and_run(qtbot, window, images[2:3])
    model = window.table.model()
    area_col = window.table.cells.column_names().index("area")
    window.table.sortByColumn(area_col, Qt.SortOrder.DescendingOrder)
    values = [
        float(model.data(model.index(r, area_col), Qt.ItemDataRole.UserRole))
        for r in range(model.rowCount())
    ]
    assert values == sorted(values, reverse=True)


def test_keyboard_shortcuts_are_listed_from_the_windows_actions(window):
    text = window.shortcuts_text()
    for action in (window.run_action, window.add_cells_action, window.close_image_action):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert keys and f"{action.text()}</td><td>&nbsp;&nbsp;<b>{keys}</b>" in text
    assert "Mouse wheel" in text and text.count("<tr>") > 15


def test_the_table_copies_for_a_spreadsheet(qtbot, window, images):
    """Ctrl+C on the table copies the selected cell's row, the right-click menu the whole
    table: tab-separated under the CSV's column names, in the order shown."""
    from PySide6.QtGui import QGuiApplication

    open_and_run(qtbot, window, images[2:3])
    table = window.table
    names = table.cells.column_names()
    area = names.index("area")
    table.sortByColumn(area, Qt.SortOrder.DescendingOrder)
    [copy_row, copy_all] = table.actions()
    copy_all.trigger()
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].split("\t") == names and len(lines) == 1 + table.model().rowCount() == 5
    areas = [float(line.split("\t")[area]) for line in lines[1:]]
    assert areas == sorted(areas, reverse=True)
    window.controller.select_cell(2)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    row = table.cells.row_of_label(2)
    assert lines == ["\t".join(names), "\t".join(table.cells.row_text(row))]
    assert copy_row.text() == "Copy the selected rows" and copy_all.text() == "Copy the whole table"
    window.controller.select_cells([4, 1])  # several rows: in the order shown (by area)
    copy_row.trigger()
    copied = [line.split("\t")[0] for line in QGuiApplication.clipboard().text().splitlines()]
    order = [
        table.cells.row_text(table.proxy.mapToSource(table.proxy.index(r, 0)).row())[0]
        for r in range(table.model().rowCount())
    ]
    assert copied[1:] == [k for k in order if k in ("1", "4")]


def test_the_columns_shown_are_chosen_by_right_click_on_the_headings(qtbot, window, images):
    """The headings' menu hides and shows columns by family and one by one (never the cell's
    number); the choice holds for the next image's table and the next session, Ctrl+C
    copies the columns shown, and an export keeps them all."""
    from cellprop.app.table import column_group
    from PySide6.QtGui import QGuiApplication

    open_and_run(qtbot, window, images[1:3])
    table = window.table
    names = table.cells.column_names()
    menu = table.column_menu()
    [other] = [a.menu() for a in menu.actions() if a.menu() is not None]  # the fakes' columns
    assert other.title() == "Other"
    ticks = {a.toolTip(): a for a in other.actions() if a.isCheckable()}
    assert set(ticks) == set(names) - {"label"} and all(a.isChecked() for a in ticks.values())
    ticks["area"].setChecked(False)
    area = names.index("area")
    assert table.isColumnHidden(area) and not table.isColumnHidden(names.index("label"))
    assert window.controller.store.hidden_columns() == ["area"]
    [copy_row, copy_all] = table.actions()
    copy_all.trigger()
    header = QGuiApplication.clipboard().text().splitlines()[0].split("\t")
    assert header == [n for n in names if n != "area"]
    # the next image's table: the same columns hidden
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.controller.set_current(1)
    with qtbot.waitSignal(window.controller.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    assert table.model().rowCount() == 4  # images[2]'s cells
    assert table.isColumnHidden(table.cells.column_names().index("area"))
    # Hide all of a family, then Show every column
    menu = table.column_menu()
    [other] = [a.menu() for a in menu.actions() if a.menu() is not None]
    [hide_all] = [a for a in other.actions() if a.text() == "Hide all"]
    hide_all.trigger()
    assert table.shown_columns() == [table.cells.column_names().index("label")]
    [every] = [a for a in table.column_menu().actions() if a.text() == "Show every column"]
    every.trigger()
    assert len(table.shown_columns()) == table.cells.columnCount()
    assert window.controller.store.hidden_columns() == []
    # a right-click on the headings opens the menu, and it goes once closed
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMenu

    before = len(table.findChildren(QMenu))
    QTimer.singleShot(100, lambda: QApplication.activePopupWidget().close())
    table._header_menu(QPoint(5, 5))
    qtbot.waitUntil(lambda: len(table.findChildren(QMenu)) == before, timeout=WAIT_MS)
    # families by the engine's names
    assert column_group("AreaShape_Area") == "Shape and position"
    assert column_group("Neighbors_NumberOfNeighbors_Adjacent") == "Neighbours"
    assert column_group("Intensity_MeanIntensity_C1") == "Intensity"
    assert column_group("TrackObjects_Label") == "Over time"


def test_columns_hidden_stay_hidden_when_the_cells_are_measured_otherwise(qtbot):
    """Neighbour columns hidden, then neighbours counted within 5 px (their names end in _5,
    not _Adjacent), or areas measured in um2: still hidden (they all came back); shown
    again by their new names."""
    from cellprop.app.table import CellTableView, column_kind
    from cellprop.engine import measure

    assert column_kind("Neighbors_FirstClosestDistance_Adjacent_um") == (
        "Neighbors_FirstClosestDistance"
    )
    assert column_kind("AreaShape_Area_nm2") == "AreaShape_Area"
    assert column_kind("Intensity_MeanIntensity_C1") == "Intensity_MeanIntensity_C1"
    labels = np.zeros((30, 30), np.int32)
    labels[2:10, 2:10], labels[2:10, 10:18] = 1, 2
    view = CellTableView()
    qtbot.addWidget(view)
    view.set_table(measure(labels))
    view.set_hidden_columns(["Neighbors_NumberOfNeighbors_Adjacent", "AreaShape_Area"])
    view.set_table(measure(labels, pixel_size=0.5, neighbour_distance=5))
    names = view.cells.column_names()
    for name in ("Neighbors_NumberOfNeighbors_5", "AreaShape_Area_um2"):
        assert view.isColumnHidden(names.index(name)), name
    assert not view.isColumnHidden(names.index("AreaShape_Perimeter_um"))
    view._show_columns(["Neighbors_NumberOfNeighbors_5"], True)
    assert not view.isColumnHidden(names.index("Neighbors_NumberOfNeighbors_5"))
    assert view.hidden_columns() == ["AreaShape_Area"]


def test_the_columns_hidden_last_session_are_hidden(qtbot, tmp_path, images):
    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    store.set_hidden_columns(["area", "label"])
    controller = AppController(engine=fakes.FakeEngine(), store=store)
    win = MainWindow(controller, dialogs=ScriptedDialogs())
    qtbot.addWidget(win)
    win.show()
    try:
        open_and_run(qtbot, win, images[:1])
        names = win.table.cells.column_names()
        assert win.table.isColumnHidden(names.index("area"))
        assert not win.table.isColumnHidden(names.index("label"))  # the cell's number shows
    finally:
        controller.shutdown()


def test_pixel_value_and_cell_id_under_the_cursor(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    labels = window.controller.current.result.labels
    y, x = np.argwhere(labels == 1)[0]
    window.viewer.mouse_moved.emit(int(x), int(y))
    assert f"x {x}, y {y}" in window.pixel_info.text()
    assert "cell 1" in window.pixel_info.text()


def test_zoom_fit_and_actual_size(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    window.actual_size_action.trigger()
    assert window.viewer.zoom == pytest.approx(1.0)
    window.zoom_in_action.trigger()
    assert window.viewer.zoom == pytest.approx(1.25)
    window.fit_action.trigger()
    assert window.viewer.zoom > 2  # a 64 px image fills the view


def test_contrast_control_changes_the_displayed_image(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    before = window.viewer._image_item.pixmap().toImage()
    window.display_panel.white.setValue(window.display_panel.white.maximum() // 4)
    after = window.viewer._image_item.pixmap().toImage()
    assert before != after


def test_errors_appear_in_the_banner_and_the_log(qtbot, window, tmp_path):
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"junk")
    with qtbot.waitSignal(window.controller.error, timeout=WAIT_MS):
        window.open_paths([bad])
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    assert "broken.npy" in window.banner.text.text()
    assert "broken.npy" in window.log_panel.toPlainText()
    assert window.controller.documents[0].status == Status.FAILED


def test_dropping_a_model_folder_chooses_that_model(qtbot, window, tmp_path):
    """A model folder (model.json beside its networks, trained here or from a colleague)
    dropped on the window becomes the model in use, shown in the settings panel."""
    folder = tmp_path / "my-hela-model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    c = window.controller
    with qtbot.waitSignal(c.settings_changed, timeout=WAIT_MS):
        window.open_paths([folder])
    assert c.settings.model == str(folder) and c.documents == []
    panel = window.settings_panel
    qtbot.waitUntil(lambda: panel.model.currentData() == str(folder), timeout=WAIT_MS)
    assert panel.model.currentText() == "my-hela-model"
    assert f"Model chosen: the folder {folder}" in window.log_panel.toPlainText()


def test_a_batch_stopped_by_a_full_disk_ends_in_red_saying_why(qtbot, window, images, tmp_path):
    """The disk filled up after the first image: the batch ends with a red message that it
    stopped before its end, why and what was done (it ended with the green "Batch finished:
    1 of 3 images segmented", the disk's error shown for a moment only)."""
    import errno

    c = window.controller
    real = c.engine.process_batch
    out = tmp_path / "results"

    def full_after_one(paths, out_dir, *args, on_result=None, **kwargs):
        def first_only(result):
            on_result(result)
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir))

        return real(paths, out_dir, *args, on_result=first_only, **kwargs)

    c.engine.process_batch = full_after_one
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS) as sig:
        window.ask_batch_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert sig.args[0].stopped and sig.args[0].done == 1
    text = window.banner.text.text()
    assert window.banner.kind == "error" and text.startswith("The batch stopped before its end")
    assert "No space left on device" in text
    assert "1 of 3 images segmented before the run stopped" in text
    assert "Batch finished: 1 of 3" in window.log_panel.toPlainText()


def test_open_images_of_one_name_are_listed_with_their_folders(qtbot, window, tmp_path):
    """A plate's wells, each with its img.npy: the list shows A01/img.npy, B01/img.npy
    (it showed img.npy twice); one of them closed, the other is img.npy again."""
    c = window.controller
    wells = []
    for well in ("A01", "B01"):
        (tmp_path / well).mkdir()
        wells.append(fakes.make_blob_image(tmp_path / well / "img.npy", n_cells=2, seed=1))
    other = fakes.make_blob_image(tmp_path / "other.npy", n_cells=2, seed=2)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([other, wells[0]])
    rows = lambda: [window.documents.item(i).text() for i in range(window.documents.count())]  # noqa: E731
    assert rows() == ["other.npy", "img.npy"]
    window.open_paths([wells[1]])
    assert rows() == ["other.npy", "A01/img.npy", "B01/img.npy"]
    assert c.close_images([1])
    assert rows() == ["other.npy", "img.npy"]


def test_wells_of_one_name_in_two_plates_are_listed_with_as_many_folders_as_tell_them_apart(
    qtbot, window, tmp_path
):
    """plate1/A01/img.npy, plate1/B01/img.npy and plate2/A01/img.npy: the list shows the
    plates too (it showed A01/img.npy twice); plate2's closed, the wells alone again."""
    c = window.controller
    paths = []
    for plate, well in (("plate1", "A01"), ("plate1", "B01"), ("plate2", "A01")):
        (tmp_path / plate / well).mkdir(parents=True)
        paths.append(fakes.make_blob_image(tmp_path / plate / well / "img.npy", n_cells=2))
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(paths[:2])
    rows = lambda: [window.documents.item(i).text() for i in range(window.documents.count())]  # noqa: E731
    assert rows() == ["A01/img.npy", "B01/img.npy"]
    window.open_paths(paths[2:])
    assert rows() == ["plate1/A01/img.npy", "plate1/B01/img.npy", "plate2/A01/img.npy"]
    assert c.close_images([2])
    assert rows() == ["A01/img.npy", "B01/img.npy"]


def test_a_folder_says_which_images_and_files_it_left_out(qtbot, window, tmp_path):
    """A plate's folder with its overview beside its well folders, and a Zeiss file: it
    opens the overview, and says that the wells' images and the .czi were left out, and
    why (it offered "1 image was found" and said nothing of them); a folder of .czi and .nd2
    files only says what they are and what to do (it said only "No images found")."""
    c = window.controller
    plate = tmp_path / "plate"
    for well in ("A01", "B01"):
        (plate / well).mkdir(parents=True)
        fakes.make_blob_image(plate / well / "img.npy", n_cells=2, seed=1)
    fakes.make_blob_image(plate / "overview.npy", n_cells=2, seed=2)
    (plate / "stack.czi").write_bytes(b"ZISRAWFILE")
    window.dialogs.answers = [False]  # (not processed)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([plate])
    log = window.log_panel.toPlainText()
    assert f"1 image found in {plate}" in log
    assert "2 more images in its sub-folders (A01, B01) were not opened" in log
    assert "1 file of a microscope's own format (.czi) was left out" in log
    vendor = tmp_path / "vendor"
    (vendor / "A01").mkdir(parents=True)
    for name in ("a.czi", "A01/b.nd2"):  # (a well's below it too)
        (vendor / name).write_bytes(b"x")
    errors: list = []
    c.error.connect(errors.append)
    window.open_paths([vendor])
    assert errors and f"No images found in the folder {vendor} nor below it." in errors[-1]
    assert "2 files of a microscope's own format (.czi, .nd2) were left out" in errors[-1]
    assert "save them as TIFF" in errors[-1]


def test_dropping_a_folder_offers_a_batch_into_a_chosen_folder(qtbot, window, images, tmp_path):
    images[1].write_bytes(b"corrupt")
    out = tmp_path / "results"
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(window.controller.batch_finished, timeout=WAIT_MS) as sig:
        window.open_paths([images[0].parent])
    assert "3 images" in window.dialogs.questions[0]
    assert (sig.args[0].done, sig.args[0].failed) == (2, 1)
    assert len(list(out.glob("*_labels.tif"))) == 2
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    assert "img1.npy" in window.banner.text.text()
    assert "failed" in window.documents.item(1).text()
    # The message at the end leads to the results.
    qtbot.waitUntil(lambda: "Batch finished" in window.banner.text.text(), timeout=WAIT_MS)
    assert window.banner.kind == "error" and window.banner.action.text() == "Open folder"
    window.banner.action.click()
    assert window.dialogs.opened == [str(out)]


def test_a_folder_dropped_while_a_batch_runs_is_offered_when_it_ends(
    qtbot, window, images, tmp_path
):
    """A second folder dropped while the first one's batch runs: said at once, and its
    batch offered when the first ends (its images were added without a word, and no batch
    was ever offered)."""
    second = tmp_path / "second"
    second.mkdir()
    (second / "other.npy").write_bytes(images[0].read_bytes())
    window.controller.engine.delay = 0.2  # the first batch still runs when the second comes
    window.dialogs.folders = [str(tmp_path / "results1"), str(tmp_path / "results2")]
    with qtbot.waitSignal(window.controller.batch_started, timeout=WAIT_MS):
        window.open_paths([images[0].parent])
    window.open_paths([second])
    qtbot.waitUntil(lambda: "offered when the work under way ends" in window.banner.text.text())
    assert len(window.dialogs.questions) == 1
    qtbot.waitUntil(lambda: len(window.dialogs.questions) == 2, timeout=WAIT_MS)
    assert (
        "1 image was found in" in window.dialogs.questions[1]
        and str(second) in (window.dialogs.questions[1])
    )
    qtbot.waitUntil(lambda: (tmp_path / "results2" / "other_labels.tif").is_file(), timeout=WAIT_MS)


def test_dropping_a_folder_of_well_folders_batches_the_images_below_it(
    qtbot, window, images, tmp_path
):
    plate = tmp_path / "plate"
    for k, well in enumerate(("A01", "A02")):
        (plate / well).mkdir(parents=True)
        (plate / well / "field.npy").write_bytes(images[k].read_bytes())
    window.dialogs.folder = str(tmp_path / "results")
    with qtbot.waitSignal(window.controller.batch_finished, timeout=WAIT_MS) as sig:
        window.open_paths([plate])
    assert "2 images" in window.dialogs.questions[0]
    assert (sig.args[0].total, sig.args[0].done) == (2, 2)
    assert window.controller.images_found_in(plate) == [
        plate / "A01" / "field.npy",
        plate / "A02" / "field.npy",
    ]


def test_a_finished_batch_says_so_and_opens_its_folder(qtbot, window, images, tmp_path):
    out = tmp_path / "results"
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(window.controller.batch_finished, timeout=WAIT_MS):
        window.open_paths([images[0].parent])
    assert window.banner.isVisible() and window.banner.kind == "done"
    assert "3 of 3 images segmented" in window.banner.text.text()
    assert str(out) in window.banner.text.text()
    assert window.banner.action.isVisible()
    window.banner.action.click()
    assert window.dialogs.opened == [str(out)]
    # A later message without anything to open shows no button.
    window._show_error("Open some images first.")
    assert not window.banner.action.isVisible()


def test_images_are_closed_from_the_list_asking_before_work_is_lost(qtbot, window, images):
    """File > Close image takes the image shown out of the list (the next one is shown),
    asking first when its corrections were not exported; Close all goes back to the start."""
    c = window.controller
    open_and_run(qtbot, window, images)  # shows and segments the first
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        assert c.remove_cell(1)  # a correction, not exported
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    window.dialogs.answers = [False]
    window.close_image_action.trigger()
    assert (
        "Closing loses the corrections not exported on 1 image(s)" in window.dialogs.questions[-1]
    )
    assert len(c.documents) == 3 and window.documents.count() == 3  # kept: the user said no
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.close_image_action.trigger()  # yes this time
    assert [d.path for d in c.documents] == images[1:]
    assert [window.documents.item(i).text() for i in range(2)] == ["img1.npy", "img2.npy"]
    assert c.current.path == images[1] and window.documents.currentRow() == 0
    assert window.windowTitle() == "img1.npy — cellprop"
    asked = len(window.dialogs.questions)
    window.close_all_action.trigger()  # nothing unsaved: no question
    assert len(window.dialogs.questions) == asked
    assert c.documents == [] and c.current is None and window.documents.count() == 0
    assert window.stack.currentIndex() == 0 and window.table.model().rowCount() == 0
    assert not window.close_all_action.isEnabled() and not window.run_action.isEnabled()
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:1])  # and the list fills again as before
    assert c.index_of(images[0]) == 0 and window.documents.count() == 1


def test_a_folder_of_exported_results_is_named_so_and_not_kept_as_a_run(qtbot, window, tmp_path):
    """A folder an export wrote (its tables, label images and overlays; no images, no
    run.json): dropped, the window says what it holds (it said no images were there);
    chosen in *Open results*, it is refused and not added to *Open recent*."""
    c = window.controller
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "cells.csv").write_text("Image,ObjectNumber\nimg0.tif,1\n")
    (exported / "img0_cells.csv").write_text("ObjectNumber\n1\n")
    (exported / "img0_labels.tif").write_bytes(b"")
    said: list = []
    c.error.connect(said.append)
    window.open_paths([exported])
    assert len(said) == 1 and "cellprop's results" in said[0] and "Open results" in said[0]
    window.dialogs.folder = str(exported)
    window.ask_open_results()
    qtbot.waitUntil(lambda: len(said) == 2, timeout=WAIT_MS)
    assert "no run.json" in said[1]
    assert c.store.recent() == []
    assert c.documents == []


def test_open_recent_opens_again_what_was_opened(qtbot, window, images, tmp_path):
    """File > Open recent: each opening (a folder, images chosen together) an entry, the
    latest first, kept between sessions; an entry opens what of it is still there and says
    what is not."""
    c = window.controller
    window.dialogs.answers = [False]  # the folder: just open its images
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([images[0].parent])
    window.open_paths(images[1:])
    window.open_paths([tmp_path / "not-there.tif"])  # nothing opened: not recorded
    entries = [[str(images[1]), str(images[2])], [str(images[0].parent)]]
    assert c.store.recent() == entries
    ini = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert SettingsStore(ini).recent() == entries  # there in the next session
    window._fill_recent_menu()
    texts = [a.text() for a in window.recent_menu.actions() if not a.isSeparator()]
    assert texts == [
        f"&1  img1.npy and 1 more  —  {images[0].parent}",
        f"&2  experiment  —  {tmp_path}",
        "Clear the list",
    ]

    # another day: one of the two images gone
    images[2].unlink()
    later = MainWindow(
        AppController(engine=fakes.FakeEngine(), store=c.store), dialogs=window.dialogs
    )
    qtbot.addWidget(later)
    with qtbot.waitSignal(later.controller.image_ready, timeout=WAIT_MS):
        later._fill_recent_menu()  # as when the menu is shown
        later.recent_menu.actions()[0].trigger()
    assert [d.path for d in later.controller.documents] == [images[1]]
    assert f"{images[2]} is no longer there" in later.banner.text.text()
    assert c.store.recent() == [[str(images[1])], [str(images[0].parent)]]
    later._fill_recent_menu()
    later.recent_menu.actions()[-1].trigger()  # Clear the list
    assert c.store.recent() == []
    later._fill_recent_menu()
    assert not later.recent_menu.actions()[0].isEnabled()
    # an entry that cannot be looked at (a name too long; a folder of another user alike):
    # the menu, its other entries and Clear the list are there, and it opens as gone (the
    # menu was left empty and opening it raised, every time)
    unreachable = str(tmp_path / ("x" * 300) / "img.tif")
    c.store.add_recent([unreachable])
    later._fill_recent_menu()
    actions = [a for a in later.recent_menu.actions() if not a.isSeparator()]
    assert [a.text() for a in actions][-1] == "Clear the list" and actions[-1].isEnabled()
    actions[0].trigger()
    assert f"{unreachable} is no longer there" in later.banner.text.text()
    assert c.store.recent() == []
    later.controller.shutdown()


def test_declining_the_batch_just_opens_the_images(qtbot, window, images):
    window.dialogs.answers = [False]
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: bool(window.dialogs.questions), timeout=WAIT_MS)
    assert not window.controller.busy
    assert window.documents.count() == 3


def test_export_asks_before_replacing_files(qtbot, window, images, tmp_path):
    open_and_run(qtbot, window, images[:1])
    out = tmp_path / "export"
    out.mkdir()
    (out / "img0_cells.csv").write_text("keep me")
    window.dialogs.folder = str(out)
    window.dialogs.answers = [False]
    window.export_action.trigger()
    assert "img0_cells.csv" in window.dialogs.questions[-1]
    assert (out / "img0_cells.csv").read_text() == "keep me"
    # Replaced when allowed; the message says where the files went and opens the folder.
    window.dialogs.answers = [True]
    with qtbot.waitSignal(window.controller.exported, timeout=WAIT_MS):
        window.export_action.trigger()
    assert (out / "img0_cells.csv").read_text() != "keep me"
    assert window.banner.kind == "done" and f"Saved 4 files in {out}" in window.banner.text.text()
    window.banner.action.click()
    assert window.dialogs.opened == [str(out)]
    # a correction since: "Saved" is not true of its cells any more, and goes (QA: it stayed)
    c = window.controller
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)  # (the export's job ends after it)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        assert c.remove_cell(1)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert not window.banner.isVisible()
    # another green banner (a model trained, its Use this model) stays (review: it went)
    window._training_finished(True, str(tmp_path / "model"))
    assert "Model trained" in window.banner.text.text()
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        assert c.remove_cell(1)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert window.banner.isVisible() and "Model trained" in window.banner.text.text()


def test_export_offers_the_folder_of_the_run_that_made_the_results(
    qtbot, window, images, tmp_path, monkeypatch
):
    """Results a batch wrote (or opened from its folder): export offers that folder, whose
    tables it brings up to date (it offered the images' folder, where the labels and
    overlays were then taken for images by the next batch); others: the last folder chosen."""
    open_and_run(qtbot, window, images[:1])
    offered = []
    monkeypatch.setattr(
        window.dialogs, "choose_folder", lambda title, start: offered.append(start) or ""
    )
    window.controller.store.set_folder("export", str(tmp_path / "last"))
    window.export_action.trigger()
    c = window.controller
    c.current.result.outputs = {"labels": tmp_path / "run" / "img0_labels.tif"}
    window.export_action.trigger()
    window.export_all_action.trigger()
    assert offered == [str(tmp_path / "last"), str(tmp_path / "run"), str(tmp_path / "run")]
    # Corrected, it has no files yet: it belongs to the run all the same (it offered the
    # images' folder, and the run's files and tables were left as they were).
    ys, xs = np.nonzero(c.current.result.labels == 0)
    assert c.add_cell_at(int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    qtbot.waitUntil(lambda: c.current.result.edits == 1 and not c.busy, timeout=WAIT_MS)
    assert not c.current.result.outputs
    window.export_action.trigger()
    window.export_all_action.trigger()
    assert offered[3:] == [str(tmp_path / "run"), str(tmp_path / "run")]


def test_an_export_of_cells_measured_otherwise_says_so_above_the_image(window, tmp_path):
    """Cells measured with another pixel size than the settings give now, exported: the
    banner says so with the export (it was only in the Log tab)."""
    window.controller.export_note = "1 of the 1 image(s) exported were measured otherwise"
    window._exported([tmp_path / "a_labels.tif"])
    assert window.banner.kind == "hint"
    assert "were measured otherwise" in window.banner.text.text()
    window.controller.export_note = ""
    window._exported([tmp_path / "a_labels.tif"])
    assert window.banner.kind == "done" and "Saved 1 file in" in window.banner.text.text()


def test_about_box_has_version_licence_and_citation(window):
    text = window.about_text()
    assert cellprop.__version__ in text
    assert "GPL-3.0-or-later" in text
    assert "Nishimura" in text and "MICCAI 2019" in text


def test_keys_step_through_images(qtbot, window, images):
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    assert window.next_action.shortcut().toString() == "PgDown"
    window.next_action.trigger()
    assert window.controller.current_index == 1
    assert window.documents.currentRow() == 1
    window.previous_action.trigger()
    assert window.controller.current_index == 0


def test_closing_with_unsaved_results_asks_first(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    window.dialogs.answers = [False]
    assert not window.close()
    assert "not been exported" in window.dialogs.questions[-1]


def test_closing_while_work_runs_says_results_would_be_lost_too(qtbot, window, images):
    """Quitting while another image is segmented, with an image's cells not exported: the
    one question asked says both (it used to ask only whether to stop the work)."""
    open_and_run(qtbot, window, images[:2])
    window.controller.engine.delay = 0.2
    window.next_action.trigger()
    qtbot.waitUntil(lambda: window.controller.current_index == 1, timeout=WAIT_MS)
    window.run_action.trigger()
    assert window.controller.busy
    window.dialogs.answers = [False]
    assert not window.close()
    assert "not been exported" in window.dialogs.questions[-1]
    assert "Work is still running" in window.dialogs.questions[-1]
    window.controller.cancel()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)


def test_settings_panel_shows_model_defaults_and_sends_changes(qtbot, window):
    qtbot.waitUntil(lambda: window.controller.model_status.provider == "CPU", timeout=WAIT_MS)
    panel = window.settings_panel

    def bold(name: str) -> bool:
        return panel.labels[name].font().bold()

    assert panel.threshold.value() == pytest.approx(0.5)
    assert "In use: CPU" in panel.provider.text()
    panel.threshold.setValue(0.7)
    assert window.controller.settings.threshold == pytest.approx(0.7)
    assert panel.labels["threshold"].font().bold()
    panel.reset.click()
    assert window.controller.settings.threshold is None
    assert panel.threshold.value() == pytest.approx(0.5)
    # No diameter of your own: the box shows the model's cell size (16 px for the tiny model).
    assert panel.diameter.value() == 0 and panel.diameter.text() == "16 px"
    panel.diameter.setValue(40.0)
    assert window.controller.settings.diameter == pytest.approx(40.0)
    assert panel.labels["diameter"].font().bold()
    assert panel.estimate.toolTip() and panel.diameter_each_image.toolTip()
    # Measured on each image: the box and its Estimate step aside until unticked.
    panel.diameter_each_image.setChecked(True)
    assert window.controller.settings.diameter_each_image
    assert not panel.diameter.isEnabled() and not panel.estimate.isEnabled()
    panel.diameter_each_image.setChecked(False)
    assert panel.diameter.isEnabled() and panel.estimate.isEnabled()
    assert window.controller.settings.diameter == pytest.approx(40.0)
    # Edge fragments: the model's share in percent until you set yours; 0 keeps every cut cell,
    # and leaving out all edge cells makes the share moot.
    assert panel.edge_fraction.value() == 35 and not panel.labels["edge_fraction"].font().bold()
    assert "Model default: 35 %" in panel.labels["edge_fraction"].toolTip()
    panel.edge_fraction.setValue(0)
    assert window.controller.settings.edge_fraction == 0.0
    assert panel.edge_fraction.text() == "keep all" and panel.labels["edge_fraction"].font().bold()
    assert window.controller.settings.engine_kwargs()["edge_fraction"] == 0.0
    panel.exclude_border.setChecked(True)
    assert not panel.edge_fraction.isEnabled()
    panel.exclude_border.setChecked(False)
    assert panel.edge_fraction.isEnabled()
    # Images at once in a batch: "automatic" shows what it stands for here (the fake: 3).
    assert panel.batch_workers.value() == 0 and panel.batch_workers.text() == "automatic (3)"
    panel.batch_workers.setValue(2)
    assert window.controller.settings.batch_workers == 2
    panel.reset.click()  # not a model default: kept
    assert panel.batch_workers.value() == 2
    panel.batch_workers.setValue(0)
    assert window.controller.settings.batch_workers is None
    # The largest cell: no limit unless you set one; a model default, so the reset clears it.
    assert panel.max_size.text() == "no limit" and not bold("max_size")
    panel.max_size.setValue(4000)
    assert window.controller.settings.engine_kwargs()["max_size"] == 4000 and bold("max_size")
    panel.reset.click()
    assert window.controller.settings.max_size is None and panel.max_size.text() == "no limit"
    # a model that cannot be loaded: its values cannot be told, and the boxes say so (they
    # showed their minimums, a threshold of 0.01, or the last model's values); yours stay
    panel.threshold.setValue(0.7)
    window.controller.update_settings(model=str(Path("/nowhere") / "model"))
    qtbot.waitUntil(lambda: bool(window.controller.model_status.error), timeout=WAIT_MS)
    assert panel.smoothness.text() == panel.min_size.text() == "model's"
    assert panel.threshold.value() == pytest.approx(0.7) and panel.threshold.text() != "model's"
    panel.max_size.setValue(4000)
    panel.reset.click()  # the model's largest cell cannot be told either: not yours left shown
    assert panel.max_size.text() == "model's" and not bold("max_size")
    assert window.controller.settings.max_size is None
    window.controller.update_settings(model="phase")
    qtbot.waitUntil(lambda: window.controller.model_status.provider == "CPU", timeout=WAIT_MS)
    assert panel.smoothness.value() == 20.0 and panel.smoothness.text() != "model's"
    assert panel.min_size.value() == 4 and panel.max_size.text() == "no limit"
    panel.reset.click()

    # Neighbours: the cells touching, those within a distance, or those met when grown (not
    # a model default); the distance shows only where it counts.
    def neighbours(how: str) -> None:
        index = panel.neighbours.findData(how)
        panel.neighbours.setCurrentIndex(index)
        panel.neighbours.activated.emit(index)  # as a click on the item

    assert panel.neighbours.currentText() == "touching"
    assert panel.neighbour_distance.isHidden()
    neighbours("within")
    assert window.controller.settings.engine_kwargs()["neighbour_distance"] == 5  # the default
    assert not panel.neighbour_distance.isHidden() and panel.neighbour_distance.text() == "5 px"
    panel.neighbour_distance.setValue(8)
    assert window.controller.settings.neighbour_distance == 8
    panel.reset.click()
    assert panel.neighbour_distance.value() == 8 and panel.neighbours.currentText() == "within"
    neighbours("expanded")
    assert window.controller.settings.engine_kwargs()["neighbour_distance"] == -1
    assert panel.neighbour_distance.isHidden()
    assert panel.neighbours.currentText() == "expanded until adjacent"
    neighbours("within")  # the distance chosen before comes back
    assert window.controller.settings.neighbour_distance == 8
    neighbours("touching")
    assert window.controller.settings.neighbour_distance == 0
    # A ring around each cell: none unless asked (not a model default either)
    assert panel.ring_width.text() == "none"
    panel.ring_width.setValue(4)
    assert window.controller.settings.engine_kwargs()["ring_width"] == 4
    assert panel.ring_width.text() == "4 px wide"
    panel.reset.click()
    assert panel.ring_width.value() == 4
    panel.ring_width.setValue(0)
    panel.batch_pages.setChecked(True)
    # how cells are followed: only while they are
    assert not panel.track_max_move.isEnabled() and not panel.track_max_gap.isEnabled()
    panel.batch_track.setChecked(True)
    assert window.controller.settings.batch_pages and window.controller.settings.batch_track
    assert panel.track_max_move.isEnabled() and panel.track_max_gap.text() == "up to 1 time point"
    panel.track_max_move.setValue(1.5)
    panel.track_max_gap.setValue(0)
    assert window.controller.settings.batch_tracking == {"max_move": 1.5, "max_gap": 0}
    assert panel.track_max_gap.text() == "none"
    panel.track_max_gap.setValue(3)
    assert panel.track_max_gap.text() == "up to 3 time points"
    panel.reset.click()  # not model defaults either
    assert panel.batch_pages.isChecked() and panel.batch_track.isChecked()
    assert window.controller.settings.batch_tracking == {"max_move": 1.5, "max_gap": 3}
    # The folder channel starts at the model's own (the first for the fake's), in plain type.
    assert panel.batch_channel_index.value() == 0 and not bold("batch_channel_index")
    panel.batch_channel_index.setValue(1)
    assert window.controller.batch_channel == 1 and bold("batch_channel_index")
    panel.batch_channel_index.setValue(0)
    assert window.controller.batch_channel is None  # the first: as runs made before
    assert bold("batch_channel_index")  # yours, although the model's too
    panel.reset.click()  # the channel is the model's again
    assert window.controller.settings.batch_channel_index is None
    assert not bold("batch_channel_index")
    # The model list says what each model is for and what it was measured at.
    tip = panel.model.itemData(panel.model.findData("phase"), Qt.ItemDataRole.ToolTipRole)
    assert tip == "Phase contrast\ncells about 32 px across"
    for widget in (
        panel.threshold,
        panel.diameter,
        panel.smoothness,
        panel.min_size,
        panel.exclude_border,
        panel.edge_fraction,
        panel.pixel_size,
        panel.neighbours,
        panel.neighbour_distance,
        panel.ring_width,
        panel.max_size,
        panel.model,
        panel.device,
        panel.batch_workers,
        panel.batch_pages,
        panel.batch_track,
        panel.track_max_move,
        panel.track_max_gap,
        panel.batch_channel_index,
    ):
        assert widget.toolTip()


def test_format_seconds_reads_like_a_person():
    assert format_seconds(-1) == "estimating time left…"
    assert format_seconds(12) == "about 12 s left"
    assert format_seconds(150) == "about 2 min left"


def test_viewer_click_versus_drag(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    clicks = []
    window.viewer.pixel_clicked.connect(lambda x, y: clicks.append((x, y)))
    centre = window.viewer.viewport().rect().center()
    qtbot.mouseClick(window.viewer.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert len(clicks) == 1
    qtbot.mousePress(window.viewer.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(
        window.viewer.viewport(), Qt.MouseButton.LeftButton, pos=centre + QPoint(30, 0)
    )
    assert len(clicks) == 1
    # a double click is one click: its second press (Qt 6 sends press, release, press,
    # double-click, release) took a training mark just added away again, unsaid
    from PySide6.QtWidgets import QApplication

    viewport = window.viewer.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in [
        (QEvent.Type.MouseButtonPress, left),
        (QEvent.Type.MouseButtonRelease, none),
        (QEvent.Type.MouseButtonPress, left),
        (QEvent.Type.MouseButtonDblClick, left),
        (QEvent.Type.MouseButtonRelease, none),
    ]:
        at = QPointF(centre)
        event = QMouseEvent(
            kind, at, viewport.mapToGlobal(at), left, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewport, event)
    assert len(clicks) == 2
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=centre)  # (and clicks go on)
    assert len(clicks) == 3


def test_batch_into_a_folder_with_files_asks_and_no_starts_nothing(qtbot, window, images, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "cells.csv").write_text("earlier run")
    window.dialogs.folder = str(out)
    window.dialogs.answers = [True, False]  # yes: process the folder; no: do not replace
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.questions) == 2, timeout=WAIT_MS)
    assert f"{out} holds files this batch would replace: cells.csv." in window.dialogs.questions[1]
    assert not window.controller.busy
    assert (out / "cells.csv").read_text() == "earlier run"


def test_a_batch_into_the_images_folder_names_the_users_files_it_would_replace(
    qtbot, window, tmp_path
):
    """Results of a folder's images to be saved into that folder, which holds a mask of the
    user's named as a label image (opened as an image too), an overlay and a table of the
    user's: the question names the overlay and the table, says the overlay was not written
    by cellprop, and that the mask, an image of the batch, is kept (the engine fails the
    image whose labels would go over it: tests/test_cli.py); it said "already contains
    files", naming none. Answered no, nothing starts."""
    c = window.controller
    folder = tmp_path / "exp"
    folder.mkdir()
    images = [fakes.make_blob_image(folder / f"crop{k}.npy", n_cells=3, seed=k) for k in range(2)]
    mask = folder / "crop0_labels.tif"
    with open(mask, "wb") as fh:  # (an image the fake engine reads)
        np.save(fh, np.zeros((64, 64), np.uint8))
    (folder / "crop0_overlay.png").write_bytes(b"a figure of the user's")
    (folder / "crop1_cells.csv").write_text("Class\nmine\n")
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([*images, mask])
    window.dialogs.folder = str(folder)
    window.dialogs.answers = [False]
    asked = len(window.dialogs.questions)
    window.ask_batch_all()
    question = window.dialogs.questions[asked]
    assert f"{folder} holds files this batch would replace: " in question
    assert "crop1_cells.csv" in question and "crop0_overlay.png" in question
    assert "crop0_overlay.png was not written by cellprop" in question
    assert "crop0_labels.tif, among the images to process, is where another image's" in question
    assert not c.busy and (folder / "crop1_cells.csv").read_text() == "Class\nmine\n"
    # a folder of other files, none of which it would replace: nothing to ask
    other = tmp_path / "notes"
    other.mkdir()
    (other / "protocol.txt").write_text("fixed in PFA")
    window.dialogs.folder = str(other)
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        window.ask_batch_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert len(window.dialogs.questions) == asked + 1
    assert (other / "crop1_labels.tif").is_file()


def test_a_batch_over_an_export_names_the_open_images_whose_cells_it_replaces(
    qtbot, window, tmp_path
):
    """day1's images segmented and exported into a folder (the window's record of its
    exports there), then day2's images of the same names processed into it: the question
    before replacing names the other images whose results those are, and the open images
    whose cells are in those files (it said only "already contains files", and what it did
    to them was said only afterwards, in the Log)."""
    c = window.controller
    day1 = []
    for day, cells in (("day1", 2), ("day2", 5)):
        (tmp_path / day).mkdir()
        made = [
            fakes.make_blob_image(tmp_path / day / f"t00{k}.npy", n_cells=cells + k, seed=k)
            for k in range(2)
        ]
        day1 = day1 or made
    open_and_run(qtbot, window, day1)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(1)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    exported = tmp_path / "exported"
    with qtbot.waitSignal(c.exported, timeout=WAIT_MS):
        assert c.export_all(exported, lambda existing: True)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    first = c.documents[0].result
    assert first.outputs["labels"] == exported / "t000_labels.tif"
    window.dialogs.folder = str(exported)
    window.dialogs.answers = [True, False]  # yes: process the folder; no: do not replace
    asked = len(window.dialogs.questions)
    window.open_paths([tmp_path / "day2"])
    qtbot.waitUntil(lambda: len(window.dialogs.questions) == asked + 2, timeout=WAIT_MS)
    question = window.dialogs.questions[-1]
    assert "holds the results of a run of other images: 2 images of the same names" in question
    assert "2 other open images (t000.npy, t001.npy) have cells from files there" in question
    assert not c.busy and c.documents[0].result is first  # answered no: nothing changed


def _stopped_run(window, out, page=None, track=False, **changed):
    """The record a run with the window's model and settings (``changed`` where given;
    ``track``: how it followed the cells) left when it stopped after img0."""
    engine = window.controller.engine
    status = window.controller.model_status
    settings = engine.Settings(**{**window.controller.settings.engine_kwargs(), **changed})
    roi = window.controller.settings.roi_zip
    made = engine.run_record(status, settings, roi, page, None, None, track)
    record = dict(made, state="running")
    out.mkdir()
    (out / "run.json").write_text(json.dumps(record))
    (out / "summary.csv").write_text(
        "Image,Path,Status,Cells\nimg0.npy,x,done,2\nimg1.npy,x,failed,0\n"
    )


def test_a_batch_that_would_be_refused_says_so_before_asking_where_to_save(
    qtbot, window, images, tmp_path
):
    """The smallest cell larger than the largest, or a model that cannot be used: Process
    all says so at once (it asked where to save the results first, and refused only then)."""
    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    errors: list = []
    c.error.connect(errors.append)
    window.dialogs.folders = [str(tmp_path / "results")]
    c.update_settings(min_size=500, max_size=100)
    window.ask_batch_all()
    assert "Nothing was started: the smallest cell (500 px) is larger" in errors[-1]
    c.update_settings(min_size=None, max_size=None)
    c.update_settings(model=str(tmp_path / "gone-model"))  # (moved away: cannot be loaded)
    window.ask_batch_all()
    assert "Nothing was started: the model cannot be used" in errors[-1]
    assert window.dialogs.folders == [str(tmp_path / "results")]  # never asked
    assert not c.busy and not (tmp_path / "results").exists()


def test_a_batch_asked_for_while_another_model_loads_offers_only_what_it_can_do(
    qtbot, window, images, tmp_path
):
    """Another model chosen, and Process all at once into the folder of a run stopped with
    the model before: the question waits for the model, then offers Replace only, saying
    why (it offered Continue, the model not loaded yet to tell, and Continue was then
    refused: "model: phase there, ... now", 0 images segmented)."""
    c = window.controller
    qtbot.waitUntil(lambda: bool(c.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "model.json").write_text("{}")
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    c.update_settings(model=str(other))
    assert c.model_status.loading
    window.dialogs.folder = str(out)
    window.dialogs.choice = ""  # (closed: nothing started)
    window.ask_batch_all()
    assert window.dialogs.offered == [["Replace"]]
    assert "other settings" in window.dialogs.questions[-1]
    assert not c.busy


@pytest.mark.parametrize("choice", ["Continue", "Replace", ""])
def test_batch_into_the_folder_of_a_stopped_run_offers_to_continue_it(
    qtbot, window, images, tmp_path, choice
):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    record = (out / "run.json").read_text()
    window.dialogs.folder = str(out)
    window.dialogs.choice = choice
    window.open_paths([images[0].parent])  # yes: process the folder
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    question = window.dialogs.questions[-1]
    assert "1 of 3 images done" in question and "stopped before its end" in question
    assert "segment the other 2" in question
    assert window.dialogs.offered == [["Continue", "Replace"]]
    engine = window.controller.engine
    if not choice:  # closed: nothing starts, nothing changes
        qtbot.wait(200)
        assert not window.controller.busy and engine.batch_resumed == []
        assert (out / "run.json").read_text() == record
        return
    qtbot.waitUntil(lambda: len(engine.batch_resumed) == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    assert engine.batch_resumed == [choice == "Continue"]


def test_a_run_made_without_following_cells_is_continued_to_follow_them(
    qtbot, window, images, tmp_path
):
    """*Follow cells over time* ticked over a run made without it: continuing it is offered
    (its images kept, then followed), and the batch is started with tracking, as the panel
    says cells move and gaps are closed."""
    from cellprop.engine import TrackSettings

    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    window.controller.update_settings(batch_track=True, track_max_move=1.2, track_max_gap=2)
    window.dialogs.folder = str(out)
    window.dialogs.choice = "Continue"
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    assert window.dialogs.offered == [["Continue", "Replace"]]
    assert "then follow the cells of all of them over time" in window.dialogs.questions[-1]
    engine = window.controller.engine
    qtbot.waitUntil(lambda: len(engine.batch_resumed) == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    assert engine.batch_resumed == [True]
    assert engine.batch_tracked == [TrackSettings(max_move=1.2, max_gap=2)]


def test_a_followed_run_continued_with_another_reach_says_it_follows_the_cells_again(
    qtbot, window, images, tmp_path
):
    """*Cells move* changed since a run that followed its cells: continuing it is offered,
    saying that the cells of all its images will be followed again, and how otherwise."""
    from cellprop.engine import TrackSettings

    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out, track=TrackSettings())
    window.controller.update_settings(batch_track=True, track_max_move=1.2)
    window.dialogs.folder = str(out)
    window.dialogs.choice = "Continue"
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    assert window.dialogs.offered == [["Continue", "Replace"]]
    question = window.dialogs.questions[-1]
    assert (
        "then follow the cells of all of them again (how far a cell may move (cell diameters "
        "a time point): 0.5 there, 1.2 now; links mended by hand kept)"
    ) in question
    assert "over time" not in question  # followed already
    engine = window.controller.engine
    qtbot.waitUntil(lambda: len(engine.batch_resumed) == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    assert engine.batch_tracked == [TrackSettings(max_move=1.2)]


def test_continuing_a_run_over_fewer_images_says_it_keeps_the_others(
    qtbot, window, images, tmp_path
):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    with open(out / "summary.csv", "a") as fh:  # two images of another folder finished too
        fh.write("elsewhere0.npy,x,done,4\nelsewhere1.npy,x,done,3\n")
    window.dialogs.folder = str(out)
    window.dialogs.choice = ""
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    question = window.dialogs.questions[-1]
    assert "1 of 3 images done" in question
    assert "It also finished 2 other images: continued, the run keeps them" in question


def test_a_stopped_run_of_every_page_counts_the_pages(qtbot, window, images, tmp_path):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    np.save(images[0].parent / "movie.npy", np.stack([np.load(images[0])] * 3))
    window.controller.update_settings(batch_pages=True)
    out = tmp_path / "results"
    _stopped_run(window, out, page="all")
    window.dialogs.folder = str(out)
    window.dialogs.choice = "Continue"
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    question = window.dialogs.questions[-1]
    assert "1 of 6 images done" in question and "segment the other 5" in question
    assert window.dialogs.offered == [["Continue", "Replace"]]
    engine = window.controller.engine
    qtbot.waitUntil(lambda: len(engine.batch_resumed) == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)
    movie = window.controller.documents[window.controller.index_of(images[0].parent / "movie.npy")]
    assert sorted(movie.results) == [(0, 0), (1, 0), (2, 0)]


@pytest.mark.parametrize("press", ["Continue", "Replace", "Cancel"])
def test_the_real_question_with_options_answers_the_button_pressed(qtbot, window, press):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen = []

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append([b.text() for b in box.buttons()])
        next(b for b in box.buttons() if b.text().replace("&", "") == press).click()

    QTimer.singleShot(20, click)
    answer = Dialogs(window).choose("Continue the earlier run?", "text", ["Continue", "Replace"])
    assert answer == ("" if press == "Cancel" else press)
    assert sorted(t.replace("&", "") for t in seen[0]) == ["Cancel", "Continue", "Replace"]


@pytest.mark.parametrize("accept", [True, False])
def test_the_real_folder_dialog_takes_the_suggested_results_folder(qtbot, window, tmp_path, accept):
    """Qt's own folder dialog (where the desktop offers none) opened at the results folder
    suggested beside the images, which does not exist yet: choosing it at once gives it
    (it said "Directory not found" every time); cancelled, no folder is left behind."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

    images = tmp_path / "experiment"
    images.mkdir()
    suggested = images / "cellprop-results"
    said = []

    def answer(tries=[accept]):  # noqa: B006 (once: accepted, then given up)
        if said[-1:] == ["answered"]:
            return
        dialog = QApplication.activeModalWidget()
        QTimer.singleShot(20, answer)  # (first: accept() waits for a message box it shows)
        if isinstance(dialog, QMessageBox):  # "Directory not found": said, and closed
            said.append(dialog.text())
            dialog.accept()
        elif isinstance(dialog, QFileDialog):
            dialog.accept() if tries and tries.pop() else dialog.reject()

    QTimer.singleShot(20, answer)
    chosen = Dialogs(window).choose_folder("Where should the results be saved?", str(suggested))
    said.append("answered")  # (no more answers)
    assert said == ["answered"]
    if accept:
        assert Path(chosen) == suggested and suggested.is_dir()
    else:
        assert chosen == "" and not suggested.exists()


def test_a_folder_dialog_opens_where_the_start_folder_cannot_be_looked_at(
    qtbot, window, images, tmp_path, monkeypatch
):
    """The folder last used cannot be looked at (another user's, a name too long): the dialog
    opens all the same (it raised before opening, and again at every try, as the folder kept
    is replaced only by one chosen); so does Process all's, the results' parent kept so."""
    from PySide6.QtWidgets import QFileDialog

    offered = []
    monkeypatch.setattr(
        QFileDialog,
        "getExistingDirectory",
        lambda parent, title, start: offered.append(start) or "",
    )
    unreachable = str(tmp_path / ("x" * 300) / "results")
    assert Dialogs(window).choose_folder("Open a folder", unreachable) == ""
    assert offered == [unreachable]
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:1])
    window.controller.store.set_folder("batch_parent", unreachable)
    window.dialogs.folder = ""  # (the dialog cancelled)
    window.batch_action.trigger()
    assert not window.controller.busy


@pytest.mark.parametrize("language", ["en_US", "de_DE"])
def test_the_number_dialog_reads_either_decimal_mark(qtbot, window, language):
    """The training's cell diameter asked in a number dialog: "27,5" and "27.5" are 27.5
    (Qt's own number dialog gave 275 for "27,5" on an English system, without a word)."""
    from cellprop.app.dialogs import DecimalBox
    from PySide6.QtCore import QLocale, QTimer
    from PySide6.QtWidgets import QApplication, QDialog

    answers = []
    for typed in ("27,5", "27.5"):

        def answer(typed=typed):
            dialog = QApplication.activeModalWidget()
            if not isinstance(dialog, QDialog):
                QTimer.singleShot(20, answer)
                return
            box = dialog.findChild(DecimalBox)
            box.setLocale(QLocale(language))
            box.lineEdit().selectAll()
            qtbot.keyClicks(box.lineEdit(), typed)
            dialog.accept()

        QTimer.singleShot(20, answer)
        answers.append(Dialogs(window).choose_number("Cell diameter", "px", 30.0, 1.0, 500.0))
    assert answers == [27.5, 27.5]


def test_a_run_that_did_every_image_offered_again_says_nothing_would_be_segmented(
    qtbot, window, images, tmp_path
):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    rows = "".join(f"img{k}.npy,x,done,2\n" for k in range(3))
    (out / "summary.csv").write_text("Image,Path,Status,Cells\n" + rows)
    window.dialogs.folder = str(out)
    window.dialogs.choice = ""  # the user closes the question
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    question = window.dialogs.questions[-1]
    assert "keep them all, nothing segmented again" in question
    assert "segment the other 0" not in question


def test_a_cancelled_run_offered_again_says_it_was_cancelled(qtbot, window, images, tmp_path):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(dict(record, state="finished", cancelled=2)))
    window.dialogs.folder = str(out)
    window.dialogs.choice = ""  # the user closes the question
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    assert "It was cancelled before its end." in window.dialogs.questions[-1]


def test_a_stopped_run_made_with_other_settings_can_only_be_replaced(
    qtbot, window, images, tmp_path
):
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out, threshold=0.123)
    window.dialogs.folder = str(out)
    window.dialogs.choice = ""  # the user closes the question
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: len(window.dialogs.offered) == 1, timeout=WAIT_MS)
    assert window.dialogs.offered == [["Replace"]]
    question = window.dialogs.questions[-1]
    assert "detection threshold: 0.123 there" in question and "cannot be continued" in question


def test_open_results_asks_for_the_folder_and_hands_it_to_the_controller(
    window, tmp_path, monkeypatch
):
    opened = []
    monkeypatch.setattr(window.controller, "open_results", opened.append)
    file_menu = window.menuBar().actions()[0].menu()
    assert window.open_results_action in file_menu.actions()
    window.dialogs.folder = ""  # the user closes the folder dialog: nothing happens
    window.open_results_action.trigger()
    window.dialogs.folder = str(tmp_path / "results")
    window.open_results_action.trigger()
    assert opened == [str(tmp_path / "results")]


def test_results_whose_images_moved_ask_for_their_folder(qtbot, window, tmp_path, monkeypatch):
    """The controller found the images of a results folder gone: the window asks whether to
    look for them, then for their folder, and opens the results again with it; no, or no
    folder chosen, opens nothing."""
    opened = []
    monkeypatch.setattr(
        window.controller, "open_results", lambda folder, images=None: opened.append(images)
    )
    gone = [tmp_path / "old" / "t000.tif", tmp_path / "old" / "t001.tif"]
    window.dialogs.answers = [False]
    window.controller.images_missing.emit(str(tmp_path / "results"), gone)
    qtbot.waitUntil(lambda: len(window.dialogs.questions) == 1, timeout=WAIT_MS)
    question = window.dialogs.questions[0]
    assert "2 images of the results" in question and str(tmp_path / "old") in question
    assert opened == []  # no: nothing opened
    window.dialogs.folder = ""
    window.find_moved_images(str(tmp_path / "results"), gone[:1])
    assert "1 image of the results" in window.dialogs.questions[-1] and opened == []
    window.dialogs.folder = str(tmp_path / "new")
    window.find_moved_images(str(tmp_path / "results"), gone)
    assert opened == [str(tmp_path / "new")]


def test_choosing_a_broken_model_folder_says_so_in_the_panel(qtbot, window, tmp_path):
    panel = window.settings_panel
    window.dialogs.folder = str(tmp_path / "not-a-model")
    choose = panel.model.findData("__choose_folder__")
    with qtbot.waitSignal(
        window.controller.model_changed, timeout=WAIT_MS, check_params_cb=lambda s: bool(s.error)
    ):
        panel.model.activated.emit(choose)
    assert window.controller.settings.model == str(tmp_path / "not-a-model")
    assert "not-a-model" in panel.provider.text()
    assert panel.model.currentText() == "not-a-model"


def test_a_file_that_fails_to_open_never_shows_the_previous_picture(
    qtbot, window, images, tmp_path
):
    open_and_run(qtbot, window, images[:1])
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"junk")
    with qtbot.waitSignal(window.controller.error, timeout=WAIT_MS):
        window.open_paths([bad])
        window.controller.set_current(1)
    assert window.viewer._image_item.pixmap().isNull()
    assert window.table.model().rowCount() == 0


def test_add_mode_gets_each_batch_image_ready_once(qtbot, window, images, tmp_path):
    """With *Add cells by clicking* on, an image whose cells a batch made is got ready for
    corrections (the window's memo filled) as it is shown; Cancel stops that without it
    starting again by itself, and turning the mode on again does start it; a click meanwhile
    waits for it and is then corrected."""
    from cellprop.engine import Memo

    c = window.controller
    c.engine.Memo = Memo  # the fake engine ignores a memo, but the window then keeps one
    c._memo = c._new_memo()
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        c.run_batch(images[:2], tmp_path / "results")
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: c.current is not None and c.current.result is not None)
    assert c.current_index == 0 and c.current.result.labels is not None
    c.engine.delay = 0.05  # half a second to get ready: time to cancel and click
    calls = len(c.engine.segment_calls)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_A)  # add mode on
    assert c.busy and c._warming is c.documents[0]
    assert "ready for corrections" in window.progress_text.text()
    ys, xs = np.nonzero(c.current.result.labels == 0)
    assert c.add_cell_at(int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))  # waits for it
    with qtbot.waitSignal(c.error, timeout=WAIT_MS) as said:
        c.cancel()
    assert "1 cell clicked or removed while it was got ready" in said.args[0]
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    qtbot.wait(50)  # what the window does once work has ended
    assert not c.busy and "getting ready for corrections stopped" in window.log_panel.toPlainText()
    assert c.current.result.edits == 0

    # the next image, shown with the mode on, is got ready; a click meanwhile waits
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(1)
    qtbot.waitUntil(lambda: c._warming is c.documents[1], timeout=WAIT_MS)
    labels = c.current.result.labels
    ys, xs = np.nonzero(labels == 0)
    assert c.add_cell_at(int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    assert c.current.result.edits == 0  # it waits
    qtbot.waitUntil(lambda: c.current.result.edits == 1 and not c.busy, timeout=WAIT_MS)
    assert c.current.result.n_cells == int(labels.max()) + 1
    # stopped, got ready, corrected (from its centres, then with the cell added)
    assert len(c.engine.segment_calls) == calls + 4

    # back to the first: shown again it starts afresh (another image was shown meanwhile)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(0)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert c._memo_holds == (c.documents[0], c.documents[0].plane)


def test_cells_are_added_by_clicking_removed_with_delete_and_undone(qtbot, window, images):
    assert not window.add_cells_action.isEnabled()  # nothing to correct yet
    open_and_run(qtbot, window, images[:1])
    c = window.controller
    assert window.add_cells_action.isEnabled() and not window.remove_cell_action.isEnabled()
    assert not window.undo_action.isEnabled()
    ys, xs = np.nonzero(c.current.result.labels == 0)
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_A)  # add mode on
    assert window.add_cells_action.isChecked()
    assert window.viewer.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.viewer.pixel_clicked.emit(x, y)
        assert window.viewer.pending_marks() == 1  # a ring where the cell is being added
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert window.viewer.pending_marks() == 0
    assert c.current.result.n_cells == 3 and c.selected_cell == 3
    assert window.table.model().rowCount() == 3 and "3 cells" in window.cells_summary.text()
    assert window.undo_action.isEnabled() and window.remove_cell_action.isEnabled()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)  # add mode off: clicks select again
    assert not window.add_cells_action.isChecked()
    labels = c.current.result.labels
    yy, xx = np.argwhere(labels == 1)[0]
    window.viewer.pixel_clicked.emit(int(xx), int(yy))
    assert c.selected_cell == 1 and c.current.result.n_cells == 3
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        qtbot.keyClick(window.viewer, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert c.current.result.n_cells == 2 and c.current.result.label_at(int(xx), int(yy)) == 0
    assert window.table.model().rowCount() == 2
    assert not window.redo_action.isEnabled()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert c.current.result.n_cells == 3 and window.table.model().rowCount() == 3
    assert window.redo_action.isEnabled() and window.redo_action.text() == "Redo correction"
    window.viewer.setFocus()
    # the platform's Redo: Ctrl+Shift+Z on a Linux desktop, Ctrl+Y offscreen and on Windows
    redo = window.redo_action.shortcut()
    qtbot.keyClick(window.viewer, redo[0].key(), redo[0].keyboardModifiers())
    assert c.current.result.n_cells == 2 and window.table.model().rowCount() == 2
    assert not window.redo_action.isEnabled()


def test_segmenting_again_or_a_batch_asks_before_replacing_corrections(
    qtbot, window, images, tmp_path
):
    open_and_run(qtbot, window, images[:1])
    c = window.controller
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        assert c.remove_cell(1)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    corrected = c.current.result
    calls = len(c.engine.segment_calls)
    window.dialogs.answers = [False]
    window.run_action.trigger()  # declined: the corrections stay, nothing runs
    assert "corrected the cells of img0.npy" in window.dialogs.questions[-1]
    assert not c.busy and c.current.result is corrected
    assert len(c.engine.segment_calls) == calls
    window.dialogs.answers = [False]
    window.batch_action.trigger()
    assert "1 of these images have cells you corrected" in window.dialogs.questions[-1]
    assert not c.busy and c.current.result is corrected
    # once exported, the corrections are safe in files: no question
    with qtbot.waitSignal(c.exported, timeout=WAIT_MS):
        c.export_current(tmp_path / "saved", lambda existing: False)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    asked = len(window.dialogs.questions)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert len(window.dialogs.questions) == asked and c.current.result.edits == 0


def test_cells_outlined_at_points_from_a_file(qtbot, window, images, tmp_path):
    """Image centres counted in Fiji (Multi-point, Measure) outline those cells only."""
    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[2:])
    assert window.points_action.isEnabled()
    pixels = c.current.image.pixels
    from scipy import ndimage

    blobs, n = ndimage.label(pixels > pixels.mean() + pixels.std())
    centres = ndimage.center_of_mass(blobs > 0, blobs, [1, 3])  # two of the four cells
    table = tmp_path / "Results.csv"
    table.write_text(" ,X,Y\n" + "".join(f"{k},{x},{y}\n" for k, (y, x) in enumerate(centres)))
    window.dialogs.points_file = str(table)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.points_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    result = c.current.result
    assert result.n_cells == 2 and result.edits == 1  # the user's work: protected, unsaved
    np.testing.assert_allclose(c.engine.given_centres[-1], [(x, y) for y, x in centres])
    assert "at the 2 points of Results.csv" in window.log_panel.toPlainText()
    # a file for other images, or with points off the image, changes nothing and says why
    other = tmp_path / "other.csv"
    other.write_text("image,x,y\nsomething-else.tif,3,4\n")
    window.dialogs.points_file = str(other)
    window.points_action.trigger()
    assert "no cell centres for img2.npy" in window.banner.text.text()
    off = tmp_path / "off.csv"
    off.write_text("x,y\n10,10\n500,10\n")
    window.dialogs.points_file = str(off)
    window.points_action.trigger()
    assert "1 of the 2 points for img2.npy lie outside the image (64 x 64 pixels)" in (
        window.banner.text.text()
    )
    assert c.current.result is result and not c.busy
    # with a result there, points are a correction that Undo takes back; a file naming its
    # images by folder (a batch's points for an experiment saved well by well) names this one
    by_path = tmp_path / "wells.csv"
    well = images[2].parent.name
    by_path.write_text(
        "image,x,y\n" + "".join(f"{well}/img2.npy,{x},{y}\n" for y, x in centres[:1])
    )
    window.dialogs.points_file = str(by_path)
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.points_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert c.current.result.previous is result and c.current.result.n_cells == 1


def test_points_of_a_file_that_give_no_cell_are_named(qtbot, window, images, tmp_path):
    """A points file with a point where nothing can be outlined (in the background, the
    smallest cell larger than what it gives): the Log names it, as `segment --points` does,
    when the image is outlined at the points and when they correct its cells (it said
    "16 cells at the 48 points" and nothing of the other 32)."""
    c = window.controller
    c.update_settings(min_size=30)  # the fake's cell in the background has 25 px
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[2:])
    pixels = c.current.image.pixels
    from scipy import ndimage

    blobs, n = ndimage.label(pixels > pixels.mean() + pixels.std())
    (y0, x0), (y1, x1) = ndimage.center_of_mass(blobs > 0, blobs, [1, 3])
    table = tmp_path / "Results.csv"
    table.write_text(f"X,Y\n{x0},{y0}\n60,60\n{x1},{y1}\n")
    window.dialogs.points_file = str(table)
    for k in range(2):  # outlined, then (a result there) a correction
        with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
            window.points_action.trigger()
        qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
        assert c.current.result.n_cells == 2
        log = window.log_panel.toPlainText().splitlines()
        said = [line for line in log if "1 of the 3 points gave no cell (x 60, y 60:" in line]
        assert len(said) == k + 1, log
    assert "gave way" not in window.log_panel.toPlainText()


def test_a_dropped_table_of_centres_outlines_or_marks_cells_as_the_user_chooses(
    qtbot, window, images, tmp_path
):
    """Fiji's Results.csv dropped on the window is not opened as an image: with no image open
    it says what it is; else the user chooses to outline the cells at its points or to mark
    them for training."""
    c = window.controller
    table = tmp_path / "Results.csv"
    table.write_text(" ,X,Y\n1,20.5,30.5\n2,40,12\n")
    window.open_paths([table])
    assert not c.documents and window.dialogs.offered == []
    assert "Results.csv is a table of cell centres, not an image" in window.banner.text.text()
    tabs = tmp_path / "centres.tsv"  # (tab-separated, as read elsewhere: it was opened as
    tabs.write_text("x\ty\n20.5\t30.5\n")  # an image, and failed)
    window.open_paths([tabs])
    assert not c.documents and "centres.tsv is a table of cell centres" in window.banner.text.text()
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[2:])
    window.dialogs.choice = "Mark its centres for training"
    window.open_paths([table])
    assert c.marks() == [(20.5, 30.5), (40.0, 12.0)]
    assert len(c.documents) == 1  # still only the image: the table is not in the list
    window.dialogs.choice = None  # the first option: outline the cells there
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.open_paths([table])
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert window.dialogs.offered[-1] == [
        "Outline the cells at its points in img2.npy",
        "Mark its centres for training",
    ]
    np.testing.assert_allclose(c.engine.given_centres[-1], [(20.5, 30.5), (40, 12)])
    window.dialogs.choice = ""  # the question closed: nothing happens
    edits = c.current.result.edits
    window.open_paths([table])
    assert not c.busy and c.current.result.edits == edits
    assert [str(e[0]) for e in c.store.recent()] == [str(images[2])]
    # dropped together with its image: asked about once the image is there
    window.close_images([0])
    window.dialogs.choice = "Mark its centres for training"
    with qtbot.waitSignal(c.marks_changed, timeout=WAIT_MS):
        window.open_paths([table, images[0]])
    assert c.current.name == "img0.npy" and c.marks() == [(20.5, 30.5), (40.0, 12.0)]


def test_esc_while_a_batch_runs_ends_marking_first_then_cancels(qtbot, window, images, tmp_path):
    """Marking cell centres during a batch (allowed), Esc ends the marking, as the shortcuts
    list says, and the batch goes on (it cancelled the batch at once, marking still on); a
    second Esc cancels it."""
    c = window.controller
    c.engine.delay = 0.05
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    assert c.run_batch(images, tmp_path / "results") and c.busy
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    assert window.mark_action.isChecked()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)
    assert not window.mark_action.isChecked() and c.busy
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS) as sig:
        qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)
    assert sig.args[0].cancelled
    assert "Esc" in window.cancel_action.toolTip()


def test_the_results_of_the_batch_running_are_not_opened_before_it_ends(
    qtbot, window, images, tmp_path
):
    """Open results of the folder the batch running now writes into: said so (it logged
    "Opened the results of 0 images", the run's record still running)."""
    c = window.controller
    c.engine.delay = 0.05
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    out = tmp_path / "results"
    assert c.run_batch(images, out) and c.busy
    errors: list = []
    c.error.connect(errors.append)
    c.open_results(out)
    assert errors and "the batch running now is writing its results there" in errors[-1]
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        c.cancel()
    assert "Opened the results of 0 images" not in window.log_panel.toPlainText()


def test_cell_centres_are_marked_for_training_and_saved_as_a_training_set(
    qtbot, window, images, tmp_path
):
    c = window.controller
    assert not window.mark_action.isEnabled()  # no image shown yet
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:2])  # no segmentation needed to mark
    assert window.mark_action.isEnabled() and not window.mark_detected_action.isEnabled()
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    assert window.mark_action.isChecked()
    assert window.viewer.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    window.viewer.pixel_clicked.emit(10, 10)
    window.viewer.pixel_clicked.emit(30, 12)
    assert window.viewer.marks_drawn() == 2 and c.marks() == [(10.0, 10.0), (30.0, 12.0)]
    assert window.documents.item(0).text() == "img0.npy  ·  2 marked"
    assert "2 centres marked on this image (1 image marked)" in window.statusBar().currentMessage()
    window.viewer.pixel_clicked.emit(30, 12)  # on a mark: taken away
    assert window.viewer.marks_drawn() == 1
    assert window.undo_action.text() == "Undo mark" and window.undo_action.isEnabled()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.viewer.marks_drawn() == 2
    assert window.redo_action.text() == "Redo mark" and window.redo_action.isEnabled()
    window.redo_action.trigger()
    assert window.viewer.marks_drawn() == 1 and not window.redo_action.isEnabled()
    window.undo_action.trigger()
    assert window.viewer.marks_drawn() == 2
    # another image has its own marks; coming back shows these again
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.next_action.trigger()
    assert window.viewer.marks_drawn() == 0
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.previous_action.trigger()
    assert window.viewer.marks_drawn() == 2
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)  # marking off: clicks select again
    assert not window.mark_action.isChecked()
    assert window.undo_action.text() == "Undo correction"
    window.viewer.pixel_clicked.emit(50, 50)
    assert c.marks() == [(10.0, 10.0), (30.0, 12.0)]
    assert window.viewer.marks_drawn() == 2  # still shown

    # quitting with marks not saved asks; declined, the window stays
    window.dialogs.answers = [False]
    window.close()
    assert (
        window.isVisible()
        and "have not been saved as a training set" in (window.dialogs.questions[-1])
    )
    window.dialogs.folder = str(tmp_path / "training")
    with qtbot.waitSignal(c.exported, timeout=WAIT_MS):
        window.save_marks_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert (tmp_path / "training" / "points.csv").read_text().splitlines() == [
        "image,x,y",
        "img0.tif,10,10",
        "img0.tif,30,12",
    ]
    assert c.unsaved_marks() == 0
    # the banner names the training set's folder, the one to train on (it named its images/)
    assert f"in {tmp_path / 'training'}." in window.banner.text.text()


def test_opening_marked_centres_over_unsaved_clicks_asks_first(qtbot, window, images, tmp_path):
    """Centres clicked and not saved, then a points file opened: asked before they are
    replaced (they were replaced unasked, and closing no longer asked either); No keeps
    them, still unsaved."""
    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([images[0]])
    for x in (5, 15, 25):
        c.mark_at(x, 10)
    table = tmp_path / "old.csv"
    table.write_text(f"image,x,y\n{images[0].name},40,40\n")
    window.dialogs.points_file = str(table)
    window.dialogs.answers = [False]
    window.ask_open_marks()
    assert "are not saved. Replace them with those of old.csv?" in window.dialogs.questions[-1]
    assert c.marks() == [(5.0, 10.0), (15.0, 10.0), (25.0, 10.0)] and c.unsaved_marks() == 1
    window.ask_open_marks()  # yes
    assert c.marks() == [(40.0, 40.0)] and c.unsaved_marks() == 0


def test_an_xy_file_of_centres_marks_the_page_shown(qtbot, window, images, tmp_path):
    """A time-lapse's page 2 shown: an x,y file's centres are that page's (they went to page
    0, out of sight, and were not checked against the image)."""
    c = window.controller
    _open_movie(qtbot, window, images)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(2, 0)
    plain = tmp_path / "plain.csv"
    plain.write_text("x,y\n12,14\n")
    window.dialogs.points_file = str(plain)
    window.ask_open_marks()
    assert window.dialogs.questions == []  # nothing clicked there: nothing to ask
    assert c.current.marks == {(2, 0): [(12.0, 14.0)]}
    off = tmp_path / "off.csv"
    off.write_text("x,y\n500,500\n")
    window.dialogs.points_file = str(off)
    window.ask_open_marks()
    assert c.current.marks == {(2, 0): [(12.0, 14.0)]}  # off the page shown: refused


def test_marking_and_adding_cells_take_turns(qtbot, window, images):
    open_and_run(qtbot, window, images[:1])
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    assert window.mark_action.isChecked() and window.mark_detected_action.isEnabled()
    window.mark_detected_action.trigger()
    assert window.viewer.marks_drawn() == window.controller.current.result.n_cells == 2
    qtbot.keyClick(window.viewer, Qt.Key.Key_A)
    assert window.add_cells_action.isChecked() and not window.mark_action.isChecked()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    assert window.mark_action.isChecked() and not window.add_cells_action.isChecked()
    window.clear_marks_action.trigger()
    assert window.viewer.marks_drawn() == 0


# --- training a model from the window ----------------------------------------------------------


def _tiny_training_set(folder: Path) -> Path:
    """Two 96 x 96 images of bright round cells, every centre in points.csv."""
    import tifffile

    (folder / "images").mkdir(parents=True)
    rows, cols = np.mgrid[:96, :96]
    lines = ["image,x,y"]
    rng = np.random.default_rng(0)
    for k in range(2):
        image = rng.normal(100, 5, (96, 96))
        for x, y in [(20, 20), (60, 25), (30, 70), (75, 70)]:
            image += 400 * np.exp(-((cols - x - k) ** 2 + (rows - y) ** 2) / 60.0)
            lines.append(f"img{k}.tif,{x + k},{y}")
        tifffile.imwrite(folder / "images" / f"img{k}.tif", image.astype(np.uint16))
    (folder / "points.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_a_model_is_trained_from_the_window_and_then_used(qtbot, window, tmp_path):
    """File > Train a model runs cellprop-train in a child process (the app does not import
    torch), shows its progress while the window stays usable, and offers the new model."""
    pytest.importorskip("torch")
    c = window.controller
    assert window.train_action.isEnabled(), c.training_unavailable()
    dataset = _tiny_training_set(tmp_path / "my-cells")
    # an image not marked yet: left out, which the Log says as the command line does
    import tifffile

    tifffile.imwrite(dataset / "images" / "unmarked.tif", np.zeros((96, 96), np.uint16))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "notes.txt").write_text("mine")  # a folder of other files
    window.dialogs.folders = [str(dataset), str(tmp_path / "models")]
    window.dialogs.items = ["fluorescence"]  # then the start offered: a new network
    window.dialogs.number = 15  # the blobs' diameter: they lie about 40 px apart
    fractions = []
    c.training_progress.connect(lambda text, f: fractions.append(f))
    # a short run: the window's own call with a few options added
    real = c.train_model
    short = ["--epochs", "2", "--steps", "2", "--crop", "64"]
    c.train_model = lambda d, o, m, options=(): real(d, o, m, [*options, *short])
    with qtbot.waitSignal(c.training_finished, timeout=300_000) as sig:
        window.train_action.trigger()
        assert c.training and not c.busy  # in the background: the window stays usable
        qtbot.waitUntil(lambda: window.training_widgets.isVisible(), timeout=30_000)
        assert not window.train_action.isEnabled()
    ok, folder = sig.args
    assert ok, folder
    assert Path(folder) == tmp_path / "models" / "my-cells-model"  # not strewn among notes.txt
    assert (Path(folder) / "model.json").is_file() and (Path(folder) / "guided.onnx").is_file()
    info = json.loads((Path(folder) / "model.json").read_text())
    assert info["modality"] == "fluorescence"
    # no model is of that kind (the only one is phase): not asked, a new network trained
    assert len(window.dialogs.items_offered) == 1
    assert "started_from" not in info["training"]
    assert window.dialogs.numbers_offered == [0.0]  # no Cell diameter set: the marks' spacing
    # the diameter given sets the working scale (15 px cells about 20 px across) and is kept
    assert info["input"]["scale"] == pytest.approx(1.35)
    assert info["cell_diameter_px"] == pytest.approx(15 * 1.35)
    assert 0.5 in fractions or any(0 < f <= 1 for f in fractions)
    assert not window.training_widgets.isVisible() and window.train_action.isEnabled()
    assert "Model trained" in window.banner.text.text()
    assert "Model trained: " in window.log_panel.toPlainText()
    assert "1 image(s) without cell centres left out: unmarked.tif" in (
        window.log_panel.toPlainText()
    )
    assert window.banner.action.text() == "Use this model"
    window.banner.action.click()
    assert c.settings.model == folder


def test_a_training_from_the_window_may_start_from_a_models_network(qtbot, window, tmp_path):
    """Train a model, images of the kind a model is for: its network is offered first, and
    chosen, the training starts from it (cellprop-train --from its folder) for a shorter run;
    Cancel at that question trains nothing."""
    c = window.controller
    runs = []
    c.training_unavailable = lambda: ""
    c.train_model = lambda d, o, m, options=(): runs.append((m, list(options))) or True
    dataset = _tiny_training_set(tmp_path / "my-cells")
    window.dialogs.folders = [str(dataset), str(tmp_path / "models")] * 2
    window.dialogs.items = ["phase"]  # the kind of the model chosen (phase): it is offered
    window.ask_train_model()
    items, offered = window.dialogs.items_offered[-1]
    assert offered.startswith("The phase model's network") and items[0].startswith("A new")
    assert runs == [("phase", ["--from", str(Path("/models/phase"))])]
    window.dialogs.items = ["phase", ""]  # cancelled at "Start from"
    window.ask_train_model()
    assert len(runs) == 1
    # a model folder of the user's chosen (not among those installed): offered first
    mine = tmp_path / "my-phase-model"
    mine.mkdir()
    c.update_settings(model=str(mine))
    window.dialogs.folders = [str(dataset), str(tmp_path / "models")]
    window.dialogs.items = ["phase"]
    window.ask_train_model()
    items, offered = window.dialogs.items_offered[-1]
    assert offered.startswith("The my-phase-model model's network") and len(items) == 3
    assert runs[-1][1][:2] == ["--from", str(mine)]


def test_training_can_be_stopped_and_says_how_to_go_on(qtbot, window, tmp_path):
    pytest.importorskip("torch")
    c = window.controller
    dataset = _tiny_training_set(tmp_path / "set")
    short = ["--epochs", "500", "--steps", "2", "--batch", "2"]
    # stopped before any epoch ended: nothing to go on with, and it says so
    with qtbot.waitSignal(c.training_progress, timeout=60_000):
        assert c.train_model(dataset, tmp_path / "early", "phase", short)
    with qtbot.waitSignal(c.training_finished, timeout=60_000) as sig:
        window.stop_training_button.click()
    assert sig.args == [False, "training stopped before its first epoch ended: nothing kept"]
    assert not (tmp_path / "early").exists()  # nothing left that would refuse it again
    said = []
    c.training_progress.connect(lambda text, done: said.append(text))
    model = tmp_path / "my model"  # the command to go on with, pasted: its path one word
    assert c.train_model(dataset, model, "phase", short)
    qtbot.waitUntil(lambda: any("epoch 1 of 500 done" in t for t in said), timeout=120_000)
    assert not c.train_model(dataset, tmp_path / "other", "phase")  # one at a time
    with qtbot.waitSignal(c.training_finished, timeout=60_000) as sig:
        window.stop_training_button.click()
    ok, message = sig.args
    assert not ok and "--resume" in message and "training stopped" in message
    assert f"--out {shlex.quote(str(model))} " in message
    assert not c.training and not (model / "model.json").exists()


def test_without_the_training_extra_the_window_says_what_to_install(qtbot, tmp_path, monkeypatch):
    import importlib.util

    from cellprop.app import training_run

    real = importlib.util.find_spec
    monkeypatch.setattr(
        training_run.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    store = SettingsStore(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    controller = AppController(engine=fakes.FakeEngine(), store=store)
    win = MainWindow(controller, dialogs=ScriptedDialogs())
    qtbot.addWidget(win)
    try:
        assert not win.train_action.isEnabled()
        assert 'pip install "torch>=2.2,<=2.13.0"' in win.train_action.toolTip()
        errors = []
        controller.error.connect(errors.append)
        assert not controller.train_model(tmp_path, tmp_path / "m", "phase")
        assert "Training needs PyTorch" in errors[-1]
    finally:
        controller.shutdown()


def test_an_installed_app_says_that_training_is_not_in_it(monkeypatch):
    from cellprop.app import training_run

    monkeypatch.setattr(training_run.sys, "frozen", True, raising=False)
    assert "installed app does not include training" in training_run.training_unavailable()


def test_training_is_not_offered_with_torch_but_no_onnx_and_says_the_pinned_install(
    monkeypatch,
):
    """torch installed and onnx not: the window said training was available, and the
    cellprop-train it started then refused ("training needs onnx"). It says what is missing
    and the install as the train extra pins it (a bare `pip install torch onnx` took the
    newest torch and several GB of CUDA packages)."""
    import importlib.util
    import re

    from cellprop.app import training_run

    from cellprop import TRAIN_INSTALL

    real = importlib.util.find_spec
    monkeypatch.setattr(
        training_run.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnx" else real(name, *a) or object(),
    )
    why = training_run.training_unavailable()
    assert why.startswith("Training needs onnx, which is not installed") and TRAIN_INSTALL in why
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    extra = re.findall(r'"([^"]+)"', re.search(r"^train = \[(.*)\]$", pyproject, re.M)[1])
    assert TRAIN_INSTALL == "pip install " + " ".join(f'"{r}"' for r in extra)


def test_the_pages_of_a_time_lapse_are_stepped_with_fijis_keys(qtbot, window, images):
    """. and , show the next and previous page of a multi-page file (Fiji's keys for the
    slices of a stack); each page keeps its own cells."""
    frames = [np.load(p) for p in images]
    c = window.controller
    _open_movie(qtbot, window, images)
    assert window.next_page_action.isEnabled() and not window.previous_page_action.isEnabled()
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert c.current.result.n_cells == 2
    window.display_panel.contrast_changed.emit(5.0, 900.0)  # the user's own display range
    window.viewer.setFocus()
    for page in (1, 2):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            qtbot.keyClick(window.viewer, Qt.Key.Key_Period)
        assert c.current.page == page and window.display_panel.page.value() == page
        np.testing.assert_array_equal(c.current.image.pixels, frames[page])
        assert window._contrast == (5.0, 900.0)  # kept from page to page
    assert c.current.result is None  # not segmented on this page
    assert not window.next_page_action.isEnabled() and not c.step_page(1)  # the last page
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.keyClick(window.viewer, Qt.Key.Key_Comma)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.keyClick(window.viewer, Qt.Key.Key_Comma)
    assert c.current.page == 0 and c.current.result.n_cells == 2  # its cells kept
    assert not window.previous_page_action.isEnabled()
    window.display_panel.auto.click()  # automatic levels again: they follow each page
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.keyClick(window.viewer, Qt.Key.Key_Period)
    assert window._contrast == render.auto_contrast(frames[1])
    window.display_panel.contrast_changed.emit(5.0, 900.0)
    window.open_paths(images[1:2])
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_current(c.index_of(images[1]))  # another file: its own automatic contrast
    assert window._contrast != (5.0, 900.0)


def test_levels_set_and_the_value_under_the_cursor_follow_the_pages_shown(qtbot, window, images):
    """Stepping to a dimmer page keeps the white level set on a brighter one (the slider,
    cut to this page's brightest pixel, changed it at the next touch), a slider moved moves
    its own level only, and the status bar gives the value under a cursor that has not
    moved on the page shown now (it kept the page before's)."""
    frame = np.load(images[0]).astype(np.float32)
    movie = images[0].parent / "dimming.npy"
    np.save(movie, np.stack([frame, frame / 4]))
    c, panel = window.controller, window.display_panel
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths([movie])
    low = window._contrast[0]
    panel.white.setValue(panel.white.maximum() - 10)  # the user's white level
    white = window._contrast[1]
    assert window._contrast[0] == low  # the black level as it was, to the last digit
    y, x = np.unravel_index(int(np.argmax(frame)), frame.shape)
    window.viewer.hovered = (int(x), int(y))  # the cursor resting on the brightest pixel
    window._describe_hovered()
    before = window.pixel_info.text()
    window.viewer.setFocus()
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.keyClick(window.viewer, Qt.Key.Key_Period)
    assert c.current.page == 1 and window._contrast == (low, white)
    shown = window.pixel_info.text()
    assert shown != before and shown == c.describe_pixel(int(x), int(y))
    panel.black.setValue(panel.black.value() + 1)  # the black level nudged on the dim page
    assert window._contrast[1] == white


def _open_movie(qtbot, window, images) -> Path:
    """The three images as the time points of one file (2, 3 and 4 cells), opened."""
    movie = images[0].parent / "movie.npy"
    np.save(movie, np.stack([np.load(p) for p in images]))
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.open_paths([movie])
    return movie


def _segment_pages(qtbot, window, pages) -> None:
    """Segment these pages of the file shown, one after the other, as Segment on each would."""
    c = window.controller
    for page in pages:
        if c.current.page != page:
            with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
                c.set_plane(page, 0)
        with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
            window.run_action.trigger()
        qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)


def test_a_selected_cell_is_followed_through_its_division(qtbot, window, images):
    """A cell that divides: stepping on, the selection goes to its two daughters, and back
    to her; *Over time* draws the mother's track and her daughters'."""
    c, view = window.controller, window.time_course
    _open_movie(qtbot, window, images)
    _segment_pages(qtbot, window, (0, 1))
    # as a batch that followed them writes it: cell 2 of page 0 (track 2) divides into
    # cells 2 and 3 of page 1 (tracks 3 and 4); cell 1 goes on as track 1
    for page, tracks, parents in ((0, [1, 2], [0, 0]), (1, [1, 3, 4], [1, 2, 2])):
        columns = c.current.results[(page, 0)].table.columns
        columns["TrackObjects_Label"] = np.array(tracks)
        columns["TrackObjects_ParentObjectNumber"] = np.array(parents)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(0, 0)
    view.measurement.setCurrentIndex(view.measurement.findData("area"))
    c.select_cells([2])
    assert c.selected_tracks == {2} and c.selected_lineage() == {2, 3, 4}
    assert {t: p.tolist() for t, (p, _) in view.plot.tracks.items()} == {2: [0], 3: [1], 4: [1]}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(1, 0)
    assert c.selected_cells == (2, 3) and c.selected_tracks == {3, 4}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(0, 0)
    assert c.selected_cells == (2,)
    c.select_cells([1])  # a cell that does not divide: its own track alone
    assert c.selected_lineage() == {1} and list(view.plot.tracks) == [1]


def test_a_selected_cell_missed_at_one_time_point_stays_selected_after_it(qtbot, window, images):
    """A selected cell that the time point after misses (its track goes on after a gap):
    stepping across it, the selection holds the track, *Over time* still draws it, and
    the cell is selected again where it is found; a click of one's own drops it."""
    c, view = window.controller, window.time_course
    _open_movie(qtbot, window, images)
    _segment_pages(qtbot, window, (0, 1, 2))
    # track 2 (cell 2 of page 0) is missed at page 1 and found again at page 2 (cell 3)
    for page, tracks in ((0, [1, 2]), (1, [1, 3, 4]), (2, [1, 5, 2, 6])):
        columns = c.current.results[(page, 0)].table.columns
        columns["TrackObjects_Label"] = np.array(tracks)
        columns["TrackObjects_ParentObjectNumber"] = np.zeros(len(tracks), int)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(0, 0)
    view.measurement.setCurrentIndex(view.measurement.findData("area"))
    c.select_cells([2])
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(1, 0)
    assert c.selected_cells == () and c.selected_tracks == {2}
    assert {t: p.tolist() for t, (p, _) in view.plot.tracks.items()} == {2: [0, 2]}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(2, 0)
    assert c.selected_cells == (3,) and c.selected_tracks == {2}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(1, 0)
    assert c.selected_tracks == {2}
    x, y = np.round(c.current.result.centres[0]).astype(int)  # cell 1, track 1
    c.toggle_cell_at(int(x), int(y))  # Ctrl-click: added to the selection, 2 still held
    assert c.selected_cells == (1,) and c.selected_tracks == {1, 2}
    c.toggle_cell_at(int(x), int(y))  # Ctrl-click again: taken out, 2 still held
    assert c.selected_cells == () and c.selected_tracks == {2}
    c.toggle_cell_at(int(x), int(y))
    c.select_cell(0)  # a click on the background: nothing selected any more
    assert c.selected_tracks == set() and view.plot.tracks == {}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(2, 0)
    assert c.selected_cells == ()


def test_a_bar_double_clicked_selects_its_cells_not_the_tracks_selected_before(
    qtbot, window, images
):
    """Cells followed over time selected on one page, then a bar of the pooled Distribution
    double-clicked that shows another page: the bar's cells are selected there, not the
    cells of the tracks selected before (which came after them and replaced them)."""
    c, view = window.controller, window.histogram
    _open_movie(qtbot, window, images)
    _segment_pages(qtbot, window, (0, 2))
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(0, 0)
    window.bottom_tabs.setCurrentWidget(view)
    view.plot.resize(600, 300)
    view.scope.setCurrentIndex(1)  # All segmented images
    view.measurement.setCurrentIndex(view.measurement.findData("mean_intensity"))
    shows = [
        k
        for k in range(len(view.plot.counts))
        if "show movie.npy page 2" in view.plot.describe_bar(k)
    ]
    bar = shows[0]
    later = c.current.results[(2, 0)].table.columns["mean_intensity"]
    edges = view.plot.edges
    inside = [k + 1 for k, v in enumerate(later) if edges[bar] <= v <= edges[bar + 1]]
    other = next(k for k in range(1, len(later) + 1) if k not in inside)
    # followed: page 0's cell 1 and page 2's cell ``other`` (not in the bar) are track 1
    first = c.current.results[(0, 0)].table
    first.columns["TrackObjects_Label"] = np.arange(1, len(first) + 1)
    tracks = np.arange(2, len(later) + 2)
    tracks[other - 1] = 1
    c.current.results[(2, 0)].table.columns["TrackObjects_Label"] = tracks
    c.select_cells([1])
    assert c.selected_tracks == {1}
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.mouseDClick(
            view.plot, Qt.MouseButton.LeftButton, pos=view.plot.bar_centre(bar).toPoint()
        )
    qtbot.waitUntil(lambda: c.current.page == 2, timeout=WAIT_MS)
    qtbot.wait(50)
    assert list(c.selected_cells) == inside and other not in c.selected_cells


def test_the_cell_count_and_a_measurement_over_the_pages_of_a_time_lapse(qtbot, window, images):
    """*Over time*: the count of cells (or a measurement's median) on each segmented page; a
    page not segmented leaves a gap; a click on a point shows that page."""
    c, view = window.controller, window.time_course
    _open_movie(qtbot, window, images)
    assert view.plot.pages.tolist() == [] and "0 of 3 pages" in view.note.text()
    _segment_pages(qtbot, window, (0, 2))  # page 1 left out
    assert view.plot.pages.tolist() == [0, 2] and view.plot.values.tolist() == [2.0, 4.0]
    assert view.plot.shown == 2 and "2 of 3 pages segmented" in view.note.text()
    assert view.plot.table_text() == "Page\tCells\n0\t2\n2\t4\n"
    view.measurement.setCurrentIndex(view.measurement.findData("area"))
    areas = [float(np.median(c.current.results[(p, 0)].table.columns["area"])) for p in (0, 2)]
    assert view.plot.values.tolist() == areas
    window.bottom_tabs.setCurrentWidget(view)
    view.plot.resize(400, 200)
    point = view.plot.point(0)
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        qtbot.mouseClick(view.plot, Qt.MouseButton.LeftButton, pos=point.toPoint())
    assert c.current.page == 0 and view.plot.shown == 0
    assert view.measurement.currentData() == "area"  # kept while the pages change
    # cells followed over time: a selected cell's track is drawn too, its own areas
    for page in (0, 2):
        table = c.current.results[(page, 0)].table
        table.columns["TrackObjects_Label"] = np.arange(len(table), 0, -1)  # last cell: 1
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        c.set_plane(2, 0)
    c.select_cells([4, 3])  # tracks 1 and 2
    assert c.selected_tracks == {1, 2} and sorted(view.plot.tracks) == [1, 2]
    own = [c.current.results[(p, 0)].table.columns["area"] for p in (0, 2)]
    pages, values = view.plot.tracks[1]
    assert pages.tolist() == [0, 2] and values.tolist() == [own[0][1], own[1][3]]
    assert "2 tracks of the selected cells" in view.note.text()
    lines = view.plot.table_text().splitlines()
    assert lines[0] == "Page\tMedian area\tTrack 1\tTrack 2"
    assert lines[2] == f"2\t{areas[1]:.6g}\t{own[1][3]:.6g}\t{own[1][2]:.6g}"
    high = view.plot.point(int(np.argmax(values)), 1)  # drawn within the plot, on its axis
    assert view.plot._area().top() - 0.5 <= high.y() <= view.plot._area().bottom() + 0.5
    view.measurement.setCurrentIndex(view.measurement.findData(COUNT))
    assert view.plot.tracks == {} and "choose a measurement" in view.note.text()
    c.select_cells([])
    assert view.note.text() == "2 of 3 pages segmented"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays: Linux")
def test_the_window_without_a_display_says_so_instead_of_aborting(tmp_path):
    """cellprop-gui where there is no display (an ssh session without -X): one line saying
    so, exit 2; Qt aborted (134), blaming a missing libxcb-cursor0 that was installed."""
    import subprocess

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    code = "import sys; from cellprop.app.main import main; sys.exit(main([]))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "no display to open a window on" in done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_the_terminal_closes_the_window(tmp_path):
    """cellprop-gui started from a terminal, Ctrl-C there: the window closes (nothing to
    save) and the program ends; it went on, ending only on kill."""
    import signal
    import subprocess

    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # (the test's own settings)
    )
    code = "import sys; from cellprop.app.main import main; print('up', flush=True); sys.exit(main([]))"
    gui = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert gui.stdout.readline().strip() == b"up"
        import time

        time.sleep(4)  # (the window shown, its event loop running)
        gui.send_signal(signal.SIGINT)
        assert gui.wait(timeout=30) == 0
    finally:
        if gui.poll() is None:
            gui.kill()
            gui.wait()


def test_the_folder_of_a_stopped_training_is_chosen_again_as_it_is(tmp_path):
    """The folder of a training that was stopped (its checkpoints, no model yet) chosen
    again for a model: that folder, where the window asks before replacing it (a new
    sub-folder was made in it, the old checkpoints left beside); a folder of other files
    gets a sub-folder, as before."""
    from cellprop.app.training_run import training_folder

    stopped = tmp_path / "stopped_model"
    (stopped / "checkpoints").mkdir(parents=True)
    (stopped / "checkpoints" / "checkpoint.pt").write_bytes(b"x")
    assert training_folder(stopped, tmp_path / "cells") == stopped
    other = tmp_path / "models"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert training_folder(other, tmp_path / "cells") == other / "cells-model"


def test_a_replaced_runs_images_left_in_its_folder_are_named_in_the_log(
    qtbot, window, images, tmp_path, monkeypatch
):
    """Replacing a run of other images leaves their files in the folder, out of the new
    tables: the command line said so, the window said nothing."""
    engine = window.controller.engine
    run = engine.process_batch

    def replacing(*args, **kwargs):
        result = run(*args, **kwargs)
        result.left_over = ["a.png", "b.tif"]  # what the engine finds of the replaced run
        return result

    monkeypatch.setattr(engine, "process_batch", replacing)
    out = tmp_path / "results"
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(window.controller.batch_finished, timeout=WAIT_MS):
        window.open_paths([images[0].parent])
    log = window.log_panel.toPlainText()
    assert (
        f"The files of 2 image(s) the replaced run finished stay in {out} (a.png, b.tif), "
        "not in this run's tables; delete them if they are not wanted"
    ) in log


def test_continuing_a_run_of_more_images_says_which_are_its_own(qtbot, window, images, tmp_path):
    """A run continued over fewer images than it finished keeps the others in its tables: the
    Log said "Batch of 4 images (every page of 3 files)" for 3 files of one page each."""
    qtbot.waitUntil(lambda: bool(window.controller.model_status.path), timeout=WAIT_MS)
    out = tmp_path / "results"
    _stopped_run(window, out)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    other = fakes.make_blob_image(elsewhere / "other.npy", n_cells=2, seed=9)
    with (out / "summary.csv").open("a") as summary:
        summary.write(f"other.npy,{other},done,2\n")
    window.dialogs.folder = str(out)
    window.dialogs.choice = "Continue"
    window.open_paths([images[0].parent])
    qtbot.waitUntil(lambda: "Batch finished" in window.log_panel.toPlainText(), timeout=WAIT_MS)
    log = window.log_panel.toPlainText()
    assert f"Batch of 3 images into {out}, 3 at a time; 1 other image the earlier run " in log
    assert "finished kept in its tables" in log
    assert "every page" not in log


def test_marking_goes_on_from_image_to_image(qtbot, window, images):
    """Marking image after image (Page Down or the next image): the mode went off while the
    next image was being read, and the clicks on it selected cells instead of marking them."""
    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    window.viewer.pixel_clicked.emit(10, 10)
    for k, step in enumerate((window.next_action.trigger, window.next_action.trigger), start=1):
        with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
            step()
        assert c.current_index == k and window.mark_action.isChecked()
        window.viewer.pixel_clicked.emit(20 + k, 20)
        assert c.marks() == [(20.0 + k, 20.0)]
    assert [len(c.marks(d)) for d in c.documents] == [1, 1, 1]
    # An image that cannot be read ends the mode: nothing is shown to mark.
    images[0].write_bytes(b"broken")
    c.documents[0].image = None
    with qtbot.waitSignal(c.error, timeout=WAIT_MS):
        c.set_current(0)
    qtbot.waitUntil(lambda: not window.mark_action.isChecked(), timeout=WAIT_MS)


@pytest.mark.parametrize(
    "last, said",
    [
        ("cellprop-train: interrupted; continue with --resume", "the epochs done are kept"),
        (
            "cellprop-train: interrupted before the first epoch ended: nothing kept, run it "
            "again to start anew",
            "before its first epoch ended: nothing kept",
        ),
    ],
)
def test_a_stopped_training_says_what_cellprop_train_kept(qtbot, tmp_path, last, said):
    """Stopped just after cellprop-train said "epoch 1 of 2", before it had written that
    epoch's checkpoint: the window said the epochs were kept, the command line that nothing
    was. What cellprop-train says last is what the window says."""
    from cellprop.app.training_run import TrainingRun

    run = TrainingRun([tmp_path / "set"], tmp_path / "model", [])
    run._stopping = True  # as stop() leaves it
    for line in ("epoch 1/2: train loss 0.01000", last):
        run._line(line)
    with qtbot.waitSignal(run.finished) as sig:
        run._ended(130, None)
    assert sig.args[0] is False and said in sig.args[1]


def test_a_number_typed_and_not_confirmed_is_the_one_segmented_with(qtbot, window, images):
    """A threshold typed into its box, then Segment on the toolbar (or F5), without Enter or
    Tab: the boxes send their value only when confirmed, and the toolbar takes no focus, so
    the run used the value before while the box showed the one typed."""
    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:1])
    box = window.settings_panel.threshold
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "0.2")
    assert box.text().startswith("0.2") and c.settings.threshold is None  # not sent yet
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    assert c.settings.threshold == pytest.approx(0.2)
    assert c.current.result.settings["threshold"] == pytest.approx(0.2)
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)


@pytest.mark.parametrize("language", ["en_US", "de_DE"])
def test_a_pixel_size_typed_with_either_decimal_mark_is_that_number(qtbot, window, language):
    """0,325 and 0.325 typed as the pixel size (or a diameter) are 0.325 on a computer set to
    English or to German: Qt's box took the other mark for a thousands separator, 325 µm,
    every area 10**6 times too large, said nowhere."""
    from PySide6.QtCore import QLocale

    c, panel = window.controller, window.settings_panel
    for box, name, typed, value in (
        (panel.pixel_size, "pixel_size", ("0,325", "0.325"), 0.325),
        (panel.diameter, "diameter", ("27,5", "27.5"), 27.5),
    ):
        box.setLocale(QLocale(language))
        for text in typed:
            c.update_settings(**{name: None})
            box.setFocus()
            box.lineEdit().selectAll()
            qtbot.keyClicks(box.lineEdit(), text)
            box.interpretText()
            assert getattr(c.settings, name) == pytest.approx(value), (text, language)


@pytest.mark.parametrize("name", ["my-model", "phase"])
def test_a_model_folder_given_relative_is_kept_by_its_whole_path(
    qtbot, window, tmp_path, monkeypatch, name
):
    """`cellprop-gui ./my-model/` from the folder that holds it: the setting was kept as
    "my-model", which the next session, started elsewhere, could not find; and ./phase (a
    fine-tuned copy kept under the shipped model's name) loaded the installed phase."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    c = window.controller
    with qtbot.waitSignal(c.settings_changed, timeout=WAIT_MS):
        window.open_paths([f"./{name}/"])
    assert c.settings.model == str(folder)


def test_images_reported_one_by_one_count_the_pool_once(qtbot, window):
    """A batch or Open results reports each of its images: the count of "All segmented
    images (N)" was made anew at each, from every image open, so that 4,000 images froze the
    window 8.5 s (quadratic). A burst of reports counts them once."""
    view = window.histogram
    calls = []
    pool = view._pool
    view.set_pool_source(lambda: calls.append(1) or pool())
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=WAIT_MS)  # (setting it counts once)
    for _ in range(500):
        view.pool_changed()
    qtbot.wait(400)
    assert len(calls) == 2


def test_a_batchs_progress_is_drawn_at_most_ten_times_a_second_and_ends_right(qtbot, window):
    """Thousands of images arriving fast (kept by an earlier run, or failing) repainted the
    progress bar for each one, 1-3 ms a time: the first figures are drawn at once, those
    arriving within the next tenth of a second only once it ends (the latest of them), and
    the last image's at once."""
    drawn: list = []
    set_value = window.progress.setValue
    window.progress.setValue = lambda v: drawn.append(v) or set_value(v)
    window._batch_started(500)
    for done in range(1, 200):
        window._batch_progress(done, 500, 10.0)
    assert drawn[-1] == 1 and len(drawn) <= 3  # the start's 0, then the first figures
    assert window.progress.value() == 1 and "1 of 500 images" in window.progress_text.text()
    qtbot.waitUntil(lambda: window.progress.value() == 199, timeout=WAIT_MS)
    assert "199 of 500 images" in window.progress_text.text()
    window._batch_progress(200, 500, 9.0)  # within a tenth of a second of the last drawing
    window._batch_progress(500, 500, 0.0)  # the last: drawn at once
    assert window.progress.value() == 500 and window.progress_text.text() == "Batch: finishing…"
    assert 200 not in drawn
    qtbot.wait(250)
    assert window.progress.value() == 500  # nothing older drawn over it after


def test_a_setting_edited_by_hand_out_of_range_is_named_in_the_log_at_start(qtbot, tmp_path):
    """A threshold of 5 typed into the settings file: the default is used (as before), and
    the Log says which entry of which file was not used and why (it fell back in silence)."""
    ini = tmp_path / "settings.ini"
    ini.write_text("[segmentation]\nthreshold=5\nsmoothness=2.5\n")
    store = SettingsStore(QSettings(str(ini), QSettings.Format.IniFormat))
    controller = AppController(engine=fakes.FakeEngine(), store=store)
    win = MainWindow(controller, dialogs=ScriptedDialogs())
    qtbot.addWidget(win)
    try:
        log = win.log_panel.toPlainText()
        assert f"Setting not used: segmentation/threshold = 5 in {ini}: outside 0.01 to 0.99" in log
        assert "smoothness" not in log and controller.settings.smoothness == 2.5
    finally:
        controller.shutdown()


def test_another_runs_open_images_keep_their_cells_when_a_batch_replaces_their_files(
    qtbot, window, tmp_path
):
    """day1's images segmented into results/, then day2's images of the same names saved
    there too, replacing them when asked: day1's images still open held their cells only as
    that run's files (parked), and were read back from files now holding day2's cells,
    drawn over day1's images. The one shown keeps its cells in the window, said to be in no
    file now (Export saves them, quitting asks first); one held only in a file shows no
    cells now (that run's results, which the user agreed to replace); an image of day1
    whose name day2 lacks keeps its file. Both kinds are named in the Log."""
    c = window.controller
    days = {}
    for day, count, cells in (("day1", 3, 2), ("day2", 2, 5)):
        (tmp_path / day).mkdir()
        days[day] = [
            fakes.make_blob_image(tmp_path / day / f"t00{k}.npy", n_cells=cells + k, seed=k)
            for k in range(count)
        ]
    out = tmp_path / "results"
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        window.open_paths([tmp_path / "day1"])
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    day1 = [c.documents[c.index_of(p)] for p in days["day1"]]
    assert c.current is day1[0] and day1[0].result.labels is not None  # shown: held
    assert day1[1].result.labels is None  # parked: only in its file
    shown_cells = day1[0].result.labels.copy()
    said: list = []
    c.log.connect(lambda level, text: said.append((level, text)))
    asked = len(window.dialogs.questions)
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        window.open_paths([tmp_path / "day2"])  # into results/ too; Replace: yes
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    replace = [q for q in window.dialogs.questions[asked:] if "Replace" in q]
    assert len(replace) == 1, replace  # asked once, naming what it does to day1's open images
    assert "1 other open image (t001.npy) show cells read from files there" in replace[0]
    assert "1 other open image (t000.npy) have cells from files there" in replace[0]
    assert not np.array_equal(c.engine.read_labels(out / "t000_labels.tif"), shown_cells)
    assert np.array_equal(day1[0].result.labels, shown_cells)
    assert day1[0].result.labels_file is None and day1[0].result.unsaved_edits
    assert day1[1].result is None and day1[1].results == {}  # no cells of day2's shown
    assert day1[2].result.labels_file == out / "t002_labels.tif"  # not replaced: its own
    assert not day1[2].result.unsaved_edits
    warnings = [text for level, text in said if level == "warning"]
    assert any(
        f"1 other open image (t001.npy) showed cells from files of {out}" in t for t in warnings
    ), warnings
    assert any(
        f"1 other open image (t000.npy) had their cells in files of {out}" in t for t in warnings
    ), warnings
    # quitting asks first, not calling them corrections (none were made); so does
    # segmenting the image again, or processing it in a batch
    assert c.cells_in_no_file(day1) == 1 and c.unexported_corrections(day1) == 0
    assert "in no file now, on 1 image(s)" in c.unsaved_work(range(len(c.documents)))
    window.dialogs.answers = [False]
    window.run_current()
    assert "The cells of t000.npy are in no file now" in window.dialogs.questions[-1]
    assert "You corrected" not in window.dialogs.questions[-1]
    asked, window.dialogs.answers = len(window.dialogs.questions), [False]
    window._start_batch([day1[0].path], tmp_path / "elsewhere")
    assert "1 of these images show cells that are in no file now" in window.dialogs.questions[-1]
    assert "corrected" not in window.dialogs.questions[-1]
    assert len(window.dialogs.questions) == asked + 1 and not c.busy  # answered no


def test_a_batch_replacing_one_page_of_another_runs_file_names_the_page_in_the_log(
    qtbot, window, tmp_path
):
    """day1's movie (every page as an image) and day2's movie of the same name into one
    folder, replaced when asked: the page shown keeps its cells, the other page lets them
    go; the Log names each by its page (it named the file twice, once in each line, so that
    which page lost its cells could not be told)."""
    c = window.controller
    c.update_settings(batch_pages=True)
    for day, seed in (("day1", 1), ("day2", 5)):
        (tmp_path / day).mkdir()
        page = np.load(fakes.make_blob_image(tmp_path / f"{day}.npy", n_cells=3, seed=seed))
        np.save(tmp_path / day / "movie.npy", np.stack([page, page[::-1]]))
    out = tmp_path / "results"
    window.dialogs.folder = str(out)
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        window.open_paths([tmp_path / "day1"])
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    movie = c.current
    assert movie.path == tmp_path / "day1" / "movie.npy" and movie.plane == (0, 0)
    assert sorted(movie.results) == [(0, 0), (1, 0)]
    assert movie.results[(1, 0)].labels is None  # not shown: only in its file
    said: list = []
    c.log.connect(lambda level, text: said.append((level, text)))
    with qtbot.waitSignal(c.batch_finished, timeout=WAIT_MS):
        window.open_paths([tmp_path / "day2"])  # into results/ too; Replace: yes
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    assert sorted(movie.results) == [(0, 0)] and movie.results[(0, 0)].labels_file is None
    warnings = [text for level, text in said if level == "warning"]
    assert any(
        f"1 other open image (movie.npy page 1) showed cells from files of {out}" in t
        for t in warnings
    ), warnings
    assert any(
        f"1 other open image (movie.npy page 0) had their cells in files of {out}" in t
        for t in warnings
    ), warnings


def test_a_long_image_name_keeps_its_status_within_reach_in_the_list(qtbot, window, tmp_path):
    """A microscope's long file name in the image list: its row is the list's width, the name
    shortened in its middle, so its cell count or "failed" at the end stays in sight (rows
    laid out all alike cut it off at the end, with the status). A row is set again only where
    its text, icon or tip changed."""
    names = [f"plate1_well_B0{k}_field_0007_" * 4 + "ch00.npy" for k in range(3)]
    longs = [fakes.make_blob_image(tmp_path / name, seed=k) for k, name in enumerate(names)]
    open_and_run(qtbot, window, longs)  # every name long, the first too (QA: so it failed)
    rows = window.documents
    rows.resize(240, 300)
    qtbot.wait(50)
    assert rows.horizontalScrollBar().maximum() == 0  # nothing out of sight sideways
    item = rows.item(0)
    assert item.text().endswith(" cells")
    room = rows.visualItemRect(item).width() - rows.iconSize().width() - 12
    assert 0 < room <= rows.viewport().width()
    shown = rows.fontMetrics().elidedText(item.text(), rows.textElideMode(), room)
    assert shown != item.text() and shown.startswith("plate1_") and shown.endswith(" cells")
    changed: list = []
    rows.model().dataChanged.connect(lambda *args: changed.append(args))
    rows.update_row(0)  # as it is: nothing set again
    assert changed == []
    # With centres marked too (QA: the row read "plate1_well_B03_…lls · 3 marked", the cell
    # count cut out of its middle): only the name is shortened, whatever the width
    from PySide6.QtWidgets import QStyleOptionViewItem

    for xy in ((10, 10), (20, 20), (30, 30)):
        assert window.controller.mark_at(*xy) == "added"
    assert item.text().endswith(" cells  ·  3 marked")
    for width in (150, 240, 400):
        rows.resize(width, 300)
        qtbot.wait(20)
        option = QStyleOptionViewItem()
        option.initFrom(rows.viewport())
        option.rect = rows.visualItemRect(item)
        rows.itemDelegate().initStyleOption(option, rows.indexFromItem(item))
        assert option.text.startswith("p") and option.text.endswith(" cells  ·  3 marked")
        assert "…" in option.text or "..." in option.text


def test_typing_the_number_shown_as_cell_before_across_a_gap_links_to_the_time_point_before(qtbot):
    """A cell whose gap was closed shows the cell it was two time points back (Time Points
    Back 2) as Cell Before; typing that number, a cell of the time point before as the column
    means, is a link to make (it was dropped as no change, unsaid). Where the number shown is
    of the time point before, typing it again changes nothing."""
    from types import SimpleNamespace

    from cellprop.app.table import CELL_BEFORE, CellTableModel

    model = CellTableModel()
    model.set_table(
        SimpleNamespace(
            columns={
                "ObjectNumber": np.array([1, 2]),
                CELL_BEFORE: np.array([3, 4]),
                "TrackObjects_GapLength": np.array([2, 1]),
            }
        )
    )
    model.set_editable(CELL_BEFORE)
    typed: list = []
    model.edited.connect(lambda label, number: typed.append((label, number)))
    model.setData(model.index(0, 1), 3)  # across the gap: a link to make
    model.setData(model.index(1, 1), 4)  # the time point before's already
    model.setData(model.index(1, 1), 5)
    assert typed == [(1, 3), (2, 5)]


def test_large_measurements_show_whole_in_the_table():
    """The table showed an integrated intensity of 96873 as 9.687e+04; large values whole,
    others to four significant digits, no number as nothing."""
    from cellprop.app.table import shown_number

    assert shown_number(96873.4) == "96873" and shown_number(145257.0) == "145257"
    assert shown_number(1234.56) == "1235" and shown_number(0.123456) == "0.1235"
    assert shown_number(float("nan")) == "" and shown_number(3e-7) == "3e-07"


def test_zoom_in_on_an_image_fitted_past_the_largest_zoom_goes_on_in(qtbot, window, tmp_path):
    """A 5 x 5 image fitted to the window (over 64x): Zoom in zoomed out to 64x."""
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, np.arange(25, dtype=np.uint16).reshape(5, 5))
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.open_paths([tiny])
    window.resize(900, 700)
    window.viewer.fit()
    fitted = window.viewer.zoom
    assert fitted > 64
    window.viewer.zoom_by(1.25)
    assert window.viewer.zoom >= fitted


def test_zoom_out_on_a_strip_fitted_under_the_smallest_zoom_goes_on_out(qtbot, window, tmp_path):
    """A 60,000 x 100 strip fitted to the window (under 2%): the wheel's zoom out zoomed in
    to 2%."""
    strip = tmp_path / "strip.npy"
    np.save(strip, np.tile(np.arange(100, dtype=np.uint16), (100, 600)))
    with qtbot.waitSignal(window.controller.image_ready, timeout=WAIT_MS):
        window.open_paths([strip])
    window.resize(900, 700)
    window.viewer.fit()
    fitted = window.viewer.zoom
    assert fitted < 0.02
    window.viewer.zoom_by(1 / 1.25)
    assert window.viewer.zoom <= fitted


def test_redo_answers_every_key_the_platform_gives_it(window):
    """Redo on Ctrl+Shift+Z too, as the README says (only the first of the platform's keys,
    Ctrl+Y, was bound)."""
    from PySide6.QtGui import QKeySequence

    keys = [k.toString() for k in window.redo_action.shortcuts()]
    assert set(keys) >= {
        k.toString() for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
    }
    assert len(keys) >= 2
    assert "Ctrl+Shift+Z" in window.shortcuts_text() and "Ctrl+Y" in window.shortcuts_text()


def test_a_box_showing_the_models_value_steps_from_it_and_the_wheel_needs_focus(qtbot, window):
    """The cell diameter shows the model's size ("32 px" at the box's lowest value): one
    step up makes it 33, not 1 px; the folder images' "automatic (3)" steps to 4, not 1.
    A wheel turned over a box without the keyboard's focus changes nothing (scrolling the
    panel made Largest cell 100 px, unnoticed)."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    panel, c = window.settings_panel, window.controller
    qtbot.waitUntil(lambda: panel.diameter.shown_at_minimum is not None, timeout=WAIT_MS)
    shown = panel.diameter.shown_at_minimum
    assert c.settings.diameter is None and panel.diameter.text() == f"{shown:.0f} px"
    panel.diameter.stepBy(1)
    assert c.settings.diameter == shown + 1
    panel.batch_workers.stepBy(1)
    assert c.settings.batch_workers == c.engine.auto_workers() + 1
    window.viewer.setFocus()
    for box in (panel.max_size, panel.threshold, panel.pixel_size):
        before = (c.settings.max_size, c.settings.threshold, c.settings.pixel_size)
        at = QPointF(box.width() / 2, box.height() / 2)
        wheel = QWheelEvent(
            at,
            box.mapToGlobal(at),
            QPoint(),
            QPoint(0, 120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(box, wheel)
        assert (c.settings.max_size, c.settings.threshold, c.settings.pixel_size) == before


def test_ctrl_c_on_the_image_copies_the_rows_of_the_cells_chosen_there(qtbot, window, images):
    """A cell clicked in the image, then Ctrl+C with the image's focus: its row is copied, as
    from the table (Ctrl+C worked only with the table's focus)."""
    from PySide6.QtWidgets import QApplication

    c = window.controller
    with qtbot.waitSignal(c.image_ready, timeout=WAIT_MS):
        window.open_paths(images[:1])
    with qtbot.waitSignal(c.result_ready, timeout=WAIT_MS):
        window.run_action.trigger()
    qtbot.waitUntil(lambda: not c.busy, timeout=WAIT_MS)
    c.select_cell(1)
    QApplication.clipboard().setText("nothing")
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    text = QApplication.clipboard().text().splitlines()
    assert len(text) == 2 and text[1].split("\t")[0] == "1", text
