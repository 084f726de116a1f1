"""Small JPEG thumbnails of chosen rows, read back from the webdataset tars their `tar`/`member` name,
as `data:` URIs for a self-contained page."""

from __future__ import annotations

import base64
import io
import tarfile
from collections import defaultdict

from PIL import Image

from pairsmith.flows.export import tar_location
from pairsmith.pipelines.annotate import image_loader

SIZE = 160  # longest side, px
QUALITY = 70


def data_uri(data: bytes) -> str | None:
    """A JPEG thumbnail of encoded image bytes as a data URI; None when the bytes do not decode."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            img.thumbnail((SIZE, SIZE))
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=QUALITY, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def load(root: str, wanted: dict[str, tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Thumbnails of `wanted` (key -> (tar, member), the tar relative to `root` or absolute), one pass
    per tar; returns them and the tars that could not be read (their rows get no thumbnail)."""
    per_tar: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, (tar, member) in wanted.items():
        per_tar[tar].append((key, member))
    found, unreadable = {}, []
    for tar, rows in sorted(per_tar.items()):
        try:
            layout, shard = tar_location(root, tar)
        except ValueError:
            unreadable.append(tar)
            continue
        try:
            images = list(image_loader(layout, shard, [member for _, member in rows]))
        except (OSError, EOFError, tarfile.TarError) as exc:  # a missing or truncated tar
            unreadable.append(f"{tar} ({exc})")
            continue
        for (key, _), data in zip(rows, images, strict=True):
            uri = data_uri(data) if data is not None else None
            if uri is not None:
                found[key] = uri
    return found, unreadable
