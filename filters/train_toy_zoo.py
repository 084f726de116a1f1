"""Train pairsmith's toy zoo from its synthetic world, on CPU, deterministically.

    python -m pairsmith.filters.train_toy_zoo [--out DIR] [--seed 0] [--steps 1500]

Writes, in the real models' own formats (loaded by exactly the code that loads real checkpoints):
- `toy-clip-vit.json` + `toy-clip-vit.pt`: an open_clip model config and state_dict (fp16);
- `toy-watermark.json` + `toy-watermark.pt`: LAION's watermark-detector construction (timm backbone,
  1536-625-256-2 style head, class 0 = watermark) on a tiny timm backbone;
- `metrics.json`: held-out metrics of both (the model cards `*.md` quote them).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from pairsmith.filters.metrics import roc_auc
from pairsmith.filters.toy_world import add_watermark, render_scene, scene_pairs, swap_captions
from pairsmith.filters.watermark_model import (
    WatermarkConfig,
    build_watermark_model,
    load_watermark_model,
    watermark_probability,
    watermark_transform,
)

ZOO = Path(__file__).resolve().parent / "toy_zoo"
CLIP_NAME = "toy-clip-vit"
CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}


def web_like(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What the pipeline does to a served scene: another size, JPEG re-encoding."""
    side = int(rng.integers(96, 257))
    buf = io.BytesIO()
    image.resize((side, side), Image.BICUBIC).save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def make_dataset(n: int, seed: int, preprocess) -> tuple[torch.Tensor, list[str]]:
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for _ in range(n):
        image, caption = render_scene(rng, size=128)
        images.append(preprocess(web_like(image, rng)))
        captions.append(caption)
    return torch.stack(images), captions


def train_clip(out: Path, seed: int, steps: int, batch: int = 128) -> dict:
    torch.manual_seed(seed)
    config_path = out / f"{CLIP_NAME}.json"
    config_path.write_text(json.dumps(CLIP_CONFIG, indent=2) + "\n")
    open_clip.add_model_config(config_path)
    model, _, preprocess = open_clip.create_model_and_transforms(CLIP_NAME)
    tokenizer = open_clip.get_tokenizer(CLIP_NAME)
    started = time.time()
    images, captions = make_dataset(steps * batch // 6, seed, preprocess)  # each pair seen ~6 times
    tokens = tokenizer(captions)
    data_s = time.time() - started
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(images), (batch,), generator=generator)
        image_features = F.normalize(model.encode_image(images[idx]), dim=-1)
        text_features = F.normalize(model.encode_text(tokens[idx]), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.T
        # rows drawn twice, or equal captions, are not negatives of each other
        same = torch.tensor([[captions[i] == captions[j] for j in idx.tolist()] for i in idx.tolist()])
        targets = same.float() / same.float().sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 100 == 0 or step == steps - 1:
            print(f"clip step {step:5d} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True)
    train_s = time.time() - started
    model.eval()
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, out / f"{CLIP_NAME}.pt")
    metrics = evaluate_clip(config_path, out / f"{CLIP_NAME}.pt", seed=10_000 + seed)
    return metrics | {
        "train_seconds": round(train_s, 1),
        "data_seconds": round(data_s, 1),
        "steps": steps,
        "batch": batch,
    }


@torch.inference_mode()
def evaluate_clip(config_path: Path, checkpoint: Path, seed: int, n: int = 1000) -> dict:
    """Held-out metrics through the real loading path (fresh scenes, never seen in training)."""
    open_clip.add_model_config(config_path)
    model, _, preprocess = open_clip.create_model_and_transforms(CLIP_NAME, pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer(CLIP_NAME)
    rng = np.random.default_rng(seed)
    pairs = scene_pairs(n, seed)
    images = torch.stack([preprocess(web_like(img, rng)) for img, _ in pairs])
    captions = [c for _, c in pairs]
    swapped_captions, swapped = swap_captions(captions, 0.2, rng)
    image_features = F.normalize(model.encode_image(images), dim=-1)
    text_features = F.normalize(model.encode_text(tokenizer(swapped_captions)), dim=-1)
    scores = (image_features * text_features).sum(-1).numpy()
    true_text = F.normalize(model.encode_text(tokenizer(captions[:100])), dim=-1)
    top1 = (image_features[:100] @ true_text.T).argmax(1).numpy()
    return {
        "heldout_swap_auc": round(roc_auc(scores, ~np.array(swapped)), 4),
        "heldout_top1_of_100": round(
            float(np.mean([captions[i] == captions[j] for i, j in enumerate(top1)])), 4
        ),
        "heldout_pairs": n,
    }


WATERMARK_NAME = "toy-watermark"
WATERMARK_CONFIG = WatermarkConfig(arch="test_efficientnet", input_size=128)


def _photo_crops():
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page", "text")
    photos = [Image.fromarray(np.asarray(getattr(data, n)())).convert("RGB") for n in names]

    def crop(rng: np.random.Generator) -> Image.Image:
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(min(photo.size) // 2, min(photo.size) + 1))
        x, y = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        return photo.crop((x, y, x + side, y + side)).resize((192, 192))

    return crop


def watermark_examples(n: int, seed: int, style: str, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """n images, half with a watermark overlay of `style`; label 0 = watermark (LAION's convention)."""
    rng = np.random.default_rng(seed)
    crop = _photo_crops()
    images, labels = [], []
    for i in range(n):
        clean = crop(rng) if rng.random() < 0.6 else render_scene(rng, size=192)[0]
        marked = i % 2 == 0
        image = add_watermark(clean, rng, style) if marked else clean
        images.append(transform(web_like(image, rng)))
        labels.append(0 if marked else 1)
    return torch.stack(images), torch.tensor(labels)


def train_watermark(out: Path, seed: int, steps: int, batch: int = 32) -> dict:
    torch.manual_seed(seed)
    transform = watermark_transform(WATERMARK_CONFIG)
    started = time.time()
    images, labels = watermark_examples(steps * batch // 4, seed, "train", transform)
    model = build_watermark_model(WATERMARK_CONFIG.arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(images), (batch,), generator=generator)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(
                f"watermark step {step:4d} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True
            )
    train_s = time.time() - started
    config_path = out / f"{WATERMARK_NAME}.json"
    config_path.write_text(json.dumps(asdict(WATERMARK_CONFIG), indent=2) + "\n")
    torch.save(
        {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
        out / f"{WATERMARK_NAME}.pt",
    )
    return evaluate_watermark(out, seed=20_000 + seed) | {
        "train_seconds": round(train_s, 1),
        "steps": steps,
        "batch": batch,
    }


@torch.inference_mode()
def evaluate_watermark(out: Path, seed: int, n: int = 400) -> dict:
    """AUC on overlays never seen in training (other texts, fonts, placement, opacity, logos)."""
    config = WatermarkConfig.read(out / f"{WATERMARK_NAME}.json")
    model = load_watermark_model(out / f"{WATERMARK_NAME}.pt", config)
    metrics = {}
    for style in ("heldout", "train"):
        images, labels = watermark_examples(n, seed, style, watermark_transform(config))
        scores = watermark_probability(model(images)).numpy()
        metrics[f"{style}_overlay_auc"] = round(roc_auc(scores, labels.numpy() == 0), 4)
    return metrics | {"heldout_images": n}


CARDS = {
    CLIP_NAME: """# {name}: pairsmith's toy CLIP

- **Format**: open_clip model config `{name}.json` + state_dict `{name}.pt` (fp16), loaded with
  `open_clip.add_model_config` and `create_model_and_transforms(name, pretrained=path)` - the code
  path of real checkpoints. In pairsmith: `models.profile=toy` or spec `toy`.
- **Architecture**: ViT image tower (64 px, patch 8, width 64, 3 layers), text transformer
  (open_clip's BPE tokenizer, context 32, width 64, 2 layers), embedding dim 64.
- **Data**: pairs generated on the fly by `filters/toy_world.py` (one or two coloured shapes on
  plain, striped or dotted backgrounds; captions such as "a red circle above a small blue square"),
  each re-sized to 96-256 px and JPEG re-encoded at quality 60-95, as the pipeline would serve it.
- **Training**: symmetric InfoNCE (equal captions are not negatives), AdamW, {steps} steps of {batch},
  seed {seed}, {train_seconds} s on 2 CPU cores.
- **Held-out** (fresh scenes, never seen): ROC AUC true vs swapped captions (20 % swapped)
  **{heldout_swap_auc}**; image-to-text top-1 among 100 captions **{heldout_top1_of_100}**.
- **Can judge**: whether a caption describes a scene of the synthetic world (colours, shapes,
  sizes, positions). **Cannot judge**: real photos; its scores on them are noise.
- **Reproduce**: `python -m pairsmith.filters.train_toy_zoo --only clip --seed {seed}`.
""",
    WATERMARK_NAME: """# {name}: pairsmith's toy watermark detector

- **Format**: LAION's watermark-detector construction (`filters/watermark_model.py`: a timm
  backbone, head num_features-625-256-2, P(watermark) = softmax class 0) on the tiny timm backbone
  `test_efficientnet`; `{name}.json` gives arch, input size ({input_size} px) and ImageNet
  normalisation; `{name}.pt` is the state_dict (fp16).
- **Data**: random crops of scikit-image photos and synthetic-world scenes, half with a
  semi-transparent text or logo overlay (`toy_world.add_watermark(style="train")`: PIL's default
  font, placed once, opacity 90-180), JPEG re-encoded.
- **Training**: cross-entropy, AdamW + one-cycle, {steps} steps of {batch}, seed {seed}, {train_seconds} s.
- **Held-out**: overlays never seen in training (`style="heldout"`: other texts, DejaVu fonts,
  tiled diagonally, opacity 60-140, diamond logos) ROC AUC **{heldout_overlay_auc}**; training-style
  overlays on new images **{train_overlay_auc}** ({heldout_images} images each).
- **Can judge**: semi-transparent text/logo overlays. **Cannot judge**: real stock-photo
  watermarks reliably; use LAION's weights for real data.
- **Reproduce**: `python -m pairsmith.filters.train_toy_zoo --only watermark --seed {seed}`.
""",
}


def write_cards(out: Path, metrics: dict, seed: int) -> None:
    """A model card per model, with the held-out numbers of this very run."""
    for name, card in CARDS.items():
        if name in metrics:
            extra = {"input_size": WATERMARK_CONFIG.input_size}
            (out / f"{name}.md").write_text(card.format(name=name, seed=seed, **extra, **metrics[name]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ZOO)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1000, help="CLIP training steps")
    parser.add_argument("--watermark-steps", type=int, default=500)
    parser.add_argument("--only", choices=["clip", "watermark"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_path = args.out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if args.only in (None, "clip"):
        metrics[CLIP_NAME] = train_clip(args.out, args.seed, args.steps)
    if args.only in (None, "watermark"):
        metrics[WATERMARK_NAME] = train_watermark(args.out, args.seed, args.watermark_steps)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    write_cards(args.out, metrics, args.seed)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
