"""Recaptioning as annotators of the annotate stage, and as the work of `pairsmith recaption`.

`Recaption` writes the recaption and judges it with the run's primary CLIP model, reusing what the
`ClipScore` annotator already has: its loaded embedder (one more text embedding per row) and the
image and alt-text embeddings of the batch (the side dataset's float16 vectors, renormalised), so
recaptioning adds no image embedding pass. `CaptionNouns` counts the alt-text's nouns on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pairsmith.captioners.base import Captioner
from pairsmith.captioners.hf import Generation, TransformersCaptioner, resolve
from pairsmith.captioners.nouns import count_nouns
from pairsmith.captioners.prompts import prompt_template
from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.clip_models import ClipEmbedder
from pairsmith.schemas.config import ModelsConfig, RecaptionConfig
from pairsmith.schemas.record import FIELDS

RECAPTION_COLUMNS = (
    "recaption",
    "recaption_model",
    "recaption_prompt",
    "recaption_clip_score",
    "recaption_alt_similarity",
    "recaption_words",
    "recaption_nouns",
)
BY_NAME = {f.name: f for f in FIELDS}
# The profile's captioner where `recaption.model` is null. Only the toy profile turns recaptioning on:
# a real VLM is the costliest step of a run, so it is asked for by name (or added later, alone).
PROFILE_CAPTIONERS = {"toy": "toy"}


def captioner_spec(models: ModelsConfig, recaption: RecaptionConfig) -> str | None:
    """The captioner of a run, or None when recaptioning is off."""
    spec = recaption.model if recaption.model is not None else PROFILE_CAPTIONERS.get(models.profile, "none")
    return None if spec == "none" else spec


def check_captioner(models: ModelsConfig, recaption: RecaptionConfig) -> str:
    """Fail before any work if the captioner cannot be loaded here; returns what the manifest records."""
    spec = captioner_spec(models, recaption)
    if spec is None:
        return "none"
    resolve(spec)
    return spec


def build_captioner(spec: str, cfg: RecaptionConfig) -> TransformersCaptioner:
    """The captioner of `spec` with the prompt and generation settings of `cfg` (not loaded yet)."""
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
    models: ModelsConfig, recaption: RecaptionConfig | None, primary_clip=None
) -> list[Annotator]:
    """The annotators this module adds to a run: `CaptionNouns` always, `Recaption` when a captioner is
    configured. `primary_clip` is the run's first `ClipScore` (or None without CLIP)."""
    cfg = recaption if recaption is not None else RecaptionConfig()
    spec = captioner_spec(models, cfg)
    out: list[Annotator] = [CaptionNouns()]
    if spec is not None:
        embedder = primary_clip.embedder if primary_clip is not None else None
        dataset = primary_clip.dataset if primary_clip is not None else None
        out.append(Recaption(build_captioner(spec, cfg), cfg.prompt, embedder, dataset))
    return out


class CaptionNouns(Annotator):
    """Nouns per alt-text (`caption_nouns`), PixArt-alpha's concept density."""

    fields = (BY_NAME["caption_nouns"],)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        return {"caption_nouns": [count_nouns(c) for c in batch.column("caption")]}


def _unit(vectors) -> np.ndarray:
    array = np.asarray(vectors, np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=-1, keepdims=True), 1e-12)


class Recaption(Annotator):
    """The recaption of every row with an image, and how it relates to the image and the alt-text.

    The batch's `<dataset>/image_embedding` and `<dataset>/text_embedding` columns (written by the
    primary `ClipScore` earlier in the same batch, or read from its side dataset by `pairsmith
    recaption`) are used where present; missing ones are embedded here.
    """

    fields = tuple(BY_NAME[name] for name in RECAPTION_COLUMNS)

    def __init__(
        self,
        captioner: Captioner,
        prompt_name: str,
        embedder: ClipEmbedder | None = None,
        dataset: str | None = None,
    ):
        self.captioner, self.prompt_name = captioner, prompt_name
        self.embedder, self.dataset = embedder, dataset

    def setup(self) -> None:
        self.captioner.load()
        if self.embedder is not None and self.embedder.model is None:
            self.embedder.load()

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        n = len(batch)
        out: dict[str, list[Any]] = {name: [None] * n for name in RECAPTION_COLUMNS}
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
            out["recaption_nouns"][i] = count_nouns(caption)
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
        for j, k in enumerate(with_alt):
            out["recaption_alt_similarity"][rows[k]] = float(texts[j] @ recaptions[k])

    def _vectors(self, batch: Batch, column: str, rows: list[int], embed) -> np.ndarray:
        """Unit vectors of `rows` from the batch's side column, embedding the rows that lack one."""
        stored = batch.columns.get(f"{self.dataset}/{column}") if self.dataset else None
        have = [stored[i] if stored is not None else None for i in rows]
        missing = [i for i, v in zip(rows, have, strict=True) if v is None]
        fresh = iter(embed(missing)) if missing else iter(())
        return (
            _unit([v if v is not None else next(fresh) for v in have])
            if rows
            else np.zeros((0, 0), np.float32)
        )
