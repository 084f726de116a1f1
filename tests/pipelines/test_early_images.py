"""Per-image annotators run while the shard downloads (`pipelines/early_images.py`): the data shard they
give is the one that annotating from the tar gives, a missing image falls back to the tar, and a run
with a batch model decodes each image once (no early work)."""

import tarfile
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from conftest import LOCAL

from pairsmith.filters import build_annotators
from pairsmith.pipelines import runner
from pairsmith.pipelines.annotate import annotate_shard, provenance
from pairsmith.pipelines.download import download_shard
from pairsmith.pipelines.early_images import EarlyImages, early_annotators
from pairsmith.pipelines.layout import Layout, read_parquet
from pairsmith.pipelines.run_state import claim_output
from pairsmith.schemas.config import load_config

CHEAP = ["models.profile=none", "annotate.ocr=off"]


def _ready(annotators) -> Future:
    for annotator in annotators:
        annotator.setup()
    loaded = Future()
    loaded.set_result(annotators)
    return loaded


def _downloaded(tmp_path, demo_input, settings):
    cfg = load_config(None, [f"input.path={demo_input}", "input.shard_size=20", *LOCAL, *settings])
    layout = Layout(str(tmp_path / "out"))
    claim_output(layout, cfg)
    return cfg, layout, runner.ingest(layout, cfg)


def _from_the_tar(layout, shard, annotators, pool):
    """The shard annotated again, with every image read back from its tar."""
    layout.fs.rm(layout.data_shard(shard))
    annotate_shard(shard, layout, annotators, 8, provenance("r", "h"), pool)
    return read_parquet(layout.data_shard(shard))


def test_values_measured_during_the_download_are_those_read_back_from_the_tar(tmp_path, demo_input):
    cfg, layout, shards = _downloaded(tmp_path, demo_input, CHEAP)
    annotators = build_annotators(cfg.models, cfg.annotate)
    loaded = _ready(annotators)
    names = [type(a).__name__ for a in early_annotators(annotators)]
    assert names == ["PerceptualHash", "ImageStats"]
    phash = []
    with ThreadPoolExecutor(2) as pool:
        for shard in shards:
            early = EarlyImages(loaded, pool)
            download_shard(shard, layout, cfg.download, on_image=early.add)
            members = read_parquet(layout.download_shard(shard)).column("member").to_pylist()
            assert early.has(i for i, m in enumerate(members) if m is not None)
            annotate_shard(shard, layout, annotators, 8, provenance("r", "h"), pool, early)
            during = read_parquet(layout.data_shard(shard))
            assert during.equals(_from_the_tar(layout, shard, annotators, pool)), shard
            phash += during.column("phash").to_pylist()
    assert any(v is not None for v in phash) and any(v is None for v in phash)  # broken images too


def test_an_image_that_missed_the_early_work_is_read_from_the_tar(tmp_path, demo_input):
    cfg, layout, shards = _downloaded(tmp_path, demo_input, CHEAP)
    annotators = build_annotators(cfg.models, cfg.annotate)
    loaded = _ready(annotators)
    shard = shards[0]
    download_shard(shard, layout, cfg.download)
    members = read_parquet(layout.download_shard(shard)).column("member").to_pylist()
    with ThreadPoolExecutor(2) as pool, tarfile.open(layout.tar(shard)) as tar:
        early = EarlyImages(loaded, pool)
        stored = [(row, member) for row, member in enumerate(members) if member is not None]
        for row, member in stored[1:]:  # the first stored image never reaches it
            early.add(row, tar.extractfile(member).read())
        assert not early.has(row for row, _ in stored)
        annotate_shard(shard, layout, annotators, 8, provenance("r", "h"), pool, early)
        got = read_parquet(layout.data_shard(shard))
        assert got.column("phash")[stored[0][0]].as_py() is not None
        assert got.equals(_from_the_tar(layout, shard, annotators, pool))


@pytest.mark.parametrize(
    ("settings", "early"),
    [
        (CHEAP, ["PerceptualHash", "ImageStats"]),
        (["models.profile=none", "annotate.ocr=gated"], ["PerceptualHash", "ImageStats", "TextInImage"]),
        (["models.profile=toy", "annotate.ocr=off"], []),  # CLIP and the heads run on batches
    ],
)
def test_images_run_early_only_when_no_batch_model_reads_them(settings, early):
    cfg = load_config(None, settings)
    assert [type(a).__name__ for a in early_annotators(build_annotators(cfg.models, cfg.annotate))] == early


def test_an_image_annotator_with_its_own_batch_step_keeps_every_image_on_batches():
    from pairsmith.filters.image_stats import ImageStats

    class BatchStats(ImageStats):
        def annotate(self, batch):  # e.g. a batch-level gate: only the batch path runs it as written
            return super().annotate(batch)

    stats = ImageStats()
    assert early_annotators([stats]) == [stats]
    assert early_annotators([stats, BatchStats()]) == []
