"""`pairsmith demo`: serve about 200 pairs from 127.0.0.1 and run the whole flow on them."""

from __future__ import annotations

import shutil
from pathlib import Path

from pairsmith.flows.build import build_dataset
from pairsmith.flows.demo_site import LocalImageServer, build_demo_site, write_pairs_parquet
from pairsmith.flows.report import write_report
from pairsmith.schemas.config import ConfigError

MARKER = "pairsmith-demo.txt"

DEMO_SETTINGS = [
    "download.allow_private_addresses=true",  # the demo server is on 127.0.0.1
    "download.timeout_s=2",
    "download.retries=0",
    "input.shard_size=50",
    "models.profile=toy",  # the offline toy zoo
]


def prepare_folder(out: Path) -> None:
    """Start from an empty folder; a previous demo output (it has our marker) is replaced."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise ConfigError(f"{out} is not empty and not a previous demo output; pass another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `pairsmith demo`; the next demo run replaces this folder\n")


# The port is in every url, the url in every uid, and the uid chooses a row's random corruption
# bucket: on a fixed port, every demo run gives the same rows. Below Linux's ephemeral range.
DEMO_PORT = 29518


def _demo_server(routes) -> LocalImageServer:
    """The demo site on DEMO_PORT, or on any free port when something else holds it."""
    try:
        return LocalImageServer(routes, port=DEMO_PORT)
    except OSError:
        return LocalImageServer(routes)


def run_demo(out: str, n_pairs: int = 200, extra_settings: list[str] | None = None) -> dict:
    """Build the demo site, serve it, run `build_dataset`, write the HTML report, return the manifest."""
    folder = Path(out).resolve()
    prepare_folder(folder)
    routes, pairs = build_demo_site(n_pairs=n_pairs, timeout_delay_s=4.0)
    with _demo_server(routes) as server:
        input_path = folder / "demo-input" / "pairs.parquet"
        input_path.parent.mkdir()
        write_pairs_parquet(pairs, server.base_url, input_path)
        manifest = build_dataset(
            str(folder / "dataset"),
            input_path=str(input_path),
            overrides=[*DEMO_SETTINGS, *(extra_settings or [])],
        )
    write_report(str(folder / "dataset"))  # the CLI prints its path last
    return manifest
