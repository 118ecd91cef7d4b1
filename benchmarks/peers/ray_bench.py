"""Ray, local, 2 CPUs, on 127.0.0.1 only, usage stats off: remote functions and two actors.

Remote functions: the whole graph is submitted at once with ObjectRefs as arguments, and Ray
runs each task when its arguments exist; ``reduce`` takes the 2000 refs as arguments, so Ray
resolves them before calling it. Actors: two ``Elf`` actors (one process each, methods run in
order), the closest analogue of two named elves; FANOUT's work alternates between them, and
every CHAIN hop goes to the other actor. Processes and memory are everything under the driver
(GCS, raylet, agents, log monitor, task workers, actors).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    HOST,
    Figures,
    Sizes,
    figures,
    first_result,
    measure_chain,
    measure_fanout,
    memory,
    temp_dir,
)

# Before importing ray: no usage reporting, and the node's address is the loopback one, so every
# gRPC server binds 127.0.0.1 (on Linux Ray otherwise advertises and binds the outward address).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray


@ray.remote
def source(n: int) -> int:
    return n


@ray.remote
def work(seed: int, i: int) -> int:
    return seed + i


@ray.remote
def reduce(*values: int) -> int:
    return sum(values)


@ray.remote
def step(x: int) -> int:
    return x + 1


@ray.remote
class Elf:
    def source(self, n: int) -> int:
        return n

    def work(self, seed: int, i: int) -> int:
        return seed + i

    def reduce(self, *values: int) -> int:
        return sum(values)

    def step(self, x: int) -> int:
        return x + 1


def task_fanout(n: int) -> int:
    seed = source.remote(n)
    return int(ray.get(reduce.remote(*[work.remote(seed, i) for i in range(n)])))


def task_chain(n: int) -> int:
    x = step.remote(0)
    for _ in range(n - 1):
        x = step.remote(x)
    return int(ray.get(x))


def actor_workloads() -> tuple[Callable[[int], int], Callable[[int], int]]:
    a, b = Elf.remote(), Elf.remote()  # type: ignore[attr-defined]

    def fanout(n: int) -> int:
        seed = a.source.remote(n)
        parts = [(a if i % 2 == 0 else b).work.remote(seed, i) for i in range(n)]
        return int(ray.get(b.reduce.remote(*parts)))

    def chain(n: int) -> int:
        x = a.step.remote(0)
        for i in range(n - 1):
            x = (b if i % 2 == 0 else a).step.remote(x)
        return int(ray.get(x))

    return fanout, chain


def run_round(sizes: Sizes) -> dict[str, Figures]:
    with temp_dir("peers-ray-") as tmp:  # Ray's session logs and sockets, removed after
        return measure_both(sizes, tmp)


def measure_both(sizes: Sizes, tmp: Path) -> dict[str, Figures]:
    launched = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address=HOST,
        _temp_dir=str(tmp),
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        start_s = first_result(task_fanout, launched)
        tasks = figures(
            measure_fanout(task_fanout, sizes), measure_chain(task_chain, sizes), start_s, memory()
        )
        launched = time.perf_counter()
        fanout, chain = actor_workloads()
        start_s = first_result(fanout, launched)
        actors = figures(
            measure_fanout(fanout, sizes), measure_chain(chain, sizes), start_s, memory()
        )
    finally:
        ray.shutdown()
    return {"ray tasks": tasks, "ray actors": actors}
