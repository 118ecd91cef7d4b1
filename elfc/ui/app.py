"""The dashboard's web application: a JSON API over :mod:`elfc.views`, server-sent events
for live pages, and the static page that draws them.

Every page is the same static shell (``static/index.html``) whose script reads the JSON API
and builds the page with DOM text nodes, so nothing read from the mycelium is ever parsed
as HTML; a Content-Security-Policy that allows only this server's own script and style is
the second wall. GET never changes anything; the one action (cancel a run) is a POST that
needs ``allow_actions`` and the page's CSRF token.

Usage::

    app = create_app("sqlite:///.elfc/mycelium.db")     # an ASGI app: uvicorn.run(app)
"""

from __future__ import annotations

import contextlib
import hmac
import mimetypes
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from elfc._version import __version__
from elfc.errors import ElfcError, NotFound, UsageError
from elfc.model.records import JobInfo, RunInfo
from elfc.model.status import JOB_STATUSES, RUN_STATUSES
from elfc.mycelium.store import Store
from elfc.mycelium.urls import mask_url, open_mycelium
from elfc.render import STATUS_COLOURS
from elfc.ui.layout import graph_layout
from elfc.views import (
    RunSummary,
    elf_progress,
    elves_view,
    failure_list,
    find_run,
    job_detail,
    job_page,
    revision_diff,
    run_fingerprint,
    run_list,
    run_picture,
    run_summary,
    run_value,
    runs_fingerprint,
    timeline,
)

__all__ = ["ACTIONS", "Settings", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC = resources.files("elfc.ui") / "static"
PAGES = ("/", "/runs/{run_id}", "/jobs/{job_id:path}", "/failures", "/elves")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _cancel(store: Store, run_id: str) -> str:
    info = find_run(store, run_id)
    if not store.cancel_run(info.id):
        raise UsageError(f"run {info.id} is {info.status}: only a running run can be cancelled")
    return f"run {info.id} cancelled"


ACTIONS: dict[str, Callable[[Store, str], str]] = {"cancel": _cancel}
"""The actions on a run the dashboard offers with ``--allow-actions``: name -> function of
the store and the run's id, returning what it did in one line. A new operation (retry) is one
entry here; the page shows a button for each."""


@dataclass
class Settings:
    """How the dashboard serves: which mycelium, what it may do, who may see it."""

    url: str
    allow_actions: bool = False
    token: str | None = None
    """When set, every request must carry it (``?token=`` once, then a cookie)."""
    loopback_only: bool = True
    """Answer only requests addressed to 127.0.0.1/localhost (no DNS rebinding)."""
    poll: float = 1.0
    """Seconds between checks for changes behind a live page."""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class _Reader:
    """One store for the server, used by one thread at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        with self._lock:
            if self._store is None:
                self._store = open_mycelium(self.url)
            yield self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        msgspec.json.encode(data),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(exc: ElfcError) -> Response:
    status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, UsageError) else 500
    return _json({"error": str(exc)}, status)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {raw!r}") from None


def _run_row(s: RunSummary, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "pipeline": s.pipeline,
        "status": s.status,
        "arguments": s.arguments,
        "counts": s.counts,
        "done": s.done,
        "total": s.total,
        "failed": s.failed,
        "created": s.created,
        "finished": s.finished,
        "duration": s.duration(now),
        "error": s.error,
        "cached": s.cached,
    }


def _job_row(j: JobInfo, now: float) -> dict[str, Any]:
    end = j.finished if j.finished is not None else (now if j.status == "running" else None)
    return {
        "id": j.id,
        "key": j.key,
        "elf": j.elf,
        "task": j.task,
        "status": j.status,
        "attempts": j.attempts,
        "duration": None if j.started is None or end is None else max(0.0, end - j.started),
        "worker": j.lease_owner,
        "deps": len(j.deps),
        "cached_from": j.cached_from,
    }


def create_app(settings: Settings) -> ASGIApp:
    """The dashboard for ``settings.url`` as an ASGI application."""
    reader = _Reader(settings.url)

    def read(body: Callable[[Store, Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        """A GET endpoint that reads the store in a worker thread."""

        async def endpoint(request: Request) -> Response:
            def work() -> Response:
                try:
                    with reader.store() as store:
                        return _json(body(store, request))
                except ElfcError as exc:
                    return _error(exc)

            return await run_in_threadpool(work)

        return endpoint

    def config(store: Store, request: Request) -> Any:
        return {
            "version": __version__,
            "mycelium": mask_url(settings.url),
            "actions": sorted(ACTIONS) if settings.allow_actions else [],
            "csrf": settings.csrf,
            "colours": {s: {"fill": f, "border": b} for s, (f, b) in STATUS_COLOURS.items()},
            "job_statuses": list(JOB_STATUSES),
            "run_statuses": list(RUN_STATUSES),
            "poll": settings.poll,
        }

    def runs(store: Store, request: Request) -> Any:
        q = request.query_params
        found = run_list(
            store,
            q.get("status") or None,
            q.get("pipeline") or None,
            q.get("q", ""),
            min(max(_int(request, "limit", 50), 1), 500),
        )
        now = time.time()
        return {"runs": [_run_row(s, now) for s in found]}

    cache: dict[tuple[str, str], tuple[tuple[object, ...], Any]] = {}

    def cached(kind: str, run_id: str, info: RunInfo, make: Callable[[], Any]) -> Any:
        """``make()``, reused while the run's status and counts stay the same (a finished
        run's graph and timeline cost a scan of its jobs once, not on every visit)."""
        key = (kind, run_id)
        stamp = (info.status, info.finished, tuple(info.counts.items()))
        hit = cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = make()
        if len(cache) >= 64:
            cache.pop(next(iter(cache)))
        cache[key] = (stamp, value)
        return value

    def run(store: Store, request: Request) -> Any:
        info = find_run(store, request.path_params["run_id"])
        now = time.time()
        picture = cached("picture", info.id, info, lambda: run_picture(store, info.id))
        finished, value = run_value(store, info)
        return {
            "run": _run_row(run_summary(info), now),
            "revision": info.revision,
            "elves": [msgspec.to_builtins(e) for e in elf_progress(info)],
            "has_value": finished,
            "value": value,
            "graph": graph_layout(picture),
        }

    def jobs(store: Store, request: Request) -> Any:
        page = job_page(
            store,
            request.path_params["run_id"],
            request.query_params.get("status") or None,
            _int(request, "offset", 0),
            _int(request, "limit", 100),
        )
        now = time.time()
        return {
            "run": page.run,
            "status": page.status,
            "offset": page.offset,
            "limit": page.limit,
            "total": page.total,
            "jobs": [_job_row(j, now) for j in page.jobs],
        }

    def gantt(store: Store, request: Request) -> Any:
        info = find_run(store, request.path_params["run_id"])
        if info.status == "running":  # its bars grow with the clock
            return msgspec.to_builtins(timeline(store, info.id))
        return cached(
            "timeline", info.id, info, lambda: msgspec.to_builtins(timeline(store, info.id))
        )

    def job(store: Store, request: Request) -> Any:
        d = job_detail(store, request.path_params["job_id"])
        out: dict[str, Any] = msgspec.to_builtins(d)
        job_out = out["job"]
        job_out.pop("result", None)
        out["result"] = d.result
        return out

    def diff(store: Store, request: Request) -> Any:
        q = request.query_params
        if not q.get("a") or not q.get("b"):
            raise UsageError("give two revisions: /api/diff?a=REVISION&b=REVISION")
        return {"lines": revision_diff(store, q["a"], q["b"])}

    def failures(store: Store, request: Request) -> Any:
        limit = min(max(_int(request, "limit", 50), 1), 500)
        return {
            "failures": [
                {
                    **msgspec.to_builtins(v.failure),
                    "jobs": [{"id": j.id, "run": j.run, "key": j.key} for j in v.jobs],
                }
                for v in failure_list(store, limit)
            ]
        }

    def elves(store: Store, request: Request) -> Any:
        return {
            "elves": [
                {
                    "name": e.name,
                    "record": msgspec.to_builtins(e.record),
                    "live": e.live,
                    "workers": [
                        {**msgspec.to_builtins(w.info), "age": w.age, "stale": w.stale}
                        for w in e.workers
                    ],
                }
                for e in elves_view(store)
            ]
        }

    async def events(request: Request) -> Response:
        """Server-sent events: ``change`` whenever what the page shows may have changed."""
        run_id = request.query_params.get("run")

        def fingerprint() -> tuple[object, ...]:
            with reader.store() as store:
                return run_fingerprint(store, run_id) if run_id else runs_fingerprint(store)

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            last: tuple[object, ...] | None = None
            quiet = 0.0
            while not await request.is_disconnected():
                try:
                    now = await run_in_threadpool(fingerprint)
                except ElfcError as exc:
                    yield b"event: failure\ndata: " + msgspec.json.encode(str(exc)) + b"\n\n"
                    now = last or ()
                if now != last:
                    if last is not None:
                        yield b"event: change\ndata: {}\n\n"
                    last, quiet = now, 0.0
                elif quiet >= 15:
                    yield b": still here\n\n"  # keeps proxies from closing an idle stream
                    quiet = 0.0
                await anyio.sleep(settings.poll)
                quiet += settings.poll

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def action(request: Request) -> Response:
        name = request.path_params["action"]
        if not settings.allow_actions:
            return _json({"error": "actions are off: start `elfc ui --allow-actions`"}, 403)
        if name not in ACTIONS:
            return _json({"error": f"no action {name!r}: {', '.join(sorted(ACTIONS))}"}, 404)
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), settings.csrf.encode()):
            return _json({"error": "missing or wrong CSRF token: reload the page"}, 403)
        run_id = request.path_params["run_id"]

        def work() -> Response:
            try:
                with reader.store() as store:
                    return _json({"message": ACTIONS[name](store, run_id)})
            except ElfcError as exc:
                return _error(exc)

        return await run_in_threadpool(work)

    async def page(request: Request) -> Response:
        body = (STATIC / "index.html").read_bytes()
        return Response(body, media_type="text/html", headers={"Cache-Control": "no-store"})

    def warm_up() -> None:
        """What the first page would otherwise wait for: the mycelium opened, the MIME table
        read, the modules a run's page needs imported."""
        mimetypes.init()
        with reader.store() as store:
            store.list_runs(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(warm_up)
        try:
            yield
        finally:
            reader.close()

    routes = [
        *(Route(path, page) for path in PAGES),
        Route("/api/config", read(config)),
        Route("/api/runs", read(runs)),
        Route("/api/runs/{run_id}", read(run)),
        Route("/api/runs/{run_id}/jobs", read(jobs)),
        Route("/api/runs/{run_id}/timeline", read(gantt)),
        Route("/api/runs/{run_id}/{action}", action, methods=["POST"]),
        Route("/api/jobs/{job_id:path}", read(job)),
        Route("/api/diff", read(diff)),
        Route("/api/failures", read(failures)),
        Route("/api/elves", read(elves)),
        Route("/api/events", events),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _not_allowed)
    return _Guard(app, settings)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"nothing at {request.url.path}"}, 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, 405)


class _Guard:
    """Checks every request before the app sees it (Host, token) and sets security headers
    on every response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refuse(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = self.settings.token
        given = request.query_params.get("token")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if token is not None and given is not None:
                    cookie = f"elfc_ui_token={token}; HttpOnly; SameSite=Strict; Path=/"
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refuse(self, request: Request) -> Response | None:
        host = (request.headers.get("host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.settings.loopback_only and name not in LOOPBACK:
            return _json({"error": f"this dashboard answers on 127.0.0.1, not {host!r}"}, 421)
        token = self.settings.token
        if token is not None:
            given = (
                request.query_params.get("token")
                or request.cookies.get("elfc_ui_token")
                or request.headers.get("authorization", "").removeprefix("Bearer ")
            )
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _json(
                    {"error": "this dashboard needs its token: open it with ?token=…"}, 401
                )
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1].lower() != host:
                return _json({"error": f"cross-origin {request.method} refused"}, 403)
        return None
