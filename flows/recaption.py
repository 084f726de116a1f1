"""`pairsmith recaption OUT [--set recaption.KEY=VALUE ...]`: add the recaption columns to an output.

Recaptioning is the costliest step, so it runs as part of a run (`recaption.model`, in the annotate
stage) or alone, later, over a finished output: it starts from the config the output was built with
(`run.json`), takes `--set` overrides of the `recaption` section (and of `models.device`,
`models.threads`, `runner`), checks that the captioner and the primary CLIP model load here, then
recaptions every data shard as one Beam pipeline (`pipelines/recaption.py`) and records what it did in
`manifest.json` (`recaption`, `model_ids.recaption`, `model_ids.grounding`). The run's `run.json` and
`config_hash` stay those of the run that built the output. Rerun the same command to resume.
"""

from __future__ import annotations

import time

from pairsmith.captioners.annotator import captioner_spec, check_captioner
from pairsmith.captioners.grounding import check_grounding
from pairsmith.filters.clip_models import resolve
from pairsmith.filters.profiles import clip_models
from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.pipelines.progress import shard_progress
from pairsmith.pipelines.recaption import marker, recaption_key
from pairsmith.pipelines.stages import RecaptionShardFn, run_shards
from pairsmith.schemas.config import ConfigError, RunConfig, config_from

ALLOWED = (
    "recaption.",
    "models.device",
    "models.threads",
    "models.precision",
    "runner.",
    "annotate.batch_size",
)


def output_config(layout: Layout, overrides: list[str]) -> RunConfig:
    """The config that built the output (`run.json`), with `overrides` of what recaptioning may change."""
    if not layout.exists(layout.run_file) or not layout.shards("data"):
        raise ConfigError(f"{layout.root} is not a pairsmith output folder (no run.json or data shards)")
    for item in overrides:
        if not item.partition("=")[0].strip().startswith(ALLOWED):
            raise ConfigError(
                f"pairsmith recaption changes only recaption.*, models.device/threads/precision, runner.* and "
                f"annotate.batch_size; got {item!r}"
            )
    return config_from(read_json(layout.run_file)["config"], overrides)


def recaption(out: str, overrides: list[str] | None = None) -> dict:
    """Recaption every data shard of `out` (resuming); returns the manifest's `recaption` entry."""
    started = time.time()
    layout = Layout(out)
    cfg = output_config(layout, overrides or [])
    spec = captioner_spec(cfg.models, cfg.recaption)
    if spec is None:
        raise ConfigError(
            f"no captioner: recaption.model is off for profile {cfg.models.profile!r}; pass "
            "--set recaption.model=REPO_ID_OR_FOLDER (or toy)"
        )
    check_captioner(cfg.models, cfg.recaption)
    grounding = check_grounding(cfg.models, cfg.recaption)  # recaption_grounded_ratio & co.
    for model in clip_models(cfg.models)[:1]:
        resolve(model.spec)  # recaption_clip_score and recaption_alt_similarity need the primary CLIP model
    shards = layout.shards("data")
    key = recaption_key(spec, cfg.recaption)
    pending = [s for s in shards if not layout.exists(marker(layout, key, s))]
    fn = RecaptionShardFn(layout, spec, cfg.recaption, cfg.models, cfg.annotate.batch_size)
    with shard_progress(
        "recaption", len(shards), lambda: sum(layout.exists(marker(layout, key, s)) for s in shards)
    ):
        run_shards("Recaption", pending, fn, cfg.runner)
    entry = {
        "model": spec,
        "prompt": cfg.recaption.prompt,
        "grounding": grounding,
        "settings": cfg.recaption.model_dump(mode="json", exclude={"device"}),
        "key": key,
        "shards": len(shards),
        "shards_this_call": len(pending),
        "recaptioned_rows": sum(read_json(marker(layout, key, s))["recaptioned_rows"] for s in shards),
        "wall_time_s": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "corruption_stale": layout.exists(layout.corruption_done),
    }
    if layout.exists(layout.manifest):
        manifest = read_json(layout.manifest)
        manifest["recaption"] = entry
        manifest.setdefault("model_ids", {})["recaption"] = spec
        manifest["model_ids"]["grounding"] = grounding
        write_json(manifest, layout.manifest)
    return entry


def print_summary(out: str, entry: dict) -> None:
    """What the CLI prints after `pairsmith recaption`."""
    out = out.rstrip("/")
    print(
        f"recaption: {entry['recaptioned_rows']} rows recaptioned by {entry['model']} (prompt {entry['prompt']}) in "
        f"{entry['shards']} shards ({entry['shards_this_call']} this call, {entry['wall_time_s']:.0f} s)"
    )
    print(f"output:   {out}/data/*.parquet   (manifest: {out}/manifest.json, key `recaption`)")
    if entry["corruption_stale"]:
        print(f"next:     pairsmith rescore {out}   (folds the recaptions into corruption_score)")
