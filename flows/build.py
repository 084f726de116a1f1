"""The Prefect flow `build_dataset`: one task per stage, retries on download, a summary artifact.

It runs on Prefect's ephemeral API when no server is configured, and as a deployment from
`prefect.yaml` on a process work pool.
"""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from pairsmith.pipelines import runner
from pairsmith.pipelines.layout import Layout
from pairsmith.schemas.config import RunConfig, load_config


@task(name="ingest", cache_policy=NONE)
def ingest_task(layout: Layout, cfg: RunConfig) -> list[str]:
    return runner.ingest(layout, cfg)


@task(name="download", retries=2, retry_delay_seconds=5, cache_policy=NONE)
def download_task(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    runner.download(layout, cfg, shards)


@task(name="annotate", cache_policy=NONE)
def annotate_task(layout: Layout, cfg: RunConfig, shards: list[str], run: dict) -> None:
    runner.annotate(layout, cfg, shards, run)


@task(name="caption_sharing", cache_policy=NONE)
def caption_sharing_task(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    runner.share_captions(layout, cfg, shards)


@task(name="dedup", cache_policy=NONE)
def dedup_task(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    runner.dedup(layout, cfg, shards)


@task(name="corruption", cache_policy=NONE)
def corruption_task(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    runner.score_corruption(layout, cfg, shards)


@task(name="finalize", cache_policy=NONE)
def finalize_task(layout: Layout, run: dict, started: float) -> dict:
    return runner.finalize(layout, run, started)


def summary_markdown(out: str, manifest: dict) -> str:
    """The run summary shown as a Prefect artifact."""
    lines = [
        f"# pairsmith run `{manifest['run_id']}`",
        f"Output: `{out}` - {manifest['output_rows']} rows in {manifest['shards']} shards, "
        f"{manifest['wall_time_s']:.1f} s, config `{manifest['config_hash']}`.",
        "",
        "| status | rows | share |",
        "|---|---:|---:|",
    ]
    total = max(manifest["output_rows"], 1)
    for status, count in manifest["rows_per_status"].items():
        lines.append(f"| {status} | {count} | {count / total:.1%} |")
    lines += [
        "",
        f"Duplicates: {manifest['duplicate_rows']} rows marked `is_duplicate` (one row per group kept).",
    ]
    if manifest.get("estimated_corruption_ratio") is not None:
        lines.append(
            f"Estimated corruption ratio: {manifest['estimated_corruption_ratio']:.4f} (`corruption.json`)."
        )
    return "\n".join(lines)


def config_for(input_path: str | None, config_path: str | None, overrides: list[str] | None) -> RunConfig:
    """The run config: the YAML file, then `--set` overrides, then `--input`."""
    extra = [f"input.path={input_path}"] if input_path else []
    return load_config(config_path, [*(overrides or []), *extra])


@flow(name="build_dataset")
def build_dataset(
    out: str,
    input_path: str | None = None,
    config_path: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Ingest -> download -> annotate -> caption sharing -> dedup -> corruption -> finalize into `out`;
    returns the manifest."""
    started = time.time()
    cfg = config_for(input_path, config_path, overrides)
    layout = Layout(out)
    run = runner.start(layout, cfg)
    shards = ingest_task(layout, cfg)
    download_task(layout, cfg, shards)
    annotate_task(layout, cfg, shards, run)
    caption_sharing_task(layout, cfg, shards)
    dedup_task(layout, cfg, shards)
    corruption_task(layout, cfg, shards)
    manifest = finalize_task(layout, run, started)
    create_markdown_artifact(summary_markdown(out, manifest), key="pairsmith-run-summary")
    return manifest
