"""Ownership of an output folder: one config per folder, so a rerun resumes instead of mixing runs."""

from __future__ import annotations

import time
import uuid

from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.schemas.config import ConfigError, RunConfig


def check_output(layout: Layout, cfg: RunConfig) -> dict | None:
    """The folder's `run.json` if it records this config (a resume), None if new; else ConfigError."""
    if not layout.exists(layout.run_file):
        return None
    run = read_json(layout.run_file)
    if run["config_hash"] != cfg.config_hash():
        raise ConfigError(
            f"output folder {layout.root} holds a run with another config (hash {run['config_hash']}, "
            f"this one is {cfg.config_hash()}); use a new --out, or the same config to resume"
        )
    return run


def claim_output(layout: Layout, cfg: RunConfig) -> dict:
    """Create `run.json`, or reuse it when it records the same config (resume). Returns it."""
    run = check_output(layout, cfg)
    if run is not None:
        return run
    config_hash = cfg.config_hash()
    run = {
        "run_id": time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
        "config_hash": config_hash,
        "config": cfg.output_affecting(),
    }
    write_json(run, layout.run_file)
    return run
