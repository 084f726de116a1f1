"""Model files on remote storage: each worker machine copies a file once to its local disk.

The model folder (`PAIRSMITH_MODELS`) and any file or folder a model spec names (a CLIP checkpoint
`ARCH@gs://.../ckpt.pt`, `local-dir:s3://...`, a watermark or head file) may be an fsspec URL as well as
a local path (e.g. one baked into the worker image). A URL is copied once to the machine's model cache
(`PAIRSMITH_MODEL_CACHE`, default `~/.cache/pairsmith/remote`), under a folder named by a hash of the
URL, through a temporary name and a rename, so that a half-copied file is never loaded and every later
load, by this process or another on the machine, reads the local copy. The same folder keeps what is
decoded once per machine rather than once per worker (langid's model, `filters/language.py`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import fsspec


def is_url(path: str | os.PathLike) -> bool:
    """Whether `path` names remote storage (`gs://`, `s3://`, `memory://`, ...), not a local path."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def cache_root() -> Path:
    return Path(os.environ.get("PAIRSMITH_MODEL_CACHE", Path.home() / ".cache" / "pairsmith" / "remote"))


def local_copy(path: str) -> str:
    """A local path for `path`: itself when local, else the machine's copy of the remote file or
    folder (made on first use). FileNotFoundError when the remote one does not exist."""
    if not is_url(path):
        return path
    url = path.rstrip("/")
    target = cache_root() / hashlib.sha256(url.encode()).hexdigest()[:16] / url.rsplit("/", 1)[-1]
    if target.exists():
        return str(target)
    fs, remote = fsspec.core.url_to_fs(url)
    if not fs.exists(remote):
        raise FileNotFoundError(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        fs.get(remote, str(scratch), recursive=fs.isdir(remote))
        os.replace(scratch, target)
    except OSError:
        if not target.exists():  # another process finished first: keep its copy
            raise
    finally:
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        elif scratch.exists():
            scratch.unlink()
    return str(target)
