"""The one rule of what a JSON value may become in a typed column (integrations/engine/coercion.py):
each row of the table in its docstring, checked through `validate_records` as a page would be."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from integrations.engine.coercion import Day, ProviderRecord, Timestamp, policy_problems
from integrations.engine.validation import validate_records


class Sample(ProviderRecord):
    id: str
    text: str | None = None
    count: int | None = None
    amount: float | None = None
    flag: bool | None = None
    at: Timestamp | None = None
    day: Day | None = None
    kind: Literal["a", "b"] | None = None
    tags: list[str] = []
    meta: dict[str, Any] | None = None


ACCEPTED = [
    ("text", "hello", "hello"),
    ("count", 12, 12),
    ("amount", 3, 3.0),
    ("amount", 1.5, 1.5),
    ("flag", False, False),
    ("at", "2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("at", "2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("at", "2024-05-01", datetime(2024, 5, 1)),
    ("day", "2024-05-01", date(2024, 5, 1)),
    ("kind", "a", "a"),
    ("tags", ["x"], ["x"]),
    ("meta", {"k": 1}, {"k": 1}),
    ("text", None, None),
]

REJECTED = [
    ("text", 12),
    ("text", True),
    ("count", "12"),
    ("count", 1.0),
    ("count", True),
    ("amount", "1.5"),
    ("amount", True),
    ("flag", 1),
    ("flag", "yes"),
    ("flag", "true"),
    ("at", 1714557600),
    ("at", 1714557600.5),
    ("at", "1714557600"),
    ("at", "yesterday"),
    ("day", 19844),
    ("kind", "c"),
    ("tags", "x"),
    ("meta", [1]),
]


@pytest.mark.parametrize(("field", "value", "stored"), ACCEPTED)
def test_accepted_values(field: str, value: Any, stored: Any) -> None:
    out = validate_records(Sample, [{"id": "r1", field: value}])
    assert not out.rejects
    got = out.rows[0][field]
    assert got == stored and type(got) is type(stored)


@pytest.mark.parametrize(("field", "value"), REJECTED)
def test_rejected_values_are_quarantined_naming_the_field(field: str, value: Any) -> None:
    out = validate_records(Sample, [{"id": "r1", field: value}, {"id": "r2"}])
    assert [row["id"] for row in out.rows] == ["r2"]
    ((rid, error, _raw),) = out.rejects
    assert rid == "r1" and field in error


@pytest.mark.parametrize("key", ["", "   ", None])
def test_a_record_id_must_be_non_empty_text(key: Any) -> None:
    out = validate_records(Sample, [{"id": key}, {"id": "ok"}])
    assert [row["id"] for row in out.rows] == ["ok"]
    ((rid, error, _raw),) = out.rejects
    assert rid is None and "id" in error


def test_a_model_that_escapes_the_rule_fails_at_load_time() -> None:
    class Lax(BaseModel):
        id: str

    class BareTime(ProviderRecord):
        id: str
        at: datetime | None = None
        nested: Lax | None = None

    problems = policy_problems(BareTime)
    assert any("BareTime.at: use coercion.Timestamp" in p for p in problems)
    assert any("Lax must derive from" in p for p in problems)
    assert policy_problems(Sample) == []
