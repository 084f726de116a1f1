"""The registry: every signal's annotator class (`profiles.SIGNALS`), in the order the columns they
read allow, and what follows from their declarations (`filters.base.Annotator`):

- `annotator_fields`: the annotators' record columns (`schemas.record` places them in the contract);
- `build_annotators`: the annotators of a run, each after those whose columns it reads;
- `check_models`: every model of a run resolved before any work (what the manifest records); an error
  names the `pairsmith models pull` command that fetches the model;
- `caption_annotators`: those that read the caption and never the image (`pairsmith corrupt` reruns them);
- `signals_table`, `profiles_table`: the README's tables.

Order: an annotator comes after every annotator that writes a column in its `needs` or `uses`; among
those free to go, the one listed first in `SIGNALS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pairsmith.filters import profiles
from pairsmith.filters.base import Annotator
from pairsmith.filters.named_weights import pullable
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig, RecaptionConfig
from pairsmith.schemas.errors import ModelLoadError
from pairsmith.schemas.record import DOWNLOAD_FIELDS, IDENTITY_FIELDS

if TYPE_CHECKING:
    from pairsmith.filters.clip_score import ClipScore

MISSING = ("not found; get it from", "is not in the Hugging Face cache")  # what pull can fix
BASE_COLUMNS = frozenset(f.name for f in (*IDENTITY_FIELDS, *DOWNLOAD_FIELDS))  # there before annotate


@dataclass
class Run:
    """What annotator classes read to configure themselves: the run's config, and its CLIP scorers
    (built once, so that every annotator reading CLIP embeddings shares the same models)."""

    models: ModelsConfig
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    recaption: RecaptionConfig = field(default_factory=RecaptionConfig)

    def spec(self, key: str) -> Any:
        return profiles.profile_spec(self.models, key)

    @cached_property
    def clips(self) -> list[ClipScore]:
        """One `ClipScore` per CLIP model of the run; the first is primary."""
        from pairsmith.filters.clip_score import ClipScore

        return [
            ClipScore(
                m.alias, m.spec, primary=i == 0, device=self.models.device, precision=self.models.precision
            )
            for i, m in enumerate(profiles.clip_models(self.models))
        ]


def _load(entry: str | type) -> type[Annotator]:
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)
    return entry


def _writes(cls: type[Annotator]) -> set[str]:
    return {f.name for f in cls.fields} | set(cls.provides)


def _producers(classes: list[type[Annotator]]) -> dict[str, list[type[Annotator]]]:
    """Column -> the classes that write it; raises if a class needs a column nothing gives."""
    out: dict[str, list[type[Annotator]]] = {}
    for cls in classes:
        for name in _writes(cls):
            out.setdefault(name, []).append(cls)
    for cls in classes:
        missing = [n for n in (*cls.needs, *cls.uses) if n not in out and n not in BASE_COLUMNS]
        if missing:
            raise ValueError(
                f"{cls.__name__} reads {missing}, which neither the download nor an annotator writes"
            )
    return out


def annotator_classes() -> list[type[Annotator]]:
    """Every registered class, each after the classes that write what it reads; ties in `SIGNALS` order."""
    pending = [_load(entry) for entry in profiles.SIGNALS.values()]
    producers = _producers(pending)
    order: list[type[Annotator]] = []
    while pending:
        ready = next(
            (
                cls
                for cls in pending
                if all(p in order or p is cls for n in (*cls.needs, *cls.uses) for p in producers.get(n, ()))
            ),
            None,
        )
        if ready is None:
            raise ValueError(f"annotators that read each other's columns: {[c.__name__ for c in pending]}")
        order.append(ready)
        pending.remove(ready)
    return order


def annotator_fields() -> list[pa.Field]:
    """The registered annotators' record columns, in registry order (a column two classes write once)."""
    fields: dict[str, pa.Field] = {}
    for cls in annotator_classes():
        for f in cls.fields:
            if not fields.setdefault(f.name, f).equals(f, check_metadata=True):
                raise ValueError(f"column {f.name!r} is declared differently by two annotators")
    return list(fields.values())


def _instances(cls: type[Annotator], run: Run) -> list[Annotator]:
    spec = cls.model_spec(run)
    if not cls.accepts(spec) or cls.unavailable(run, spec):
        return []
    return cls.configure(run, spec)


def build_annotators(
    models: ModelsConfig, annotate: AnnotateConfig, recaption: RecaptionConfig | None = None
) -> list[Annotator]:
    """The annotators of a run, in registry order; one whose needed columns this run lacks is left out.

    Cheap to call: models load in each annotator's `setup`, once per worker.
    """
    run = Run(models, annotate, recaption if recaption is not None else RecaptionConfig())
    available, out = set(BASE_COLUMNS), []
    for cls in annotator_classes():
        made = _instances(cls, run) if available.issuperset(cls.needs) else []
        if made:
            available |= _writes(cls)
        out += made
    return out


def _by_model_key() -> dict[str, list[type[Annotator]]]:
    """Model key -> the classes that take their model from it (alternatives, e.g. NudeNet or a head)."""
    keys: dict[str, list[type[Annotator]]] = {}
    for cls in annotator_classes():
        if cls.model:
            keys.setdefault(cls.model, []).append(cls)
    return keys


def _taker(classes: list[type[Annotator]], spec: Any) -> type[Annotator] | None:
    """The class that computes the signal with `spec`; None when `spec` turns it off."""
    taker = next((cls for cls in classes if cls.accepts(spec)), None)
    if taker is None and spec != "none":
        raise ModelLoadError(f"models.{classes[0].model}={spec!r}: no annotator takes this model")
    return taker


def check_models(models: ModelsConfig, recaption: RecaptionConfig | None = None) -> dict[str, str]:
    """Fail before any work if a model cannot be loaded here; returns what the manifest records:
    per model key, its spec, `none`, or why the signal is not computed."""
    run = Run(models, recaption=recaption if recaption is not None else RecaptionConfig())
    ids: dict[str, str] = {}
    for key, classes in _by_model_key().items():
        spec = classes[0].model_spec(run)
        taker = _taker(classes, spec)
        why = taker.unavailable(run, spec) if taker else None
        if taker is None:
            ids[key] = "none"
        elif why:
            ids[key] = f"not computed: {spec} {why}"
        else:
            try:
                ids |= taker.check(run, spec)
            except ModelLoadError as exc:
                hint = _pull_hint(models, key, spec, str(exc))
                if hint is None:
                    raise
                raise ModelLoadError(f"{exc}; run: {hint}") from exc
    return ids


def _pull_hint(models: ModelsConfig, key: str, spec: Any, message: str) -> str | None:
    """The `pairsmith models pull` command that fetches the model an error names: the profile's name
    where the profile chose it, else the model's own; None where pull cannot fetch it (a path)."""
    if not any(why in message for why in MISSING):
        return None  # not a missing file (a model that reads CLIP embeddings in a run without CLIP, ...)
    specs = [m.spec for m in spec] if isinstance(spec, list) else [spec]
    failing = [s for s in specs if isinstance(s, str) and pullable(s) and s in message]
    if not failing:
        return None
    explicit = getattr(models, key, None) if key in type(models).model_fields else None
    return f"pairsmith models pull {models.profile if explicit is None else failing[0]}"


def caption_only_classes() -> list[type[Annotator]]:
    """The classes whose columns follow from the caption without the image, directly or through
    the columns of others (`pairsmith corrupt` reruns them on replaced captions)."""
    classes = annotator_classes()
    producers = _producers(classes)
    image_bound: dict[type, bool] = {}
    captioned: dict[type, bool] = {}
    for cls in classes:  # registry order: a class's producers are already decided
        sources = [p for n in (*cls.needs, *cls.uses) for p in producers.get(n, ()) if p is not cls]
        image_bound[cls] = cls.reads_image or any(image_bound[p] for p in sources)
        captioned[cls] = "caption" in cls.needs or any(captioned[p] for p in sources)
    return [cls for cls in classes if captioned[cls] and not image_bound[cls]]


def caption_annotators(models: ModelsConfig) -> list[Annotator]:
    """Instances of `caption_only_classes` for a run's models."""
    run = Run(models)
    return [a for cls in caption_only_classes() for a in _instances(cls, run)]


def _cells(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def signals_table() -> str:
    """The README's table of signals: one row per annotator class, in registry order."""
    signal_of = {_load(entry): name for name, entry in profiles.SIGNALS.items()}
    lines = ["| signal | columns | reads | model key | how |", "|---|---|---|---|---|"]
    for cls in annotator_classes():
        reads = (["image"] if cls.reads_image else []) + [f"`{n}`" for n in cls.needs]
        reads += [f"`{n}` (if present)" for n in cls.uses]
        how = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        lines.append(
            f"| {signal_of[cls]} | {_cells(f.name for f in cls.fields)} | {', '.join(reads)} "
            f"| {f'`{cls.model}`' if cls.model else '-'} | {how} |"
        )
    return "\n".join(lines)


def profiles_table() -> str:
    """The README's table of profiles: the model each gives every model key."""
    keys = _by_model_key()
    default = ModelsConfig.model_fields["profile"].default
    lines = [f"| profile | {' | '.join(keys)} |", "|---" * (len(keys) + 1) + "|"]
    for name in profiles.PROFILES:
        run = Run(ModelsConfig(profile=name))
        cells = []
        for classes in keys.values():
            spec = classes[0].model_spec(run)
            taker = _taker(classes, spec)
            text = (_cells(m.spec for m in spec) if isinstance(spec, list) else f"`{spec}`") if taker else ""
            why = taker.unavailable(run, spec) if taker else None
            cells.append(f"{text} (null: {why})" if why else text or "none")
        about = profiles.ABOUT[name] + ("; the default" if name == default else "")
        lines.append(f"| `{name}`: {about} | {' | '.join(cells)} |")
    return "\n".join(lines)
