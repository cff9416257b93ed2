"""Collect every integration's parts of the `unified` views, ready for the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.engine.registry import all_integrations


@dataclass(frozen=True)
class ResolvedViewPart:
    view: str
    sql: str
    requires: list[str]  # fully qualified tables: "checkr.reports"


def view_parts() -> list[ResolvedViewPart]:
    parts = []
    for integ in all_integrations().values():
        d = integ.definition
        for p in d.views:
            sql = p.sql.replace("{schema}", d.schema_name).replace("{integration}", d.name)
            parts.append(ResolvedViewPart(p.view, sql.strip(), [f"{d.schema_name}.{t}" for t in p.requires]))
    return parts
