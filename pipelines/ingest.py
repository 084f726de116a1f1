"""Ingest: read input files (parquet, csv, tsv, jsonl), assign uids, validate URLs, cut into shards.

A row that cannot be used (no URL, a URL that is not http(s), a line that is not JSON) is kept with
status `invalid_input`; a problem with a whole file (missing url column, unreadable file) is an
`InputError` that names the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pairsmith.schemas.config import InputConfig
from pairsmith.schemas.record import CORE_NAMES

FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class InputError(ValueError):
    """An input problem the user must fix (the message names the file)."""


def list_input_files(path: str, fmt: str = "auto", exclude: str | None = None) -> list[str]:
    """Expand a file, folder or glob (local or fsspec URL) into a sorted list of input files.

    Files under `exclude` (the output folder, when it sits inside the input folder) are left out.
    """
    fs, root = fsspec.core.url_to_fs(path)
    skip = fsspec.core.url_to_fs(exclude)[1].rstrip("/") + "/" if exclude else None
    if fs.isdir(root):
        found = [p for p in fs.find(root) if _format_of(p, "auto", strict=False)]
        found = [p for p in found if not (skip and p.startswith(skip))]
    else:
        found = fs.glob(root) if any(c in root for c in "*?[") else ([root] if fs.exists(root) else [])
    if not found:
        raise InputError(f"no input files found at {path}")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    files = sorted(found)
    if protocol not in ("file", "local"):
        files = [fs.unstrip_protocol(p) for p in files]
    for f in files:
        _format_of(f, fmt)
    return files


def _format_of(path: str, fmt: str, strict: bool = True) -> str | None:
    if fmt != "auto":
        return fmt
    name = path.lower().removesuffix(".gz")
    for ext, kind in FORMATS.items():
        if name.endswith(ext):
            return kind
    if strict:
        raise InputError(f"{path}: cannot tell the format from the name; set input.format")
    return None


def stable_uid(url: str | None, caption: str | None) -> str:
    """64-bit BLAKE2b of url and caption, as 16 hex chars (equal rows get equal uids)."""
    blob = f"{url or ''}\x1f{caption or ''}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def _clean_strings(array: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """Any column to Python strings; invalid UTF-8 becomes U+FFFD instead of failing."""
    if (
        pa.types.is_string(array.type)
        or pa.types.is_large_string(array.type)
        or pa.types.is_binary(array.type)
    ):
        raw = array.cast(pa.binary()).to_pylist()
        return [None if v is None else v.decode("utf-8", "replace") for v in raw]
    return [None if v is None else str(v) for v in array.to_pylist()]


def url_problem(url: str | None) -> str | None:
    """Why a URL cannot be fetched, or None if it looks fetchable."""
    if url is None or not url.strip():
        return "missing url"
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        return f"unsupported url scheme {parts.scheme!r}" if parts.scheme else "url has no scheme"
    if not parts.hostname:
        return "url has no host"
    return None


def _read_pieces(path: str, fmt: str) -> Iterator[pa.Table]:
    fs, p = fsspec.core.url_to_fs(path)
    compression = "gzip" if path.endswith(".gz") else None
    with fs.open(p, "rb", compression=compression) as f:
        if fmt == "parquet":
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=65536):
                yield pa.Table.from_batches([batch])
        elif fmt in ("csv", "tsv"):
            yield from _read_delimited(f, "\t" if fmt == "tsv" else ",")
        else:
            yield _read_jsonl(f)


def _read_delimited(f, delimiter: str) -> Iterator[pa.Table]:
    head = f.read(1)
    if not head:
        return
    f.seek(0)
    reader = pacsv.open_csv(
        f,
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(check_utf8=False, strings_can_be_null=True),
        read_options=pacsv.ReadOptions(block_size=1 << 22),
    )
    for batch in reader:
        table = pa.Table.from_batches([batch])
        yield pa.table({name: _clean_strings(table.column(name)) for name in table.column_names})


def _read_jsonl(f) -> pa.Table:
    rows: list[dict] = []
    for number, line in enumerate(f):
        text = line.decode("utf-8", "replace").strip()
        if not text:
            continue
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError("line is not a JSON object")
        except ValueError as exc:
            row = {"__invalid__": f"line {number + 1}: {exc}"}
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # every key of every line, first-seen order
    try:
        return pa.table({k: [r.get(k) for r in rows] for k in keys})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed value types across lines: keep every value, as JSON text.
        return pa.table({k: [_as_text(r.get(k)) for r in rows] for k in keys})


def _as_text(value) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _rename_collisions(table: pa.Table, cfg: InputConfig) -> pa.Table:
    """Input columns named like pairsmith columns are kept as `input_<name>`."""
    names = [
        f"input_{n}" if n in CORE_NAMES and n not in (cfg.url_col, cfg.caption_col) else n
        for n in table.column_names
    ]
    return table.rename_columns(names)


def to_rows(piece: pa.Table, path: str, first_row: int, cfg: InputConfig) -> pa.Table:
    """Identity columns (uid, url, caption, source, input status) followed by the extra columns."""
    invalid = piece.column("__invalid__").to_pylist() if "__invalid__" in piece.column_names else None
    for col in (cfg.url_col, cfg.caption_col):
        if col not in piece.column_names and invalid is None:
            raise InputError(
                f"{path}: no column {col!r} (columns: {', '.join(piece.column_names)}); "
                f"set input.url_col / input.caption_col"
            )
    n = piece.num_rows
    urls = _clean_strings(piece.column(cfg.url_col)) if cfg.url_col in piece.column_names else [None] * n
    caps = (
        _clean_strings(piece.column(cfg.caption_col)) if cfg.caption_col in piece.column_names else [None] * n
    )
    problems = [url_problem(u) for u in urls]
    if invalid is not None:
        problems = [bad or p for bad, p in zip(invalid, problems, strict=True)]
    extras = _rename_collisions(
        piece.drop_columns(
            [c for c in (cfg.url_col, cfg.caption_col, "__invalid__") if c in piece.column_names]
        ),
        cfg,
    )
    identity = pa.table(
        {
            "uid": [stable_uid(u, c) for u, c in zip(urls, caps, strict=True)],
            "url": urls,
            "caption": caps,
            "source_file": pa.array([path] * n, pa.string()),
            "source_row": pa.array(range(first_row, first_row + n), pa.int64()),
            "input_problem": pa.array(problems, pa.string()),
        }
    )
    for name in extras.column_names:
        identity = identity.append_column(name, extras.column(name))
    return identity


def read_input_file(path: str, cfg: InputConfig) -> Iterator[pa.Table]:
    """Rows of one file in order, as tables of identity columns plus extras."""
    fmt = _format_of(path, cfg.format)
    first = 0
    try:
        for piece in _read_pieces(path, fmt):
            if piece.num_rows:
                yield to_rows(piece, path, first, cfg)
                first += piece.num_rows
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {exc}") from None


def shard_name(file_index: int, chunk: int) -> str:
    return f"{file_index:04d}-{chunk:05d}"


def cut_shards(file_index: int, path: str, cfg: InputConfig) -> Iterator[tuple[str, pa.Table]]:
    """(shard name, rows) for one input file, `shard_size` rows each, in input order."""
    pending: list[pa.Table] = []
    size, chunk = 0, 0
    for table in read_input_file(path, cfg):
        pending.append(table)
        size += table.num_rows
        while size >= cfg.shard_size:
            merged = pa.concat_tables(pending, promote_options="permissive")
            yield shard_name(file_index, chunk), merged.slice(0, cfg.shard_size)
            rest = merged.slice(cfg.shard_size)
            pending, size, chunk = [rest], rest.num_rows, chunk + 1
    if size:
        yield shard_name(file_index, chunk), pa.concat_tables(pending, promote_options="permissive")
