"""Option types shared by the commands: each rejects a bad value with a clear usage error
before the command does anything (argparse prints ``error: argument --lease: ...``, exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["lease", "seconds"]


def seconds(*, positive: bool = True) -> Callable[[str], float]:
    """An argparse ``type``: a finite number of seconds, greater than 0 (``positive``) or at
    least 0. ``nan``, ``inf`` and negative numbers are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise argparse.ArgumentTypeError(f"seconds must be finite and {bound}, not {text!r}")
        return value

    parse.__name__ = "seconds"  # argparse names the type in its messages
    return parse


def lease(text: str) -> float:
    """An argparse ``type``: a lease a worker can keep (see ``elfc.runtime.worker.check_lease``)."""
    from elfc.runtime.worker import MAX_LEASE, MIN_LEASE

    value = seconds()(text)
    if not MIN_LEASE <= value <= MAX_LEASE:
        raise argparse.ArgumentTypeError(
            f"a lease must be between {MIN_LEASE:g} and {MAX_LEASE:g} seconds, not {text!r}"
        )
    return value
