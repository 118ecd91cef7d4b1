"""``python -m elfc.ui``: the dashboard's server process, which ``elfc ui`` starts (it checks
the command line and replaces itself with this process). The token, when there is one, comes
in ``$ELFC_UI_TOKEN``, never on the command line, where other users could read it."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from elfc.errors import ElfcError
from elfc.mycelium.urls import mask_url
from elfc.ui.app import Settings
from elfc.ui.serve import serve

TOKEN_ENV = "ELFC_UI_TOKEN"


def loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m elfc.ui", description="Serve the dashboard.")
    p.add_argument("--mycelium", required=True, metavar="URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--allow-actions", action="store_true")
    p.add_argument("--poll", type=float, default=1.0)
    args = p.parse_args(argv)
    token = os.environ.get(TOKEN_ENV) or None
    local = loopback(args.host)
    if not local:
        print(
            f"elfc ui: warning: listening on {args.host}, not only this machine: anyone who "
            "reaches it can read every job's arguments and results"
            + ("" if token else f"; set --token or ${TOKEN_ENV} to require a token"),
            file=sys.stderr,
        )
    settings = Settings(
        args.mycelium,
        allow_actions=args.allow_actions,
        token=token,
        loopback_only=local,
        poll=args.poll,
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"elfc ui: serving {mask_url(args.mycelium)} on http://{shown}:{args.port}/ "
        f"({'actions allowed' if args.allow_actions else 'read-only'}; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    try:
        serve(settings, args.host, args.port)
    except ElfcError as exc:
        print(f"elfc ui: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
