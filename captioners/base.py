"""The captioner base: load once, then a batch of images (and their alt-texts) in, captions out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from PIL import Image

from pairsmith.captioners.prompts import fill


class Captioner(ABC):
    """Writes one caption per image with one prompt template (a `{}` in it takes the row's alt-text).

    `model_id` names the model in the output (`recaption_model`) and the manifest.
    """

    model_id: str

    def __init__(self, template: str):
        self.template = template

    @abstractmethod
    def load(self) -> Captioner:
        """Load the model (once per worker); fail with `ModelLoadError` when it cannot be loaded."""

    @abstractmethod
    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        """One caption per (image, prompt)."""

    def caption(self, images: list[Image.Image], alt_texts: list[str | None] | None = None) -> list[str]:
        """One caption per image; `alt_texts` fill the template's `{}` (dense_with_alt)."""
        alts = alt_texts if alt_texts is not None else [None] * len(images)
        if len(alts) != len(images):
            raise ValueError(f"{len(images)} images but {len(alts)} alt-texts")
        return self.generate(images, [fill(self.template, alt) for alt in alts])
