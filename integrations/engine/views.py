"""Collect every integration's parts of the `unified` views, ready to hand to the warehouse."""

from __future__ import annotations

from integrations.engine.batches import targets_for
from integrations.engine.registry import Integration, all_integrations
from warehouse.views import ViewPart, check_parts_over_empty_tables


def parts_of(integ: Integration) -> list[ViewPart]:
    """One integration's SELECTs, with its schema and name filled in."""
    d = integ.definition
    return [
        ViewPart.of(p.view, p.sql.replace("{schema}", d.schema_name).replace("{integration}", d.name),
                    [f"{d.schema_name}.{t}" for t in p.requires], source=d.name)
        for p in d.views
    ]


def view_parts() -> list[ViewPart]:
    """Every loaded integration's parts (the warehouse checks them against the views' column
    contracts, warehouse/unified_views.yaml, whenever it recreates the views)."""
    return [part for integ in all_integrations().values() for part in parts_of(integ)]


def check_view_parts(integ: Integration) -> None:
    """Fail at load when a part breaks its view's contract: each SELECT is described over empty
    tables built from the integration's models in a throwaway in-memory database."""
    parts = parts_of(integ)
    if not parts:
        return
    needed = {t for p in parts for t in p.requires}
    targets = {t.qualified: t for sync in integ.definition.syncs for t in targets_for(integ, sync).all()
               if t.qualified in needed}  # a table may be landed by two syncs (embedded children)
    check_parts_over_empty_tables(parts, list(targets.values()))
