"""Corruption: how likely an image-text pair is mismatched, from signals that need no labels.

The slight-corruption study (Chen et al., NeurIPS 2024; ../shared/ANCHORS.md) found that a few
percent of mismatched pairs help diffusion pre-training and more hurts, so pairsmith scores every pair
and estimates the share of mismatched pairs instead of dropping any. Pure functions over arrays; the
global Beam stage (`pipelines/corruption_stage.py`) feeds them.

Components, each scaled so that 0 looks matched and 1 looks like a random pair:
- `clip`: 1 - the percentile of the row's `clip_score` within the dataset (primary CLIP model);
- `caption_rank` (image -> text retrieval): rows are cut into random blocks of K + 1 (K =
  `corruption.block_size`, drawn by seed); the share of the block's K other captions that the image
  is closer to than to its own caption;
- `image_rank` (text -> image retrieval): the share of the block's K other images that the caption is
  closer to than to its own image;
- `recaption` (when a recaption exists): 1 - the percentile of `recaption_alt_similarity` (the cosine
  of the alt-text and the recaption in the primary CLIP's text space) within the dataset.

`corruption_evidence` = the weighted mean of the components present (WEIGHTS: clip 2, each other 1).
On the toy set the CLIP percentile alone separates swapped from true pairs best (ROC AUC 0.995-1.0
at 2.5-20 % swaps, the ranks 0.948-0.9998; `benchmarks/corruption_proof.py` prints them) and the
weighted mean loses nothing (0.995-1.0); the ranks keep half the weight because a pair's rank among
other pairs is immune to the per-image and per-caption cosine offsets of real CLIP models, which a
global percentile is not.

Calibration, without labels (decoys): every scored row also gets a decoy, its image with the caption
of another row of its block (a different text) ranked against the block's other K - 1 captions and
images, i.e. exactly what the row's evidence would be had its caption been swapped. The decoys'
evidence is therefore a sample of the evidence of mismatched pairs in *this* dataset with *this*
model. Then:
- the ratio: mismatched pairs score like decoys and true pairs rarely do, so above the decoys'
  `NULL_QUANTILE` quantile t (90 % of decoys lie above it) the observed share, divided by the decoys'
  share, estimates the ratio: rho = P(evidence >= t) / P(decoy >= t) (Storey's estimator of a null
  proportion, with the null simulated instead of assumed). True pairs that look as unrelated as random
  ones are counted as mismatched, which for training data they are;
- `corruption_score`, per row: the local false discovery rate c * f_decoy(e) / f(e) (Efron's, with c
  = rho), from histograms of evidence and decoy evidence in POSTERIOR_BINS bins, made non-decreasing in
  the evidence (`posterior_table`), clipped to [0, 1] and interpolated between bin centres: the
  probability that the pair is mismatched. c is set so that the rows' mean score is rho (clipping
  would otherwise lose mass), so the mean over any subset estimates that subset's corruption ratio.
Rows with a recaption form their own population (their evidence has one component more), with its
own decoys, ratio and posterior.
"""

from __future__ import annotations

import hashlib

import numpy as np

# Similarities closer than this are ties in the ranks. Duplicate rows have equal embeddings, so equal
# similarities, which float32 matrix products round apart by up to ~3e-5 (512 dims), in a direction
# that depends on the BLAS build and on where the row sits in the block; float16 embeddings carry
# ~1e-3 of noise anyway.
TIE = 1e-4
WEIGHTS = {"clip": 2.0, "caption_rank": 1.0, "image_rank": 1.0, "recaption": 1.0}
COSINE_EDGES = np.linspace(-1.0, 1.0, 4001)  # percentiles of cosines at 0.0005 resolution
EVIDENCE_BINS = 1000  # fine histogram of evidence, for the ratio's threshold
POSTERIOR_BINS = 40  # coarse histogram, for the local false discovery rate
NULL_QUANTILE = 0.1  # the threshold t: 90 % of decoys have evidence >= t
KINDS = ("clip+retrieval", "clip+retrieval+recaption")


def stable_hash(seed: int, uid: str) -> int:
    """A 64-bit hash of (seed, uid): random-looking, the same on every machine and run."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{uid}".encode(), digest_size=8).digest(), "big")


def percentiles(values: np.ndarray, counts: np.ndarray, edges: np.ndarray = COSINE_EDGES) -> np.ndarray:
    """Share of the histogrammed values below each value (linear inside a bin); NaN stays NaN."""
    values = np.asarray(values, np.float64)
    total = counts.sum()
    if total == 0:
        return np.full(values.shape, np.nan)
    below = np.r_[0, np.cumsum(counts)]
    position = np.clip((np.nan_to_num(values) - edges[0]) / (edges[1] - edges[0]), 0, len(counts) - 1e-9)
    index = position.astype(int)
    share = (below[index] + (position - index) * counts[index]) / total
    return np.where(np.isnan(values), np.nan, share)


def histogram(values, edges: np.ndarray = COSINE_EDGES) -> np.ndarray:
    """Counts of the finite values in the bins of `edges` (values outside go to the end bins)."""
    values = np.asarray(values, np.float64)
    values = np.clip(values[np.isfinite(values)], edges[0], edges[-1])
    return np.histogram(values, edges)[0].astype(np.int64)


def decoy_partners(texts: np.ndarray) -> np.ndarray:
    """For each row of a block, the next row (cyclically) whose text embedding differs; -1 if none."""
    m = len(texts)
    partner = np.full(m, -1)
    for i in range(m):
        for step in range(1, m):
            j = (i + step) % m
            if float(texts[i] @ texts[j]) < 0.9999:
                partner[i] = j
                break
    return partner


def _beats(sims: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where a similarity is higher than the reference by more than a tie (`TIE`)."""
    return sims > reference + TIE


def block_signals(images: np.ndarray, texts: np.ndarray) -> dict[str, np.ndarray]:
    """Retrieval ranks of each pair in a block and of its decoy (unit vectors, one row per pair).

    Returns `caption_rank`, `image_rank` (NaN for blocks under 3 rows), the decoy's `decoy_partner`,
    `decoy_cosine`, `decoy_caption_rank` and `decoy_image_rank` (NaN without a partner). A decoy pairs
    image i with caption j and competes against the block without i and j: what a swapped row meets.
    """
    m = len(images)
    sims = images.astype(np.float32) @ texts.astype(np.float32).T  # sims[i, j] = image i vs caption j
    own = np.diag(sims)
    out = {k: np.full(m, np.nan) for k in ("caption_rank", "image_rank", "decoy_cosine")}
    out |= {k: np.full(m, np.nan) for k in ("decoy_caption_rank", "decoy_image_rank")}
    out["decoy_partner"] = np.full(m, -1)
    if m < 3:
        return out
    out["caption_rank"] = _beats(sims, own[:, None]).sum(1) / (m - 1)
    out["image_rank"] = _beats(sims, own[None, :]).sum(0) / (m - 1)
    partner = decoy_partners(texts)
    rows = np.flatnonzero(partner >= 0)
    j = partner[rows]
    decoy = sims[rows, j]
    others = np.ones((len(rows), m), bool)
    others[np.arange(len(rows)), rows] = False
    others[np.arange(len(rows)), j] = False
    out["decoy_partner"] = partner
    out["decoy_cosine"][rows] = decoy
    out["decoy_caption_rank"][rows] = (_beats(sims[rows], decoy[:, None]) & others).sum(1) / (m - 2)
    images_for_caption = sims[:, j].T  # row k: every image against the decoy's caption
    out["decoy_image_rank"][rows] = (_beats(images_for_caption, decoy[:, None]) & others).sum(1) / (m - 2)
    return out


def evidence(clip_pct, caption_rank, image_rank, recaption_pct=None) -> np.ndarray:
    """Weighted mean of the mismatch evidences present (NaN where clip or ranks are missing)."""
    parts = [
        (1 - np.asarray(clip_pct, float), WEIGHTS["clip"]),
        (np.asarray(caption_rank, float), WEIGHTS["caption_rank"]),
        (np.asarray(image_rank, float), WEIGHTS["image_rank"]),
    ]
    total = sum(v * w for v, w in parts)
    weight = sum(w for _, w in parts)
    if recaption_pct is not None:
        rec = 1 - np.asarray(recaption_pct, float)
        has = ~np.isnan(rec)
        total = total + np.where(has, rec, 0) * WEIGHTS["recaption"]
        weight = weight + has * WEIGHTS["recaption"]
    return total / weight


def evidence_histogram(values) -> np.ndarray:
    return histogram(values, np.linspace(0.0, 1.0, EVIDENCE_BINS + 1))


def estimate_ratio(observed: np.ndarray, decoys: np.ndarray) -> dict:
    """rho = P(evidence >= t) / P(decoy >= t), t the decoys' NULL_QUANTILE quantile (fine histograms)."""
    rows, n_decoys = int(observed.sum()), int(decoys.sum())
    if rows == 0 or n_decoys == 0:
        return {"rows": rows, "decoys": n_decoys, "ratio": None, "threshold": None}
    cut = int(np.searchsorted(np.cumsum(decoys), NULL_QUANTILE * n_decoys, side="right"))
    decoys_above = decoys[cut:].sum() / n_decoys
    observed_above = observed[cut:].sum() / rows
    ratio = float(min(1.0, observed_above / decoys_above)) if decoys_above > 0 else None
    return {
        "rows": rows,
        "decoys": n_decoys,
        "ratio": ratio,
        "threshold": cut / EVIDENCE_BINS,
        "observed_above": float(observed_above),
        "decoys_above": float(decoys_above),
    }


def pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to `values` in weighted least squares."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (v2, w2, n2), (v1, w1, n1) = blocks.pop(), blocks.pop()
            total = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / total if total else (v1 + v2) / 2, total, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks]) if blocks else np.zeros(0)


def posterior_table(observed: np.ndarray, decoys: np.ndarray, ratio: float | None) -> np.ndarray:
    """P(mismatch) at the centre of each coarse evidence bin: min(1, c * f_decoy / f), in [0, 1].

    f_decoy / f comes from the share of decoys among the bin's decoys and rows, y = d / (d + n), made
    non-decreasing in the evidence (pool-adjacent-violators weighted by d + n): f_decoy / f =
    y / (1 - y) * rows / decoys. Efron's c is the ratio; here c is the value (found by bisection) at
    which the rows' mean posterior equals the ratio. With few mismatched rows per bin, f_decoy / f is
    noisy: bins where ratio * f_decoy / f exceeds 1 are clipped and the mass they lose would bias every
    subset's estimate low (seen: a mean of 0.078 for 10 % swapped among 400 rows).
    """
    if ratio is None:
        return np.full(POSTERIOR_BINS, np.nan)
    group = EVIDENCE_BINS // POSTERIOR_BINS
    n = observed.reshape(POSTERIOR_BINS, group).sum(1).astype(float)
    d = decoys.reshape(POSTERIOR_BINS, group).sum(1).astype(float)
    share = pool_adjacent_violators(np.where(n + d > 0, d / np.maximum(n + d, 1), 0.0), n + d)
    odds = share / np.maximum(1 - share, 1e-12)  # only decoys in a bin: as good as infinite
    odds *= observed.sum() / max(decoys.sum(), 1)
    rows_at = (np.arange(EVIDENCE_BINS) + 0.5) / EVIDENCE_BINS  # the fine bins' centres stand for rows

    def mean_posterior(c: float) -> float:
        return float(observed @ posterior(rows_at, np.clip(c * odds, 0.0, 1.0))) / max(observed.sum(), 1)

    low, high = 0.0, 1.0
    while mean_posterior(high) < ratio and high < 1e12:
        low, high = high, high * 10
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_posterior(middle) < ratio else (low, middle)
    return np.clip(high * odds, 0.0, 1.0)


def posterior(values, table) -> np.ndarray:
    """P(mismatch) of each evidence value: linear between the table's bin centres; NaN stays NaN."""
    values, table = np.asarray(values, float), np.asarray(table, float)
    centres = (np.arange(len(table)) + 0.5) / len(table)
    return np.where(np.isnan(values), np.nan, np.interp(np.nan_to_num(values), centres, table))


def quantile_of(counts: np.ndarray, q: float, edges: np.ndarray = COSINE_EDGES) -> float | None:
    """The q-quantile of histogrammed values (bin resolution: the bin's centre)."""
    total = counts.sum()
    if total == 0:
        return None
    index = min(int(np.searchsorted(np.cumsum(counts), q * total)), len(counts) - 1)
    return float(edges[index] + (edges[1] - edges[0]) / 2)


def signal_flags(
    clip_score, caption_rank, image_rank, recaption_similarity, decoy_clip_top, decoy_recaption_top
) -> list[str]:
    """The signals that fired for one row: by that signal alone the pair is no better matched than the
    best NULL_QUANTILE of decoys (`decoy_*_top`: the decoys' 1 - NULL_QUANTILE quantiles; a random
    caption's rank is uniform, so its NULL_QUANTILE quantile is NULL_QUANTILE)."""
    fired = []
    if clip_score is not None and decoy_clip_top is not None and clip_score <= decoy_clip_top:
        fired.append("clip_low")
    if caption_rank is not None and caption_rank >= NULL_QUANTILE:
        fired.append("caption_not_retrieved")
    if image_rank is not None and image_rank >= NULL_QUANTILE:
        fired.append("image_not_retrieved")
    if (
        recaption_similarity is not None
        and decoy_recaption_top is not None
        and recaption_similarity <= decoy_recaption_top
    ):
        fired.append("recaption_disagrees")
    return fired


def rewrite_captions(
    captions: list[str], clusters: list[int], fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[bool]]:
    """Give round(fraction * n) random rows the caption of another row from a different semantic
    cluster (Chen et al.'s rewrite corruption; the other row keeps its caption). Returns the captions
    and the mask of rewritten rows. Raises ValueError when every row is in one cluster."""
    n = len(captions)
    wanted = int(round(fraction * n))
    out, rewritten = list(captions), [False] * n
    if wanted == 0:
        return out, rewritten
    clusters = np.asarray(clusters)
    if len(np.unique(clusters)) < 2:
        raise ValueError("rewrite needs rows from at least two semantic clusters")
    for i in rng.permutation(n)[:wanted].tolist():
        tries = rng.integers(n, size=64).tolist()  # most rows are in other clusters: a few draws do
        other = next((j for j in tries if clusters[j] != clusters[i] and captions[j] != captions[i]), None)
        if other is None:  # a dominant cluster: draw among the rows outside it
            pool = [j for j in np.flatnonzero(clusters != clusters[i]).tolist() if captions[j] != captions[i]]
            other = pool[int(rng.integers(len(pool)))] if pool else None
        if other is not None:
            out[i], rewritten[i] = captions[other], True
    return out, rewritten
