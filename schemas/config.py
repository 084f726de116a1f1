"""The run config: pydantic models read from YAML plus `--set key=value` overrides.

Unknown or mistyped keys are errors that name the key (`ConfigError`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pairsmith.schemas.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InputConfig(_Strict):
    """Where the pairs come from."""

    path: str | None = Field(None, description="File, folder or glob; local path or any fsspec URL.")
    format: Literal["auto", "parquet", "csv", "tsv", "jsonl"] = Field(
        "auto", description="auto: from each file's extension."
    )
    url_col: str = Field("url", description="The column holding the image URL.")
    caption_col: str = Field("caption", description="The column holding the caption (alt-text).")
    shard_size: int = Field(
        1000, ge=1, le=1_000_000, description="Rows per shard (the unit of work and resume)."
    )


class DownloadConfig(_Strict):
    """img2dataset's Downloader and Resizer settings plus pairsmith's fetch policy."""

    threads: int = Field(32, ge=1, description="Download threads per shard.")
    timeout_s: float = Field(10.0, gt=0, description="Longest wait for a connection or for any one read.")
    deadline_s: float = Field(
        60.0,
        gt=0,
        description="Longest time one fetch may take, redirects included (each retry gets its own); "
        "past it: failed_to_download / deadline.",
    )
    max_bytes: int = Field(
        64 * 2**20,
        ge=1,
        description="Most bytes one fetch may receive, redirects included; more (or a larger "
        "Content-Length): failed_to_download / too_large, and what was read is dropped.",
    )
    max_image_pixels: int = Field(
        100_000_000,
        ge=1,
        description="Most pixels (width x height, read from the image header) an image may have; more: "
        "failed_to_decode / too_large, never decoded.",
    )
    respect_robots_txt: bool = Field(
        True,
        description="Read each host's /robots.txt (once per host per shard) and never request what it "
        "disallows for user_agent_token: blocked / opt_out. An unreadable robots.txt allows all.",
    )
    retries: int = Field(1, ge=0, description="Extra attempts of a failed fetch.")
    image_size: int = Field(
        512, ge=8, description="Target side of the resized image (img2dataset's Resizer)."
    )
    resize_mode: Literal["no", "keep_ratio", "keep_ratio_largest", "center_crop", "border"] = Field(
        "keep_ratio",
        description="How images are resized to image_size (img2dataset's modes); no: kept as served.",
    )
    resize_only_if_bigger: bool = Field(True, description="Never enlarge an image smaller than image_size.")
    encode_format: Literal["jpg", "png", "webp"] = Field(
        "jpg", description="Format of the images in the tar."
    )
    encode_quality: int = Field(95, ge=0, le=100, description="Encoder quality of the images in the tar.")
    min_image_size: int = Field(0, ge=0, description="Shorter side below this is rejected by the resizer.")
    max_image_area: float | None = Field(
        None, gt=0, description="Larger images are rejected; None: no limit."
    )
    max_aspect_ratio: float | None = Field(
        None, gt=0, description="Longer/shorter side above this is rejected."
    )
    allow_private_addresses: bool = Field(
        False, description="Fetch URLs whose host resolves to loopback/private/link-local/reserved addresses."
    )
    private_allowlist: list[str] = Field(
        default_factory=list, description="Host names fetched even if private (e.g. an internal mirror)."
    )
    user_agent_token: str = Field(
        "pairsmith", description="Added to the User-Agent; the name robots.txt rules are matched against."
    )
    disallowed_header_directives: list[str] = Field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"],
        description="X-Robots-Tag directives that block a URL (img2dataset's default list).",
    )

    @field_validator("resize_mode", mode="before")
    @classmethod
    def _yaml_no(cls, value):
        return "no" if value is False else value  # YAML reads a bare `no` as false


class AnnotateConfig(_Strict):
    """The annotate stage."""

    batch_size: int = Field(64, ge=1, description="Images decoded and annotated together (on the CPU).")
    gpu_batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Images decoded and annotated together when the models run on a GPU; auto: 32 per GiB "
        "of free GPU memory, a power of two in [batch_size, 1024] (filters/devices.py).",
    )
    threads: int = Field(
        0, ge=0, description="Threads that decode and measure a batch's images; 0: one per CPU core."
    )
    ocr: Literal["gated", "always", "off"] = Field(
        "gated", description="gated: full OCR only where a cheap detection pass finds text."
    )

    @field_validator("ocr", mode="before")
    @classmethod
    def _yaml_off(cls, value):
        return "off" if value is False else value  # YAML reads a bare `off` as false


class ClipModelConfig(_Strict):
    """One CLIP model: `alias` names its columns, `spec` says where it comes from."""

    alias: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="Names the columns of this model (`clip_score_<alias>`)."
    )
    spec: str = Field(
        description="ViT-B-32/laion2b_s34b_b79k, hf-hub:ORG/NAME, local-dir:PATH, ARCH@CKPT or toy"
    )


class ModelsConfig(_Strict):
    """Which model computes each signal. `profile` names them all; explicit lists override it."""

    profile: Literal["toy", "laion", "datacomp", "none"] = Field(
        "laion", description="toy: offline toy zoo; laion: LAION-5B's models; datacomp: ViT-L-14 openai."
    )
    clip: list[ClipModelConfig] | None = Field(None, description="The first is primary (`clip_score`).")
    nsfw: str | None = Field(
        None, description="nudenet, laion-nsfw-b32, laion-nsfw-l14, a head path, or none."
    )
    watermark: str | None = Field(None, description="toy, laion-watermark, CONFIG.json@WEIGHTS.pt, or none.")
    aesthetic: str | None = Field(
        None, description="laion-aesthetic-l14 (or a path; needs a ViT-L-14 CLIP) or none."
    )
    synthetic: str | None = Field(
        None,
        description="AI-generated-image detector (`synthetic_score`): toy, a Hugging Face image-classification "
        "repo id (from the cache) or a local folder written by save_pretrained, or none.",
    )
    synthetic_label: str | None = Field(
        None,
        description="The label of models.synthetic that means generated; None: the one label with the word "
        "fake, ai, synthetic or artificial in its name.",
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto",
        description="auto, fp16: fp16 autocast on a GPU (bf16: bfloat16); always fp32 on the CPU. The heads on "
        "CLIP embeddings stay fp32.",
    )
    threads: int = Field(0, ge=0, description="Torch intra-op threads per worker; 0: torch's default.")


class DedupConfig(_Strict):
    """The global near-duplicate stage (see `pipelines/dedup.py`)."""

    kinds: list[Literal["exact", "image", "caption", "semantic"]] = Field(
        default_factory=lambda: ["exact", "image", "caption", "semantic"],
        description="Which kinds of groups to compute; the others stay null.",
    )
    mark: list[Literal["exact", "image", "caption", "semantic"]] = Field(
        default_factory=lambda: ["exact", "image", "semantic"],
        description="Kinds whose groups (joined) keep one row and set `is_duplicate` on the others. Caption "
        "groups are annotated but not marked by default: a stock caption on distinct images is not a copy.",
    )
    phash_distance: int = Field(
        4,
        ge=0,
        le=15,
        description="Max Hamming distance of near-duplicate pHashes (64 bits); 4 meets precision 0.99 / recall "
        "0.9 on resized and recompressed copies and scales near-linearly (README, Duplicates).",
    )
    caption_jaccard: float = Field(0.7, gt=0, le=1, description="MinHash LSH Jaccard threshold.")
    caption_shingle_words: int = Field(2, ge=1, le=5, description="Words per caption shingle.")
    minhash_perms: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    semantic_eps: float = Field(
        0.00095,
        gt=0,
        lt=1,
        description="SemDeDup: duplicates have cosine > 1 - eps (paper: 0.00095 to 0.03).",
    )
    semantic_clusters: int = Field(
        0,
        ge=0,
        description="k-means clusters; 0: one per 1,000 embeddings up to 50,000 (SemDeDup's count for "
        "LAION-440M); a count set here is kept.",
    )
    seed: int = Field(
        0, description="Seeds the MinHash permutations and the k-means sample and initialisation."
    )


class CorruptionConfig(_Strict):
    """The global corruption stage (see `filters/corruption.py` and `pipelines/corruption_stage.py`)."""

    block_size: int = Field(
        32,
        ge=2,
        le=4096,
        description="K: each pair's caption is ranked among K captions of other images, its image among "
        "K images (in-batch retrieval in random blocks of K + 1 rows).",
    )
    seed: int = Field(0, description="Draws the blocks (and the decoys) reproducibly.")


class RecaptionConfig(_Strict):
    """Dense recaptions by a vision-language model (`captioners/`), in the annotate stage or alone
    (`pairsmith recaption OUT`). Defaults follow PixArt-alpha (../shared/ANCHORS.md)."""

    model: str | None = Field(
        None,
        description="A Hugging Face repo id, a local folder written by save_pretrained, toy, or none (off); "
        "null: the profile's (toy: the toy captioner; the others: off).",
    )
    prompt: Literal["dense", "dense_with_alt", "short", "none", "custom"] = Field(
        "dense",
        description="A preset (captioners/prompts.py), none (the image alone) or custom (prompt_text).",
    )
    prompt_text: str | None = Field(None, description="The prompt of prompt=custom; {} takes the alt-text.")
    prompt_mode: Literal["auto", "chat", "text"] = Field(
        "auto", description="auto: the processor's chat template when it has one, else plain text."
    )
    max_new_tokens: int = Field(1024, ge=1, le=8192, description="Longest recaption, in tokens.")
    temperature: float = Field(0.2, ge=0, description="0: greedy; above 0: sampling, seeded per batch.")
    num_beams: int = Field(1, ge=1, le=16, description="Beam search width; 1: no beam search.")
    seed: int = Field(0, description="Seeds sampling (with temperature > 0).")
    batch_size: int = Field(16, ge=1, description="Images per generate call.")
    image_short_side: int = Field(400, ge=0, description="Downscale to this short side first; 0: never.")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="auto: fp32 on the CPU, bf16 (else fp16) on a GPU."
    )
    trust_remote_code: bool = Field(
        False, description="Run a model's own code from its repo (off by default)."
    )
    grounding_model: str | None = Field(
        None,
        description="Checks each recaption's noun phrases against the image (captioners/grounding.py): clip "
        "(the primary CLIP model over crops), an open-vocabulary detector (a Hugging Face repo id or a local "
        "folder: OWLv2, Grounding DINO), or none (off); null: the profile's (toy: clip; the others: off).",
    )
    grounding_margin: float | None = Field(
        None,
        description="clip grounding: how much a phrase's best crop must beat its score on unrelated images; "
        "null: the toy CLIP's calibrated margin (calibrate your own for a real CLIP model).",
    )
    grounding_threshold: float = Field(
        0.1, ge=0, le=1, description="Detector grounding: the least box score that grounds a phrase."
    )

    @model_validator(mode="after")
    def _custom_prompt(self):
        if (self.prompt == "custom") != bool(self.prompt_text):
            raise ValueError("prompt=custom goes with prompt_text (and prompt_text with prompt=custom)")
        return self


class RunnerConfig(_Strict):
    """Which Beam runner executes the stages; the options are passed to Beam verbatim."""

    runner: str = Field(
        "DirectRunner", description="A Beam runner name: DirectRunner, DataflowRunner, FlinkRunner, ..."
    )
    options: list[str] = Field(default_factory=list, description='e.g. ["--direct_num_workers=2"]')
    shard_group: int = Field(
        4,
        ge=1,
        description="Shards one worker downloads and annotates in a row: the next one downloads while "
        "the current one is annotated (1: no such overlap; per-image annotators still run on each image "
        "as it arrives).",
    )


class RunConfig(_Strict):
    """Everything a run needs. `output_affecting()` is what the config hash covers."""

    input: InputConfig = Field(default_factory=InputConfig)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    recaption: RecaptionConfig = Field(default_factory=RecaptionConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    corruption: CorruptionConfig = Field(default_factory=CorruptionConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    def output_affecting(self) -> dict[str, Any]:
        """The settings that change the output (not how or where it runs)."""
        exclude = {
            "runner": True,
            "download": {"threads"},
            "annotate": {"threads", "gpu_batch_size"},
            "models": {"device", "threads"},
            "recaption": {"device"},
        }
        return self.model_dump(mode="json", exclude=exclude)

    def config_hash(self) -> str:
        blob = json.dumps(self.output_affecting(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def _apply(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(path)!r}: {part!r} is not a section")
    node[path[-1]] = value


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown config key {key!r}"
    return f"config key {key!r}: {first['msg']} (got {first.get('input')!r})"


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config (optional) and apply `key=value` overrides (dotted keys, YAML values)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return config_from(data, overrides)


def config_from(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A config from a mapping (a YAML file's, or an output's `run.json`) and `key=value` overrides."""
    data = copy.deepcopy(data)
    for item in overrides:
        _apply(data, *_parse_override(item))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
