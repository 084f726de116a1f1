"""The synthetic world of pairsmith's toy models: coloured shapes with true captions.

The toy zoo is trained on it, the demo serves scenes from it, and tests hold out fresh scenes from it,
so that the toy models' scores mean something. Deterministic for a given `numpy` Generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 30),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "black": (25, 25, 25),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = {"small": (0.08, 0.11), "": (0.13, 0.16), "large": (0.18, 0.21)}  # radius / image side
RELATIONS = {"above": (0, -1), "below": (0, 1), "to the left of": (-1, 0), "to the right of": (1, 0)}
BACKGROUNDS = ("plain", "striped", "dotted", "checkered")


def _pick(rng: np.random.Generator, options):
    return options[rng.integers(len(options))]


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True))


def shape_box(shape: str, cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    """The bounding box (x0, y0, x1, y1), px, of what `draw_shape` paints for these arguments."""
    if shape == "star":
        xs, ys = zip(*_star(cx, cy, r * 1.2), strict=True)
        return min(xs), min(ys), max(xs), max(ys)
    return cx - r, cy - r, cx + r, cy + r


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, colour) -> None:
    """A filled shape of 'radius' r centred on (cx, cy)."""
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    else:
        draw.polygon(_star(cx, cy, r * 1.2), fill=colour)


def _background(rng: np.random.Generator, size: int) -> tuple[Image.Image, str]:
    """A light plain, striped, dotted or checkered background, and which of those it is."""
    base = tuple(int(v) for v in rng.integers(200, 256, 3))
    image = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(image)
    ink = tuple(v - 40 for v in base)
    step = max(4, size // int(rng.integers(8, 16)))
    kind = _pick(rng, BACKGROUNDS)
    for x in range(0, size, step):
        if kind == "striped":
            draw.line([(x, 0), (x, size)], fill=ink, width=max(1, step // 4))
        for y in range(0, size, step):
            if kind == "dotted":
                draw.ellipse(
                    (x + step / 2 - 1, y + step / 2 - 1, x + step / 2 + 1, y + step / 2 + 1), fill=ink
                )
            elif kind == "checkered" and (x + y) // step % 2:
                draw.rectangle((x, y, x + step - 1, y + step - 1), fill=ink)
    return image, kind


def _thing(rng: np.random.Generator, colours: list[str], size: int) -> tuple[str, str, str, float]:
    """(words, shape, colour, radius in px) of a random shape, e.g. ('small red circle', 'circle', 'red', 11.3)."""
    colour, shape, size_word = _pick(rng, colours), _pick(rng, SHAPES), _pick(rng, list(SIZES))
    words = " ".join(w for w in (size_word, colour, shape) if w)
    return words, shape, colour, size * rng.uniform(*SIZES[size_word])


def _a(words: str) -> str:
    return f"an {words}" if words[0] in "aeiou" else f"a {words}"


def render_scene(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, str]:
    """A scene of one or two shapes and its true caption, e.g. 'a red circle above a small blue square'."""
    image, caption, _ = render_scene_details(rng, size)
    return image, caption


def render_scene_details(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, str, dict]:
    """`render_scene` (same draws, same scene) plus what is in it: the background kind and the
    things as (words, colour, shape), e.g. {"background": "dotted", "things": [("small red circle",
    "red", "circle")]}; the toy captioner learns its dense and short captions from these. `boxes`:
    where each thing was drawn, its bounding box (x0, y0, x1, y1) as fractions of the side, in the
    order of `things` (the grounding tests compare detected regions with them)."""
    image, background = _background(rng, size)
    draw = ImageDraw.Draw(image)
    first, s1, c1, r1 = _thing(rng, list(COLOURS), size)
    if rng.random() < 0.4:
        cx, cy = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
        draw_shape(draw, s1, cx, cy, r1, COLOURS[c1])
        boxes = [_fraction(shape_box(s1, cx, cy, r1), size)]
        return image, _a(first), {"background": background, "things": [(first, c1, s1)], "boxes": boxes}
    second, s2, c2, r2 = _thing(rng, [c for c in COLOURS if c != c1], size)
    relation = _pick(rng, list(RELATIONS))
    dx, dy = np.array(RELATIONS[relation]) * size * 0.25
    cx, cy = size / 2 + rng.uniform(-0.03, 0.03, 2) * size
    draw_shape(draw, s1, cx + dx, cy + dy, r1, COLOURS[c1])
    draw_shape(draw, s2, cx - dx, cy - dy, r2, COLOURS[c2])
    boxes = [
        _fraction(shape_box(s1, cx + dx, cy + dy, r1), size),
        _fraction(shape_box(s2, cx - dx, cy - dy, r2), size),
    ]
    details = {"background": background, "things": [(first, c1, s1), (second, c2, s2)], "boxes": boxes}
    return image, f"{_a(first)} {relation} {_a(second)}", details


def _fraction(box: tuple[float, ...], size: int) -> tuple[float, ...]:
    return tuple(float(v) / size for v in box)


def scene_pairs(n: int, seed: int, size: int = 128) -> list[tuple[Image.Image, str]]:
    """n (scene, true caption) pairs from a fresh Generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    return [render_scene(rng, size) for _ in range(n)]


WATERMARK_TEXTS = {
    "train": ("© stock", "shutterstock", "SAMPLE", "preview", "© photo", "watermark", "istock", "proof copy"),
    "heldout": ("getty images", "alamy", "PROOF", "© 2024 studio", "dreamstime", "not for sale"),
}
TRAIN_SPOTS = (
    ((0.5, 0.5), "mm"),
    ((0.05, 0.05), "la"),
    ((0.95, 0.05), "ra"),
    ((0.05, 0.95), "ld"),
    ((0.95, 0.95), "rd"),
)
HELDOUT_FONTS = sorted(Path("/usr/share/fonts/truetype/dejavu").glob("DejaVu*.ttf"))


def _font(rng: np.random.Generator, style: str, size: int) -> ImageFont.ImageFont:
    """PIL's default font for training overlays; DejaVu fonts (if installed) for held-out ones."""
    if style == "heldout" and HELDOUT_FONTS:
        return ImageFont.truetype(str(_pick(rng, HELDOUT_FONTS)), size)
    return ImageFont.load_default(size=size)


def _random_word(rng: np.random.Generator) -> str:
    """4 to 10 random letters, lower or upper case."""
    letters = rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(4, 11)))
    word = "".join(letters)
    return word.upper() if rng.random() < 0.3 else word


def _train_overlay(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, ink) -> None:
    """Text once (centre or a corner) or tiled in straight rows, sometimes a circle or box outline."""
    text = _pick(rng, WATERMARK_TEXTS["train"]) if rng.random() < 0.5 else _random_word(rng)
    bold = int(rng.integers(0, 2))  # stroke width: PIL's default font, normal or bold
    if rng.random() < 0.4:
        font = _font(rng, "train", max(8, int(h * rng.uniform(0.05, 0.1))))
        for y in range(0, h, max(10, h // 5)):
            draw.text((w * rng.uniform(0, 0.1), y), f"{text}   " * 4, font=font, fill=ink, stroke_width=bold)
    else:
        font = _font(rng, "train", max(10, int(h * rng.uniform(0.08, 0.2))))
        (x, y), anchor = _pick(rng, TRAIN_SPOTS)
        x, y = x + rng.uniform(-0.03, 0.03), y + rng.uniform(-0.03, 0.03)
        draw.text((w * x, h * y), text, font=font, fill=ink, anchor=anchor, stroke_width=bold)
    if rng.random() < 0.5:
        r = min(w, h) * rng.uniform(0.08, 0.15)
        cx, cy = w * rng.uniform(0.2, 0.8), h * rng.uniform(0.2, 0.8)
        box = (cx - r, cy - r, cx + r, cy + r)
        outline = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        outline(box, outline=ink, width=max(2, int(r / 5)))


def _heldout_overlay(image_size: tuple[int, int], rng: np.random.Generator, ink) -> Image.Image:
    """Text tiled diagonally in a DejaVu font, sometimes a diamond logo in the lower right."""
    w, h = image_size
    side = int(1.5 * max(w, h))
    tiles = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tiles)
    text = _pick(rng, WATERMARK_TEXTS["heldout"])
    font = _font(rng, "heldout", max(9, int(h * rng.uniform(0.06, 0.12))))
    step = max(12, h // 4)
    for row, y in enumerate(range(0, side, step)):
        draw.text(((row % 2) * step, y), f"{text}    " * 8, font=font, fill=ink)
    tiles = tiles.rotate(float(rng.choice([-1, 1]) * rng.uniform(25, 45)))
    left, top = (side - w) // 2, (side - h) // 2
    layer = tiles.crop((left, top, left + w, top + h))
    if rng.random() < 0.5:
        s = min(w, h) * 0.1
        cx, cy = w * rng.uniform(0.7, 0.9), h * rng.uniform(0.7, 0.9)
        diamond = [(cx, cy - s), (cx + s, cy), (cx, cy + s), (cx - s, cy)]
        ImageDraw.Draw(layer).polygon(diamond, outline=ink, width=2)
    return layer


def _train_opacity(rng: np.random.Generator) -> int:
    """Alpha 70-109 or 150-189: training never sees the held-out overlays' 110-149."""
    return int(rng.integers(70, 110) + 80 * rng.integers(0, 2))


def add_watermark(image: Image.Image, rng: np.random.Generator, style: str = "train") -> Image.Image:
    """A semi-transparent black or white text/logo overlay.

    `heldout` overlays share nothing specific with `train` ones: other texts, fonts, placement (tiled
    diagonally at 25-45 degrees; training text is placed once or in straight rows, tilted at most
    15 degrees), opacity and logo shape.
    """
    shade = int(rng.integers(0, 2)) * 255
    if style == "train":
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        _train_overlay(ImageDraw.Draw(layer), rng, *image.size, (shade,) * 3 + (_train_opacity(rng),))
        layer = layer.rotate(float(rng.uniform(-15, 15))) if rng.random() < 0.5 else layer
    elif style == "heldout":
        layer = _heldout_overlay(image.size, rng, (shade,) * 3 + (int(rng.integers(110, 150)),))
    else:
        raise ValueError(f"unknown watermark style {style!r}: use 'train' or 'heldout'")
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
