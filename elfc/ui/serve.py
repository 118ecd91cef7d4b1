"""Starting the dashboard's server: uvicorn on one host and port, stopped by Ctrl-C/SIGTERM."""

from __future__ import annotations

from elfc.errors import ElfcError
from elfc.ui.app import Settings

__all__ = ["Settings", "serve"]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the dashboard until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    from elfc.ui.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise ElfcError(f"cannot listen on {host}:{port}: is another server using the port?")
