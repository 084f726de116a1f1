"""Where and how the models run: one rule for every model-loading annotator.

- `resolve_device`: `models.device` as torch names it; `auto` is `cuda` when torch sees a GPU, else `cpu`.
- `autocast`: the mixed-precision context of a forward pass. Only on CUDA: `models.precision` `auto`
  and `fp16` autocast to float16, `bf16` to bfloat16, `fp32` not at all; on the CPU always plain fp32
  (so the CPU numbers never depend on the precision setting). Weights stay fp32 (autocast casts per
  op), outputs are read back as fp32 before any softmax, sigmoid or normalisation.
- `head_autocast`: the small MLP heads on CLIP embeddings (LAION's NSFW and aesthetic heads) stay fp32
  everywhere: they cost nothing next to the image models, and their scores are read against fixed
  thresholds (punsafe < 0.5), where fp16's 3 significant digits would move rows across the line.
- `batch_size_for`: images decoded and annotated together. On the CPU `annotate.batch_size` (64);
  on CUDA `annotate.gpu_batch_size`: a number is taken as it is; `auto` (the default) gives 32 images
  per GiB of free GPU memory when the run starts, rounded down to a power of two, at least
  `annotate.batch_size` and at most 1024 (8 GiB free: 256; 24 GiB: 512; 40 GiB or more: 1024).
- `onnx_providers`: the onnxruntime execution providers of an ONNX model (NudeNet): CUDA first when
  the device is a GPU and onnxruntime has the CUDA provider (the `onnxruntime-gpu` package), else CPU.

Imports torch only when called, so the config and the contract read without it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pairsmith.schemas.config import AnnotateConfig, ModelsConfig

GPU_IMAGES_PER_GIB = 32
GPU_MAX_BATCH = 1024


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` if torch sees a GPU, else `cpu`; any other name as given (`cpu`, `cuda:1`)."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def autocast_dtype(device: str, precision: str):
    """The dtype a forward pass autocasts to, or None for plain fp32 (always None on the CPU)."""
    import torch

    if not is_cuda(device) or precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: str, precision: str):
    """A context for an image model's forward pass: fp16/bf16 autocast on CUDA, nothing on the CPU."""
    import torch

    dtype = autocast_dtype(device, precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


def head_autocast(device: str, precision: str):
    """The small heads on CLIP embeddings: fp32 on every device (see the module docstring)."""
    return contextlib.nullcontext()


def free_gpu_bytes(device: str) -> int:
    """Free memory of the GPU `device` now (torch's view of the driver's count)."""
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def gpu_auto_batch(free_bytes: int, floor: int) -> int:
    """`annotate.gpu_batch_size=auto`: 32 images per free GiB, a power of two, in [floor, 1024]."""
    images = int(free_bytes / 2**30 * GPU_IMAGES_PER_GIB)
    power = 1 << (images.bit_length() - 1) if images > 0 else 1
    return max(floor, min(GPU_MAX_BATCH, power))


def batch_size_for(
    device: str, requested: int, gpu_batch_size: int | str = "auto", free_bytes: int | None = None
) -> int:
    """Images per batch on `device` (resolved): `requested` on the CPU; on CUDA `gpu_batch_size`
    if it is a number, else `gpu_auto_batch` of the free memory (`free_bytes`, measured if None)."""
    device = resolve_device(device)
    if not is_cuda(device):
        return requested
    if gpu_batch_size != "auto":
        return int(gpu_batch_size)
    return gpu_auto_batch(free_gpu_bytes(device) if free_bytes is None else free_bytes, requested)


def annotate_batch_size(annotate: AnnotateConfig, models: ModelsConfig) -> int:
    """The annotate stage's batch for this worker's device (`batch_size_for` of the run's config)."""
    return batch_size_for(models.device, annotate.batch_size, annotate.gpu_batch_size)


def onnx_providers(device: str) -> list:
    """onnxruntime providers for `device`: CUDA (on the device's index) then CPU where onnxruntime has
    the CUDA provider and the device is a GPU; CPU only otherwise."""
    device = resolve_device(device)
    if is_cuda(device):
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            index = int(device.partition(":")[2] or 0)
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
