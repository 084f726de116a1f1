"""A toy set for the corruption proof and tests: held-out toy-world scenes with their true captions,
served from 127.0.0.1 and run through the real pipeline (download, annotate with the toy zoo, caption
sharing, dedup, corruption). The toy CLIP has never seen these scenes (its training seed is 0).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pairsmith.filters.toy_world import scene_pairs
from pairsmith.flows.demo_site import LocalImageServer, _image_route
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

TOY_SETTINGS = (
    "download.allow_private_addresses=true",
    "models.profile=toy",
    "annotate.ocr=off",  # no text in toy scenes; the proof is about captions
    # the proof measures the CLIP and retrieval components; the recaption component has its own test
    "recaption.model=none",
)


def build_toy_set(out: str | Path, n: int, seed: int, extra: list[str] | tuple[str, ...] = ()) -> dict:
    """Run `n` fresh scenes (generator seed `seed`) through the whole pipeline into `out`; the manifest."""
    out = Path(out)
    pairs = scene_pairs(n, seed=seed, size=160)
    routes = {f"/scene/{i}.jpg": _image_route(image) for i, (image, _) in enumerate(pairs)}
    out.mkdir(parents=True, exist_ok=True)
    with LocalImageServer(routes) as server:
        urls = [server.url(f"/scene/{i}.jpg") for i in range(n)]
        pq.write_table(pa.table({"url": urls, "caption": [c for _, c in pairs]}), out / "pairs.parquet")
        settings = [f"input.path={out / 'pairs.parquet'}", *TOY_SETTINGS, *extra]
        return run_all(load_config(None, settings), str(out / "dataset"))
