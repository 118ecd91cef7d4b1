"""ELF113 fixed: parameters and returns annotated with types that cross as JSON."""

from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Fixed:
    @task
    def typed(self, x: int) -> int:
        return x

    @task
    def lock_inside(self) -> int:
        return 0  # take the lock in the worker, not as an argument

    @task
    def by_name(self, operation: str) -> int:
        return {"double": 2}.get(operation, 1)

    @task
    def read(self, path: str) -> str:
        with open(path) as f:
            return f.read()

    @task
    def items(self) -> list[int]:
        return [1]


fixed = named(Fixed, "fixed")


@pipeline
def uses_fixed() -> int:
    return fixed.typed(len(fixed.items()) + fixed.by_name("double") + fixed.lock_inside())
