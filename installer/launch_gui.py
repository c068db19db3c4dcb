"""Frozen entry point of the desktop app (PyInstaller)."""

import sys

from cellprop.app.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
