"""``Run``: a handle on one submission of a pipeline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from elfc.errors import ElfcError, JobFailure, RunCancelled, RunFailed
from elfc.model.status import FINAL_RUN_STATUSES

if TYPE_CHECKING:
    from elfc.runtime.client import Mycelium

R = TypeVar("R")


class Run(Generic[R]):
    """A submitted run. ``run.wait()`` returns the pipeline's value or raises ``RunFailed``.

    Usage: ``run = census.submit(rounds=3); print(run.status()); value = run.wait(timeout=60)``.
    """

    def __init__(self, mycelium: Mycelium, run_id: str, result_type: Any = Any) -> None:
        self.id = run_id
        self._mycelium = mycelium
        self._result_type = result_type

    def status(self) -> str:
        """One of ``running``, ``succeeded``, ``failed``, ``cancelled``."""
        status = self._mycelium.store.run_status(self.id)
        if status is None:
            raise ElfcError(f"run {self.id} is not in {self._mycelium.store.url}")
        return status

    def wait(self, timeout: float | None = None) -> R:
        """Block until the run settles; return its value, or raise ``RunFailed``/``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status()
        while status not in FINAL_RUN_STATUSES:
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"run {self.id} still {status} after {timeout} s")
            # None: the run is gone; status() says so.
            status = (
                self._mycelium.store.wait_for_run(self.id, min(remaining, 1.0)) or self.status()
            )
        if status == "cancelled":
            raise RunCancelled(f"run {self.id} was cancelled")
        if status == "failed":
            raise RunFailed(self.failures(), self.id)
        value: R = self._mycelium.output(self.id, self._result_type)
        return value

    def failures(self) -> list[JobFailure]:
        return self._mycelium.failures_of(self.id)

    def cancel(self) -> None:
        """Cancel: pending and ready jobs are cancelled, running ones stopped."""
        self._mycelium.store.cancel_run(self.id)

    def __repr__(self) -> str:
        return f"<Run {self.id}>"
