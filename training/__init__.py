"""cellprop.training: learn a cell detector from clicked centres, and export it for the engine.

The only part of cellprop that imports torch (the ``train`` extra). Modules, in the order data
flows through them:

* ``data``     - dataset folders: images with points.csv, per-image CSVs or marker images
* ``targets``  - Gaussian likelihood targets; cell size from the points
* ``augment``  - random augmented crops (numpy)
* ``unet``     - the U-Net (configurable width and depth)
* ``train``    - the training loop (`train`, `TrainConfig`)
* ``guided``   - guided backpropagation: autograd reference and the exportable written-out form
* ``export``   - unet.onnx, guided.onnx and model.json, verified with onnxruntime
* ``metrics``  - detection F1 from likelihood peaks
* ``cli``      - ``cellprop-train``

Input normalisation is shared with the engine: `cellprop.engine.normalise`.
Nothing is imported here, so that ``cellprop-train --help`` starts without loading torch.
"""
