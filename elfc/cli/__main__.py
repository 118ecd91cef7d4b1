"""``python -m elfc.cli``: the same as ``python -m elfc`` (the command line was once one module)."""

from __future__ import annotations

import sys

from elfc.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
