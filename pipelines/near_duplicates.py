"""Near-duplicate search without comparing all pairs: bucket by hash bands, verify inside buckets,
join the verified pairs into groups.

Plain functions over numpy arrays; `pipelines/dedup.py`'s graph calls them (the buckets are its
group-by keys), run by Beam in a run and in memory by `benchmarks/dedup_scale.py`.

- pHash (64 bits, Hamming distance <= k): multi-index hashing. Split the bits into k + 1 bands; two
  hashes within distance k agree exactly on at least one band (pigeonhole), so every such pair meets
  in some band's bucket. Inside a bucket the same argument is applied again to the bits not yet known
  equal, so a crowded bucket is split rather than compared pair by pair.
- MinHash (Jaccard >= t): LSH with b bands of r rows (datasketch's optimum for t), verified by the
  share of equal signature values.
- Embeddings (cosine > 1 - eps): SemDeDup inside each k-means cluster, in blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from pairsmith.schemas.errors import ConfigError

FULL_64 = (1 << 64) - 1
BRUTE_FORCE_MAX = 256  # up to this many values a bucket is compared pair by pair


class UnionFind:
    """Disjoint sets whose root is always the smallest member, so group ids do not depend on order."""

    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = (ra, rb) if ra < rb else (rb, ra)
            self.parent[high] = low
            self.parent.setdefault(low, low)

    def merge(self, other: UnionFind) -> None:
        for node, parent in other.parent.items():
            self.union(node, parent)

    def roots(self) -> dict:
        """Every member -> its group's root (the smallest member)."""
        return {node: self.find(node) for node in self.parent}


def star_edges(members: list, pairs: Iterable) -> list[tuple]:
    """The groups that `pairs` (indices into `members`) form, as (root, member) edges: a group of n
    members costs n - 1 edges however many pairs were verified."""
    groups = UnionFind()
    for i, j in np.asarray(pairs, dtype=np.int64).reshape(-1, 2).tolist():
        groups.union(members[i], members[j])
    return [(root, node) for node, root in groups.roots().items() if node != root]


# --- pHash: multi-index hashing ------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def split_mask(mask: int, parts: int) -> list[int]:
    """The set bits of `mask` cut into `parts` runs of (nearly) equal length, as masks."""
    bits = [b for b in range(64) if mask >> b & 1]
    edges = np.linspace(0, len(bits), parts + 1).round().astype(int)
    return [sum(1 << b for b in bits[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def phash_bands(value: int, max_distance: int) -> list[tuple[int, int]]:
    """(band index, the hash's bits in that band): the bucket keys of one pHash."""
    return [(j, value & band) for j, band in enumerate(split_mask(FULL_64, max_distance + 1))]


def band_mask(index: int, max_distance: int) -> int:
    return split_mask(FULL_64, max_distance + 1)[index]


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a[:, None] ^ b[None, :])


def _pairs_within_groups(group_id: np.ndarray, members: np.ndarray, longest: int) -> np.ndarray:
    """Every pair of positions that share a group id, for ids sorted so that groups are contiguous;
    vectorised by the distance d between the two positions (1 .. longest - 1)."""
    found = [np.empty((0, 2), dtype=np.int64)]
    for d in range(1, longest):
        a = np.flatnonzero((group_id[:-d] == group_id[d:]) & members[:-d])
        found.append(np.stack([a, a + d], axis=1))
    return np.concatenate(found)


def close_pairs(values: np.ndarray, max_distance: int, free: int = FULL_64) -> np.ndarray:
    """Index pairs (i < j), as an (m, 2) array, of `values` (uint64) within Hamming distance
    `max_distance`, given that all values agree outside the bits of `free`. Each pair once."""
    n = len(values)
    if n <= BRUTE_FORCE_MAX or bin(free).count("1") <= max_distance:
        return np.argwhere(np.triu(_hamming(values, values) <= max_distance, k=1))
    parts = split_mask(free, max_distance + 1)
    masks = np.array(parts, dtype=np.uint64)
    # all parts at once: rows sorted by (part, the value's bits in that part), so equal keys are adjacent
    keys = (values[None, :] & masks[:, None]).ravel()
    part = np.repeat(np.arange(len(parts)), n)
    order = np.lexsort((keys, part))
    keys, part, row = keys[order], part[order], np.tile(np.arange(n), len(parts))[order]
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (part[1:] != part[:-1])])
    sizes = np.diff(np.r_[starts, len(keys)])
    group_id = np.repeat(np.arange(len(starts)), sizes)
    crowded = sizes > BRUTE_FORCE_MAX
    positions = _pairs_within_groups(group_id, ~crowded[group_id], int(sizes[~crowded].max(initial=1)))
    pairs, found_in = [row[positions]], [part[positions[:, 0]]]
    for start, size in zip(starts[crowded].tolist(), sizes[crowded].tolist(), strict=True):
        group = row[start : start + size]  # split again on the bits not yet known equal
        pairs.append(group[close_pairs(values[group], max_distance, free & ~parts[part[start]])])
        found_in.append(np.full(len(pairs[-1]), part[start]))
    pairs, found_in = np.sort(np.concatenate(pairs), axis=1), np.concatenate(found_in)
    differ = values[pairs[:, 0]] ^ values[pairs[:, 1]]
    first_agreeing = np.argmax((differ[:, None] & masks[None, :]) == 0, axis=1)
    # a pair agreeing on several parts is found in each: keep it once, in the first
    return pairs[(np.bitwise_count(differ) <= max_distance) & (first_agreeing == found_in)]


# --- MinHash LSH ---------------------------------------------------------------------------------


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positives + negatives at `threshold` (datasketch's optimum,
    as its MinHashLSH chooses them). ConfigError when the optimum is a single band, which datasketch
    refuses: a threshold that high needs more permutations."""
    from datasketch import MinHashLSH

    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    except ValueError as exc:
        raise ConfigError(
            f"dedup.caption_jaccard={threshold} with dedup.minhash_perms={num_perm}: datasketch's LSH cannot "
            f"band it ({exc}); lower the threshold or raise the permutations"
        ) from None
    return lsh.b, lsh.r


def minhash_bands(signature: np.ndarray, bands: int, rows: int) -> list[tuple[int, bytes]]:
    """(band index, the band's rows as bytes): the bucket keys of one MinHash signature."""
    return [(b, signature[b * rows : (b + 1) * rows].tobytes()) for b in range(bands)]


def similar_signature_pairs(signatures: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose estimated Jaccard (share of equal MinHash values) >= threshold."""
    pairs = []
    for start in range(0, len(signatures), 256):  # blocks keep memory flat in a crowded bucket
        block = signatures[start : start + 256]
        agree = (block[:, None, :] == signatures[None, :, :]).mean(axis=2) >= threshold
        i, j = np.nonzero(agree)
        i = i + start
        keep = i < j
        pairs += zip(i[keep].tolist(), j[keep].tolist(), strict=True)
    return pairs


# --- Embeddings: SemDeDup inside a cluster -------------------------------------------------------


def semantic_pairs(vectors: np.ndarray, eps: float, block: int = 1024) -> list[tuple[int, int]]:
    """Index pairs (i < j) of unit vectors with cosine > 1 - eps, computed block by block; a block of
    rows is compared with itself and the rows after it only (half the products of all against all)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    pairs = []
    for start in range(0, len(vectors), block):
        sims = vectors[start : start + block] @ vectors[start:].T
        i, j = np.nonzero(sims > 1 - eps)
        keep = i < j
        pairs += zip((i[keep] + start).tolist(), (j[keep] + start).tolist(), strict=True)
    return pairs
