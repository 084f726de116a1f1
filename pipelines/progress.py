"""Progress bars for stages that run inside Beam: a thread counts finished shard files."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def shard_progress(
    desc: str, total: int, count_done: Callable[[], int], every_s: float = 0.5
) -> Iterator[None]:
    """Show `count_done()` out of `total` shards while the block runs."""
    bar = tqdm(total=total, desc=desc, unit="shard", file=sys.stderr, disable=total == 0, leave=True)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s):
            bar.update(count_done() - bar.n)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.update(count_done() - bar.n)
        bar.close()
