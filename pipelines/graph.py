"""Stage graphs written once, run by Beam or in memory.

A global stage is a function of `Flow`s: collections with a few operations (map, flat_map,
group_by_key, combine, flatten, group_by_shard). `pipelines/stages.py`'s `BeamFlow` turns each
operation into the Beam transform of that name, so the stage becomes a Beam pipeline on any runner; `LocalFlow` runs the same
operations on Python lists in this process, for unit tests on in-memory tables and for benchmarks that
time the algorithm rather than a runner. Stage logic is plain functions of elements: no stage module
imports Beam.

`side`: a Flow of one element (e.g. a global histogram) passed to every call of `fn` after its other
arguments (Beam's `AsSingleton`). Values under one key arrive in no particular order; stage functions
sort them where order matters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any


class LocalFlow:
    """A Flow over a list, run eagerly in this process."""

    def __init__(self, items: Iterable):
        self.items = list(items)

    def _side(self, side: LocalFlow | None) -> tuple:
        return () if side is None else (side.items[0],)

    def map(self, label: str, fn: Callable, *args, side: LocalFlow | None = None) -> LocalFlow:
        extra = self._side(side)
        return LocalFlow(fn(x, *args, *extra) for x in self.items)

    def flat_map(self, label: str, fn: Callable, *args, side: LocalFlow | None = None) -> LocalFlow:
        extra = self._side(side)
        return LocalFlow(y for x in self.items for y in fn(x, *args, *extra))

    def group_by_key(self, label: str) -> LocalFlow:
        groups: dict[Any, list] = defaultdict(list)
        for key, value in self.items:
            groups[key].append(value)
        return LocalFlow(groups.items())

    def combine(self, label: str, fn: Callable[[Iterable], Any]) -> LocalFlow:
        """One element: `fn` of all elements (associative and commutative, as Beam may split it)."""
        return LocalFlow([fn(self.items)])

    def flatten(self, label: str, *others: LocalFlow) -> LocalFlow:
        return LocalFlow(x for flow in (self, *others) for x in flow.items)

    def group_by_shard(self, label: str, shards: LocalFlow) -> LocalFlow:
        """(shard, [values]) for every shard of `shards`, from this Flow's (shard, value) pairs; a
        shard without values gets an empty list (every shard is written)."""
        groups: dict[Any, list] = {shard: [] for shard in shards.items}
        for shard, value in self.items:
            groups[shard].append(value)
        return LocalFlow(groups.items())
