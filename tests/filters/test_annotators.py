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
    # fastText answers for any non-empty text, as DataComp asks it: "1920x1080" gets a label too
    fasttext = out["lang_fasttext"].to_pylist()
    assert fasttext[:3] == ["en", "de", "fr"] and fasttext[3] is not None and fasttext[4] is None


def test_aspect_ratio_from_original_size():
    out = AspectRatio()(_batch([""] * 3, original_width=[800, 100, None], original_height=[100, 100, None]))
    assert out["aspect_ratio"].to_pylist() == [8.0, 1.0, None]


SENTENCE = "a cup of coffee on a wooden table next to a newspaper"  # 11 words


def _rules(caption, lang_fasttext, w, h, nbytes):
    """BasicRules on one row, its other inputs as CaptionStats and AspectRatio compute them."""
    text = (caption or "").strip()
    batch = _batch(
        [caption],
        caption_chars=[len(text)],
        caption_words=[len(text.split())],
        lang_fasttext=[lang_fasttext],
        original_width=[w],
        original_height=[h],
        aspect_ratio=[max(w, h) / min(w, h) if w and h else None],
        image_bytes=[nbytes],
    )
    out = BasicRules()(batch)
    return tuple(out[name][0].as_py() for name in ("laion_basic_ok", "datacomp_basic_ok", "align_ok"))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # caption, lang_fasttext, original w, h, bytes -> laion, datacomp, align
        ((SENTENCE, "en", 640, 480, 60_000), (True, True, True)),
        (("cup", "en", 640, 480, 60_000), (False, False, False)),  # too short for all three
        ((SENTENCE, "en", 640, 480, 4_000), (False, True, True)),  # under LAION's 5 KB
        ((SENTENCE, "de", 640, 480, 60_000), (True, False, True)),  # DataComp wants English (fastText)
        ((SENTENCE, "en", 200, 300, 60_000), (True, True, False)),  # ALIGN: short side must be > 200
        ((SENTENCE, "en", 900, 300, 60_000), (True, True, False)),  # ALIGN: aspect < 3, DataComp <= 3
        ((" ".join(["word"] * 25), "en", 640, 480, 60_000), (True, True, False)),  # ALIGN: > 20 words
        ((SENTENCE, "en", None, None, None), (None, None, None)),  # no image: unknown
    ],
)
def test_basic_rules(row, expected):
    assert _rules(*row) == expected


@pytest.mark.parametrize(
    ("caption", "lang_fasttext", "size", "ok"),
    [
        ("a b c", "en", (640, 480), False),  # 3 words but 5 characters: DataComp wants > 5
        ("a b cd", "en", (640, 480), True),  # 6 characters, 3 words
        ("a dog", "en", (640, 480), False),  # 2 words: DataComp wants > 2
        ("one two\nthree", "en", (640, 480), True),  # str.split() splits on any whitespace
        ("  a b c  ", "en", (640, 480), True),  # DataComp counts the raw text: 9 characters
        ("\ta b c", "en", (640, 480), True),  # 6 raw characters (5 stripped: pairsmith's caption_chars)
        ("   dog   ", "en", (640, 480), False),  # padded to 9 characters, but 1 word
        (SENTENCE, "en", (600, 200), True),  # min side exactly 200, aspect exactly 3.0
        (SENTENCE, "en", (200, 600), True),  # the same upright
        (SENTENCE, "en", (601, 200), False),  # aspect just over 3
        (SENTENCE, "en", (600, 199), False),  # min side 199
        (SENTENCE, "en", (0, 480), False),  # a zero side: no division, just too small
        (SENTENCE, "fr", (640, 480), False),  # not English by fastText
        (SENTENCE, None, (640, 480), False),  # no language (empty caption)
        (None, None, (640, 480), False),  # no caption
    ],
)
def test_datacomp_basic_counts_as_datacomp_does(caption, lang_fasttext, size, ok):
    assert _rules(caption, lang_fasttext, *size, 60_000)[1] is ok


def test_datacomp_basic_reads_fasttext_not_lang():
    ann = LanguageId()
    ann.setup()
    captions = ["ein Hund auf einer Wiese", "a red bicycle leaning on a wall", "  a b c  "]
    lang = ann(_batch(captions))["lang_fasttext"].to_pylist()
    assert lang == ["de", "en", "en"]
    flags = [_rules(c, lf, 640, 480, 60_000)[1] for c, lf in zip(captions, lang, strict=True)]
    assert flags == [False, True, True]


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
