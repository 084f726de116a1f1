"""Train pairsmith's toy AI-generated-image detector (`synthetic_score`), on CPU, deterministically.

    python -m tools.train_toy_synthetic [--out DIR] [--seed 0] [--steps 600]

CIFAKE's construction (Bird & Lotfi 2024: real vs generated 32x32 images, a small CNN) in miniature,
with generators pairsmith trains itself:
- "real": views (random square crops, whole photos) of 13 scikit-image sample photos and toy-world
  scenes (`filters/toy_world.py`), shrunk to 32 px as the detector's image processor does; five more
  photos are held out of everything (the generators' and the detector's training) for evaluation;
- "generated": samples of a small convolutional VAE (`SEEN`) trained here on the training views;
- the detector: a tiny `ConvNextForImageClassification` (2x2 patch stem, 3 stages), id2label
  {0: real, 1: fake}, written by `save_pretrained` beside a `ConvNextImageProcessor` that resizes any
  image (short side to 32 px, centre crop), so `AutoModelForImageClassification` and
  `AutoImageProcessor` load it as they load any hub checkpoint;
- held out: ROC AUC and accuracy of real views of the held-out photos and fresh scenes against new
  samples of `SEEN`, of `UNSEEN` (another VAE: other decoder, width, latent size and seed) and of
  `OTHER_FAMILY` (a DCGAN), none of which the detector saw; printed and written to the model card.

Writes `filters/toy_zoo/toy-synthetic/` (checkpoint + README.md model card) and its entry in
`filters/toy_zoo/metrics.json`. One torch thread (the machine is shared); about 2.5 CPU minutes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pairsmith.filters.toy_world import render_scene
from tools.metrics import roc_auc

ZOO = Path(__file__).resolve().parents[1] / "filters" / "toy_zoo"
NAME = "toy-synthetic"
SIZE = 32
THREADS = 1
TRAIN_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "moon", "page", "text",
    "brick", "grass", "hubble_deep_field", "retina", "microaneurysms",
)  # fmt: skip
HELDOUT_PHOTOS = ("rocket", "clock", "gravel", "immunohistochemistry", "cell")
SCENE_FRACTION = 0.3
EVAL_SEED = 30_000  # added to --seed


@dataclass(frozen=True)
class GeneratorSpec:
    """A small generative model of 32x32 views: kind (vae or dcgan), width, latent size, steps, seed offset."""

    kind: str  # vae (transposed-conv decoder), vae-upsample (upsample + conv decoder) or dcgan
    width: int
    latent: int
    steps: int
    seed: int  # added to --seed


# The detector learns from SEEN's samples; UNSEEN (another decoder, width, latent size and seed) and
# OTHER_FAMILY (a GAN: another objective and architecture) are never shown to it.
SEEN = GeneratorSpec("vae", width=24, latent=32, steps=1200, seed=1)
UNSEEN = GeneratorSpec("vae-upsample", width=16, latent=16, steps=800, seed=2)
OTHER_FAMILY = GeneratorSpec("dcgan", width=16, latent=64, steps=800, seed=3)


def image_processor():
    """The detector's processor: short side to 32 px (bilinear, antialiased), centre crop, [-1, 1]."""
    from transformers import ConvNextImageProcessor

    return ConvNextImageProcessor(
        size={"shortest_edge": SIZE},
        crop_pct=1.0,
        resample=Image.BILINEAR,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def detector_config():
    """A tiny ConvNeXt: a 2x2 patch stem (16x16 from 32 px, so small artefacts survive), 3 stages."""
    from transformers import ConvNextConfig

    return ConvNextConfig(
        num_channels=3,
        patch_size=2,
        num_stages=3,
        hidden_sizes=[16, 32, 64],
        depths=[1, 1, 1],
        image_size=SIZE,
        num_labels=2,
        id2label={0: "real", 1: "fake"},
        label2id={"real": 0, "fake": 1},
    )


def _photos(names) -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(np.asarray(getattr(data, n)())).convert("RGB") for n in names]


def real_images(n: int, seed: int, split: str) -> Iterator[Image.Image]:
    """n real views at their own size: square crops (a third of them the whole photo's centre) of the
    split's photos, or toy-world scenes (30 %). The processor shrinks them to 32 px."""
    rng = np.random.default_rng(seed)
    photos = _photos(TRAIN_PHOTOS if split == "train" else HELDOUT_PHOTOS)
    for _ in range(n):
        if rng.random() < SCENE_FRACTION:
            yield render_scene(rng, size=int(rng.integers(48, 160)))[0]
            continue
        photo = photos[rng.integers(len(photos))]
        short = min(photo.size)
        side = short if rng.random() < 0.2 else int(rng.integers(SIZE, short + 1))
        x, y = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        view = photo.crop((x, y, x + side, y + side))
        yield view.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view


def shrink(images: Iterable[Image.Image]) -> torch.Tensor:
    """uint8 (n, 3, 32, 32) of square views by PIL's antialiased bilinear resize: what the image
    processor does to a square (to within 1 grey level), 4x faster."""
    arrays = [np.asarray(im.resize((SIZE, SIZE), Image.BILINEAR)) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def served_resized(u8: torch.Tensor, seed: int) -> torch.Tensor:
    """Half of the images as if served at another size (bicubic to 36-96 px) and shrunk back to 32 px
    by the processor: what the pipeline does to a generated image, and what keeps the detector from
    keying on its generator's exact pixel grid."""
    rng = np.random.default_rng(seed)
    out = u8.clone()
    for i in np.flatnonzero(rng.random(len(u8)) < 0.5):
        side = int(rng.integers(36, 97))
        image = Image.fromarray(u8[i].permute(1, 2, 0).numpy()).resize((side, side), Image.BICUBIC)
        out[i] = torch.from_numpy(np.asarray(image.resize((SIZE, SIZE), Image.BILINEAR))).permute(2, 0, 1)
    return out


def normalise(u8: torch.Tensor) -> torch.Tensor:
    """uint8 -> the detector's input, as the processor normalises (mean 0.5, std 0.5)."""
    return u8.float() / 127.5 - 1


def to_pil(u8: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a) for a in u8.permute(0, 2, 3, 1).numpy()]


class ConvVAE(nn.Module):
    """Encoder 32 -> 16 -> 8 -> 4 (strided convs), Gaussian latent, decoder back to 32 px by transposed
    convs (`upsample=False`) or by nearest-neighbour upsampling and 3x3 convs (`upsample=True`)."""

    def __init__(self, width: int, latent: int, upsample: bool = False):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )  # fmt: skip
        self.to_stats = nn.Linear(4 * w * 16, 2 * latent)
        self.from_latent = nn.Linear(latent, 4 * w * 16)
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (4 * w, 4, 4)), nn.ReLU(),
            *_up(4 * w, 2 * w, upsample), nn.BatchNorm2d(2 * w), nn.ReLU(),
            *_up(2 * w, w, upsample), nn.BatchNorm2d(w), nn.ReLU(),
            *_up(w, 3, upsample), nn.Sigmoid(),
        )  # fmt: skip
        self.latent = latent

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(z))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.to_stats(self.encoder(x * 2 - 1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy(self.decode(z), x, reduction="sum") / len(x)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / len(x)
        return recon + kl


def _up(c_in: int, c_out: int, upsample: bool) -> list[nn.Module]:
    """Twice the side: a 4x4 transposed conv, or nearest-neighbour upsampling and a 3x3 conv."""
    if upsample:
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1)]
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]


class DCGAN(nn.Module):
    """Radford et al.'s construction at 32 px: transposed-conv generator, strided-conv discriminator."""

    def __init__(self, width: int, latent: int):
        super().__init__()
        w = width
        self.generator = nn.Sequential(
            nn.Unflatten(1, (latent, 1, 1)),
            nn.ConvTranspose2d(latent, 4 * w, 4, 1, 0), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 3, 4, 2, 1), nn.Tanh(),
        )  # fmt: skip
        self.discriminator = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 4, 1, 0), nn.Flatten(),
        )  # fmt: skip
        self.latent = latent

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (self.generator(z) + 1) / 2


def train_generator(spec: GeneratorSpec, views: torch.Tensor, seed: int, batch: int = 32) -> nn.Module:
    """Fit `spec` on uint8 views (n, 3, 32, 32); returns the model in eval mode."""
    torch.manual_seed(seed + spec.seed)
    generator = torch.Generator().manual_seed(seed + spec.seed)
    data = views.float() / 255
    started = time.time()
    if spec.kind in ("vae", "vae-upsample"):
        model = ConvVAE(spec.width, spec.latent, upsample=spec.kind == "vae-upsample")
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        model.train()
        for step in range(spec.steps):
            x = data[torch.randint(len(data), (batch,), generator=generator)]
            loss = model.loss(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 500 == 0 or step == spec.steps - 1:
                print(
                    f"vae step {step:5d} loss {loss.item():.1f} ({time.time() - started:.0f} s)", flush=True
                )
    elif spec.kind == "dcgan":
        model = DCGAN(spec.width, spec.latent)
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        model.train()
        for step in range(spec.steps):
            x = data[torch.randint(len(data), (batch,), generator=generator)] * 2 - 1
            z = torch.randn(batch, spec.latent, generator=generator)
            fake = model.generator(z)
            d_real, d_fake = model.discriminator(x), model.discriminator(fake.detach())
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-model.discriminator(fake)).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            if step % 500 == 0 or step == spec.steps - 1:
                print(
                    f"dcgan step {step:5d} loss d {loss_d.item():.2f} g {loss_g.item():.2f} "
                    f"({time.time() - started:.0f} s)",
                    flush=True,
                )
    else:
        raise ValueError(f"unknown generator kind {spec.kind!r}")
    return model.eval()


@torch.inference_mode()
def sample(model: nn.Module, n: int, seed: int) -> torch.Tensor:
    """n uint8 samples (n, 3, 32, 32), as a generated image file would hold them."""
    z = torch.randn(n, model.latent, generator=torch.Generator().manual_seed(seed))
    return (model.decode(z) * 255).round().clamp(0, 255).to(torch.uint8)


def generator_views(seed: int, n: int = 4000) -> torch.Tensor:
    """What the generators learn from: views of the training photos and scenes only."""
    return shrink(real_images(n, seed, "train"))


def heldout_generator(spec: GeneratorSpec = UNSEEN, seed: int = 0) -> nn.Module:
    """A generator the detector never saw, exactly as this trainer makes it (the tests rebuild it):
    trained on the first 2000 generator views."""
    return train_generator(spec, generator_views(seed, 2000), seed)


def train_detector(out: Path, seed: int, steps: int, batch: int = 64) -> dict:
    """Train SEEN, then the detector on real views against SEEN's samples; save and evaluate it."""
    from transformers import ConvNextForImageClassification

    started = time.time()
    views = generator_views(seed)
    real = served_resized(torch.cat([views, shrink(real_images(4000, seed + 100, "train"))]), seed + 101)
    data_s = time.time() - started
    seen = train_generator(SEEN, views, seed)
    seen_s = time.time() - started - data_s
    fake = served_resized(sample(seen, len(real), seed + 200), seed + 201)
    torch.manual_seed(seed)
    model = ConvNextForImageClassification(detector_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.zeros(batch // 2), torch.ones(batch // 2)]).long()
    model.train()
    for step in range(steps):
        i = torch.randint(len(real), (batch // 2,), generator=generator)
        j = torch.randint(len(fake), (batch // 2,), generator=generator)
        x = torch.cat([real[i], fake[j]])
        flip = torch.rand(batch, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = F.cross_entropy(model(pixel_values=normalise(x)).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            print(
                f"detector step {step:5d} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True
            )
    model.eval()
    detector_s = time.time() - started - data_s - seen_s
    folder = out / NAME
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    image_processor().save_pretrained(folder)
    held_started = time.time()
    unseen, other = heldout_generator(UNSEEN, seed), heldout_generator(OTHER_FAMILY, seed)
    held_s = time.time() - held_started
    metrics = evaluate(folder, {"seen": seen, "unseen": unseen, "other_family": other}, EVAL_SEED + seed)
    return metrics | {
        "data_seconds": round(data_s, 1),
        "seen_generator_seconds": round(seen_s, 1),
        "detector_seconds": round(detector_s, 1),
        "heldout_generators_seconds": round(held_s, 1),
        "total_seconds": round(time.time() - started, 1),
        "steps": steps,
        "batch": batch,
        "train_real": len(real),
        "train_fake": len(fake),
        "parameters": sum(p.numel() for p in model.parameters()),
        "generators": {"seen": asdict(SEEN), "unseen": asdict(UNSEEN), "other_family": asdict(OTHER_FAMILY)},
    }


@torch.inference_mode()
def fake_probability(folder: Path, images: Iterable[Image.Image]) -> np.ndarray:
    """P(fake) of images through the Auto classes, the way `filters/synthetic.py` loads the checkpoint."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    fake = model.config.label2id["fake"]
    out, images = [], iter(images)
    while chunk := list(itertools.islice(images, 256)):
        pixels = processor(chunk, return_tensors="pt")["pixel_values"]
        out.append(model(pixel_values=pixels).logits.softmax(-1)[:, fake].numpy())
    return np.concatenate(out)


def served_large(images: list[Image.Image], seed: int) -> list[Image.Image]:
    """Generated images as a web page might serve them: bicubic to 64-256 px."""
    rng = np.random.default_rng(seed)
    return [
        im.resize((side, side), Image.BICUBIC)
        for im, side in zip(images, rng.integers(64, 257, len(images)), strict=True)
    ]


def auc_and_accuracy(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    scores, generated = (
        np.concatenate([real, fake]),
        np.r_[np.zeros(len(real), bool), np.ones(len(fake), bool)],
    )
    return round(roc_auc(scores, generated), 4), round(float(((scores >= 0.5) == generated).mean()), 4)


def evaluate(folder: Path, generators: dict[str, nn.Module], seed: int, n: int = 1000) -> dict:
    """Real views never seen (the held-out photos and fresh scenes) against new samples of each
    generator (at 32 px, and for `unseen` also served at 64-256 px), through the real loading path."""
    real = fake_probability(folder, real_images(n, seed, "heldout"))
    metrics = {
        "heldout_real": n,
        "heldout_fake_per_generator": n,
        "heldout_real_mean_score": round(float(real.mean()), 4),
    }
    for name, model in generators.items():
        samples = to_pil(sample(model, n, seed + 1))
        auc, accuracy = auc_and_accuracy(real, fake_probability(folder, samples))
        metrics |= {f"{name}_generator_auc": auc, f"{name}_generator_accuracy": accuracy}
        if name == "unseen":
            auc, _ = auc_and_accuracy(real, fake_probability(folder, served_large(samples, seed + 2)))
            metrics["unseen_generator_served_large_auc"] = auc
    return metrics


CARD = """# {name}: pairsmith's toy AI-generated-image detector

- **Format**: a Hugging Face image-classification checkpoint (`save_pretrained`: `config.json`,
  `model.safetensors`, `preprocessor_config.json`), loaded by `AutoModelForImageClassification` and
  `AutoImageProcessor`, the code path of any hub detector; id2label {{0: "real", 1: "fake"}}. A tiny
  ConvNeXt (2x2 patch stem, stages of 16/32/64 channels, one block each), {parameters:,} parameters; the
  `ConvNextImageProcessor` resizes any image's short side to 32 px (bilinear, antialiased) and
  centre-crops it. In pairsmith: `models.synthetic=toy` (the toy profile), `synthetic_score` = P(fake).
- **Construction**: CIFAKE's (Bird & Lotfi 2024: 32x32 real vs generated, a small CNN; 92.98 %
  accuracy on CIFAR-10 vs Stable Diffusion images) in miniature. Real: {train_real} 32 px views of 13
  scikit-image photos (random square crops and whole photos) and toy-world scenes (30 %). Generated:
  {train_fake} samples of a convolutional VAE trained here on those views (transposed-conv decoder, width
  {seen[width]}, latent {seen[latent]}, {seen[steps]} steps). Half of each class served at another size
  (36-96 px) and shrunk back, horizontal flips.
- **Training**: cross-entropy, AdamW + one-cycle (max lr 2e-3), {steps} steps of {batch}, seed {seed},
  {threads} CPU thread; {data_seconds} s making data, {seen_generator_seconds} s training the VAE,
  {detector_seconds} s training the detector, {heldout_generators_seconds} s training the two held-out
  generators, {total_seconds} s in all (evaluation included; 2 shared CPU cores).
- **Held-out** ({heldout_real} real views of 5 photos never seen by any model (rocket, clock, gravel,
  immunohistochemistry, cell) and fresh scenes, against {heldout_fake_per_generator} samples per
  generator; seed {seed} + 30000), ROC AUC / accuracy at 0.5:
  - the training VAE, new samples: **{seen_generator_auc}** / {seen_generator_accuracy};
  - an unseen VAE (another decoder: nearest-neighbour upsampling + 3x3 convs; width {unseen[width]},
    latent {unseen[latent]}, another seed): **{unseen_generator_auc}** / {unseen_generator_accuracy}
    (served at 64-256 px: AUC {unseen_generator_served_large_auc});
  - an unseen DCGAN (another family: adversarial training, sharp and noisy samples): **{other_family_generator_auc}**
    / {other_family_generator_accuracy}.
  Mean score of the held-out real views: {heldout_real_mean_score}.
- **Can judge**: whether a small image comes from a VAE-like generator of this size rather than
  from a photo or a toy-world scene. **Cannot judge**: images of real generators (diffusion models,
  large GANs), generator families it has not seen (the DCGAN above: like CIFAKE's detector, it keys on
  one generator's small artefacts), what an image shows. Its 0.5 cut-off is not calibrated for an unseen
  generator (accuracy above). It shows the signal's plumbing; for real data name a real detector
  (`models.synthetic=REPO_ID`, `models.synthetic_label`).
- **Reproduce**: `python -m tools.train_toy_synthetic --seed {seed}` (writes this folder and
  `metrics.json`'s `{name}` entry).
"""


def write_card(out: Path, metrics: dict) -> None:
    """The model card, with the numbers of the run that made the checkpoint."""
    generators = metrics["generators"]
    card = CARD.format(name=NAME, seen=generators["seen"], unseen=generators["unseen"], **metrics)
    (out / NAME / "README.md").write_text(card)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ZOO)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    run = {"seed": args.seed, "threads": THREADS, "torch": torch.__version__}
    metrics = train_detector(args.out, args.seed, args.steps) | run
    metrics_path = args.out / "metrics.json"
    everything = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    everything[NAME] = metrics
    metrics_path.write_text(json.dumps(everything, indent=2, sort_keys=True) + "\n")
    write_card(args.out, metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
