"""Resolve ``path/to/file.py:name`` and ``package.module:name`` targets, and import modules."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from elfc.errors import TargetError
from elfc.model.modules import module_name_for
from elfc.pipeline import Pipeline


def import_path(path: Path) -> ModuleType:
    """Import a Python file by path, under a stable module name derived from its location.

    The file's directory goes first on ``sys.path`` (as ``python file.py`` would do) so that
    sibling imports work; a file inside packages is imported under its dotted package name.
    """
    path = path.resolve()
    if not path.is_file():
        raise TargetError(f"{path} is not a file")
    name, root = module_name_for(path)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if "." not in name:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(name)


def load_module(spec: str) -> ModuleType:
    """Import a module by file path or dotted name; any error importing it is a TargetError."""
    try:
        return _load_module(spec)
    except TargetError:
        raise
    except Exception as exc:
        where = ""
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            where = f" (at {tb[-1].filename}:{tb[-1].lineno})"
        raise TargetError(f"importing {spec} failed: {type(exc).__name__}: {exc}{where}") from exc


def _load_module(spec: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return import_path(Path(spec))
    # As `python -m` does: modules are found from the current directory first.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (spec == exc.name or spec.startswith(exc.name + ".")):
            raise  # the module exists; something it imports does not
        raise TargetError(
            f"no module named {spec!r}: give a file path (path/to/file.py:name) or a module "
            f"importable from the current directory"
        ) from exc


def load_target(target: str) -> Any:
    """The object named by ``file.py:name`` or ``package.module:name``."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise TargetError(
            f"target {target!r} must be `path/to/file.py:name` or `package.module:name`"
        )
    module = load_module(module_part)
    obj: Any = module
    for piece in attr.split("."):
        try:
            obj = getattr(obj, piece)
        except AttributeError:
            names = sorted(n for n in vars(module) if not n.startswith("_"))
            raise TargetError(
                f"{module_part} has no {attr!r}; it defines: {', '.join(names) or '(nothing)'}"
            ) from None
    return obj


def load_pipeline(target: str) -> Pipeline[Any, Any]:
    """The ``@pipeline`` a TARGET names, or ``TargetError`` saying what it is instead."""
    obj = load_target(target)
    if not isinstance(obj, Pipeline):
        raise TargetError(f"{target} is a {type(obj).__name__}, not a @pipeline")
    return obj
