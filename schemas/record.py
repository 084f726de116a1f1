"""The output record schema: column names, types and meanings, versioned.

The contract is assembled here: the identity and download columns and those of the global stages are
declared in this module, every annotator's columns in its own module (`filters.registry` collects
them). Columns go group by group (`GROUPS`); inside a group, the annotators' columns in the registry's
order, then the stages'. Every Parquet writer calls `validate_table`; the README's tables are generated
(`python -m pairsmith.schemas.record README.md`).
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


def column(name: str, type_: pa.DataType, group: str, doc: str) -> pa.Field:
    """A record column: nullable, with its group and one-line meaning as field metadata."""
    return pa.field(name, type_, nullable=True, metadata={"group": group, "doc": doc})


def group_of(field: pa.Field) -> str:
    return field.metadata[b"group"].decode()


GROUPS = (
    "identity", "download", "image", "caption", "scores", "rules", "dedup", "recaption", "corruption", "provenance"
)  # fmt: skip

IDENTITY_FIELDS: tuple[pa.Field, ...] = (
    column(
        "uid",
        pa.string(),
        "identity",
        "Stable id: 64-bit BLAKE2b of url and caption, hex. Equal for equal rows.",
    ),
    column("url", pa.string(), "identity", "Image URL as given in the input."),
    column(
        "caption", pa.string(), "identity", "Caption (alt-text) as given; invalid UTF-8 replaced by U+FFFD."
    ),
    column("source_file", pa.string(), "identity", "Input file the row came from."),
    column("source_row", pa.int64(), "identity", "0-based row number in `source_file`."),
)

DOWNLOAD_FIELDS: tuple[pa.Field, ...] = (
    column(
        "status",
        pa.string(),
        "download",
        "One of: " + ", ".join(f"`{s}`" for s in STATUSES) + ".",
    ),
    column(
        "error_kind",
        pa.string(),
        "download",
        "Why a row failed, machine-readable: `dns`, `timeout`, `deadline`, `connection`, `http_404` "
        "(`http_NNN`), `redirect_loop`, `tls`, `too_large`, `private_address`, `scheme`, `opt_out`, "
        "`decode`, `too_small`, `invalid_url`, `bad_line`, ...",
    ),
    column("error_message", pa.string(), "download", "The underlying error text."),
    column("width", pa.int32(), "download", "Width of the stored (resized) image, px."),
    column("height", pa.int32(), "download", "Height of the stored (resized) image, px."),
    column("original_width", pa.int32(), "download", "Width of the downloaded image, px."),
    column("original_height", pa.int32(), "download", "Height of the downloaded image, px."),
    column("image_bytes", pa.int64(), "download", "Size of the downloaded image file, bytes."),
    column(
        "jpeg_quality",
        pa.int16(),
        "download",
        "Estimated IJG quality (1-100) of a downloaded JPEG; null otherwise.",
    ),
    column("sha256", pa.string(), "download", "SHA-256 of the downloaded image bytes, hex."),
    column(
        "tar",
        pa.string(),
        "download",
        "Webdataset tar holding the stored image, relative to the output folder.",
    ),
    column("member", pa.string(), "download", "Member name of the image inside `tar`."),
)

# The global stages' columns (caption sharing, dedup, corruption) and the run's provenance.
STAGE_FIELDS: tuple[pa.Field, ...] = (
    column(
        "caption_shared_count",
        pa.int32(),
        "caption",
        "Images in the whole dataset whose caption is the same text (case and spacing ignored); a global stage.",
    ),
    column(
        "dup_exact_group",
        pa.string(),
        "dedup",
        "Exact duplicates: rows with the same image bytes (sha256), the same normalised URL or the same "
        "(URL, caption) share this id, the smallest uid among them (a row's own uid when it has no twin).",
    ),
    column(
        "dup_image_group",
        pa.string(),
        "dedup",
        "Near-duplicate images: `phash` within Hamming distance `dedup.phash_distance`, joined transitively; "
        "the smallest uid of the group; null without an image.",
    ),
    column(
        "dup_caption_group",
        pa.string(),
        "dedup",
        "Near-duplicate captions: MinHash LSH over word shingles at Jaccard >= `dedup.caption_jaccard`; the "
        "smallest uid of the group; null without a caption.",
    ),
    column(
        "dup_semantic_group",
        pa.string(),
        "dedup",
        "SemDeDup: within a k-means cluster of the primary CLIP image embeddings, rows whose cosine exceeds "
        "1 - `dedup.semantic_eps`, joined transitively; the smallest uid of the group; null without an embedding.",
    ),
    column(
        "dup_semantic_cluster",
        pa.int32(),
        "dedup",
        "The row's spherical k-means cluster over the primary CLIP image embeddings (SemDeDup's first step).",
    ),
    column(
        "is_duplicate",
        pa.bool_(),
        "dedup",
        "True for every row but one of each duplicate group (kinds in `dedup.mark`, joined); the kept row has "
        "the highest `clip_score`, then the smallest uid.",
    ),
    column(
        "duplicate_kinds",
        pa.list_(pa.string()),
        "dedup",
        "Why a duplicate row is one: the kinds (`exact`, `image`, `caption`, `semantic`) whose group it "
        "shares with other rows; empty for kept and unique rows.",
    ),
    column(
        "duplicate_of",
        pa.string(),
        "dedup",
        "uid of the row kept in this row's duplicate group (its own uid when it is the kept one); null when "
        "the row has no duplicate.",
    ),
    column(
        "corruption_score",
        pa.float32(),
        "corruption",
        "Probability that caption and image do not match, in [0, 1]: the local false discovery rate of "
        "`corruption_evidence` against decoys (each row's image with another row's caption); its mean over "
        "any subset estimates that subset's corruption ratio. Null without an image and a caption.",
    ),
    column(
        "corruption_evidence",
        pa.float32(),
        "corruption",
        "Weighted mean of the components (0 looks matched, 1 like a random pair): clip 2, caption rank 1, "
        "image rank 1, recaption 1 (see `filters/corruption.py`); orders rows within a score.",
    ),
    column(
        "corruption_clip_percentile",
        pa.float32(),
        "corruption",
        "Percentile of the row's `clip_score` within the dataset (primary CLIP model), in [0, 1].",
    ),
    column(
        "corruption_caption_rank",
        pa.float32(),
        "corruption",
        "Image-to-text retrieval in a random block of `corruption.block_size` + 1 rows: the share of the "
        "other captions the image is closer to than to its own (0 = own caption first).",
    ),
    column(
        "corruption_image_rank",
        pa.float32(),
        "corruption",
        "Text-to-image retrieval in the same block: the share of the other images the caption is closer "
        "to than to its own (0 = own image first).",
    ),
    column(
        "corruption_recaption_percentile",
        pa.float32(),
        "corruption",
        "Percentile of `recaption_alt_similarity` (alt-text vs recaption) within the dataset; null "
        "without a recaption.",
    ),
    column(
        "corruption_flags",
        pa.list_(pa.string()),
        "corruption",
        "Signals that fired: by that signal alone the pair is no better matched than the best 10 % of "
        "random pairs: `clip_low`, `caption_not_retrieved`, `image_not_retrieved`, `recaption_disagrees`.",
    ),
    column(
        "injected_corruption",
        pa.string(),
        "corruption",
        "Set only by `pairsmith corrupt` (controlled corruption): `swap` or `rewrite` where this row's "
        "caption was replaced; `uid` stays the source row's, so a join with the source gives the original.",
    ),
    column("run_id", pa.string(), "provenance", "Id of the run that wrote the row."),
    column("config_hash", pa.string(), "provenance", "Hash of the run config that affects the output."),
    column("pipeline_version", pa.string(), "provenance", "pairsmith version that wrote the row."),
)
# Stage columns placed after a given column rather than at the end of their group (contract version 1).
PLACED_AFTER = {"caption_shared_count": "lang"}


def contract(annotator_fields: list[pa.Field] | tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
    """The core fields: group by group, the annotators' fields (in the order given) then the stages'."""
    fields = [*IDENTITY_FIELDS, *DOWNLOAD_FIELDS, *annotator_fields, *STAGE_FIELDS]
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"record columns declared twice: {sorted({n for n in names if names.count(n) > 1})}")
    unknown = {f.name: group_of(f) for f in fields if group_of(f) not in GROUPS}
    if unknown:
        raise ValueError(f"record columns in unknown groups {unknown}; groups: {', '.join(GROUPS)}")
    by_group: dict[str, list[pa.Field]] = {g: [] for g in GROUPS}
    for f in fields:
        if f.name not in PLACED_AFTER:
            by_group[group_of(f)].append(f)
    for f in fields:
        if f.name in PLACED_AFTER:
            group = by_group[group_of(f)]
            anchor = next((i for i, g in enumerate(group) if g.name == PLACED_AFTER[f.name]), len(group) - 1)
            group.insert(anchor + 1, f)
    return tuple(f for g in GROUPS for f in by_group[g])


def core_fields() -> tuple[pa.Field, ...]:
    """The record contract: every registered annotator's columns placed among the others."""
    from pairsmith.filters.registry import annotator_fields

    return contract(annotator_fields())


def __getattr__(name: str):
    # FIELDS and CORE_NAMES are computed on use: the annotator modules import `column` from here.
    if name == "FIELDS":
        return core_fields()
    if name == "CORE_NAMES":
        return frozenset(f.name for f in core_fields())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SchemaMismatchError(ValueError):
    """A table does not follow the record contract: a bug in the writer, never the user's fault."""


def record_schema(model_fields: list[pa.Field] | tuple = (), extra: pa.Schema | None = None) -> pa.Schema:
    """The core fields, then per-model fields (`clip_score_<alias>`), then the input's extra columns."""
    core = core_fields()
    core_names = {f.name for f in core}
    fields = [*core, *(f for f in model_fields if f.name not in core_names)]
    taken = {f.name for f in fields}
    if extra is not None:
        fields += [f for f in extra if f.name not in taken]
    return pa.schema(fields, metadata={"pairsmith_schema_version": SCHEMA_VERSION})


def validate_table(table: pa.Table) -> None:
    """Raise SchemaMismatchError unless `table` starts with exactly the core columns and types."""
    core = core_fields()
    names = table.column_names[: len(core)]
    expected = [f.name for f in core]
    if names != expected:
        missing = [n for n in expected if n not in table.column_names]
        raise SchemaMismatchError(f"columns differ from the record contract; missing={missing}, got={names}")
    for field in core:
        got = table.schema.field(field.name).type
        if got != field.type:
            raise SchemaMismatchError(f"column {field.name!r} has type {got}, contract says {field.type}")
    bad = set(table.column("status").to_pylist()) - set(STATUSES)
    if bad:
        raise SchemaMismatchError(f"unknown status values {sorted(map(str, bad))}")
    if table.column("status").null_count:
        raise SchemaMismatchError("every row needs a status")


def markdown_table() -> str:
    """The README's column table."""
    lines = ["| column | type | group | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{f.name}` | {f.type} | {group_of(f)} | {f.metadata[b'doc'].decode()} |" for f in core_fields()
    ]
    return "\n".join(lines)


def readme_tables() -> dict[str, str]:
    """Every generated README table, by the name of its markers (`<!-- NAME:start -->` ... `:end -->`)."""
    from pairsmith.filters.registry import profiles_table, signals_table

    return {"record-contract": markdown_table(), "signals": signals_table(), "profiles": profiles_table()}


def update_readme(path: str) -> None:
    """Rewrite every generated table between its README markers."""
    with open(path) as f:
        text = f.read()
    for name, table in readme_tables().items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, found, rest = text.partition(start)
        if not found or end not in rest:
            raise ValueError(f"{path} has no {start} ... {end} markers")
        text = f"{head}{start}\n{table}\n{end}{rest.partition(end)[2]}"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":  # `python -m pairsmith.schemas.record README.md` regenerates the README tables
    import sys

    update_readme(sys.argv[1])
