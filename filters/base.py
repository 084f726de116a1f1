"""The annotator base: load once in `setup`, take a batch, return new columns.

An annotator never drops a row: it returns one value per row (None where it has no answer), and
Beam DoFns, RunInference handlers and Prefect tasks only wrap it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from PIL import Image

if TYPE_CHECKING:
    from pairsmith.filters.registry import Run


@dataclass
class Batch:
    """Rows of one shard: their column values so far and their decoded images (None if no image)."""

    columns: dict[str, list[Any]]
    images: list[Image.Image | None]
    pool: Executor | None = None  # threads for per-image work (Pillow and numpy release the GIL)

    def map(self, fn: Callable, items: Iterable) -> list:
        """`[fn(item) for item in items]`, on the batch's threads when it has them."""
        return list(self.pool.map(fn, items) if self.pool is not None else map(fn, items))

    def __len__(self) -> int:
        return len(self.images)

    def column(self, name: str) -> list[Any]:
        return self.columns[name]


class Annotator(ABC):
    """Adds `fields` to every row of a batch. A subclass declares what it writes and reads:

    - `fields`: its record columns (`schemas.record.column`: name, Arrow type, group, one-line doc);
    - `needs`: the columns it reads from the batch (input and download columns, other annotators'
      fields, or side inputs such as `image_embedding`, the primary CLIP model's); `uses`: columns it
      reads where present (it runs after their annotators, and without them too);
    - `reads_image`: whether it reads the decoded image, not only columns such as the caption;
    - `model`: the profile key of its model spec (`nsfw`, `watermark`, ...), None for a formula;
    and implements `annotate`. `filters.registry` orders the annotators by what they read.

    `side_fields` are per-row outputs that do not belong in the record (embeddings): they go to a
    side dataset, `OUT/<dataset>/SHARD.parquet`, aligned row by row with the data shard; their keys
    in `annotate`'s result are `"<dataset>/<column>"`; `provides` names those columns for `needs`.
    """

    fields: ClassVar[tuple[pa.Field, ...]]
    side_fields: ClassVar[dict[str, tuple[pa.Field, ...]]] = {}
    provides: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[tuple[str, ...]] = ()
    uses: ClassVar[tuple[str, ...]] = ()
    reads_image: ClassVar[bool] = False
    model: ClassVar[str | None] = None
    model_id: ClassVar[str | None] = None

    @classmethod
    def model_spec(cls, run: Run) -> Any:
        """Its model in `run`: the config's `models.<model>`, else the profile's (None without a model)."""
        return run.spec(cls.model) if cls.model else None

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        """Whether this class computes its signal with model `spec` (`none` turns a signal off)."""
        return spec != "none"

    @classmethod
    def unavailable(cls, run: Run, spec: Any) -> str | None:
        """Why the signal stays null in `run` although its model is set (None: it is computed)."""
        return None

    @classmethod
    def check(cls, run: Run, spec: Any) -> dict[str, str]:
        """Resolve the model before any work (ModelLoadError if it cannot load here); returns what
        the manifest records."""
        return {cls.model: spec} if cls.model else {}

    @classmethod
    def configure(cls, run: Run, spec: Any) -> list[Annotator]:
        """The instances of a run (models load later, in `setup`)."""
        return [cls()]

    def setup(self) -> None:  # noqa: B027  (optional hook)
        """Load models or tables; called once per worker before the first batch."""

    @abstractmethod
    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        """One list per field in `fields`, each as long as the batch."""

    def __call__(self, batch: Batch) -> dict[str, pa.Array]:
        return self.arrays(self.annotate(batch))

    def arrays(self, values: dict[str, list[Any]]) -> dict[str, pa.Array]:
        """`annotate`'s lists as Arrow arrays of the declared types (side fields keyed "dataset/column")."""
        named = [(f.name, f) for f in self.fields]
        named += [(f"{dataset}/{f.name}", f) for dataset, fields in self.side_fields.items() for f in fields]
        return {name: _as_array(values[name], f.type) for name, f in named}


class ImageAnnotator(Annotator):
    """An annotator that looks at each image on its own; rows without an image get None."""

    reads_image = True
    thread_safe: ClassVar[bool] = True  # False: one `annotate_image` at a time in the process

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        def one(image):
            return self.annotate_image(image) if image is not None else {}

        if self.thread_safe:
            rows = batch.map(one, batch.images)
        else:
            with self.serial():
                rows = [one(image) for image in batch.images]
        return self.columns_of(rows)

    def serial(self) -> contextlib.AbstractContextManager:
        """Held around `annotate_image` calls: one at a time in the process unless `thread_safe`
        (also when several DoFn threads share this instance, pipelines/shared_models.py)."""
        if self.thread_safe:
            return contextlib.nullcontext()
        return _SERIAL.setdefault(type(self), threading.Lock())

    def columns_of(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Per-image results (`annotate_image`'s, {} for a row without an image) as one list per field."""
        return {f.name: [row.get(f.name) for row in rows] for f in self.fields}

    @abstractmethod
    def annotate_image(self, image: Image.Image) -> dict[str, Any]:
        """Field name -> value for one decoded RGB image."""


_SERIAL: dict[type, threading.Lock] = {}
_GREYS: dict[int, Image.Image] = {}


def grey(image: Image.Image) -> Image.Image:
    """`image.convert("L")`, converted once per image object however many annotators ask for it
    (pHash and the near-uniform rule both start from it); dropped with the image."""
    found = _GREYS.get(id(image))
    if found is None:
        found = _GREYS[id(image)] = image.convert("L")
        weakref.finalize(image, _GREYS.pop, id(image), None)
    return found


def _as_array(values: list[Any] | pa.Array, type_: pa.DataType) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(values, type_)
