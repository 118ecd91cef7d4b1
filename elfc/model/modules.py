"""Module names that another process can import: a script run as ``__main__`` is the module
its file is imported as elsewhere (``python shop.py`` defines ``shop.Order``, which is what a
worker serving ``elfc worker shop.py`` knows it by).

Usage::

    module_name_for(Path("pkg/sub/mod.py"))  == ("pkg.sub.mod", Path("."))  # with __init__.py
    importable_name("__main__")              == "shop"   # while running python shop.py
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

__all__ = ["importable_name", "module_name_for"]


def module_name_for(path: Path) -> tuple[str, Path]:
    """(dotted module name, the sys.path root it needs) for a file, following __init__.py."""
    parts = [path.stem] if path.stem != "__init__" else []
    parent = path.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    if not parts:
        parts = [path.parent.name]
    return ".".join(parts), parent


def importable_name(module: str) -> str:
    """``module``, or for ``__main__`` the name its file is imported under by other processes."""
    if module != "__main__":
        return module
    return _main_name()


@functools.cache
def _main_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name  # python -m package.module
    file = getattr(main, "__file__", None)
    if not isinstance(file, str):
        return "__main__"  # a REPL or -c: nothing another process could import
    return module_name_for(Path(file).resolve())[0]
