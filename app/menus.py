"""The main window's commands: every action (its name, key and tip), the menus and the
toolbar that hold them, set up on the window the way Qt Designer's ``setupUi`` does. The
slots are the window's and the controller's; what they do is decided there."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from .panels import OVERLAY_TIPS
from .state import OVERLAY_NAMES, OVERLAY_TITLES

#: Keys that show or hide an overlay (the others are in the View menu without one).
OVERLAY_KEYS = {"fills": "C", "outlines": "O", "centres": "N", "tracks": "T"}


def add_action(window: QMainWindow, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    """A command of the window: its name, what it does, its key and its tip (the status bar
    shows the tip too); the window answers its key wherever the focus is."""
    action = QAction(text, window)
    if isinstance(shortcut, QKeySequence.StandardKey):
        # every key the platform gives it (Redo: Ctrl+Y and Ctrl+Shift+Z), not the first only
        action.setShortcuts(shortcut)
    elif shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    # first, a number typed into a settings box and not confirmed: every command sees it
    action.triggered.connect(lambda *_: _take_typed(window))
    action.triggered.connect(slot)
    window.addAction(action)
    return action


def _take_typed(window) -> None:
    panel = getattr(window, "settings_panel", None)
    if panel is not None:
        panel.take_typed()


def _fill(target, *actions) -> None:
    """Put ``actions`` into a menu or toolbar in order, a separator for each None."""
    for action in actions:
        target.addSeparator() if action is None else target.addAction(action)


def build_actions(window) -> None:
    """Every action of ``window`` (a :class:`~.main_window.MainWindow`), as attributes of it
    (``window.run_action``, ...), and the menus and toolbar that hold them."""
    c = window.controller
    window.open_files_action = add_action(
        window,
        "Open images…",
        window.ask_open_files,
        QKeySequence.StandardKey.Open,
        "Open one or more image files",
    )
    window.open_folder_action = add_action(
        window,
        "Open folder…",
        window.ask_open_folder,
        "Ctrl+Shift+O",
        "Open every image in a folder",
    )
    window.open_results_action = add_action(
        window,
        "Open results…",
        window.ask_open_results,
        "Ctrl+Shift+R",
        "Open the images of an earlier run (Process all, or cellprop segment) with their "
        "cells, read from its result folder: look, correct and export without segmenting "
        "again",
    )
    window.run_action = add_action(
        window, "Segment", window.run_current, "F5", "Find and outline the cells in this image (F5)"
    )
    # (Esc is the window's own key while work runs: it first ends a click mode, or lets go
    # of the cells selected, as it says; MainWindow._escape)
    window.cancel_action = add_action(
        window, "Cancel", c.cancel, None, "Stop the work in progress (Esc)"
    )
    window.batch_action = add_action(
        window,
        "Process all…",
        window.ask_batch_all,
        "Ctrl+B",
        "Segment every open image and save the results in a folder you choose",
    )
    window.export_action = add_action(
        window,
        "Export…",
        window.ask_export_current,
        "Ctrl+E",
        "Save this image's outlines, labels, overlay and cell table (CSV)",
    )
    window.export_all_action = add_action(
        window,
        "Export all…",
        window.ask_export_all,
        "Ctrl+Shift+E",
        "Save the results of every segmented image",
    )
    window.save_view_action = add_action(
        window,
        "Save the view as a picture…",
        window.ask_save_view,
        "Ctrl+Shift+S",
        "The whole image as it is shown, with what is drawn over it (contrast, outlines, "
        "colours, another channel), at full resolution: for a figure or a slide",
    )
    window.suggest_action = add_action(
        window,
        "Suggest a model",
        c.suggest_model,
        None,
        "Switch to the installed model that suits this image (phase contrast, DIC, fluorescence)",
    )
    window.estimate_action = add_action(
        window,
        "Estimate cell diameter",
        c.estimate_diameter,
        None,
        "Measure the typical cell diameter in this image with the chosen model and use it "
        "(for images taken at another magnification than the model's)",
    )
    window.measure_again_action = add_action(
        window,
        "Measure the cells again",
        c.measure_again,
        None,
        "Measure the cells of every segmented image again with the pixel size and neighbours "
        "the settings give now, their outlines and corrections as they are (nothing is "
        "segmented again; Export writes them)",
    )
    window.next_action = add_action(
        window, "Next image", c.next_image, "PgDown", "Show the next image in the list (Page Down)"
    )
    window.previous_action = add_action(
        window,
        "Previous image",
        c.previous_image,
        "PgUp",
        "Show the previous image in the list (Page Up)",
    )
    # Fiji's keys for the next and previous slice of a stack
    window.next_page_action = add_action(
        window,
        "Next page",
        lambda: c.step_page(1),
        ".",
        "Show the next page of a multi-page file: the next time point or slice; of a "
        "folder's images followed over time, the next time point's (.)",
    )
    window.previous_page_action = add_action(
        window,
        "Previous page",
        lambda: c.step_page(-1),
        ",",
        "Show the previous page of a multi-page file (,)",
    )
    window.fit_action = add_action(
        window, "Fit", window.viewer.fit, "Ctrl+0", "Show the whole image (Ctrl+0)"
    )
    window.actual_size_action = add_action(
        window,
        "1:1",
        window.viewer.actual_size,
        "Ctrl+1",
        "One screen pixel per image pixel (Ctrl+1)",
    )
    window.zoom_in_action = add_action(
        window, "Zoom in", lambda: window.viewer.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn
    )
    window.zoom_out_action = add_action(
        window, "Zoom out", lambda: window.viewer.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut
    )
    # what is drawn over the image: the settings panel's check boxes, as keys and menu items
    window.overlay_actions = {}
    for name in OVERLAY_NAMES:
        action = add_action(
            window,
            OVERLAY_TITLES[name],
            lambda on, n=name: c.set_overlay(n, visible=on),
            OVERLAY_KEYS.get(name),
            OVERLAY_TIPS[name],
        )
        action.setCheckable(True)
        window.overlay_actions[name] = action
    window.hide_overlays_action = add_action(
        window,
        "Hide everything over the image",
        window.hide_overlays,
        "H",
        "The image alone, to compare the cells with their outlines (H again brings back what "
        "was shown)",
    )
    window.hide_overlays_action.setCheckable(True)
    window.scale_bar_action = add_action(
        window,
        "Scale bar",
        window.show_scale_bar,
        "B",
        "A scale bar at the bottom right of the image, in the pictures saved of the view too; "
        "needs the pixel size (from the file, or Pixel size in the settings)",
    )
    window.scale_bar_action.setCheckable(True)
    window.add_cells_action = add_action(
        window,
        "Add cells by clicking",
        window._add_mode_toggled,
        "A",
        "While on, a click on the image adds a cell there: click the centre of a cell the "
        "network missed (inside a cell: splits it). The outline is found from your click "
        "as from a detected centre (A; Esc ends)",
    )
    window.add_cells_action.setCheckable(True)
    window.add_cells_action.setIconText("Add cells")  # the toolbar's shorter name
    window.remove_cell_action = add_action(
        window,
        "Remove selected cell",
        lambda: window.controller.remove_cell(),
        QKeySequence.StandardKey.Delete,
        "Take the selected cell out (debris, a false cell, half of a split cell); its "
        "neighbours may take its pixels. Cells selected together (Ctrl-click in the image or "
        "the table) go out together (Delete)",
    )
    window.remove_cell_action.setIconText("Remove cell")
    window.link_action = add_action(
        window,
        "Link to the cell before…",
        window.start_linking,
        "L",
        "The selected cell was followed from the wrong cell (cells followed over time): the "
        "time point before is shown, and a click on the cell it came from mends the link; "
        "two cells from one are its daughters (L; Esc stops; Ctrl+Z undoes)",
    )
    window.undo_action = add_action(
        window,
        "Undo correction",
        window._undo,
        QKeySequence.StandardKey.Undo,
        "Back to the outlines before the last added or removed cell (Ctrl+Z)",
    )
    window.redo_action = add_action(
        window,
        "Redo correction",
        window._redo,
        QKeySequence.StandardKey.Redo,
        "The correction Undo took back, made again",
    )
    window.points_action = add_action(
        window,
        "Outline cells at points from a file…",
        window.ask_outline_points,
        None,
        "Outline the cells at centres from a CSV file: cells you counted in Fiji "
        "(Multi-point, Measure: X, Y in pixels), x,y, image,x,y, or a cells table cellprop "
        "exported",
    )
    window.mark_action = add_action(
        window,
        "Mark cell centres for training",
        window._mark_mode_toggled,
        "M",
        "While on, a click on the image marks a cell centre for training a model (a click "
        "on a mark takes it away): click the centre of every cell of an image, then File > "
        "Save marked centres as a training set (M; Esc ends)",
    )
    window.mark_action.setCheckable(True)
    window.mark_action.setIconText("Mark centres")
    window.mark_detected_action = add_action(
        window,
        "Mark the detected cells",
        lambda: window.controller.mark_detected_cells(),
        None,
        "Mark the centre of every cell the segmentation found, to correct by hand instead of "
        "clicking every cell",
    )
    window.clear_marks_action = add_action(
        window,
        "Clear the marks on this image",
        lambda: window.controller.clear_marks(),
        None,
        "Take away every centre marked on this image (Undo brings them back)",
    )
    window.save_marks_action = add_action(
        window,
        "Save marked centres as a training set…",
        window.ask_save_training_set,
        None,
        "Write the marked images and their cell centres into a folder that cellprop-train "
        "reads (images/ and points.csv); a training set there grows by these images",
    )
    window.open_marks_action = add_action(
        window,
        "Open marked centres…",
        window.ask_open_marks,
        None,
        "Mark the centres a CSV file gives for the open images (a training set's points.csv, "
        "to go on with it), by image name",
    )
    window.train_action = add_action(
        window,
        "Train a model on a training set…",
        window.ask_train_model,
        None,
        "Train a model of your own on a saved training set (cellprop-train in the "
        "background; the window stays usable): for cells no shipped model suits",
    )
    window.about_action = add_action(window, "About cellprop", window.show_about)
    window.shortcuts_action = add_action(
        window, "Keyboard shortcuts", window.show_shortcuts, tip="Every key the window answers to"
    )
    window.close_image_action = add_action(
        window,
        "Close image",
        lambda: window.close_images([c.current_index]),
        "Ctrl+W",
        "Take the image shown out of the list (its files are not touched)",
    )
    window.close_all_action = add_action(
        window,
        "Close all images",
        lambda: window.close_images(range(len(c.documents))),
        "Ctrl+Shift+W",
        "Take every image out of the list (their files are not touched)",
    )
    window.quit_action = add_action(window, "Quit", window.close, QKeySequence.StandardKey.Quit)
    window.cancel_button.clicked.connect(c.cancel)
    # the image list's right-click menu closes the image clicked
    window.documents.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    window.documents.addActions([window.close_image_action, window.close_all_action])

    # what was opened lately (images, folders, a run's results), filled when shown
    window.recent_menu = QMenu("Open &recent", window)
    window.recent_menu.setToolTipsVisible(True)
    window.recent_menu.aboutToShow.connect(window._fill_recent_menu)

    menu = window.menuBar()
    _fill(
        menu.addMenu("&File"),
        window.open_files_action,
        window.open_folder_action,
        window.open_results_action,
        window.recent_menu.menuAction(),
        None,
        window.export_action,
        window.export_all_action,
        window.save_view_action,
        None,
        window.close_image_action,
        window.close_all_action,
        None,
        window.open_marks_action,
        window.save_marks_action,
        window.train_action,
        None,
        window.quit_action,
    )
    _fill(
        menu.addMenu("&Image"),
        window.run_action,
        window.cancel_action,
        window.batch_action,
        window.suggest_action,
        window.estimate_action,
        window.measure_again_action,
        None,
        window.previous_action,
        window.next_action,
        window.previous_page_action,
        window.next_page_action,
    )
    _fill(
        menu.addMenu("&Edit"),
        window.undo_action,
        window.redo_action,
        None,
        window.add_cells_action,
        window.remove_cell_action,
        window.link_action,
        None,
        window.points_action,
        None,
        window.mark_action,
        window.mark_detected_action,
        window.clear_marks_action,
    )
    view_menu = menu.addMenu("&View")
    _fill(
        view_menu,
        window.fit_action,
        window.actual_size_action,
        window.zoom_in_action,
        window.zoom_out_action,
        None,
        *window.overlay_actions.values(),
        window.hide_overlays_action,
        window.scale_bar_action,
        None,
    )
    for dock in (window.images_dock, window.settings_dock, window.bottom_dock):
        view_menu.addAction(dock.toggleViewAction())
    help_menu = menu.addMenu("&Help")
    help_menu.addAction(window.shortcuts_action)
    help_menu.addAction(window.about_action)

    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("toolbar_main")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    _fill(
        toolbar,
        window.open_files_action,
        window.open_folder_action,
        None,
        window.run_action,
        window.cancel_action,
        window.batch_action,
        None,
        window.export_action,
        window.export_all_action,
        None,
        window.add_cells_action,
        window.remove_cell_action,
        None,
        window.previous_action,
        window.next_action,
        None,
        window.fit_action,
        window.actual_size_action,
    )
    run_button = toolbar.widgetForAction(window.run_action)
    if run_button is not None:
        run_button.setStyleSheet("font-weight: bold;")
