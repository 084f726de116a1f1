"""The output record schema: column names, types and meanings, versioned.

Every Parquet writer calls `validate_table`; the README's column table is generated from `FIELDS`.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

STATUSES = (
    "success",
    "failed_to_download",
    "failed_to_decode",
    "rejected_by_resizer",
    "blocked",
    "invalid_input",
)


def _field(name: str, type_: pa.DataType, group: str, doc: str) -> pa.Field:
    return pa.field(name, type_, nullable=True, metadata={"group": group, "doc": doc})


DATA_TYPE_NAMES = (
    "left_rotate", "right_rotate", "patch_and_reshuffle", "crop_and_zoom", "vertical_flip", "mixup", "cutmix",
    "gaussian_noise", "defocus_blur", "snow", "high_brightness", "low_brightness", "high_contrast",
    "low_contrast", "jpeg_compress", "pencil_sketch", "cartoon", "embroidery", "plushie", "graffiti", "tattoo",
    "sculpture", "origami", "typographic", "multiple_same", "multiple_different", "tiger_stripes", "normal_photo",
)  # fmt: skip

FIELDS: tuple[pa.Field, ...] = (
    _field(
        "uid",
        pa.string(),
        "identity",
        "Stable id: 64-bit BLAKE2b of url and caption, hex. Equal for equal rows.",
    ),
    _field("url", pa.string(), "identity", "Image URL as given in the input."),
    _field(
        "caption", pa.string(), "identity", "Caption (alt-text) as given; invalid UTF-8 replaced by U+FFFD."
    ),
    _field("source_file", pa.string(), "identity", "Input file the row came from."),
    _field("source_row", pa.int64(), "identity", "0-based row number in `source_file`."),
    _field(
        "status",
        pa.string(),
        "download",
        "One of: " + ", ".join(f"`{s}`" for s in STATUSES) + ".",
    ),
    _field(
        "error_kind",
        pa.string(),
        "download",
        "Why a row failed, machine-readable: `dns`, `timeout`, `http_404`, `redirect_loop`, "
        "`connection`, `private_address`, `opt_out`, `decode`, `too_small`, `invalid_url`, ...",
    ),
    _field("error_message", pa.string(), "download", "The underlying error text."),
    _field("width", pa.int32(), "download", "Width of the stored (resized) image, px."),
    _field("height", pa.int32(), "download", "Height of the stored (resized) image, px."),
    _field("original_width", pa.int32(), "download", "Width of the downloaded image, px."),
    _field("original_height", pa.int32(), "download", "Height of the downloaded image, px."),
    _field("image_bytes", pa.int64(), "download", "Size of the downloaded image file, bytes."),
    _field(
        "jpeg_quality",
        pa.int16(),
        "download",
        "Estimated IJG quality (1-100) of a downloaded JPEG; null otherwise.",
    ),
    _field("sha256", pa.string(), "download", "SHA-256 of the downloaded image bytes, hex."),
    _field(
        "tar",
        pa.string(),
        "download",
        "Webdataset tar holding the stored image, relative to the output folder.",
    ),
    _field("member", pa.string(), "download", "Member name of the image inside `tar`."),
    _field("aspect_ratio", pa.float32(), "image", "Long side / short side of the downloaded image (>= 1)."),
    _field("phash", pa.uint64(), "image", "64-bit perceptual hash (imagehash.phash) of the stored image."),
    _field(
        "sharpness",
        pa.float32(),
        "image",
        "Variance of the Laplacian of the grey image at 256 px (low = blurry).",
    ),
    _field("brightness", pa.float32(), "image", "Mean luma in [0, 1]."),
    _field("contrast", pa.float32(), "image", "Standard deviation of luma in [0, 1]."),
    _field("colourfulness", pa.float32(), "image", "Hasler-Suesstrunk colourfulness (0 = grey)."),
    _field(
        "near_uniform", pa.bool_(), "image", "CAPro: >= 80 % of pixels one grey value after a 64x64 resize."
    ),
    _field(
        "text_area_ratio",
        pa.float32(),
        "image",
        "Share of the image covered by text boxes found by RapidOCR (sum of box areas, capped at 1); "
        "0 when the gated check finds no text; null with `annotate.ocr=off`.",
    ),
    _field(
        "ocr_text", pa.string(), "image", "Text read by RapidOCR, in reading order, at most 500 characters."
    ),
    _field("caption_chars", pa.int32(), "caption", "Caption length in characters (after stripping)."),
    _field("caption_words", pa.int32(), "caption", "Caption length in whitespace-separated words."),
    _field(
        "caption_fixed",
        pa.string(),
        "caption",
        "The caption repaired by ftfy (mojibake, HTML entities, odd characters).",
    ),
    _field(
        "caption_boilerplate",
        pa.bool_(),
        "caption",
        "Alt-text that says nothing: a file name (`IMG_1234.jpg`), a resolution (`1920x1080`), a generic "
        "word (`image`, `photo`), or empty after cleaning.",
    ),
    _field("lang", pa.string(), "caption", "ISO 639-1 language of the caption (langid)."),
    _field(
        "caption_shared_count",
        pa.int32(),
        "caption",
        "Images in the whole dataset whose caption is the same text (case and spacing ignored); a global stage.",
    ),
    _field("lang_score", pa.float32(), "caption", "Probability of `lang`, in [0, 1]."),
    _field(
        "clip_score",
        pa.float32(),
        "scores",
        "Cosine of the primary CLIP model's image and caption embeddings (`models.clip[0]`); other "
        "models add `clip_score_<alias>`. Embeddings: `OUT/embeddings/<alias>/`.",
    ),
    _field(
        "nsfw_score",
        pa.float32(),
        "scores",
        "Likelihood that the image is NSFW, in [0, 1] (NudeNet's highest exposed-part confidence, or "
        "LAION's punsafe head); LAION keeps rows under 0.5.",
    ),
    _field(
        "nsfw_classes", pa.list_(pa.string()), "scores", "Body-part classes NudeNet detected (NudeNet only)."
    ),
    _field(
        "watermark_score",
        pa.float32(),
        "scores",
        "P(watermark) from LAION's detector construction (softmax class 0); LAION keeps rows under 0.8.",
    ),
    _field(
        "aesthetic_score",
        pa.float32(),
        "scores",
        "LAION's linear aesthetic head on ViT-L/14 image embeddings (1-10); null without an L/14 model "
        "(the manifest says why).",
    ),
    _field(
        "data_type",
        pa.string(),
        "scores",
        "Most likely visual data type (27 types of Udandarao et al. + `normal_photo`), zero-shot with the "
        "primary CLIP model.",
    ),
    _field(
        "data_type_scores",
        pa.struct([pa.field(name, pa.float32()) for name in DATA_TYPE_NAMES]),
        "scores",
        "Probability of every data type (softmax of 100 x cosine); keep them: zero-shot informedness is ~0.5.",
    ),
    _field(
        "laion_basic_ok",
        pa.bool_(),
        "rules",
        "LAION-5B basic rule: caption >= 5 chars and image file >= 5 KB (CLIP threshold comes with CLIP).",
    ),
    _field(
        "datacomp_basic_ok",
        pa.bool_(),
        "rules",
        "DataComp basic filter: English, > 2 words, > 5 chars, short side >= 200 px, aspect ratio <= 3.",
    ),
    _field(
        "align_ok",
        pa.bool_(),
        "rules",
        "ALIGN's rules: short side > 200 px, aspect ratio < 3, 3..20 words, caption shared by at most 10 "
        "images (the last one filled by the global caption-sharing stage).",
    ),
    _field(
        "dup_exact_group",
        pa.string(),
        "dedup",
        "Exact duplicates: rows with the same image bytes (sha256), the same normalised URL or the same "
        "(URL, caption) share this id, the smallest uid among them (a row's own uid when it has no twin).",
    ),
    _field(
        "dup_image_group",
        pa.string(),
        "dedup",
        "Near-duplicate images: `phash` within Hamming distance `dedup.phash_distance`, joined transitively; "
        "the smallest uid of the group; null without an image.",
    ),
    _field(
        "dup_caption_group",
        pa.string(),
        "dedup",
        "Near-duplicate captions: MinHash LSH over word shingles at Jaccard >= `dedup.caption_jaccard`; the "
        "smallest uid of the group; null without a caption.",
    ),
    _field(
        "dup_semantic_group",
        pa.string(),
        "dedup",
        "SemDeDup: within a k-means cluster of the primary CLIP image embeddings, rows whose cosine exceeds "
        "1 - `dedup.semantic_eps`, joined transitively; the smallest uid of the group; null without an embedding.",
    ),
    _field(
        "dup_semantic_cluster",
        pa.int32(),
        "dedup",
        "The row's spherical k-means cluster over the primary CLIP image embeddings (SemDeDup's first step).",
    ),
    _field(
        "is_duplicate",
        pa.bool_(),
        "dedup",
        "True for every row but one of each duplicate group (kinds in `dedup.mark`, joined); the kept row has "
        "the highest `clip_score`, then the smallest uid.",
    ),
    _field(
        "duplicate_kinds",
        pa.list_(pa.string()),
        "dedup",
        "Why a duplicate row is one: the kinds (`exact`, `image`, `caption`, `semantic`) whose group it "
        "shares with other rows; empty for kept and unique rows.",
    ),
    _field(
        "duplicate_of",
        pa.string(),
        "dedup",
        "uid of the row kept in this row's duplicate group (its own uid when it is the kept one); null when "
        "the row has no duplicate.",
    ),
    _field(
        "recaption",
        pa.string(),
        "recaption",
        "Dense caption of the image by a vision-language model (`recaption.model`, prompt "
        "`recaption_prompt`); null without an image or when recaptioning is off (`pairsmith recaption OUT` "
        "adds it later).",
    ),
    _field(
        "recaption_model",
        pa.string(),
        "recaption",
        "The captioner that wrote `recaption`: a Hugging Face repo id, a local folder, or `toy`.",
    ),
    _field(
        "recaption_prompt",
        pa.string(),
        "recaption",
        "Prompt of `recaption`: preset `dense` or `dense_with_alt` (PixArt-alpha's), `short`, `none` (the "
        "image alone), or `custom` (`recaption.prompt_text`).",
    ),
    _field(
        "recaption_clip_score",
        pa.float32(),
        "recaption",
        "Cosine of the primary CLIP model's image and recaption embeddings (`clip_score` for the recaption).",
    ),
    _field(
        "recaption_alt_similarity",
        pa.float32(),
        "recaption",
        "Cosine of the primary CLIP model's text embeddings of the alt-text (`caption`) and of `recaption`: "
        "low where the alt-text says something else than what the captioner sees.",
    ),
    _field("recaption_words", pa.int32(), "recaption", "Recaption length in whitespace-separated words."),
    _field(
        "caption_nouns",
        pa.int32(),
        "recaption",
        "Nouns in the alt-text (PixArt-alpha's concept density: 6.4 per LAION alt-text), by the offline "
        "heuristic tagger of `captioners/nouns.py`; every row with a caption.",
    ),
    _field(
        "recaption_nouns",
        pa.int32(),
        "recaption",
        "Nouns in `recaption` (PixArt-alpha: ~21-29 per dense caption), same tagger.",
    ),
    _field(
        "corruption_score",
        pa.float32(),
        "corruption",
        "Probability that caption and image do not match, in [0, 1]: the local false discovery rate of "
        "`corruption_evidence` against decoys (each row's image with another row's caption); its mean over "
        "any subset estimates that subset's corruption ratio. Null without an image and a caption.",
    ),
    _field(
        "corruption_evidence",
        pa.float32(),
        "corruption",
        "Weighted mean of the components (0 looks matched, 1 like a random pair): clip 2, caption rank 1, "
        "image rank 1, recaption 1 (see `filters/corruption.py`); orders rows within a score.",
    ),
    _field(
        "corruption_clip_percentile",
        pa.float32(),
        "corruption",
        "Percentile of the row's `clip_score` within the dataset (primary CLIP model), in [0, 1].",
    ),
    _field(
        "corruption_caption_rank",
        pa.float32(),
        "corruption",
        "Image-to-text retrieval in a random block of `corruption.block_size` + 1 rows: the share of the "
        "other captions the image is closer to than to its own (0 = own caption first).",
    ),
    _field(
        "corruption_image_rank",
        pa.float32(),
        "corruption",
        "Text-to-image retrieval in the same block: the share of the other images the caption is closer "
        "to than to its own (0 = own image first).",
    ),
    _field(
        "corruption_recaption_percentile",
        pa.float32(),
        "corruption",
        "Percentile of `recaption_alt_similarity` (alt-text vs recaption) within the dataset; null "
        "without a recaption.",
    ),
    _field(
        "corruption_flags",
        pa.list_(pa.string()),
        "corruption",
        "Signals that fired: by that signal alone the pair is no better matched than the best 10 % of "
        "random pairs: `clip_low`, `caption_not_retrieved`, `image_not_retrieved`, `recaption_disagrees`.",
    ),
    _field(
        "injected_corruption",
        pa.string(),
        "corruption",
        "Set only by `pairsmith corrupt` (controlled corruption): `swap` or `rewrite` where this row's "
        "caption was replaced; `uid` stays the source row's, so a join with the source gives the original.",
    ),
    _field("run_id", pa.string(), "provenance", "Id of the run that wrote the row."),
    _field("config_hash", pa.string(), "provenance", "Hash of the run config that affects the output."),
    _field("pipeline_version", pa.string(), "provenance", "pairsmith version that wrote the row."),
)

CORE_NAMES = frozenset(f.name for f in FIELDS)


class SchemaMismatchError(ValueError):
    """A table does not follow the record contract: a bug in the writer, never the user's fault."""


def record_schema(model_fields: list[pa.Field] | tuple = (), extra: pa.Schema | None = None) -> pa.Schema:
    """The core fields, then per-model fields (`clip_score_<alias>`), then the input's extra columns."""
    fields = list(FIELDS) + [f for f in model_fields if f.name not in CORE_NAMES]
    taken = {f.name for f in fields}
    if extra is not None:
        fields += [f for f in extra if f.name not in taken]
    return pa.schema(fields, metadata={"pairsmith_schema_version": SCHEMA_VERSION})


def validate_table(table: pa.Table) -> None:
    """Raise SchemaMismatchError unless `table` starts with exactly the core columns and types."""
    names = table.column_names[: len(FIELDS)]
    expected = [f.name for f in FIELDS]
    if names != expected:
        missing = [n for n in expected if n not in table.column_names]
        raise SchemaMismatchError(f"columns differ from the record contract; missing={missing}, got={names}")
    for field in FIELDS:
        got = table.schema.field(field.name).type
        if got != field.type:
            raise SchemaMismatchError(f"column {field.name!r} has type {got}, contract says {field.type}")
    bad = set(table.column("status").to_pylist()) - set(STATUSES)
    if bad:
        raise SchemaMismatchError(f"unknown status values {sorted(map(str, bad))}")
    if table.column("status").null_count:
        raise SchemaMismatchError("every row needs a status")


def markdown_table() -> str:
    """The README's column table, generated from FIELDS."""
    lines = ["| column | type | group | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{f.name}` | {f.type} | {f.metadata[b'group'].decode()} | {f.metadata[b'doc'].decode()} |"
        for f in FIELDS
    ]
    return "\n".join(lines)


README_START, README_END = "<!-- record-contract:start -->", "<!-- record-contract:end -->"


def update_readme(path: str) -> None:
    """Rewrite the table between the README's record-contract markers."""
    with open(path) as f:
        text = f.read()
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    with open(path, "w") as f:
        f.write(f"{head}{README_START}\n{markdown_table()}\n{README_END}{tail}")


if __name__ == "__main__":  # `python -m pairsmith.schemas.record README.md` regenerates the README table
    import sys

    update_readme(sys.argv[1])
