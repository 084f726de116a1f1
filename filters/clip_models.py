"""Load CLIP models by the ecosystem's own names, once, and embed images and texts in batches.

Model specs:
- `ViT-B-32/laion2b_s34b_b79k`: an open_clip architecture and pretrained tag (Hugging Face cache);
- `hf-hub:ORG/NAME`: an open_clip model on the Hugging Face Hub (cache);
- `local-dir:PATH`: a folder with `open_clip_config.json` and weights;
- `ARCH@CHECKPOINT`: an architecture name (or a model config `.json`) plus a checkpoint file;
- `toy`: pairsmith's own toy CLIP from the toy zoo (offline, knows only the synthetic world).

`resolve` checks that a spec can be loaded (files present, or cached when offline) without building
the model, so a run fails at start-up, before any download, with a message that says what to do.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image

from pairsmith.filters.devices import autocast, is_cuda, resolve_device
from pairsmith.filters.model_files import local_copy
from pairsmith.filters.vectors import unit
from pairsmith.schemas.errors import ModelLoadError

TOY_ZOO = Path(__file__).resolve().parent / "toy_zoo"
TOY_CLIP = f"{TOY_ZOO / 'toy-clip-vit.json'}@{TOY_ZOO / 'toy-clip-vit.pt'}"
HOW_TO_GET = (
    "run once with network access so that it is cached, point HF_HOME at a cache that has it, "
    "or pass a local path (local-dir:PATH or ARCH@CHECKPOINT)"
)


@dataclass(frozen=True)
class ClipSpec:
    """What open_clip's factory needs: a model name and, for some specs, a pretrained tag or file."""

    spec: str
    model_name: str
    pretrained: str | None
    config_file: str | None = None
    checkpoint_file: bool = False  # `pretrained` is a file path, not an open_clip tag


def parse_spec(spec: str) -> ClipSpec:
    if spec == "toy":
        spec = TOY_CLIP
    if spec.startswith(("hf-hub:", "local-dir:")):
        return ClipSpec(spec, spec, None)
    if "@" in spec:
        arch, checkpoint = spec.split("@", 1)
        if arch.endswith(".json"):
            return ClipSpec(spec, Path(arch).stem, checkpoint, config_file=arch, checkpoint_file=True)
        return ClipSpec(spec, arch, checkpoint, checkpoint_file=True)
    arch, _, tag = spec.partition("/")
    return ClipSpec(spec, arch, tag or None)


def _local_files(parsed: ClipSpec) -> ClipSpec:
    """`parsed` with remote files and folders (fsspec URLs) replaced by this machine's copies."""
    try:
        if parsed.model_name.startswith("local-dir:"):
            folder = local_copy(parsed.model_name.removeprefix("local-dir:"))
            return replace(parsed, model_name=f"local-dir:{folder}")
        if parsed.checkpoint_file:
            config = local_copy(parsed.config_file) if parsed.config_file else None
            return replace(parsed, pretrained=local_copy(parsed.pretrained), config_file=config)
    except FileNotFoundError as missing:
        raise _fail(parsed.spec, f"{missing} not found") from None
    return parsed


def _fail(spec: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"cannot load CLIP model {spec!r}: {why}")


def resolve(spec: str) -> ClipSpec:
    """Check that `spec` can be loaded here; raise ModelLoadError (with how to fix it) if not."""
    parsed = _local_files(parse_spec(spec))
    if parsed.config_file is not None:
        if not Path(parsed.config_file).is_file():
            raise _fail(spec, f"model config {parsed.config_file} not found")
        open_clip.add_model_config(parsed.config_file)
    if parsed.model_name.startswith("local-dir:"):
        folder = Path(parsed.model_name.removeprefix("local-dir:"))
        if not (folder / "open_clip_config.json").is_file():
            raise _fail(spec, f"{folder} has no open_clip_config.json")
        return parsed
    if parsed.model_name.startswith("hf-hub:"):
        _cached_from_hub(spec, parsed.model_name.removeprefix("hf-hub:"), "open_clip_config.json")
        return parsed
    if parsed.model_name not in open_clip.list_models():
        raise _fail(spec, f"unknown open_clip architecture {parsed.model_name!r}")
    if parsed.pretrained is None:
        raise _fail(spec, "no pretrained tag or checkpoint given (use ARCH/TAG or ARCH@CHECKPOINT)")
    if parsed.checkpoint_file:
        if not Path(parsed.pretrained).is_file():
            raise _fail(spec, f"checkpoint {parsed.pretrained} not found")
        return parsed
    tags = open_clip.list_pretrained_tags_by_model(parsed.model_name)
    if parsed.pretrained not in tags:
        raise _fail(spec, f"unknown pretrained tag {parsed.pretrained!r}; known: {', '.join(tags) or 'none'}")
    hub = open_clip.get_pretrained_cfg(parsed.model_name, parsed.pretrained).get("hf_hub", "")
    if not hub:
        raise _fail(spec, f"no Hugging Face location known for this tag; {HOW_TO_GET}")
    repo, filename = os.path.split(hub)  # open_clip's convention: "org/repo/" means the default file name
    _cached_from_hub(spec, repo, filename or "open_clip_pytorch_model.bin")
    return parsed


def _hub_names(filename: str) -> list[str]:
    """A checkpoint's names on the hub, preferred first: open_clip takes a safetensors twin of a .bin
    checkpoint when the repo has one."""
    twins = {"open_clip_pytorch_model.bin": "open_clip_model.safetensors"}
    return [twins.get(filename, filename.replace(".bin", ".safetensors")), filename]


def hub_location(spec: str) -> tuple[str, list[list[str]]]:
    """Where open_clip takes an `ARCH/TAG` or `hf-hub:` spec from: (repo, the files it needs, each
    as its alternative names, preferred first). ModelLoadError for a spec unknown to open_clip."""
    parsed = parse_spec(spec)
    if parsed.model_name.startswith("hf-hub:"):
        repo = parsed.model_name.removeprefix("hf-hub:")
        return repo, [["open_clip_config.json"], _hub_names("open_clip_pytorch_model.bin")]
    if parsed.model_name not in open_clip.list_models():
        raise _fail(spec, f"unknown open_clip architecture {parsed.model_name!r}")
    tags = open_clip.list_pretrained_tags_by_model(parsed.model_name)
    if parsed.pretrained not in tags:
        raise _fail(spec, f"unknown pretrained tag {parsed.pretrained!r}; known: {', '.join(tags) or 'none'}")
    hub = open_clip.get_pretrained_cfg(parsed.model_name, parsed.pretrained).get("hf_hub", "")
    if not hub:
        raise _fail(spec, "no Hugging Face location known for this tag")
    repo, filename = os.path.split(hub)
    return repo, [_hub_names(filename or "open_clip_pytorch_model.bin")]


def _cached_from_hub(spec: str, repo: str, filename: str) -> str:
    from huggingface_hub import hf_hub_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    names = _hub_names(filename)
    last: Exception | None = None
    for name in names:
        try:
            return hf_hub_download(repo, name, local_files_only=offline)
        except Exception as exc:  # noqa: BLE001  (every hub failure means the same to the user)
            last = exc
    raise _fail(
        spec, f"{repo}/{filename} is not in the Hugging Face cache ({type(last).__name__}); {HOW_TO_GET}"
    )


def pick_device(device: str) -> str:
    """`models.device` resolved (`filters.devices.resolve_device`: auto -> cuda when there is a GPU)."""
    return resolve_device(device)


class ClipEmbedder:
    """One CLIP model: loads once (`load`), then embeds batches of images and texts, L2-normalised."""

    def __init__(self, spec: str, device: str = "auto", precision: str = "auto"):
        self.spec = spec
        self.device = pick_device(device)
        self.precision = precision
        self.model = None

    def load(self) -> ClipEmbedder:
        """Load the model (once per process and device: embedders of one spec share it)."""
        self.model, self.preprocess, self.tokenizer = _open_clip_model(self.spec, self.device)
        model = self.model
        self.dim = int(model.text_projection.shape[-1]) if hasattr(model, "text_projection") else None
        return self

    def _autocast(self):
        return autocast(self.device, self.precision)  # fp16 autocast on CUDA only; fp32 on the CPU

    def pixels(self, images: list[Image.Image], pool: Executor | None = None) -> torch.Tensor:
        """The preprocessed batch on the model's device; per-image transforms on `pool`'s threads when
        given (the same transforms in the same order: the same tensor)."""
        tensors = (
            list(pool.map(self.preprocess, images))
            if pool is not None
            else [self.preprocess(i) for i in images]
        )
        pixels = torch.stack(tensors)
        if is_cuda(self.device):
            return pixels.pin_memory().to(self.device, non_blocking=True)
        return pixels.to(self.device)

    @torch.inference_mode()
    def embed_images(self, images: list[Image.Image], pool: Executor | None = None) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim or 0), np.float32)
        pixels = self.pixels(images, pool)
        with self._autocast():
            features = self.model.encode_image(pixels)
        return _normalised(features)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim or 0), np.float32)
        tokens = self.tokenizer(texts).to(self.device)
        with self._autocast():
            features = self.model.encode_text(tokens)
        return _normalised(features)


@functools.lru_cache(maxsize=4)
def _open_clip_model(spec: str, device: str):
    """(model, preprocess, tokenizer) of `spec` on `device`, built once per process and shared by
    every embedder of that spec: the annotators, the corruption stage, `corrupt`, and their threads
    (inference does not change the model)."""
    parsed = resolve(spec)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            parsed.model_name, pretrained=parsed.pretrained, device=device
        )
    except Exception as exc:  # noqa: BLE001
        raise _fail(spec, f"{type(exc).__name__}: {exc}") from exc
    return model.eval(), preprocess, open_clip.get_tokenizer(parsed.model_name)


def _normalised(features: torch.Tensor) -> np.ndarray:
    return unit(features.float().cpu().numpy())
