"""Prompt presets of the recaptioners.

`dense` and `dense_with_alt` are PixArt-alpha's prompts (../shared/ANCHORS.md: LLaVA, temperature
0.2); `short` asks for one sentence. A custom prompt is any other text (`recaption.prompt_text`); a
`{}` in it is replaced by the row's alt-text, as in `dense_with_alt`.
"""

from __future__ import annotations

PRESETS: dict[str, str] = {
    "dense": "Describe this image and its style in a very detailed manner",
    "dense_with_alt": 'Given the caption of this image "{}", describe this image in a very detailed manner',
    "short": "Describe this image in one short sentence",
}
CUSTOM = "custom"


def prompt_template(preset: str, text: str | None = None) -> str:
    """The template of a preset, or `text` for `custom`."""
    if preset == CUSTOM:
        if not text:
            raise ValueError("a custom prompt needs its text (recaption.prompt_text)")
        return text
    if preset not in PRESETS:
        raise ValueError(f"unknown prompt preset {preset!r}; known: {', '.join(PRESETS)} or custom")
    return PRESETS[preset]


ALT_WORDS = 40  # web alt-texts are rarely longer; a 1 MB one would fit no model's context


def fill(template: str, alt_text: str | None) -> str:
    """The prompt of one row: the template with its alt-text (its first `ALT_WORDS` words, quotes
    made apostrophes so that the quoted caption stays one quotation) in place of `{}`."""
    if "{}" not in template:
        return template
    alt = " ".join((alt_text or "").split()[:ALT_WORDS]).replace('"', "'")
    return template.replace("{}", alt)
