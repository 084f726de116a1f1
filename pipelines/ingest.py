"""Ingest: read input files (parquet, csv, tsv, jsonl), assign uids, validate URLs, cut into shards.

A row that cannot be used is kept with status `invalid_input`; its `input_problem` reads `KIND: message`
with kind `invalid_url` (no URL, a URL that does not parse or is not http(s)) or `bad_line` (a CSV or
JSON line that cannot be parsed; its raw text becomes the caption). A problem with a whole file (missing
url column, unreadable file) is an `InputError` that names the file.

Column names come out unique: a repeated name is numbered (`caption`, `caption_2`, ...) and an input
column named like one that pairsmith writes is kept as `input_NAME` (or the first free `input_NAME_2`,
`input_NAME_3`, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pairsmith.schemas.config import InputConfig
from pairsmith.schemas.errors import InputError
from pairsmith.schemas.record import CORE_NAMES

FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PROBLEM = "input_problem"  # the input shard's column saying why a row cannot be fetched
RESERVED = CORE_NAMES | {PROBLEM}  # with `clip_score_<alias>`: the names pairsmith writes
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # http.client refuses to send these
_BAD_LABEL = re.compile(r"^\.|\.\.|[^.]{64}")  # an empty or over-long DNS label


class InputWarning(UserWarning):
    """A file was read with repairs: columns renamed, lines kept as `invalid_input` rows."""


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


def problem(kind: str, message: str) -> str:
    """An `input_problem` value."""
    return f"{kind}: {message}"


def split_problem(text: str) -> tuple[str, str]:
    """(error_kind, message) of an `input_problem` value."""
    kind, _, message = text.partition(": ")
    return kind, message


def url_problem(url: str | None) -> str | None:
    """Why a URL cannot be fetched, or None if it looks fetchable."""
    if url is None or not url.strip():
        return "missing url"
    text = url.strip()
    if _SPACE_OR_CONTROL.search(text):
        return "url contains whitespace or control characters"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        if ":" in parts.netloc:
            parts.port  # noqa: B018 (raises on a port that is not a number in 0..65535)
        if host and (not host.isascii() or _BAD_LABEL.search(host)):
            host.encode("idna")  # says what is wrong with the name
    except ValueError as exc:  # UnicodeError included
        return f"cannot parse url: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"unsupported url scheme {parts.scheme!r}" if parts.scheme else "url has no scheme"
    if not host:
        return "url has no host"
    return None


@dataclass
class Piece:
    """Consecutive rows of a file as read; for each row, why it could not be parsed (None if it could)
    and its raw text. `problems` and `raw` are None when every row parsed."""

    table: pa.Table
    problems: list[str | None] | None = None
    raw: list[str | None] | None = None


def _read_pieces(path: str, fmt: str) -> Iterator[Piece]:
    fs, p = fsspec.core.url_to_fs(path)
    compression = "gzip" if path.endswith(".gz") else None
    with fs.open(p, "rb", compression=compression) as f:
        if fmt == "parquet":
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=65536):
                yield Piece(pa.Table.from_batches([batch]))
        elif fmt in ("csv", "tsv"):
            yield from _read_delimited(f, "\t" if fmt == "tsv" else ",")
        else:
            yield _read_jsonl(f)


def _read_delimited(f, delimiter: str) -> Iterator[Piece]:
    """CSV/TSV blocks; a line with the wrong number of fields comes back as a row of its own."""
    head = f.read(1)
    if not head:
        return
    f.seek(0)
    bad: deque[tuple[int, str, str]] = deque()  # (data row index, problem, raw text), in file order

    def keep_bad_line(row: pacsv.InvalidRow) -> str:
        # row.number counts records from 1, the header included (known when reading on one thread);
        # it is the line number unless a quoted value spans lines or blank lines came before.
        why = f"line {row.number}: {row.actual_columns} fields, expected {row.expected_columns}"
        bad.append((row.number - 2, problem("bad_line", why), row.text))
        return "skip"

    reader = pacsv.open_csv(
        f,
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=keep_bad_line
        ),
        convert_options=pacsv.ConvertOptions(check_utf8=False, strings_can_be_null=True),
        read_options=pacsv.ReadOptions(block_size=1 << 22, use_threads=False),
    )
    start = 0
    for batch in reader:
        piece = _with_bad_lines(pa.Table.from_batches([batch]), bad, start, last=False)
        start += piece.table.num_rows
        yield piece
    if bad:
        yield _with_bad_lines(reader.schema.empty_table(), bad, start, last=True)


def _with_bad_lines(table: pa.Table, bad: deque, start: int, last: bool) -> Piece:
    """`table` (good rows from data row `start` on) with the bad lines that fall among them put back in
    place as empty rows; with `last`, every bad line left. Columns become clean strings."""
    take: list[int | None] = []  # per row: the good row it is, or None for a bad line
    problems: list[str | None] = []
    raw: list[str | None] = []
    good = inserted = 0
    while bad and (last or bad[0][0] - start <= table.num_rows + inserted):
        index, why, text = bad.popleft()
        fill = min(max(index - start - len(take), 0), table.num_rows - good)
        take += range(good, good + fill)
        problems += [None] * fill
        raw += [None] * fill
        good, inserted = good + fill, inserted + 1
        take.append(None)
        problems.append(why)
        raw.append(text)
    if inserted:
        rest = table.num_rows - good
        take += range(good, table.num_rows)
        problems += [None] * rest
        raw += [None] * rest
        table = table.take(pa.array(take, pa.int64()))
    columns = [pa.array(_clean_strings(c), pa.string()) for c in table.columns]
    cleaned = pa.Table.from_arrays(columns, names=table.column_names)
    return Piece(cleaned, problems if inserted else None, raw if inserted else None)


def _read_jsonl(f) -> Piece:
    rows: list[dict] = []
    problems: list[str | None] = []
    raw: list[str | None] = []
    for number, line in enumerate(f):
        text = line.decode("utf-8", "replace").strip().removeprefix("\ufeff" if number == 0 else "")
        if not text:
            continue
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError("line is not a JSON object")
            why = None
        except ValueError as exc:
            row, why = {}, problem("bad_line", f"line {number + 1}: {exc}")
        rows.append(row)
        problems.append(why)
        raw.append(text if why else None)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # every key of every line, first-seen order
    try:
        columns = {k: pa.array([r.get(k) for r in rows]) for k in keys}
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed value types across lines: keep every value, as JSON text.
        columns = {k: pa.array([_as_text(r.get(k)) for r in rows], pa.string()) for k in keys}
    table = pa.table({"": pa.nulls(len(rows))}).drop_columns([""]) if not keys else pa.table(columns)
    has_bad = any(problems)
    return Piece(table, problems if has_bad else None, raw if has_bad else None)


def _as_text(value) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def column_names(names: list[str], cfg: InputConfig) -> tuple[list[str], dict[str, list[str]]]:
    """Unique names for a file's columns, and the new names of each repeated name.

    A repeat is numbered (`caption_2`, `caption_3`); an extra column named like one that pairsmith
    writes becomes `input_NAME`, or the first of `input_NAME_2`, `input_NAME_3`, ... that no other
    column holds. Only the file's own column list decides, so the same file always gets the same names.
    """
    taken = set(names)
    seen: set[str] = set()
    out: list[str] = []
    repeats: dict[str, list[str]] = {}

    def numbered(stem: str) -> str:
        k = 2
        while f"{stem}_{k}" in taken:
            k += 1
        return f"{stem}_{k}"

    def escaped(name: str) -> str:
        return name if name.startswith("input_") else f"input_{name}"

    for name in names:
        new = name
        if name in seen:
            new = numbered(escaped(name) if _reserved(f"{name}_2") else name)
            repeats.setdefault(name, []).append(new)
        elif _reserved(name) and name not in (cfg.url_col, cfg.caption_col):
            stem = escaped(name)
            new = stem if stem not in taken and not _reserved(stem) else numbered(stem)
        seen.add(name)
        taken.add(new)
        out.append(new)
    return out, repeats


def _reserved(name: str) -> bool:
    return name in RESERVED or name.startswith("clip_score_")


def to_rows(piece: Piece, path: str, first_row: int, cfg: InputConfig) -> pa.Table:
    """Identity columns (uid, url, caption, source, input problem) followed by the extra columns;
    `piece` has unique column names (see `column_names`)."""
    table, n = piece.table, piece.table.num_rows
    problems = piece.problems or [None] * n
    for col in (cfg.url_col, cfg.caption_col):
        if col not in table.column_names and None in problems:
            raise InputError(
                f"{path}: no column {col!r} (columns: {', '.join(table.column_names)}); "
                f"set input.url_col / input.caption_col"
            )
    urls = _clean_strings(table.column(cfg.url_col)) if cfg.url_col in table.column_names else [None] * n
    caps = (
        _clean_strings(table.column(cfg.caption_col)) if cfg.caption_col in table.column_names else [None] * n
    )
    if piece.raw is not None:
        caps = [c if r is None else r for c, r in zip(caps, piece.raw, strict=True)]
    problems = [
        bad or ((why := url_problem(u)) and problem("invalid_url", why))
        for bad, u in zip(problems, urls, strict=True)
    ]
    extras = table.drop_columns([c for c in (cfg.url_col, cfg.caption_col) if c in table.column_names])
    identity = pa.table(
        {
            "uid": [stable_uid(u, c) for u, c in zip(urls, caps, strict=True)],
            "url": urls,
            "caption": caps,
            "source_file": pa.array([path] * n, pa.string()),
            "source_row": pa.array(range(first_row, first_row + n), pa.int64()),
            PROBLEM: pa.array(problems, pa.string()),
        }
    )
    for name in extras.column_names:
        identity = identity.append_column(name, extras.column(name))
    return identity


_WARNED: set[str] = set()


def _warn(message: str) -> None:
    # Once per process: the run's preflight reads each file's first rows before ingest reads it all.
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, InputWarning, stacklevel=1)


def read_input_file(path: str, cfg: InputConfig) -> Iterator[pa.Table]:
    """Rows of one file in order, as tables of identity columns plus extras. Warns once per file
    about repeated column names and once about lines that could not be parsed."""
    fmt = _format_of(path, cfg.format)
    first = 0
    warned: set[str] = set()
    try:
        for piece in _read_pieces(path, fmt):
            names, repeats = column_names(piece.table.column_names, cfg)
            if repeats and "names" not in warned:
                warned.add("names")
                renamed = "; ".join(f"{k} -> {', '.join(v)}" for k, v in repeats.items())
                _warn(f"{path}: repeated column names renamed: {renamed}")
            if piece.problems and "lines" not in warned:
                warned.add("lines")
                first_bad = split_problem(next(p for p in piece.problems if p))[1]
                _warn(
                    f"{path}: {first_bad}; lines that cannot be parsed are kept as invalid_input rows "
                    "(error_kind bad_line)"
                )
            if piece.table.num_rows:
                piece.table = piece.table.rename_columns(names)
                yield to_rows(piece, path, first, cfg)
                first += piece.table.num_rows
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
