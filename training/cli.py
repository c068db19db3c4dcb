"""``cellprop-train``: train a detection model from clicked cell centres (also ``cellprop train``)."""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time

from cellprop import TRAIN_INSTALL
from cellprop.cli import folder_argument

from .data import DatasetError

DESCRIPTION = """\
Train a cell-detection model from clicked cell centres, and write a model folder
(unet.onnx, guided.onnx, model.json) that cellprop segments with.

Each DATASET is a folder holding:
  images/              your microscopy images (TIFF 8/16/32-bit, PNG, JPEG, BMP)
and the cell centres in one of three forms:
  points.csv           columns image,x,y: one row per cell (x = column, y = row, pixels)
  points/<image>.csv   columns x,y: one file per image
  markers/<image>.tif  label images; each labelled spot's centre is one cell

Click every cell in the images you annotate (a cell left unclicked teaches the model
that it is background). A few images with a few hundred cells are enough to start.
"""

EPILOG = """\
examples:
  cellprop-train my-cells --out my-model
  cellprop-train plate1 plate2 --out my-model --modality fluorescence --epochs 60
  cellprop-train my-cells --out my-model --resume      (continue an interrupted run)
  cellprop-train my-cells --out my-model --from dic
                         (start from the shipped DIC model: fewer clicks, 10 epochs)

The defaults suit a laptop CPU (minutes to an hour). The working scale is chosen
so that cells are about 20 pixels across (--cell-diameter, else the distance between
neighbouring cells: give --cell-diameter when cells are sparse); --scale overrides it.
Use the model with:  cellprop segment IMAGES --model my-model
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellprop-train",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset folder(s)")
    parser.add_argument(
        "--out",
        required=True,
        type=folder_argument,  # (not an empty name: an unset variable)
        metavar="MODEL_DIR",
        help="model folder to write",
    )
    what = parser.add_argument_group("what the model is for")
    what.add_argument("--name", default=None, help="model name (default: MODEL_DIR's name)")
    what.add_argument(
        "--description", default="", metavar="TEXT", help="one line shown when choosing a model"
    )
    what.add_argument(
        "--modality",
        default=None,
        choices=["phase", "dic", "fluorescence", "brightfield"],
        help="kind of microscopy; sets the segmentation defaults (default: the --from model's, "
        "else phase)",
    )
    what.add_argument(
        "--from",
        dest="start_from",
        default=None,
        metavar="MODEL",
        help="start from this model's network instead of a new one: a shipped model's name "
        "(phase, dic, nuclei) or a model folder. Its architecture, input normalisation and "
        "segmentation defaults carry over, and cells are brought to the size its network saw "
        "them at; a short run (10 epochs) on a few clicked images then adapts it to your cells",
    )
    what.add_argument(
        "--channel",
        type=int,
        default=0,
        metavar="N",
        help="the channel of the images the cells are clicked on, from 0 (default 0; a colour "
        "image's are 0 grey, 1 red, 2 green, 3 blue); the model records it, and cellprop "
        "segment then reads that channel of a file unless --channel says otherwise",
    )
    size = parser.add_argument_group("size")
    size.add_argument(
        "--scale",
        type=float,
        metavar="FACTOR",
        default=None,
        help="resize factor applied to images before the network, e.g. 0.5 halves them "
        "(default: automatic, cells about 20 pixels across)",
    )
    size.add_argument(
        "--sigma",
        type=float,
        metavar="PIXELS",
        default=None,
        help="width of the blob drawn at each centre, in original image pixels "
        "(default: 0.3 x the cells' size, --cell-diameter or the distance between neighbours)",
    )
    size.add_argument(
        "--cell-diameter",
        type=float,
        metavar="PIXELS",
        default=None,
        help="typical cell diameter in original image pixels: the automatic scale and sigma "
        "follow it, and the model records it so that 'cellprop segment --diameter' rescales "
        "right (default: the typical distance between neighbouring clicked cells, right for "
        "cells that touch and too large when cells are sparse: give it then; with --modality "
        "fluorescence, the bright nuclei's own size at the clicks where that is smaller)",
    )
    net = parser.add_argument_group("network (bigger = slower, not always better)")
    net.add_argument(
        "--base-channels",
        type=int,
        metavar="N",
        default=None,
        help="width of the first layer (16; with --from, the model's)",
    )
    net.add_argument(
        "--depth",
        type=int,
        metavar="N",
        default=None,
        help="number of down-sampling steps (3; with --from, the model's)",
    )
    run = parser.add_argument_group("training run")
    run.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        default=None,
        help="number of epochs (40; with --from, 10: the network adapts, it does not start anew)",
    )
    run.add_argument("--steps", type=int, metavar="N", default=50, help="batches per epoch (50)")
    run.add_argument("--batch", type=int, metavar="N", default=8, help="crops per batch (8)")
    run.add_argument(
        "--crop",
        type=int,
        metavar="PIXELS",
        default=128,
        help="crop side at the working scale, pixels (128)",
    )
    run.add_argument("--lr", type=float, metavar="RATE", default=1e-3, help="learning rate (0.001)")
    run.add_argument(
        "--val",
        nargs="+",
        default=[],
        metavar="IMAGE",
        help="image file names to hold out for validation "
        "(default: the last 15%% of each dataset's images)",
    )
    run.add_argument(
        "--val-fraction",
        type=float,
        metavar="SHARE",
        default=0.15,
        help="share of images held out (0.15)",
    )
    run.add_argument("--no-augment", action="store_true", help="switch off augmentation")
    for flag, what, hint in [
        (
            "--gamma",
            "gamma",
            "0.5 2, when images may come from cameras or viewers with other gammas",
        ),
        ("--zoom", "zoom", "0.67 1.5, when cell sizes vary more than that"),
    ]:
        run.add_argument(
            flag,
            type=float,
            nargs=2,
            metavar=("LOW", "HIGH"),
            default=(0.8, 1.25),
            help=f"range of the random {what} applied to training crops (0.8 1.25); widen it, "
            f"e.g. {hint}",
        )
    run.add_argument(
        "--seed", type=int, metavar="N", default=0, help="random seed; same seed, same model (0)"
    )
    run.add_argument(
        "--threads", type=int, metavar="N", default=2, help="CPU threads for torch (2)"
    )
    run.add_argument(
        "--work",
        default=None,
        metavar="DIR",
        help="folder for checkpoints (default: MODEL_DIR/checkpoints)",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the work folder"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the model (or other files) in --out; without it a folder that holds "
        "anything is refused",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cellprop-train``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    missing = [m for m in ("torch", "onnx") if importlib.util.find_spec(m) is None]
    if missing:  # the app's own install has neither: say so, not a traceback
        print(
            f"cellprop-train: training needs {' and '.join(missing)}, not installed in this "
            f"Python ({sys.executable}): {TRAIN_INSTALL} (from a checkout, "
            "`make .venv/.dev` installs them)",
            file=sys.stderr,
        )
        return 2
    # torch is imported here, not at module level, so that --help is instant.
    from pathlib import Path

    try:  # (a Ctrl-C while torch loads, a second or two: no traceback)
        from .train import START_EPOCHS, TrainConfig, train
    except KeyboardInterrupt:
        print("cellprop-train: interrupted", file=sys.stderr)
        return 130

    config = TrainConfig(
        datasets=args.datasets,
        out=str(args.out),
        work=args.work,
        name=args.name or Path(args.out).resolve().name,
        description=args.description,
        modality=args.modality,
        channel=args.channel,
        scale=args.scale,
        sigma=args.sigma,
        cell_diameter=args.cell_diameter,
        base_channels=args.base_channels,
        depth=args.depth,
        epochs=args.epochs
        if args.epochs is not None
        else (START_EPOCHS if args.start_from else 40),
        steps_per_epoch=args.steps,
        crop=args.crop,
        batch=args.batch,
        learning_rate=args.lr,
        seed=args.seed,
        val=args.val,
        val_fraction=args.val_fraction,
        augment=not args.no_augment,
        gamma=tuple(args.gamma),
        zoom=tuple(args.zoom),
        threads=args.threads,
        resume=args.resume,
        overwrite=args.overwrite,
        command=shlex.join(["cellprop-train", *argv]),
        start_from=args.start_from,
    )
    from tqdm.auto import tqdm

    # tqdm.write keeps the progress bar intact below the per-epoch lines; --quiet leaves out
    # those lines only (its notes, images left out among them, are still said)
    exported: list = []  # the model written (an interruption after it says so)

    def log(line: str) -> None:
        if line.startswith("exported to "):
            exported.append(line)
        if not (args.quiet and line.startswith("epoch ")):
            tqdm.write(line, file=sys.stderr)

    from cellprop.cli import terminated_as_interrupted

    began = time.time()  # (a checkpoint written since is this training's)
    checkpoint = (
        Path(args.work) if args.work else Path(args.out) / "checkpoints"
    ) / "checkpoint.pt"
    try:
        with terminated_as_interrupted():  # (the window's Stop: as Ctrl-C, nothing half left)
            result = train(config, progress=not args.quiet, log=log)
    except (DatasetError, ValueError) as exc:
        print(f"cellprop-train: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the export's check, or torch: the epochs done are kept
        print(
            f"cellprop-train: error: {exc}; the epochs done are kept in its checkpoint "
            "(--resume goes on from them)",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # a folder that cannot be written (read-only, a file in the way)
        where = exc.filename or args.out
        kept = (  # this training's epochs, not the one --overwrite was to replace
            f"; the epochs done are kept in {checkpoint} (--resume goes on from them once it "
            "can be written)"
            if checkpoint.is_file() and (args.resume or checkpoint.stat().st_mtime >= began)
            else ""
        )
        print(
            f"cellprop-train: error: cannot write {where}: {exc.strerror or exc}{kept}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        if exported:  # the model is written: only its size reference was still to come
            print(
                f"cellprop-train: interrupted after the model was written to {args.out}, "
                "before its size reference for --diameter auto was measured: it segments "
                "as it is, and --resume measures that too (nothing trained again)",
                file=sys.stderr,
            )
        elif checkpoint.is_file():
            print("cellprop-train: interrupted; continue with --resume", file=sys.stderr)
        else:
            print(
                "cellprop-train: interrupted before the first epoch ended: nothing kept, "
                "run it again to start anew",
                file=sys.stderr,
            )
        return 130
    summary = result.info["training"]
    detection = summary.get("val_detection") or {}
    # without validation images the loss that chose the network is the training images'
    loss = "validation loss" if summary.get("val_images") else "training loss (no validation)"
    print(
        f"model written to {args.out}: {loss} {summary['best_val_loss']:.5f}"
        + (f", detection F1 {detection['f1']:.3f}" if detection else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
