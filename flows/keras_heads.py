"""LAION's Keras NSFW heads (autokeras: Normalization, Dense-ReLU ..., Dense-sigmoid) as the torch
state_dict that `filters/clip_heads.py` loads: `0.weight`, `0.bias`, `2.weight`, ... of a
Linear-ReLU-...-Linear stack, with sigmoid on top. Read without TensorFlow.

The forms read:
- Keras HDF5 (`model.save("head.h5")` or `save_weights("head.h5")` in Keras 2): read with h5py, layers
  in the file's `layer_names` order; where the file holds the model config, its layers must be that
  stack (anything else is refused, never guessed);
- a TensorFlow SavedModel folder (what LAION's zips hold: `saved_model.pb`, `variables/variables.index`
  and `variables.data-*`): the variables are read from TensorFlow's tensor bundle (a LevelDB-style
  table of `BundleEntryProto`s and a raw data file), layers in their `layer_with_weights-N` order;
  the architecture is not read from `saved_model.pb`, so the layers' kinds and shapes are checked
  against the stack (Normalization first, then Dense layers chaining to one output);
- a zip file holding either.

Keras's Dense kernel is `(in, out)`, torch's Linear weight `(out, in)`: kernels are transposed. The
Normalization layer, `(x - mean) / max(sqrt(variance), 1e-7)`, is folded into the first Linear.
"""

from __future__ import annotations

import io
import json
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairsmith.schemas.errors import ModelLoadError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): Normalization divides by max(sqrt(variance), epsilon)
IGNORED_LAYERS = {"InputLayer", "Dropout", "MultiCategoryEncoding"}  # identities at inference


@dataclass(frozen=True)
class KerasLayer:
    """A layer with weights: `dense` (kernel, bias) or `norm` (mean, variance)."""

    name: str
    kind: str
    weights: dict[str, np.ndarray]


@dataclass(frozen=True)
class KerasHead:
    layers: list[KerasLayer]
    form: str  # what was read, in words (the pull's output says it)


def read_keras_head(path: str | Path) -> KerasHead:
    """The layers of a Keras head in any of the forms above; ModelLoadError if it is none of them or
    not the Normalization-Dense-...-sigmoid stack."""
    path = Path(path)
    if path.is_dir():
        return _read_saved_model(path, "TensorFlow SavedModel")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == HDF5_MAGIC:
        return _read_h5(path, "Keras HDF5")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    raise ModelLoadError(f"{path.name}: neither a Keras HDF5 file nor a zip of one or of a SavedModel")


def _read_zip(path: Path) -> KerasHead:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        h5 = [n for n in names if n.endswith((".h5", ".hdf5"))]
        index = [n for n in names if n.endswith("variables/variables.index")]
        if len(h5) == 1:
            return _read_h5(io.BytesIO(archive.read(h5[0])), f"Keras HDF5 {h5[0]} in a zip")
        if len(index) == 1:
            with tempfile.TemporaryDirectory() as tmp:
                folder = index[0].removesuffix("variables/variables.index")
                members = [n for n in names if n.startswith(folder + "variables/")]
                archive.extractall(tmp, members)
                return _read_saved_model(
                    Path(tmp) / folder, f"TensorFlow SavedModel {folder or '.'} in a zip"
                )
    raise ModelLoadError(
        f"{path.name}: a zip without exactly one .h5 file or one SavedModel (variables/variables.index)"
    )


# --- Keras HDF5 -------------------------------------------------------------------------------------


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_h5(source, form: str) -> KerasHead:
    import h5py

    with h5py.File(source, "r") as f:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise ModelLoadError(
                f"{form}: no layer_names attribute (not a Keras 2 HDF5 model or weights file)"
            )
        layers = []
        for layer_name in map(_text, root.attrs["layer_names"]):
            group = root[layer_name]
            names = [_text(n) for n in group.attrs.get("weight_names", [])]
            weights = {n.split("/")[-1].split(":")[0]: np.asarray(group[n], np.float32) for n in names}
            if weights:
                layers.append(_layer(layer_name, weights, form))
        config = f.attrs.get("model_config")
    if config is not None:
        _check_config(json.loads(_text(config)), form)
    _check_stack(layers, form)
    return KerasHead(layers, form)


def _layer(name: str, weights: dict[str, np.ndarray], form: str) -> KerasLayer:
    if {"kernel", "bias"} <= weights.keys():
        return KerasLayer(name, "dense", weights)
    if {"mean", "variance"} <= weights.keys():
        return KerasLayer(name, "norm", weights)
    raise ModelLoadError(
        f"{form}: layer {name!r} has weights {sorted(weights)}, neither Dense nor Normalization"
    )


def _check_config(config: dict, form: str) -> None:
    """The model config's layers must be [Normalization] (Dense ReLU)* Dense sigmoid."""
    ops: list[str] = []
    for layer in config.get("config", {}).get("layers", []):
        kind, conf = layer["class_name"], layer.get("config", {})
        if kind in IGNORED_LAYERS:
            continue
        if kind == "Normalization":
            ops.append("norm")
        elif kind == "Dense":
            ops.append("dense")
            ops += [] if conf.get("activation", "linear") == "linear" else [conf["activation"]]
        elif kind == "ReLU":
            ops.append("relu")
        elif kind == "Activation":
            ops += [] if conf["activation"] == "linear" else [conf["activation"]]
        else:
            raise ModelLoadError(
                f"{form}: layer {conf.get('name', kind)!r} ({kind}) is not in LAION's NSFW head"
            )
    if not re.fullmatch(r"(norm )?(dense relu )*dense sigmoid", " ".join(ops)):
        raise ModelLoadError(
            f"{form}: the layers are {' '.join(ops)}, not [Normalization] (Dense ReLU)* Dense sigmoid"
        )


def _check_stack(layers: list[KerasLayer], form: str) -> None:
    kinds = [layer.kind for layer in layers]
    if not kinds or "norm" in kinds[1:] or kinds[-1] != "dense":
        raise ModelLoadError(f"{form}: layers {kinds}, not [Normalization] then Dense layers")
    dense = [layer.weights for layer in layers if layer.kind == "dense"]
    for w in dense:
        if w["kernel"].ndim != 2 or w["bias"].shape != (w["kernel"].shape[1],):
            raise ModelLoadError(
                f"{form}: a Dense layer with kernel {w['kernel'].shape} and bias {w['bias'].shape}"
            )
    for a, b in zip(dense, dense[1:], strict=False):
        if a["kernel"].shape[1] != b["kernel"].shape[0]:
            raise ModelLoadError(
                f"{form}: Dense layers of shapes {a['kernel'].shape} then {b['kernel'].shape}"
            )
    if dense[-1]["kernel"].shape[1] != 1:
        raise ModelLoadError(
            f"{form}: the last Dense layer has {dense[-1]['kernel'].shape[1]} outputs, not 1"
        )
    if kinds[0] == "norm" and layers[0].weights["mean"].size != dense[0]["kernel"].shape[0]:
        raise ModelLoadError(
            f"{form}: Normalization of {layers[0].weights['mean'].size} features before a Dense"
        )


def head_state_dict(head: KerasHead) -> dict[str, np.ndarray]:
    """The torch layout (`{2i}.weight` (out, in), `{2i}.bias`), Normalization folded into the first layer."""
    layers = list(head.layers)
    norm = layers.pop(0).weights if layers[0].kind == "norm" else None
    out: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        weight = layer.weights["kernel"].astype(np.float64).T
        bias = layer.weights["bias"].astype(np.float64)
        if i == 0 and norm is not None:
            mean = norm["mean"].astype(np.float64).reshape(-1)
            scale = np.maximum(np.sqrt(norm["variance"].astype(np.float64).reshape(-1)), KERAS_EPSILON)
            weight = weight / scale  # W((x - m) / s) + b = (W / s) x + (b - (W / s) m)
            bias = bias - weight @ mean
        out[f"{2 * i}.weight"] = weight.astype(np.float32)
        out[f"{2 * i}.bias"] = bias.astype(np.float32)
    return out


# --- TensorFlow SavedModel variables (tensor bundle) ------------------------------------------------

TABLE_MAGIC = 0xDB4775248B80FB57
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}
VARIABLE = re.compile(r"^(?P<layer>.+)/(?P<weight>kernel|bias|mean|variance)/\.ATTRIBUTES/VARIABLE_VALUE$")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block (LevelDB format: prefix-compressed keys)."""
    block, kind = data[offset : offset + size], data[offset + size]
    if kind != 0:
        raise ModelLoadError(f"a compressed tensor-bundle block (type {kind}); only uncompressed is read")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end, pos, key, entries = len(block) - 4 * (restarts + 1), 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def _table(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every entry of a table file (`variables.index`), in key order."""
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise ModelLoadError("variables.index is not a TensorFlow tensor-bundle table")
    pos = len(data) - 48
    _, pos = _varint(data, pos)  # the metaindex block (empty in a bundle)
    _, pos = _varint(data, pos)
    index_offset, pos = _varint(data, pos)
    index_size, pos = _varint(data, pos)
    entries = []
    for _, handle in _block(data, index_offset, index_size):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        entries += _block(data, offset, size)
    return entries


def _fields(buf: bytes) -> dict[int, list]:
    """A protobuf message's fields: number -> values (ints for varint/fixed, bytes for length-delimited)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ModelLoadError(f"variables.index: protobuf wire type {wire} is not read")
        out.setdefault(number, []).append(value)
    return out


def read_tensor_bundle(prefix: Path) -> dict[str, np.ndarray]:
    """The numeric tensors of a TensorFlow checkpoint `PREFIX.index` + `PREFIX.data-*-of-*`, by name."""
    entries = _table(Path(f"{prefix}.index").read_bytes())
    header = _fields(dict(entries).get(b"", b""))
    shards = header.get(1, [1])[0]
    if header.get(2, [0])[0] != 0:
        raise ModelLoadError("a big-endian tensor bundle; only little-endian is read")
    data = [Path(f"{prefix}.data-{i:05d}-of-{shards:05d}").read_bytes() for i in range(shards)]
    tensors = {}
    for key, value in entries:
        if not key:
            continue
        entry = _fields(value)
        dtype = DTYPES.get(entry.get(1, [0])[0])
        if dtype is None or 7 in entry:  # strings, resources and sliced (partitioned) variables
            continue
        dims = [_fields(d).get(1, [0])[0] for d in _fields(entry.get(2, [b""])[0]).get(2, [])]
        shard, offset, size = (entry.get(n, [0])[0] for n in (3, 4, 5))
        raw = data[shard][offset : offset + size]
        tensors[key.decode()] = np.frombuffer(raw, dtype).reshape(dims).copy()
    return tensors


def _read_saved_model(folder: Path, form: str) -> KerasHead:
    prefix = folder / "variables" / "variables"
    if not Path(f"{prefix}.index").is_file():
        raise ModelLoadError(f"{form}: no variables/variables.index")
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for name, value in read_tensor_bundle(prefix).items():
        match = VARIABLE.match(name)
        if match and ".OPTIMIZER_SLOT" not in name and not name.startswith("optimizer/"):
            grouped.setdefault(match["layer"], {})[match["weight"]] = value.astype(np.float32)
    order = {name: re.fullmatch(r"layer_with_weights-(\d+)", name) for name in grouped}
    if not grouped or not all(order.values()):
        raise ModelLoadError(f"{form}: variables {sorted(grouped)}, not a Keras model's layer_with_weights-N")
    layers = [
        _layer(name, grouped[name], form) for name in sorted(grouped, key=lambda n: int(order[n].group(1)))
    ]
    _check_stack(layers, form)
    return KerasHead(layers, form)
