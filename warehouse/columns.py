"""Pydantic model -> typed columns (DuckDB type for the DDL, Arrow type for the bulk load).

Anything without a natural column type (dicts, nested models, unions of several types)
becomes JSON: typed where it is easy to query, never lossy.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel

Kind = Literal["scalar", "enum", "json"]


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    arrow_type: pa.DataType
    kind: Kind = "scalar"  # how a python value is prepared for Arrow


_SCALARS: dict[type, tuple[str, pa.DataType]] = {
    bool: ("BOOLEAN", pa.bool_()),
    int: ("BIGINT", pa.int64()),
    float: ("DOUBLE", pa.float64()),
    str: ("VARCHAR", pa.string()),
    dt.datetime: ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    dt.date: ("DATE", pa.date32()),
    Decimal: ("DECIMAL(18,4)", pa.decimal128(18, 4)),
}
_JSON = ("JSON", pa.string(), "json")


def _strip_optional(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:  # validation metadata (e.g. `Timestamp | None`) says nothing about storage
        return _strip_optional(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return tp


def _is_str_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum) and all(isinstance(m.value, str) for m in tp)


def _is_int_enum(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and issubclass(tp, enum.Enum)
        and all(isinstance(m.value, int) and not isinstance(m.value, bool) for m in tp)
    )


def _map(tp: Any) -> tuple[str, pa.DataType, Kind]:
    tp = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is Literal:
        values = get_args(tp)
        if all(isinstance(v, str) for v in values):
            return "VARCHAR", pa.string(), "scalar"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "BIGINT", pa.int64(), "scalar"
        return _JSON  # type: ignore[return-value]
    if origin in (list, tuple, set, frozenset) and origin is not tuple:
        (inner,) = get_args(tp) or (Any,)
        inner = _strip_optional(inner)
        if inner is str or _is_str_enum(inner):
            return "VARCHAR[]", pa.list_(pa.string()), "enum" if inner is not str else "scalar"
        if inner is int:
            return "BIGINT[]", pa.list_(pa.int64()), "scalar"
        return _JSON  # type: ignore[return-value]
    if _is_str_enum(tp):
        return "VARCHAR", pa.string(), "enum"
    if _is_int_enum(tp):
        return "BIGINT", pa.int64(), "enum"
    if isinstance(tp, type) and tp in _SCALARS:
        duck, arrow = _SCALARS[tp]
        return duck, arrow, "scalar"
    return _JSON  # type: ignore[return-value]


@cache
def model_columns(model: type[BaseModel]) -> tuple[Column, ...]:
    """The model's fields as columns, in declaration order; aliases are ignored on purpose."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"expected a pydantic model class, got {model!r}")
    cols = []
    for name, info in model.model_fields.items():
        duck, arrow, kind = _map(info.annotation)
        cols.append(Column(name, duck, arrow, kind))
    return tuple(cols)
