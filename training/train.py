"""Training the detection U-Net from cell centres, and writing the model folder.

`train` is the whole run: read datasets, split by image, build Gaussian targets at the working
scale, fit with MSE on random augmented crops (Adam), keep the checkpoint with the lowest
validation loss, export it with `cellprop.training.export.export_model`. Everything random is drawn
from generators seeded by ``(seed, epoch)``, so a run is reproducible and a resumed run continues
exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from cellprop.engine.normalise import (
    pad_to_multiple,
    prepare,
    to_network_coordinates,
    to_original_coordinates,
)

from .augment import Augmentation, random_crop
from .data import DatasetError, Sample, load_datasets, source_channel
from .export import MODALITIES, ExportCheck, export_model
from .metrics import DetectionScore, detection_score, find_peaks
from .start import (
    StartingModel,
    calibrate_batchnorm,
    inherited_defaults,
    network_from,
    starting_model,
)
from .targets import blob_diameter, estimate_cell_diameter, gaussian_targets
from .unet import UNet

__all__ = [
    "START_EPOCHS",
    "TrainConfig",
    "TrainResult",
    "PreparedImage",
    "auto_scale",
    "prepare_sample",
    "split_samples",
    "evaluate",
    "train",
]

#: Cells are brought to about this size at the network's scale by the automatic --scale (their
#: given diameter, else the distance between neighbours): enough for the 3x3 convs to see a
#: cell, small enough for a CPU.
TARGET_CELL_SIZE_PX = 20.0

#: Epochs a training started from a model's network runs unless told otherwise (--from): it
#: adapts the network, rather than learning everything (40). On two hela-dic frames started
#: from dic (README, *Starting from a model*), 8 epochs kept what the network knew.
START_EPOCHS = 10

#: Default Gaussian sigma as a fraction of the cells' size (their given diameter, else the
#: median nearest-neighbour distance): 0.3 gives the reference code's 12 px on the paper's C2C12
#: data (neighbours about 39 px apart).
SIGMA_PER_CELL_SIZE = 0.3

#: Training images on which the size of fluorescent nuclei is measured (blob_diameter), when
#: no --cell-diameter is given: about half a second each.
BLOB_IMAGES = 5


@dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in the checkpoint and model.json)."""

    datasets: list[str]
    out: str
    work: str | None = None  # checkpoints; default OUT/checkpoints
    name: str = "custom"
    description: str = ""
    # None: the starting model's (start_from), else phase
    modality: str | None = None
    # The channel of the dataset's images the cells were clicked on (a colour image's: 0 grey,
    # 1 red, 2 green, 3 blue), as `cellprop segment --channel` counts them.
    channel: int = 0
    scale: float | None = None  # None: auto, cells ~20 px across at the network's scale
    sigma: float | None = None  # original pixels; None: 0.3 x the cells' size
    # Typical cell diameter, original pixels; None: the median neighbour distance, which equals
    # it for confluent cells and overestimates it for sparse ones (gowt1: 106 px for 60 px
    # nuclei). The cells' size the automatic scale and sigma follow.
    cell_diameter: float | None = None
    # None: the starting model's (start_from), else 16 and 3
    base_channels: int | None = None
    depth: int | None = None
    epochs: int = 40
    steps_per_epoch: int = 50
    crop: int = 128
    batch: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    val: list[str] = field(default_factory=list)  # image names (or stems) held out
    val_fraction: float = 0.15
    low: float = 1.0
    high: float = 99.8
    augment: bool = True
    # Gamma range of the intensity augmentation (log-uniform). Widen it for modalities whose
    # cameras and viewers apply different gammas (fluorescence: nuclei recipe, 0.5-2.0).
    gamma: tuple[float, float] = (0.8, 1.25)
    # Random zoom of training crops (cells this much larger or smaller than the scale makes them).
    zoom: tuple[float, float] = (0.8, 1.25)
    threads: int = 2
    resume: bool = False
    # replace a model, or other files, in ``out`` (without it, training into a folder that
    # holds anything but an earlier run's checkpoints to --resume is refused)
    overwrite: bool = False
    command: str = ""
    # A model (a shipped model's name or a model folder) whose network the training starts
    # from instead of a new one (training.start); None: a new network
    start_from: str | None = None

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        if self.modality is not None and self.modality not in MODALITIES:
            raise ValueError(f"--modality must be one of {', '.join(MODALITIES)}")
        if self.channel < 0:
            raise ValueError("--channel must be 0 or more (channels count from 0)")
        options = {"steps_per_epoch": "steps"}  # cellprop-train's name of each
        for name in ("base_channels", "depth", "epochs", "steps_per_epoch", "batch", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(
                    f"--{options.get(name, name).replace('_', '-')} must be at least 1"
                )
        if not 0 < self.learning_rate < math.inf:
            raise ValueError("--lr must be positive")
        if not 0 <= self.seed < 2**32:  # (numpy's seeds)
            raise ValueError("--seed must be a whole number from 0 to 4294967295")
        if self.scale is not None and not 0 < self.scale <= 4:
            raise ValueError("--scale must be in (0, 4]")
        if self.sigma is not None and not 0 < self.sigma < math.inf:
            raise ValueError("--sigma must be a positive number of pixels")
        if self.cell_diameter is not None and not 0 < self.cell_diameter < math.inf:
            raise ValueError("--cell-diameter must be a positive number of pixels")
        if self.depth is not None and (self.crop % 2**self.depth or self.crop < 2**self.depth):
            raise ValueError(f"--crop must be a multiple of 2**depth = {2**self.depth}")
        if self.crop < 2 or self.crop % 2:  # (the depth the model gives: checked with it)
            raise ValueError("--crop must be an even number of pixels, 2 or more")
        if not 0 <= self.val_fraction < 1:
            raise ValueError("--val-fraction must be in [0, 1)")
        if not 0 < self.gamma[0] <= 1 <= self.gamma[1]:
            raise ValueError("--gamma LOW HIGH must satisfy 0 < LOW <= 1 <= HIGH")
        if not 0.25 <= self.zoom[0] <= 1 <= self.zoom[1] <= 4:
            raise ValueError("--zoom LOW HIGH must satisfy 0.25 <= LOW <= 1 <= HIGH <= 4")


_RESUME_MUST_MATCH = (
    "datasets",
    "start_from",
    "modality",
    "cell_diameter",
    "channel",
    "scale",
    "sigma",
    "base_channels",
    "depth",
    "seed",
    "crop",
    "batch",
    "steps_per_epoch",
    "learning_rate",
    "val",
    "val_fraction",
    "low",
    "high",
    "augment",
    "gamma",
    "zoom",
)
_OPTION = {
    "datasets": "the dataset list",
    "start_from": "--from",
    "base_channels": "--base-channels",
    "steps_per_epoch": "--steps",
    "learning_rate": "--lr",
    "val_fraction": "--val-fraction",
    "augment": "augmentation",
    "low": "the low percentile",
    "high": "the high percentile",
}
_OPTION.update({k: f"--{k.replace('_', '-')}" for k in _RESUME_MUST_MATCH if k not in _OPTION})


@dataclass
class PreparedImage:
    """A sample at the network's scale: normalised image, target, centres (original pixels)."""

    name: str
    image: np.ndarray
    target: np.ndarray
    points: np.ndarray  # original pixels (x, y), for detection scores


@dataclass
class TrainResult:
    model: UNet
    info: dict
    check: ExportCheck
    history: list[dict]


def auto_scale(cell_size: float) -> float:
    """Resize factor bringing cells of this size (original pixels: their diameter, or the
    distance between neighbours) near 20 px, in steps of 0.05."""
    scale = TARGET_CELL_SIZE_PX / cell_size
    return float(np.clip(round(scale * 20) / 20, 0.1, 2.0))


def resolve_start(config: TrainConfig) -> tuple[TrainConfig, StartingModel | None]:
    """The run's settings with what they leave open filled in: the architecture, modality and
    input normalisation of the model it starts from (``start_from``), else a new network's
    (16 base channels, depth 3, phase). ValueError where an option given contradicts the
    model started from (its network cannot change shape)."""
    if not config.start_from:
        return replace(
            config,
            base_channels=config.base_channels or 16,
            depth=config.depth or 3,
            modality=config.modality or "phase",
        ), None
    start = starting_model(config.start_from)
    base, depth = start.architecture
    for option, given, theirs in (
        ("--base-channels", config.base_channels, base),
        ("--depth", config.depth, depth),
    ):
        if given is not None and given != theirs:
            raise ValueError(
                f"{option} {given}: the network of {start.name} has {theirs}, and a training "
                "started from it keeps its shape (leave the option out)"
            )
    low, high = start.normalisation
    resolved = replace(
        config,
        base_channels=base,
        depth=depth,
        modality=config.modality or start.info.get("modality") or "phase",
        low=low,
        high=high,
    )
    resolved.check()
    return resolved, start


def start_scale(start: StartingModel, cell_size: float) -> float:
    """The working scale at which cells of ``cell_size`` original pixels have the size the
    starting model's network sees its cells at."""
    return float(np.clip(round(start.network_diameter / cell_size, 3), 0.05, 4.0))


def start_sigma(start: StartingModel) -> float:
    """The width of the target blobs the starting model was trained with, at its working
    scale (model.json ``sigma_px`` is at the scale it was trained at; a shipped model may run
    at another, ``training.recipe.scale``)."""
    info = start.info
    trained_at = ((info.get("training") or {}).get("recipe") or {}).get("scale")
    working = float(info["input"]["scale"])
    return float(info.get("sigma_px") or SIGMA_PER_CELL_SIZE * start.network_diameter) * (
        working / float(trained_at or working)
    )


def prepare_sample(
    sample: Sample, scale: float, sigma_px: float, low: float, high: float
) -> PreparedImage:
    """Normalise and resize a sample's image and build its target at the network's scale."""
    image = prepare(sample.pixels, scale, low, high)
    target = gaussian_targets(image.shape, to_network_coordinates(sample.points, scale), sigma_px)
    return PreparedImage(sample.name, image, target, sample.points)


def split_samples(
    samples: list[Sample], val: list[str], val_fraction: float
) -> tuple[list[Sample], list[Sample]]:
    """Split by image into training and validation samples.

    With ``val`` names (file names or stems, with or without the ``dataset/`` prefix) those are
    held out. Otherwise the last ``round(val_fraction * n)`` images (at least one) of each
    dataset, sorted by name, are, when the dataset has at least two; whole images are held out so that neighbouring crops
    of one image cannot leak into validation.
    """
    if val:
        wanted = set(val)
        # a path to the image, as a shell completes it (cells/images/0002.png), names it too
        paths = {os.path.realpath(v): v for v in val if os.path.isfile(v)}

        def names(s: Sample) -> set:
            named = {s.name, s.path.name, s.path.stem}
            return named | {paths[p]} if (p := os.path.realpath(s.path)) in paths else named

        valid = [s for s in samples if names(s) & wanted]
        found = {n for s in valid for n in names(s)}
        missing = sorted(wanted - found)
        if missing:
            raise DatasetError(
                f"--val: no such image: {', '.join(missing)} (give an image of the training "
                "set by its file name, its name without extension, or its path; an image "
                "without cell centres is left out, and cannot be a validation image either)"
            )
        return [s for s in samples if not names(s) & wanted], valid
    train, valid = [], []
    by_dataset: dict[str, list[Sample]] = {}
    for s in samples:
        by_dataset.setdefault(s.name.split("/")[0], []).append(s)
    for group in by_dataset.values():
        group = sorted(group, key=lambda s: s.name)
        n_val = max(1, round(val_fraction * len(group))) if len(group) >= 2 and val_fraction else 0
        train.extend(group[: len(group) - n_val])
        valid.extend(group[len(group) - n_val :])
    return train, valid


def _batch(
    images: list[PreparedImage],
    rng: np.random.Generator,
    config: TrainConfig,
    augmentation: Augmentation,
) -> tuple[torch.Tensor, torch.Tensor]:
    # Images are drawn in proportion to their area, so every pixel is equally likely.
    areas = np.array([im.image.size for im in images], dtype=np.float64)
    picks = rng.choice(len(images), size=config.batch, p=areas / areas.sum())
    crops = [
        random_crop(images[i].image, images[i].target, config.crop, rng, augmentation)
        for i in picks
    ]
    x = torch.from_numpy(np.stack([c[0] for c in crops])[:, None])
    y = torch.from_numpy(np.stack([c[1] for c in crops])[:, None])
    return x, y


def predict(model: UNet, image: np.ndarray) -> np.ndarray:
    """Likelihood of a whole normalised image (padded to the stride, then cropped back)."""
    padded = pad_to_multiple(image, model.stride)
    with torch.no_grad():
        y = model.eval()(torch.from_numpy(np.ascontiguousarray(padded))[None, None])
    return y[0, 0, : image.shape[0], : image.shape[1]].numpy()


def evaluate(
    model: UNet, images: list[PreparedImage], scale: float, threshold: float = 0.5
) -> tuple[float, DetectionScore]:
    """Validation loss (MSE over all pixels) and detection score within 10 original pixels."""
    total, count, score = 0.0, 0, DetectionScore(0, 0, 0)
    for im in images:
        likelihood = predict(model, im.image)
        total += float(np.sum((likelihood - im.target) ** 2))
        count += likelihood.size
        peaks = to_original_coordinates(find_peaks(likelihood, threshold), scale)
        score = score + detection_score(peaks, im.points, 10.0)
    return (total / count if count else float("nan")), score


def _learning_rate(config: TrainConfig, epoch: int) -> float:
    # Cosine decay to 5 %, a function of the epoch alone so that resuming needs no scheduler state.
    return config.learning_rate * (
        0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    )


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        unit="step",
        dynamic_ncols=True,
        desc="training",
    )


def train(config: TrainConfig, progress: bool = True, log=print) -> TrainResult:
    """Run a whole training and export the best model to ``config.out``.

    Stopped (Ctrl-C) before its first epoch ended, it leaves no folder it made (an empty
    model folder would refuse the same command run again, and there is nothing to resume).

    Parameters
    ----------
    config : TrainConfig
        The run's settings (validated with ``config.check()``).
    progress : bool
        Show a progress bar (loss, validation loss, ETA) on stderr.
    log : callable or None
        Receives one line per event (datasets read, each epoch's summary, export).

    Returns
    -------
    TrainResult
        The best model, the model.json content, the export check and per-epoch history.
    """
    out = Path(config.out)
    work = Path(config.work) if config.work else out / "checkpoints"
    made = _folders_to_make(out) + _folders_to_make(work)  # (their parents made too)
    try:
        return _train(config, progress, log)
    except BaseException:  # stopped or failed: the folders it made and left empty go
        if not (work / "checkpoint.pt").is_file():
            try:  # (what stopped it may be a folder that cannot be written: said as it is)
                if work.is_dir():
                    (work / "checkpoint.pt.partial").unlink(missing_ok=True)
                for folder in sorted(set(made), key=lambda f: len(f.parts), reverse=True):
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
            except OSError:
                pass
        raise


def _folders_to_make(folder: Path) -> list[Path]:
    """``folder`` and each of its parents that does not exist yet (a training makes them)."""
    folder = folder.absolute()
    missing = []
    for each in (folder, *folder.parents):
        if each.exists():
            break
        missing.append(each)
    return missing


def _same_folders(key: str, before, config: TrainConfig) -> bool:
    """Whether a checkpoint's dataset list is the one given now, spelled otherwise (ds1/ for
    ds1, or its whole path): the same folders (resuming was refused)."""
    if key != "datasets" or not isinstance(before, (list, tuple)):
        return False
    now = config.datasets
    return len(before) == len(now) and all(
        Path(a).resolve() == Path(b).resolve() for a, b in zip(before, now, strict=True)
    )


def _train(config: TrainConfig, progress: bool, log) -> TrainResult:
    """:func:`train`'s work."""
    config.check()
    config, start = resolve_start(config)
    config.check()  # again with the network's depth known (a new one's, or the model's)
    log = log or (lambda _line: None)
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    out = Path(config.out)
    work = Path(config.work) if config.work else out / "checkpoints"
    checkpoint_path = work / "checkpoint.pt"
    resuming = config.resume and checkpoint_path.is_file()
    if not (resuming or config.overwrite) and out.is_dir() and any(out.iterdir()):
        held = "a model" if (out / "model.json").is_file() else "files"
        raise ValueError(
            f"--out {out} holds {held} already"
            + (f" and no checkpoint to resume from ({checkpoint_path})" if config.resume else "")
            + ": nothing replaced; give another --out"
            # (--resume only where there is a training to go on with)
            + (
                ", --resume to go on with the training there"
                if not config.resume and checkpoint_path.is_file()
                else ""
            )
            + ", or --overwrite to replace it"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder for the model")
    if work.exists() and not work.is_dir():
        raise ValueError(f"--work {work} is a file, not a folder for the checkpoints")
    if config.work and not (resuming or config.overwrite) and checkpoint_path.is_file():
        raise ValueError(  # another training's, which --resume could still go on with
            f"--work {work} holds a training's checkpoint already ({checkpoint_path}): "
            "nothing replaced; give another --work, --resume to go on with that training, "
            "or --overwrite to replace it"
        )
    hidden = _hidden_by(config.name, out)
    if hidden is not None:
        log(
            f"note: a model named {hidden.name!r} is installed already ({hidden.path}): "
            f"--model {hidden.name} segments with that one, and --model {out.resolve()} with "
            "this one; --name and another --out give this one a name of its own"
        )

    notes: list[str] = []
    samples = load_datasets(config.datasets, config.channel, notes)
    for note in notes:  # what was left out or merged: "note:", as the window shows them
        log(f"note: {note}")
    train_samples, val_samples = split_samples(samples, config.val, config.val_fraction)
    if not train_samples:
        raise DatasetError("no training images left after holding out the validation images")
    try:
        neighbour: float | None = estimate_cell_diameter([s.points for s in train_samples])
    except ValueError:  # one cell an image: the size must be given
        if config.cell_diameter is None:
            raise DatasetError(
                "every training image has one cell centre, so the distance between "
                "neighbours does not tell the cells' size: give it (--cell-diameter PIXELS)"
            ) from None
        neighbour = None
    # the cells' size: the diameter given, else the spacing of the points (right for cells
    # that touch; sparse cells would come out far too small at the automatic scale), or for
    # fluorescence the bright nuclei's own size where that is smaller (sparse nuclei)
    blob = None
    if config.cell_diameter is None and config.modality == "fluorescence":
        blob = blob_diameter([(s.pixels, s.points) for s in train_samples[:BLOB_IMAGES]])
    size = config.cell_diameter or min(neighbour, blob or neighbour)
    if config.scale is not None:
        scale = config.scale
    else:
        scale = start_scale(start, size) if start else auto_scale(size)
    if config.sigma is not None:
        sigma_orig = config.sigma
    else:
        sigma_orig = start_sigma(start) / scale if start else SIGMA_PER_CELL_SIZE * size
    sigma_px = sigma_orig * scale
    if start:
        log(
            f"starting from the network of {start.name} ({start.path}): cells "
            f"{start.network_diameter:.0f} px across at its scale, as it saw its own"
        )
        theirs = start.info.get("modality")
        if theirs and theirs != config.modality:
            log(
                f"note: {start.name} was trained on {theirs} images, these are "
                f"{config.modality}: its segmentation defaults are not taken, and a network "
                "of another kind of microscopy can be a worse start than a new one"
            )
    log(
        f"{len(train_samples)} training and {len(val_samples)} validation images, "
        f"{sum(len(s.points) for s in samples)} centres"
        + (f"; neighbours {neighbour:.1f} px apart" if neighbour is not None else "")
        + (f", cells {size:.1f} px across" if size != neighbour else "")
        + (" (the nuclei's size at the points)" if blob is not None and size == blob else "")
        + f": working scale {scale:g}, sigma {sigma_px:.2f} px at that scale"
    )
    # the images are planes of other files, all of one channel: the one the model segments
    source = None if config.channel else source_channel(samples)
    if source:
        log(
            f"the images were taken from channel {source} of their files (sources.csv): the "
            "model segments that channel of a file unless told otherwise"
        )
    train_images = [
        prepare_sample(s, scale, sigma_px, config.low, config.high) for s in train_samples
    ]
    val_images = [prepare_sample(s, scale, sigma_px, config.low, config.high) for s in val_samples]
    too_small = [im.name for im in train_images if min(im.image.shape) < 8]
    if too_small:
        raise DatasetError(
            f"images too small at scale {scale:g} (under 8 px across for the network): "
            f"{', '.join(too_small)}; a larger --scale, or larger images, train on them"
        )

    # (not before: a dataset refused leaves none.) The model's folder first: with --work
    # elsewhere, an --out that cannot be written was found only after the whole training.
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    for folder, option in ((out, "--out"), (work, "--work")):
        _writable(folder, option)  # (a folder there already, read-only: before, not after)
    if not resuming:  # (--overwrite) the replaced training's: never resumed as this one's
        checkpoint_path.unlink(missing_ok=True)
        (work / "checkpoint.pt.partial").unlink(missing_ok=True)
    torch.manual_seed(config.seed)
    model = network_from(start) if start else UNet(config.base_channels, config.depth)
    if start and not (config.resume and checkpoint_path.is_file()):
        # the network as the model was; its BatchNorms take these images' statistics
        rng = np.random.default_rng([config.seed, 10**6])
        calibrate_batchnorm(
            model, [_batch(train_images, rng, config, Augmentation.none())[0] for _ in range(4)]
        )
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history: list[dict] = []
    best_loss, best_state, first_epoch, seconds_before = math.inf, None, 0, 0.0
    if config.resume and not resuming:  # said: not the training hoped for
        log(f"--resume: no checkpoint at {checkpoint_path}, so the training starts anew")
    trained_on = _trained_on(train_samples, val_samples, scale, sigma_px)
    if resuming:
        try:
            state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
            saved = state["config"]
        except Exception as exc:  # cut short (a full disk), or not a checkpoint
            raise ValueError(
                f"{checkpoint_path}: not a checkpoint that can be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'empty'}); remove it to start "
                "the training anew"
            ) from None
        # Only the number of epochs (and threads, output, wording) may change on resume: the
        # rest would silently mix two different trainings in one model.
        # A checkpoint written before an option existed was trained with its default.
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        for key in _RESUME_MUST_MATCH:
            before = saved.get(key, defaults[key])
            if key == "datasets" and "dataset_folders" in state:  # whatever folder it was in
                before = state["dataset_folders"]
            if before != getattr(config, key) and not _same_folders(key, before, config):
                then, now = (
                    "not given" if v is None else v for v in (before, getattr(config, key))
                )
                raise ValueError(
                    f"{checkpoint_path}: cannot resume, {_OPTION.get(key, key)} was "
                    f"{then} (now {now}); resume with what it began "
                    "with (a folder moved since: moved back), or --overwrite to train anew"
                )
        changed = _set_changed(state.get("trained_on"), trained_on)
        if changed:  # the same options, another set: two trainings in one model
            raise ValueError(
                f"{checkpoint_path}: cannot resume, the training set changed since the "
                f"training began ({changed}); --overwrite trains anew on the set as it is"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        history, best_loss, best_state = state["history"], state["best_loss"], state["best_state"]
        first_epoch, seconds_before = state["epoch"] + 1, state["seconds"]
        log(f"resuming from {checkpoint_path} after epoch {first_epoch}")
        epochs_then = saved.get("epochs", config.epochs)
        if first_epoch >= config.epochs:  # --epochs counts them all, not more of them
            log(
                f"--resume: {first_epoch} epochs trained already, --epochs {config.epochs} "
                "asks for no more: the model is exported as it stands (--epochs counts all "
                "the epochs of a training, those done included)"
            )
        elif epochs_then != config.epochs:  # allowed, but it changes the learning rate's course
            log(
                f"--resume: {config.epochs} epochs now, {epochs_then} when the training began "
                f"(--epochs {epochs_then} keeps them)"
            )

    augmentation = (
        Augmentation(gamma=tuple(config.gamma), zoom=tuple(config.zoom))
        if config.augment
        else Augmentation.none()
    )
    total_steps = max(config.epochs, first_epoch) * config.steps_per_epoch
    bar = _progress(total_steps, first_epoch * config.steps_per_epoch, progress)
    partial = work / "checkpoint.pt.partial"  # written whole, then put in the checkpoint's place
    try:
        for epoch in range(first_epoch, config.epochs):
            rng = np.random.default_rng([config.seed, epoch])
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(config, epoch)
            model.train()
            losses = []
            for _ in range(config.steps_per_epoch):
                x, y = _batch(train_images, rng, config, augmentation)
                loss = F.mse_loss(model(x), y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-20:]):.5f}")
            train_loss = float(np.mean(losses))
            # Without validation images, the training loss picks the best checkpoint.
            val_loss, score = (
                evaluate(model, val_images, scale) if val_images else (train_loss, None)
            )
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss}
            if score is not None:
                record["val_f1"] = round(score.f1, 4)
            history.append(record)
            if val_loss < best_loss:
                best_loss = val_loss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bar.set_postfix(epoch=epoch + 1, loss=f"{train_loss:.5f}", val=f"{val_loss:.5f}")
            torch.save(
                {
                    "config": asdict(config),
                    # the sets' folders, whatever folder it was started in (resume compares)
                    "dataset_folders": [str(Path(d).resolve()) for d in config.datasets],
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "history": history,
                    "best_loss": best_loss,
                    "best_state": best_state,
                    "seconds": seconds_before + time.perf_counter() - started,
                    "trained_on": trained_on,  # (resume compares: the set may change)
                },
                partial,
            )
            os.replace(partial, checkpoint_path)  # whole, or the one before: never cut short
            # Said once kept: a Stop just after this line keeps the epoch (the window tells
            # "the epochs done are kept" by it).
            log(
                f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.5f}"
                + (f", validation loss {val_loss:.5f}" if val_images else "")
                + (f", detection F1 {score.f1:.3f}" if score is not None else "")
                + (" (best)" if best_loss == val_loss else "")
            )
    finally:
        bar.close()

    final_loss = history[-1]["val_loss"] if history else math.nan
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    torch.save({"config": asdict(config), "model": model.state_dict()}, work / "best.pt")
    score = evaluate(model, val_images, scale)[1] if val_images else None
    seconds = seconds_before + time.perf_counter() - started
    training = {
        "datasets": [Path(os.path.abspath(d)).name for d in config.datasets],
        "channel": config.channel,
        "source_channel": source,
        "train_images": [s.name for s in train_samples],
        "val_images": [s.name for s in val_samples],
        "points": int(sum(len(s.points) for s in samples)),
        "train_points": int(sum(len(s.points) for s in train_samples)),
        "epochs": len(history),  # those trained (a run resumed with fewer asked: its own)
        "steps_per_epoch": config.steps_per_epoch,
        "batch": config.batch,
        "crop": config.crop,
        "augment": config.augment,
        "gamma": list(config.gamma),
        "zoom": list(config.zoom),
        "best_val_loss": round(float(best_loss), 6),
        "final_val_loss": round(float(final_loss), 6),
        "val_detection": (
            dict(score.as_dict(), threshold=0.5, match_radius_px=10.0) if score else None
        ),
        "median_neighbour_distance_px": None if neighbour is None else round(neighbour, 2),
        **({"blob_diameter_px": round(blob, 2)} if blob is not None else {}),
        "seconds": round(seconds, 1),
        "seed": config.seed,
        "command": config.command,
        **({"started_from": start.record()} if start else {}),
    }
    # the export checked on the largest image (a held-out one where any is as large)
    check_image = max(val_images + train_images, key=lambda im: min(im.image.shape)).image
    info, check = export_model(
        model,
        out,
        name=config.name,
        description=config.description
        or f"{config.modality} model trained on " + ", ".join(training["datasets"]),
        modality=config.modality,
        scale=scale,
        normalisation={"method": "percentile", "low": config.low, "high": config.high},
        cell_diameter_px=size * scale,
        sigma_px=sigma_px,
        training=training,
        check_image=check_image,
        # the starting model's defaults, where the model stays of its modality
        defaults=(
            inherited_defaults(start, size)
            if start and config.modality == start.info.get("modality")
            else None
        ),
    )
    log(
        f"exported to {out} (onnxruntime vs torch: likelihood max abs diff "
        f"{check.unet_max_abs_diff:.1e}, guided relative error {check.guided_rel_error:.1e})"
    )
    info = _measure_size_reference(out, info, val_samples or train_samples[:4], log)
    return TrainResult(model, info, check, history)


def _writable(folder: Path, option: str) -> None:
    """OSError naming ``folder`` (and ``option``) where no file can be written in it: found
    before the training, not once it is over (a read-only share, a disk full)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(
            exc.errno, f"{exc.strerror or exc} ({option}: nothing trained)", str(folder)
        ) from None


def _trained_on(train_samples, val_samples, scale: float, sigma_px: float) -> dict:
    """What a training learns from besides its options: the images it trains and validates
    on, a fingerprint of their centres, and the working scale and target width they gave
    (automatic, from the centres' spacing). A checkpoint keeps it, and --resume compares it."""
    digest, pixels = hashlib.sha256(), hashlib.sha256()
    for sample in [*train_samples, *val_samples]:
        digest.update(sample.name.encode("utf-8", "surrogateescape"))
        digest.update(np.round(np.asarray(sample.points, np.float64), 3).tobytes())
        image = np.ascontiguousarray(sample.pixels)
        pixels.update(f"{image.shape}{image.dtype.str}".encode())
        pixels.update(image.data)
    return {
        "train_images": [s.name for s in train_samples],
        "val_images": [s.name for s in val_samples],
        "centres": digest.hexdigest()[:16],
        "pixels": pixels.hexdigest()[:16],
        "scale": round(float(scale), 6),
        "sigma_px": round(float(sigma_px), 4),
    }


def _set_changed(then: dict | None, now: dict) -> str:
    """How the training set differs from the one a checkpoint was trained on, in words; ""
    where alike, or the checkpoint (written before it was kept) does not say."""
    if not then:
        return ""
    said = []
    for key, what in (("train_images", "training images"), ("val_images", "validation images")):
        before, after = then.get(key, []), now[key]
        if before != after:
            gone = [n for n in before if n not in after]
            new = [n for n in after if n not in before]
            parts = [f"{len(before)} then, {len(after)} now"]
            parts += [f"{', '.join(gone[:3])} no longer"] if gone else []
            parts += [f"{', '.join(new[:3])} new"] if new else []
            said.append(f"{what}: " + "; ".join(parts))
    if then.get("centres") != now["centres"] and not said:
        said.append("cell centres added, removed or moved")
    if then.get("pixels", now["pixels"]) != now["pixels"] and not said:
        said.append("images of the same names replaced by others (their pixels differ)")
    if then.get("scale") != now["scale"]:
        said.append(f"working scale {then.get('scale'):g} then, {now['scale']:g} now")
    elif then.get("sigma_px") != now["sigma_px"]:  # (fluorescence: from the nuclei's size)
        said.append(f"target width {then.get('sigma_px'):g} px then, {now['sigma_px']:g} now")
    return "; ".join(said)


def _hidden_by(name: str, out: Path):
    """The installed model (shipped, or in CELLPROP_MODEL_PATH) that ``--model`` finds by this
    model's name, or by its folder's, instead of it (a model trained into ``phase/``); None
    where none."""
    from cellprop.engine.model import list_models

    for model in list_models():
        if {name, out.name} & {
            model.name,
            model.path.name,
        } and model.path.resolve() != out.resolve():
            return model
    return None


def _measure_size_reference(out: Path, info: dict, samples, log) -> dict:
    """model.json ``diameter_estimate``: where the exported model's centres are most confident.

    ``--diameter auto`` (cellprop.engine.size) corrects its estimate by this; measured on the
    validation images (else a few training images), with the exported ONNX model.
    """
    from cellprop.engine import load_model
    from cellprop.engine.size import reference_record

    model = load_model(out, device="cpu")
    try:
        record = reference_record(model, [s.name for s in samples], [s.pixels for s in samples])
    except ValueError as exc:  # a model that finds nothing yet: --diameter auto assumes 1
        log(f"size reference not measured ({exc})")
        return info
    info["diameter_estimate"] = record
    (out / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log(
        f"size reference for --diameter auto: {record['reference']:.3f} "
        f"({len(record['magnifications'])} images)"
    )
    return info
