"""``elfc ui``: a web dashboard of the mycelium (runs, a run's graph, timeline and jobs, a
job's values and sources, failures, elves and workers), live while runs progress.

Needs the ``ui`` extra (``pip install 'elfc[ui]'``: Starlette and uvicorn); every page, script
and style it serves is package data, so it works with no network. It reads through
:mod:`elfc.views`, as the command line does.

Usage::

    from elfc.ui import Settings, serve
    serve(Settings("sqlite:///.elfc/mycelium.db"), host="127.0.0.1", port=8765)
"""

from __future__ import annotations

from elfc.ui.serve import Settings, serve

__all__ = ["Settings", "serve"]
