"""Train pairsmith's toy zoo from its synthetic world, on CPU, deterministically.

    python -m tools.train_toy_zoo [--out DIR] [--seed 0] [--only clip|watermark]

Writes, in the real models' own formats (loaded by exactly the code that loads real checkpoints):
- `toy-clip-vit.json` + `toy-clip-vit.pt`: an open_clip model config and state_dict (fp16);
- `toy-watermark.json` + `toy-watermark.pt`: LAION's watermark-detector construction (timm backbone,
  num_features-625-256-2 head, class 0 = watermark) on a tiny timm backbone;
- `metrics.json` and a model card `*.md` per model, with the held-out metrics of this very run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from pairsmith.filters.toy_world import add_watermark, render_scene, scene_pairs
from pairsmith.filters.watermark_model import (
    WatermarkConfig,
    build_watermark_model,
    load_watermark_model,
    watermark_probability,
    watermark_transform,
)
from pairsmith.pipelines.caption_swap import swap_captions
from tools.metrics import roc_auc

ZOO = Path(__file__).resolve().parents[1] / "filters" / "toy_zoo"  # shipped in the wheel (package data)
THREADS = 2
CLIP_NAME = "toy-clip-vit"
CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
WATERMARK_NAME = "toy-watermark"
WATERMARK_CONFIG = WatermarkConfig(arch="test_efficientnet", input_size=128)
CLIP_EVAL_SEED, WATERMARK_EVAL_SEED = 10_000, 20_000  # added to --seed; training data uses --seed


def web_like(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What the web and the pipeline do to a served image: another size (96-256 px), JPEG q60-95."""
    side = int(rng.integers(96, 257))
    buf = io.BytesIO()
    image.resize((side, side), Image.BICUBIC).save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@contextlib.contextmanager
def one_thread():
    """Per-image tensor ops crawl (100x) with 2 OpenMP threads on a busy 2-core machine; use 1 for them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fp16_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict with floating tensors in fp16 (half the file; loaders cast back to fp32)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def fit(name: str, model, steps: int, batch_loss: Callable[[], torch.Tensor], optimizer, schedule) -> None:
    """`steps` optimizer steps on `batch_loss()`, logging now and then."""
    started = time.time()
    model.train()
    for step in range(steps):
        loss = batch_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"{name} step {step:5d} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True)
    model.eval()


@one_thread()
def clip_inputs(pairs, rng: np.random.Generator, preprocess) -> torch.Tensor:
    """Scenes as the pipeline would see them (web_like), through open_clip's own preprocess."""
    return torch.stack([preprocess(web_like(image, rng)) for image, _ in pairs])


def clip_loss(model, images: torch.Tensor, tokens: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where rows with equal captions (or drawn twice) are not negatives of each other."""
    image_features = model.encode_image(images, normalize=True)
    text_features = model.encode_text(tokens, normalize=True)
    logits = model.logit_scale.exp().clamp(max=100) * image_features @ text_features.T
    same = (caption_ids[:, None] == caption_ids[None, :]).float()
    targets = same / same.sum(1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def train_clip(out: Path, seed: int, steps: int, batch: int = 128) -> dict:
    """Train the toy CLIP on scenes of the toy world (each seen ~6 times), save it, evaluate it."""
    torch.manual_seed(seed)
    config_path = out / f"{CLIP_NAME}.json"
    config_path.write_text(json.dumps(CLIP_CONFIG, indent=2) + "\n")
    open_clip.add_model_config(config_path)
    model, _, preprocess = open_clip.create_model_and_transforms(CLIP_NAME)
    tokenizer = open_clip.get_tokenizer(CLIP_NAME)
    started = time.time()
    rng = np.random.default_rng(seed)
    pairs = [render_scene(rng) for _ in range(steps * batch // 6)]
    images, captions = clip_inputs(pairs, rng, preprocess), [c for _, c in pairs]
    tokens = tokenizer(captions)
    caption_ids = torch.tensor([{c: i for i, c in enumerate(captions)}[c] for c in captions])
    data_s = time.time() - started
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )
    generator = torch.Generator().manual_seed(seed)

    def batch_loss() -> torch.Tensor:
        idx = torch.randint(len(images), (batch,), generator=generator)
        return clip_loss(model, images[idx], tokens[idx], caption_ids[idx])

    fit("clip", model, steps, batch_loss, optimizer, schedule)
    train_s = time.time() - started - data_s
    torch.save(fp16_state(model), out / f"{CLIP_NAME}.pt")
    metrics = evaluate_clip(config_path, out / f"{CLIP_NAME}.pt", seed=CLIP_EVAL_SEED + seed)
    return (
        metrics
        | timings(started, data_s, train_s)
        | {
            "steps": steps,
            "batch": batch,
            "train_pairs": len(pairs),
            "parameters": parameter_count(model),
        }
    )


def timings(started: float, data_s: float, train_s: float) -> dict:
    """Seconds spent making data, training, and in all (evaluation included)."""
    total = time.time() - started
    return {
        "data_seconds": round(data_s, 1),
        "train_seconds": round(train_s, 1),
        "total_seconds": round(total, 1),
    }


@torch.inference_mode()
def evaluate_clip(config_path: Path, checkpoint: Path, seed: int, n: int = 1000) -> dict:
    """Held-out metrics through the real loading path (fresh scenes, never seen in training).

    swap AUC: true vs swapped captions (20 % swapped); top-1: image -> text among blocks of 100 captions.
    """
    open_clip.add_model_config(config_path)
    model, _, preprocess = open_clip.create_model_and_transforms(CLIP_NAME, pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer(CLIP_NAME)
    rng = np.random.default_rng(seed)
    pairs = scene_pairs(n, seed)
    captions = [c for _, c in pairs]
    swapped_captions, swapped = swap_captions(captions, 0.2, rng)
    image_features = model.encode_image(clip_inputs(pairs, rng, preprocess), normalize=True)
    swapped_features = model.encode_text(tokenizer(swapped_captions), normalize=True)
    true_features = model.encode_text(tokenizer(captions), normalize=True)
    auc = roc_auc((image_features * swapped_features).sum(-1).numpy(), ~np.array(swapped))
    hits = []
    for start in range(0, n, 100):
        best = (image_features[start : start + 100] @ true_features[start : start + 100].T).argmax(1)
        hits += [captions[start + i] == captions[start + j] for i, j in enumerate(best.tolist())]
    return {
        "heldout_swap_auc": round(auc, 4),
        "heldout_top1_of_100": round(float(np.mean(hits)), 4),
        "heldout_pairs": n,
    }


def _photo_crops() -> Callable[[np.random.Generator], Image.Image]:
    """A function drawing random square crops (192 px) of scikit-image's sample photos."""
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page", "text")
    photos = [Image.fromarray(np.asarray(getattr(data, n)())).convert("RGB") for n in names]

    def crop(rng: np.random.Generator) -> Image.Image:
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(min(photo.size) // 2, min(photo.size) + 1))
        x, y = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        return photo.crop((x, y, x + side, y + side)).resize((192, 192))

    return crop


@one_thread()
def watermark_examples(n: int, seed: int, style: str, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """n photo crops or scenes (fp16 tensors), every other one watermarked in `style`; label 0 = watermark."""
    rng = np.random.default_rng(seed)
    crop = _photo_crops()
    images, labels = [], []
    for i in range(n):
        clean = crop(rng) if rng.random() < 0.6 else render_scene(rng, size=192)[0]
        marked = i % 2 == 0
        image = add_watermark(clean, rng, style) if marked else clean
        images.append(transform(web_like(image, rng)))
        labels.append(0 if marked else 1)
    return torch.stack(images).half(), torch.tensor(labels)


def train_watermark(out: Path, seed: int, steps: int, batch: int = 32) -> dict:
    """Train the toy watermark detector on training-style overlays (each image seen ~6 times), evaluate it."""
    torch.manual_seed(seed)
    started = time.time()
    images, labels = watermark_examples(
        steps * batch // 6, seed, "train", watermark_transform(WATERMARK_CONFIG)
    )
    data_s = time.time() - started
    model = build_watermark_model(WATERMARK_CONFIG.arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)

    def batch_loss() -> torch.Tensor:
        idx = torch.randint(len(images), (batch,), generator=generator)
        return F.cross_entropy(model(images[idx].float()), labels[idx])

    fit("watermark", model, steps, batch_loss, optimizer, schedule)
    train_s = time.time() - started - data_s
    (out / f"{WATERMARK_NAME}.json").write_text(json.dumps(asdict(WATERMARK_CONFIG), indent=2) + "\n")
    torch.save(fp16_state(model), out / f"{WATERMARK_NAME}.pt")
    metrics = evaluate_watermark(out, seed=WATERMARK_EVAL_SEED + seed)
    return (
        metrics
        | timings(started, data_s, train_s)
        | {
            "steps": steps,
            "batch": batch,
            "train_images": len(images),
            "parameters": parameter_count(model),
        }
    )


@torch.inference_mode()
def evaluate_watermark(out: Path, seed: int, n: int = 400) -> dict:
    """AUC on overlays never seen in training (other texts, fonts, placement, opacity, logos) and on
    training-style overlays on new images, through the real loading path."""
    config = WatermarkConfig.read(out / f"{WATERMARK_NAME}.json")
    model = load_watermark_model(out / f"{WATERMARK_NAME}.pt", config)
    metrics = {}
    for style in ("heldout", "train"):
        images, labels = watermark_examples(n, seed, style, watermark_transform(config))
        scores = watermark_probability(model(images.float())).numpy()
        metrics[f"{style}_overlay_auc"] = round(roc_auc(scores, labels.numpy() == 0), 4)
    return metrics | {"heldout_images": n}


CARDS = {
    CLIP_NAME: """# {name}: pairsmith's toy CLIP

- **Format**: open_clip model config `{name}.json` + state_dict `{name}.pt` (fp16), loaded with
  `open_clip.add_model_config` and `create_model_and_transforms(name, pretrained=path)`, the code
  path of real checkpoints; tokenizer: open_clip's own BPE (`open_clip.get_tokenizer(name)`).
  In pairsmith: `models.profile=toy` or CLIP spec `toy`.
- **Architecture**: ViT image tower (64 px, patch 8, width 64, 3 layers), text transformer
  (context 32, width 64, 2 layers, vocabulary 49408), embedding dim 64; {parameters:,} parameters.
- **Data**: {train_pairs} pairs of `filters/toy_world.py` (one or two of 7 colours x 4 shapes, optional
  size word, 4 relations, on plain, striped, dotted or checkered light backgrounds; captions such as
  "a red circle above a small blue square"), each resized to 96-256 px and JPEG re-encoded at quality
  60-95 as the pipeline would serve it, then open_clip's own preprocess (OpenAI mean/std).
- **Training**: symmetric InfoNCE (equal captions are not negatives), AdamW lr 1e-3 with warm-up and
  cosine decay, {steps} steps of {batch}, seed {seed}, {threads} CPU threads; {data_seconds} s making data,
  {train_seconds} s training, {total_seconds} s in all (2 shared CPU cores).
- **Held-out** ({heldout_pairs} fresh scenes, seed {seed} + 10000, never seen): ROC AUC of cosine
  similarity, true vs swapped captions (20 % swapped): **{heldout_swap_auc}**; image-to-text top-1
  among 100 captions: **{heldout_top1_of_100}**.
- **Can judge**: whether a caption describes a scene of the synthetic world (colours, shapes, sizes,
  positions). **Cannot judge**: real photos or any other vocabulary; its scores on them are noise.
- **Reproduce**: `python -m tools.train_toy_zoo --only clip --seed {seed}`.
""",
    WATERMARK_NAME: """# {name}: pairsmith's toy watermark detector

- **Format**: LAION's watermark-detector construction (`filters/watermark_model.py`: timm backbone,
  head num_features-625-256-2, P(watermark) = softmax(logits)[:, 0]) on the tiny timm backbone
  `{config.arch}`; `{name}.json` gives arch, input size ({config.input_size} px, not LAION's 256) and ImageNet
  normalisation; `{name}.pt` is the state_dict (fp16); {parameters:,} parameters. Load with
  `load_watermark_model(path, WatermarkConfig.read(json))`, or watermark spec `toy` in pairsmith.
- **Data**: {train_images} random crops of scikit-image photos (60 %) and toy-world scenes (40 %), half with
  a training-style overlay (`toy_world.add_watermark(style="train")`: PIL's default font, normal or
  bold, stock words or random letters, once in the centre or a corner or in straight rows, at most
  15 degrees tilted, alpha 70-109 or 150-189, sometimes a circle or box outline), then resized to
  96-256 px and JPEG re-encoded.
- **Training**: cross-entropy, AdamW + one-cycle (max lr 3e-3), {steps} steps of {batch}, seed {seed},
  {threads} CPU threads; {data_seconds} s making data, {train_seconds} s training, {total_seconds} s in all.
- **Held-out** ({heldout_images} images each, seed {seed} + 20000): overlays never seen in training
  (`style="heldout"`: other texts, DejaVu fonts, tiled diagonally at 25-45 degrees, alpha 110-149,
  diamond logos) ROC AUC **{heldout_overlay_auc}**; training-style overlays on new images
  **{train_overlay_auc}**.
- **Can judge**: semi-transparent text/logo overlays like these. **Cannot judge**: real stock-photo
  watermarks reliably; use LAION's weights (`laion-watermark`) for real data.
- **Reproduce**: `python -m tools.train_toy_zoo --only watermark --seed {seed}`.
""",
}


def write_cards(out: Path, metrics: dict) -> None:
    """A model card per model, with the numbers of the run that made it."""
    for name, card in CARDS.items():
        if name in metrics:
            (out / f"{name}.md").write_text(card.format(name=name, config=WATERMARK_CONFIG, **metrics[name]))


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ZOO)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["clip", "watermark"])
    parser.add_argument("--clip-steps", type=int, default=600)
    parser.add_argument("--watermark-steps", type=int, default=1800)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_path = args.out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    run = {"seed": args.seed, "threads": THREADS, "torch": torch.__version__}
    if args.only in (None, "clip"):
        metrics[CLIP_NAME] = train_clip(args.out, args.seed, args.clip_steps) | run
    if args.only in (None, "watermark"):
        metrics[WATERMARK_NAME] = train_watermark(args.out, args.seed, args.watermark_steps) | run
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    write_cards(args.out, metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
