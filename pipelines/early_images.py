"""Per-image annotators started while the shard still downloads.

img2dataset hands each stored image to its writer as soon as it is resized and encoded; `add` (the
writer's hook, see `download.download_shard`) decodes it on the annotate pool and runs the annotators
that look at one image at a time (`ImageAnnotator`s: `ImageStats`, `PerceptualHash`, OCR, ...),
so that decoding and measuring overlap the network instead of waiting for the whole shard. The
annotate step then takes their values (`columns`); every other annotator runs on batches after the
download, as before. The image is the stored one, decoded from the same bytes the tar holds, so the
values are those that annotating from the tar gives.

Only when every annotator that reads the image is one of those (`early_annotators`): a model that
runs on batches of decoded images (CLIP, a detector) would decode each one a second time, which
measured slower than overlapping whole shards (`benchmarks/download_throughput.py`, run d).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from typing import Any

from pairsmith.filters.base import Annotator, ImageAnnotator
from pairsmith.pipelines.annotate import decode

PENDING = 256  # images decoded or waiting at once; beyond, the download waits (memory stays bounded)


def _one_at_a_time(annotator: Annotator) -> bool:
    """An `ImageAnnotator` whose batch step is the base one: `annotate_image` per image, nothing else."""
    return isinstance(annotator, ImageAnnotator) and type(annotator).annotate is ImageAnnotator.annotate


def early_annotators(annotators: list[Annotator]) -> list[Annotator]:
    """The annotators to run on each image as it arrives: those that read the image, if each of them
    looks at one image at a time (else none: each image is decoded once, on batches)."""
    readers = [a for a in annotators if a.reads_image]
    return readers if all(_one_at_a_time(a) for a in readers) else []


class EarlyImages:
    """One shard's early per-image results, by input row; `annotators` is the run's set-up annotators
    (a Future while the models still load: the pool's tasks wait for it, the download does not)."""

    def __init__(self, annotators: Future[list[Annotator]], pool: Executor, pending: int = PENDING):
        self._annotators, self._pool = annotators, pool
        self._room = threading.BoundedSemaphore(pending)
        self._results: dict[int, Future[dict[str, Any]]] = {}

    def add(self, row: int, data: bytes) -> None:
        """Start on the stored image of input row `row` (blocks while `pending` images are in work)."""
        self._room.acquire()
        self._results[row] = self._pool.submit(self._measure, data)

    def _measure(self, data: bytes) -> dict[str, Any]:
        try:
            image = decode(data)
            values: dict[str, Any] = {}
            for annotator in self._early if image is not None else []:
                with annotator.serial():
                    values |= annotator.annotate_image(image)
            return values
        finally:
            self._room.release()

    @functools.cached_property
    def _early(self) -> list[Annotator]:
        """The set-up annotators that run here (waits for the models the first time)."""
        return early_annotators(self._annotators.result())

    def has(self, rows: Iterable[int]) -> bool:
        """Whether every row of `rows` (those with a stored image) was added."""
        return all(row in self._results for row in rows)

    def takes(self, annotator: Annotator) -> bool:
        """Whether `annotator`'s columns come from here."""
        return any(a is annotator for a in self._early)

    def columns(self, annotator: ImageAnnotator, rows: range) -> dict[str, list[Any]]:
        """`annotator`'s values for `rows` (None where a row has no image), waiting for them."""
        return annotator.columns_of(
            [self._results[row].result() if row in self._results else {} for row in rows]
        )
