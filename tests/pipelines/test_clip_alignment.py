"""Proof that clip_score means something through the whole pipeline, and that nothing is misaligned.

Held-out scenes of the toy world are served from 127.0.0.1; 20 % have their captions swapped with
another pair's. If batching, sharding or joining ever paired a score with the wrong row, the AUC
would fall to about 0.5.
"""

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairsmith.filters.toy_world import scene_pairs
from pairsmith.flows.demo_site import LocalImageServer, Route, _encode
from pairsmith.pipelines.caption_swap import swap_captions
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config
from tools.metrics import roc_auc

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline

MULTI_PROCESS = 'runner.options=["--direct_num_workers=2", "--direct_running_mode=multi_processing"]'


def test_clip_score_separates_true_from_swapped_pairs_across_shards_and_processes(tmp_path):
    n = 200
    pairs = scene_pairs(n, seed=4242, size=160)
    captions, swapped = swap_captions([c for _, c in pairs], 0.2, np.random.default_rng(7))
    routes = {
        f"/s/{i}.jpg": Route(body=_encode(img), headers=(("Content-Type", "image/jpeg"),))
        for i, (img, _) in enumerate(pairs)
    }
    with LocalImageServer(routes) as server:
        urls = [server.url(f"/s/{i}.jpg") for i in range(n)]
        pq.write_table(
            pa.table({"url": urls, "caption": captions, "swapped": swapped}), tmp_path / "in.parquet"
        )
        settings = [
            f"input.path={tmp_path / 'in.parquet'}",
            "input.shard_size=30",
            "annotate.batch_size=16",
            "download.allow_private_addresses=true",
            "models.profile=toy",
            MULTI_PROCESS,
        ]
        run_all(load_config(None, settings), str(tmp_path / "out"))
    df = pl.read_parquet(tmp_path / "out" / "data" / "*.parquet")
    assert df.height == n and df["clip_score"].null_count() == 0
    auc = roc_auc(df["clip_score"].to_numpy(), ~df["swapped"].to_numpy())
    print(f"pipeline clip_score AUC true vs swapped: {auc:.4f}")
    assert auc >= 0.95

    # the embeddings side dataset is row-aligned with the data shards and reproduces the score
    for shard in sorted((tmp_path / "out" / "data").glob("*.parquet")):
        data = pl.read_parquet(shard)
        emb = pl.read_parquet(tmp_path / "out" / "embeddings" / "toy" / shard.name)
        assert emb["uid"].to_list() == data["uid"].to_list()
        image = np.array(emb["image_embedding"].to_list(), dtype=np.float32)
        text = np.array(emb["text_embedding"].to_list(), dtype=np.float32)
        assert np.allclose((image * text).sum(1), data["clip_score"].to_numpy(), atol=0.02)
