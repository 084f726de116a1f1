"""The Prefect flow `build_dataset`: one task per stage of `runner.STAGES` (retries where the stage
says, on download), a summary artifact.

It runs on Prefect's ephemeral API when no server is configured, and as a deployment from
`prefect.yaml` on a process work pool.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from pairsmith.pipelines import runner
from pairsmith.schemas.config import RunConfig, load_config


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
    """Ingest -> download+annotate -> caption sharing -> dedup -> corruption -> finalize into `out`;
    returns the manifest (with Beam's `--dry_run=True`: the plan, `OUT/plan.json`)."""
    context = runner.begin(config_for(input_path, config_path, overrides), out)
    for stage in runner.STAGES:
        as_task = task(name=stage.name, retries=stage.retries, retry_delay_seconds=5, cache_policy=NONE)
        as_task(stage.run)(context)
    manifest = runner.result(context)
    if "pipelines" in manifest:  # a dry run: the plan, nothing ran
        return manifest
    create_markdown_artifact(summary_markdown(out, manifest), key="pairsmith-run-summary")
    return manifest
