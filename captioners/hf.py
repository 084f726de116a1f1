"""A captioner for any Hugging Face image-to-text or image-text-to-text model, through the Auto classes.

Model specs: a Hugging Face repo id (`Salesforce/blip-image-captioning-base`,
`llava-hf/llava-1.5-7b-hf`, `Qwen/Qwen2-VL-2B-Instruct`, ...), from the cache, a local folder written
by `save_pretrained`, or `toy` (pairsmith's own toy captioner, `captioners/toy_captioner/`, trained by
`tools/train_toy_captioner.py`). Every spec loads the same way: `AutoProcessor`, then the first
Auto model class whose mapping knows the config (`AutoModelForImageTextToText`, else
`AutoModelForVision2Seq` on older transformers, else `AutoModelForCausalLM`), `trust_remote_code` off
unless asked for.

Prompts: a processor with a chat template (LLaVA, Qwen2-VL, SmolVLM, ...) gets the prompt as a user
message with one image, rendered by that template and left-padded; a processor without one (BLIP,
GIT, ...) gets the plain prompt text as the start of the caption, and rows are batched by prompt
length so that no batch is padded. The prompt is cut from the output. Prompt `none` (empty text)
captions from the image alone, the way BLIP, GIT and ViT-GPT2 caption by default.

`resolve` checks that a spec can be loaded without loading it, so a run fails at start-up, before
any download, with a message that says how to get the model.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from pairsmith.captioners.base import Captioner
from pairsmith.filters.devices import is_cuda, resolve_device
from pairsmith.schemas.errors import ModelLoadError

TOY_CAPTIONER = Path(__file__).resolve().parent / "toy_captioner"
HOW_TO_GET = (
    "run once with network access so that it is cached (`hf download REPO_ID`), point HF_HOME at a "
    "cache that has it, or pass a local folder written by save_pretrained (HF_HUB_OFFLINE=1 downloads nothing)"
)
AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "model*.bin")
REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def _fail(spec: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"cannot load captioner {spec!r}: {why}")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in WEIGHT_PATTERNS)


def resolve(spec: str) -> str:
    """What `from_pretrained` is given for `spec` (a local folder or a cached repo id); raises
    ModelLoadError, saying how to get the model, when it cannot be loaded here."""
    if spec == "toy":
        spec = str(TOY_CAPTIONER)
    folder = Path(spec).expanduser()
    if folder.exists() or spec.startswith(("/", ".", "~")) or not REPO_ID.match(spec):
        if not folder.is_dir():
            raise _fail(spec, f"no such folder, and not a Hugging Face repo id; {HOW_TO_GET}")
        if not (folder / "config.json").is_file():
            raise _fail(spec, f"{folder} has no config.json (expected a folder written by save_pretrained)")
        if not _has_weights(folder):
            raise _fail(spec, f"{folder} has no weights (*.safetensors or *.bin)")
        return str(folder)
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if not _offline():
            hf_hub_download(spec, "config.json")
            return spec  # weights come with from_pretrained, once
        snapshot = Path(snapshot_download(spec, local_files_only=True))
    except Exception as exc:  # noqa: BLE001  (every hub failure means the same to the user)
        raise _fail(spec, f"not in the Hugging Face cache ({type(exc).__name__}); {HOW_TO_GET}") from None
    if not (snapshot / "config.json").is_file() or not _has_weights(snapshot):
        raise _fail(spec, f"the cached copy in {snapshot} has no config.json or no weights; {HOW_TO_GET}")
    return spec


@dataclass(frozen=True)
class Generation:
    """Generation settings. temperature 0 is greedy decoding; above 0 samples, seeded per batch."""

    max_new_tokens: int = 1024
    temperature: float = 0.2
    num_beams: int = 1
    seed: int = 0

    def kwargs(self) -> dict:
        out = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams}
        if self.temperature > 0:
            return out | {"do_sample": True, "temperature": self.temperature}
        return out | {"do_sample": False}


def torch_dtype(dtype: str, device: str) -> torch.dtype:
    """auto: float32 on the CPU, bfloat16 on a GPU that has it, else float16 (the weights themselves:
    generation runs in that dtype, as VLMs are released and served)."""
    if dtype == "auto":
        if not is_cuda(device):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def _model_class(config, trust_remote_code: bool):
    import transformers

    remote = getattr(config, "auto_map", None) or {}
    for name in AUTO_CLASSES:
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        # AutoModelForCausalLM: only for a model's own code (Florence-2 before transformers had it,
        # Moondream, ...); a native causal LM without an image-text mapping is a text-only model
        native = name != "AutoModelForCausalLM" and type(config) in cls._model_mapping
        if native or (trust_remote_code and name in remote):
            return cls
    return None


def _from_pretrained_dtype(dtype: torch.dtype) -> dict:
    """transformers >= 4.56 calls it `dtype`, older versions `torch_dtype`."""
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def shrink(image: Image.Image, short_side: int | None) -> Image.Image:
    """Downscale so that the short side is at most `short_side` (PixArt-alpha: 400), keeping the ratio."""
    if not short_side or min(image.size) <= short_side:
        return image
    scale = short_side / min(image.size)
    return image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC
    )


class TransformersCaptioner(Captioner):
    """Any transformers image-to-text / image-text-to-text model, batched."""

    def __init__(
        self,
        spec: str,
        template: str,
        generation: Generation | None = None,
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
        prompt_mode: str = "auto",
        trust_remote_code: bool = False,
        image_short_side: int | None = 400,
    ):
        super().__init__(template)
        self.spec, self.model_id = spec, spec
        self.generation = generation or Generation()
        self.batch_size, self.device = batch_size, resolve_device(device)
        self.dtype = torch_dtype(dtype, self.device)
        self.prompt_mode, self.trust_remote_code = prompt_mode, trust_remote_code
        self.image_short_side = image_short_side
        self.model = None

    def load(self) -> TransformersCaptioner:
        from transformers import AutoConfig

        source = resolve(self.spec)
        trust = self.trust_remote_code
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust)
            cls = _model_class(config, trust)
            if cls is None:
                raise _fail(
                    self.spec,
                    f"model type {config.model_type!r} is not an image-to-text or image-text-to-text model "
                    "known to transformers' Auto classes (a model with its own code needs "
                    "recaption.trust_remote_code=true)",
                )
            self._load_processor(source, trust)
            self.model = cls.from_pretrained(
                source, trust_remote_code=trust, **_from_pretrained_dtype(self.dtype)
            )
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(self.spec, f"{type(exc).__name__}: {exc}") from exc
        self.model.to(self.device).eval()
        self.config = config
        # vision-encoder-decoder models (ViT-GPT2, Donut, pairsmith's toy) take a prompt as the start
        # of the decoder's text; the others through their processor
        self.decoder_prompt = config.model_type == "vision-encoder-decoder"
        self.chat = self._uses_chat()
        if self.chat and not config.is_encoder_decoder:
            self.tokenizer.padding_side = "left"  # decoder-only generation continues from the right end
        return self

    def _load_processor(self, source: str, trust: bool) -> None:
        """`processor` (the model's own, None when it has none), `image_processor` and `tokenizer`.

        Many captioners ship no processor of their own (ViT-GPT2: an image processor and a tokenizer,
        for which AutoProcessor returns the tokenizer); the missing parts load by their own Auto classes.
        """
        from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
        from transformers.image_processing_utils import ImageProcessingMixin
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase

        loaded = AutoProcessor.from_pretrained(source, trust_remote_code=trust)
        is_part = isinstance(loaded, ImageProcessingMixin | PreTrainedTokenizerBase)
        self.processor = None if is_part else loaded
        self.image_processor = getattr(loaded, "image_processor", None)
        self.tokenizer = getattr(loaded, "tokenizer", None)
        if isinstance(loaded, ImageProcessingMixin):
            self.image_processor = loaded
        if isinstance(loaded, PreTrainedTokenizerBase):
            self.tokenizer = loaded
        if self.image_processor is None:
            try:
                self.image_processor = AutoImageProcessor.from_pretrained(source, trust_remote_code=trust)
            except (OSError, ValueError) as exc:
                raise _fail(
                    self.spec, f"it has no image processor: not an image-to-text model ({exc})"
                ) from None
        if self.tokenizer is None:
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust)

    def _uses_chat(self) -> bool:
        has_template = bool(getattr(self.processor, "chat_template", None))
        if self.prompt_mode == "chat" and not has_template:
            raise _fail(self.spec, "recaption.prompt_mode=chat, but its processor has no chat template")
        return has_template if self.prompt_mode == "auto" else self.prompt_mode == "chat"

    def _chat_text(self, prompt: str) -> str:
        content = [{"type": "image"}] + ([{"type": "text", "text": prompt}] if prompt else [])
        messages = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _prompt_ids(self, prompt: str) -> list[int]:
        """A decoder prompt's tokens: the decoder's start token, then the prompt's words."""
        start = self.model.generation_config.decoder_start_token_id
        if start is None:
            start = self.config.decoder_start_token_id
        return [start, *self.tokenizer(prompt, add_special_tokens=False)["input_ids"]]

    def _groups(self, prompts: list[str]) -> list[list[int]]:
        """Row indices per batch: in order for chat (left padding), by prompt length otherwise."""
        if self.chat:
            order = [list(range(len(prompts)))]
        else:
            by_length: dict[int, list[int]] = defaultdict(list)
            for i, prompt in enumerate(prompts):
                by_length[len(self.tokenizer(prompt)["input_ids"]) if prompt else 0].append(i)
            order = [by_length[k] for k in sorted(by_length)]
        return [rows[s : s + self.batch_size] for rows in order for s in range(0, len(rows), self.batch_size)]

    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        if self.model is None:
            raise RuntimeError("call load() first")
        out: list[str] = [""] * len(images)
        for rows in self._groups(prompts):
            captions = self._batch(
                [shrink(images[i], self.image_short_side) for i in rows], [prompts[i] for i in rows]
            )
            for i, caption in zip(rows, captions, strict=True):
                out[i] = caption
        return out

    def _inputs(self, images: list[Image.Image], prompts: list[str]) -> tuple[dict, str | None]:
        """The model's inputs for one batch, and the name of the input that holds the prompt's tokens."""
        if self.chat:
            texts = [self._chat_text(p) for p in prompts]
            return self.processor(images=images, text=texts, padding=True, return_tensors="pt"), "input_ids"
        if not prompts[0]:
            return self.image_processor(images, return_tensors="pt"), None
        if self.decoder_prompt:
            inputs = dict(self.image_processor(images, return_tensors="pt"))
            inputs["decoder_input_ids"] = torch.tensor([self._prompt_ids(p) for p in prompts])
            return inputs, "decoder_input_ids"
        if self.processor is None:
            raise _fail(self.spec, "it has no processor that takes a text prompt: set recaption.prompt=none")
        return self.processor(images=images, text=prompts, return_tensors="pt"), "input_ids"  # one length

    @torch.inference_mode()
    def _batch(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        raw, prompt_key = self._inputs(images, prompts)
        inputs = {k: self._on_device(v) for k, v in raw.items()}
        settings = self.generation.kwargs()
        limit = self._max_positions()
        if (
            limit is not None
            and prompt_key is not None
            and (prompt_key != "input_ids" or not self.config.is_encoder_decoder)
        ):
            # never ask for more tokens than the text model has positions (the toy: 128, BLIP: 512)
            room = limit - inputs[prompt_key].shape[1]
            settings["max_new_tokens"] = max(1, min(settings["max_new_tokens"], room))
        elif limit is not None and self.decoder_prompt:
            settings["max_new_tokens"] = min(settings["max_new_tokens"], limit - 1)
        torch.manual_seed(self.generation.seed)
        generated = self.model.generate(**inputs, **settings)
        return self._strip_prompt(generated, inputs.get(prompt_key) if prompt_key else None)

    def _max_positions(self) -> int | None:
        """Learned position embeddings of the text model (None for rotary ones: no hard limit)."""
        text = (
            getattr(self.config, "text_config", None) or getattr(self.config, "decoder", None) or self.config
        )
        if (
            getattr(text, "rope_theta", None) is not None
            or getattr(text, "rope_parameters", None) is not None
        ):
            return None
        return getattr(text, "max_position_embeddings", None)

    def _on_device(self, value):
        if not isinstance(value, torch.Tensor):
            return value
        return value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device)

    def _strip_prompt(self, generated: torch.Tensor, input_ids: torch.Tensor | None) -> list[str]:
        """The generated text without the prompt: decoder-only models and decoder prompts come back first
        in the output; BLIP returns its prompt with its own start token (then the decoded prompt text is
        cut)."""
        decode = self.tokenizer.batch_decode
        if input_ids is None:
            return [t.strip() for t in decode(generated, skip_special_tokens=True)]
        n = input_ids.shape[1]
        if generated.shape[1] >= n and torch.equal(generated[:, :n].cpu(), input_ids.cpu()):
            return [t.strip() for t in decode(generated[:, n:], skip_special_tokens=True)]
        texts = decode(generated, skip_special_tokens=True)
        prompts = decode(input_ids, skip_special_tokens=True)
        return [
            (t[len(p) :] if p and t.startswith(p) else t).strip() for t, p in zip(texts, prompts, strict=True)
        ]
