"""How `pairsmith select` writes the rows it keeps (`--export parquet|webdataset`).

    SUBSET/data/SHARD.parquet             the kept rows, with the source's schema
    SUBSET/embeddings/ALIAS/SHARD.parquet the kept rows' CLIP embeddings, row-aligned with data/SHARD
    SUBSET/embeddings/ALIAS/{img_emb,text_emb,metadata}/...  with --export-embeddings npy (clip-retrieval)
    SUBSET/images/NNNNNN.tar              --export webdataset: KEY.jpg, KEY.txt, KEY.json per sample

`parquet` keeps the source's shards and makes every `tar` path absolute, into the source folder.
`webdataset` cuts the kept rows into shards of `shard_size` images, one tar and one data shard each;
`tar` is then relative to the subset folder and `member` names the new sample. KEY is the row's uid
(`uid_2`, `uid_3`, ... for a uid kept again: equal url and caption give equal uids).

Resumable: every file is written atomically and skipped when it exists; a shard's data file is
written last, so a rerun of the same selection redoes only the shards without one, identically (tar
members carry fixed times and owners).
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pairsmith.pipelines.annotate import image_loader
from pairsmith.pipelines.layout import Layout, atomic_path, write_npy, write_parquet

FORMATS = ("parquet", "webdataset")
SHARD_SIZE = 10_000
NPY_METADATA = ("uid", "url", "caption", "tar", "member")
ABSOLUTE = r"^/|://"  # a `tar` path that names its folder: an absolute local path or a URL


def absolute_root(path: str) -> str:
    """`path` as an absolute local path, or the fsspec URL as given, without a trailing slash."""
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def tar_location(root: str, tar: str) -> tuple[Layout, str]:
    """The output folder and shard of a row's `tar`: relative to `root` (the folder holding the row) or
    absolute (a Parquet subset's rows point into their source). ValueError for any other path."""
    path = tar if re.search(ABSOLUTE, tar) else f"{root.rstrip('/')}/{tar}"
    folder, sep, name = path.rpartition("/images/")
    if not sep or "/" in name or not name.endswith(".tar"):
        raise ValueError(f"{tar} is not an images/SHARD.tar path")
    return Layout(folder), name[: -len(".tar")]


def json_safe(value):
    """`value` with what JSON cannot hold replaced: NaN and infinities by null, bytes by hex, dates by
    ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return str(value) if isinstance(value, datetime.timedelta) else value.isoformat()
    return value


def _read_images(root: str, tar: str, members: list[str]) -> Iterator[bytes | None]:
    """Image bytes per member of a source tar; None for each one that cannot be read (a missing member,
    a missing or truncated tar)."""
    done = 0
    try:
        layout, shard = tar_location(root, tar)
        for data in image_loader(layout, shard, members):
            done += 1
            yield data
    except (ValueError, OSError, EOFError, tarfile.TarError):
        pass
    yield from (None for _ in members[done:])


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    out.addfile(info, io.BytesIO(data))


def side_tables(src: Layout, shard: str, aliases: list[str], uids: pa.Array, mask: pa.Array) -> dict:
    """Each alias's embeddings of `shard`, filtered like the data rows (checked row-aligned by uid)."""
    sides = {}
    for alias in aliases:
        path = src.side_shard(f"embeddings/{alias}", shard)
        fs, p = fsspec.core.url_to_fs(path)
        with fs.open(p, "rb") as f:
            table = pq.read_table(f)
        if not table.column("uid").equals(uids):
            raise ValueError(f"{path} is not row-aligned with data/{shard}.parquet")
        sides[alias] = table.filter(mask)
    return sides


def _write_npy(dst: Layout, alias: str, name: str, rows: pl.DataFrame, side: pa.Table) -> None:
    """clip-retrieval's layout: img_emb/img_emb_NAME.npy, text_emb/text_emb_NAME.npy and
    metadata/metadata_NAME.parquet, row-aligned, for the rows with both embeddings (float16)."""
    folder = f"{dst.root.rstrip('/')}/embeddings/{alias}"
    if dst.exists(f"{folder}/metadata/metadata_{name}.parquet"):
        return
    both = pa.array(
        np.asarray(side.column("image_embedding").is_valid())
        & np.asarray(side.column("text_embedding").is_valid())
    )
    side = side.filter(both)
    for column, kind in (("image_embedding", "img_emb"), ("text_embedding", "text_emb")):
        dim = int(side.schema.field(column).metadata[b"dim"])
        values = side.column(column).combine_chunks().flatten()
        vectors = values.to_numpy(zero_copy_only=False).reshape(-1, dim)
        write_npy(vectors.astype(np.float16), f"{folder}/{kind}/{kind}_{name}.npy")
    metadata = rows.filter(pl.Series(both.to_numpy(zero_copy_only=False))).select(NPY_METADATA)
    write_parquet(metadata.to_arrow(), f"{folder}/metadata/metadata_{name}.parquet")


@dataclass
class Export:
    """Writes the kept rows of each source shard (`add`, in shard order), then `finish`es."""

    src: Layout
    dst: Layout
    schema: pa.Schema
    aliases: list[str]
    npy: bool = False
    shards_written: int = 0
    shards_skipped: int = 0

    def write_shard(self, name: str, rows: pl.DataFrame, sides: dict[str, pa.Table]) -> None:
        """Embeddings (and npy) first, the data shard last: its presence marks the shard done."""
        for alias, side in sides.items():
            path = self.dst.side_shard(f"embeddings/{alias}", name)
            if not self.dst.exists(path):
                write_parquet(side, path)
            if self.npy:
                _write_npy(self.dst, alias, name, rows, side)
        write_parquet(rows.to_arrow().cast(self.schema), self.dst.data_shard(name))
        self.shards_written += 1

    def done(self, name: str) -> bool:
        if self.dst.exists(self.dst.data_shard(name)):
            self.shards_skipped += 1
            return True
        return False

    def summary(self) -> dict:
        return {
            "embeddings": self.aliases,
            "embeddings_npy": self.npy,
            "shards_written": self.shards_written,
            "shards_already_done": self.shards_skipped,
        }


class ParquetExport(Export):
    """The source's shards, with `tar` made absolute (into the source folder)."""

    def add(self, shard: str, rows: pl.DataFrame, sides: dict[str, pa.Table]) -> None:
        if self.done(shard):
            return
        root = absolute_root(self.src.root) + "/"
        tar = pl.col("tar")
        rows = rows.with_columns(
            pl.when(tar.str.contains(ABSOLUTE)).then(tar).otherwise(root + tar).alias("tar")
        )
        self.write_shard(shard, rows, sides)

    def finish(self) -> dict:
        return {"format": "parquet", "tar_paths": "absolute, into the source folder"} | self.summary()


@dataclass
class WebDatasetExport(Export):
    """New tars of `shard_size` images; rows without a readable image stay in the Parquet (tar null)."""

    shard_size: int = SHARD_SIZE
    caption_column: str = "caption"
    pending: list[tuple[pl.DataFrame, dict[str, pa.Table]]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    index: int = 0
    samples: int = 0
    not_readable: int = 0

    def _keys(self, uids: list[str]) -> list[str]:
        keys = []
        for uid in uids:
            self.seen[uid] = self.seen.get(uid, 0) + 1
            keys.append(uid if self.seen[uid] == 1 else f"{uid}_{self.seen[uid]}")
        return keys

    def add(self, shard: str, rows: pl.DataFrame, sides: dict[str, pa.Table]) -> None:
        rows = rows.with_columns(
            pl.Series("_key", self._keys(rows["uid"].to_list()), pl.String),
            (pl.col("status").eq("success") & pl.col("member").is_not_null() & pl.col("tar").is_not_null())
            .fill_null(False)
            .alias("_image"),
        )
        if rows.height:
            self.pending.append((rows, sides))
        while sum(int(r["_image"].sum()) for r, _ in self.pending) >= self.shard_size:
            self._flush(self._cut())

    def _cut(self) -> list[tuple[pl.DataFrame, dict[str, pa.Table]]]:
        """The pending rows up to the `shard_size`-th image; the rest stays pending."""
        chunk, images = [], 0
        while self.pending:
            rows, sides = self.pending.pop(0)
            need, here = self.shard_size - images, int(rows["_image"].sum())
            if here < need:
                chunk.append((rows, sides))
                images += here
                continue
            end = int((rows["_image"].cast(pl.Int64).cum_sum() < need).sum()) + 1
            chunk.append((rows[:end], {a: s.slice(0, end) for a, s in sides.items()}))
            if end < rows.height:
                self.pending.insert(0, (rows[end:], {a: s.slice(end) for a, s in sides.items()}))
            break
        return chunk

    def _flush(self, chunk: list[tuple[pl.DataFrame, dict[str, pa.Table]]]) -> None:
        name = f"{self.index:06d}"
        self.index += 1
        if not chunk:  # nothing kept at all: one empty data shard, with the schema
            if not self.done(name):
                self.write_shard(name, pl.from_arrow(self.schema.empty_table()), {})
            return
        rows = pl.concat([r for r, _ in chunk])
        sides = {a: pa.concat_tables([s[a] for _, s in chunk]) for a in self.aliases}
        images = int(rows["_image"].sum())
        if self.done(name):
            written = pl.read_parquet(self.dst.data_shard(name), columns=["member"])["member"].is_not_null()
            self.samples += int(written.sum())
            self.not_readable += images - int(written.sum())
            return
        extension = pl.col("member").str.extract(r"\.([^./]+)$").fill_null("jpg")
        rows = rows.with_columns((pl.col("_key") + "." + extension).alias("_member"))
        if images and not self.dst.exists(self.dst.tar(name)):
            self._write_tar(name, rows)
        here = pl.col("_member").is_in(list(self._members(self.dst.tar(name))))
        rows = rows.with_columns(
            pl.when(here).then(pl.lit(self.dst.tar_relative(name))).alias("tar"),
            pl.when(here).then(pl.col("_member")).alias("member"),
        )
        samples = int(rows.select(here.sum()).item())
        self.samples += samples
        self.not_readable += images - samples
        self.write_shard(name, rows.drop("_key", "_image", "_member"), sides)

    def _members(self, path: str) -> set[str]:
        if not self.dst.exists(path):
            return set()
        fs, p = fsspec.core.url_to_fs(path)
        with fs.open(p, "rb") as f, tarfile.open(fileobj=f, mode="r") as tar:
            return set(tar.getnames())

    def _write_tar(self, name: str, rows: pl.DataFrame) -> None:
        """KEY.EXT, KEY.txt and KEY.json per row with a readable image, source tar by source tar."""
        images, path = rows.filter("_image"), self.dst.tar(name)
        fs, _ = fsspec.core.url_to_fs(path)
        with atomic_path(path) as tmp, fs.open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w") as out:
            for (tar,), group in images.group_by("tar", maintain_order=True):
                data = _read_images(self.src.root, tar, group["member"].to_list())
                for row, image in zip(group.iter_rows(named=True), data, strict=True):
                    if image is None:
                        continue
                    key, member = row.pop("_key"), row.pop("_member")
                    del row["_image"]
                    row |= {"tar": self.dst.tar_relative(name), "member": member}
                    text = row.get(self.caption_column)
                    _add(out, member, image)
                    _add(out, f"{key}.txt", ("" if text is None else str(text)).encode("utf-8"))
                    _add(
                        out,
                        f"{key}.json",
                        json.dumps({"key": key, **json_safe(row)}, allow_nan=False).encode(),
                    )

    def finish(self) -> dict:
        if self.pending or self.index == 0:  # the last, smaller shard (or one empty shard: nothing kept)
            self._flush(self.pending)
            self.pending = []
        return {
            "format": "webdataset",
            "tar_paths": "relative to this folder",
            "tars": self.index,
            "shard_size": self.shard_size,
            "caption_column": self.caption_column,
            "samples": self.samples,
            "images_not_readable": self.not_readable,
        } | self.summary()
