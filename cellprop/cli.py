"""The ``cellprop`` command: segment, evaluate, models, and the gui/train front ends.

A thin layer over :mod:`cellprop.engine`; ``gui`` and ``train`` import their packages only when
asked, so ``cellprop segment`` never loads Qt or torch.

Exit status: 0 all images done; 1 some image failed (each named on stderr); 2 nothing could run
(bad arguments, no images, unknown model, results that exist without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cellprop import TRAIN_INSTALL

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Images kept from the earlier run of a continued run that get a line each (the rest, one).
KEPT_LINES = 10


def _bounded(text: str, ok, words: str) -> float:
    """``text`` as a number for which ``ok`` holds, else argparse's error: it must
    ``words`` (nan and inf fail every test but their own)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must {words}, got {text}")
    return value


def folder_argument(text: str) -> Path:
    """A folder to write: not an empty name (an unset variable would write into the folder
    the command runs in)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty name")
    return Path(text)


def _positive_float(text: str) -> float:
    return _bounded(text, lambda v: 0 < v < math.inf, "be a positive number")


def _non_negative_float(text: str) -> float:
    return _bounded(text, lambda v: 0 <= v < math.inf, "be a number, 0 or more")


def _fraction(text: str) -> float:
    return _bounded(text, lambda v: 0 < v < 1, "lie between 0 and 1, not either")


def _share(text: str) -> float:
    return _bounded(text, lambda v: 0 <= v <= 1, "lie between 0 and 1")


def _diameter(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of pixels or 'auto', got {text!r}"
        ) from None
    return _positive_float(text)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _neighbour_distance(text: str) -> int:
    if text.strip().lower() == "expand":
        from cellprop.engine.features import EXPANDED

        return EXPANDED
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of pixels or 'expand', got {text}"
        ) from None
    return _count(text)


def _page(text: str) -> int | str:
    if text == "all":
        return text
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a page number or 'all', got {text}") from None
    return _count(text)


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or 'auto', got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from cellprop import __version__

    parser = argparse.ArgumentParser(
        prog="cellprop",
        description="Segment every cell in microscopy images with a model trained from clicked "
        "cell centres (Nishimura, Ker & Bise, MICCAI 2019).",
    )
    parser.add_argument("--version", action="version", version=f"cellprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    seg = sub.add_parser(
        "segment",
        help="segment images or folders of images",
        description="Segment every cell. For each image IMG writes DIR/IMG_labels.tif "
        "(instance labels, 0 = background), DIR/IMG_overlay.png (outlines), DIR/IMG_cells.csv "
        "(per-cell features) and with --roi DIR/IMG_rois.zip (ImageJ ROIs); for the run "
        "DIR/cells.csv (every cell), DIR/images.csv (one row per image), DIR/summary.csv, "
        "DIR/run.json and with --track DIR/tracks.csv.",
    )
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    seg.add_argument(
        "--out", "-o", required=True, type=folder_argument, metavar="DIR", help="result folder"
    )
    seg.add_argument(
        "--model",
        "-m",
        default=None,
        metavar="NAME|PATH|auto",
        help="shipped model name (see `cellprop models`), model folder, or 'auto': the "
        "installed model that suits the first image, used for all (default: phase, or the "
        "only model installed)",
    )
    seg.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the networks run (auto: CUDA if it really works, else CPU)",
    )
    seg.add_argument(
        "--propagation",
        choices=("crop", "full"),
        default="crop",
        help="crop: a window per cell (fast, default); full: the whole image per "
        "cell as in the paper (slow reference)",
    )
    seg.add_argument(
        "--threshold",
        type=_fraction,
        default=None,
        metavar="T",
        help="detection threshold on the likelihood, between 0 and 1, not either (default: the model's)",
    )
    seg.add_argument(
        "--diameter",
        type=_diameter,
        default=None,
        metavar="PX",
        help="expected cell diameter in pixels, or 'auto' to estimate it on each image; "
        "rescales images so their cells have the model's size (default: the model's "
        "fixed scale)",
    )
    seg.add_argument(
        "--pixel-size",
        type=_positive_float,
        default=None,
        metavar="UM",
        help="pixel size in micrometres for the measurements (default: from the "
        "TIFF metadata, else sizes in pixels)",
    )
    seg.add_argument(
        "--neighbour-distance",
        "--neighbor-distance",
        dest="neighbour_distance",
        type=_neighbour_distance,
        default=0,
        metavar="PX|expand",
        help="count as a cell's neighbours the cells within this many pixels of it "
        "(CellProfiler's 'Within a specified distance'; columns Neighbors_..._PX), or "
        "'expand': the cells it would touch were every cell grown over the background until "
        "it met others (CellProfiler's 'Expand until adjacent', Neighbors_..._Expanded: for "
        "nuclei, which never touch); default 0: the cells it touches (Neighbors_..._Adjacent)",
    )
    seg.add_argument(
        "--ring",
        dest="ring_width",
        type=_count,
        default=0,
        metavar="PX",
        help="also measure a ring this many pixels wide around each cell (the background "
        "nearer to it than to any other cell: the cytoplasm around a nucleus): its area and, "
        "in every channel, its mean and integrated intensity and the cell's mean over the "
        "ring's (Ring_Intensity_CellToRingRatio: a reporter's nuclear to cytoplasmic "
        "ratio); default 0: none",
    )
    seg.add_argument(
        "--min-size",
        type=_count,
        default=None,
        metavar="PX",
        help="drop cells smaller than this many pixels (default: the model's)",
    )
    seg.add_argument(
        "--max-size",
        type=_count,
        default=None,
        metavar="PX",
        help="drop cells larger than this many pixels: clumps, or outlines grown over the "
        "background (default, and 0: no limit)",
    )
    seg.add_argument(
        "--smoothness",
        type=_non_negative_float,
        default=None,
        metavar="W",
        help="graph-cut smoothness weight (default: the model's; phase, dic 20, nuclei 5)",
    )
    seg.add_argument(
        "--exclude-border", action="store_true", help="drop cells touching the image border"
    )
    seg.add_argument(
        "--edge-fraction",
        type=_share,
        default=None,
        metavar="F",
        help="drop cells cut by the image border that show less than this fraction of a "
        "typical cell, judged by their area or, where the model says so (dic), by how near "
        "the border the network placed their centre (0 keeps them all; default: the model's)",
    )
    again = seg.add_mutually_exclusive_group()
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing results (never done without this flag)",
    )
    again.add_argument(
        "--resume",
        action="store_true",
        help="go on with the run in --out that was stopped (cancelled, interrupted, or the "
        "computer stopped) or had failures: the images it finished are kept, the others "
        "are segmented; give the same images, model and settings as that run (another "
        "--pixel-size, --neighbour-distance or --ring measures the cells it kept again; --roi adds "
        "their ROI sets)",
    )
    seg.add_argument("--roi", action="store_true", help="also write an ImageJ ROI zip per image")
    seg.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="images processed at once, each in its own process (each needs its own memory "
        "budget); auto: one per core, at most 4, one per 2 GB of memory, two images or more "
        "each (default: 1)",
    )
    seg.add_argument(
        "--points",
        type=Path,
        default=None,
        metavar="CSV",
        help="outline the cells at these centres instead of detecting them: a CSV of x,y "
        "(pixels) for one image, or image,x,y for several (the training data's points.csv); "
        "a Fiji Multi-point results table (X, Y) reads as it is",
    )
    seg.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    seg.add_argument(
        "--page",
        type=_page,
        default=None,
        metavar="N|all",
        help="page (time point / slice) of multi-page files, from 0 (default: "
        "the first; 3-D stacks need one), or all: every page as an image of its own, "
        "named <stem>_p<page>c<channel> (a time-lapse: a result per time point)",
    )
    seg.add_argument(
        "--channel",
        type=_count,
        default=None,
        metavar="N",
        help="channel of multi-channel files, from 0 (default: the first); a colour (RGB) "
        "image has 0 grey, 1 red, 2 green, 3 blue",
    )
    seg.add_argument(
        "--track",
        action="store_true",
        help="follow the cells of time-lapses from time point to time point: the pages of a "
        "multi-page file (with --page all) or the images of a folder in name order; each "
        "cell's track in the cell tables (TrackObjects_Label, ...), divisions included, a "
        "cell missed at one time point kept on its track (gap closing), and tracks.csv with "
        "every track's start, end, parent and distance travelled",
    )
    seg.add_argument(
        "--max-move",
        type=_positive_float,
        default=None,
        metavar="DIAMETERS",
        help="with --track: how far a cell may move from one time point to the next and be "
        "followed, in cell diameters (the median of both time points' cells; default 0.5); "
        "cells that overlap themselves are followed whatever the distance. Raise it for "
        "cells that move fast or far apart between time points. With --resume, another "
        "value than the run's follows the cells it kept again, nothing segmented again",
    )
    seg.add_argument(
        "--max-gap",
        type=_count,
        default=None,
        metavar="N",
        help="with --track: a track whose cell is missed at up to N time points in a row goes "
        "on with a new cell near where it was last seen (gap closing; default 1, 0: none)",
    )
    seg.add_argument(
        "--memory",
        type=int,
        default=1024,
        metavar="MB",
        help="memory budget of one network call (default 1024)",
    )
    seg.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    ev = sub.add_parser(
        "evaluate",
        help="score predicted labels against a dataset (F1 at 10 px, mDice, AP50, AP75)",
        description="Score DIR's <stem>_labels.tif against DATASET (images/, points.csv, "
        "masks/): detection F1 with one-to-one matching within 10 px (of the detected centres "
        "in <stem>_cells.csv where there, else of the outlines' centroids), mDice over "
        "ground-truth cells (each true cell's Dice with the predicted cell covering most of it, "
        "as the paper scores) where masks exist, and average precision at IoU 0.5 and 0.75, "
        "with 95% intervals from resampling the images; written to PRED_DIR/evaluation.json.",
    )
    ev.add_argument("dataset", type=Path, metavar="DATASET")
    ev.add_argument("predictions", type=Path, metavar="PRED_DIR")
    ev.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the scores as JSON (default: PRED_DIR/evaluation.json)",
    )
    ev.add_argument(
        "--radius",
        type=_positive_float,
        default=10.0,
        metavar="PX",
        help="detection matching radius (default 10)",
    )

    sub.add_parser("models", help="list the installed models and what each is for")
    sub.add_parser("gui", help="open the desktop app", add_help=False)
    sub.add_parser(
        "train", help="train a model from points (needs the 'train' extra)", add_help=False
    )
    return parser


def _default_model(requested: str | None) -> str:
    from cellprop.engine import ModelError, list_models

    if requested:
        return requested
    models = list_models()
    names = [m.name for m in models]
    if "phase" in names:
        return "phase"
    if len(models) == 1:
        return names[0]
    if not models:
        raise ModelError("no model is installed; give a model folder with --model")
    raise ModelError(f"several models are installed ({', '.join(names)}); choose one with --model")


def _suggested_model(paths: list[Path], args: argparse.Namespace):
    """``--model auto``: the installed model that suits the first readable image.

    One model serves the whole batch, so that the images' measurements stay comparable; the
    choice and its figures are printed.
    """

    from cellprop.engine import load_model, load_models
    from cellprop.engine.choose import suggest_model

    left_out: list = []
    models = load_models(device=args.device, left_out=left_out)
    for folder, why in left_out:
        print(f"cellprop: --model auto leaves out {folder}: {why}", file=sys.stderr)
    if not models:
        return load_model(_default_model(None), device=args.device)  # says what is missing
    looked = 0
    for path in paths:
        pixels = _telling_plane(path, args)
        if pixels is None:
            continue
        suggestion = suggest_model(pixels, models)
        looked += 1
        print(f"cellprop: {suggestion.describe()} ({path.name})", file=sys.stderr)
        if not suggestion.found:  # an empty well: the next image tells
            if looked < AUTO_TRIES:
                continue
            break
        _others_suited(paths[paths.index(path) + 1 :], suggestion.model, models, args)
        return suggestion.model
    model = load_model(_default_model(None), device=args.device)
    if looked:
        print(
            f"cellprop: --model auto found no cell in {looked} image(s) to choose by; "
            f"{model.name} segments them (give --model to choose)",
            file=sys.stderr,
        )
    return model


def _telling_plane(path: Path, args: argparse.Namespace):
    """The plane of ``path`` a batch with ``args`` segments first, for ``--model auto`` to
    judge; None where it cannot be read (the batch reports it) or is blank (an empty well
    says nothing of the cells)."""
    import numpy as np

    from cellprop.engine import ImageError, read_image

    try:
        page = 0 if args.page == "all" else args.page
        pixels = read_image(path, page=page, channel=args.channel).pixels
    except ImageError:
        return None
    seen = pixels[np.isfinite(pixels)]
    return None if not seen.size or seen.min() == seen.max() else pixels


#: How many other images of a batch ``--model auto`` looks at for another kind of microscopy.
AUTO_LOOKS = 5
#: How many images ``--model auto`` tries to choose by, where no model finds a cell in them.
AUTO_TRIES = 10


def _others_suited(paths: list[Path], chosen, models, args: argparse.Namespace) -> None:
    """``--model auto`` on a folder of several kinds of image: up to :data:`AUTO_LOOKS` of
    the other images, spread over the batch, each offered to the models; those that suit
    another model better are named (the first image's model segments them all, which on
    a DIC or fluorescence image made for phase contrast finds next to nothing right)."""
    import numpy as np

    from cellprop.engine.choose import suggest_model

    if not paths:
        return
    picked = sorted(set(np.linspace(0, len(paths) - 1, min(AUTO_LOOKS, len(paths))).round()))
    other: dict[str, list[str]] = {}
    for k in picked:
        path = paths[int(k)]
        pixels = _telling_plane(path, args)
        if pixels is None:
            continue
        better = suggest_model(pixels, models).model
        if better.name != chosen.name:
            other.setdefault(better.name, []).append(path.name)
    for name, names in other.items():
        print(
            f"cellprop: note: {', '.join(names)} look{'s' * (len(names) == 1)} like images "
            f"for {name}, not {chosen.name}: --model auto segments the whole batch with "
            f"{chosen.name}, so that its measurements compare; segment each kind with its own "
            f"--model (--model {name} for these)",
            file=sys.stderr,
        )


def _planned_outputs(planes: list, out: Path, roi: bool) -> list[Path]:
    from cellprop.engine.batch import RUN_FILES, output_paths

    files = [out / name for name in RUN_FILES]
    for plane in planes:
        files += list(output_paths(plane.target, out, roi).values())
    return files


@contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM (``kill``, a cluster's scheduler at the end of a job's time) stops a batch as
    Ctrl-C does: the image under way leaves no half-written files, the finished ones keep
    theirs, and the run says how to go on; it ended without a word."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _not_written_by_cellprop(existing: list[Path], out: Path) -> str:
    """A warning where a label image or overlay that a run would replace is not one cellprop
    wrote: no run recorded in ``out`` (run.json) and not beside its table (IMG_cells.csv), as
    a mask drawn by hand and named so would be; "" where there is none."""
    from cellprop.engine.batch import OUTPUT_SUFFIXES
    from cellprop.engine.io import written_result

    if (out / "run.json").is_file():
        return ""
    ends = (OUTPUT_SUFFIXES["labels"], OUTPUT_SUFFIXES["overlay"])
    own = [f for f in existing if f.name.endswith(ends) and not written_result(f)]
    if not own:
        return ""
    more = f" and {len(own) - 1} more" if len(own) > 1 else ""
    return (
        f" {own[0].name}{more} {'are' if more else 'is'} not beside the table cellprop writes "
        "with its labels, and no cellprop run is recorded there (run.json): a file of your "
        "own, a mask drawn by hand perhaps, that --overwrite would replace; choose another "
        "--out folder to keep it."
    )


def _other_kinds(inputs: list[str]) -> str:
    """What the folders given hold instead of images, where they hold files of other kinds
    (.gif, .webp: passed over without a word): " (it holds 2 .gif files; the kinds read
    are ...)"; "" where they hold none."""
    from collections import Counter

    from cellprop.engine.io import IMAGE_EXTENSIONS

    kinds: Counter = Counter()
    for name in inputs:
        if os.path.isdir(name):
            with suppress(OSError):
                kinds.update(
                    p.suffix.lower() or "(no extension)"
                    for p in Path(name).iterdir()
                    if not p.name.startswith(".") and p.is_file()
                )
    if not kinds:
        return ""
    held = ", ".join(f"{n} {k}" for k, n in kinds.most_common(4))
    return f" (it holds {held} files; the kinds read are {', '.join(IMAGE_EXTENSIONS)})"


def cmd_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cellprop.engine import (
        ModelError,
        OutputExists,
        ResumeError,
        Settings,
        TrackSettings,
        batch_planes,
        continued_planes,
        find_images,
        load_model,
        plane_name,
        process_batch,
        read_points,
    )
    from cellprop.engine.batch import MEASURED_AGAIN, OUTPUT_SUFFIXES
    from cellprop.engine.pipeline import count_cells as _cells
    from cellprop.engine.pipeline import left_out_note

    chosen = {"max_move": args.max_move, "max_gap": args.max_gap}
    if not args.track and any(v is not None for v in chosen.values()):
        print("cellprop: --max-move and --max-gap follow cells: add --track", file=sys.stderr)
        return EXIT_USAGE
    tracking = TrackSettings.of(chosen) if args.track else False
    if args.out.exists() and not args.out.is_dir():
        print(
            f"cellprop: --out {args.out} is a file, not a folder for the results", file=sys.stderr
        )
        return EXIT_USAGE
    if args.out.is_symlink() and not args.out.exists():  # ("File exists", when made)
        print(
            f"cellprop: --out {args.out} is a link to {os.readlink(args.out)}, which does not "
            "exist: make that folder (a disk not mounted?), or give another --out",
            file=sys.stderr,
        )
        return EXIT_USAGE
    out = args.out.resolve()
    gone = [name for name in args.inputs if not os.path.lexists(name)]
    if gone and len(gone) == len(args.inputs):  # a typo: no run folder made, to be in the way
        print(f"cellprop: no such file or folder: {', '.join(gone)}", file=sys.stderr)
        return EXIT_USAGE
    found = paths = find_images(args.inputs, recursive=args.recursive)
    # Earlier results inside an input folder are not inputs (results written beside the
    # images, --out the images' own folder); the images in --out are, and so are images of
    # yours named so where no run of cellprop is recorded (exp1_labels.tif, no table beside:
    # find_images leaves out those beside their tables).
    # A file given by name is an input whatever its name (an image called my_overlay.png).
    made = (OUTPUT_SUFFIXES["labels"], OUTPUT_SUFFIXES["overlay"])
    named_files = {Path(name) for name in args.inputs if os.path.isfile(name)}
    run_in_out = (out / "run.json").is_file()
    paths = [
        p
        for p in paths
        if p in named_files
        or not (
            run_in_out and p.name.endswith(made) and p.exists() and p.resolve().is_relative_to(out)
        )
    ]
    if not paths:
        print(
            "cellprop: no images found in " + ", ".join(args.inputs) + _other_kinds(args.inputs),
            file=sys.stderr,
        )
        return EXIT_USAGE
    # a folder given among others that gave no image: said, not passed over without a word
    # (by where the images found lie: each folder is not looked through again)
    homes = {Path(os.path.abspath(p)).parent for p in found}

    def holds(folder: Path) -> bool:  # images in it (below it too, with -r)
        if not args.recursive:
            return folder in homes
        return any(h.is_relative_to(folder) for h in homes)

    empty = [n for n in args.inputs if os.path.isdir(n) and not holds(Path(os.path.abspath(n)))]
    if empty:
        below = [n for n in empty if not args.recursive and find_images([n], recursive=True)]
        print(
            f"cellprop: no images found in {', '.join(empty)}"
            + (f" ({', '.join(below)}: only in its sub-folders, add -r)" if below else "")
            + "; the other inputs are segmented",
            file=sys.stderr,
        )
    try:
        if args.model == "auto":
            model = _suggested_model(paths, args)
        else:
            model = load_model(_default_model(args.model), device=args.device)
    except ModelError as exc:
        print(f"cellprop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.diameter is not None and not model.cell_diameter_px:  # (a hand-made folder)
        print(
            f"cellprop: --diameter cannot be used with the model {model.name}: its "
            "model.json gives no cell_diameter_px, the size of its cells to rescale to",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # No --channel: the channel the model was trained on (the first for the shipped ones).
    channel = args.channel if args.channel is not None else (model.channel or None)
    planes = batch_planes(paths, args.page, channel)  # (two of one name fail, said by name)
    given = len(planes)
    named = set(planes)  # (named after their folders here: said below)
    if args.resume:  # the run goes on over all it had, whatever of it is given again (each
        planes = continued_planes(planes, out)  # named as it named them)
    renamed = [
        p
        for p in planes[:given]
        if p in named
        and p.name != p.path.name
        # (a page's own name: after the channel read, 0 for a file of one channel)
        and (p.page is None or p.name not in {plane_name(p.path, p.page, c) for c in (channel, 0)})
    ]
    if not (args.overwrite or args.resume):
        existing = [f for f in _planned_outputs(planes, args.out, args.roi) if f.exists()]
        if existing:
            more = f" and {len(existing) - 1} more exist" if len(existing) > 1 else " exists"
            print(
                f"cellprop: {existing[0]}{more} already; nothing was written. "
                "Use --overwrite to replace them, --resume to go on with a run that stopped, "
                "or another --out folder." + _not_written_by_cellprop(existing, out),
                file=sys.stderr,
            )
            return EXIT_USAGE
    try:
        settings = Settings(
            threshold=args.threshold,
            diameter=args.diameter,
            smoothness=args.smoothness,
            min_size=args.min_size,
            max_size=args.max_size,
            exclude_border=args.exclude_border,
            edge_fraction=args.edge_fraction,
            pixel_size=args.pixel_size,
            neighbour_distance=args.neighbour_distance,
            ring_width=args.ring_width,
            propagation=args.propagation,
            memory_mb=args.memory,
        )
        points = None if args.points is None else read_points(args.points)
        if points is not None and "" in points and len(planes) > 1:
            raise ValueError(
                f"{args.points}: x,y without an image column fits one image, not "
                f"{len(planes)}; add an image column (image,x,y)"
            )
    except ValueError as exc:
        print(f"cellprop: {exc}", file=sys.stderr)
        return EXIT_USAGE

    log = sys.stderr
    if renamed:  # an experiment saved folder by folder, the same file names in each
        print(
            f"cellprop: {len(renamed)} image(s) share a file name with one in another folder; "
            "their results are named after their folders too ("
            f"{Path(renamed[0].path.parent.name, renamed[0].path.name)} -> "
            f"{renamed[0].target.stem}_labels.tif, ...)",
            file=log,
        )
    pages = f" (every page of {len(paths)} file(s))" if given > len(paths) else ""
    if len(planes) > given:
        pages += f", and {len(planes) - given} more the earlier run finished (kept in its tables)"
    if channel and args.channel is None:
        pages += f", channel {channel} (the model's; --channel to choose another)"
    # a model of the user's says which folder it is (one named as a shipped model is not that)
    from cellprop.engine.model import models_folder

    shipped = Path(model.path).parent.resolve() == models_folder().resolve()
    which = model.name if shipped else f"{model.name} ({model.path})"
    print(
        f"cellprop: model {which} on {model.provider}; {given} image(s){pages} -> {args.out}",
        file=log,
    )
    bar = tqdm(total=len(planes), unit="image", disable=args.quiet, file=log, dynamic_ncols=True)

    reported: list = []  # every image's result as it ends
    kept_seen = []  # images kept from the earlier run, in turn
    hidden = []  # those past the first KEPT_LINES: one line for them all, not one each

    def kept_lines_end() -> None:
        if hidden:
            again = any(r.note for r in hidden)  # all of them, with other measurement settings
            bar.write(
                f"  kept    {len(hidden)} more image(s), {_cells(sum(r.n_cells for r in hidden))} "
                f"(done by the earlier run{'; measured again' if again else ''})",
                file=log,
            )
            hidden.clear()

    def on_result(res) -> None:
        reported.append(res)
        if res.kept:
            kept_seen.append(res)
        alike = not res.note or res.note.startswith(MEASURED_AGAIN)  # one line for the rest
        if res.kept and alike and len(kept_seen) > KEPT_LINES:
            hidden.append(res)
            bar.update(1)
            return
        kept_lines_end()
        if res.kept:
            line = f"  kept    {res.name}: {_cells(res.n_cells)} (done by the earlier run)"
            if res.note:
                line = f"  kept    {res.name}: {_cells(res.n_cells)} ({res.note})"
        elif res.status == "done":
            estimated = (
                f", diameter ~{res.diameter:.0f} px"
                if args.diameter == "auto"
                and res.diameter
                and res.settings.get("diameter_measured", True)  # (else its note says)
                else ""
            )
            line = (
                f"  done    {res.name} ({res.image_info}): {_cells(res.n_cells)}"
                f"{estimated}, {res.seconds:.1f} s{left_out_note(res.settings)}"
                + (f"; {res.note}" if res.note else "")
            )
        else:
            line = f"  {res.status:<7} {res.error or res.name}"
        bar.write(line, file=log)
        bar.set_postfix_str(res.name, refresh=False)
        bar.update(1)

    try:
        with terminated_as_interrupted():
            result = process_batch(
                planes,
                args.out,
                model,
                settings,
                overwrite=args.overwrite,
                roi=args.roi,
                workers=args.workers,
                on_result=on_result,
                page=args.page,
                channel=channel,
                points=points,
                resume=args.resume,
                track=tracking,
            )
    except (OutputExists, ResumeError) as exc:
        bar.close()
        print(f"cellprop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the result folder cannot be made or written (read-only, full)
        kept_lines_end()
        bar.close()
        done = sum(r.status == "done" for r in reported)
        where = exc.filename or args.out
        if Path(where).name.startswith("."):  # a temporary file's: name its folder
            where = Path(where).parent
        # (the folder removed or emptied while the run wrote to it: nothing kept to go on)
        kept = done and (Path(args.out) / "run.json").is_file()
        print(
            f"cellprop: cannot write the results to {where}: "
            f"{exc.strerror or exc}"
            + (f"; the {done} image(s) done keep their results (--resume goes on)" if kept else ""),
            file=sys.stderr,
        )
        return EXIT_FAILED if reported else EXIT_USAGE
    except KeyboardInterrupt:
        kept_lines_end()
        bar.close()
        print(
            "cellprop: interrupted; finished images keep their results (add --resume to the "
            "same command to go on)",
            file=sys.stderr,
        )
        return 130
    kept_lines_end()
    bar.close()
    done = sum(r.status == "done" for r in result.results)
    failed = [r for r in result.results if r.status != "done"]
    cells = sum(r.n_cells for r in result.results)
    kept = sum(r.kept for r in result.results)
    print(
        f"cellprop: {done}/{len(result.results)} image(s) done"
        + (f" ({kept} by the earlier run)" if kept else "")
        + f", {_cells(cells)}; results in {args.out}",
        file=log,
    )
    if result.followed_again:
        from cellprop.engine import followed_again

        print(f"cellprop: {followed_again(result.followed_again)}", file=log)
    if result.left_over:
        from cellprop.engine import replaced_left_over

        print(f"cellprop: {replaced_left_over(result.left_over, args.out)}", file=log)
    if result.mixed_units:
        print(f"cellprop: {result.mixed_units}", file=log)
    if result.mixed_series:
        print(f"cellprop: {result.mixed_series}", file=log)
    if result.skipped_times:
        print(f"cellprop: {result.skipped_times}", file=log)
    if result.restarted:
        from cellprop.engine import started_anew

        print(f"cellprop: {started_anew(result.restarted)}", file=log)
    if args.track and (Path(args.out) / "tracks.csv").is_file():
        from cellprop.engine import tracks_summary

        print(f"cellprop: {tracks_summary(Path(args.out) / 'tracks.csv')}", file=log)
    several = [r for r in result.results if r.n_pages > 1 and args.page is None]
    if several:  # a time-lapse in one file gave one image: say so, and what gives them all
        more = f" and {len(several) - 1} more multi-page file(s)" if len(several) > 1 else ""
        print(
            f"cellprop: {several[0].name} ({several[0].n_pages} pages){more}: only the first "
            "page was segmented (--page all: every page as an image)",
            file=log,
        )
    if failed:
        print(f"cellprop: {len(failed)} image(s) not processed:", file=sys.stderr)
        for r in failed:
            print(f"  {r.error or r.path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cellprop.engine import evaluate_folder

    try:
        scores = evaluate_folder(args.dataset, args.predictions, radius=args.radius)
    except (FileNotFoundError, ValueError) as exc:
        print(f"cellprop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = scores.report()
    report["dataset"] = str(args.dataset)
    report["predictions"] = str(args.predictions)
    target = args.json or (args.predictions / "evaluation.json")
    unwritten = None
    try:  # written first: the summary below may go into a pipe that closes (`| head`)
        target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:  # the scores are still printed (a read-only folder of results)
        unwritten = f"cannot write {target}: {exc}; give --json FILE to keep the scores"
    d = report["detection"]
    spans = report["intervals"]

    def spread(metric: str) -> str:  # how much the score rests on the images scored
        span = spans.get(metric)
        return f"  95% over the images resampled: {span[0]:.3f}-{span[1]:.3f}" if span else ""

    scored = [e for e in report["per_image"] if not (e.get("missing") or e.get("error"))]
    print(f"images scored      {len(scored)}")
    if any("tp" in e for e in scored):
        print(
            f"detection F1       {d['f1']:.3f}  (precision {d['precision']:.3f}, recall "
            f"{d['recall']:.3f}; tp {d['tp']}, fp {d['fp']}, fn {d['fn']}; within "
            f"{args.radius:g} px)"
        )
    elif scored:  # (it said F1 1.000 of nothing)
        print("detection F1       no points of these images in the dataset's points.csv")
    if spans.get("f1"):
        print(" " * 19 + spread("f1").strip())
    kinds = [e.get("points") for e in scored if "tp" in e]
    if "detections" in kinds and "centroids" in kinds:  # two measures in one F1: said
        print(
            " " * 19 + f"on the detected centres of {kinds.count('detections')} image(s), the "
            f"outlines' centroids of {kinds.count('centroids')} (no cells.csv that counts "
            "their labels' cells: none there, or the labels edited since)"
        )
    if any("ap50" in e for e in scored):  # a mask scored: an empty one's false cells count
        if report["mdice"] is not None:
            print(
                f"mDice              {report['mdice']:.3f}  ({report['mdice_cells']} "
                "ground-truth cells)" + spread("mdice")
            )
        else:
            print("mDice              no cells in the masks of the images scored")
        if report["ap50"] is not None:
            print(f"AP at IoU 0.5      {report['ap50']:.3f}" + spread("ap50"))
            errors = report["ap50_errors"]
            for side, name in (("fp", "false positives"), ("fn", "false negatives")):
                kinds = [
                    f"{n} {kind[3:]}" for kind, n in errors.items() if kind.startswith(side) and n
                ]
                if kinds:
                    print(f"  AP50 {name + ':':17}{', '.join(kinds)}")
            print(f"AP at IoU 0.75     {report['ap75']:.3f}  (how closely outlines fit)")
        else:
            print("AP at IoU 0.5      no cells in the masks nor in the predictions")
    elif scored:
        print("mDice, AP50        none of the images scored has a mask")
    missing = [e["image"] for e in report["per_image"] if e.get("missing")]
    if missing:
        print(
            f"no prediction for  {len(missing)} image(s), not scored: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    for failed in (e for e in report["per_image"] if e.get("error")):
        print(f"not scored         {failed['image']}: {failed['error']}")
    for noted in (e for e in report["per_image"] if e.get("note")):
        print(f"note               {noted['image']}: {noted['note']}")
    for note in report.get("notes", ()):
        print(f"note               {note}")
    if unwritten:
        print(f"cellprop: {unwritten}", file=sys.stderr)
        return EXIT_FAILED
    print(f"scores written to  {target}")
    if not scored:  # every prediction refused: no score at all (it ended 0)
        print("cellprop: no image scored (above: why each was not)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from cellprop.engine import available_devices, broken_models, list_models

    models = list_models()
    if not models:
        print("no models installed")
    width = max((len(m.name) for m in models), default=0)
    for m in models:
        print(f"{m.name:<{width}}  {m.modality:<12}  {m.description}")
        facts = m.facts()
        if facts:
            print(f"{'':<{width}}  {facts}")
        print(f"{'':<{width}}  {m.path}")
    for folder, why in broken_models():  # left out above: said, not hidden
        print(f"not usable: {folder}: {why}")
    print(f"devices: {', '.join(available_devices())}")
    return EXIT_OK


def _delegate(module: str, argv: list[str], what: str, extra: str) -> int:
    import importlib

    try:
        entry = importlib.import_module(module).main
    except ImportError as exc:
        print(f"cellprop: {what} is not available ({exc}); {extra}", file=sys.stderr)
        return EXIT_USAGE
    return int(entry(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # gui and train take their own options: hand them everything after the sub-command.
    if argv and argv[0] == "gui":
        return _delegate(
            "cellprop.app.main",
            argv[1:],
            "the desktop app",
            "install cellprop with its Qt dependency (PySide6)",
        )
    if argv and argv[0] == "train":
        frozen = getattr(sys, "frozen", False)  # the desktop bundle: no Python to install into
        return _delegate(
            "cellprop.training.cli",
            argv[1:],
            "training",
            "this installed app does not include training: train a model with cellprop-train "
            "where cellprop is installed in Python with PyTorch (see the README), then give "
            "its folder to --model"
            if frozen
            else f"install PyTorch and onnx into this Python: {TRAIN_INSTALL}",
        )
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handlers = {"segment": cmd_segment, "evaluate": cmd_evaluate, "models": cmd_models}
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # read through `| head`, which closed it: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
