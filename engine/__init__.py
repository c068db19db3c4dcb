"""cellprop.engine: segmentation from a trained model, with numpy and onnxruntime only.

The public API is listed here, in one place; everything else is private to its module.
Never imports Qt or torch (import-linter contracts in pyproject.toml).
"""

from .errors import Cancelled, ImageError, ModelError, OutputExists
from .io import IMAGE_EXTENSIONS, MAX_PIXELS, ImageData, find_images, read_image, to_grey

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "Cancelled",
    "ImageData",
    "ImageError",
    "ModelError",
    "OutputExists",
    "find_images",
    "read_image",
    "to_grey",
]
