"""Elves and pipelines for the runtime benchmarks: trivial tasks, so orchestration is measured."""

from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Bench:
    @task
    def source(self, n: int) -> int:
        return n

    @task
    def work(self, seed: int, i: int) -> int:
        return seed + i

    @task
    def loud(self, seed: int, i: int) -> int:
        print(f"job {i}: adding {seed} and {i}")
        return seed + i

    @task
    def reduce(self, values: list[int]) -> int:
        return sum(values)


@elf
class Hop:
    @task
    def step(self, x: int) -> int:
        return x + 1


bench = named(Bench, "bench")
ping = named(Hop, "ping")
pong = named(Hop, "pong")


@pipeline
def fanout(n: int = 2000) -> int:
    seed = bench.source(n)
    parts = [bench.work(seed, i) for i in range(n)]
    return bench.reduce(parts)


@pipeline
def fanout_loud(n: int = 2000) -> int:
    """FANOUT whose jobs each print a line (the cost of storing task output)."""
    seed = bench.source(n)
    parts = [bench.loud(seed, i) for i in range(n)]
    return bench.reduce(parts)


@pipeline
def chain(n: int = 200) -> int:
    x = ping.step(0)
    for i in range(n - 1):
        x = (pong if i % 2 == 0 else ping).step(x)
    return x
