"""`pairsmith models list|pull` against a real HTTP server on 127.0.0.1 serving generated files in the
forms LAION publishes: Keras NSFW heads (a zipped TensorFlow SavedModel, a zipped or bare Keras HDF5
file), torch state_dicts for the aesthetic head and the watermark model. Open_clip's hub weights
cannot be fetched here: pull must say so in one line (or leave them out with --skip-hub)."""

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import h5py
import numpy as np
import pytest
import torch

from pairsmith.filters.base import Batch
from pairsmith.filters.clip_score import ClipScore
from pairsmith.filters.named_weights import NAMED
from pairsmith.filters.nsfw import NsfwHead
from pairsmith.filters.registry import check_models
from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, Route
from pairsmith.flows.keras_heads import head_state_dict, read_keras_head
from pairsmith.flows.models import LOCK
from pairsmith.schemas.config import load_config
from pairsmith.schemas.errors import ModelLoadError

B32, L14 = (512, 32, 32, 1), (768, 64, 512, 256, 1)  # LAION's heads (../shared/ANCHORS.md)


def keras_weights(dims, seed):
    """Random weights of LAION's autokeras head: Normalization, then Dense layers (Keras layout)."""
    rng = np.random.default_rng(seed)
    norm = {
        "mean": rng.normal(0, 0.05, dims[0]).astype(np.float32),
        "variance": rng.uniform(0.001, 0.01, dims[0]).astype(np.float32),
        "count": np.array(1000, np.int64),
    }
    dense = [
        {
            "kernel": rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32),
            "bias": rng.normal(0, 0.1, b).astype(np.float32),
        }
        for a, b in zip(dims, dims[1:], strict=False)
    ]
    return norm, dense


def keras_forward(weights, x):
    """What Keras computes: Normalization, Dense-ReLU..., Dense, sigmoid (numpy, float64)."""
    norm, dense = weights
    h = (x - norm["mean"]) / np.maximum(np.sqrt(norm["variance"].astype(np.float64)), 1e-7)
    for i, layer in enumerate(dense):
        h = h @ layer["kernel"] + layer["bias"]
        h = np.maximum(h, 0) if i < len(dense) - 1 else 1 / (1 + np.exp(-h))
    return h[:, 0]


def keras_h5(weights) -> bytes:
    """A Keras 2 `model.save("head.h5")` file as TensorFlow 2.15 writes it (layer groups under
    model_weights, `layer_names` and `weight_names` attributes, the model config as JSON)."""
    norm, dense = weights
    layers = [("input_1", "InputLayer", {}, {}), ("multi_category_encoding", "MultiCategoryEncoding", {}, {})]
    layers.append(("normalization", "Normalization", {}, norm))
    for i, layer in enumerate(dense):
        name = "dense" if i == 0 else f"dense_{i}"
        layers.append((name, "Dense", {"activation": "linear", "units": layer["bias"].size}, layer))
        if i < len(dense) - 1:
            layers.append((f"re_lu_{i}", "ReLU", {}, {}))
            layers.append((f"dropout_{i}", "Dropout", {"rate": 0.5}, {}))
    layers.append(("classification_head_1", "Activation", {"activation": "sigmoid"}, {}))
    config = {
        "class_name": "Functional",
        "config": {"layers": [{"class_name": c, "config": {"name": n, **conf}} for n, c, conf, _ in layers]},
    }
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = [n.encode() for n, *_ in layers]
        for name, _, _, values in layers:
            group = root.create_group(name)
            prefix = "" if name == "normalization" else f"{name}/"  # as Keras names them
            group.attrs["weight_names"] = [f"{prefix}{k}:0".encode() for k in values]
            for key, value in values.items():
                group.create_dataset(f"{prefix}{key}:0", data=value)
    return buf.getvalue()


# A TensorFlow tensor bundle (variables.index + variables.data-00000-of-00001), as `model.save(DIR)`
# writes a SavedModel's variables: a LevelDB-style table (prefix-compressed keys, restart points, an
# index block, a 48-byte footer) of BundleEntryProto values; the reader was checked against TF 2.15.


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, value) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _table_block(entries) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % 16 == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def tensor_bundle(tensors: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    dtypes = {np.dtype(np.float32): 1, np.dtype(np.int64): 9}
    data, entries = bytearray(), [(b"", _field(1, 1))]  # the header: one shard, little-endian
    for name in sorted(tensors):
        value = tensors[name]
        shape = b"".join(_field(2, _field(1, d)) for d in value.shape)
        entry = _field(1, dtypes[value.dtype]) + _field(2, shape) + _field(4, len(data))
        entries.append((name.encode(), entry + _field(5, value.nbytes)))
        data += value.tobytes()
    index = bytearray()
    blocks = []
    for block in (_table_block(entries), _table_block([])):  # data, metaindex
        blocks.append((len(index), len(block)))
        index += block + b"\0" * 5  # trailer: no compression, crc (not read)
    (data_at, data_size), meta = blocks
    top = _table_block([(entries[-1][0] + b"\xff", _varint(data_at) + _varint(data_size))])
    top_at = len(index)
    index += top + b"\0" * 5
    footer = _varint(meta[0]) + _varint(meta[1]) + _varint(top_at) + _varint(len(top))
    index += footer.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(index), bytes(data)


def saved_model_zip(weights, folder: str) -> bytes:
    """A zip of a SavedModel folder, as LAION's clip_autokeras_*.zip: its variables in a tensor bundle
    (`layer_with_weights-N/...`), an optimizer slot and a metric beside them."""
    norm, dense = weights
    tensors = {f"layer_with_weights-0/{k}/.ATTRIBUTES/VARIABLE_VALUE": v for k, v in norm.items()}
    for i, layer in enumerate(dense, start=1):
        for key, value in layer.items():
            tensors[f"layer_with_weights-{i}/{key}/.ATTRIBUTES/VARIABLE_VALUE"] = value
    tensors["optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE"] = np.zeros_like(dense[0]["kernel"])
    tensors["layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"] = np.ones(
        3, np.float32
    )
    tensors["keras_api/metrics/0/count/.ATTRIBUTES/VARIABLE_VALUE"] = np.array(7, np.int64)
    index, data = tensor_bundle(tensors)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(f"{folder}/saved_model.pb", b"\x08\x01")  # not read
        archive.writestr(f"{folder}/variables/variables.index", index)
        archive.writestr(f"{folder}/variables/variables.data-00000-of-00001", data)
    return buf.getvalue()


def zipped(name: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, body)
    return buf.getvalue()


def torch_bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def published():
    """Published path -> the bytes served there (what LAION's URLs hold, in form and shape)."""
    from pairsmith.filters.watermark_model import build_watermark_model

    torch.manual_seed(0)
    aesthetic = {"weight": torch.randn(1, 768) * 0.05, "bias": torch.tensor([5.0])}
    weights = {"laion-nsfw-b32": keras_weights(B32, 1), "laion-nsfw-l14": keras_weights(L14, 2)}
    bodies = {
        "laion-nsfw-b32": saved_model_zip(weights["laion-nsfw-b32"], "clip_autokeras_nsfw_b32"),
        "laion-nsfw-l14": zipped("clip_autokeras_binary_nsfw.h5", keras_h5(weights["laion-nsfw-l14"])),
        "laion-aesthetic-l14": torch_bytes(aesthetic),
        "laion-watermark": torch_bytes(build_watermark_model().state_dict()),  # efficientnet_b3a, untrained
    }
    paths = {name: urlsplit(NAMED[name].url).path for name in bodies}
    return paths, bodies, weights


@pytest.fixture
def mirror(published):
    paths, bodies, _ = published
    with LocalImageServer({paths[name]: Route(body=body) for name, body in bodies.items()}) as server:
        yield server


@pytest.fixture
def models_folder(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PAIRSMITH_MODELS", str(folder))
    monkeypatch.delenv("PAIRSMITH_MODELS_MIRROR", raising=False)
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nsfw_scores(name: str, embeddings: np.ndarray) -> tuple[list, list[float]]:
    """The head `filters/nsfw.py` builds from the pulled file: its Linear shapes and its scores."""
    clip = ClipScore("c", "ViT-B-32/laion2b_s34b_b79k", primary=True)  # only its column names are read
    head = NsfwHead(name, clip)
    head.setup()
    shapes = [tuple(m.weight.shape) for m in head.head if isinstance(m, torch.nn.Linear)]
    batch = Batch(
        {"embeddings/c/image_embedding": [list(map(float, e)) for e in embeddings]}, [None] * len(embeddings)
    )
    return shapes, head(batch)["nsfw_score"].to_pylist()


def test_pull_laion_from_a_mirror_converts_the_nsfw_head_and_locks_every_file(
    published, mirror, models_folder, tmp_path
):
    paths, bodies, weights = published
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}  # an empty hub cache
    argv = [
        sys.executable,
        "-m",
        "pairsmith.flows.cli",
        "models",
        "pull",
        "laion",
        "--mirror",
        mirror.base_url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    # LAION's files come first; then the hub weights, which need the network: one line, exit 2
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("pairsmith: error: ViT-B-32/laion2b_s34b_b79k: ") and "need the network" in error
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in error and "--skip-hub" in error
    assert "laion-nsfw-b32 (nsfw): downloaded" in done.stdout and "TensorFlow SavedModel" in done.stdout
    assert sorted(mirror.hits) == sorted(
        paths[n] for n in ("laion-nsfw-b32", "laion-watermark", "laion-aesthetic-l14")
    )

    lock = json.loads((models_folder / LOCK).read_text())["files"]
    for name in ("laion-nsfw-b32", "laion-watermark", "laion-aesthetic-l14"):
        assert lock[name]["url"] == NAMED[name].url  # the published URL, whichever mirror served it
        assert (lock[name]["size"], lock[name]["sha256"]) == (len(bodies[name]), sha256(bodies[name]))
        assert lock[name]["file_sha256"] == sha256((models_folder / NAMED[name].filename).read_bytes())
    for name in ("laion-watermark", "laion-aesthetic-l14"):  # torch files are kept as published
        assert (models_folder / NAMED[name].filename).read_bytes() == bodies[name]
    assert [p.name for p in models_folder.iterdir() if p.name.startswith(".")] == []  # no temporary file left

    x = np.random.default_rng(3).normal(0, 0.05, (6, 512)).astype(np.float32)
    shapes, scores = nsfw_scores("laion-nsfw-b32", x)
    assert shapes == [(32, 512), (32, 32), (1, 32)]
    np.testing.assert_allclose(scores, keras_forward(weights["laion-nsfw-b32"], x), rtol=1e-4, atol=1e-6)

    # again, hub weights left out: everything is here, nothing is fetched
    hits = len(mirror.hits)
    assert main(["models", "pull", "laion", "--mirror", mirror.base_url, "--skip-hub"]) == 0
    assert len(mirror.hits) == hits


def test_an_h5_head_converts_from_a_zip_or_bare(published, mirror, models_folder, capsys):
    paths, bodies, weights = published
    assert main(["models", "pull", "laion-nsfw-l14", "--mirror", mirror.base_url]) == 0
    out = capsys.readouterr().out
    assert "converted from Keras HDF5 clip_autokeras_binary_nsfw.h5 in a zip (MLP 768-64-512-256-1" in out
    x = np.random.default_rng(4).normal(0, 0.05, (5, 768)).astype(np.float32)
    shapes, scores = nsfw_scores("laion-nsfw-l14", x)
    assert shapes == [(64, 768), (512, 64), (256, 512), (1, 256)]
    np.testing.assert_allclose(scores, keras_forward(weights["laion-nsfw-l14"], x), rtol=1e-4, atol=1e-6)

    bare = models_folder / "head.h5"
    bare.write_bytes(keras_h5(weights["laion-nsfw-l14"]))
    state = head_state_dict(read_keras_head(bare))
    assert {k: v.shape for k, v in state.items()} == {
        "0.weight": (64, 768), "0.bias": (64,), "2.weight": (512, 64), "2.bias": (512,),
        "4.weight": (256, 512), "4.bias": (256,), "6.weight": (1, 256), "6.bias": (1,),
    }  # fmt: skip


def test_a_head_that_is_not_laions_stack_is_refused(published, tmp_path):
    _, _, weights = published
    norm, dense = weights["laion-nsfw-b32"]
    bad = tmp_path / "bad.h5"
    bad.write_bytes(keras_h5((norm, dense[:-1])))  # its last Dense has 32 outputs
    with pytest.raises(ModelLoadError, match="32 outputs, not 1"):
        read_keras_head(bad)


def test_a_later_download_with_other_bytes_is_refused(published, mirror, models_folder, capsys):
    paths, bodies, _ = published
    name, path = "laion-aesthetic-l14", paths["laion-aesthetic-l14"]
    assert main(["models", "pull", name, "--mirror", mirror.base_url]) == 0
    kept, lock = (models_folder / NAMED[name].filename).read_bytes(), (models_folder / LOCK).read_text()
    capsys.readouterr()

    changed = torch_bytes({"weight": torch.ones(1, 768), "bias": torch.zeros(1)})
    mirror.add_route(path, Route(body=changed))
    assert main(["models", "pull", name, "--mirror", mirror.base_url, "--force"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "differs from the one" in error and sha256(bodies[name]) in error
    assert sha256(changed) in error and "refused" in error
    assert (models_folder / NAMED[name].filename).read_bytes() == kept  # untouched
    assert (models_folder / LOCK).read_text() == lock
    assert [p.name for p in models_folder.iterdir() if p.name.startswith(".")] == []

    mirror.add_route(path, Route(body=bodies[name]))  # the recorded bytes are taken again
    assert main(["models", "pull", name, "--mirror", mirror.base_url, "--force"]) == 0
    assert f"matches {LOCK}" in capsys.readouterr().out


def test_download_errors_are_one_line(mirror, models_folder, capsys):
    assert main(["models", "pull", "laion-watermark", "--mirror", mirror.base_url + "/elsewhere"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "HTTP 404" in error and "/elsewhere/LAION-AI/" in error
    assert main(["models", "pull", "no-such-model"]) == 2
    assert "unknown profile or model 'no-such-model'" in capsys.readouterr().err


def test_list_shows_what_is_here_and_what_is_missing(published, mirror, models_folder, capsys):
    def states():
        assert main(["models", "list", "laion"]) == 0
        lines = capsys.readouterr().out.splitlines()
        return {line.split()[0]: line.split()[3] for line in lines[2:] if not line.startswith("get ")}, lines

    before, lines = states()
    assert before["laion-nsfw-b32"] == before["laion-watermark"] == "missing"
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in lines[2]  # the hub repo, and the cache folder
    assert lines[-1].startswith("get the missing ones: pairsmith models pull laion")
    assert main(["models", "pull", "laion-nsfw-b32", "--mirror", mirror.base_url]) == 0
    capsys.readouterr()
    after, lines = states()
    assert after["laion-nsfw-b32"] == "here" and after["laion-watermark"] == "missing"
    line = next(line for line in lines if line.startswith("laion-nsfw-b32"))
    assert NAMED["laion-nsfw-b32"].url in line and str(Path("laion-nsfw-b32.pt")) in line

    assert main(["models", "list", "toy"]) == 0
    toy = capsys.readouterr().out
    assert "nudenet" in toy and "missing" not in toy


def test_a_run_that_needs_a_missing_model_names_the_pull_command(models_folder, tmp_path, capsys):
    with pytest.raises(
        ModelLoadError, match=r"laion-nsfw-b32\.pt not found.*; run: pairsmith models pull laion-nsfw-b32$"
    ):
        check_models(load_config(None, ["models.profile=toy", "models.nsfw=laion-nsfw-b32"]).models)
    with pytest.raises(ModelLoadError, match="no CLIP model$"):  # not a missing file: no pull command
        check_models(load_config(None, ["models.profile=none", "models.nsfw=laion-nsfw-b32"]).models)
    out = tmp_path / "out"
    argv = [
        "run",
        "--input",
        str(tmp_path / "pairs.parquet"),
        "--out",
        str(out),
        "--set",
        "models.profile=laion",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.endswith("; run: pairsmith models pull laion")
    assert not out.exists()
