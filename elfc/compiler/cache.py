"""An on-disk cache of compiled pipelines, shared by every process that imports them.

A compile depends on the pipeline's source, on what its global names are bound to (which
are handles, of which elf classes, which are other pipelines, ...) and on elfc's own compiler.
The cache key hashes the source text, Python's version, elfc's version *and a stamp of elfc's
compiler code* (path, size and modification time of every module under ``elfc/compiler/`` and
``elfc/model/``, plus ``elfc/decorators.py`` and ``elfc/errors.py``: the closed set of modules
a compile imports; computed once per process, ~65 us, so editing elfc without bumping its
version still invalidates old entries), and a fingerprint of every global the function's code
mentions: for a handle its name, class and configuration plus the size and modification time
of the file defining the class; for a pipeline its own fingerprint; for anything else its type.

Entries live where the module's ``.pyc`` files would: in ``__pycache__/elfc/`` next to the
pipeline's module, or, when ``sys.pycache_prefix`` is set (``PYTHONPYCACHEPREFIX`` or
``-X pycache_prefix``), under that prefix at the same path mirrored from the source directory
(``<prefix>/<absolute source dir>/__pycache__/elfc/``), as CPython mirrors ``.pyc`` files.
When ``sys.dont_write_bytecode`` is set (``PYTHONDONTWRITEBYTECODE`` or ``-B``) nothing is
written, neither files nor folders, but entries already there are still read, as CPython still
imports existing ``.pyc`` files. Entries are written atomically; an unwritable directory just
means no cache.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import marshal
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

import msgspec

from elfc._version import __version__
from elfc.compiler.diagnostics import Diagnostic
from elfc.decorators import Handle, is_elf, pipeline_function, pipeline_name
from elfc.model.ir import IR, Template, revision_of

FORMAT = 1


class Entry(msgspec.Struct, frozen=True):
    """What a compile leaves behind, minus the live objects (handles are looked up again)."""

    format: int
    template: Template | None
    diagnostics: list[dict[str, Any]]
    code: bytes | None
    chains: dict[str, list[str]]
    derives: dict[str, IR]
    handles: list[str]


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _file_stamp(obj: Any) -> str:
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    path = getattr(module, "__file__", None)
    if not path:
        return "?"
    try:
        st = os.stat(path)
    except OSError:
        return "?"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def fingerprint(fn: Any, _seen: set[int] | None = None) -> str:
    """A hash of everything a compile of ``fn`` depends on besides its own text."""
    seen = _seen if _seen is not None else set()
    seen.add(id(fn))
    parts: list[str] = []
    scope = fn.__globals__
    closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False))
    for name in sorted(_code_names(fn.__code__)):
        if name in closure:
            try:
                value = closure[name].cell_contents
            except ValueError:
                value = None
        elif name in scope:
            value = scope[name]
        elif hasattr(builtins, name):
            parts.append(f"{name}=builtin")
            continue
        else:
            parts.append(f"{name}=?")
            continue
        if isinstance(value, Handle):
            parts.append(
                f"{name}=handle:{value.name}:{value.cls.__module__}.{value.cls.__qualname__}:"
                f"{value.config}:{_file_stamp(value.cls)}"
            )
        elif (inner_fn := pipeline_function(value)) is not None:
            inner = "recursive" if id(inner_fn) in seen else fingerprint(inner_fn, seen)
            parts.append(
                f"{name}=pipeline:{pipeline_name(inner_fn)}:{_file_stamp(inner_fn)}:{inner}"
            )
        elif is_elf(value):
            parts.append(f"{name}=elf:{value.__qualname__}:{_file_stamp(value)}")
        elif isinstance(value, types.ModuleType):
            # `module.handle` resolves handles inside modules: their files matter too.
            parts.append(f"{name}=module:{value.__name__}:{_file_stamp(value)}")
        else:
            parts.append(f"{name}={type(value).__module__}.{type(value).__qualname__}")
    return revision_of(*parts)


_ELFC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def elfc_sources() -> list[str]:
    """The source files of everything a compile imports from elfc, sorted.

    Whole folders (not a list of modules), so a module added or split off is covered too.
    """
    found: list[str] = []

    def walk(folder: str) -> None:
        try:
            with os.scandir(folder) as it:
                for item in it:
                    if item.is_dir():
                        if item.name != "__pycache__":
                            walk(item.path)
                    elif item.name.endswith(".py"):
                        found.append(item.path)
        except OSError:
            pass

    walk(os.path.join(_ELFC_ROOT, "compiler"))
    walk(os.path.join(_ELFC_ROOT, "model"))
    found += [os.path.join(_ELFC_ROOT, name) for name in ("decorators.py", "errors.py")]
    return sorted(found)


def _path_stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:?"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


@functools.cache
def compiler_stamp() -> str:
    """A hash of elfc's version and its compiler's files, once per process.

    Stamps (path, size, modification time), not contents: ~65 us against ~310 us for reading
    and hashing the ~190 kB, the same trade CPython makes for ``.pyc`` files and this module
    makes for elf files.
    """
    return revision_of(__version__, *map(_path_stamp, elfc_sources()))


def cache_dir(module_path: str) -> Path:
    """Where entries for the module at ``module_path`` live (see the module docstring)."""
    head = os.path.dirname(os.path.abspath(module_path))
    prefix = sys.pycache_prefix
    if prefix is not None:
        # As importlib.util.cache_from_source: drop a drive, then re-root under the prefix.
        if head[1:2] == ":" and head[0:1] not in (os.sep, os.altsep or os.sep):
            head = head[2:]
        head = os.path.join(prefix, head.lstrip(os.sep + (os.altsep or "")))
    return Path(head) / "__pycache__" / "elfc"


def entry_path(fn: Any, source_text: str) -> Path | None:
    module = sys.modules.get(fn.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return None
    key = revision_of(
        str(FORMAT),
        sys.version,
        compiler_stamp(),
        fn.__qualname__,
        str(fn.__code__.co_firstlineno),
        source_text,
        fingerprint(fn),
    )
    return cache_dir(path) / f"{Path(path).stem}.{fn.__qualname__}.{key}.bin"


_DECODER = msgspec.msgpack.Decoder(Entry)
_ENCODER = msgspec.msgpack.Encoder()


def load(path: Path) -> Entry | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        entry = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    return entry if entry.format == FORMAT else None


def store(path: Path, entry: Entry) -> None:
    """Write an entry atomically (a private temporary file, then a rename); never raises.

    The temporary name is unique per process and thread, so concurrent writers never share
    one (``tempfile`` would do the same at ~10 ms of import for every process). Under
    ``sys.dont_write_bytecode`` it writes nothing.
    """
    if sys.dont_write_bytecode:
        return
    tmp = path.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(_ENCODER.encode(entry))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def code_bytes(code: types.CodeType | None) -> bytes | None:
    return None if code is None else marshal.dumps(code)


def code_object(data: bytes | None) -> types.CodeType | None:
    if data is None:
        return None
    code = marshal.loads(data)
    return code if isinstance(code, types.CodeType) else None


def diagnostics_to_json(diags: tuple[Diagnostic, ...]) -> list[dict[str, Any]]:
    return [d.to_dict() for d in diags]


def diagnostics_from_json(rows: list[dict[str, Any]]) -> tuple[Diagnostic, ...]:
    return tuple(Diagnostic(**row) for row in rows)
