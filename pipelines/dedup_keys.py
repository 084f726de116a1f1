"""What the dedup stage reads from each shard: the row's node and its keys for every kind.

A node is `(uid, shard, row, clip_score)`: unique per row (identical rows share a uid but not a
position), ordered by uid first so a group's smallest node names the group, and carrying the score
that the keep rule needs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from pairsmith.pipelines.caption_sharing import caption_key
from pairsmith.pipelines.layout import Layout, read_parquet

Node = tuple[str, str, int, float]
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref_src)$")
DEFAULT_PORTS = {"http": 80, "https": 443}
SCHEME = "affine32"  # datasketch's 32-bit permutations: signature values fit in uint32


def normalise_url(url: str | None) -> str | None:
    """The URL with case-insensitive parts lowered, default port, fragment and tracking parameters
    dropped, and query parameters sorted: `HTTP://Ex.com:80/a?b=1&utm_source=x#top` -> `http://ex.com/a?b=1`."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)
    )
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def shingles(caption: str, words: int) -> set[str]:
    """Word n-grams of the case-folded caption, punctuation dropped."""
    tokens = re.findall(r"\w+", caption.casefold())
    if len(tokens) <= words:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + words]) for i in range(len(tokens) - words + 1)}


@functools.lru_cache(maxsize=4)
def _hasher(num_perm: int, seed: int):
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)


def minhash_signature(caption: str, words: int, num_perm: int, seed: int) -> np.ndarray:
    """The caption's MinHash signature (uint32 values) over its word shingles."""
    from datasketch import MinHash

    template = _hasher(num_perm, seed)
    sketch = MinHash(num_perm=num_perm, seed=seed, permutations=template.permutations, scheme=SCHEME)
    sketch.update_batch([s.encode() for s in shingles(caption, words)])
    return sketch.hashvalues.astype(np.uint32)


def make_node(uid: str, shard: str, row: int, clip_score: float | None) -> Node:
    """A row's node; a missing score sorts last for the keep rule."""
    return uid, shard, row, float("-inf") if clip_score is None else clip_score


def _columns(layout: Layout, shard: str, names: list[str]) -> list[list]:
    table = read_parquet(layout.data_shard(shard)).select(names)
    return [table.column(n).to_pylist() for n in names]


def shard_nodes(layout: Layout, shard: str, column: str) -> Iterator[tuple[Node, object]]:
    """(node, value of `column`) for every row of a data shard."""
    uids, scores, values = _columns(layout, shard, ["uid", "clip_score", column])
    for row, (uid, score, value) in enumerate(zip(uids, scores, values, strict=True)):
        yield make_node(uid, shard, row, score), value


def exact_keys(shard: str, layout: Layout) -> Iterator[tuple[tuple[str, str], Node]]:
    """(key, node) for the three exact keys: image bytes, normalised URL, (URL, caption)."""
    uids, scores, urls, captions, digests = _columns(
        layout, shard, ["uid", "clip_score", "url", "caption", "sha256"]
    )
    for row, (uid, score, url, caption, digest) in enumerate(
        zip(uids, scores, urls, captions, digests, strict=True)
    ):
        node = make_node(uid, shard, row, score)
        if digest:
            yield ("sha256", digest), node
        if url := normalise_url(url):
            yield ("url", url), node
            yield ("url+caption", f"{url}\n{caption or ''}"), node


def phash_keys(shard: str, layout: Layout) -> Iterator[tuple[int, Node]]:
    """(pHash, node) for every row with an image."""
    for node, value in shard_nodes(layout, shard, "phash"):
        if value is not None:
            yield value, node


def caption_keys(shard: str, layout: Layout) -> Iterator[tuple[str, Node]]:
    """(normalised caption, node) for every row with a caption."""
    for node, value in shard_nodes(layout, shard, "caption_fixed"):
        if (key := caption_key(value)) is not None:
            yield key, node
