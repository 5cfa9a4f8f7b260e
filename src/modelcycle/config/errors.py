"""Turn pydantic validation errors into one clear, user-facing message."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from modelcycle.errors import ConfigError


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation: ``Model``, ``Model | None``, ``dict[str, Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """Follow ``loc`` through nested pydantic models; return the model that owns the last key."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        if field is None:
            continue  # a dict key or list index between two models
        nested = _models_in(field.annotation)
        if not nested:
            return None
        current = nested[0]
    return current


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """Return ``" — did you mean `x`?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{close[0]}`?" if close else ""


def validation_error_to_config_error(
    err: ValidationError,
    model: type[BaseModel],
    *,
    where: str,
    key_name: Callable[[Sequence[int | str]], str],
    fix: str,
) -> ConfigError:
    """Build one :class:`ConfigError` listing every problem in ``err``.

    Args:
        err: The pydantic error.
        model: The model that was validated (used to suggest known keys).
        where: Where the values came from, e.g. ``"modelcycle.toml"``.
        key_name: Renders a location as the user knows it (a dotted key or an env variable).
        fix: The generic fix, e.g. ``"edit modelcycle.toml"``.
    """
    lines: list[str] = []
    for item in err.errors():
        loc = item["loc"]
        key = key_name(loc)
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            known = list(owner.model_fields) if owner else []
            hint = did_you_mean(str(loc[-1]), known)
            allowed = f" (known keys: {', '.join(known)})" if known and not hint else ""
            lines.append(f"unknown key `{key}`{hint}{allowed}")
        elif item["type"] == "missing":
            lines.append(f"`{key}` is required")
        elif item["type"] in ("model_type", "model_attributes_type", "dict_type"):
            lines.append(f"`{key}` must be a table: write [{key}] with its keys on the lines below")
        else:
            value = item.get("input")
            shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
            msg = item["msg"].removeprefix("Value error, ").rstrip(".")
            lines.append(f"`{key}`: {msg}{shown}" if loc else f"{msg}{shown}")
    detail = "; ".join(lines)
    return ConfigError(f"invalid {where}: {detail}", fix)
