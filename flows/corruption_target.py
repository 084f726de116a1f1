"""`pairsmith select ... --target-corruption R`: the subset whose estimated corruption ratio is R.

`corruption_score` is each pair's probability of being mismatched (`filters/corruption.py`), so the
mean score of a set of rows estimates the share of mismatched pairs in it. Among the rows the other
rules keep, the subset keeps every row up to a score threshold and drops the rest: the pairs most
likely mismatched go first, and the least obvious ones stay, so that the subset keeps R of
(estimated) slightly corrupted pairs on purpose, as the slight-corruption study recommends, with as
many rows as that budget allows. The threshold comes from a histogram of the scores (BINS bins of
counts and sums, one pass over the shards, never the rows in one process); in the threshold bin a
second pass orders the rows by `corruption_evidence` (then a hash of the uid) and keeps exactly as
many as the target allows (only that bin's rows are held). The estimate reported is the mean score of
the rows actually written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from pairsmith.filters.corruption import stable_hash
from pairsmith.pipelines.layout import Layout, read_json, read_parquet

BINS = 10_000
TIE_SEED = 1_000_003  # orders the rows of the threshold bin
HOW = (
    "mean corruption_score of the rows kept (corruption_score: each pair's probability of being mismatched, "
    "the local false discovery rate against decoy pairs; see filters/corruption.py); rows were kept in "
    "order of increasing corruption_score up to the threshold"
)


class TargetError(ValueError):
    """The target cannot be reached by selection; the message says why and what to do instead."""


@dataclass(frozen=True)
class TargetPlan:
    target: float
    cut: int  # rows whose score bin is below `cut` are kept
    boundary: tuple[float, int] | None  # in bin `cut`, rows up to this (evidence, uid hash) are kept
    candidates: int  # rows the other rules keep that have a score
    candidates_estimate: float  # their mean score

    def keep(self, frame: pl.DataFrame) -> pl.Series:
        bins = _bins(_scores(frame))
        mask = bins < self.cut
        if self.boundary is not None:
            evidence = frame["corruption_evidence"].cast(pl.Float64).to_numpy()
            uids = frame["uid"].to_list()
            for i in np.flatnonzero(bins == self.cut).tolist():
                mask[i] = (evidence[i], stable_hash(TIE_SEED, uids[i])) <= self.boundary
        return pl.Series("target", mask)

    @property
    def threshold(self) -> float:
        return (self.cut + 1) / BINS if self.boundary is not None else self.cut / BINS


def _scores(frame: pl.DataFrame) -> np.ndarray:
    """`corruption_score` per row, NaN where it is null."""
    return frame["corruption_score"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _bins(scores: np.ndarray) -> np.ndarray:
    """Score bin per row; rows without a score get bin BINS + 1 (never kept)."""
    return np.where(
        np.isnan(scores), BINS + 1, np.clip(np.floor(np.nan_to_num(scores) * BINS), 0, BINS - 1)
    ).astype(int)


def _candidates(layout: Layout, shards: list[str], base: Callable[[pl.DataFrame], pl.Series]):
    """Per shard, the rows the other rules keep (uid, score, evidence)."""
    for shard in shards:
        frame = pl.from_arrow(read_parquet(layout.data_shard(shard)))
        yield frame.filter(base(frame)).select("uid", "corruption_score", "corruption_evidence")


def plan(
    layout: Layout, shards: list[str], base: Callable[[pl.DataFrame], pl.Series], target: float
) -> TargetPlan:
    """Where the kept rows' mean score reaches `target`: a score bin, and inside it (ordered by
    evidence, then a hash of the uid) the last row kept. Two passes over the shards."""
    if not 0 <= target < 1:
        raise TargetError(f"--target-corruption must be in [0, 1), got {target}")
    counts, sums, passing = np.zeros(BINS, np.int64), np.zeros(BINS), 0
    for frame in _candidates(layout, shards, base):
        passing += frame.height
        scores = frame["corruption_score"].drop_nulls().to_numpy().astype(float)
        bins = _bins(scores)
        counts += np.bincount(bins, minlength=BINS)
        sums += np.bincount(bins, weights=scores, minlength=BINS)
    rows = int(counts.sum())
    if passing == 0:
        raise TargetError("no row passes the other rules, so no target can be met")
    if rows == 0:
        raise TargetError(
            f"none of the {passing} rows that pass the rules has a corruption_score (it needs an image, a "
            "caption and a CLIP model; an output written before scores existed needs "
            f"`pairsmith rescore {layout.root}`)"
        )
    mean = sums.sum() / rows
    if mean <= target:
        raise TargetError(
            f"the {rows} rows the rules keep have an estimated corruption ratio of {mean:.4f}, at most the "
            f"target {target}: selection only removes mismatched pairs; to add some, make a controlled "
            "copy with `pairsmith corrupt`"
        )
    cum_rows, cum_sum = np.cumsum(counts), np.cumsum(sums)
    cut = int(np.flatnonzero(cum_sum > target * cum_rows)[0])  # the first prefix whose mean exceeds it
    kept_rows, kept_sum = (cum_rows[cut - 1], cum_sum[cut - 1]) if cut else (0, 0.0)
    average = sums[cut] / counts[cut]  # > target, or the prefix would not exceed it
    extra = int(np.clip(round((target * kept_rows - kept_sum) / (average - target)), 0, counts[cut]))
    boundary = None
    if extra:
        keys = [
            (e, stable_hash(TIE_SEED, u))
            for frame in _candidates(layout, shards, base)
            for u, _, e in frame.filter(pl.Series(_bins(_scores(frame)) == cut)).iter_rows()
        ]
        boundary = sorted(keys)[extra - 1]
    return TargetPlan(target, cut, boundary, rows, float(mean))


def report(plan: TargetPlan, rows: int, score_sum: float, layout: Layout) -> dict:
    """What `select` records and prints about a target: the estimate of the subset and how."""
    dataset = read_json(layout.corruption_report) if layout.exists(layout.corruption_report) else {}
    return {
        "target": plan.target,
        "estimated_corruption_ratio": score_sum / rows if rows else None,
        "how": HOW,
        "score_threshold": plan.threshold,
        "candidate_rows": plan.candidates,
        "candidates_estimated_ratio": plan.candidates_estimate,
        "dataset_estimated_ratio": dataset.get("estimated_corruption_ratio"),
    }
