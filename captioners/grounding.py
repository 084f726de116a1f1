"""Grounded recaptions: which noun phrases of a recaption the image shows, and where (Image
Textualization's hallucination check; Visual Genome's region format).

`GroundRecaption` takes each recaption's object phrases (`captioners.nouns.noun_phrases`, without those
that name the picture or a place in it: `a striped background`, `the left`), checks each against the
image and writes the share grounded, the ungrounded ones, and the best box of each grounded one. The
check is `recaption.grounding_model`:

- `clip`: no extra model. The primary CLIP model scores each phrase against a grid of crops at two
  scales (half and a quarter of each side, overlapping by half: 9 + 49 crops); each crop is shown in
  place, on a square canvas of the image's median colour, so that an object keeps its size and place
  (cropped and enlarged, toy shapes all look large to the toy CLIP: on 120 toy scenes its best crop
  overlapped the shape, IoU >= 0.3, for 1 % of phrases, against 64 % in place). A phrase is grounded
  when its best crop beats its score on the whole images of unrelated rows (the median over the
  batch's other rows; a plain grey image for a batch of one) by more than `recaption.grounding_margin`
  (default: calibrated for the toy CLIP on toy scenes, `tools/calibrate_grounding.py`). Its box is
  where its two best crops overlap (the best crop if they do not), its score that difference. Cost:
  59 image embeddings per row (the crops and the whole), so it is on in the toy profile and off by
  default in the others.
- an open-vocabulary detector by name (a Hugging Face repo id from the cache, or a folder written by
  `save_pretrained`), through transformers' zero-shot object detection Auto classes (`AutoProcessor`,
  `AutoModelForZeroShotObjectDetection`): OWL-ViT and OWLv2 take the phrases as a list of queries,
  Grounding DINO style models as one text `phrase. phrase.`. A phrase is grounded when the detector
  finds a box for it scoring at least `recaption.grounding_threshold`; its region is its best box, the
  score the detector's.

Boxes are normalised to [0, 1] of the image's width and height (x0, y0 top left, x1, y1 bottom right).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from PIL import Image

from pairsmith.captioners.nouns import noun_phrases
from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.profiles import profile_spec
from pairsmith.schemas.config import ModelsConfig, RecaptionConfig
from pairsmith.schemas.errors import ModelLoadError
from pairsmith.schemas.record import column

if TYPE_CHECKING:
    from pairsmith.filters.clip_models import ClipEmbedder
    from pairsmith.filters.clip_score import ClipScore

# The toy CLIP's margin: Youden's J on 378 toy scenes of seed 70_000 (`python -m tools.calibrate_grounding`:
# true recaptions' phrases against an injected `a green star`); held out on seed 71_000: true
# recaptions 0.976 grounded, the injected phrase caught in 0.857, boxes at IoU >= 0.3 for 0.773.
# A real CLIP model needs its own (`recaption.grounding_margin`).
TOY_CLIP_MARGIN = 0.73
SCALES = (1 / 2, 1 / 4)  # crop side / image side; neighbouring crops overlap by half
TOP_CROPS = 2  # the box: where the best crops of a phrase overlap
CANVASES_PER_CALL = 256  # crops embedded per CLIP call (memory at 224 px)

REGION = pa.struct(
    [
        pa.field("phrase", pa.string()),
        pa.field("score", pa.float32()),
        pa.field("x0", pa.float32()),
        pa.field("y0", pa.float32()),
        pa.field("x1", pa.float32()),
        pa.field("y1", pa.float32()),
    ]
)
GROUNDING_FIELDS = (
    column(
        "recaption_grounded_ratio",
        pa.float32(),
        "recaption",
        "Share of the recaption's object phrases that `recaption.grounding_model` finds in the image (Image "
        "Textualization's check: an ungrounded phrase is likely a hallucination); null without a recaption or "
        "phrases, or when grounding is off.",
    ),
    column(
        "recaption_ungrounded",
        pa.list_(pa.string()),
        "recaption",
        "The recaption's object phrases not found in the image, as written (`a green star`).",
    ),
    column(
        "recaption_regions",
        pa.list_(REGION),
        "recaption",
        "Per grounded phrase, its best box (Visual Genome's region format): `phrase`, `score` (the "
        "detector's, or CLIP's margin over unrelated images), `x0`, `y0`, `x1`, `y1` in [0, 1] of the width "
        "and height.",
    ),
)
GROUNDING_COLUMNS = tuple(f.name for f in GROUNDING_FIELDS)


@dataclass(frozen=True)
class Grounding:
    """One phrase checked against one image: grounded or not, with its score and best box."""

    phrase: str
    grounded: bool
    score: float
    box: tuple[float, float, float, float] | None  # normalised x0, y0, x1, y1


def grounding_spec(models: ModelsConfig, recaption: RecaptionConfig) -> str | None:
    """The grounding model of a run (`recaption.grounding_model`, else the profile's: `clip` for the toy
    profile, off for the others), or None when grounding is off."""
    spec = recaption.grounding_model
    spec = spec if spec is not None else profile_spec(models, "grounding")
    return None if spec == "none" else spec


def _fail(spec: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"cannot load grounding detector {spec!r}: {why}")


def resolve_detector(spec: str) -> str:
    """What `from_pretrained` is given for a detector spec (a local folder or a cached repo id);
    ModelLoadError, saying how to get it, when it cannot be loaded here."""
    from pairsmith.captioners.hf import HOW_TO_GET, REPO_ID, _has_weights, _offline

    folder = Path(spec).expanduser()
    if folder.exists() or spec.startswith(("/", ".", "~")) or not REPO_ID.match(spec):
        if not folder.is_dir():
            raise _fail(spec, f"no such folder, and not a Hugging Face repo id; {HOW_TO_GET}")
        if not (folder / "config.json").is_file():
            raise _fail(spec, f"{folder} has no config.json (expected a folder written by save_pretrained)")
        if not _has_weights(folder):
            raise _fail(spec, f"{folder} has no weights (*.safetensors or *.bin)")
        return str(folder)
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if not _offline():
            hf_hub_download(spec, "config.json")
            return spec
        snapshot = Path(snapshot_download(spec, local_files_only=True))
    except Exception as exc:  # noqa: BLE001  (every hub failure means the same to the user)
        raise _fail(spec, f"not in the Hugging Face cache ({type(exc).__name__}); {HOW_TO_GET}") from None
    if not (snapshot / "config.json").is_file() or not _has_weights(snapshot):
        raise _fail(spec, f"the cached copy in {snapshot} has no config.json or no weights; {HOW_TO_GET}")
    return spec


def check_grounding(models: ModelsConfig, recaption: RecaptionConfig) -> str:
    """Fail before any work if the grounding model cannot be loaded here; returns what the manifest records."""
    spec = grounding_spec(models, recaption)
    if spec is None:
        return "none"
    if spec != "clip":
        resolve_detector(spec)
    return spec


class Grounder(ABC):
    """Checks phrases against images; loads its model once."""

    model_id: str

    @abstractmethod
    def load(self) -> Grounder: ...

    @abstractmethod
    def ground(self, images: list[Image.Image], phrases: list[list[str]]) -> list[list[Grounding]]:
        """Per image, one `Grounding` per phrase of that image, in order."""


def crop_grid(scales=SCALES) -> list[tuple[float, float, float, float]]:
    """The crops, normalised (x0, y0, x1, y1): per scale s, a grid of s-sided crops with stride s / 2."""
    boxes = []
    for s in scales:
        steps = round(2 / s) - 1
        for i in range(steps):
            for j in range(steps):
                boxes.append((i * s / 2, j * s / 2, i * s / 2 + s, j * s / 2 + s))
    return boxes


def overlap_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """Where `boxes` (rows x0, y0, x1, y1; the best first) all overlap; the first one if they do not."""
    x0, y0 = boxes[:, 0].max(), boxes[:, 1].max()
    x1, y1 = boxes[:, 2].min(), boxes[:, 3].min()
    box = (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else tuple(boxes[0])
    return tuple(float(v) for v in box)


class ClipGrounder(Grounder):
    """Grounding by the primary CLIP model over crops shown in place (module docstring)."""

    def __init__(self, embedder: ClipEmbedder, margin: float | None = None):
        self.embedder = embedder
        self.margin = TOY_CLIP_MARGIN if margin is None else margin
        self.model_id = f"clip:{embedder.spec}"
        self.grid = np.array(crop_grid(), np.float32)

    def load(self) -> ClipGrounder:
        if self.embedder.model is None:
            self.embedder.load()
        size = getattr(self.embedder.model.visual, "image_size", 224)
        self.side = int(max(size) if isinstance(size, tuple | list) else size)
        self.neutral = self.embedder.embed_images([Image.new("RGB", (self.side, self.side), (128,) * 3)])[0]
        return self

    def canvases(self, image: Image.Image) -> list[Image.Image]:
        """The whole image, then each crop of the grid in place, on a square canvas of the median colour
        (sized to the model's input, so that its preprocess neither cuts nor rescales)."""
        w, h = image.size
        scale = self.side / max(w, h)
        small = image.convert("RGB").resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR
        )
        w, h = small.size
        fill = tuple(int(v) for v in np.median(np.asarray(small).reshape(-1, 3), axis=0))
        left, top = (self.side - w) // 2, (self.side - h) // 2
        whole = Image.new("RGB", (self.side, self.side), fill)
        whole.paste(small, (left, top))
        out = [whole]
        for x0, y0, x1, y1 in self.grid:
            box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
            canvas = Image.new("RGB", (self.side, self.side), fill)
            canvas.paste(small.crop(box), (left + box[0], top + box[1]))
            out.append(canvas)
        return out

    def embed_canvases(self, images: list[Image.Image]) -> np.ndarray:
        """images x (1 + crops) x dim unit vectors: the whole image, then each crop."""
        canvases = [c for image in images for c in self.canvases(image)]
        parts = [
            self.embedder.embed_images(canvases[i : i + CANVASES_PER_CALL])
            for i in range(0, len(canvases), CANVASES_PER_CALL)
        ]
        return np.concatenate(parts).reshape(len(images), 1 + len(self.grid), -1)

    def statistics(self, images, phrases, vectors=None) -> list[list[tuple[float, tuple]]]:
        """Per image and phrase: (best crop's score minus the score on unrelated whole images, box).
        `vectors`: the images' `embed_canvases`, if already computed."""
        vectors = self.embed_canvases(images) if vectors is None else vectors
        unique = sorted({p for row in phrases for p in row})
        texts = dict(zip(unique, self.embedder.embed_texts([_query(p) for p in unique]), strict=True))
        out = []
        for k, row in enumerate(phrases):
            if not row:
                out.append([])
                continue
            t = np.stack([texts[p] for p in row])
            crops = vectors[k, 1:] @ t.T  # crops x phrases
            others = np.delete(vectors[:, 0], k, axis=0) if len(images) > 1 else self.neutral[None]
            baseline = np.median(others @ t.T, axis=0)
            stats = []
            for j in range(len(row)):
                order = np.argsort(-crops[:, j])[:TOP_CROPS]
                stats.append((float(crops[order[0], j] - baseline[j]), overlap_box(self.grid[order])))
            out.append(stats)
        return out

    def ground(self, images, phrases):
        stats = self.statistics(images, phrases)
        return [
            [Grounding(p, s > self.margin, s, box) for p, (s, box) in zip(row, rows, strict=True)]
            for row, rows in zip(phrases, stats, strict=True)
        ]


class DetectorGrounder(Grounder):
    """An open-vocabulary detector through `AutoModelForZeroShotObjectDetection` (module docstring)."""

    def __init__(self, spec: str, threshold: float = 0.1, device: str = "auto"):
        from pairsmith.filters.devices import resolve_device

        self.spec, self.threshold, self.device = spec, threshold, resolve_device(device)
        self.model_id = spec
        self.model = None

    def load(self) -> DetectorGrounder:
        from transformers import AutoConfig, AutoModelForZeroShotObjectDetection, AutoProcessor

        source = resolve_detector(self.spec)
        try:
            config = AutoConfig.from_pretrained(source)
            if type(config) not in AutoModelForZeroShotObjectDetection._model_mapping:
                raise _fail(
                    self.spec,
                    f"model type {config.model_type!r} is not a zero-shot object detector known to "
                    "transformers (OWL-ViT, OWLv2, Grounding DINO, ...)",
                )
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = AutoModelForZeroShotObjectDetection.from_pretrained(source)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(self.spec, f"{type(exc).__name__}: {exc}") from exc
        self.model.to(self.device).eval()
        self.queries_as_list = config.model_type in ("owlvit", "owlv2")
        return self

    def detect(self, image: Image.Image, row: list[str]) -> list[tuple[str, float, tuple]]:
        """(phrase, score, pixel box) of the detections above the threshold. OWL scores every box
        against every query, so each phrase gets its own best box (`a dog` and `a brown dog` may share
        one); Grounding DINO style models name the phrase of each box through their post-processing."""
        import torch

        target = [(image.height, image.width)]
        if self.queries_as_list:
            # OWL's text tower takes its 16 positions padded (its processor's own default)
            inputs = self.processor(
                text=[row], images=image, return_tensors="pt", padding="max_length", truncation=True
            ).to(self.device)
            with torch.inference_mode():
                outputs = self.model(**inputs)
            # every box, in order, in pixels of the image (OWLv2's padding undone by the processor)
            every = self.processor.post_process_grounded_object_detection(
                outputs, threshold=-1.0, target_sizes=target
            )[0]["boxes"]
            scores = torch.sigmoid(outputs.logits[0].float())  # boxes x queries
            best = scores.max(dim=0)
            return [
                (phrase, float(best.values[j]), tuple(every[int(best.indices[j])].float().tolist()))
                for j, phrase in enumerate(row)
                if float(best.values[j]) >= self.threshold
            ]
        text = ". ".join(p.lower() for p in row) + "."
        inputs = self.processor(text=text, images=image, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        result = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.threshold,
            text_threshold=self.threshold,
            target_sizes=target,
        )[0]
        names = [_matching(str(label), row) for label in result.get("text_labels", result["labels"])]
        boxes = result["boxes"].float().cpu().numpy().tolist()
        scores = result["scores"].float().cpu().numpy().tolist()
        return [(n, s, tuple(b)) for n, s, b in zip(names, scores, boxes, strict=True) if n is not None]

    def ground(self, images, phrases):
        out = []
        for image, row in zip(images, phrases, strict=True):
            best: dict[str, tuple[float, tuple]] = {}
            for name, score, box in self.detect(image, row) if row else []:
                if name not in best or score > best[name][0]:
                    best[name] = (score, box)
            w, h = image.size
            out.append(
                [
                    Grounding(p, True, best[p][0], _normalised(best[p][1], w, h))
                    if p in best
                    else Grounding(p, False, 0.0, None)
                    for p in row
                ]
            )
        return out


def _matching(label: str, row: list[str]) -> str | None:
    """The phrase a Grounding DINO text label comes from (it returns the matched words, lower case)."""
    label = label.strip().lower()
    exact = [p for p in row if p.lower() == label]
    return next(iter(exact), None) or next((p for p in row if label and label in p.lower()), None)


def _normalised(box, w: int, h: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return clip(x0 / w), clip(y0 / h), clip(x1 / w), clip(y1 / h)


def _query(phrase: str) -> str:
    """What CLIP reads for a phrase: as written, with `a` before a bare singular one (`a red circle`)."""
    from pairsmith.captioners.nouns import DETERMINERS, NUMBERS, _plural

    words = phrase.split()
    if words[0].lower() in DETERMINERS | NUMBERS or _plural(words[-1].lower()):
        return phrase
    return f"{'an' if words[0][0].lower() in 'aeiou' else 'a'} {phrase}"


class GroundRecaption(Annotator):
    """Image Textualization's check of each recaption (`recaption.grounding_model`: `clip`, the primary
    CLIP model over crops, or an open-vocabulary detector by name; see "Recaptions")."""

    fields = GROUNDING_FIELDS
    needs = ("recaption",)
    reads_image = True
    model = "grounding"

    def __init__(self, grounder: Grounder):
        self.grounder = grounder
        self.model_id = grounder.model_id

    @classmethod
    def model_spec(cls, run) -> str:
        return grounding_spec(run.models, run.recaption) or "none"

    @classmethod
    def unavailable(cls, run, spec: Any) -> str | None:
        from pairsmith.captioners.annotator import captioner_spec

        if captioner_spec(run.models, run.recaption) is None:
            return "without recaptions (recaption.model is off)"
        if spec == "clip" and not run.clips:
            return "needs a CLIP model (models.clip)"
        return None

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        return {"grounding": check_grounding(run.models, run.recaption)}

    @classmethod
    def configure(cls, run, spec: str) -> list[GroundRecaption]:
        return [cls.for_spec(spec, run.recaption, run.clips[0] if run.clips else None, run.models.device)]

    @classmethod
    def for_spec(
        cls, spec: str, cfg: RecaptionConfig, clip: ClipScore | None, device: str = "auto"
    ) -> GroundRecaption:
        """The grounding annotator of `spec`: `clip` shares `clip`'s embedder (the primary model's)."""
        if spec == "clip":
            if clip is None:
                raise ModelLoadError("recaption.grounding_model=clip needs a CLIP model (models.clip)")
            return cls(ClipGrounder(clip.embedder, cfg.grounding_margin))
        return cls(
            DetectorGrounder(spec, cfg.grounding_threshold, cfg.device if cfg.device != "auto" else device)
        )

    def setup(self) -> None:
        self.grounder.load()

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        n = len(batch)
        out: dict[str, list[Any]] = {name: [None] * n for name in GROUNDING_COLUMNS}
        recaptions = batch.column("recaption")
        rows = [i for i in range(n) if batch.images[i] is not None and recaptions[i] is not None]
        if not rows:
            return out
        phrases = [noun_phrases(recaptions[i], objects_only=True) for i in rows]
        results = self.grounder.ground([batch.images[i] for i in rows], phrases)
        for i, row in zip(rows, results, strict=True):
            grounded = [g for g in row if g.grounded]
            out["recaption_grounded_ratio"][i] = len(grounded) / len(row) if row else None
            out["recaption_ungrounded"][i] = [g.phrase for g in row if not g.grounded]
            out["recaption_regions"][i] = [
                {
                    "phrase": g.phrase,
                    "score": g.score,
                    **dict(zip(("x0", "y0", "x1", "y1"), g.box, strict=True)),
                }
                for g in grounded
            ]
        return out
