"""Recaptioning as annotators of the annotate stage, and as the work of `pairsmith recaption`.

`Recaption` writes the recaption and judges it with the run's primary CLIP model, reusing what the
`ClipScore` annotator already has: its loaded embedder (one more text embedding per row) and the
image and alt-text embeddings of the batch (the side dataset's float16 vectors, renormalised), so
recaptioning adds no image embedding pass. `RecaptionNouns` counts the recaption's nouns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pairsmith.captioners.nouns import count_nouns
from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.caption_nouns import CaptionNouns
from pairsmith.filters.profiles import profile_spec
from pairsmith.filters.vectors import recaption_alt_similarity, unit
from pairsmith.schemas.config import ModelsConfig, RecaptionConfig
from pairsmith.schemas.record import column

if TYPE_CHECKING:
    from pairsmith.captioners.base import Captioner
    from pairsmith.captioners.hf import TransformersCaptioner
    from pairsmith.filters.clip_models import ClipEmbedder
    from pairsmith.filters.clip_score import ClipScore

RECAPTION_FIELDS = (
    column(
        "recaption",
        pa.string(),
        "recaption",
        "Dense caption of the image by a vision-language model (`recaption.model`, prompt "
        "`recaption_prompt`); null without an image or when recaptioning is off (`pairsmith recaption OUT` "
        "adds it later).",
    ),
    column(
        "recaption_model",
        pa.string(),
        "recaption",
        "The captioner that wrote `recaption`: a Hugging Face repo id, a local folder, or `toy`.",
    ),
    column(
        "recaption_prompt",
        pa.string(),
        "recaption",
        "Prompt of `recaption`: preset `dense` or `dense_with_alt` (PixArt-alpha's), `short`, `none` (the "
        "image alone), or `custom` (`recaption.prompt_text`).",
    ),
    column(
        "recaption_clip_score",
        pa.float32(),
        "recaption",
        "Cosine of the primary CLIP model's image and recaption embeddings (`clip_score` for the recaption).",
    ),
    column(
        "recaption_alt_similarity",
        pa.float32(),
        "recaption",
        "Cosine of the primary CLIP model's text embeddings of the alt-text (`caption`) and of `recaption`: "
        "low where the alt-text says something else than what the captioner sees.",
    ),
    column("recaption_words", pa.int32(), "recaption", "Recaption length in whitespace-separated words."),
)
RECAPTION_NOUNS = column(
    "recaption_nouns",
    pa.int32(),
    "recaption",
    "Nouns in `recaption` (PixArt-alpha: ~21-29 per dense caption), same tagger.",
)
# The columns a recaption fills.
RECAPTION_COLUMNS = (*(f.name for f in RECAPTION_FIELDS), RECAPTION_NOUNS.name)


def captioner_spec(models: ModelsConfig, recaption: RecaptionConfig) -> str | None:
    """The captioner of a run (`recaption.model`, else the profile's), or None when recaptioning is off.
    Only the toy profile turns it on: a real VLM is the costliest step of a run, so it is asked for by
    name (or added later, alone)."""
    spec = recaption.model if recaption.model is not None else profile_spec(models, "recaption")
    return None if spec == "none" else spec


def check_captioner(models: ModelsConfig, recaption: RecaptionConfig) -> str:
    """Fail before any work if the captioner cannot be loaded here; returns what the manifest records."""
    from pairsmith.captioners.hf import resolve

    spec = captioner_spec(models, recaption)
    if spec is None:
        return "none"
    resolve(spec)
    return spec


def build_captioner(spec: str, cfg: RecaptionConfig) -> TransformersCaptioner:
    """The captioner of `spec` with the prompt and generation settings of `cfg` (not loaded yet)."""
    from pairsmith.captioners.hf import Generation, TransformersCaptioner
    from pairsmith.captioners.prompts import prompt_template

    template = "" if cfg.prompt == "none" else prompt_template(cfg.prompt, cfg.prompt_text)
    generation = Generation(cfg.max_new_tokens, cfg.temperature, cfg.num_beams, cfg.seed)
    return TransformersCaptioner(
        spec,
        template,
        generation,
        batch_size=cfg.batch_size,
        device=cfg.device,
        dtype=cfg.dtype,
        prompt_mode=cfg.prompt_mode,
        trust_remote_code=cfg.trust_remote_code,
        image_short_side=cfg.image_short_side or None,
    )


def recaption_annotators(
    models: ModelsConfig, recaption: RecaptionConfig | None, primary_clip: ClipScore | None = None
) -> list[Annotator]:
    """What `pairsmith recaption` runs: `CaptionNouns` always; `Recaption` and `RecaptionNouns` when a
    captioner is configured, and `GroundRecaption` when grounding is on too (`clip` grounding only with
    a CLIP model). `primary_clip` is the run's first `ClipScore` (or None without CLIP)."""
    from pairsmith.captioners.grounding import GroundRecaption, grounding_spec

    cfg = recaption if recaption is not None else RecaptionConfig()
    spec = captioner_spec(models, cfg)
    if spec is None:
        return [CaptionNouns()]
    out = [CaptionNouns(), Recaption.judged_by(spec, cfg, primary_clip), RecaptionNouns()]
    grounding = grounding_spec(models, cfg)
    if grounding is not None and (grounding != "clip" or primary_clip is not None):
        out.append(GroundRecaption.for_spec(grounding, cfg, primary_clip, models.device))
    return out


class Recaption(Annotator):
    """A vision-language model by name (`recaption.model`; see "Recaptions"); off unless the profile or
    the config turns it on.

    The batch's `<dataset>/image_embedding` and `<dataset>/text_embedding` columns (written by the
    primary `ClipScore` earlier in the same batch, or read from its side dataset by `pairsmith
    recaption`) are used where present; missing ones are embedded here.
    """

    fields = RECAPTION_FIELDS
    needs = ("caption",)
    uses = ("image_embedding", "text_embedding")
    reads_image = True
    model = "recaption"

    def __init__(
        self,
        captioner: Captioner,
        prompt_name: str,
        embedder: ClipEmbedder | None = None,
        dataset: str | None = None,
    ):
        self.captioner, self.prompt_name = captioner, prompt_name
        self.embedder, self.dataset = embedder, dataset

    @classmethod
    def model_spec(cls, run) -> str:
        return captioner_spec(run.models, run.recaption) or "none"

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        return {"recaption": check_captioner(run.models, run.recaption)}

    @classmethod
    def configure(cls, run, spec: str) -> list[Recaption]:
        return [cls.judged_by(spec, run.recaption, run.clips[0] if run.clips else None)]

    @classmethod
    def judged_by(cls, spec: str, cfg: RecaptionConfig, clip: ClipScore | None) -> Recaption:
        """The recaptioner of `spec`, judged by `clip` (its embedder and embeddings) when given."""
        embedder, dataset = (clip.embedder, clip.dataset) if clip is not None else (None, None)
        return cls(build_captioner(spec, cfg), cfg.prompt, embedder, dataset)

    def setup(self) -> None:
        self.captioner.load()
        if self.embedder is not None and self.embedder.model is None:
            self.embedder.load()

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        n = len(batch)
        out: dict[str, list[Any]] = {f.name: [None] * n for f in self.fields}
        rows = [i for i, image in enumerate(batch.images) if image is not None]
        if not rows:
            return out
        alts = batch.column("caption")
        captions = self.captioner.caption([batch.images[i] for i in rows], [alts[i] for i in rows])
        for i, caption in zip(rows, captions, strict=True):
            out["recaption"][i] = caption
            out["recaption_model"][i] = self.captioner.model_id
            out["recaption_prompt"][i] = self.prompt_name
            out["recaption_words"][i] = len(caption.split())
        if self.embedder is not None:
            self._similarities(batch, rows, captions, out)
        return out

    def _similarities(self, batch: Batch, rows: list[int], captions: list[str], out: dict) -> None:
        recaptions = self.embedder.embed_texts(captions)
        images = self._vectors(
            batch,
            "image_embedding",
            rows,
            lambda idx: self.embedder.embed_images([batch.images[i] for i in idx]),
        )
        alts = batch.column("caption")
        with_alt = [k for k, i in enumerate(rows) if alts[i] is not None]
        texts = self._vectors(
            batch,
            "text_embedding",
            [rows[k] for k in with_alt],
            lambda idx: self.embedder.embed_texts([alts[i] for i in idx]),
        )
        scores = np.sum(images * recaptions, axis=1)
        for k, i in enumerate(rows):
            out["recaption_clip_score"][i] = float(scores[k])
        similarity = recaption_alt_similarity(texts, recaptions[with_alt]) if with_alt else []
        for j, k in enumerate(with_alt):
            out["recaption_alt_similarity"][rows[k]] = float(similarity[j])

    def _vectors(self, batch: Batch, column: str, rows: list[int], embed) -> np.ndarray:
        """Unit vectors of `rows` from the batch's side column, embedding the rows that lack one."""
        stored = batch.columns.get(f"{self.dataset}/{column}") if self.dataset else None
        have = [stored[i] if stored is not None else None for i in rows]
        missing = [i for i, v in zip(rows, have, strict=True) if v is None]
        fresh = iter(embed(missing)) if missing else iter(())
        return (
            unit([v if v is not None else next(fresh) for v in have])
            if rows
            else np.zeros((0, 0), np.float32)
        )


class RecaptionNouns(Annotator):
    """Nouns per recaption, by the same tagger as `caption_nouns`."""

    fields = (RECAPTION_NOUNS,)
    needs = ("recaption",)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        return {"recaption_nouns": [count_nouns(c) for c in batch.column("recaption")]}
