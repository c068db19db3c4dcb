"""The CUDA path against the CPU: every shipped model on a real image of its modality.

These run only where onnxruntime's CUDA provider really works (a machine with an NVIDIA GPU and
onnxruntime-gpu's CUDA libraries); everywhere else they skip and say why. They do not pass on
a machine without a GPU, they skip.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from cellprop.engine import Settings, available_devices, load_model, read_image, segment
from cellprop.engine.evaluate import ap_counts, dice_per_cell
from cellprop.resources import path as resource_path


@pytest.fixture(scope="module")
def cuda():
    if "cuda" not in available_devices():
        pytest.skip("no working CUDA here (onnxruntime's CUDA provider did not initialise)")


def _frames(shared):
    """(model, image) pairs: the shipped sample, and a real frame of each other modality
    where ../shared/data is at hand (a test frame of each)."""
    frames = [("phase", resource_path("samples", "c2c12_0006_crop512.png"))]
    others = (("dic", "hela-dic", "t075"), ("nuclei", "gowt1-fluo", "t033"))
    for model, dataset, stem in others if shared else ():
        found = sorted((shared / dataset / "images").glob(stem + ".*"))
        frames += [(model, found[0])] if found else []
    return frames


def test_auto_runs_on_cuda_and_says_so(cuda):
    model = load_model("phase")  # device "auto"
    assert model.device == "cuda" and model.provider == "CUDA"
    code = (
        "from cellprop.engine import load_model;"
        "m = load_model('dic', device='cuda'); print(m.provider)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["CUDA"]
    assert run.stderr == ""  # nothing from onnxruntime's CUDA provider reaches the user


def test_cuda_segments_as_the_cpu_does(cuda, shared_data_if_any):
    for name, path in _frames(shared_data_if_any):
        image = read_image(path).pixels
        on_cpu = segment(image, load_model(name, device="cpu"), Settings())
        on_gpu = segment(image, load_model(name, device="cuda"), Settings())
        # The network's likelihood agrees to float precision (cuDNN may pick other algorithms).
        assert np.abs(on_cpu.likelihood - on_gpu.likelihood).max() < 1e-2, (name, path)
        assert abs(on_cpu.n_cells - on_gpu.n_cells) <= max(1, on_cpu.n_cells // 50), (name, path)
        # Each CPU cell has its GPU twin: mean Dice and AP50 of one against the other.
        assert dice_per_cell(on_cpu.labels, on_gpu.labels).mean() > 0.98, (name, path)
        tp, fp, fn = ap_counts(on_cpu.labels, on_gpu.labels)
        assert tp / (tp + fp + fn) > 0.97, (name, path, tp, fp, fn)
