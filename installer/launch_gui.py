"""Frozen entry point of the desktop app (PyInstaller)."""

import multiprocessing
import sys

from cellprop.app.main import main

if __name__ == "__main__":
    # A folder batch runs images in spawned worker processes; in a frozen executable each of
    # them starts as this program, and this call turns it into the worker it should be
    # (without it, every worker would open another window).
    multiprocessing.freeze_support()
    sys.exit(main(sys.argv[1:]))
