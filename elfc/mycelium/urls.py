"""Mycelium URLs: which backend serves a scheme, which URL is the default, and the password a
URL may carry (masked for display, split off for a child process).

``open_mycelium(url)`` imports the backend for the URL's scheme on first use, so ``import
elfc`` never needs an optional driver; a missing one fails with its install hint.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from elfc.config import elfc_table, find_pyproject
from elfc.errors import MyceliumError
from elfc.mycelium.store import Store

__all__ = [
    "DEFAULT_URL",
    "MASK",
    "backend_for",
    "configured_url",
    "default_url",
    "install_hint",
    "mask_url",
    "open_mycelium",
    "split_password",
]

DEFAULT_URL = "sqlite:///.elfc/mycelium.db"
MASK = "***"
"""What a password is shown as: ``arango://u:***@host/db``."""


class _Backend(NamedTuple):
    module: str
    cls: str
    driver: str | None
    """The optional third-party package the backend imports, if any."""
    hint: str
    """How to install that package."""


_ARANGO = _Backend("elfc.mycelium.arango", "ArangoStore", "arango", "pip install 'elfc[arango]'")
_BACKENDS: dict[str, _Backend] = {
    "sqlite": _Backend("elfc.mycelium.sqlite", "SQLiteStore", None, ""),
    "arango": _ARANGO,
    "arangos": _ARANGO,
}


def open_mycelium(url: str | None = None) -> Store:
    """Open the mycelium at ``url`` (``sqlite:///rel/path.db``, ``sqlite:////abs/path.db``,
    ``arango[s]://user@host:8529/dbname``), or the default (see :func:`default_url`).

    Usage: ``with open_mycelium() as store: print(store.list_runs())``.
    """
    url = url or default_url()
    return backend_for(url).from_url(url)


def backend_for(url: str) -> type[Store]:
    """The :class:`Store` class that serves ``url``'s scheme, its module imported now.

    Raises :class:`MyceliumError` for an unknown scheme (listing the known ones) and, with the
    install hint, when the backend's optional driver is not installed.
    """
    scheme = urlsplit(url).scheme
    backend = _BACKENDS.get(scheme)
    if backend is None:
        supported = ", ".join(f"{s}://" for s in _BACKENDS)
        raise MyceliumError(f"unknown mycelium URL {mask_url(url)!r}: supported are {supported}")
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as exc:
        if backend.driver is not None and exc.name in (backend.module, backend.driver):
            raise MyceliumError(
                f"the {scheme}:// mycelium is not installed ({exc}): {backend.hint}"
            ) from exc
        raise
    cls: type[Store] = getattr(module, backend.cls)
    return cls


def install_hint(scheme: str) -> str:
    """How to install the optional driver of the backend for ``scheme`` (``""``: none needed)."""
    backend = _BACKENDS.get(scheme)
    return "" if backend is None else backend.hint


def default_url(start: Path | None = None) -> str:
    """The mycelium to use when none is given: ``$ELFC_MYCELIUM``, else ``[tool.elfc]
    mycelium`` in the nearest ``pyproject.toml`` (a relative SQLite path there is relative to
    that file), else ``sqlite:///.elfc/mycelium.db`` (relative to the working directory).
    """
    return configured_url(start) or DEFAULT_URL


def configured_url(start: Path | None = None) -> str | None:
    """``$ELFC_MYCELIUM`` or ``[tool.elfc] mycelium``: the mycelium the user named, if any."""
    env = os.environ.get("ELFC_MYCELIUM")
    if env:
        return env
    pyproject = find_pyproject(start or Path.cwd())
    return None if pyproject is None else _pyproject_url(pyproject)


def _pyproject_url(path: Path) -> str | None:
    url = elfc_table(path).get("mycelium")
    if url is None:
        return None
    if not isinstance(url, str):
        raise MyceliumError(f"{path}: [tool.elfc] mycelium must be a URL string")
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(path.parent / url[len(prefix) :])
    return url


# -- passwords ---------------------------------------------------------------------------


class _Parts(NamedTuple):
    """``scheme://userinfo@hosts/tail``: the last ``@`` of the URL splits, so several hosts
    (``h1:8529,h2:8529``) and an ``@``, ``/``, ``?`` or ``#`` left unencoded in a password are
    fine (generated passwords often have them)."""

    scheme: str
    user: str
    password: str
    hosts: str
    tail: str
    """``/path?query``, or ``""``."""


def _parts(url: str) -> _Parts | None:
    """The parts of a URL with a password in it; ``None`` when it has none."""
    # The password is found before the path is: splitting at the first "/" first would cut
    # a password holding one, and leave its start in plain sight.
    scheme, sep, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not sep or not at or not colon or any(c in user for c in "/?#"):
        return None  # no password (an "@" in a path, as in sqlite:///a@b.db, is not one)
    cut = min((i for i in map(after.find, "/?#") if i >= 0), default=len(after))
    return _Parts(scheme, user, password, after[:cut], after[cut:])


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: ``arango://u:***@host:8529/db``.

    Works on several-host URLs too (``arango://u:pw@h1:8529,h2:8529/db``): only the text
    between the scheme and the last ``@`` of the authority is looked at. A URL without a
    password comes back unchanged.
    """
    parts = _parts(url)
    if parts is None:
        return url
    return f"{parts.scheme}://{parts.user}:{MASK}@{parts.hosts}{parts.tail}"


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password percent-decoded)``; ``(url, None)`` when it
    has none."""
    parts = _parts(url)
    if parts is None:
        return url, None
    return f"{parts.scheme}://{parts.user}@{parts.hosts}{parts.tail}", unquote(parts.password)
