"""Batch validation: provider records -> typed rows + canonical raw JSON, and rejects.

A page is validated in one call on the fast path; only when that fails is it re-checked
record by record, so one bad record is quarantined without slowing the good pages. An item that
is not an object, a record with an empty id, or one holding text no UTF-8 store can keep (a lone
surrogate) is quarantined the same way; what each field type accepts is `coercion.py`'s rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from integrations.engine.coercion import record_id_problem

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
            # a validated model's __dict__ holds exactly its fields, already in python mode: no
            # dump needed (it cost more than validating). Nested models are serialised to JSON
            # columns by the warehouse's staging.
            rows = [obj.__dict__ for obj in objs]
            raws = [canonical_json(src) for src in raws_src]  # text JSON cannot carry: see _raw_text
        except (ValidationError, orjson.JSONEncodeError):
            rows = None
        if rows is not None:
            keys = [row[primary_key] for row in rows]
            ids = [str(k) for k in keys]
            if None not in keys and all(i.strip() for i in ids):  # else: the record-by-record path says which
                out.rows, out.raws, out.ids = rows, raws, ids
                return out

    for n, (inp, src) in enumerate(zip(inputs, raws_src, strict=True)):
        raw, unreadable = _raw_text(src)
        keyed = inp if isinstance(inp, dict) else src
        rid = keyed.get(primary_key) if isinstance(keyed, dict) else None
        rid = str(rid) if rid is not None and record_id_problem(rid) is None else None
        if not isinstance(src, dict):
            out.rejects.append((None, f"{model.__name__}: item {n} of the page is a {type(src).__name__}, not an object", raw))
            continue
        if isinstance(inp, _TransformFailed):
            out.rejects.append((rid, f"mapping failed: {inp.error}", raw))
            continue
        if unreadable:
            out.rejects.append((rid, f"{model.__name__}: {unreadable}", raw))
            continue
        try:
            obj = model.model_validate(inp)
        except ValidationError as exc:
            out.rejects.append((rid, f"{model.__name__}: {_short_error(exc)}", raw))
            continue
        row = obj.__dict__
        problem = record_id_problem(row.get(primary_key))
        if problem:
            out.rejects.append((None, f"{model.__name__}: {primary_key}: {problem}", raw))
            continue
        out.rows.append(row)
        out.raws.append(raw)
        out.ids.append(str(row[primary_key]))
    return out


def _raw_text(record: Any) -> tuple[str, str | None]:
    """The record's canonical JSON, and why it cannot be stored as it came (None when it can).

    Python's parser (the fallback for bodies orjson refuses) accepts lone surrogates such as
    `"\\ud800"`, which no UTF-8 text (DuckDB's, Arrow's, orjson's) can hold: such a record keeps
    its raw JSON with the escape as sent, and is quarantined.
    """
    try:
        return canonical_json(record), None
    except (orjson.JSONEncodeError, TypeError):
        pass
    raw = json.dumps(record, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str)
    where = _first_surrogate(record)
    if where is not None:
        return raw, f"{where or '(record)'}: text holds a lone surrogate (e.g. \\ud800), which is not valid Unicode"
    return raw, "a value JSON does not allow (NaN or Infinity)"


def _first_surrogate(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string holding a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found = _first_surrogate(inner, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class _TransformFailed:
    error: str
