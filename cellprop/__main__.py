"""``python -m cellprop``: the ``cellprop`` command (where its script is not on the PATH)."""

import sys

from cellprop.cli import main

sys.exit(main())
