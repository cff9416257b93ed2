"""Rows -> one Arrow table with an explicit schema, ready for a set-based upsert.

Column-wise building keeps the Python work to one pass per column; only JSON and enum
columns need a per-value conversion. Duplicate keys in a batch are resolved here (last
wins) because it is cheaper on 100 rows than a window function in SQL.
"""

from __future__ import annotations

import enum
import hashlib
import operator
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
from pydantic import BaseModel

from warehouse.columns import Column
from warehouse.records import Observed

# Staged tables live for one write and are freed together. In pyarrow's default pool (mimalloc)
# the freed buffers stayed reserved for Arrow, on top of what DuckDB and Python hold: a full
# sync peaked ~45 MB higher than with the C allocator, which hands them back to everyone.
POOL = pa.system_memory_pool()

# `_raw` is staged as Arrow's JSON type, which DuckDB stores in its JSON columns as it is: as text
# it was parsed again on every insert, which needed several times a wide record's size of the
# writer's memory (an 8 MB record ran a 48 MB writer out of it). Every raw is orjson's output.
RAW_JSON = pa.json_()
OBSERVED = pa.timestamp("us", tz="UTC")


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _to_json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _enum_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [v.value if isinstance(v, enum.Enum) else v for v in value]
    return value


class UnstorableValue(ValueError):
    """A validated value its column cannot hold (an integer beyond 64 bits, say), or no primary key."""


def per_row(observed: Observed, n: int) -> list[datetime | None]:
    """`observed` (one time for the batch, one per row, or None) as one value per row."""
    if isinstance(observed, list):
        if len(observed) != n:
            raise ValueError(f"{len(observed)} observation times for {n} rows; they must match one to one")
        return observed
    return [observed] * n


def latest_per_key(key: str, rows: Sequence[dict[str, Any]], observed: Sequence[datetime | None]) -> list[int] | None:
    """Indexes to keep, one per key, in first-seen order: the latest observed version (the last one
    on a tie, or without times); None when every key is already unique (the usual case)."""
    index: dict[Any, int] = {}
    for i, row in enumerate(rows):
        k = row.get(key)
        j = index.get(k)
        if j is None or _not_older(observed[i], observed[j]):
            index[k] = i
    if len(index) == len(rows):
        return None
    return sorted(index.values())


def _not_older(a: datetime | None, b: datetime | None) -> bool:
    return a is None or b is None or a >= b


def _transpose(rows: Sequence[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    """Column value lists in one C-level pass per row (a list per column cost one per value)."""
    if not rows or not names:
        return [() for _ in names]
    if len(names) == 1:
        return [tuple(r.get(names[0]) for r in rows)]
    getter = operator.itemgetter(*names)
    try:
        return list(zip(*map(getter, rows), strict=True))
    except KeyError:  # rows that leave out optional fields
        return [tuple(r.get(n) for r in rows) for n in names]


def build_stage(
    columns: Sequence[Column],
    primary_key: str,
    rows: Sequence[dict[str, Any]],
    raws: Sequence[str],
    model: str,
    *,
    observed: Observed = None,
    run_ids: Sequence[str] | None = None,
) -> pa.Table:
    """Arrow table of the typed columns plus `_raw`, `_hash`, `_observed_at` (and `_run_id` when
    given per row); raises ValueError naming the bad column."""
    if len(rows) != len(raws):
        raise ValueError(f"{model}: {len(rows)} rows but {len(raws)} raw JSON strings; they must match one to one")
    arrays = []
    fields = []
    values: Sequence[Any]
    for col, values in zip(columns, _transpose(rows, [c.name for c in columns]), strict=True):
        if col.kind == "json":
            values = [_to_json(v) for v in values]
        elif col.kind == "enum":
            values = [_enum_value(v) for v in values]
        elif col.arrow_type == pa.date32():
            # a datetime is also a date in Python; keep only the date part rather than failing
            values = [v.date() if isinstance(v, datetime) else v for v in values]
        try:
            arrays.append(pa.array(values, type=col.arrow_type, memory_pool=POOL))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            bad = next((v for v in values if v is not None and not _fits(v, col)), None)
            raise UnstorableValue(
                f"{model}.{col.name}: cannot store {type(bad).__name__ if bad is not None else 'value'} "
                f"as {col.duckdb_type} ({exc})"
            ) from exc
        fields.append(pa.field(col.name, col.arrow_type))
    if any(r.get(primary_key) is None for r in rows):
        raise UnstorableValue(f"{model}: a record has no primary key {primary_key!r}")
    arrays.append(pa.array(raws, type=RAW_JSON, memory_pool=POOL))
    fields.append(pa.field("_raw", RAW_JSON))
    # md5 of the UTF-8 text, the same value DuckDB's md5(_raw) gives: computed once here
    # rather than twice in SQL (once to compare, once to store)
    hashes = [hashlib.md5(r.encode(), usedforsecurity=False).hexdigest() for r in raws]
    arrays.append(pa.array(hashes, type=pa.string(), memory_pool=POOL))
    fields.append(pa.field("_hash", pa.string()))
    arrays.append(pa.array(per_row(observed, len(rows)), type=OBSERVED, memory_pool=POOL))
    fields.append(pa.field("_observed_at", OBSERVED))
    if run_ids is not None:
        arrays.append(pa.array(list(run_ids), type=pa.string(), memory_pool=POOL))
        fields.append(pa.field("_run_id", pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# DuckDB reads an Arrow table a chunk at a time and needs one allocation for the text of a chunk:
# 800 records of 20 KB in one chunk ran a 48 MB writer out of memory, the same records in
# chunks of 100 did not. So no chunk holds more than this.
MAX_CHUNK_BYTES = 4 * 1024 * 1024


def bounded_chunks(table: pa.Table) -> pa.Table:
    """The same rows, re-sliced (zero-copy) so no chunk holds more than MAX_CHUNK_BYTES."""
    size = table.get_total_buffer_size()  # (`nbytes` walks every buffer: 40 µs a page)
    if size <= MAX_CHUNK_BYTES or table.num_rows <= 1:
        return table
    rows = max(1, table.num_rows * MAX_CHUNK_BYTES // size)
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), schema=table.schema)


def dedupe_table(key: str, table: pa.Table) -> pa.Table:
    """Keep the latest observed row of each key, the last on a tie (several staged pages can repeat a record)."""
    keys = table.column(key).to_pylist()  # (pyarrow.compute would do this in C, but costs 8 MB to import)
    if len(set(keys)) == table.num_rows:
        return table
    observed = table.column("_observed_at").to_pylist() if "_observed_at" in table.column_names else [None] * len(keys)
    keep = latest_per_key(key, [{key: k} for k in keys], observed)
    return table if keep is None else table.take(keep)


def _fits(value: Any, col: Column) -> bool:
    try:
        pa.array([value], type=col.arrow_type)
    except Exception:
        return False
    return True


__all__ = ["UnstorableValue", "bounded_chunks", "build_stage", "dedupe_table", "latest_per_key", "per_row"]
