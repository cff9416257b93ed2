"""One page (or a few records fetched by id) of a sync, validated into warehouse batches.

A sync's own records and their embedded children (Checkr's reports inside candidates) are
validated against their models; what fails is quarantined. Shared by list runs, re-polls,
fetches by id (owed and referenced records) and webhooks, so a record lands the same way
whichever path brought it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.engine.definition import SyncConfig
from integrations.engine.registry import Integration
from integrations.engine.validation import Validated, validate_records
from warehouse.loader import RecordBatch, RejectedRecord, TableTarget


@dataclass
class Targets:
    main: TableTarget
    embedded: list[tuple[str, TableTarget]]  # (parent field, target)

    def all(self) -> list[TableTarget]:
        return [self.main, *(t for _, t in self.embedded)]

    def tracked(self, sync: SyncConfig) -> list[TableTarget]:
        """The tables a run that read the sync's whole list marks unseen records deleted in."""
        main = [self.main] if sync.track_deletes else []
        return main + [t for (_, t), e in zip(self.embedded, sync.embedded, strict=True) if e.track_deletes]


def targets_for(integ: Integration, sync: SyncConfig) -> Targets:
    schema = integ.definition.schema_name
    main = TableTarget(schema, sync.table, integ.model(sync.model), sync.primary_key, sync.deleted_field)
    embedded = [
        (e.path, TableTarget(schema, e.table, integ.model(e.model), e.primary_key)) for e in sync.embedded
    ]
    return Targets(main, embedded)


def build_batches(
    sync: SyncConfig, targets: Targets, records: list[Any], transform: Any = None, *, whole_list: bool = False
) -> tuple[list[RecordBatch], list[RejectedRecord], list[dict[str, Any]]]:
    """Validate one page: the sync's own records plus any embedded children, and the rejects.

    `whole_list`: the page belongs to a read of the whole list (a full sync, a sweep), so the ids
    of the tables that track deletes are remembered as seen."""
    track = sync.mode == "full" or whole_list
    strip = tuple(path for path, _ in targets.embedded)
    main = validate_records(targets.main.model, records, primary_key=sync.primary_key, transform=transform, strip=strip)
    batches = [RecordBatch(targets.main, main.rows, main.raws, track_seen=track and sync.track_deletes)]
    rejects = _rejects(targets.main, main)
    for (path, target), config in zip(targets.embedded, sync.embedded, strict=True):
        children = [c for rec in records if isinstance(rec, dict) for c in _children(rec.get(path))]
        child = validate_records(target.model, children, primary_key=target.primary_key)
        batches.append(RecordBatch(target, child.rows, child.raws, track_seen=track and config.track_deletes))
        rejects += _rejects(target, child)
    return batches, rejects, main.rows


def _children(value: Any) -> list[Any]:
    """An embedded list; anything else there is one item that validation quarantines."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _rejects(target: TableTarget, v: Validated) -> list[RejectedRecord]:
    return [RejectedRecord(target.table, rid, err, raw) for rid, err, raw in v.rejects]


def by_id_batches(
    integ: Integration, sync: SyncConfig, table: str, records: list[Any], *, whole_list: bool = False
) -> tuple[list[RecordBatch], list[RejectedRecord], set[str]]:
    """Records of `table` fetched one by one, validated the way `sync` lands them: its own records
    (with their embedded children), or the children of one of its embedded tables. Returns the
    batches, the rejects and the ids that validated."""
    targets = targets_for(integ, sync)
    if table == sync.table:
        transform = integ.resolve(sync.transform) if sync.transform else None
        batches, rejects, rows = build_batches(sync, targets, records, transform, whole_list=whole_list)
        return batches, rejects, {str(row.get(sync.primary_key)) for row in rows}
    target = next(t for _, t in targets.embedded if t.table == table)
    checked = validate_records(target.model, records, primary_key=target.primary_key)
    return [RecordBatch(target, checked.rows, checked.raws)], _rejects(target, checked), set(checked.ids)
