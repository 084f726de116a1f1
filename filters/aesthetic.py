"""`aesthetic_score`: LAION's linear aesthetic head (1-10) on ViT-L/14 image embeddings.

The head reads the first ViT-L-14 CLIP model of the run; without one the column stays null and the
manifest says why.
"""

from __future__ import annotations

import pyarrow as pa

from pairsmith.filters.clip_heads import ClipEmbeddingHead
from pairsmith.filters.named_weights import named_file
from pairsmith.schemas.record import column


def _l14(run):
    return next((clip for clip in run.clips if clip.spec.startswith("ViT-L-14")), None)


class AestheticHead(ClipEmbeddingHead):
    """LAION's linear head on ViT-L/14 embeddings; null without an L/14 model, and the manifest says why."""

    fields = (
        column(
            "aesthetic_score",
            pa.float32(),
            "scores",
            "LAION's linear aesthetic head on ViT-L/14 image embeddings (1-10); null without an L/14 model "
            "(the manifest says why).",
        ),
    )
    model = "aesthetic"
    sigmoid = False

    @classmethod
    def unavailable(cls, run, spec: str) -> str | None:
        if _l14(run) is None:
            return "reads ViT-L-14 image embeddings and the run has no ViT-L-14 CLIP model"
        return None

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        named_file(spec, spec)
        return {"aesthetic": spec}

    @classmethod
    def configure(cls, run, spec: str) -> list[AestheticHead]:
        return [cls(spec, _l14(run))]
