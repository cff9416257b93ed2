"""Batch validation: provider records -> typed rows + canonical raw JSON, and rejects.

A page is validated in one call on the fast path; only when that fails is it re-checked
record by record, so one bad record is quarantined without slowing the good pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

Transform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Validated:
    rows: list[dict[str, Any]] = field(default_factory=list)  # field values (nested models as models)
    raws: list[str] = field(default_factory=list)  # canonical JSON of each provider record
    ids: list[str] = field(default_factory=list)
    rejects: list[tuple[str | None, str, str]] = field(default_factory=list)  # (id, error, raw)


@cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def canonical_json(record: Any) -> str:
    """Sorted keys and compact separators: equal content gives an equal hash, always."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def _short_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def validate_records(
    model: type[BaseModel],
    records: list[Any],
    *,
    primary_key: str = "id",
    transform: Transform | None = None,
    strip: tuple[str, ...] = (),
) -> Validated:
    """Validate provider records against `model`.

    `strip` names fields (embedded children) left out of the stored raw JSON because they
    land in their own table. `transform` maps a raw record to the model's input first.
    """
    out = Validated()
    raws_src: list[Any] = []
    inputs: list[Any] = []
    for rec in records:
        if isinstance(rec, dict) and strip:
            rec = dict(rec)  # a C-level copy, then drop the few stripped keys
            for name in strip:
                rec.pop(name, None)
        raws_src.append(rec)
        if transform is not None and isinstance(rec, dict):
            try:
                inputs.append(transform(rec))
            except Exception as exc:  # a provider record the mapping cannot read: quarantine it
                inputs.append(_TransformFailed(f"{type(exc).__name__}: {exc}"))
        else:
            inputs.append(rec)

    if not any(isinstance(i, _TransformFailed) for i in inputs):
        try:
            objs = _list_adapter(model).validate_python(inputs)
        except ValidationError:
            objs = None
        if objs is not None:
            # a validated model's __dict__ holds exactly its fields, already in python mode: no
            # dump needed (it cost more than validating). Nested models are serialised to JSON
            # columns by the warehouse's staging.
            out.rows = [obj.__dict__ for obj in objs]
            out.raws = [canonical_json(src) for src in raws_src]
            out.ids = [str(row[primary_key]) for row in out.rows]
            return out

    for inp, src in zip(inputs, raws_src, strict=True):
        raw = canonical_json(src)
        keyed = inp if isinstance(inp, dict) else src
        rid = keyed.get(primary_key) if isinstance(keyed, dict) else None
        rid = str(rid) if rid is not None else None
        if isinstance(inp, _TransformFailed):
            out.rejects.append((rid, f"mapping failed: {inp.error}", raw))
            continue
        try:
            obj = model.model_validate(inp)
        except ValidationError as exc:
            out.rejects.append((rid, f"{model.__name__}: {_short_error(exc)}", raw))
            continue
        row = obj.__dict__
        out.rows.append(row)
        out.raws.append(raw)
        out.ids.append(str(row[primary_key]))
    return out


@dataclass(frozen=True)
class _TransformFailed:
    error: str
