"""One copy of each set-up model per worker process, shared by its DoFn instances and threads.

Beam may build several instances of a DoFn in one worker process (one per thread of a multi-threaded
worker), and the Dask runner sets a DoFn up again for every bundle. Without sharing, each of them
would load every model again: a 7B captioner on a many-threaded worker could not survive it. `shared`
keeps what a key's `make()` returns for the life of the process; the key names everything the
result depends on (the config of the annotators), so another config gets its own copy.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_objects: dict[str, object] = {}
_lock = threading.Lock()
made: Counter[str] = Counter()  # how often each key was made in this process (1 once shared)
asked: Counter[str] = Counter()  # how often it was asked for (once per DoFn set-up)


def shared(key: str, make: Callable[[], T]) -> T:
    """`make()` once per process for `key` (under a lock, so concurrent threads wait for the first)."""
    with _lock:
        asked[key] += 1
        if key not in _objects:
            _objects[key] = make()
            made[key] += 1
        return _objects[key]  # type: ignore[return-value]
