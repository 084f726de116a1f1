"""The synthetic world of pairsmith's toy models: coloured shapes with true captions.

The toy zoo is trained on it, the demo serves scenes from it, and tests hold out fresh scenes from it,
so that a newcomer's toy CLIP scores mean something. Deterministic for a given `numpy` Generator.
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
}
SHAPES = ("circle", "square", "triangle", "star")
RELATIONS = {"above": (0, -1), "below": (0, 1), "to the left of": (-1, 0), "to the right of": (1, 0)}
BACKGROUNDS = ("plain", "striped", "dotted")


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        angle = -np.pi / 2 + k * np.pi / 5
        radius = r if k % 2 == 0 else r * 0.45
        points.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle)))
    return points


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, colour) -> None:
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
    base = tuple(int(v) for v in rng.integers(200, 256, 3))
    image = Image.new("RGB", (size, size), base)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    draw = ImageDraw.Draw(image)
    line = tuple(max(0, v - 40) for v in base)
    step = max(4, size // 12)
    if kind == "striped":
        for x in range(0, size, step):
            draw.line([(x, 0), (x, size)], fill=line, width=max(1, step // 4))
    elif kind == "dotted":
        for x in range(step // 2, size, step):
            for y in range(step // 2, size, step):
                draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=line)
    return image, kind


def _pick(rng: np.random.Generator, options):
    return options[rng.integers(len(options))]


def render_scene(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, str]:
    """A scene of one or two shapes and its true caption, e.g. 'a red circle above a blue square'."""
    image, _ = _background(rng, size)
    draw = ImageDraw.Draw(image)
    colours = list(COLOURS)
    c1, s1 = _pick(rng, colours), _pick(rng, SHAPES)
    if rng.random() < 0.4:
        big = rng.random() < 0.5
        r = size * (rng.uniform(0.28, 0.36) if big else rng.uniform(0.12, 0.17))
        cx, cy = (size / 2 + rng.uniform(-0.1, 0.1) * size for _ in range(2))
        draw_shape(draw, s1, cx, cy, r, COLOURS[c1])
        return image, f"a {'large' if big else 'small'} {c1} {s1}"
    c2 = _pick(rng, [c for c in colours if c != c1])
    s2 = _pick(rng, SHAPES)
    relation = _pick(rng, list(RELATIONS))
    dx, dy = RELATIONS[relation]
    r = size * rng.uniform(0.12, 0.16)
    offset = size * 0.25
    jitter = rng.uniform(-0.05, 0.05, 2) * size
    draw_shape(
        draw, s1, size / 2 + dx * offset + jitter[0], size / 2 + dy * offset + jitter[1], r, COLOURS[c1]
    )
    draw_shape(
        draw, s2, size / 2 - dx * offset + jitter[0], size / 2 - dy * offset + jitter[1], r, COLOURS[c2]
    )
    return image, f"{_a(c1)} {c1} {s1} {relation} {_a(c2)} {c2} {s2}"


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def scene_pairs(n: int, seed: int, size: int = 128) -> list[tuple[Image.Image, str]]:
    rng = np.random.default_rng(seed)
    return [render_scene(rng, size) for _ in range(n)]


def swap_captions(
    captions: list[str], fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[bool]]:
    """Exchange captions between random pairs of rows (Chen et al.'s 'swap' corruption).

    About `fraction` of the rows end up with another row's caption (an even count; pairs whose
    captions are equal are not swapped); the mask marks both sides of every swap.
    """
    out, swapped = list(captions), [False] * len(captions)
    order = rng.permutation(len(captions)).tolist()
    wanted = int(round(fraction * len(captions) / 2))
    done = 0
    while done < wanted and len(order) >= 2:
        i, j = order.pop(), order.pop()
        if out[i] == out[j]:
            continue
        out[i], out[j] = out[j], out[i]
        swapped[i] = swapped[j] = True
        done += 1
    return out, swapped


WATERMARK_TEXTS = {
    "train": ("© stock", "shutterstock", "SAMPLE", "preview", "© photo", "watermark"),
    "heldout": ("getty images", "alamy", "PROOF", "© 2024 studio", "dreamstime", "not for sale"),
}
HELDOUT_FONTS = sorted(Path("/usr/share/fonts/truetype/dejavu").glob("DejaVu*.ttf"))


def _font(rng: np.random.Generator, style: str, size: int) -> ImageFont.ImageFont:
    if style == "heldout" and HELDOUT_FONTS:
        return ImageFont.truetype(str(HELDOUT_FONTS[rng.integers(len(HELDOUT_FONTS))]), size)
    return ImageFont.load_default(size=size)


def add_watermark(image: Image.Image, rng: np.random.Generator, style: str = "train") -> Image.Image:
    """A semi-transparent text or logo overlay. `heldout` overlays differ from `train` ones in text,
    font, placement (tiled diagonally instead of once), opacity and logo shape."""
    w, h = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shade = int(rng.integers(0, 2)) * 255
    if style == "train":
        alpha = int(rng.integers(90, 180))
        text = WATERMARK_TEXTS["train"][rng.integers(len(WATERMARK_TEXTS["train"]))]
        font = _font(rng, style, max(10, int(h * rng.uniform(0.1, 0.2))))
        draw.text(
            (w * rng.uniform(0.05, 0.5), h * rng.uniform(0.1, 0.8)),
            text,
            font=font,
            fill=(shade,) * 3 + (alpha,),
        )
        if rng.random() < 0.5:
            r = min(w, h) * rng.uniform(0.08, 0.15)
            cx, cy = w * rng.uniform(0.2, 0.8), h * rng.uniform(0.2, 0.8)
            draw.ellipse(
                (cx - r, cy - r, cx + r, cy + r), outline=(shade,) * 3 + (alpha,), width=max(2, int(r / 5))
            )
    else:
        alpha = int(rng.integers(60, 140))
        text = WATERMARK_TEXTS["heldout"][rng.integers(len(WATERMARK_TEXTS["heldout"]))]
        font = _font(rng, style, max(9, int(h * rng.uniform(0.06, 0.12))))
        step_x, step_y = max(20, w // 2), max(12, h // 4)
        for row, y in enumerate(range(-step_y, h, step_y)):
            for x in range(-step_x + (row % 2) * step_x // 2, w, step_x):
                draw.text((x, y), text, font=font, fill=(shade,) * 3 + (alpha,))
        if rng.random() < 0.5:
            s = min(w, h) * 0.1
            cx, cy = w * rng.uniform(0.7, 0.9), h * rng.uniform(0.7, 0.9)
            draw.polygon(
                [(cx, cy - s), (cx + s, cy), (cx, cy + s), (cx - s, cy)],
                outline=(shade,) * 3 + (alpha,),
                width=2,
            )
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
