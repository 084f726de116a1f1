"""Model files on remote storage (any fsspec URL; `memory://` here): copied once to local disk."""

from pathlib import Path

import fsspec
import numpy as np
import pytest

from pairsmith.filters.clip_models import TOY_ZOO, ClipEmbedder
from pairsmith.filters.model_files import local_copy
from pairsmith.filters.named_weights import named_file
from pairsmith.schemas.errors import ModelLoadError


@pytest.fixture
def remote(monkeypatch, tmp_path):
    """An empty remote model folder and a fresh local model cache."""
    monkeypatch.setenv("PAIRSMITH_MODEL_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    root = f"memory://models-{tmp_path.name}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_remote_model_folder_is_copied_once_to_local_disk(remote, monkeypatch):
    fs, root = remote
    monkeypatch.setenv("PAIRSMITH_MODELS", root)
    fs.pipe(f"{root}/watermark_model_v1.pt", b"weights")
    local = named_file("laion-watermark", "laion-watermark")
    assert Path(local).read_bytes() == b"weights" and "://" not in local
    fs.rm(f"{root}/watermark_model_v1.pt")  # later loads read the local copy, not the remote one
    assert named_file("laion-watermark", "laion-watermark") == local
    with pytest.raises(ModelLoadError, match=rf"{root}/sa_0_4_vit_l_14_linear.pth not found; get it from"):
        named_file("laion-aesthetic-l14", "laion-aesthetic-l14")


def test_a_clip_checkpoint_on_remote_storage_loads_like_the_local_one(remote):
    fs, root = remote
    for name in ("toy-clip-vit.json", "toy-clip-vit.pt"):
        fs.pipe(f"{root}/{name}", (TOY_ZOO / name).read_bytes())
    spec = f"{root}/toy-clip-vit.json@{root}/toy-clip-vit.pt"
    texts = ["a red circle on a blue background"]
    remote_vectors = ClipEmbedder(spec, device="cpu").load().embed_texts(texts)
    assert np.allclose(remote_vectors, ClipEmbedder("toy", device="cpu").load().embed_texts(texts))


def test_a_remote_folder_is_copied_whole(remote):
    fs, root = remote
    fs.pipe({f"{root}/folder/config.json": b"{}", f"{root}/folder/model.safetensors": b"x"})
    local = local_copy(f"{root}/folder")
    assert sorted(p.name for p in Path(local).iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(FileNotFoundError):
        local_copy(f"{root}/nothing-here")
