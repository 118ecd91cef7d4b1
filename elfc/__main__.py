"""``python -m elfc``: the ``elfc`` command (how worker processes are started, too)."""

from __future__ import annotations

import sys

from elfc.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
