"""``arango[s]://`` URLs: parsed once into an :class:`ArangoURL`, which never shows its password.

``arango://user@host:8529/dbname`` (``arangos://`` for TLS, with ``?ca=/path/bundle.pem`` for
a private CA); several coordinators of a cluster as ``arango://user@h1:8529,h2:8529/dbname``.
The password comes from the URL (percent-encoded) or from ``$ELFC_ARANGO_PASSWORD``. Other
options: ``?timeout=`` (seconds a request may take, default 60) and ``?connect_timeout=``
(seconds to reach a server, default 5).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

from elfc.errors import MyceliumError
from elfc.mycelium.urls import MASK, mask_url

__all__ = ["PASSWORD_ENV", "ArangoURL", "parse_url"]

PASSWORD_ENV = "ELFC_ARANGO_PASSWORD"
"""Where the password is read from when the URL has none (``ArangoStore.password_env``)."""
DEFAULT_PORT = 8529
DEFAULT_DATABASE = "elfc"
CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection to one server before trying the next (or giving up)."""
REQUEST_TIMEOUT = 60.0
"""Seconds a request may take once connected (a big submission is one request)."""

_OPTIONS = ("ca", "timeout", "connect_timeout")


@dataclass(frozen=True)
class ArangoURL:
    """A parsed ``arango[s]://`` URL. ``str()`` and ``repr()`` never show the password."""

    tls: bool
    hosts: tuple[tuple[str, int], ...]
    username: str
    database: str
    password: str = field(default="", repr=False)
    password_in_url: bool = False
    ca: str | None = None
    timeout: float = REQUEST_TIMEOUT
    connect_timeout: float = CONNECT_TIMEOUT

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The servers as python-arango wants them: ``http[s]://host:port``, no credentials."""
        scheme = "https" if self.tls else "http"
        return tuple(f"{scheme}://{_host(host)}:{port}" for host, port in self.hosts)

    @property
    def masked(self) -> str:
        """The URL in its canonical form (ports and options spelled out) with the password,
        if the URL had one, shown as ``***``: safe to print and log, and it parses again."""
        scheme = "arangos" if self.tls else "arango"
        auth = quote(self.username, safe="") + (f":{MASK}" if self.password_in_url else "")
        hosts = ",".join(f"{_host(host)}:{port}" for host, port in self.hosts)
        options = []
        if self.ca is not None:
            options.append(f"ca={quote(self.ca)}")
        if self.timeout != REQUEST_TIMEOUT:
            options.append(f"timeout={self.timeout:g}")
        if self.connect_timeout != CONNECT_TIMEOUT:
            options.append(f"connect_timeout={self.connect_timeout:g}")
        query = "?" + "&".join(options) if options else ""
        return f"{scheme}://{auth}@{hosts}/{quote(self.database, safe='')}{query}"

    def __str__(self) -> str:
        return self.masked


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_url(url: str, environ: Mapping[str, str] | None = None) -> ArangoURL:
    """Parse ``arango[s]://[user[:password]@]host[:port][,host[:port]...][/database][?opts]``.

    The user defaults to ``root``, the port to 8529, the database to ``elfc``. Without a
    password in the URL, ``$ELFC_ARANGO_PASSWORD`` is used (``environ`` stands in for
    ``os.environ`` in tests). Raises :class:`MyceliumError` (showing the URL masked).
    """
    env = os.environ if environ is None else environ
    scheme, sep, rest = url.partition("://")
    shown = mask_url(url)
    if not sep or scheme not in ("arango", "arangos"):
        raise MyceliumError(f"not an ArangoDB mycelium URL: {shown!r}")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    if "@" not in rest[:cut] and "@" in rest[cut:]:
        raise MyceliumError(
            f"the user part of {shown!r} holds an unencoded '/' or '?' (or an '@' appears "
            "after the hosts): percent-encode them in a password (/ as %2F, ? as %3F, @ as "
            f"%40), or leave the password out of the URL and set ${PASSWORD_ENV}"
        )
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if not at:
        userinfo, hostlist = "", netloc
    user, colon, password = userinfo.partition(":")
    hosts = tuple(_parse_host(part, shown) for part in hostlist.split(","))
    database = unquote(path.rstrip("/")) or DEFAULT_DATABASE
    if "/" in database:
        raise MyceliumError(f"bad database name {database!r} in {shown!r}")
    options = _parse_options(query, shown)
    tls = scheme == "arangos"
    if "ca" in options and not tls:
        raise MyceliumError(f"?ca= needs TLS: use arangos:// in {shown!r}")
    return ArangoURL(
        tls=tls,
        hosts=hosts,
        username=unquote(user) or "root",
        database=database,
        password=unquote(password) if colon else env.get(PASSWORD_ENV, ""),
        password_in_url=bool(colon),
        ca=options.get("ca"),
        timeout=_seconds(options, "timeout", REQUEST_TIMEOUT, shown),
        connect_timeout=_seconds(options, "connect_timeout", CONNECT_TIMEOUT, shown),
    )


def _parse_host(part: str, shown: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", part.strip())
    if match is None or not (match.group(1) or match.group(3)):
        raise MyceliumError(f"bad host {part!r} in {shown!r}: use host[:port][,host[:port]...]")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4) or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise MyceliumError(f"bad port {port} in {shown!r}")
    return host, port


def _parse_options(query: str, shown: str) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise MyceliumError(
            f"unknown option(s) {', '.join(unknown)} in {shown!r}: known are {', '.join(_OPTIONS)}"
        )
    return options


def _seconds(options: Mapping[str, str], name: str, default: float, shown: str) -> float:
    text = options.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise MyceliumError(f"?{name}= takes a number of seconds > 0, not {text!r}, in {shown!r}")
    return value
