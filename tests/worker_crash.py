"""A model whose process dies on wide images, the way the out-of-memory killer or a crash in
native code ends a worker (tests of process_batch with workers: the spawned workers import
this module when they unpickle the model)."""

import os

from cellprop.engine.model import Model

CRASH_WIDTH = 100  # network input at least this wide (the tests' good images are 64 px)


class CrashingModel(Model):
    def likelihood(self, image):
        if image.shape[-1] >= CRASH_WIDTH:
            os._exit(9)
        return super().likelihood(image)
