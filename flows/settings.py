"""`pairsmith config`: every setting of a run with its default and description.

Read from the pydantic models of `schemas/config.py` (fields, defaults, descriptions, allowed values),
so the list cannot drift from what `load_config` accepts. `--defaults` prints the same as a YAML
config file that `pairsmith run` reads unchanged.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pairsmith.schemas.config import RunConfig

BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


@dataclass(frozen=True)
class Setting:
    key: str  # dotted, as in `--set KEY=VALUE`; `[]` marks the fields of a list's items
    default: Any  # PydanticUndefined when the setting is required
    allowed: str  # e.g. "auto | cpu" or ">= 1", empty when any value of the type goes
    description: str


def _model_in(annotation) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model that `annotation` holds (directly, or as a list's items), and whether in a list."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in typing.get_args(annotation):
        model, in_list = _model_in(arg)
        if model is not None:
            return model, in_list or typing.get_origin(annotation) is list
    return None, False


def _allowed(field: FieldInfo) -> str:
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        item = typing.get_args(annotation)[0]
        return (
            "each " + " | ".join(typing.get_args(item)) if typing.get_origin(item) is typing.Literal else ""
        )
    bounds = [
        f"{sign} {getattr(m, name)}"
        for m in field.metadata
        if isinstance(m, annotated_types.BaseMetadata)
        for name, sign in BOUNDS
        if getattr(m, name, None) is not None
    ]
    return ", ".join(bounds)


def summary(model: type[BaseModel]) -> str:
    """The first paragraph of a model's docstring, on one line."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].split())


def sections() -> Iterator[tuple[str, type[BaseModel]]]:
    """(name, model) of every section of the run config, in order."""
    for name, field in RunConfig.model_fields.items():
        yield name, _model_in(field.annotation)[0]


def settings(model: type[BaseModel], prefix: str = "") -> Iterator[Setting]:
    """Every setting of `model`, depth first, in declaration order."""
    for name, field in model.model_fields.items():
        key = prefix + name
        sub, in_list = _model_in(field.annotation)
        if sub is not None and not in_list:
            yield from settings(sub, key + ".")
            continue
        default = field.get_default(call_default_factory=True)
        yield Setting(key, default, _allowed(field), field.description or "")
        if sub is not None:
            yield from settings(sub, key + "[].")


def _value(value: Any) -> str:
    if value is PydanticUndefined:
        return "(required)"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


def describe() -> str:
    """Every setting: `key = default  (allowed values)` and its description, section by section."""
    lines = [
        "Every setting of a run, with its default. Set them in a YAML file (`pairsmith run CONFIG.yaml`,",
        "start from `pairsmith config --defaults`) or one by one (`--set KEY=VALUE`).",
    ]
    for name, model in sections():
        lines += ["", f"{name}: {summary(model)}"]
        for s in settings(model, name + "."):
            allowed = f"  ({s.allowed})" if s.allowed else ""
            lines += [f"  {s.key} = {_value(s.default)}{allowed}", f"      {s.description}"]
    return "\n".join(lines) + "\n"


def defaults_yaml() -> str:
    """A YAML config holding every setting at its default, each under its description as a comment."""
    lines = ["# Every pairsmith setting at its default (`pairsmith config --defaults`)."]
    for name, model in sections():
        lines += ["", f"# {summary(model)}", f"{name}:"]
        for s in settings(model, name + "."):
            if "[]" in s.key:
                continue  # the fields of a list's items: described by `pairsmith config`
            lines += [f"  # {s.description}", f"  {s.key.removeprefix(name + '.')}: {_value(s.default)}"]
    return "\n".join(lines) + "\n"
