"""Visual data type, zero-shot with the primary CLIP model (Udandarao et al., ICLR 2024).

27 types plus "a normal photo"; one prompt per type, ensembled over templates (the text embeddings
of every template are averaged). The paper's best CLIP-style informedness is only ~0.5, so every
type's probability is kept (`data_type_scores`), not just the argmax (`data_type`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.vectors import unit
from pairsmith.schemas.record import column

if TYPE_CHECKING:
    from pairsmith.filters.clip_score import ClipScore

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
    """Zero-shot over the 27 types of Udandarao et al. + `normal_photo`, 4-template ensembles, with the
    primary CLIP model (its model and image embeddings); every type's probability kept (zero-shot
    informedness is only ~0.5)."""

    fields = (
        column(
            "data_type",
            pa.string(),
            "scores",
            "Most likely visual data type (27 types of Udandarao et al. + `normal_photo`), zero-shot with the "
            "primary CLIP model.",
        ),
        column(
            "data_type_scores",
            pa.struct([pa.field(name, pa.float32()) for name in DATA_TYPES]),
            "scores",
            "Probability of every data type (softmax of 100 x cosine); keep them: zero-shot informedness is ~0.5.",
        ),
    )
    needs = ("image_embedding",)

    def __init__(self, clip: ClipScore, logit_scale: float = 100.0):
        self.clip, self.logit_scale = clip, logit_scale
        self.model_id = f"zero-shot with {clip.spec}"

    @classmethod
    def configure(cls, run, spec) -> list[DataType]:
        return [cls(run.clips[0])]

    def setup(self) -> None:
        prompts = [template.format(phrase) for phrase in DATA_TYPES.values() for template in TEMPLATES]
        text = self.clip.embedder.embed_texts(prompts).reshape(len(DATA_TYPES), len(TEMPLATES), -1).mean(1)
        self.type_embeddings = unit(text)

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
