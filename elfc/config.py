"""Project settings: the ``[tool.elfc]`` table of the nearest ``pyproject.toml``.

One place finds and reads that file, so every command agrees on which project it is in::

    path = find_pyproject(Path.cwd())
    settings = elfc_table(path) if path is not None else {}

What each key means stays with the code that uses it (``mycelium`` in ``elfc.mycelium.urls``,
``paths`` in the checker); this module only finds and parses.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from elfc.errors import ElfcError

__all__ = ["KEYS", "PYPROJECT", "elfc_table", "find_pyproject"]

PYPROJECT = "pyproject.toml"

KEYS = frozenset({"mycelium", "paths"})
"""Every key ``[tool.elfc]`` may hold: another is a typo, and an error (it would be ignored)."""


def find_pyproject(start: Path) -> Path | None:
    """The ``pyproject.toml`` in ``start`` or the nearest folder above it; ``None`` if none.

    ``start`` is resolved first, so a relative folder finds the same file as its absolute path.
    """
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / PYPROJECT
        if candidate.is_file():
            return candidate
    return None


def elfc_table(path: Path) -> dict[str, Any]:
    """The ``[tool.elfc]`` table of the TOML file at ``path``; ``{}`` when it has none.

    Raises :class:`ElfcError` naming ``path`` when the file cannot be read or is not TOML,
    or when the table has a key elfc does not know (see :data:`KEYS`).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ElfcError(f"cannot read {path}: {exc}") from exc
    tool = data.get("tool")
    table = tool.get("elfc") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        return {}
    for key in sorted(set(table) - KEYS):
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ElfcError(
            f"{path}: [tool.elfc] has no setting {key!r}: {hint}it knows {', '.join(sorted(KEYS))}"
        )
    return table
