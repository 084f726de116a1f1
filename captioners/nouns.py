"""Nouns per caption: PixArt-alpha's concept density (6.4 nouns per LAION alt-text, ~21-29 per dense
caption; ../shared/ANCHORS.md), counted offline.

No statistical part-of-speech tagger installs from PyPI with its weights (NLTK's and spaCy's download
theirs), so this is a documented heuristic over a real lexicon: lemminflect's English lemma table
(SPECIALIST lexicon + AGID, shipped in its wheel) says which parts of speech a word can be, and a few
context rules pick one:

1. closed-class words (determiners, pronouns, prepositions, conjunctions, auxiliaries, numerals) are
   never nouns;
2. a word the lexicon knows only as a noun is a noun (`dog`, `photo`, and compounds: `coffee cup` is
   two nouns, as spaCy tags it);
3. a word that can be an adjective and a noun (`red`, `square`, `light`) is an adjective before
   another word that can be a noun (`red circle`), a noun after a determiner, adjective, number or
   preposition otherwise (`the red of the sky`, `on the left`), else an adjective (`is red`);
4. a word that can be a verb and a noun is a verb after a pronoun, an auxiliary, `to` or a noun when
   it is an -ing, -ed or -s form (`a man riding`, `she walks`, `a dog sits`), a noun otherwise
   (`a painting`, `the walk`);
5. a word the lexicon does not know is a proper noun when capitalised, else guessed by its suffix
   (-tion, -ness, -ment, -ity, -ism, -er, ... nouns; -ous, -ful, -ive, -able, -ic, ... adjectives;
   -ly adverbs; -ing, -ed verbs) and a noun when no suffix says otherwise (web alt-texts' unknown
   words are mostly names and products).

Agreement with hand-tagged captions is measured in `tests/captioners/test_nouns.py`. Counts are noun
tokens (a repeated noun counts each time), as "nouns per caption".
"""

from __future__ import annotations

import re
from functools import lru_cache


def _word_set(text: str) -> frozenset[str]:
    """A set of words written as text (word lists read best that way)."""
    return frozenset(text.split())


CLOSED = _word_set(
    """
    a an the this that these those my your his her its our their some any no every each all both either
    neither another other such what which whose who whom where when why how whatever whichever i you he
    she it we they me him us them myself yourself himself herself itself ourselves themselves one ones
    something anything nothing everything someone anyone everyone nobody somebody anybody of in on at
    by for with about against between into through during before after above below to from up down out
    off over under again further then once here there near behind beside besides next around across
    along within without upon onto toward towards via among amid like unlike per plus inside outside
    underneath beneath beyond throughout past than as if because while although though and but or nor
    so yet not very too also just only even still quite rather really almost is am are was were be been
    being have has had having do does did done can could will would shall should may might must 's 're
    've 'll 'd n't two three four five six seven eight nine ten eleven twelve twenty thirty hundred
    thousand million first second third many much more most few several less least own same
    """
)
DETERMINERS = _word_set(
    """
    a an the this that these those my your his her its our their some any no every each all both
    another other such whose several many few
    """
)
SUBJECTS = _word_set(
    """
    i you he she it we they who which that
    """
)
AUXILIARIES = _word_set(
    """
    is am are was were be been being have has had do does did can could will would shall should may
    might must to
    """
)
NOUN_SUFFIXES = (
    "tion",
    "sion",
    "ness",
    "ment",
    "ity",
    "ism",
    "ist",
    "ship",
    "hood",
    "ance",
    "ence",
    "dom",
    "er",
    "or",
    "ery",
    "age",
)
ADJ_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "al", "ic", "ish", "less", "ary", "ian")
WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*|\d+(?:[.,]\d+)*")
TOKEN = re.compile(WORD.pattern + r"|[^\sA-Za-z0-9]")  # words and punctuation (clause breaks)
PREPOSITIONS = _word_set(
    """
    of in on at with for from by under over near behind into onto
    """
)
CLAUSE_BREAKS = _word_set(
    """
    and but or that which who where while when because
    """
)
FINITE_AUXILIARIES = _word_set(
    """
    is am are was were has have had does did
    """
)


@lru_cache(maxsize=200_000)
def _lexicon(word: str) -> frozenset[str]:
    """Parts of speech (UPOS) the lexicon allows for a lower-case word; empty when it does not know it."""
    from lemminflect import getAllLemmas

    return frozenset(getAllLemmas(word))


@lru_cache(maxsize=50_000)
def _plural(word: str) -> bool:
    """A noun form the lexicon takes for a plural (its noun lemma differs: trees, but not Christmas)."""
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word).get("NOUN", ())
    return bool(lemmas) and word not in lemmas


def _guess(token: str, sentence_start: bool) -> frozenset[str]:
    """Parts of speech of a word the lexicon does not know (rule 5)."""
    word = token.lower()
    if token[0].isupper() and not sentence_start or any(c.isdigit() for c in token) and token[0].isalpha():
        return frozenset({"PROPN"})
    if token.isdigit() or word.replace(".", "").replace(",", "").isdigit():
        return frozenset({"NUM"})
    if word.endswith("ly"):
        return frozenset({"ADV"})
    if word.endswith(("ing", "ed")):
        return frozenset({"VERB"})
    if word.endswith(ADJ_SUFFIXES) and not word.endswith(NOUN_SUFFIXES):
        return frozenset({"ADJ"})
    return frozenset({"NOUN"})


def _candidates(token: str, sentence_start: bool) -> frozenset[str]:
    word = token.lower()
    if not token[0].isalnum():
        return frozenset({"PUNCT"})
    if word in CLOSED:
        return frozenset({"X"})
    known = _lexicon(word)
    if not known and "-" in word and word.rsplit("-", 1)[-1] not in CLOSED:
        known = _lexicon(word.rsplit("-", 1)[-1])  # "hand-painted": as its last part
    return known or _guess(token, sentence_start)


def _can_be_noun(candidates: frozenset[str]) -> bool:
    return bool(candidates & {"NOUN", "PROPN"})


class _Clause:
    """Whether the current clause has its finite verb yet (a new clause starts at punctuation and at
    `and`, `that`, `which`, `where`, ...)."""

    def __init__(self):
        self.has_verb = False

    def boundary(self, word: str) -> bool:
        return word in CLAUSE_BREAKS or not word[0].isalnum()


def _verb_reading(word: str, prev: str | None, prev_noun: bool, prev_modifier: bool, clause: _Clause) -> bool:
    """Rule 4: does a word that can be a verb or a noun read as a verb here?"""
    if prev == "that":
        return not word.endswith("ing")  # "that give", but "that painting"
    if prev is None or prev_modifier:
        return False
    if prev in AUXILIARIES or prev in SUBJECTS:
        return True
    if not prev_noun:
        return False
    if word.endswith(("ing", "ed")):
        return True  # "a man riding", "trees covered"
    third_person = word.endswith("s") and not word.endswith("ss")
    base_after_plural = _plural(prev)
    return (third_person or base_after_plural) and not clause.has_verb  # "a dog sits", "vendors sell"


def tag_nouns(text: str | None) -> list[bool]:
    """For each word of `text` (`WORD` tokens), whether the heuristic takes it for a noun."""
    if not text:
        return []
    tokens = TOKEN.findall(text)
    starts = [i == 0 or tokens[i - 1] in ".!?" for i in range(len(tokens))]
    candidates = [_candidates(t, start) for t, start in zip(tokens, starts, strict=True)]
    clause = _Clause()
    tags: list[bool] = []
    for i, (token, cands) in enumerate(zip(tokens, candidates, strict=True)):
        word = token.lower()
        if clause.boundary(word):
            clause.has_verb = False
        prev = tokens[i - 1].lower() if i else None
        prev_noun = bool(i and tags[-1])
        prev_modifier = prev is not None and (
            prev in DETERMINERS
            or prev.isdigit()
            or bool(candidates[i - 1] & {"ADJ", "NUM"})
            and not prev_noun
        )
        next_cands = candidates[i + 1] if i + 1 < len(tokens) else frozenset()
        if not _can_be_noun(cands):
            # rule 4's gerunds: an -ing word known only as a verb names a thing after a modifier
            is_noun = word.endswith("ing") and "VERB" in cands and prev_modifier and prev not in AUXILIARIES
        elif "PROPN" in cands or cands == {"NOUN"}:
            is_noun = True
        elif "ADJ" in cands:
            modifies_next = bool(next_cands & {"NOUN", "PROPN", "ADJ"})
            is_noun = not modifies_next and (prev_modifier or prev_noun or prev in PREPOSITIONS)
        elif cands & {"VERB", "AUX"}:
            is_noun = not _verb_reading(word, prev, prev_noun, prev_modifier, clause)
            clause.has_verb |= not is_noun
        else:
            is_noun = True
        if word in FINITE_AUXILIARIES or cands == {"VERB"} and not word.endswith(("ing", "ed")):
            clause.has_verb = True
        tags.append(is_noun)
    return [tag for tag, token in zip(tags, tokens, strict=True) if token[0].isalnum()]


def count_nouns(text: str | None) -> int | None:
    """Nouns in `text` (None for no text)."""
    if text is None:
        return None
    return sum(tag_nouns(text))


def nouns(text: str | None) -> list[str]:
    """The words taken for nouns, in order (for inspection and tests)."""
    if not text:
        return []
    return [t for t, is_noun in zip(WORD.findall(text), tag_nouns(text), strict=True) if is_noun]


NUMBERS = _word_set(
    """
    two three four five six seven eight nine ten eleven twelve twenty several many few
    """
)
# Nouns that name the picture, a place in it or a generic thing, not an object a detector can find:
# their phrases are not checked against the image (`noun_phrases(..., objects_only=True)`).
NOT_OBJECTS = _word_set(
    """
    picture pictures image images photo photos photograph photographs scene scenes view views style
    background backgrounds foreground setting atmosphere composition frame left right top bottom front
    back side sides middle center centre corner corners edge edges distance shape shapes object objects
    thing things item items detail details color colors colour colours type kind sort part parts
    """
)


def _modifier(token: str, sentence_start: bool) -> bool:
    """A word that may stand before the noun of a phrase: an adjective, a number, a noun-like word."""
    if token.lower() in NUMBERS:
        return True
    return bool(_candidates(token, sentence_start) & {"ADJ", "NUM", "NOUN", "PROPN"})


def noun_phrases(text: str | None, objects_only: bool = False) -> list[str]:
    """The noun phrases of `text`, as written, each once (first occurrence order): a run of modifiers
    (words that can be adjectives, numbers, or nouns used as modifiers) ending in a noun, with the
    determiner just before it (`a small red circle`, `the coffee cup`, `two dogs`). `objects_only`
    leaves out phrases whose last noun names the picture or a place in it (`NOT_OBJECTS`: `a striped
    background`, `the left`), which no detector can ground."""
    if not text:
        return []
    tokens = TOKEN.findall(text)
    tags = iter(tag_nouns(text))
    is_noun = [next(tags) if t[0].isalnum() else False for t in tokens]
    starts = [i == 0 or tokens[i - 1] in ".!?" for i in range(len(tokens))]
    phrases: list[str] = []
    i = 0
    while i < len(tokens):
        if not tokens[i][0].isalnum():
            i += 1
            continue
        # a phrase: modifiers then nouns; its end is the last noun of the run
        j, last_noun = i, None
        while j < len(tokens) and tokens[j][0].isalnum():
            if is_noun[j]:
                last_noun = j
            elif last_noun is not None or not _modifier(tokens[j], starts[j]):
                break
            j += 1
        if last_noun is None:
            i = max(j, i + 1)
            continue
        begin = i - 1 if i and tokens[i - 1].lower() in DETERMINERS | NUMBERS else i
        phrase = " ".join(tokens[begin : last_noun + 1])
        if phrase not in phrases and not (objects_only and tokens[last_noun].lower() in NOT_OBJECTS):
            phrases.append(phrase)
        i = last_noun + 1
    return phrases
