"""`pairsmith corrupt OUT --ratio R --mode swap|rewrite --seed S --out OUT2` and `pairsmith rescore OUT`.

`corrupt` writes a controlled-corruption copy (how: `pipelines/corruption_inject.py`), then runs the
global stages on it as a run would (caption sharing, dedup, corruption), so that every column of the
copy is what pairsmith would have written had the corrupted captions come from the web, and
`injected_corruption` says which rows are corrupted. A researcher gets, per level, a dataset to train
on, the truth, and pairsmith's estimate to compare it with. The copy shares the source's images: on a
local disk `OUT2/images` links to `OUT/images` (the `tar` column stays valid); elsewhere the manifest
names the folder they are in. It resumes like a run: rerun the same command.

`rescore` reruns the corruption stage on an output in place: after `pairsmith recaption OUT` (the
recaption component joins the score) or after editing captions. The stage always runs as part of
`run` and `corrupt`; a separate command keeps recaptioning and scoring independent steps.
"""

from __future__ import annotations

import os
import time

from pairsmith.filters.profiles import clip_models
from pairsmith.pipelines import runner
from pairsmith.pipelines.corruption_inject import BUCKET_ROWS, inject_corruption
from pairsmith.pipelines.corruption_stage import bucket_count, count_rows
from pairsmith.pipelines.layout import Layout, read_columns, read_json, write_json, write_npy
from pairsmith.pipelines.semantic_clusters import cluster_count, train_centroids
from pairsmith.pipelines.stages import run_graph
from pairsmith.schemas.config import ConfigError, RunConfig
from pairsmith.schemas.errors import CorruptionError

MODES = ("swap", "rewrite")


def run_config(layout: Layout) -> RunConfig:
    """The config of the run that wrote an output folder (its `run.json`)."""
    if not layout.exists(layout.run_file) or not layout.shards("data"):
        raise CorruptionError(f"{layout.root} is not a pairsmith output folder (no run.json or data shards)")
    try:
        return RunConfig.model_validate(read_json(layout.run_file)["config"])
    except ValueError as exc:
        raise ConfigError(f"{layout.run_file} holds a config this version cannot read: {exc}") from None


def rescore(out: str) -> dict | None:
    """Recompute the corruption columns and `OUT/corruption.json` of an existing output."""
    layout = Layout(out)
    cfg = run_config(layout)
    report = runner.score_corruption(layout, cfg, layout.shards("data"), again=True)
    runner.merge(layout, cfg, layout.shards("data"))
    return report


def _clusters_usable(layout: Layout, shards: list[str]) -> bool:
    """True when every training pair (image and caption) has a `dup_semantic_cluster` and there are at
    least two clusters (dedup's default of one cluster per 1,000 rows gives one to a small dataset)."""
    seen = set()
    for shard in shards:
        table = read_columns(
            layout, layout.data_shard(shard), ("caption", "clip_score", "dup_semantic_cluster")
        )
        for caption, score, cluster in zip(*(c.to_pylist() for c in table.columns), strict=True):
            if caption is not None and score is not None:
                if cluster is None:
                    return False
                seen.add(cluster)
    return len(seen) >= 2


def _fallback_centroids(
    source: Layout, target: Layout, alias: str, shards: list[str], rows: int, seed: int
) -> str:
    """k-means (SemDeDup's, at least 2 clusters) over the image embeddings, for `rewrite` on a dataset
    without `dup_semantic_cluster`; the centroids go to the target's work folder."""
    clusters = max(2, cluster_count(0, rows))
    centroids = train_centroids(source, alias, shards, clusters, seed)
    if centroids is None or len(centroids) < 2:
        raise CorruptionError("rewrite needs at least two rows with image embeddings in different clusters")
    path = target.scratch("rewrite-centroids") + ".npy"
    write_npy(centroids, path)
    return path


def _link_images(source: Layout, target: Layout) -> str | None:
    """Link the copy's images folder to the source's on a local disk; None when it cannot."""
    if "file" not in source.fs.protocol or "file" not in target.fs.protocol:
        return None
    link, images = os.path.join(target.root, "images"), os.path.abspath(os.path.join(source.root, "images"))
    if not os.path.lexists(link) and os.path.isdir(images):
        os.symlink(images, link)
    return link if os.path.lexists(link) else None


def _counts(layout: Layout, shards: list[str]) -> dict:
    """Rows, training pairs (image embedding and caption: what `corrupt` may corrupt), corrupted rows
    and rows marked duplicate."""
    counts = dict.fromkeys(("rows", "training_pairs", "corrupted_rows", "duplicates"), 0)
    for shard in shards:
        table = read_columns(
            layout, layout.data_shard(shard), ("caption", "clip_score", "injected_corruption", "is_duplicate")
        )
        captions, scores, injected, duplicate = (c.to_pylist() for c in table.columns)
        counts["rows"] += table.num_rows
        counts["training_pairs"] += sum(
            c is not None and s is not None for c, s in zip(captions, scores, strict=True)
        )
        counts["corrupted_rows"] += sum(v is not None for v in injected)
        counts["duplicates"] += sum(v is True for v in duplicate)
    return counts


def corrupt(source: str, target: str, ratio: float, mode: str = "swap", seed: int = 0) -> dict:
    """Write the controlled-corruption copy of `source` into `target`; returns the copy's manifest."""
    started = time.time()
    if mode not in MODES:
        raise CorruptionError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0 < ratio <= 1:
        raise CorruptionError(f"--ratio must be in (0, 1], got {ratio}")
    src, dst = Layout(source), Layout(target)
    cfg = run_config(src)
    clips = clip_models(cfg.models)
    if not clips:
        raise CorruptionError(f"{source} has no CLIP model: nothing could score the corrupted captions")
    request = {"source": source, "ratio": ratio, "mode": mode, "seed": seed}
    if dst.exists(dst.injection):
        if read_json(dst.injection) != request:
            raise CorruptionError(f"{target} holds another corrupted copy ({read_json(dst.injection)})")
    elif dst.exists(dst.run_file) or dst.shards("data"):
        raise CorruptionError(f"{target} already holds a dataset; use a new --out")
    write_json(request, dst.injection)
    write_json(read_json(src.run_file), dst.run_file)
    images = _link_images(src, dst)
    shards = src.shards("data")
    rows, centroids = count_rows(src, shards), None
    if mode == "rewrite" and not _clusters_usable(src, shards):
        centroids = _fallback_centroids(src, dst, clips[0].alias, shards, rows, seed)
    buckets = bucket_count(rows, BUCKET_ROWS)
    args = (src, dst, clips, cfg.models, mode, ratio, seed, buckets, centroids)
    run_graph("Inject", shards, inject_corruption, cfg.runner, *args)
    runner.run_stages(runner.Context(dst, cfg, {}, started), runner.GLOBAL_STAGES)
    runner.merge(dst, cfg, shards)
    report = read_json(dst.corruption_report) if dst.exists(dst.corruption_report) else None
    counts = _counts(dst, shards)
    pairs = counts["training_pairs"]
    source_manifest = read_json(src.manifest) if src.exists(src.manifest) else {}
    manifest = source_manifest | {
        "output_rows": counts["rows"],
        "duplicate_rows": counts["duplicates"],
        "controlled_corruption": request
        | {
            "training_pairs": pairs,
            "corrupted_rows": counts["corrupted_rows"],
            "corrupted_share": counts["corrupted_rows"] / pairs if pairs else None,
            "images": images or f"{source.rstrip('/')}/images (the tar column is relative to the source)",
        },
        "estimated_corruption_ratio": report["estimated_corruption_ratio"] if report else None,
        "wall_time_s": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(manifest, dst.manifest)
    return manifest
