"""Export a trained U-Net as a cellprop model folder (docs/ARCHITECTURE.md).

MODEL_DIR/unet.onnx   "image" [N,1,H,W] -> "likelihood" [N,1,H,W]
MODEL_DIR/guided.onnx "image", "grad_output" [B,1,h,w] -> "grad_input" [B,1,h,w]
MODEL_DIR/model.json  what the engine needs to use the pair correctly

`export_model` checks both graphs against torch with onnxruntime before it writes model.json, so
a folder with a model.json is a verified one.
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .guided import GuidedBackprop, guided_gradient
from .unet import UNet, receptive_field_radius

__all__ = [
    "OPSET",
    "ExportCheck",
    "export_onnx",
    "verify_export",
    "export_model",
    "default_engine_settings",
    "load_onnx_session",
]

OPSET = 17

#: Default engine settings by modality (sizes in original pixels; see docs/ARCHITECTURE.md).
#: Phase contrast surrounds cells with a bright halo, so a cut is cheap through bright pixels;
#: fluorescence and DIC cells are bright on a darker background, so the cut follows dark pixels.
_POLARITY = {
    "phase": "bright_boundary",
    "brightfield": "bright_boundary",
    "dic": "dark_boundary",
    "fluorescence": "dark_boundary",
}
MODALITIES = tuple(_POLARITY)


@dataclass(frozen=True)
class ExportCheck:
    """Agreement of the exported graphs with torch, measured by onnxruntime."""

    unet_max_abs_diff: float
    guided_rel_error: float
    guided_max_abs_diff: float
    # the share of grad_input's pixels off by more than a thousandth of its largest value
    guided_outliers: float = 0.0

    def ok(self, unet_tol: float = 1e-4, guided_tol: float = 1e-4) -> bool:
        """Both graphs as torch computes them: the guided gradient to ``guided_tol``, or off
        at a few pixels only (at most 0.1% of them, 5% of its norm): where two values a
        max-pooling window compares are equal to rounding (clipped pixels), torch and
        onnxruntime may each pass the gradient to another of them; a graph written wrong
        is off nearly everywhere. (Held to the relative error alone, a real image's check
        failed at random after hours of training: 24 pixels of 196,608, 2% of the norm.)"""
        guided = self.guided_rel_error <= guided_tol or (
            self.guided_outliers <= 1e-3 and self.guided_rel_error <= 0.05
        )
        return self.unet_max_abs_diff <= unet_tol and guided


def export_onnx(model: UNet, out_dir: Path) -> tuple[Path, Path]:
    """Write unet.onnx and guided.onnx (opset 17, dynamic batch and size) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.cpu().float().eval()
    side = 2 * model.stride
    image = torch.rand(2, 1, side, side + model.stride)
    unet_path = out_dir / "unet.onnx"
    guided_path = out_dir / "guided.onnx"
    with warnings.catch_warnings():
        # The TorchScript exporter warns about tracing shape arithmetic; the checks below
        # prove the dynamic sizes work.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (image,),
            str(unet_path),
            input_names=["image"],
            output_names=["likelihood"],
            dynamic_axes={
                "image": {0: "N", 2: "H", 3: "W"},
                "likelihood": {0: "N", 2: "H", 3: "W"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        guided = GuidedBackprop(model).eval()
        torch.onnx.export(
            guided,
            (image, torch.rand_like(image)),
            str(guided_path),
            input_names=["image", "grad_output"],
            output_names=["grad_input"],
            dynamic_axes={
                "image": {0: "B", 2: "h", 3: "w"},
                "grad_output": {0: "B", 2: "h", 3: "w"},
                "grad_input": {0: "B", 2: "h", 3: "w"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return unet_path, guided_path


def load_onnx_session(path: Path):
    """An onnxruntime CPU session (the checks must not depend on a GPU), quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _seed_regions(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """Disk-shaped grad_output seeds, one per batch item, like cells' regions S_u."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    seeds = np.zeros((n, 1, *shape), np.float32)
    for k in range(n):
        r0, c0 = rng.uniform(0.25, 0.75, 2) * shape
        radius = rng.uniform(3, max(4, min(shape) / 8))
        seeds[k, 0] = (rows - r0) ** 2 + (cols - c0) ** 2 <= radius**2
    return seeds


def verify_export(
    model: UNet,
    unet_path: Path,
    guided_path: Path,
    image: np.ndarray | None = None,
    seed: int = 0,
) -> ExportCheck:
    """Compare the exported graphs with torch on the same inputs.

    Parameters
    ----------
    model : UNet
        The torch network that was exported.
    unet_path, guided_path : Path
        The ONNX files.
    image : ndarray, optional
        A normalised 2-D image at the network's scale (e.g. a real training image); its
        top-left corner (at most 192 x 256, multiples of the stride) is used, an image
        smaller than the stride padded to it. Random when None.
    seed : int
        Seed for the random input and the grad_output seeds.

    Returns
    -------
    ExportCheck
        unet: max abs difference of the likelihood; guided: relative L2 error and max abs
        difference of grad_input, over a batch of several seeds.
    """
    model = model.cpu().float().eval()
    rng = np.random.default_rng(seed)
    stride = model.stride
    if image is None:
        image = rng.normal(0.5, 0.25, (4 * stride, 6 * stride)).astype(np.float32)
    # an image smaller than the stride (a crop of one small cell) is padded to it, as the
    # engine pads it: the graphs are compared on it all the same
    image = np.asarray(image)
    image = np.pad(
        image,
        [(0, max(0, stride - image.shape[0])), (0, max(0, stride - image.shape[1]))],
        mode="edge",
    )
    rows = min(image.shape[0] // stride * stride, max(stride, 192 // stride * stride))
    cols = min(image.shape[1] // stride * stride, max(stride, 256 // stride * stride))
    x = np.ascontiguousarray(image[:rows, :cols], dtype=np.float32)[None, None]

    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = load_onnx_session(unet_path).run(["likelihood"], {"image": x})[0]
    unet_diff = float(np.max(np.abs(got - expected)))

    n = 4
    batch = np.repeat(x, n, axis=0)
    seeds = _seed_regions((rows, cols), n, rng)
    expected = guided_gradient(model, torch.from_numpy(batch), torch.from_numpy(seeds)).numpy()
    got = load_onnx_session(guided_path).run(
        ["grad_input"], {"image": batch, "grad_output": seeds}
    )[0]
    norm = float(np.linalg.norm(expected))
    error = float(np.linalg.norm(got - expected))
    # An all-zero guided gradient (possible for an untrained net) must be matched exactly.
    rel = error / norm if norm > 0 else (0.0 if error == 0 else float("inf"))
    off = np.abs(got - expected)
    outliers = float(np.mean(off > 1e-3 * float(np.max(np.abs(expected))))) if norm > 0 else 0.0
    return ExportCheck(unet_diff, rel, float(np.max(off)), outliers)


def default_engine_settings(modality: str, scale: float, cell_diameter_px: float) -> dict:
    """Engine defaults for model.json (sizes in original image pixels, except the margin).

    The region radius S_u and the minimum size follow the cell diameter; the propagation margin
    (network scale) covers one cell diameter around S_u's box, where guided gradients of a cell
    are concentrated, and the engine may enlarge it.
    """
    if modality not in _POLARITY:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    diameter_orig = cell_diameter_px / scale
    defaults = {
        "threshold": 0.5,
        "peak_min_distance": 2,
        "region_radius_px": round(0.4 * diameter_orig, 1),
        "graphcut_weight": 20.0,
        "edge_beta": 10.0,
        "polarity": _POLARITY[modality],
        "min_size_px": int(round(0.05 * np.pi * (diameter_orig / 2) ** 2)),
        "propagation_margin_px": int(np.ceil(1.5 * cell_diameter_px)),
    }
    if modality == "fluorescence":
        # the image is the evidence of where a fluorescent cell ends (the shipped nuclei
        # model's choice): with the authors' neutral data term outlines grow past it
        defaults["data_term"] = "intensity"
    return defaults


def _versions() -> dict:
    import onnx

    try:
        from cellprop import __version__ as cellprop_version
    except ImportError:  # pragma: no cover - the package always defines it
        cellprop_version = "unknown"
    return {
        "cellprop": cellprop_version,
        "torch": torch.__version__.split("+")[0],
        "onnx": onnx.__version__,
        "opset": OPSET,
    }


def export_model(
    model: UNet,
    out_dir: Path,
    *,
    name: str,
    description: str,
    modality: str,
    scale: float,
    normalisation: dict,
    cell_diameter_px: float,
    sigma_px: float,
    training: dict,
    check_image: np.ndarray | None = None,
    defaults: dict | None = None,
) -> tuple[dict, ExportCheck]:
    """Write and verify a complete model folder.

    The ONNX files are written to a temporary folder, checked against torch with onnxruntime,
    and only then moved into ``out_dir`` together with model.json.

    Returns
    -------
    info : dict
        The model.json content.
    check : ExportCheck
        The measured agreement.

    Raises
    ------
    RuntimeError
        When onnxruntime disagrees with torch beyond the tolerances (nothing is written then).
    """
    # Checked first, so that a bad argument leaves no files behind.
    engine_defaults = default_engine_settings(modality, scale, cell_diameter_px)
    engine_defaults.update(defaults or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        unet_tmp, guided_tmp = export_onnx(model, Path(tmp))
        check = verify_export(model, unet_tmp, guided_tmp, check_image)
        if not check.ok():
            raise RuntimeError(
                f"ONNX export of {out_dir} does not match torch: unet max abs diff "
                f"{check.unet_max_abs_diff:.2e} (limit 1e-4), guided relative error "
                f"{check.guided_rel_error:.2e} (limit 1e-4, or 5e-2 where at most 0.1% of "
                f"the pixels are off: {check.guided_outliers:.2%})"
            )
        unet_tmp.replace(out_dir / "unet.onnx")
        guided_tmp.replace(out_dir / "guided.onnx")

    info: dict[str, Any] = {
        "format": "cellprop-model",
        "format_version": 1,
        "name": name,
        "description": description,
        "modality": modality,
        "files": {"unet": "unet.onnx", "guided": "guided.onnx"},
        "input": {
            "channels": 1,
            "stride": model.stride,
            "normalisation": normalisation,
            "scale": scale,
        },
        "cell_diameter_px": round(float(cell_diameter_px), 2),
        "sigma_px": round(float(sigma_px), 3),
        "receptive_field_radius_px": receptive_field_radius(model.depth),
        "architecture": {
            "type": "unet",
            "base_channels": model.base_channels,
            "depth": model.depth,
            "bilinear": True,
        },
        "defaults": engine_defaults,
        "training": training,
        "validation": {},
        "export_check": {
            "unet_max_abs_diff": check.unet_max_abs_diff,
            "guided_rel_error": check.guided_rel_error,
            "guided_outliers": check.guided_outliers,
        },
        "versions": _versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (out_dir / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info, check
