"""Frozen entry point of the command line (PyInstaller)."""

import sys

from cellprop.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
