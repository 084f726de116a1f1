"""Unit vectors, and the one similarity pairsmith computes between two texts' CLIP embeddings.

Every embedding pairsmith compares is L2-normalised by `unit`, so a dot product is a cosine:
`clip_score` (image vs alt-text), `recaption_clip_score` (image vs recaption) and
`recaption_alt_similarity` (alt-text vs recaption), whether the annotate stage, the corruption stage
or `pairsmith corrupt` computes it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def unit(vectors) -> np.ndarray:
    """float32 rows scaled to length 1 (an all-zero row stays zero)."""
    array = np.asarray(vectors, np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=-1, keepdims=True), 1e-12)


def unit_vectors(column: pa.ChunkedArray | pa.Array, normalise: bool = True) -> np.ndarray:
    """rows x dim float32 vectors from a list column (unit unless `normalise=False`); null rows NaN."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    present = ~np.asarray(array.is_null())
    dim = int(pc.max(pc.list_value_length(array)).as_py() or 0)
    out = np.full((len(array), dim), np.nan, np.float32)
    if present.any():
        flat = pc.list_flatten(array.filter(pa.array(present))).to_numpy(zero_copy_only=False)
        out[present] = flat.astype(np.float32).reshape(-1, dim)
        if normalise:
            out[present] = unit(out[present])
    return out


def recaption_alt_similarity(alt_texts: np.ndarray, recaptions: np.ndarray) -> np.ndarray:
    """Row-wise cosine of the alt-texts' and the recaptions' unit text embeddings."""
    return np.sum(np.asarray(alt_texts, np.float32) * np.asarray(recaptions, np.float32), axis=-1)
