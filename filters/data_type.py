"""Visual data type, zero-shot with the primary CLIP model (Udandarao et al., ICLR 2024).

27 types plus "a normal photo"; one prompt per type, ensembled over templates (the text embeddings
of every template are averaged). The paper's best CLIP-style informedness is only ~0.5, so every
type's probability is kept (`data_type_scores`), not just the argmax (`data_type`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.clip_score import ClipScore
from pairsmith.schemas.record import FIELDS

# ../shared/ANCHORS.md: geometric, pixel, style and semantic types, each with its prompt phrase.
DATA_TYPES: dict[str, str] = {
    "left_rotate": "a photo rotated 90 degrees to the left",
    "right_rotate": "a photo rotated 90 degrees to the right",
    "patch_and_reshuffle": "a photo cut into patches that were shuffled",
    "crop_and_zoom": "a zoomed-in crop of a photo",
    "vertical_flip": "an upside-down photo",
    "mixup": "two photos blended on top of each other",
    "cutmix": "a photo with a rectangle pasted from another photo",
    "gaussian_noise": "a photo with heavy gaussian noise",
    "defocus_blur": "a blurry, out of focus photo",
    "snow": "a photo covered in falling snow",
    "high_brightness": "an overexposed, very bright photo",
    "low_brightness": "an underexposed, very dark photo",
    "high_contrast": "a photo with very high contrast",
    "low_contrast": "a washed-out photo with very low contrast",
    "jpeg_compress": "a heavily jpeg-compressed photo with artifacts",
    "pencil_sketch": "a pencil sketch",
    "cartoon": "a cartoon",
    "embroidery": "an embroidery",
    "plushie": "a plushie",
    "graffiti": "a graffiti",
    "tattoo": "a tattoo",
    "sculpture": "a sculpture",
    "origami": "an origami",
    "typographic": "an image of printed text",
    "multiple_same": "many copies of the same object",
    "multiple_different": "many different objects",
    "tiger_stripes": "something with tiger stripes",
    "normal_photo": "a normal photo",
}
TEMPLATES = ("This is {}.", "{} of something.", "An image that is {}.", "A picture showing {}.")


class DataType(Annotator):
    """Needs the primary `ClipScore` annotator to run first (it reuses its model and embeddings)."""

    fields = tuple(f for f in FIELDS if f.name in ("data_type", "data_type_scores"))

    def __init__(self, clip: ClipScore, logit_scale: float = 100.0):
        self.clip, self.logit_scale = clip, logit_scale
        self.model_id = f"zero-shot with {clip.spec}"

    def setup(self) -> None:
        prompts = [template.format(phrase) for phrase in DATA_TYPES.values() for template in TEMPLATES]
        text = self.clip.embedder.embed_texts(prompts).reshape(len(DATA_TYPES), len(TEMPLATES), -1).mean(1)
        self.type_embeddings = text / np.linalg.norm(text, axis=1, keepdims=True)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        embeddings = batch.column(f"{self.clip.dataset}/image_embedding")
        types, scores = [], []
        for emb in embeddings:
            if emb is None:
                types.append(None)
                scores.append(None)
                continue
            logits = self.logit_scale * self.type_embeddings @ np.asarray(emb, np.float32)
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            types.append(list(DATA_TYPES)[int(probs.argmax())])
            scores.append(dict(zip(DATA_TYPES, probs.astype(float).tolist(), strict=True)))
        return {"data_type": types, "data_type_scores": scores}
