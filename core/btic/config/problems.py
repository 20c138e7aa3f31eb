"""Pydantic's validation errors as config paths and plain messages, and what
can be salvaged of an invalid file so the cross-checks still report everything
in one pass."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from btic.config.sections import (
    ConfigFile,
    ScheduleConfig,
    TransferConfig,
    parse_duration,
    parse_time_of_day,
)
from btic.errors import ConfigProblem
from btic.types import DataType


def problems_from(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        problems.append(ConfigProblem(_join_path(prefix, loc), _message(error, model, loc)))
    return problems


def _join_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _message(error: Mapping[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"unknown setting; allowed: {', '.join(allowed)}" if allowed else "unknown setting"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short",) and ctx.get("min_length") == 1:
        return "must list at least one"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    return str(error["msg"])


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (for "unknown setting" messages)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not is_model(current):
            current = _unwrap(current, part)
            continue
        model_field = current.model_fields.get(part)
        if model_field is None:
            return []
        current = model_field.annotation
        current = _strip_optional(current)
    current = _strip_optional(current)
    if is_model(current):
        return sorted(current.model_fields)
    return []


def _unwrap(annotation: Any, part: Any) -> Any:
    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if origin is dict:
        return _strip_optional(get_args(annotation)[1])
    if origin in (list, tuple):
        return _strip_optional(get_args(annotation)[0])
    return annotation


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def salvage(data: Mapping[str, Any], context: dict[str, Any]) -> ConfigFile:
    """Validate each section on its own, keeping those that are valid.

    Cross-checks then still run on what is usable, so a file with a bad site
    and a bad schedule reports both problems, not just the first.
    """
    kept: dict[str, Any] = {}
    for key, model_field in ConfigFile.model_fields.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, dict) and get_origin(model_field.annotation) is dict:
            value_type = get_args(model_field.annotation)[1]
            kept[key] = {}
            for name, item in value.items():
                if not is_model(value_type):
                    kept[key][name] = item
                    continue
                try:
                    kept[key][name] = value_type.model_validate(item, context=context)
                except ValidationError:
                    if value_type is ScheduleConfig and isinstance(item, Mapping):
                        kept[key][name] = _salvage_schedule(item)
        elif is_model(model_field.annotation):
            with contextlib.suppress(ValidationError):
                kept[key] = model_field.annotation.model_validate(value, context=context)
    return ConfigFile.model_construct(**kept)


def _salvage_schedule(raw: Mapping[str, Any]) -> ScheduleConfig:
    """What can be read of an invalid schedule, for the cross-checks.

    Unreadable values become None (or are left out of lists) and the checks
    skip them; list positions are kept so paths stay right.
    """

    def attempt(parse: Any, value: Any) -> Any:
        try:
            return parse(value)
        except (ValueError, TypeError):
            return None

    transfers: list[Any] = []
    raw_transfers = raw.get("transfers")
    for item in raw_transfers if isinstance(raw_transfers, list) else []:
        if not isinstance(item, Mapping):
            transfers.append(None)
            continue
        site = item.get("site")
        destinations = item.get("destinations")
        data = item.get("data")
        transfers.append(
            TransferConfig.model_construct(
                site=site if isinstance(site, str) else None,
                destinations=[d if isinstance(d, str) else None for d in destinations]
                if isinstance(destinations, list)
                else [],
                data=[dt for dt in (attempt(DataType, d) for d in data) if dt is not None]
                if isinstance(data, list)
                else [],
            )
        )
    return ScheduleConfig.model_construct(
        every=attempt(parse_duration, raw.get("every")),
        at=attempt(parse_time_of_day, raw.get("at")) if raw.get("at") is not None else None,
        enabled=True,
        transfers=transfers,
    )
