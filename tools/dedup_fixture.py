"""A near-duplicate fixture from real photos (scikit-image's data) with known answers.

Every photo and each of its four quadrants is an *original* (distinct content). Each original gets
variants that a web crawl really produces: resized, recompressed at JPEG quality 30 to 95, cropped
by up to 10 %, brightness-shifted and overlaid with a watermark. A variant is a near-duplicate of its
original and of the other variants of the same original; everything else is distinct. Captions get
the same treatment (case and punctuation, an appended stock phrase, one word swapped) so that
caption dedup can be scored too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon",
    "page", "retina", "rocket", "text", "checkerboard",
)  # fmt: skip
NOUNS = (
    "harbour", "violin", "glacier", "lantern", "orchard", "falcon", "canyon", "teapot", "bicycle", "meadow",
    "cathedral", "compass", "volcano", "pelican", "marble", "tractor", "lighthouse", "cactus", "saxophone",
    "waterfall", "kettle", "windmill", "iceberg", "parrot", "quarry", "trumpet", "vineyard", "rooftop",
)  # fmt: skip
ADJECTIVES = ("quiet", "golden", "rusty", "misty", "vivid", "ancient", "frozen", "crowded", "tiny", "distant")
IMAGE_VARIANTS = (
    "resize_50", "resize_75", "jpeg_30", "jpeg_50", "jpeg_75", "jpeg_95", "crop_5", "crop_10",
    "brighter", "darker", "watermark",
)  # fmt: skip
CAPTION_VARIANTS = ("case_punct", "stock_suffix", "word_swap")


@dataclass(frozen=True)
class FixtureItem:
    """One image-caption pair; items with the same `original` are near-duplicates."""

    id: str
    original: int
    variant: str  # "original" or one of IMAGE_VARIANTS / CAPTION_VARIANTS
    image: Image.Image
    caption: str


def _photo(name: str) -> Image.Image:
    from skimage import data

    array = getattr(data, name)()
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        array = (255 * (array - array.min()) / max(1e-9, np.ptp(array))).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def originals(max_side: int = 384) -> list[Image.Image]:
    """Each photo and its four quadrants, scaled so the long side is at most `max_side`."""
    images = []
    for name in PHOTOS:
        photo = _photo(name)
        photo.thumbnail((max_side, max_side))
        w, h = photo.size
        quadrants = [photo.crop((x, y, x + w // 2, y + h // 2)) for x in (0, w // 2) for y in (0, h // 2)]
        images += [photo, *quadrants]
    return images


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, share: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * share), int(h * share)
    left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
    return image.crop((left, top, left + w - dx, top + h - dy))


def _watermark(image: Image.Image) -> Image.Image:
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    w, h = image.size
    for y in range(h // 6, h, h // 3):
        draw.text((w // 8, y), "(c) STOCKPHOTO  preview", fill=(255, 255, 255, 140))
    draw.rectangle((0, h - h // 10, w, h), fill=(0, 0, 0, 110))
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def image_variant(image: Image.Image, variant: str, rng: np.random.Generator) -> Image.Image:
    """`image` as a crawler might find a copy of it."""
    kind, _, amount = variant.partition("_")
    if kind == "resize":
        w, h = image.size
        return image.resize((max(8, w * int(amount) // 100), max(8, h * int(amount) // 100)), Image.LANCZOS)
    if kind == "jpeg":
        return _jpeg(image, int(amount))
    if kind == "crop":
        return _crop(image, int(amount) / 100, rng)
    if variant in ("brighter", "darker"):
        return ImageEnhance.Brightness(image).enhance(1.25 if variant == "brighter" else 0.8)
    if variant == "watermark":
        return _watermark(image)
    raise ValueError(f"unknown image variant {variant!r}")


def original_caption(index: int) -> str:
    """A distinct caption per original, e.g. 'a quiet harbour beside a vivid violin on a monday morning
    near the old canyon'."""
    a, b, c = (NOUNS[(index * step + offset) % len(NOUNS)] for step, offset in ((1, 0), (3, 7), (5, 13)))
    first, second = ADJECTIVES[index % len(ADJECTIVES)], ADJECTIVES[(index // 3 + 5) % len(ADJECTIVES)]
    day = ("monday", "tuesday", "friday", "sunday")[index // len(NOUNS) % 4]
    return f"a {first} {a} beside a {second} {b} on a {day} morning near the old {c}"


def caption_variant(caption: str, variant: str) -> str:
    if variant == "case_punct":
        return caption.upper().replace(" beside ", ", beside ") + "!"
    if variant == "stock_suffix":
        return f"{caption} - stock photo"
    if variant == "word_swap":
        words = caption.split()
        words[1] = "bright" if words[1] != "bright" else "dark"
        return " ".join(words)
    raise ValueError(f"unknown caption variant {variant!r}")


def build_fixture(seed: int = 0, max_side: int = 384) -> list[FixtureItem]:
    """Originals, their image variants (caption unchanged) and caption variants (image unchanged)."""
    rng = np.random.default_rng(seed)
    items = []
    for index, image in enumerate(originals(max_side)):
        caption = original_caption(index)
        items.append(FixtureItem(f"{index}/original", index, "original", image, caption))
        items += [
            FixtureItem(f"{index}/{v}", index, v, image_variant(image, v, rng), caption)
            for v in IMAGE_VARIANTS
        ]
        items += [
            FixtureItem(f"{index}/{v}", index, v, image, caption_variant(caption, v))
            for v in CAPTION_VARIANTS
        ]
    return items
