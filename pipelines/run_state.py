"""Ownership of an output folder: one config per folder, so a rerun resumes instead of mixing runs."""

from __future__ import annotations

import time
import uuid

from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.schemas.config import ConfigError, RunConfig


def claim_output(layout: Layout, cfg: RunConfig) -> dict:
    """Create `run.json`, or reuse it when it records the same config (resume). Returns it."""
    config_hash = cfg.config_hash()
    if layout.exists(layout.run_file):
        run = read_json(layout.run_file)
        if run["config_hash"] != config_hash:
            raise ConfigError(
                f"output folder {layout.root} holds a run with another config (hash {run['config_hash']}, "
                f"this one is {config_hash}); use a new --out, or the same config to resume"
            )
        return run
    run = {
        "run_id": time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
        "config_hash": config_hash,
        "config": cfg.output_affecting(),
    }
    write_json(run, layout.run_file)
    return run
