"""CLIP image-text score (cosine of the normalised embeddings) and the embeddings, per model.

The primary model writes `clip_score`; every other model writes `clip_score_<alias>`. Image and
text embeddings go to the side dataset `embeddings/<alias>` as float16, row-aligned with the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.errors import ConfigError
from pairsmith.schemas.record import column

CLIP_SCORE = column(
    "clip_score",
    pa.float32(),
    "scores",
    "Cosine of the primary CLIP model's image and caption embeddings (`models.clip[0]`); other "
    "models add `clip_score_<alias>`. Embeddings: `OUT/embeddings/<alias>/`.",
)


def clip_score_column(alias: str, primary: bool) -> str:
    """The score's column: `clip_score` for the run's primary model, `clip_score_<alias>` for others."""
    return "clip_score" if primary else f"clip_score_{alias}"


class ClipScore(Annotator):
    """open_clip, by model spec (see "Models"); one per model of `models.clip`, the first primary."""

    fields = (CLIP_SCORE,)
    provides = ("image_embedding", "text_embedding")
    needs = ("caption",)
    reads_image = True
    model = "clip"

    def __init__(self, alias: str, spec: str, primary: bool, device: str = "auto", precision: str = "auto"):
        from pairsmith.filters.clip_models import ClipEmbedder

        self.alias, self.spec = alias, spec
        self.embedder = ClipEmbedder(spec, device, precision)
        name = clip_score_column(alias, primary)
        doc = f"Cosine similarity of image and caption embeddings of CLIP model `{alias}` ({spec})."
        self.fields = (CLIP_SCORE if primary else CLIP_SCORE.with_name(name).with_metadata({"doc": doc}),)
        self.dataset = f"embeddings/{alias}"
        self.model_id = spec

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return True  # a list of models, maybe empty

    @classmethod
    def check(cls, run, spec: list) -> dict[str, str]:
        aliases = [m.alias for m in spec]
        if len(set(aliases)) != len(aliases):
            raise ConfigError(f"models.clip: aliases must be unique, got {aliases}")
        if spec:  # open_clip takes seconds to import: not for a run without CLIP
            from pairsmith.filters.clip_models import resolve

            for m in spec:
                resolve(m.spec)
        return {f"clip/{m.alias}": m.spec for m in spec}

    @classmethod
    def configure(cls, run, spec: list) -> list[ClipScore]:
        return run.clips

    def setup(self) -> None:
        self.embedder.load()
        # A variable-size list: Parquet cannot round-trip a fixed-size list with null rows (pyarrow 24
        # refuses to write it, 25 writes what it cannot read). The dimension is in the field metadata.
        vector = pa.list_(pa.float16())
        meta = {"model": self.spec, "dim": str(self.embedder.dim)}
        self.side_fields = {
            self.dataset: (
                pa.field("image_embedding", vector, metadata=meta),
                pa.field("text_embedding", vector, metadata=meta),
            )
        }

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        n = len(batch)
        with_image = [i for i, img in enumerate(batch.images) if img is not None]
        with_text = [i for i, c in enumerate(batch.column("caption")) if c is not None]
        image_emb = self.embedder.embed_images([batch.images[i] for i in with_image], batch.pool)
        text_emb = self.embedder.embed_texts([batch.column("caption")[i] for i in with_text])
        scores: list[float | None] = [None] * n
        text_row = {row: k for k, row in enumerate(with_text)}
        for k, row in enumerate(with_image):
            if row in text_row:
                scores[row] = float(np.dot(image_emb[k], text_emb[text_row[row]]))
        return {
            self.fields[0].name: scores,
            f"{self.dataset}/image_embedding": half_vectors(image_emb, with_image, n),
            f"{self.dataset}/text_embedding": half_vectors(text_emb, with_text, n),
        }


def half_vectors(vectors: np.ndarray, rows: list[int], n: int) -> pa.ListArray:
    """float16 vectors at `rows` of an n-row column, null elsewhere."""
    present = np.zeros(n, bool)
    present[rows] = True
    offsets = np.r_[0, np.cumsum(present * vectors.shape[1])].astype(np.int32)
    values = pa.array(vectors.astype(np.float16).reshape(-1), pa.float16())
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~present))
