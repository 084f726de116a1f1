"""Each annotator on real inputs: scikit-image's photos and real captions."""

import io

import pytest
from PIL import Image
from skimage import data

from pairsmith.filters.base import Batch
from pairsmith.filters.basic_rules import BasicRules
from pairsmith.filters.caption_quality import CaptionQuality
from pairsmith.filters.caption_stats import CaptionStats
from pairsmith.filters.image_geometry import AspectRatio
from pairsmith.filters.language import LanguageId
from pairsmith.filters.phash import PerceptualHash


def _jpeg_roundtrip(image: Image.Image, quality: int, scale: float = 1.0) -> Image.Image:
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _batch(captions, images=None, **columns):
    images = images if images is not None else [None] * len(captions)
    return Batch({"caption": captions, **columns}, images)


def test_phash_is_stable_under_resize_and_recompression_and_differs_between_photos():
    astronaut = Image.fromarray(data.astronaut())
    coffee = Image.fromarray(data.coffee())
    images = [astronaut, _jpeg_roundtrip(astronaut, 40, 0.5), coffee, None]
    hashes = PerceptualHash()(_batch([""] * 4, images))["phash"].to_pylist()
    assert hashes[3] is None
    assert (hashes[0] ^ hashes[1]).bit_count() <= 6
    assert (hashes[0] ^ hashes[2]).bit_count() >= 20


def test_caption_stats_counts_after_stripping():
    out = CaptionStats()(_batch(["  a cup of coffee ", "", None, "ein\tHund"]))
    assert out["caption_chars"].to_pylist() == [15, 0, 0, 8]
    assert out["caption_words"].to_pylist() == [4, 0, 0, 2]


def test_language_id_on_real_captions():
    ann = LanguageId()
    ann.setup()
    captions = [
        "a cup of coffee on a wooden table next to a newspaper",
        "eine Tasse Kaffee auf einem Holztisch neben einer Zeitung",
        "une tasse de café sur une table en bois à côté d'un journal",
        "1920x1080",
        None,
    ]
    out = ann(_batch(captions))
    assert out["lang"].to_pylist() == ["en", "de", "fr", None, None]
    scores = out["lang_score"].to_pylist()
    assert all(0.9 <= s <= 1.0 for s in scores[:3])


def test_aspect_ratio_from_original_size():
    out = AspectRatio()(_batch([""] * 3, original_width=[800, 100, None], original_height=[100, 100, None]))
    assert out["aspect_ratio"].to_pylist() == [8.0, 1.0, None]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # caption chars, words, lang, w, h, aspect, bytes -> laion, datacomp, align
        ((40, 8, "en", 640, 480, 1.33, 60_000), (True, True, True)),
        ((4, 1, "en", 640, 480, 1.33, 60_000), (False, False, False)),  # too short for all three
        ((40, 8, "en", 640, 480, 1.33, 4_000), (False, True, True)),  # under LAION's 5 KB
        ((40, 8, "de", 640, 480, 1.33, 60_000), (True, False, True)),  # DataComp wants English
        ((40, 8, "en", 200, 300, 1.5, 60_000), (True, True, False)),  # ALIGN: short side must be > 200
        ((40, 8, "en", 900, 300, 3.0, 60_000), (True, True, False)),  # ALIGN: aspect < 3, DataComp <= 3
        ((120, 25, "en", 640, 480, 1.33, 60_000), (True, True, False)),  # ALIGN: > 20 words
        ((40, 8, "en", None, None, None, None), (None, None, None)),  # no image: unknown
    ],
)
def test_basic_rules(row, expected):
    chars, words, lang, w, h, aspect, nbytes = row
    batch = _batch(
        ["x"],
        caption_chars=[chars],
        caption_words=[words],
        lang=[lang],
        original_width=[w],
        original_height=[h],
        aspect_ratio=[aspect],
        image_bytes=[nbytes],
    )
    out = BasicRules()(batch)
    assert (
        out["laion_basic_ok"][0].as_py(),
        out["datacomp_basic_ok"][0].as_py(),
        out["align_ok"][0].as_py(),
    ) == expected


@pytest.mark.parametrize(
    ("caption", "boilerplate"),
    [
        ("IMG_1234.JPG", True),
        ("DSC_0042", True),
        ("holiday-photo.jpeg", True),
        ("1920x1080", True),
        ("1920 × 1080 px", True),
        ("image", True),
        ("Photo", True),
        ("untitled", True),
        ("  --- 123 ---  ", True),
        ("", True),
        (None, True),
        ("a photo of a dog on a beach", False),
        ("Sunset over the harbour, 2019", False),
        ("image of the week: a red fox", False),
    ],
)
def test_boilerplate_alt_text(caption, boilerplate):
    out = CaptionQuality()(_batch([caption]))
    assert out["caption_boilerplate"][0].as_py() is boilerplate


def test_ftfy_repairs_mojibake_and_entities():
    out = CaptionQuality()(_batch(["cafÃ© &amp; croissant", "fine as it is", None]))
    assert out["caption_fixed"].to_pylist() == ["café & croissant", "fine as it is", None]
