"""elfc's version: the one place it is written (``pyproject.toml`` reads it from here).

A literal rather than a package-metadata lookup: ``importlib.metadata`` costs ~30 ms at import,
and every worker process imports elfc.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
