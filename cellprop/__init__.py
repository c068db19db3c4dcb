"""cellprop: cell instance segmentation trained from clicked cell centres.

The package is split in layers that only import downwards:

* ``cellprop.engine``   - image I/O, ONNX inference, guided propagation, graph cut,
  measurements (numpy/onnxruntime; never Qt, never torch)
* ``cellprop.app``      - the PySide6 desktop front end over the engine
* ``cellprop.training`` - PyTorch training and ONNX export (the ``train`` extra)
* ``cellprop.cli``      - the ``cellprop`` command line, a thin front end over the engine
"""

import os
from importlib.metadata import PackageNotFoundError, version

# onnxruntime's official builds collect telemetry by default: a device id and an event queue
# under ~/.cache/Microsoft, sent to Microsoft's servers. cellprop promises no network at run
# time: switched off before anything imports onnxruntime (worker processes inherit it).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

try:
    __version__ = version("cellprop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

CITATION = (
    "Nishimura K., Ker D.F.E., Bise R. Weakly Supervised Cell Instance Segmentation by "
    "Propagating from Detection Response. MICCAI 2019, LNCS 11764, pp. 649-657. "
    "doi:10.1007/978-3-030-32239-7_72"
)

#: The command that installs what training needs into the Python cellprop runs in, as the
#: ``train`` extra pins it (pyproject.toml; tests/test_packaging.py holds them alike): a bare
#: ``pip install torch`` takes the newest torch, past the one cellprop is tested with, and
#: on Linux several GB of CUDA packages with it.
TRAIN_INSTALL = 'pip install "torch>=2.2,<=2.13.0" "onnx>=1.15"'
