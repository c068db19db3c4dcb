"""Model folders (docs/ARCHITECTURE.md) and the onnxruntime sessions that run them.

A model folder holds ``unet.onnx`` (image -> likelihood), ``guided.onnx`` (image, grad_output ->
guided-backprop grad_input) and ``model.json``. Sessions run on CUDA only when a session really
initialises and runs there; otherwise on the CPU, without onnxruntime's CUDA log noise.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from .errors import ModelError

__all__ = [
    "Model",
    "ModelInfo",
    "available_devices",
    "broken_models",
    "list_models",
    "load_model",
    "load_models",
    "models_folder",
]

# onnxruntime logs at WARNING and above by default, and a CUDA build on a machine without CUDA
# libraries logs a screen of errors. Users act on our messages, not on those.
_ORT_SEVERITY = 3  # ERROR: real failures still reach stderr
_ORT_SILENT = 4  # FATAL only: used while probing CUDA, whose failure is expected and handled

_ONES_3X3 = b"\x00\x00\x80?" * 9  # nine float32 ones, little-endian: the probe's kernel
# An ONNX graph "y = Conv(x, w)", a 3 x 3 kernel of ones over a [1, 1, 3, 3] input, padded by
# 1; serialised with onnx.helper (167 bytes). Used to find out whether the CUDA provider really
# works before any model is loaded: a convolution, because cuDNN (which onnxruntime's CUDA
# provider loads only when a network first runs) is needed by every model, and a machine with
# CUDA but without cuDNN must run on the CPU rather than fail at the first image.
_PROBE_ONNX = (
    b'\x08\x08\x12\x00:\x9a\x01\n"\n\x01x\n\x01w\x12\x01y"\x04Conv*\x11\n\x04pads@\x01@\x01@\x01'
    b"@\x01\xa0\x01\x07\x12\x05probe*3\x08\x01\x08\x01\x08\x03\x08\x03\x10\x01B\x01wJ$"
    + _ONES_3X3
    + b"Z\x1b\n\x01x\x12\x16\n\x14\x08\x01\x12\x10\n\x02\x08\x01\n\x02\x08\x01\n\x02\x08\x03\n\x02"
    b"\x08\x03b\x1b\n\x01y\x12\x16\n\x14\x08\x01\x12\x10\n\x02\x08\x01\n\x02\x08\x01\n\x02\x08"
    b"\x03\n\x02\x08\x03B\x04\n\x00\x10\x11"
)
# What it gives for an input of ones: each pixel the number of pixels in its 3 x 3 window.
_PROBE_ANSWER = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], np.float32)

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# cuDNN's convolution algorithm for each input shape: onnxruntime's default (EXHAUSTIVE) times
# every algorithm the first time a shape is seen, worth it for a server that sees one shape a
# million times. cellprop sees a new shape with nearly every image and cell window.
_CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}


# onnxruntime's logger is one setting for the whole process: the CUDA probe turns it down to
# FATAL and back, so two threads probing at once (the app loads a model while its settings
# panel asks which devices exist) would turn it back up under each other and let the failed
# CUDA load's screen of errors through. One lock around both, and the probe's answer kept.
_ORT_LOCK = threading.RLock()
_CUDA: list[bool] = []  # the probe's answer, once known


@cache
def _ort():
    """onnxruntime, imported on first use with its default logger quietened once."""
    with _ORT_LOCK:
        import onnxruntime as ort

        ort.set_default_logger_severity(_ORT_SEVERITY)
        return ort


def _session_options(severity: int = _ORT_SEVERITY):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = severity
    # Shapes change from call to call (image sizes, batch sizes): a memory pattern planned for
    # one shape is useless for the next, and the CPU arena would keep the largest call's memory
    # for the life of the process. Without both, peak memory follows the current call.
    options.enable_mem_pattern = False
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = os.environ.get("CELLPROP_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


def _cuda_works() -> bool:
    """True when a CUDA session initialises and runs; probed once per process, silently."""
    with _ORT_LOCK:
        if not _CUDA:
            _CUDA.append(_probe_cuda())
        return _CUDA[0]


def _preload_cuda_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries of pip's NVIDIA packages, where there are any.

    onnxruntime-gpu's CUDA provider needs libcublas, libcudart, libcudnn, ... (the first ones
    when it loads, cuDNN when a network first runs): found only on the system's library path,
    unless they are loaded first. ``pip install cellprop[cuda]`` puts them
    beside onnxruntime (nvidia/cu13, nvidia/cudnn), which onnxruntime's own ``preload_dlls``
    (1.21 and later) loads. It prints what it cannot find: that is kept from the user, who is
    told the device in use instead; a machine without them runs on the CPU as before.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        with open(os.devnull, "w") as null, redirect_stdout(null), redirect_stderr(null):
            preload()
    except Exception:  # a folder or library it did not expect: the CPU it is
        pass


def _probe_cuda() -> bool:
    ort = _ort()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        ort.set_default_logger_severity(_ORT_SILENT)
        _preload_cuda_libraries(ort)
        session = ort.InferenceSession(
            _PROBE_ONNX,
            _session_options(_ORT_SILENT),
            providers=[("CUDAExecutionProvider", _CUDA_OPTIONS), "CPUExecutionProvider"],
        )
        if session.get_providers()[0] != "CUDAExecutionProvider":
            return False
        out = session.run(None, {"x": np.ones((1, 1, 3, 3), np.float32)})[0]
        return bool(np.array_equal(np.asarray(out).reshape(3, 3), _PROBE_ANSWER))
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(_ORT_SEVERITY)


def available_devices() -> list[str]:
    """Devices a model can run on here: ``["cpu"]`` or ``["cpu", "cuda"]``."""
    return ["cpu", "cuda"] if _cuda_works() else ["cpu"]


def models_folder() -> Path:
    """The folder of shipped models (``cellprop/resources/models``)."""
    from importlib.resources import files

    return Path(str(files("cellprop.resources"))) / "models"


@dataclass(frozen=True)
class ModelInfo:
    """What a model folder says about itself (model.json), without loading the networks."""

    name: str
    path: Path
    description: str
    modality: str
    info: dict = field(repr=False, compare=False)

    @property
    def channel(self) -> int:
        """The channel of a file it segments when none is chosen (:func:`training_channel`)."""
        return training_channel(self.info)

    def facts(self) -> str:
        """What a user choosing a model wants to know: its cells' size, its measured accuracy.

        "" when model.json says neither.
        """
        facts = []
        diameter = self.info.get("cell_diameter_px")
        scale = self.info.get("input", {}).get("scale") or 1.0
        if diameter:
            facts.append(f"cells about {float(diameter) / float(scale):.0f} px across")
        threshold = (self.info.get("defaults") or {}).get("threshold")
        if isinstance(threshold, (int, float)):
            facts.append(f"detection threshold {threshold:g}")
        validation = self.info.get("validation") or {}
        ours = (validation.get("scores") or {}).get("cellprop") or {}
        shown = [
            f"{name} {_figure(ours[key])}"
            for name, key in (("mDice", "mdice"), ("AP50", "ap50"))
            if isinstance(ours.get(key), (int, float))
        ]
        f1 = ours.get("f1_peaks", ours.get("f1"))
        if not shown and isinstance(f1, (int, float)):
            shown = [f"detection F1 {_figure(f1)}"]
        training = self.info.get("training") or {}
        own = training.get("val_detection") or {}
        if shown:
            facts.append(f"{', '.join(shown)} on held-out {validation.get('dataset', '')} images")
        elif isinstance(own.get("f1"), (int, float)):  # a model you trained: its own check
            n = len(training.get("val_images") or ())
            facts.append(
                f"detection F1 {_figure(own['f1'])} on its {n} validation image"
                + ("s" if n != 1 else "")
            )
        started = training.get("started_from") or {}
        if started.get("name"):
            facts.append(f"adapted from {started['name']}")
        if self.channel:
            facts.append(f"segments channel {self.channel} of a file unless told otherwise")
        return "; ".join(facts)


def _figure(value: float) -> str:
    """A score to three decimals, halves rounded up as the README and validation give them
    (0.7975: 0.798, where binary floating point made it 0.797)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(str(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def training_channel(info: dict) -> int:
    """The channel of their files the model's training images were read from (model.json's
    ``training.channel``, as ``cellprop-train --channel`` counts them: a colour image's 0 grey,
    1 red, 2 green, 3 blue; or, for a training set of planes the window saved, the channel of
    the files they were taken from, ``training.source_channel``): the one to segment when none
    is chosen. 0 (the first) where model.json does not say."""
    training = info.get("training") or {}
    source = training.get("source_channel")
    try:
        channel = int(source if source is not None else training.get("channel") or 0)
    except (TypeError, ValueError):
        return 0
    return max(channel, 0)


def model_info(name_or_path: str | Path) -> ModelInfo:
    """What a model (a name from :func:`list_models`, a folder or its model.json) says about
    itself, without loading its networks. Raises ModelError as :func:`load_model` does."""
    return _info_of(_resolve(name_or_path))


def _info_of(folder: Path) -> ModelInfo:
    info = _read_info(folder)
    return ModelInfo(
        name=str(info.get("name") or folder.name),
        path=folder,
        description=str(info.get("description", "")),
        modality=str(info.get("modality", "")),
        info=info,
    )


def _read_info(folder: Path) -> dict:
    meta = folder / "model.json"
    if not meta.is_file():
        if (folder / "checkpoints" / "checkpoint.pt").is_file():  # cellprop-train's, stopped
            raise ModelError(
                f"{folder}: a training that has not finished (its checkpoint is there, no "
                "model.json yet): the same cellprop-train command with --resume finishes it"
            )
        raise ModelError(f"{folder}: not a model folder (no model.json)")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{folder}: model.json cannot be read ({exc})") from exc
    if not isinstance(info, dict) or info.get("format") != "cellprop-model":
        raise ModelError(f"{folder}: model.json is not a cellprop model description")
    if info.get("format_version") != 1:
        raise ModelError(
            f"{folder}: model format version {info.get('format_version')} is not supported "
            f"by this cellprop (it reads version 1)"
        )
    for key in ("input", "files", "defaults"):
        if not isinstance(info.get(key), dict):
            raise ModelError(f"{folder}: model.json lacks its '{key}' section")
    return info


def _networks_there(folder: Path, info: dict) -> None:
    """ModelError where a network file model.json names is not in ``folder`` (a model copied
    without them: listed as not usable, not offered to ``--model auto``)."""
    files = info.get("files") or {}
    for key in ("unet", "guided"):
        name = str(files.get(key, f"{key}.onnx"))
        if not (folder / name).is_file():
            raise ModelError(f"{folder}: {name} is missing")


def _search_path() -> list[Path]:
    """Shipped models first, then folders listed in CELLPROP_MODEL_PATH (os.pathsep separated):
    each a folder of model folders, or a model's own folder."""
    folders = [models_folder()]
    extra = os.environ.get("CELLPROP_MODEL_PATH", "")
    folders += [Path(p) for p in extra.split(os.pathsep) if p]
    return folders


def _installed() -> tuple[list[ModelInfo], list[tuple[Path, str]]]:
    """One look through the shipped folder and CELLPROP_MODEL_PATH: the models found there,
    sorted by name (the first of a name), and the folders with a model.json that cannot be
    used, each with why (a model hidden by another of its name found first, too)."""
    found: dict[str, ModelInfo] = {}
    broken: list[tuple[Path, str]] = []
    for root in _search_path():
        if not root.is_dir():
            continue
        # a folder of models, or a model's own folder named there
        inside = [root] if (root / "model.json").is_file() else root.iterdir()
        for folder in sorted(p for p in inside if p.is_dir()):
            try:
                model = _info_of(folder)
                _networks_there(folder, model.info)
            except ModelError as exc:
                if (folder / "model.json").is_file():  # a model that cannot be used
                    broken.append((folder, _why(folder, exc)))
                continue
            first = found.setdefault(model.name, model)
            if first is not model:  # hidden by a model of its name found before it
                broken.append(
                    (
                        folder,
                        f"named {model.name!r}, as the model in {first.path}, which "
                        "--model and the window find by that name: give this one's folder, "
                        'or rename it (model.json "name")',
                    )
                )
    return sorted(found.values(), key=lambda m: m.name), broken


def list_models() -> list[ModelInfo]:
    """The models found in the shipped folder (and CELLPROP_MODEL_PATH), sorted by name.

    Broken folders are left out here (:func:`broken_models` says which and why);
    :func:`load_model` on one says what is wrong.
    """
    return _installed()[0]


def _why(folder: Path, exc: Exception) -> str:
    """Why the model in ``folder`` cannot be used, without the folder where the message
    begins with it (said after the folder: "not usable: FOLDER: why")."""
    text = str(exc)
    lead = f"{folder}: "
    return text[len(lead) :] if text.startswith(lead) else text


def broken_models() -> list[tuple[Path, str]]:
    """The folders among the installed models' (the shipped folder, CELLPROP_MODEL_PATH)
    that hold a model.json but cannot be used, each with why (:func:`list_models` leaves
    them out)."""
    return _installed()[1]


def _resolve(name_or_path: str | Path) -> Path:
    """The folder of a model given by folder or by name. A bare name (``phase``) is the
    installed model of that name, even where a folder of that name lies in the working
    folder (a user's images, or a model: ``./phase`` names that one)."""
    path = Path(name_or_path)
    if path.is_file() and path.name == "model.json":
        return path.parent
    text = str(name_or_path)
    bare = isinstance(name_or_path, str) and len(path.parts) == 1 and not text.startswith(".")
    models, broken = _installed()
    # by its name first; else by its folder's name (a model named otherwise than its folder)
    installed = [m.path for m in models if text == m.name]
    installed += [m.path for m in models if text == m.path.name and text != m.name]
    if path.is_dir() and not (bare and installed):
        return path
    if installed:
        return installed[0]
    for folder, why in broken:  # a model of that name there, which cannot be used
        if folder.name == text:
            raise ModelError(f"{folder}: {why}")
    names = ", ".join(m.name for m in models) or "none installed"
    raise ModelError(f"{name_or_path}: no such model folder or model name (available: {names})")


class Model:
    """A loaded model: its description and two onnxruntime sessions.

    Attributes
    ----------
    name, path, info
        The model's name, folder and parsed model.json.
    defaults : dict
        model.json "defaults" (sizes in original image pixels).
    provider : str
        "CPU" or "CUDA": where the sessions really run.
    device : str
        "cpu" or "cuda".
    stride, scale, low, high, cell_diameter_px, receptive_field_radius_px, size_reference
        The input contract of the networks, from model.json.
    """

    def __init__(self, folder: Path, device: str = "auto") -> None:
        info = _read_info(folder)
        self.path = folder
        self.info = info
        self.name = str(info.get("name") or folder.name)
        self.description = str(info.get("description", ""))
        self.modality = str(info.get("modality", ""))
        # the channel of a file to segment when none is chosen: the one it was trained on
        self.channel = training_channel(info)
        self.defaults = dict(info["defaults"])
        from .pipeline import edge_estimate

        try:
            edge_estimate(self.defaults)
        except ValueError as exc:
            raise ModelError(f"{folder}: {exc}") from None
        inp = info["input"]
        norm = inp.get("normalisation", {})
        if norm.get("method", "percentile") != "percentile":
            raise ModelError(f"{folder}: normalisation '{norm.get('method')}' is not supported")
        self.low = float(norm.get("low", 1.0))
        self.high = float(norm.get("high", 99.8))
        self.stride = int(inp.get("stride", 16))
        self.scale = float(inp.get("scale", 1.0))
        self.cell_diameter_px = float(info.get("cell_diameter_px", 0) or 0) or None
        self.receptive_field_radius_px = int(info.get("receptive_field_radius_px", 0) or 0)
        # Where the centre confidence of the model's own images peaks, relative to its working
        # scale (size.py; measured by `make models`, 1 where not measured).
        self.size_reference = float(info.get("diameter_estimate", {}).get("reference", 1.0))
        arch = info.get("architecture", {})
        self.base_channels = int(arch.get("base_channels", 16))
        self.depth = int(arch.get("depth", 4))

        if device not in ("auto", "cpu", "cuda"):
            raise ModelError(f"unknown device '{device}' (use auto, cpu or cuda)")
        if device == "cuda" and not _cuda_works():
            raise ModelError(
                "CUDA was asked for but does not work here (no GPU or no CUDA "
                "libraries): run it on the CPU, or let it choose (--device cpu or auto; in "
                "the window, Run on: CPU or Automatic)"
            )
        self.device = "cuda" if device == "cuda" or (device == "auto" and _cuda_works()) else "cpu"
        self.provider = self.device.upper()
        self._open_sessions()

    def _open_sessions(self) -> None:
        """The two onnxruntime sessions, on ``self.device`` (may fall back to the CPU)."""
        folder, files = self.path, self.info["files"]
        providers: list = (
            [(_PROVIDERS["cuda"], _CUDA_OPTIONS), _PROVIDERS["cpu"]]
            if self.device == "cuda"
            else [_PROVIDERS["cpu"]]
        )
        self._sessions = {}
        for key in ("unet", "guided"):
            file = folder / str(files.get(key, f"{key}.onnx"))
            if not file.is_file():
                raise ModelError(f"{folder}: {file.name} is missing")
            try:
                self._sessions[key] = _ort().InferenceSession(
                    str(file), _session_options(), providers=providers
                )
            except Exception as exc:
                raise ModelError(f"{folder}: {file.name} cannot be loaded ({exc})") from exc
        if self.device == "cuda":
            # Report where the sessions really run: onnxruntime may have placed one on the CPU.
            used = {s.get_providers()[0] for s in self._sessions.values()}
            if used != {"CUDAExecutionProvider"}:
                self.device, self.provider = "cpu", "CPU"
        names = {k: [i.name for i in s.get_inputs()] for k, s in self._sessions.items()}
        if names["unet"] != ["image"] or sorted(names["guided"]) != ["grad_output", "image"]:
            raise ModelError(f"{folder}: the ONNX graphs do not have the expected inputs {names}")

    def __repr__(self) -> str:
        return f"Model({self.name!r}, path={str(self.path)!r}, provider={self.provider!r})"

    # A model travels to worker processes (process_batch with workers) as its description,
    # defaults included as they are now; each process opens its own sessions from the folder.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_sessions"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open_sessions()

    def likelihood(self, image: np.ndarray) -> np.ndarray:
        """Run the U-Net on a normalised batch [N, 1, H, W] (H, W multiples of ``stride``)."""
        out = self._sessions["unet"].run(None, {"image": np.ascontiguousarray(image, np.float32)})
        return out[0]

    def guided(self, image: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Guided-backprop gradient w.r.t. the input for each batch item, raw (not clamped)."""
        feeds = {
            "image": np.ascontiguousarray(image, np.float32),
            "grad_output": np.ascontiguousarray(grad_output, np.float32),
        }
        return self._sessions["guided"].run(None, feeds)[0]

    def bytes_per_pixel(self) -> int:
        """Rough working memory of one guided-propagation pixel (forward activations kept).

        Sum over levels of the channels held for the backward pass (about 6 float32 tensors of
        the level's width per DoubleConv: convs, masks, gradients) scaled by the level's area.
        Used to size batches to a memory budget; measured peaks are reported by the benchmark.
        """
        total = 0.0
        for level in range(self.depth + 1):
            width = self.base_channels * min(2**level, 8)
            total += 12 * width / 4**level  # encoder and decoder at this level
        return int(4 * total) + 64


def load_model(name_or_path: str | Path, device: str = "auto") -> Model:
    """Load a model by shipped name or folder path.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A name from :func:`list_models`, a model folder, or its model.json.
    device : {"auto", "cpu", "cuda"}
        "auto" uses CUDA when it really works here, else the CPU.

    Raises
    ------
    ModelError
        Unknown name, broken folder, or CUDA forced where it does not work.
    """
    return Model(_resolve(name_or_path), device=device)


def load_models(device: str = "auto", left_out: list | None = None) -> list[Model]:
    """Every installed model (:func:`list_models`) that loads: the candidates of ``--model
    auto``. One that does not (its network damaged, say) is left out, not the end of the
    choice: (its folder, why) appended to ``left_out`` where given. ModelError only where
    ``device`` cannot be had (cuda asked for where it does not work)."""
    models = []
    for info in list_models():
        try:
            models.append(load_model(info.path, device=device))
        except ModelError as exc:
            if device == "cuda" and not _cuda_works():
                raise
            if left_out is not None:
                left_out.append((info.path, _why(info.path, exc)))
    return models
