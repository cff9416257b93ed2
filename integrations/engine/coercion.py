"""What a provider's JSON value may become in a typed column: the one decision, for every provider.

Records arrive as parsed JSON, so a field can only receive text, a number, true/false, null,
a list or an object. pydantic's lax mode would quietly convert many of these (an integer epoch
into a date-time, `true` into 1, `"12"` into 12, `"yes"` into True); a quiet conversion hides a
provider's schema change, so every record model derives from `ProviderRecord` (strict: a value
must already be of the field's type) and date-times and dates use `Timestamp` / `Day`, which
accept ISO 8601 text only. The rule, per field type:

| field type | accepted | rejected (the record is quarantined) |
| --- | --- | --- |
| text (`str`) | a JSON string | numbers, true/false |
| integer (`int`) | a JSON integer | `1.0`, `"12"`, true/false |
| number (`float`) | a JSON number (`3` becomes `3.0`) | `"1.5"`, true/false |
| true/false (`bool`) | `true`, `false` | `1`, `0`, `"yes"`, `"true"` |
| date-time (`Timestamp`) | ISO 8601 text; without an offset it is read as UTC, a date alone as midnight | an epoch (`1714557600`, `"1714557600"`), any other number |
| date (`Day`) | `YYYY-MM-DD` text (a date-time at midnight too) | numbers |
| fixed values (`Literal`) | exactly one of the declared values | anything else |
| list | a JSON array (`null` too where the model says so, e.g. Checkr's `NullableList`) | anything else |
| object, nested model | a JSON object | anything else |
| record id (the sync's primary key) | non-empty text | `""`, blank text, a missing id |

`null` is accepted wherever the model declares the field optional. Unknown fields are ignored
(they stay in the stored raw JSON). A provider whose shape needs converting (ClearChecks'
`{"date": ...}` wrappers) converts in its own `transform`, not here.
"""

from __future__ import annotations

import types
from datetime import date, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict


def _iso_text(value: Any) -> Any:
    """ISO 8601 text (or an already-parsed value) passes; a number, or digits alone, does not."""
    if isinstance(value, str):
        if value[:4].isdigit() and value[4:5] == "-":
            return value
        raise ValueError(f"{value[:40]!r} is not ISO 8601 text (e.g. 2024-05-01T12:00:00Z)")
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a number is not accepted as a date or date-time; send ISO 8601 text (e.g. 2024-05-01T12:00:00Z)")
    return value  # None, or a date/datetime built in Python: pydantic checks the type


# `Strict(False)`: ISO text has to be parsed, which strict mode refuses; the validator first
# refuses what lax mode would otherwise convert (epoch numbers).
Timestamp = Annotated[datetime, Strict(False), BeforeValidator(_iso_text)]
Day = Annotated[date, Strict(False), BeforeValidator(_iso_text)]


class ProviderRecord(BaseModel):
    """Base of every record model a sync, webhook or action validates (see the table above)."""

    model_config = ConfigDict(strict=True, extra="ignore")


def record_id_problem(value: Any) -> str | None:
    """Why `value` cannot identify a record, or None when it can."""
    if value is None:
        return "missing"
    if isinstance(value, str) and not value.strip():
        return "empty text is not a record id"
    return None


def _unwrap(tp: Any) -> list[Any]:
    """The types inside Optional/Union/Annotated/list/dict annotations, for the policy check."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, types.UnionType) or origin in (list, set, frozenset, tuple, dict):
        return [t for arg in get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _uses_policy_type(annotation: Any, bare: type) -> bool:
    """True when every `bare` (datetime/date) inside the annotation is Timestamp/Day-annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        if inner is bare:
            return any(isinstance(m, BeforeValidator) and m.func is _iso_text for m in meta)
        return _uses_policy_type(inner, bare)
    if origin is not None:
        return all(_uses_policy_type(arg, bare) for arg in get_args(annotation))
    return annotation is not bare


def policy_problems(model: type[BaseModel], seen: set[type] | None = None) -> list[str]:
    """What in `model` (and the models it nests) escapes the rule above; [] when nothing does."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    problems = []
    if not issubclass(model, ProviderRecord):
        problems.append(f"{model.__name__} must derive from integrations.engine.coercion.ProviderRecord")
    for name, info in model.model_fields.items():
        annotation = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        if not _uses_policy_type(annotation, datetime):
            problems.append(f"{model.__name__}.{name}: use coercion.Timestamp, not datetime")
        elif not _uses_policy_type(annotation, date):
            problems.append(f"{model.__name__}.{name}: use coercion.Day, not date")
        for inner in _unwrap(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                problems += policy_problems(inner, seen)
    return problems
