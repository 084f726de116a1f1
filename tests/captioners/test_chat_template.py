"""The chat-template path (LLaVA-style) with a tiny randomly initialised LLaVA saved locally."""

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from pairsmith.captioners.hf import Generation, TransformersCaptioner
from pairsmith.captioners.prompts import PRESETS
from pairsmith.filters.clip_models import ModelLoadError

TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: {% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
WORDS = "USER: ASSISTANT: describe this image and its style in a very detailed manner red green circle square"


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """A 1-layer LLaVA (CLIP vision tower, Llama text model) with a word-level tokenizer and a chat
    template, written by save_pretrained; its generation config suppresses the special tokens, so it
    always writes `max_new_tokens` words."""
    vocab = {w: i for i, w in enumerate([*SPECIALS, *WORDS.split()])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=TEMPLATE,
        num_additional_image_tokens=1,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    text = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.5,  # large weights: the words written depend on the prompt and the image
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    config = LlavaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    # saved in generation_config.json: never a special token nor a chat-template word
    model.generation_config.suppress_tokens = [*range(len(SPECIALS)), vocab["USER:"], vocab["ASSISTANT:"]]
    folder = tmp_path_factory.mktemp("tiny-llava")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def pictures(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (40 + 7 * i, 30 + 3 * i), (60 * i % 256, 90, 30 * i % 256)) for i in range(n)]


def test_chat_template_prompts_left_padded_and_stripped(tiny_llava):
    captioner = TransformersCaptioner(
        str(tiny_llava), PRESETS["dense_with_alt"], Generation(max_new_tokens=6, temperature=0), batch_size=8
    ).load()
    assert captioner.chat and captioner.processor.tokenizer.padding_side == "left"
    text = captioner._chat_text("describe this image")
    assert text == "USER: <image> describe this image ASSISTANT:"
    alts = ["red", "a red circle and a green square in a very detailed style", None]
    captions = captioner.caption(pictures(3), alts)
    # only the new tokens: exactly max_new_tokens words each, no chat-template text
    assert all(len(c.split()) == 6 and "USER:" not in c and "ASSISTANT:" not in c for c in captions)
    assert len(set(captions)) > 1  # so that the next check means something
    # left padding is right: a row's greedy caption does not depend on the other rows of its batch
    alone = [captioner.caption([image], [alt])[0] for image, alt in zip(pictures(3), alts, strict=True)]
    assert captions == alone


def test_prompt_mode_text_on_a_chat_model_and_chat_on_a_plain_one(tiny_llava):
    plain = TransformersCaptioner(str(tiny_llava), "describe this image", prompt_mode="text").load()
    assert not plain.chat
    with pytest.raises(ModelLoadError, match="no chat template"):
        TransformersCaptioner("toy", "describe this image", prompt_mode="chat").load()


def test_not_an_image_to_text_model(tmp_path):
    LlamaConfig(
        vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1
    ).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="'llama' is not an image-to-text"):
        TransformersCaptioner(str(tmp_path), "describe").load()
