"""Elves and pipelines for the control-flow benchmarks (``control_flow.py``)."""

from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Mapper:
    @task
    def source(self, n: int) -> int:
        return n

    @task
    def items(self, n: int) -> list[int]:
        return list(range(n))

    @task
    def work(self, seed: int, i: int) -> int:
        return seed + i

    @task
    def reduce(self, values: list[int]) -> int:
        return sum(values)


@elf
class Stepper:
    @task
    def step(self, x: int) -> int:
        return x + 1


mapper = named(Mapper, "mapper")
tick = named(Stepper, "tick")
tock = named(Stepper, "tock")


@pipeline
def static_fanout(n: int = 2000) -> int:
    """FANOUT: the n jobs are known at submission."""
    seed = mapper.source(n)
    return mapper.reduce([mapper.work(seed, i) for i in range(n)])


@pipeline(max_elements=1_000_000)
def dynamic_fanout(n: int = 2000) -> int:
    """DYNAMIC FANOUT: the same n jobs, over a list a task returns (expanded at run time)."""
    seed = mapper.source(n)
    return mapper.reduce([mapper.work(seed, i) for i in mapper.items(n)])


@pipeline
def plain_chain(n: int = 40) -> int:
    x = tick.step(0)
    for i in range(n - 1):
        x = (tock if i % 2 == 0 else tick).step(x)
    return x


@pipeline
def branchy_chain(n: int = 40) -> int:
    """``plain_chain`` with a branch on each hop's result before the next hop."""
    x = tick.step(0)
    for i in range(n - 1):
        if x >= 0:  # noqa: SIM108 - the statement form is what this measures
            x = (tock if i % 2 == 0 else tick).step(x)
        else:
            x = -1
    return x


def same(x: int) -> int:
    """A plain function of the user's (a pure reshaping) between two hops."""
    return x + 0


@pipeline
def helper_chain(n: int = 40) -> int:
    """``plain_chain`` with a plain function called on each hop's result before the next."""
    x = tick.step(0)
    for i in range(n - 1):
        x = (tock if i % 2 == 0 else tick).step(same(x))
    return x
