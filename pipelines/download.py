"""Download: img2dataset's Downloader and Resizer, one shard at a time, behind the fetch policy.

Per shard: the fetchable rows go to img2dataset in a scratch folder; its tar is moved to
`images/SHARD.tar` and its per-row results, aligned with the input rows, to
`_work/download/SHARD.parquet` (written last: its presence marks the shard as downloaded).
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import threading
import warnings
from collections.abc import Callable

import fsspec
import img2dataset.resizer
import pyarrow as pa
import pyarrow.parquet as pq
from img2dataset.downloader import Downloader
from img2dataset.resizer import Resizer
from img2dataset.writer import WebDatasetSampleWriter
from PIL import Image

from pairsmith.filters.jpeg_quality import estimate_jpeg_quality
from pairsmith.pipelines.download_errors import PIXELS_KEY, classify
from pairsmith.pipelines.fetch_policy import fetch_policy
from pairsmith.pipelines.ingest import split_problem
from pairsmith.pipelines.layout import Layout, atomic_path, read_parquet, write_parquet
from pairsmith.schemas.config import DownloadConfig

RESULT_SCHEMA = pa.schema(
    [
        ("status", pa.string()),
        ("error_kind", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("image_bytes", pa.int64()),
        ("jpeg_quality", pa.int16()),
        ("sha256", pa.string()),
        ("tar", pa.string()),
        ("member", pa.string()),
    ]
)


def header_problem(img_stream, max_pixels: int) -> str | None:
    """Why an image must not be decoded, read from its header alone (Pillow's `open` decodes
    nothing); None if it may be."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(img_stream) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:  # beyond Pillow's own limit, 2 x Image.MAX_IMAGE_PIXELS
        return f"{exc} ({PIXELS_KEY})"
    except Exception as exc:  # noqa: BLE001  (any Pillow error is this row's decode error)
        detail = re.sub(r" ?<[^<>]* at 0x[0-9a-f]+>", "", str(exc))  # no memory addresses: rows must repeat
        return f"Image decoding error: unreadable header ({type(exc).__name__}: {detail})"
    if width * height > max_pixels:
        return f"image of {width}x{height} pixels is over {PIXELS_KEY}={max_pixels}"
    return None


class _QuietWhileResizing:
    """Stands in for img2dataset's `SuppressStdoutStderr`, which the Resizer enters around every image
    to hide the JPEG decoder's warnings: it saves file descriptors 1 and 2, points them at /dev/null and
    restores them, per call. Resizing on two threads at once (a multi-threaded Beam worker, the next
    shard's download beside annotate) interleaves those saves and restores, and the process's stdout
    and stderr stay on /dev/null for good: output, progress and tracebacks lost (a 4-thread run of
    `benchmarks/worker_memory.py` printed nothing and exited 0). Here the first thread in saves and
    redirects, the last one out restores, under a lock."""

    _lock = threading.Lock()
    _inside = 0
    _saved: list[int] = []

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._inside == 0:
                cls._saved = [os.dup(1), os.dup(2)]
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                os.close(null)
            cls._inside += 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._inside -= 1
            if cls._inside == 0:
                for fd, saved in zip((1, 2), cls._saved, strict=True):
                    os.dup2(saved, fd)
                    os.close(saved)
        return False


img2dataset.resizer.SuppressStdoutStderr = _QuietWhileResizing  # the Resizer looks it up per call


class _MeasuringResizer(Resizer):
    """img2dataset's Resizer that first reads the image header (too many pixels: never decoded) and
    measures the original file it was given: its byte size (LAION's 5 KB rule needs it) and, for a
    JPEG, its quality setting (re-encoding hides both).

    img2dataset resizes and then writes each sample from the same thread, one after the other,
    so the writer below can attach these measurements to the sample's metadata. An exception here
    would lose the row inside img2dataset, so every problem is returned as the row's error.
    """

    def __init__(self, max_pixels: int, **kwargs):
        super().__init__(**kwargs)
        self.max_pixels = max_pixels
        self.last: dict[str, int | None] = {}

    def __call__(self, img_stream, blurring_bbox_list=None):
        self.last = {"image_bytes": img_stream.getbuffer().nbytes, "jpeg_quality": None}
        problem = header_problem(img_stream, self.max_pixels)
        if problem is not None:
            return None, None, None, None, None, problem
        self.last["jpeg_quality"] = estimate_jpeg_quality(img_stream)
        img_stream.seek(0)
        return super().__call__(img_stream, blurring_bbox_list)


def member_key(shard: str, row: int) -> str:
    """The tar key of input row `row` of `shard`: unique across shards (img2dataset's own keys restart
    at 000000000 in every shard), and the same whenever the row is fetched (a retry names a recovered
    image as a first-time success would have been named)."""
    return f"{shard}_{row:09d}"


ImageHook = Callable[[int, bytes], None]  # (input row, stored image bytes), as each image is written


def _writer_class(resizer: _MeasuringResizer, shard: str, on_image: ImageHook | None):
    """img2dataset's webdataset writer, adding the resizer's measurements, keying each sample by
    `member_key` and handing each stored image to `on_image` once it is in the tar."""

    class MeasuringWriter(WebDatasetSampleWriter):
        def __init__(self, shard_id, output_folder, save_caption, oom_shard_count, schema, encode_format):
            schema = schema.append(pa.field("image_bytes", pa.int64())).append(
                pa.field("jpeg_quality", pa.int16())
            )
            super().__init__(shard_id, output_folder, save_caption, oom_shard_count, schema, encode_format)

        def write(self, img_str, key, caption, meta):
            downloaded = meta["status"] in ("success", "failed_to_resize")
            for name in ("image_bytes", "jpeg_quality"):
                meta[name] = resizer.last.get(name) if downloaded else None
            key = meta["key"] = member_key(shard, meta["row"])
            super().write(img_str, key, caption, meta)
            if on_image is not None and meta["status"] == "success" and img_str is not None:
                on_image(meta["row"], img_str)

    return MeasuringWriter


def make_resizer(cfg: DownloadConfig) -> _MeasuringResizer:
    return _MeasuringResizer(
        max_pixels=cfg.max_image_pixels,
        image_size=cfg.image_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_format=cfg.encode_format,
        encode_quality=cfg.encode_quality if cfg.encode_format != "png" else min(cfg.encode_quality, 9),
        min_image_size=cfg.min_image_size,
        max_image_area=cfg.max_image_area or float("inf"),
        max_aspect_ratio=cfg.max_aspect_ratio or float("inf"),
    )


def run_img2dataset(
    urls: list[str],
    captions: list[str | None],
    rows: list[int],
    cfg: DownloadConfig,
    folder: str,
    shard: str,
    on_image: ImageHook | None = None,
) -> pa.Table:
    """Download `urls` (input rows `rows` of `shard`) into `folder` (00000.tar + 00000.parquet, keys
    from `member_key`); return img2dataset's rows."""
    rows = pa.table({"url": urls, "caption": captions, "row": pa.array(rows, pa.int64())})
    with pa.OSFile(f"{folder}/input.arrow", "wb") as sink, pa.ipc.new_file(sink, rows.schema) as writer:
        writer.write_table(rows)
    resizer = make_resizer(cfg)
    downloader = Downloader(
        sample_writer_class=_writer_class(resizer, shard, on_image),
        resizer=resizer,
        thread_count=cfg.threads,
        save_caption=True,
        extract_exif=False,
        output_folder=folder,
        column_list=["url", "caption", "row"],
        timeout=cfg.timeout_s,
        number_sample_per_shard=len(urls),
        oom_shard_count=5,
        compute_hash="sha256",
        verify_hash_type=None,
        encode_format=cfg.encode_format,
        retries=cfg.retries,
        user_agent_token=cfg.user_agent_token,
        disallowed_header_directives=cfg.disallowed_header_directives,
    )
    downloader.download_shard((0, f"{folder}/input.arrow"))
    return pq.read_table(f"{folder}/00000.parquet")


def fetch_rows(
    inputs: pa.Table,
    rows: list[int],
    shard: str,
    tar: str,
    cfg: DownloadConfig,
    folder: str,
    on_image: ImageHook | None = None,
) -> pa.Table:
    """Download input rows `rows` of `shard` into `folder/00000.tar`; one result row per input row, in
    input order, filled for `rows` only."""
    out: dict[str, list] = {name: [None] * inputs.num_rows for name in RESULT_SCHEMA.names}
    if rows:
        urls, caps = inputs.column("url").to_pylist(), inputs.column("caption").to_pylist()
        with fetch_policy(cfg):
            fetched = run_img2dataset(
                [urls[i].strip() for i in rows], [caps[i] for i in rows], rows, cfg, folder, shard, on_image
            )
    else:
        fetched = pa.table({"row": pa.array([], pa.int64())})
        tarfile.open(f"{folder}/00000.tar", "w").close()
    for rec in fetched.to_pylist():
        i = rec["row"]
        status, kind = classify(rec["status"], rec["error_message"])
        out["status"][i], out["error_kind"][i], out["error_message"][i] = status, kind, rec["error_message"]
        for name in (
            "width",
            "height",
            "original_width",
            "original_height",
            "image_bytes",
            "jpeg_quality",
            "sha256",
        ):
            out[name][i] = rec.get(name)
        if rec["status"] == "success":
            out["tar"][i], out["member"][i] = tar, f"{rec['key']}.{cfg.encode_format}"
    for i in rows:
        if out["status"][i] is None:  # img2dataset lost the row: say so rather than drop it
            out["status"][i], out["error_kind"][i] = "failed_to_download", "other"
            out["error_message"][i] = "no result from the downloader"
    return pa.table(out, schema=RESULT_SCHEMA)


def _with_input_problems(results: pa.Table, problems: list[str | None]) -> pa.Table:
    """`results` with the rows that ingest found unusable marked `invalid_input` (kind from ingest)."""
    out = results.to_pydict()
    for i, problem in enumerate(problems):
        if problem is not None:
            kind, message = split_problem(problem)
            out["status"][i], out["error_kind"][i], out["error_message"][i] = "invalid_input", kind, message
    return pa.table(out, schema=RESULT_SCHEMA)


def download_shard(
    shard: str, layout: Layout, cfg: DownloadConfig, on_image: ImageHook | None = None
) -> dict:
    """Download one shard (skipped if already done); returns counts for progress reports.
    `on_image(row, bytes)` is called with each stored image as it is written (see `early_images`)."""
    if layout.exists(layout.download_shard(shard)):
        return {"shard": shard, "skipped": True}
    rows = read_parquet(layout.input_shard(shard))
    problems = rows.column("input_problem").to_pylist()
    fetch = [i for i, p in enumerate(problems) if p is None]
    scratch = tempfile.mkdtemp(prefix=f"pairsmith-{shard}-")
    try:
        fetched = fetch_rows(rows, fetch, shard, layout.tar_relative(shard), cfg, scratch, on_image)
        results = _with_input_problems(fetched, problems)
        upload_tar(f"{scratch}/00000.tar", layout.tar(shard))
        write_parquet(results, layout.download_shard(shard))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    statuses = results.column("status").to_pylist()
    return {"shard": shard, "rows": len(statuses), "success": statuses.count("success")}


def upload_tar(local: str, target: str) -> None:
    """Copy a local tar to `target` (any fsspec URL), atomically."""
    fs, _ = fsspec.core.url_to_fs(target)
    with atomic_path(target) as tmp:
        fs.put_file(local, tmp)
