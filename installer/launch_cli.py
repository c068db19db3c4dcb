"""Frozen entry point of the command line (PyInstaller)."""

import multiprocessing
import sys

from cellprop.cli import main

if __name__ == "__main__":
    # `segment --workers N` runs images in spawned processes; in a frozen executable each of
    # them starts as this program, and this call turns it into the worker it should be.
    multiprocessing.freeze_support()
    sys.exit(main(sys.argv[1:]))
