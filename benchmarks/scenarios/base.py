"""The contract between the runner and a scenario (what every connection of every worker does in a loop)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from benchmarks.awsjson import Target
from benchmarks.pacing import Pacer
from benchmarks.stats import WorkerStats


class Scenario(Protocol):
    """A picklable object: built from CLI options in the parent, set up there, then shipped to each worker.

    ``headline`` names the counter that measures throughput (e.g. ``deleted``: messages fully cycled) and
    ``unit`` how to print it (``msgs``); ``units_per_op`` how many units one paced operation carries (a batch of
    10 sends 10 messages), so ``--rate`` in units/s becomes a schedule of operations.
    """

    name: str
    headline: str
    unit: str

    @property
    def units_per_op(self) -> int: ...

    async def setup(self, target: Target) -> None:
        """Runs once in the parent before the workers start (create queues, streams...)."""

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        """Loop on one connection until ``pacer.stopping()``, starting each operation at ``await pacer.next()``
        (timing it from that intended start when ``pacer.open_loop``); errors are counted, never raised."""

    async def teardown(self, target: Target) -> None:
        """Runs once in the parent after all workers finished."""

    def describe(self) -> dict[str, object]:
        """The scenario's parameters, for the report."""
        ...


@dataclass(frozen=True)
class ScenarioSpec:
    """How the CLI finds a scenario, adds its options and builds it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    from_args: Callable[[argparse.Namespace], Scenario]
