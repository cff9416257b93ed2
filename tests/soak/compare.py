"""A warehouse schema against the sandbox's ground truth, table by table, counted by kind of mismatch.

- missing: the provider has it, the warehouse has no row for it;
- wrongly deleted: the provider has it, the warehouse row is marked deleted;
- stale: both have it live, but the stored record differs from what the provider serves now;
- not deleted: the warehouse has it live, the provider no longer lists it (vanished, deleted, retired);
- duplicated: more than one row for one id of one connection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from integrations.engine.registry import get_integration
from sandbox.truth import Truth
from warehouse.query import run_query

KINDS = ("missing", "wrongly deleted", "stale", "not deleted", "duplicated")


@dataclass
class Comparison:
    compared: Counter[str] = field(default_factory=Counter)  # table -> records compared
    mismatches: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, kind) -> count
    examples: list[str] = field(default_factory=list)

    def add(self, table: str, kind: str, detail: str) -> None:
        self.mismatches[(table, kind)] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{table} {kind}: {detail}")

    def by_kind(self) -> dict[str, int]:
        return {k: sum(n for (_, kind), n in self.mismatches.items() if kind == k) for k in KINDS}

    @property
    def total(self) -> int:
        return sum(self.mismatches.values())


def _embedded_paths(integration: str) -> dict[str, set[str]]:
    """table -> fields a sync strips from its records because they land in a table of their own."""
    out: dict[str, set[str]] = {}
    for sync in get_integration(integration).definition.syncs:
        for e in sync.embedded:
            if e.strip_from_parent:
                out.setdefault(sync.table, set()).add(e.path)
    return out


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return run_query(db, sql, limit=10**9, timeout=60)[1]


def compare(db: Path, integration: str, connection_id: str, truth: Truth, into: Comparison) -> None:
    """Add the mismatches of one connection's tables to `into`."""
    schema = get_integration(integration).definition.schema_name
    strip = _embedded_paths(integration)
    for table, expected in truth.tables.items():
        stored = rows(db, f"SELECT CAST(id AS VARCHAR), _raw, _deleted_at IS NOT NULL FROM {schema}.{table} "
                          f"WHERE connection_id = '{connection_id}'")
        into.compared[table] += len(expected)
        counts = Counter(rid for rid, _, _ in stored)
        for rid, n in counts.items():
            if n > 1:
                into.add(table, "duplicated", f"{rid} x{n}")
        have = {rid: (orjson.loads(raw), deleted) for rid, raw, deleted in stored}
        for rid, record in expected.items():
            want = {k: v for k, v in record.items() if k not in strip.get(table, set())}
            if rid not in have:
                into.add(table, "missing", rid)
            elif have[rid][1]:
                into.add(table, "wrongly deleted", rid)
            elif have[rid][0] != want:
                diff = sorted(k for k in want.keys() | have[rid][0].keys() if want.get(k) != have[rid][0].get(k))
                into.add(table, "stale", f"{rid} differs in {diff}")
        for rid, (_, deleted) in have.items():
            if rid not in expected and not deleted:
                why = "removed at the provider" if rid in truth.removed.get(table, {}) else "unknown to the provider"
                into.add(table, "not deleted", f"{rid} ({why})")
