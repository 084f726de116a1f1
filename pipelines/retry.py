"""Per-sample retry: fetch again only the rows whose download failed for a reason that may pass
(a timeout, the deadline, a refused connection, a 5xx answer, a DNS failure), as if those fetches had
succeeded the first time.

Per shard, in an order that a kill at any point leaves resumable: the shard's data and side files are
discarded (the global stages are invalidated with them), the rows are fetched into a scratch folder,
the tar is rebuilt from the members of the rows not retried plus the new ones, and the download
results are rewritten; a marker `_work/retry/SHARD.json` then says the shard is done. Members are
named by input row (`download.member_key`), so a recovered image has the name a first-time success
would have had. The rows to retry are fixed once, in `_work/retry/plan.json`, so a resumed retry
fetches the same rows.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile

import fsspec
import pyarrow as pa

from pairsmith.pipelines.download import fetch_rows, upload_tar
from pairsmith.pipelines.layout import Layout, read_parquet, write_json, write_parquet
from pairsmith.pipelines.run_state import discard_shard
from pairsmith.schemas.config import ConfigError, DownloadConfig

RETRYABLE = ("timeout", "deadline", "connection", "http_5xx", "dns")


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """`timeout,dns` -> ("timeout", "dns"); every retryable kind when empty; ConfigError for others."""
    kinds = tuple(k.strip() for k in (text or "").split(",") if k.strip()) or RETRYABLE
    unknown = [k for k in kinds if k not in RETRYABLE]
    if unknown:
        raise ConfigError(
            f"--kinds: {', '.join(unknown)} cannot be retried; choose from {', '.join(RETRYABLE)}"
        )
    return kinds


def is_retried(error_kind: str | None, kinds: tuple[str, ...]) -> bool:
    """Whether a row that failed with `error_kind` is one of `kinds` (`http_5xx`: any 5xx status)."""
    if error_kind is None:
        return False
    return error_kind in kinds or (
        "http_5xx" in kinds and re.fullmatch(r"http_5\d\d", error_kind) is not None
    )


def rows_to_retry(layout: Layout, shard: str, kinds: tuple[str, ...]) -> list[int]:
    """Input rows of `shard` whose download failed with one of `kinds`."""
    kinds_of = read_parquet(layout.download_shard(shard)).column("error_kind").to_pylist()
    return [i for i, kind in enumerate(kinds_of) if is_retried(kind, kinds)]


def retry_shard(layout: Layout, shard: str, rows: list[int], cfg: DownloadConfig) -> dict:
    """Fetch `rows` of `shard` again and rewrite its tar and download results; returns counts."""
    discard_shard(layout, shard)
    inputs = read_parquet(layout.input_shard(shard))
    old = read_parquet(layout.download_shard(shard))
    scratch = tempfile.mkdtemp(prefix=f"pairsmith-retry-{shard}-")
    try:
        fresh = fetch_rows(inputs, rows, shard, layout.tar_relative(shard), cfg, scratch)
        results = _merge(old, fresh, rows)
        keep = {
            m for i, m in enumerate(old.column("member").to_pylist()) if m is not None and i not in set(rows)
        }
        _rebuild_tar(layout.tar(shard), keep, f"{scratch}/00000.tar", f"{scratch}/merged.tar")
        upload_tar(f"{scratch}/merged.tar", layout.tar(shard))
        write_parquet(results, layout.download_shard(shard))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    recovered = sum(results.column("status")[i].as_py() == "success" for i in rows)
    counts = {"shard": shard, "tried": len(rows), "recovered": recovered}
    write_json(counts, marker(layout, shard))
    return counts


def marker(layout: Layout, shard: str) -> str:
    """The file whose presence says `shard` has been retried in the current plan."""
    return f"{layout.retry_folder}/{shard}.json"


def _merge(old: pa.Table, fresh: pa.Table, rows: list[int]) -> pa.Table:
    """`old` with the rows `rows` replaced by `fresh`'s rows of the same index."""
    columns = old.to_pydict()
    new = fresh.to_pydict()
    for i in rows:
        for name in columns:
            columns[name][i] = new[name][i]
    return pa.table(columns, schema=old.schema)


def _rebuild_tar(current: str, keep: set[str], fetched: str, target: str) -> None:
    """A local tar with the samples (every file of the key) of `keep` from `current` plus all of `fetched`."""
    keys = {m.rsplit(".", 1)[0] for m in keep}
    fs, path = fsspec.core.url_to_fs(current)
    with tarfile.open(target, "w") as out:
        with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
            for info in tar:
                if info.isfile() and info.name.rsplit(".", 1)[0] in keys:
                    out.addfile(info, tar.extractfile(info))
        with tarfile.open(fetched, "r:") as tar:
            for info in tar:
                if info.isfile():
                    out.addfile(info, tar.extractfile(info))
