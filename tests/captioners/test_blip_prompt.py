"""The plain-prompt path (BLIP style: the prompt is the start of the caption) with a tiny random BLIP."""

import pytest
import torch
from PIL import Image
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
)

from pairsmith.captioners.hf import Generation, TransformersCaptioner
from pairsmith.captioners.prompts import PRESETS
from tools.train_toy_captioner import vocabulary


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    """A 1-layer BLIP with its BlipProcessor (BERT tokenizer over the toy vocabulary), saved locally."""
    vocab = {w: i for i, w in enumerate(vocabulary())}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]", model_max_length=128)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "encoder_hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        "initializer_range": 0.5,  # large weights: the words depend on the prompt and the image
        "bos_token_id": vocab["[DEC]"],
        "eos_token_id": vocab["[SEP]"],
        "sep_token_id": vocab["[SEP]"],
        "pad_token_id": vocab["[PAD]"],
    }
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision |= {"image_size": 32, "patch_size": 8, "initializer_range": 0.5}
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(
        BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
    )
    model.generation_config.suppress_tokens = [
        vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    ]
    folder = tmp_path_factory.mktemp("tiny-blip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def pictures(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (50 + 9 * i, 40), (40 * i % 256, 200 - 20 * i, 90)) for i in range(n)]


def test_prompt_text_batched_by_length_and_cut_from_the_caption(tiny_blip):
    captioner = TransformersCaptioner(
        str(tiny_blip), PRESETS["dense_with_alt"], Generation(max_new_tokens=5, temperature=0), batch_size=8
    ).load()
    assert not captioner.chat and not captioner.decoder_prompt
    assert type(captioner.processor).__name__ == "BlipProcessor"
    alts = ["a red circle", "a small red circle above a large blue square", "a red circle", None, "star"]
    captions = captioner.caption(pictures(5), alts)
    assert all(not c.startswith("given") and 1 <= len(c.split()) <= 5 for c in captions)
    assert len(set(captions)) > 1
    # rows of different prompt lengths went to different batches, none padded: same as one by one
    alone = [captioner.caption([image], [alt])[0] for image, alt in zip(pictures(5), alts, strict=True)]
    assert captions == alone


def test_no_prompt(tiny_blip):
    captioner = TransformersCaptioner(str(tiny_blip), "", Generation(max_new_tokens=4, temperature=0)).load()
    captions = captioner.caption(pictures(3))
    assert all(1 <= len(c.split()) <= 4 for c in captions)
