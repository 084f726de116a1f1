"""`pairsmith retry OUT [--kinds timeout,deadline,connection,http_5xx,dns]`: download again only the rows
that failed with those kinds, annotate their shards again and redo the global stages, so the output
equals a run in which those fetches had succeeded the first time.

It runs with the config that built the output (`run.json`). The rows to retry are fixed in
`_work/retry/plan.json` when a retry starts; rerunning the same command after a kill resumes that plan.
When it ends, the manifest's `retries` lists every retry of the output (when, kinds, rows tried and
recovered) and the plan is removed, so the next `retry` looks at the rows that still fail.
"""

from __future__ import annotations

import time

from pairsmith.pipelines import runner
from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.pipelines.progress import shard_progress
from pairsmith.pipelines.retry import marker, parse_kinds, rows_to_retry
from pairsmith.pipelines.stages import RetryShardFn, run_shards
from pairsmith.schemas.config import ConfigError, config_from


def retry(out: str, kinds_text: str | None = None) -> dict:
    """Retry the failed downloads of `out` (resuming a killed retry); returns the new manifest."""
    started = time.time()
    layout = Layout(out)
    if not layout.exists(layout.run_file) or not layout.exists(layout.ingest_done):
        raise ConfigError(f"{out} is not the output of `pairsmith run` (no run.json or ingested shards)")
    cfg = config_from(read_json(layout.run_file)["config"])
    plan = _plan(layout, parse_kinds(kinds_text))
    context = runner.Context(layout, cfg, runner.start(layout, cfg), started)
    todo = [(s, rows) for s, rows in plan["rows"].items() if not layout.exists(marker(layout, s))]
    with shard_progress(
        "retry", len(plan["rows"]), lambda: sum(layout.exists(marker(layout, s)) for s in plan["rows"])
    ):
        run_shards("Retry", todo, RetryShardFn(layout, cfg.download), cfg.runner)
    runner.run_stages(context, runner.named("download+annotate", *(s.name for s in runner.GLOBAL_STAGES)))
    done = [read_json(marker(layout, s)) for s in plan["rows"]]
    entry = {
        "started_at": plan["started_at"],
        "kinds": plan["kinds"],
        "tried": sum(d["tried"] for d in done),
        "recovered": sum(d["recovered"] for d in done),
        "wall_time_s": round(time.time() - started, 3),
    }
    history = read_json(layout.retry_log)["retries"] if layout.exists(layout.retry_log) else []
    write_json({"retries": [*history, entry]}, layout.retry_log)
    runner.run_stages(context, runner.named("finalize"))
    manifest = read_json(layout.manifest)
    layout.fs.rm(layout.retry_folder, recursive=True)
    return manifest


def _plan(layout: Layout, kinds: tuple[str, ...]) -> dict:
    """The retry in progress (same kinds), or a new plan of the rows that failed with `kinds`."""
    if layout.exists(layout.retry_plan):
        plan = read_json(layout.retry_plan)
        if tuple(plan["kinds"]) != kinds:
            raise ConfigError(
                f"a retry of kinds {','.join(plan['kinds'])} was interrupted here: finish it first with "
                f"pairsmith retry {layout.root} --kinds {','.join(plan['kinds'])}"
            )
        return plan
    rows = {s: rows_to_retry(layout, s, kinds) for s in layout.shards("download")}
    plan = {
        "kinds": list(kinds),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": {s: r for s, r in rows.items() if r},
    }
    write_json(plan, layout.retry_plan)
    return plan


def print_summary(out: str, manifest: dict) -> None:
    """What the CLI prints after `pairsmith retry`."""
    entry = manifest["retries"][-1]
    print(
        f"retry ({','.join(entry['kinds'])}): {entry['recovered']} of {entry['tried']} rows recovered "
        f"in {entry['wall_time_s']:.0f} s"
    )
    counts = ", ".join(f"{k}: {v}" for k, v in manifest["rows_per_status"].items())
    print(f"output:   {out.rstrip('/')}/data/*.parquet   ({manifest['output_rows']} rows: {counts})")
