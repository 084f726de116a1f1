"""Stage graphs written once, run by Beam or in memory.

A global stage is a function of `Flow`s: collections with a few operations (map, flat_map,
group_by_key, combine, flatten, group_by_shard). `pipelines/stages.py`'s `BeamFlow` turns each
operation into the Beam transform of that name, so the stage becomes a Beam pipeline on any runner; `LocalFlow` runs the same
operations on Python lists in this process, for unit tests on in-memory tables and for benchmarks that
time the algorithm rather than a runner. Stage logic is plain functions of elements: no stage module
imports Beam.

Shuffles carry blocks, not rows: a stage keys its values by a stable partition of the key
(`blocks_by_partition`, one element per partition a shard's keys fall in) and groups by key inside
each partition after the shuffle (`group_blocks`). A runner's cost per element (some 10 us on Beam's
DirectRunner, a shuffle record on Dataflow) is then paid per block; what meets under one key is
the same as when each row crosses alone.

`side`: a Flow of one element (e.g. a global histogram) passed to every call of `fn` after its other
arguments (Beam's `AsSingleton`). Values under one key arrive in no particular order; stage functions
sort them where order matters.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any


def partition_of(key: Any, partitions: int) -> int:
    """The partition in [0, partitions) of a key (str, bytes, int or tuples of them): the same in
    every process, as a shuffle across workers needs (Python's hash of str and bytes is not)."""
    return zlib.crc32(repr(key).encode()) % partitions


def blocks_by_partition(pairs: Iterable[tuple[Any, Any]], partitions: int) -> list[tuple[int, list]]:
    """(key, value) pairs -> (partition, [(key, value), ...]) for each partition they fall in."""
    blocks: dict[int, list] = defaultdict(list)
    for pair in pairs:
        blocks[partition_of(pair[0], partitions)].append(pair)
    return list(blocks.items())


def group_blocks(blocks: Iterable[list[tuple[Any, Any]]]) -> dict[Any, list]:
    """The blocks of one partition -> key -> its values (in no particular order)."""
    groups: dict[Any, list] = defaultdict(list)
    for block in blocks:
        for key, value in block:
            groups[key].append(value)
    return groups


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
