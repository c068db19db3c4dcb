"""Training that starts from a model already made (``cellprop-train --from MODEL``).

A shipped model (or one trained before) has learnt what cells look like; starting from its
network, a user's few clicked images and a short run adapt it to their own cells (the way
Cellpose's pretrained models are fine-tuned), instead of teaching a new network everything.

The model folder holds no torch weights, only its ONNX graphs: `network_from` reads the U-Net
back from unet.onnx, whose convolutions carry the BatchNorm folded into them (export's
constant folding). Each BatchNorm of the torch U-Net is then made the identity in evaluation
(`calibrate_batchnorm` sets its running statistics and its scale and shift to the statistics of
its input on the user's crops), so that the network starts exactly where the model was and, in
training mode, normalising each batch hardly moves it.

The network keeps the model's architecture, input normalisation and the size cells have at its
scale (the working scale follows from the user's cell size); the model's engine defaults carry
over too, those in original pixels rescaled to the user's cells (`inherited_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .unet import UNet

__all__ = [
    "StartingModel",
    "calibrate_batchnorm",
    "inherited_defaults",
    "network_from",
    "starting_model",
]


@dataclass(frozen=True)
class StartingModel:
    """A model folder a training starts from: its name, folder and model.json."""

    name: str
    path: Path
    info: dict

    @property
    def architecture(self) -> tuple[int, int]:
        """(base channels, depth) of its U-Net."""
        arch = self.info.get("architecture") or {}
        return int(arch["base_channels"]), int(arch["depth"])

    @property
    def network_diameter(self) -> float:
        """The cells' diameter at its network's scale (model.json ``cell_diameter_px``)."""
        return float(self.info["cell_diameter_px"])

    @property
    def diameter(self) -> float:
        """Its cells' diameter in original image pixels."""
        return self.network_diameter / float(self.info["input"]["scale"])

    @property
    def normalisation(self) -> tuple[float, float]:
        """The low and high percentiles its input is normalised with."""
        norm = self.info["input"].get("normalisation") or {}
        return float(norm.get("low", 1.0)), float(norm.get("high", 99.8))

    def record(self) -> dict:
        """What model.json's training record says of it."""
        return {
            "name": self.name,
            "created": self.info.get("created"),
            "datasets": (self.info.get("training") or {}).get("datasets"),
        }


def starting_model(name_or_path: str | Path) -> StartingModel:
    """The model a training starts from: a shipped model's name or a model folder.

    Raises
    ------
    ValueError
        It is no model, or not a U-Net this training can continue.
    """
    from cellprop.engine import ModelError, model_info

    try:
        found = model_info(name_or_path)
    except ModelError as exc:
        raise ValueError(f"--from: {exc}") from None
    start = StartingModel(found.name, found.path, found.info)
    arch = start.info.get("architecture") or {}
    unet = (start.info.get("files") or {}).get("unet")
    if arch.get("type") != "unet" or "base_channels" not in arch or "depth" not in arch:
        raise ValueError(f"--from: {start.path}: model.json names no U-Net architecture")
    if not unet or not (start.path / unet).is_file():
        raise ValueError(f"--from: {start.path}: its U-Net file ({unet}) is missing")
    if not start.info.get("cell_diameter_px") or not start.info["input"].get("scale"):
        raise ValueError(f"--from: {start.path}: model.json gives no cell size or scale")
    return start


def _convolutions(model: UNet) -> list[nn.Conv2d]:
    """The U-Net's convolutions in the order its forward pass runs them (and the ONNX graph
    lists them): the encoder's, the decoder's, the last 1x1."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def network_from(start: StartingModel) -> UNet:
    """The model's U-Net as a torch module, its weights read from unet.onnx.

    The BatchNorm layers are the identity (until `calibrate_batchnorm`): the ONNX graph's
    convolutions carry them folded in. Raises ValueError when the graph does not fit the
    architecture model.json names.
    """
    import onnx
    from onnx import numpy_helper

    base, depth = start.architecture
    model = UNet(base, depth)
    path = start.path / start.info["files"]["unet"]
    graph = onnx.load(str(path)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = _convolutions(model)
    if len(nodes) != len(convs):
        raise ValueError(
            f"--from: {path}: {len(nodes)} convolutions, a U-Net of {base} base channels and "
            f"depth {depth} has {len(convs)}"
        )
    with torch.no_grad():
        for node, conv in zip(nodes, convs, strict=True):
            names = list(node.input[1:3])
            if len(names) != 2 or any(name not in weights for name in names):
                raise ValueError(f"--from: {path}: convolution {node.name} has no stored weights")
            weight, bias = (weights[name] for name in names)
            if weight.shape != tuple(conv.weight.shape) or bias.shape != tuple(conv.bias.shape):
                raise ValueError(
                    f"--from: {path}: convolution {node.name} is {weight.shape}, the "
                    f"architecture's is {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            conv.bias.copy_(torch.from_numpy(bias.copy()))
        for bn in _batchnorms(model):
            _set_identity(bn, torch.zeros(bn.num_features), torch.ones(bn.num_features))
    model.eval()
    _check_read_back(model, path)
    return model


def _check_read_back(model: UNet, path: Path, tolerance: float = 1e-4) -> None:
    """The rebuilt network must compute what the ONNX file computes (a graph whose layers are
    not a U-Net's convolutions with BatchNorm folded in would not): ValueError if not."""
    from .export import load_onnx_session

    side = 4 * model.stride
    x = torch.rand((1, 1, side, side), generator=torch.Generator().manual_seed(0))
    session = load_onnx_session(path)
    expected = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        difference = float((model(x) - torch.from_numpy(expected)).abs().max())
    if not difference <= tolerance:
        raise ValueError(
            f"--from: {path}: the network read back from it does not compute what it does "
            f"(largest difference {difference:.2g}): not a U-Net as cellprop-train exports one"
        )


def _batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _set_identity(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
    """A BatchNorm that, in evaluation, gives back its input: its running statistics are
    ``mean`` and ``var`` and its scale and shift undo them exactly."""
    with torch.no_grad():
        var = torch.clamp(var, min=1e-6)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mean)


def calibrate_batchnorm(model: UNet, batches) -> None:
    """Give each BatchNorm the statistics of its input over ``batches`` (tensors [N,1,H,W]),
    keeping it the identity in evaluation (so the network computes what it did): in training
    mode, batches like these are then normalised to about what they were."""
    sums: dict = {}
    hooks = []
    for bn in _batchnorms(model):

        def seen(module, inputs, _output, bn=bn):
            x = inputs[0].detach().double()
            total = sums.setdefault(bn, [0, 0.0, 0.0])
            total[0] += x.shape[0] * x.shape[2] * x.shape[3]
            total[1] = total[1] + x.sum(dim=(0, 2, 3))
            total[2] = total[2] + (x * x).sum(dim=(0, 2, 3))

        hooks.append(bn.register_forward_hook(seen))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for bn, (n, s, ss) in sums.items():
        mean = s / max(n, 1)
        var = ss / max(n, 1) - mean * mean
        _set_identity(bn, mean.float(), var.float())


#: Engine defaults in original image pixels (lengths; the minimum size is an area).
_LENGTHS = ("region_radius_px", "edge_sigma")
_AREAS = ("min_size_px",)


def inherited_defaults(start: StartingModel, diameter: float) -> dict:
    """The model's engine defaults for cells ``diameter`` original pixels across: lengths
    and areas in original pixels follow the ratio of the cells' sizes; the rest (thresholds,
    weights, fractions of a diameter, and the margin at the network's scale, where cells keep
    their size) carry over as they are."""
    ratio = float(diameter) / start.diameter
    defaults = dict(start.info.get("defaults") or {})
    for key in _LENGTHS:
        if key in defaults:
            defaults[key] = round(float(defaults[key]) * ratio, 2)
    for key in _AREAS:
        if key in defaults:
            defaults[key] = int(round(float(defaults[key]) * ratio * ratio))
    return defaults
