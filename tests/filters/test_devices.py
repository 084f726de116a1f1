"""`filters/devices.py`: where each model runs, in which precision, and the batch size per device."""

import contextlib

import pytest
import torch

from pairsmith.filters import build_annotators, devices
from pairsmith.filters.base import Batch
from pairsmith.filters.clip_models import ClipEmbedder
from pairsmith.filters.devices import (
    annotate_batch_size,
    autocast,
    autocast_dtype,
    batch_size_for,
    gpu_auto_batch,
    head_autocast,
    onnx_providers,
    resolve_device,
)
from pairsmith.filters.nsfw import NudeNetNsfw
from pairsmith.filters.synthetic import Synthetic
from pairsmith.filters.watermark import Watermark
from pairsmith.schemas.config import ConfigError, load_config

GIB = 2**30


def test_auto_is_cuda_only_where_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("precision", ["auto", "fp32", "fp16", "bf16"])
def test_the_cpu_always_runs_fp32(precision):
    assert autocast_dtype("cpu", precision) is None
    assert isinstance(autocast("cpu", precision), contextlib.nullcontext)


def test_cuda_autocasts_to_the_precision_asked_for():
    assert autocast_dtype("cuda", "auto") is torch.float16
    assert autocast_dtype("cuda:1", "fp16") is torch.float16
    assert autocast_dtype("cuda", "bf16") is torch.bfloat16
    assert autocast_dtype("cuda", "fp32") is None


def test_heads_on_clip_embeddings_stay_fp32_everywhere():
    for device in ("cpu", "cuda"):
        assert isinstance(head_autocast(device, "fp16"), contextlib.nullcontext)


def test_the_cpu_keeps_the_requested_batch():
    assert batch_size_for("cpu", 64) == 64
    assert batch_size_for("cpu", 7, gpu_batch_size=512) == 7


@pytest.mark.parametrize(
    ("free_gib", "batch"), [(0, 64), (1, 64), (8, 256), (12, 256), (24, 512), (40, 1024), (139, 1024)]
)
def test_auto_gpu_batch_is_32_images_per_free_gib_as_a_power_of_two(free_gib, batch):
    assert gpu_auto_batch(free_gib * GIB, floor=64) == batch
    assert batch_size_for("cuda", 64, "auto", free_bytes=free_gib * GIB) == batch


def test_a_gpu_batch_size_number_is_taken_as_it_is():
    assert batch_size_for("cuda:0", 64, 96, free_bytes=GIB) == 96
    assert gpu_auto_batch(8 * GIB, floor=300) == 300  # never below annotate.batch_size


def test_annotate_batch_size_reads_the_run_config(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config(None, ["annotate.batch_size=32", "annotate.gpu_batch_size=512"])
    assert annotate_batch_size(cfg.annotate, cfg.models) == 32  # auto -> cpu here
    monkeypatch.setattr(devices, "free_gpu_bytes", lambda device: 8 * GIB)
    cuda = load_config(None, ["models.device=cuda", "annotate.batch_size=32"])
    assert annotate_batch_size(cuda.annotate, cuda.models) == 256
    fixed = load_config(None, ["models.device=cuda", "annotate.gpu_batch_size=512"])
    assert annotate_batch_size(fixed.annotate, fixed.models) == 512


def test_gpu_batch_size_is_checked_and_does_not_change_the_config_hash():
    base = load_config(None, [])
    assert base.annotate.gpu_batch_size == "auto"
    assert load_config(None, ["annotate.gpu_batch_size=512"]).config_hash() == base.config_hash()
    with pytest.raises(ConfigError, match="gpu_batch_size"):
        load_config(None, ["annotate.gpu_batch_size=0"])
    with pytest.raises(ConfigError, match="gpu_batch_size"):
        load_config(None, ["annotate.gpu_batch_size=big"])


def test_onnx_models_take_the_cuda_provider_only_where_onnxruntime_has_it(monkeypatch):
    import onnxruntime

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers("cuda") == ["CPUExecutionProvider"]  # plain onnxruntime: CPU
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert onnx_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]


def test_every_model_annotator_gets_the_run_device_and_precision():
    cfg = load_config(None, ["models.profile=toy", "models.device=cpu", "models.precision=bf16"])
    made = {type(a).__name__: a for a in build_annotators(cfg.models, cfg.annotate, cfg.recaption)}
    assert made["ClipScore"].embedder.device == "cpu" and made["ClipScore"].embedder.precision == "bf16"
    assert isinstance(made["Watermark"], Watermark) and made["Watermark"].device == "cpu"
    assert made["Watermark"].precision == "bf16"
    assert isinstance(made["NudeNetNsfw"], NudeNetNsfw) and made["NudeNetNsfw"].device == "cpu"
    assert isinstance(made["Synthetic"], Synthetic) and made["Synthetic"].device == "cpu"


def test_nudenet_keeps_its_cpu_session_on_the_cpu():
    nsfw = NudeNetNsfw(device="cpu")
    nsfw.setup()
    assert nsfw.detector.onnx_session.get_providers() == ["CPUExecutionProvider"]


def test_preprocessing_on_threads_gives_the_same_embeddings():
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image
    from skimage import data

    images = [Image.fromarray(data.astronaut()).rotate(a) for a in (0, 30, 60, 90)]
    embedder = ClipEmbedder("toy", device="cpu").load()
    with ThreadPoolExecutor(2) as pool:
        threaded = embedder.embed_images(images, pool)
    assert (threaded == embedder.embed_images(images)).all()


def test_watermark_scores_do_not_depend_on_the_batch_threads():
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image
    from skimage import data

    images = [Image.fromarray(data.coffee()), None, Image.fromarray(data.chelsea())]
    annotator = Watermark("toy", device="cpu")
    annotator.setup()
    plain = annotator(Batch({}, images))["watermark_score"].to_pylist()
    with ThreadPoolExecutor(2) as pool:
        threaded = annotator(Batch({}, images, pool))["watermark_score"].to_pylist()
    assert plain == threaded and plain[1] is None
